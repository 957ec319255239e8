"""What counts as a secret or an identity, and how it is removed from anything we write."""

from __future__ import annotations

import re

# Request headers are kept by allow-list: any other header (a custom auth header, an org id) may be a secret.
KEEP_REQUEST_HEADERS = frozenset({"content-type", "accept"})
# Response headers that carry secrets or identity; the rest (rate limits, processing time) are useful data.
DROP_RESPONSE_HEADERS = frozenset(
    {
        "authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "x-request-id",
        "cf-ray",
    }
)

_PATTERNS = [
    re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-*]{8,}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/\-]+=*"),
    re.compile(r"\borg-[A-Za-z0-9]{8,}"),
    re.compile(r"\bproj_[A-Za-z0-9]{8,}"),
]


def redact(text: str) -> str:
    """``text`` with API keys, bearer tokens, org and project ids replaced by ``REDACTED``."""
    for pattern in _PATTERNS:
        text = pattern.sub("REDACTED", text)
    return text
