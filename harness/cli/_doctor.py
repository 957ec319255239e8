"""`promptvcr doctor`: per eval, the endpoint, its key variable, whether the endpoint answers, and retired models.

Keys are never shown beyond their last 4 characters. Only a loopback endpoint is contacted unless ``online`` is
asked for, so running the doctor on a CI machine or a laptop sends nothing to a remote host by surprise. It fails
(``describe``'s verdict) when a key it needs is not set or an endpoint it contacted did not answer.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

from ..load._evals import Endpoint, Eval

TIMEOUT_S = 3.0
SHOWN_KEY_CHARS = 4
LOCAL_URL_ENV = "PROMPTVCR_LOCAL_URL"  # what harness.plugin uses for `endpoint: local`


def base_url(endpoint: Endpoint, local_url: str | None) -> str:
    return (local_url or endpoint.base_url) if endpoint.kind == "local" else endpoint.base_url


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Finding(NamedTuple):
    text: str
    ok: bool = True


def key_status(endpoint: Endpoint) -> Finding:
    if endpoint.api_key_env is None:
        return Finding("no key needed" if endpoint.kind == "local" else "no key variable (sent without a key)")
    value = os.environ.get(endpoint.api_key_env)
    if not value:
        return Finding(f"{endpoint.api_key_env}: NOT SET (export it or put it in .env)", ok=False)
    # A short value would be half shown by its last 4 characters; it isn't a real key anyway.
    shown = f"…{value[-SHOWN_KEY_CHARS:]}" if len(value) >= 4 * SHOWN_KEY_CHARS else "too short to be a key"
    return Finding(f"{endpoint.api_key_env}: set ({shown})")


def probe(endpoint: Endpoint, online: bool, url: str) -> Finding:
    """Whether ``GET <base_url>/models`` gets any HTTP answer (an error status still means the server is up)."""
    if not (online or is_loopback(url)):
        return Finding("not checked (remote; --online checks it)")
    request = urllib.request.Request(url.rstrip("/") + "/models")
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    # A loopback server is asked directly: an HTTP(S)_PROXY set in the environment must not receive the key.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if is_loopback(url) else None
    try:
        with (opener.open if opener else urllib.request.urlopen)(request, timeout=TIMEOUT_S) as response:
            return Finding(f"answers (HTTP {response.status})")
    except urllib.error.HTTPError as exc:
        exc.close()
        why = {401: ": the key was refused" if key else ": it wants a key", 404: ": no /models here; check base_url"}
        return Finding(f"answers (HTTP {exc.code}{why.get(exc.code, '')})", ok=exc.code not in (401, 404))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        hint = " — `make serve-local` starts it (so does a recording run)" if endpoint.kind == "local" else ""
        return Finding(f"NO ANSWER ({reason}){hint}", ok=False)


def model_notes(models: list[str], today: dt.date) -> list[str]:
    """Deprecated or shut-down models by the registry; a note instead when the registry isn't available."""
    try:
        from ..tokens import _models as registry  # written alongside; the rest of the doctor works without it
    except ImportError:
        return ["model registry not available: retirement dates not checked"]
    notes: list[str] = []
    for name in models:
        entry = registry.lookup(name)
        if entry is None:
            notes.append(f"{name}: not in the model registry (no retirement date known)")
            continue
        warning = registry.shutdown_warning(name, today)
        if warning:
            notes.append(warning)
        elif entry.deprecated is not None and entry.deprecated <= today:
            notes.append(f"{name} was deprecated by OpenAI on {entry.deprecated.isoformat()}")
    return notes


def describe(evs: list[Eval], online: bool, today: dt.date, local_url: str | None = None) -> tuple[str, bool]:
    """The report, and whether every key needed is set and every endpoint contacted answered."""
    lines: list[str] = []
    ok = True
    probed: dict[str, Finding] = {}  # evals often share an endpoint: ask it once
    for ev in evs:
        lines.append(f"eval {ev.name} ({os.path.relpath(ev.path)})")
        endpoints: dict[Endpoint, list[str]] = {}
        for variant in ev.variants:
            endpoints.setdefault(variant.endpoint, []).append(variant.name)
        for endpoint, variants in endpoints.items():
            url = base_url(endpoint, local_url)
            which = "" if len(endpoints) == 1 else f" [variants {', '.join(variants)}]"
            if url not in probed:
                probed[url] = probe(endpoint, online, url)
            profile = f" (profile {endpoint.profile})" if endpoint.profile else ""
            key = key_status(endpoint)
            lines.append(f"  endpoint {endpoint.kind} {url}{profile}{which}")
            lines.append(f"    key:    {key.text}")
            lines.append(f"    server: {probed[url].text}")
            ok = ok and key.ok and probed[url].ok
        notes = model_notes(sorted({run.model for run in ev.runs}), today)
        lines += [f"  model: {note}" for note in notes] or ["  models: none deprecated or retired"]
    return "\n".join(lines), ok
