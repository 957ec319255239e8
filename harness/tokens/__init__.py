"""Prompt tokens as OpenAI bills them (offline encodings, the server's layout rules), the model registry and its dated
prices, and cost = usage × price.
"""
