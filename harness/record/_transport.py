"""The transport of every SDK client, and of the runner's own requests: answers from the cassette the sending thread
plays, records the rest.

A request is looked up by its JSON body (``harness.record._cassettes``) and answered with the answer its sample got
live, or the next unclaimed one. What the cassette may record is sent to the network (``harness.record._network``)
and kept — scrubbed of secrets, masked, with its measured latency and its sample — unless it is a retryable failure
(a recorded 429 or 503 would replay as a failure). In replay there is no network: a request that no recording
answers raises ``NoRecording``.

``Transport.exchange`` is the whole of it, on plain values: ``handle_request`` (the SDK's way in) wraps it in httpx2's
request and response, and ``harness.run._client`` calls it directly for what it sends past the SDK, with the method,
URL and headers of the SDK's first request (``template``), so that both send and record the very same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from ._cassettes import (
    LATENCY_HEADER,
    REPLAYED_HEADER,
    TRANSIENT_STATUSES,
    TTFT_HEADER,
    Cassette,
    NoRecording,
    current,
)
from ._network import Network as Network
from ._secrets import DROP_RESPONSE_HEADERS, KEEP_REQUEST_HEADERS, redact

# the body is decoded already; these would describe the bytes on the wire, not the ones we hand on
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
# When the first token of a streamed body came, from its pieces and their arrival (ms since sending), or None
FirstToken = Callable[[list[tuple[float, bytes]]], float | None]
Headers = list[tuple[str, str]]  # names lowercased, as httpx2's ``multi_items`` gives them
Answer = tuple[int, str, Headers, bytes]  # status, reason, headers, body


@dataclass(frozen=True)
class Template:
    """What the SDK sends a chat request with, all but the body: learnt from its first request (``Transport``)."""

    method: str
    url: str
    headers: Headers  # without content-length: the body's own

    def request(self, body: bytes) -> httpx2.Request:
        """The request as httpx2's, e.g. for the SDK's errors, which hold the request they are about."""
        return httpx2.Request(self.method, self.url, headers=self.headers, content=body)


class Transport(httpx2.BaseTransport):
    """Answers from the cassette that the sending thread plays; what it may record goes to ``network`` first.

    In replay there is no network: a request that no recording answers raises ``NoRecording``, nothing is sent.
    """

    def __init__(
        self,
        network: Network | None,
        timeout_s: float | None = None,
        first_token: FirstToken | None = None,
    ) -> None:
        self._network = network
        self._timeout_s = timeout_s
        self._first_token = first_token  # given by the run layer, which knows what a token is in a stream
        self.template: Template | None = None  # the SDK's first chat request's, once it was sent

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        headers = request.headers.multi_items()
        if self.template is None and request.method == "POST" and request.url.path.endswith("/chat/completions"):
            self.template = Template(request.method, str(request.url), [h for h in headers if h[0] != "content-length"])
        status, _, kept, content = self.exchange(request.method, str(request.url), headers, request.read())
        return httpx2.Response(status, headers=kept, content=content, request=request)

    def exchange(self, method: str, url: str, headers: Headers, body: bytes) -> Answer:
        """The answer to a request: the cassette's (marked replayed), else the network's, recorded unless transient.
        Raises ``NoRecording``, or httpx2's ``RequestError``s for what the network did."""
        cassette, sample = current()
        key = cassette.key_of(body)
        answer = cassette.play(key, sample)
        if answer is not None:
            return _replayed(answer)
        if not cassette.records or self._network is None:
            raise NoRecording(cassette.path)
        start = time.perf_counter()
        deadline = None if self._timeout_s is None else time.monotonic() + self._timeout_s
        reply = self._network.send(method, url, headers, body, deadline)
        content = b"".join(piece for _, piece in reply.arrivals)
        latency = f"{(time.perf_counter() - start) * 1000:.1f}"  # stored, so a replay reports what this run saw
        kept = [(k, v) for k, v in reply.headers if k not in _WIRE_HEADERS]
        kept.append((LATENCY_HEADER, latency))
        ttft = self._ttft(reply.headers, reply.arrivals)
        if ttft is not None:
            kept.append((TTFT_HEADER, f"{ttft:.1f}"))
        live = (reply.status, reply.reason, kept, content)
        if reply.status not in TRANSIENT_STATUSES:
            _record(cassette, key, sample, (method, url, headers, body), live)
        return live

    def _ttft(self, headers: Headers, arrivals: list[tuple[float, bytes]]) -> float | None:
        """A server-sent event stream's time to first token (each piece was timed as it arrived)."""
        streamed = any(k == "content-type" and v.startswith("text/event-stream") for k, v in headers)
        return self._first_token(arrivals) if self._first_token is not None and streamed else None

    def close(self) -> None:
        if self._network is not None:
            self._network.close()


def _replayed(answer: dict[str, Any]) -> Answer:
    body = answer["body"].get("string") or b""
    headers = [(k.lower(), v) for k, values in answer["headers"].items() for v in values]
    headers = [(k, v) for k, v in headers if k not in _WIRE_HEADERS]
    headers.append((REPLAYED_HEADER, "1"))
    content = body.encode("utf-8") if isinstance(body, str) else body
    return answer["status"]["code"], answer["status"].get("message") or "", headers, content


def record_answer(cassette: Cassette, key: str, sample: int | None, request: httpx2.Request, answer: Answer) -> None:
    """Keep an answer to ``request`` in ``cassette`` as every answer is kept — scrubbed of secrets, masked, for its
    sample: the network's here, the Batch API's in harness.run._batch."""
    sent = (request.method, str(request.url), request.headers.multi_items(), request.read())
    _record(cassette, key, sample, sent, answer)


Sent = tuple[str, str, Headers, bytes]  # method, URL, headers, body


def _record(cassette: Cassette, key: str, sample: int | None, sent: Sent, answer: Answer) -> None:
    cassette.record(key, sample, _stored_request(cassette, sent), _stored_response(cassette, answer))


def _stored_request(cassette: Cassette, sent: Sent) -> dict[str, Any]:
    method, url, headers, body = sent
    return {
        "body": cassette.scrubbed(body),
        "headers": {k: [v] for k, v in headers if k in KEEP_REQUEST_HEADERS},
        "method": method,
        "uri": redact(url),
    }


def _stored_response(cassette: Cassette, answer: Answer) -> dict[str, Any]:
    status, reason, headers, content = answer
    kept: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() not in DROP_RESPONSE_HEADERS:  # any other header may still echo a key (a proxy's)
            kept.setdefault(name, []).append(redact(value))
    # the body too: e.g. a proxy's 401 that echoes the key in full
    return {
        "body": {"string": cassette.scrubbed(content)},
        "headers": kept,
        "status": {"code": status, "message": reason},
    }
