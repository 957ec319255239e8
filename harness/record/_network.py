"""The network of a live client: HTTP/1.1 over the standard library's ``http.client``, with kept-alive connections
and one wall-clock deadline a call.

Why not httpx2's own transport: 1,000 calls of 200 ms at concurrency 50 cost it 0.6 ms of CPU a call (h11's parsing,
httpcore's pool), ``http.client`` 0.25 ms, side by side against the same server (issue 14). Failures are raised as
the httpx2 exceptions the SDK classifies — ``ConnectError`` (nothing listens there), the ``*Timeout``s, the other
``TransportError``s — so a row reads the same whichever path sent its request (``harness.run._client``).

httpx2's timeouts bound each read, so a server that drips its body a byte at a time would never time out. Here every
operation of a call — connect, TLS handshake, each write and each read — gets what is left of the call's deadline
(the endpoint's ``timeout_s``) as its socket timeout.
"""

from __future__ import annotations

import codecs
import email.message
import functools
import http.client
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

# What a request may get its answer compressed with: what the decoder below reads (httpx2 sends the same).
ACCEPT_ENCODING = "gzip, deflate"
PIECE_BYTES = 65536
KEEPALIVE_S = 5.0  # how long a connection is kept idle (httpx2's keepalive_expiry): older ones may be dropped
Origin = tuple[str, str, int]  # scheme, host, port


@dataclass(frozen=True)
class Reply:
    """A response as it came: the status line, the headers (names lowercased, as httpx2 gives them) and the body's
    pieces, decoded, with when each arrived (ms since the request was sent)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    arrivals: list[tuple[float, bytes]]


class _Deadline:
    """A socket whose every read and write first takes what is left of its call's deadline as its timeout."""

    deadline: float | None = None  # monotonic; None between calls (an idle connection)

    def _left(self) -> None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the whole call took longer than the endpoint's timeout_s")
            self.settimeout(left)  # type: ignore[attr-defined]  # mixed into sockets only

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._left()
        read: int = super().recv_into(buffer, nbytes, flags)  # type: ignore[misc]  # the socket's, next in the MRO
        return read

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._left()
        super().sendall(data, flags)  # type: ignore[misc]  # likewise


class _Socket(_Deadline, socket.socket):
    pass


class _TLSSocket(_Deadline, ssl.SSLSocket):  # type: ignore[misc]  # recv_into's nbytes: None there, 0 here
    pass


class Network:
    """Kept-alive connections by origin, shared by the threads; at most ``idle`` of them kept between calls. TLS
    checks certificates as httpx2 does (its context, made on first use: loading the CA bundle costs ~30 ms), or
    with ``tls``."""

    def __init__(self, idle: int, tls: ssl.SSLContext | None = None) -> None:
        self._idle_max = max(1, idle)
        self._tls = tls
        if tls is not None:
            tls.sslsocket_class = _TLSSocket
        self._idle: dict[Origin, list[tuple[_Deadline, float]]] = {}  # and since when, monotonic
        self._lock = threading.Lock()

    def send(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, deadline: float | None) -> Reply:
        """One request, its whole answer read; raises httpx2's ``TransportError``s."""
        origin, target = _split(url)
        start = time.perf_counter()
        sock = self._take(origin, deadline)
        try:
            reply, reusable = _exchange(sock, _head(method, target, headers, len(body)) + body, method, start)
        except BaseException:
            _close(sock)
            raise
        sock.deadline = None
        if reusable:
            self._give_back(origin, sock)
        else:
            _close(sock)
        return reply

    def _take(self, origin: Origin, deadline: float | None) -> _Deadline:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                sock, since = idle.pop() if idle else (None, 0.0)
            if sock is None:
                return self._opened(origin, deadline)
            if time.monotonic() - since < KEEPALIVE_S and _alive(sock):
                sock.deadline = deadline
                return sock
            _close(sock)

    def _opened(self, origin: Origin, deadline: float | None) -> _Deadline:
        scheme, host, port = origin
        sock = _connected(host, port, deadline)
        if scheme != "https":
            return sock
        try:
            if self._tls is None:
                self._tls = httpx2.create_ssl_context(trust_env=False)
                self._tls.sslsocket_class = _TLSSocket
            tls = self._tls.wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError) as exc:  # ssl.SSLError and a certificate that does not match are OSErrors
            _close(sock)
            raise (httpx2.ConnectTimeout if isinstance(exc, TimeoutError) else httpx2.ConnectError)(str(exc)) from exc
        assert isinstance(tls, _TLSSocket)  # the context's sslsocket_class (``tls_context``)
        tls.deadline = deadline
        return tls

    def _give_back(self, origin: Origin, sock: _Deadline) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self._idle_max:
                idle.append((sock, time.monotonic()))
                return
        _close(sock)

    def close(self) -> None:
        with self._lock:
            socks = [s for idle in self._idle.values() for s, _ in idle]
            self._idle.clear()
        for sock in socks:
            _close(sock)


@functools.lru_cache(maxsize=256)
def _split(url: str) -> tuple[Origin, str]:
    parsed = httpx2.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    target = parsed.raw_path.decode("ascii")
    return (parsed.scheme, parsed.host, port), target


