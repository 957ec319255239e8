"""Cassettes: the vcrpy-format files, the httpx2 transport that plays and records them, and what never reaches them
(secrets, personal data).
"""
