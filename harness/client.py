"""The OpenAI client: endpoint, key, timeouts, retries; one call, classified.

The official SDK does the HTTP. This module knows nothing about YAML or cassettes: it gets a request body and
returns the response JSON, or an error class with the server's own message.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import openai
from vcr.errors import CannotOverwriteExistingCassetteException

from .errors import ConfigError
from .evals import Endpoint
from .secrets import redact

LATENCY_HEADER = "x-promptvcr-latency-ms"
# Placeholder used in replay: recordings never contain a key, so none is needed to replay them.
REPLAY_KEY = "replay-needs-no-key"


@dataclass(frozen=True)
class CallResult:
    response: dict[str, Any] | None
    latency_ms: float | None
    error: str | None = None
    message: str = ""
    unreachable: bool = False  # nothing listens there (refused, DNS): no point sending it anything else


def _refuse_network(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError(f"replay must not reach the network ({request.method} {request.url.path})")


def make_client(endpoint: Endpoint, *, replay: bool, base_url: str | None = None) -> openai.OpenAI:
    """A client for ``endpoint``. In replay its transport refuses to connect: only the cassette answers."""
    if replay:
        return openai.OpenAI(
            api_key=REPLAY_KEY,
            base_url=base_url or endpoint.base_url,
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(_refuse_network)),
        )
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else "local-needs-no-key"
    if not key:
        raise ConfigError(
            f"{endpoint.api_key_env} is not set: export it or put it in .env to record against {endpoint.base_url}"
        )
    return openai.OpenAI(
        api_key=key,
        base_url=base_url or endpoint.base_url,
        timeout=endpoint.timeout_s,
        max_retries=endpoint.max_retries,
    )


def call(client: openai.OpenAI, body: dict[str, Any]) -> CallResult:
    """Send one Chat Completions request; never raises for what the endpoint answers."""
    start = time.perf_counter()
    try:
        raw = client.chat.completions.with_raw_response.create(**body)
    except CannotOverwriteExistingCassetteException:  # vcrpy's "not recorded", raised through the SDK unwrapped
        return CallResult(None, None, "missing_recording", "")
    except openai.APITimeoutError as exc:
        return _failed("timeout", exc, start)
    except openai.APIConnectionError as exc:
        failed = _failed("connection", exc, start)
        return replace(failed, unreachable=isinstance(exc.__cause__, httpx2.ConnectError))
    except openai.RateLimitError as exc:
        return _failed("rate_limited", exc, start)
    except openai.InternalServerError as exc:
        return _failed("server_error", exc, start)
    except openai.APIStatusError as exc:
        return _failed("refused_by_endpoint", exc, start)
    elapsed = _ms_since(start)
    recorded = raw.headers.get(LATENCY_HEADER)
    try:
        response = json.loads(raw.text)
    except ValueError:
        return CallResult(None, elapsed, "bad_response", f"the body is not JSON: {raw.text[:200]!r}")
    if not isinstance(response, dict) or not isinstance(response.get("choices"), list) or not response["choices"]:
        return CallResult(None, elapsed, "bad_response", f"no choices in the answer: {raw.text[:200]!r}")
    return CallResult(response, float(recorded) if recorded else elapsed)


def _ms_since(start: float) -> float:
    # rounded as the cassette stores it, so a replay reports exactly what the recording run did
    return round((time.perf_counter() - start) * 1000, 1)


def _failed(kind: str, exc: openai.OpenAIError, start: float) -> CallResult:
    elapsed = _ms_since(start)
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    return CallResult(None, elapsed, kind, redact(prefix + str(exc)))
