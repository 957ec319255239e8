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

# Each kind's random part is the `token` group. These patterns are loose on purpose — redacting a harmless word
# costs nothing; `looks_real` is the stricter test the scanner adds, because a false alarm there blocks a commit.
PATTERNS: dict[str, re.Pattern[str]] = {
    "openai-key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?(?P<token>[A-Za-z0-9_\-*]{8,})"),
    "bearer-token": re.compile(r"(?i)\bbearer\s+(?P<token>[A-Za-z0-9._~+/\-]+=*)"),
    "org-id": re.compile(r"\borg-(?P<token>[A-Za-z0-9]{8,})"),
    "project-id": re.compile(r"\bproj_(?P<token>[A-Za-z0-9]{8,})"),
}
MIN_REAL_TOKEN = 16  # real keys and ids carry 20+ random characters; prose and identifiers rarely reach 16
# The text each case-sensitive pattern's match must hold: a text without it is not scanned by it (every answer of a
# run is redacted: one scan instead of four for most)
_LITERAL = {"openai-key": "sk-", "org-id": "org-", "project-id": "proj_"}


def redact(text: str) -> str:
    """``text`` with API keys, bearer tokens, org and project ids replaced by ``REDACTED``."""
    for kind, pattern in PATTERNS.items():
        literal = _LITERAL.get(kind)
        if literal is None or literal in text:
            text = pattern.sub("REDACTED", text)
    return text


def looks_real(token: str) -> bool:
    """Whether a matched random part could be a live credential: long, letters and digits mixed, not masked."""
    return (
        len(token) >= MIN_REAL_TOKEN
        and "*" not in token
        and any(c.isdigit() for c in token)
        and any(c.isalpha() for c in token)
    )


def mask(secret: str) -> str:
    """At most the first 4 and last 2 characters: enough to tell secrets apart, too little to use one."""
    return f"{secret[:4]}…{secret[-2:]}" if len(secret) >= 12 else "…"
