"""One base_url for every local model: a loopback HTTP router that forwards each request to its model's server.

The model is the ``model`` of the JSON body (Chat Completions and the like); each model's llama.cpp server is
started by the ``start`` callable on the first request that names it, or up front by ``load``. Answers, streamed
ones included, are passed through as they arrive.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import LocalServerError

_PASSED_HEADERS = ("content-type", "accept", "authorization")
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class Router:
    def __init__(self, aliases: list[str], start: Callable[[str], object]) -> None:
        self.aliases = list(aliases)
        self._start = start
        self._servers: dict[str, object] = {}
        self._locks = {alias: threading.Lock() for alias in aliases}
        self._http: ThreadingHTTPServer | None = None

    def load(self, alias: str) -> str:
        """The address (``http://127.0.0.1:<port>``) of the model's own server, started on first use."""
        with self._locks[alias]:
            if alias not in self._servers:
                self._servers[alias] = self._start(alias)
            return str(getattr(self._servers[alias], "listening_address"))  # noqa: B009 (xllamacpp.Server is untyped)

    def start(self, port: int) -> str:
        """Listen on 127.0.0.1:``port`` (0: any free port) in a daemon thread; returns the base_url."""
        router = self

        class Handler(_Handler):
            owner = router

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="promptvcr-router", daemon=True).start()
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self._servers.clear()


class _Handler(BaseHTTPRequestHandler):
    owner: Router
    protocol_version = "HTTP/1.1"  # keep-alive for the SDK's pooled connections

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would drown the llama.cpp log the recording run keeps."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/health", "/v1/health"):
            self._json(200, {"status": "ok", "models": self.owner.aliases})
        elif path in ("/models", "/v1/models"):
            self._json(200, {"object": "list", "data": [{"id": a, "object": "model"} for a in self.owner.aliases]})
        else:
            self._json(404, _error(f"no such path {path!r} (the router answers POST requests naming a model)"))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            model = json.loads(body).get("model")
        except (ValueError, AttributeError):
            model = None
        if model not in self.owner.aliases:
            served = ", ".join(self.owner.aliases)
            self._json(404, _error(f"model {model!r} is not served here (served: {served})", "model_not_found"))
            return
        try:
            address = self.owner.load(model)
        except LocalServerError as exc:
            self._json(503, _error(str(exc), "model_not_installed"))
            return
        self._forward(address, body)

    def _forward(self, address: str, body: bytes) -> None:
        target = urllib.parse.urlsplit(address)
        upstream = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=None)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() in _PASSED_HEADERS}
            upstream.request("POST", self.path, body, headers)
            reply = upstream.getresponse()
            streamed = reply.getheader("Content-Length") is None
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in _HOP_HEADERS:
                    self.send_header(key, value)
            if streamed:  # server-sent events: passed on as they come, the end marked by closing
                self.send_header("Connection", "close")
                self.end_headers()
                while chunk := reply.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                self.close_connection = True
            else:
                data = reply.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        finally:
            upstream.close()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _error(message: str, code: str = "not_found") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
