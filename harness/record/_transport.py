"""The httpx2 transport of every SDK client: answers from the cassette the sending thread plays, records the rest.

A request is looked up by its JSON body (``harness.record._cassettes``) and answered with the answer its sample got
live, or the next unclaimed one. What the cassette may record is sent to the network and kept — scrubbed of secrets,
masked, with its measured latency and its sample — unless it is a retryable failure (a recorded 429 or 503 would
replay as a failure). In replay there is no network: a request that no recording answers raises ``NoRecording``.

A live call has one wall-clock deadline, the endpoint's ``timeout_s``: httpx2's timeouts bound each read, so a
server that drips its body a byte at a time would never time out. ``network_transport``'s sockets give every
operation of the calling thread what is left of its call's deadline instead: connect, writes, headers and body.
"""

from __future__ import annotations

import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore2
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
from ._secrets import DROP_RESPONSE_HEADERS, KEEP_REQUEST_HEADERS, redact

# httpx2 has decoded the body already; these would describe the bytes on the wire, not the ones we hand on
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
POOL_SIZE = 8  # connections per httpx2 transport of a live client (see ``Network``)
# When the first token of a streamed body came, from its pieces and their arrival (ms since sending), or None
FirstToken = Callable[[list[tuple[float, bytes]]], float | None]


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
        _deadline.at = None if self._timeout_s is None else time.monotonic() + self._timeout_s
        try:
            with self._network.least_busy() as network:
                live = network.handle_request(request)
                try:
                    content, ttft = self._read(live, start)
                finally:
                    live.close()
        finally:
            _deadline.at = None
        latency = f"{(time.perf_counter() - start) * 1000:.1f}"  # stored, so a replay reports what this run saw
        headers = [(k, v) for k, v in live.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
        headers.append((LATENCY_HEADER, latency))
        if ttft is not None:
            headers.append((TTFT_HEADER, f"{ttft:.1f}"))
        if live.status_code not in TRANSIENT_STATUSES:
            record_answer(cassette, key, sample, request, (live.status_code, live.reason_phrase, headers, content))
        return httpx2.Response(live.status_code, headers=headers, content=content, request=request)

    def _read(self, live: httpx2.Response, start: float) -> tuple[bytes, float | None]:
        """The body, and for a server-sent event stream its time to first token (each piece timed as it arrives)."""
        streamed = live.headers.get("content-type", "").startswith("text/event-stream")
        if self._first_token is None or not streamed:
            return live.read(), None
        arrivals = [((time.perf_counter() - start) * 1000, piece) for piece in live.iter_bytes()]
        return b"".join(piece for _, piece in arrivals), self._first_token(arrivals)

    def close(self) -> None:
        if self._network is not None:
            self._network.close()


def _replayed(answer: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
    body = answer["body"].get("string") or b""
    headers = [(k, v) for k, values in answer["headers"].items() for v in values if k.lower() not in _WIRE_HEADERS]
    headers.append((REPLAYED_HEADER, "1"))
    content = body.encode("utf-8") if isinstance(body, str) else body
    return httpx2.Response(answer["status"]["code"], headers=headers, content=content, request=request)


Answer = tuple[int, str, list[tuple[str, str]], bytes]  # status, reason, headers, body


def record_answer(cassette: Cassette, key: str, sample: int | None, request: httpx2.Request, answer: Answer) -> None:
    """Keep an answer to ``request`` in ``cassette`` as every answer is kept — scrubbed of secrets, masked, for its
    sample: the network's here, the Batch API's in harness.run._batch."""
    body = request.read()
    cassette.record(key, sample, _stored_request(cassette, request, body), _stored_response(cassette, answer))


def _stored_request(cassette: Cassette, request: httpx2.Request, body: bytes) -> dict[str, Any]:
    headers = {k: [v] for k, v in request.headers.items() if k.lower() in KEEP_REQUEST_HEADERS}
    return {
        "body": cassette.scrubbed(body),
        "headers": headers,
        "method": request.method,
        "uri": redact(str(request.url)),
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


class Network:
    """A live client's connections, split over httpx2 transports of ``POOL_SIZE`` each: httpcore's pool scans all
    of its connections for every request, under one lock that every sending thread takes (one pool of 50: a quarter
    of the sending threads' time holding the GIL; pools of 8: 2%). A request goes to the least busy transport,
    which has a free connection while the endpoint's slots are its only limit."""

    def __init__(self, connections: int) -> None:
        shards = math.ceil(max(1, connections) / POOL_SIZE)
        each = math.ceil(max(1, connections) / shards)
        limits = httpx2.Limits(max_connections=each, max_keepalive_connections=each)
        tls = httpx2.create_ssl_context(trust_env=False)  # one for all: loading the CA bundle costs ~30 ms each
        self._transports = [_network_transport(limits, tls) for _ in range(shards)]
        self._busy = [0] * shards
        self._lock = threading.Lock()

    @contextmanager
    def least_busy(self) -> Iterator[httpx2.HTTPTransport]:
        with self._lock:
            index = self._busy.index(min(self._busy))
            self._busy[index] += 1
        try:
            yield self._transports[index]
        finally:
            with self._lock:
                self._busy[index] -= 1

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


def _network_transport(limits: httpx2.Limits, tls: ssl.SSLContext) -> httpx2.HTTPTransport:
    """httpx2's transport, whose sockets keep to the deadline of the calling thread's call (see the module doc)."""
    transport = httpx2.HTTPTransport(verify=tls, limits=limits, trust_env=False)
    # httpx2 takes no network backend of its own: the pool it made (with no connection yet) gets ours
    transport._pool._network_backend = _DeadlineBackend()
    return transport


_deadline = threading.local()  # .at: the monotonic time the calling thread's call must end by, or None


def _within(timeout: float | None, error: type[Exception]) -> float | None:
    """The socket timeout for one operation: ``timeout``, cut to what is left of the call's deadline."""
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the whole call took longer than the endpoint's timeout_s")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _within(timeout, httpcore2.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        within = _within(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, within, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        within = _within(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, within, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
