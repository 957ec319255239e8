"""Servers on this machine for testing and recording: the chaos server, the load generator, and the local model
(llama.cpp).
"""