def _head(method: str, target: str, headers: list[tuple[str, str]], length: int) -> bytes:
    """The request line and headers (httpx2 checked them when it made the SDK's request: no line breaks)."""
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers if k not in ("content-length", "accept-encoding")]
    lines += [f"accept-encoding: {ACCEPT_ENCODING}", f"content-length: {length}", "", ""]
    return "\r\n".join(lines).encode()


def _connected(host: str, port: int, deadline: float | None) -> _Socket:
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        plain = socket.create_connection((host, port), timeout)
    except TimeoutError as exc:
        raise httpx2.ConnectTimeout(str(exc)) from exc
    except OSError as exc:  # refused, no such host: nothing to send anything else to
        raise httpx2.ConnectError(str(exc)) from exc
    plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = _Socket(plain.family, plain.type, plain.proto, plain.detach())
    sock.settimeout(timeout)
    sock.deadline = deadline
    return sock


def _close(sock: _Deadline) -> None:
    sock.close()  # type: ignore[attr-defined]  # mixed into sockets only


def _alive(sock: _Deadline) -> bool:
    """Whether an idle connection can carry a request: readable while idle means the server closed it."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)  # type: ignore[arg-type]  # a socket
    return not poll.poll(0)


def _exchange(sock: _Deadline, request: bytes, method: str, start: float) -> tuple[Reply, bool]:
    """The request sent and its answer read (``http.client`` parses it); whether the connection can carry another."""
    with _raised(httpx2.WriteTimeout, httpx2.WriteError):
        sock.sendall(request)
    with _raised(httpx2.ReadTimeout, httpx2.ReadError):
        response = http.client.HTTPResponse(sock, method=method)  # type: ignore[arg-type]  # a socket
        response.begin()
        decode = _decoder(response.getheader("content-encoding"))
        arrivals = []
        while piece := response.read1(PIECE_BYTES):
            arrivals.append(((time.perf_counter() - start) * 1000, decode(piece)))
        response.close()  # read to its end: http.client only marks a body of known length read when asked
        tail = decode(b"", True)
        if tail:
            arrivals.append(((time.perf_counter() - start) * 1000, tail))
    reason = response.reason.encode("latin-1").decode("ascii", "ignore")  # as httpx2 reads it
    reply = Reply(response.status, reason, _header_list(response.getheaders()), arrivals)
    return reply, not response.will_close


class _raised:
    """Socket and HTTP failures inside, raised as httpx2's: ``timeout`` for a timeout, ``error`` (or a protocol
    error, for what is not HTTP) for the rest."""

    def __init__(self, timeout: type[httpx2.TransportError], error: type[httpx2.TransportError]) -> None:
        self._timeout, self._error = timeout, error

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, httpx2.TransportError):
            return
        if isinstance(exc, TimeoutError):
            raise self._timeout(str(exc)) from exc
        if isinstance(exc, http.client.HTTPException):  # not HTTP, or cut short: e.g. a body shorter than said
            raise httpx2.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
        if isinstance(exc, (OSError, zlib.error)):
            raise self._error(str(exc) or type(exc).__name__) from exc


def _decoder(encoding: str | None) -> Callable[..., bytes]:
    """``decode(piece, last=False)``: the body's bytes with its content-encoding undone (as httpx2 does)."""
    name = (encoding or "").strip().lower()
    if name in ("", "identity"):
        return lambda piece, last=False: piece
    if name not in ("gzip", "deflate"):
        raise httpx2.DecodingError(f"unsupported content-encoding {encoding!r}")
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS)
    raw_deflate: list[bool] = []  # a deflate body without its zlib header (sent by some servers), once seen

    def decode(piece: bytes, last: bool = False) -> bytes:
        nonlocal inflate
        if last:
            return inflate.flush()
        try:
            return inflate.decompress(piece)
        except zlib.error:
            if name != "deflate" or raw_deflate:
                raise
            raw_deflate.append(True)
            inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            return inflate.decompress(piece)

    return decode


def _header_list(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header names lowercased, values without the white space around them (h11 strips it, ``http.client`` keeps
    what trails) and decoded as httpx2 decodes them: ASCII, else UTF-8, else Latin-1 (``http.client`` reads Latin-1)."""
    pairs = [(k.lower(), v.strip(" \t")) for k, v in raw]
    if all(k.isascii() and v.isascii() for k, v in pairs):
        return pairs
    try:
        return [(k.encode("latin-1").decode(), v.encode("latin-1").decode()) for k, v in pairs]
    except UnicodeDecodeError:
        return pairs


def charset(content_type: str | None) -> str:
    """The charset a body's text is read in, as httpx2 reads it: the content type's, else UTF-8."""
    if not content_type or "charset" not in content_type.lower():
        return "utf-8"
    message = email.message.Message()
    message["content-type"] = content_type
    name = message.get_content_charset(failobj=None)
    try:
        return "utf-8" if name is None else codecs.lookup(name).name
    except LookupError:
        return "utf-8"
