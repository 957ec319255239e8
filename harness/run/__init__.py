"""Sending: the SDK client, pacing and retries, the thread pool, one case's samples, pre-flight and budgets, the run
journal that --resume continues, progress.
"""
