"""The httpx2 transport of every SDK client: answers from the cassette the sending thread plays, records the rest.

A request is looked up by its JSON body (``harness.cassettes``) and answered with the answer its sample got live,
or the next unclaimed one. What the cassette may record is sent to the network and kept — scrubbed of secrets,
masked, with its measured latency and its sample — unless it is a retryable failure (a recorded 429 or 503 would
replay as a failure). In replay there is no network: a request that no recording answers raises ``NoRecording``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2

from .cassettes import LATENCY_HEADER, REPLAYED_HEADER, RETRYABLE, Cassette, NoRecording, current
from .secrets import DROP_RESPONSE_HEADERS, KEEP_REQUEST_HEADERS, redact

# httpx2 has decoded the body already; these would describe the bytes on the wire, not the ones we hand on
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Transport(httpx2.BaseTransport):
    """Answers from the cassette that the sending thread plays; what it may record goes to ``network`` first.

    In replay there is no network: a request that no recording answers raises ``NoRecording``, nothing is sent.
    """

    def __init__(self, network: httpx2.BaseTransport | None) -> None:
        self._network = network

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        cassette, sample = current()
        body = request.read()
        key = cassette.key_of(body)
        answer = cassette.play(key, sample)
        if answer is not None:
            return _replayed(answer, request)
        if not cassette.records or self._network is None:
            raise NoRecording(cassette.path)
        start = time.perf_counter()
        live = self._network.handle_request(request)
        try:
            content = live.read()
        finally:
            live.close()
        latency = f"{(time.perf_counter() - start) * 1000:.1f}"  # stored, so a replay reports what this run saw
        headers = [(k, v) for k, v in live.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
        headers.append((LATENCY_HEADER, latency))
        if live.status_code not in RETRYABLE:  # a recorded 429 or 503 would replay as a failure
            stored = _stored_request(cassette, request, body), _stored_response(cassette, live, headers, content)
            cassette.record(key, sample, *stored)
        return httpx2.Response(live.status_code, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._network is not None:
            self._network.close()


def _replayed(answer: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
    body = answer["body"].get("string") or b""
    headers = [(k, v) for k, values in answer["headers"].items() for v in values if k.lower() not in _WIRE_HEADERS]
    headers.append((REPLAYED_HEADER, "1"))
    content = body.encode("utf-8") if isinstance(body, str) else body
    return httpx2.Response(answer["status"]["code"], headers=headers, content=content, request=request)


def _stored_request(cassette: Cassette, request: httpx2.Request, body: bytes) -> dict[str, Any]:
    headers = {k: [v] for k, v in request.headers.items() if k.lower() in KEEP_REQUEST_HEADERS}
    return {
        "body": cassette.scrubbed(body),
        "headers": headers,
        "method": request.method,
        "uri": redact(str(request.url)),
    }


def _stored_response(
    cassette: Cassette, live: httpx2.Response, headers: list[tuple[str, str]], content: bytes
) -> dict[str, Any]:
    kept: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() not in DROP_RESPONSE_HEADERS:  # any other header may still echo a key (a proxy's)
            kept.setdefault(name, []).append(redact(value))
    # the body too: e.g. a proxy's 401 that echoes the key in full
    return {
        "body": {"string": cassette.scrubbed(content)},
        "headers": kept,
        "status": {"code": live.status_code, "message": live.reason_phrase},
    }
