"""A small OpenAI-compatible server on 127.0.0.1 for the harness's own tests.

It answers /v1/chat/completions from a script (a function of the request), counts what it receives, and can
send any status, header or body — including the secret-bearing headers a real endpoint sends — so tests can
check what reaches a cassette. A reply with ``events`` is streamed as server-sent events, one HTTP chunk each, with
``gap_s`` between them (and, with ``cut``, the connection closed before the body's end). It is test tooling, never a
source of quality numbers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; str/bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    events: list[str] | None = None  # an SSE stream: each event its own chunk, sent as given (see ``streamed``)
    gap_s: float = 0.0  # the wait before each event
    cut: bool = False  # close the connection after the events, without ending the chunked body


def chunk(delta: dict[str, Any], finish_reason: str | None = None, model: str = "fake-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def streamed(
    pieces: list[str],
    *,
    usage: dict[str, int] | None = None,
    finish_reason: str = "stop",
    model: str = "fake-model",
    done: bool = True,
    gap_s: float = 0.0,
) -> Reply:
    """``pieces`` of content as an OpenAI stream: a role chunk, a chunk per piece, the finish chunk, the usage chunk
    (when ``usage`` is given, as ``stream_options.include_usage`` asks) and ``data: [DONE]``."""
    chunks = [chunk({"role": "assistant", "content": ""}, model=model)]
    chunks += [chunk({"content": piece}, model=model) for piece in pieces]
    chunks.append(chunk({}, finish_reason, model=model))
    if usage is not None:
        chunks.append({**chunk({}, model=model), "choices": [], "usage": usage})
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + (["data: [DONE]\n\n"] if done else [])
    return Reply(events=events, gap_s=gap_s, headers={"content-type": "text/event-stream"})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


def completion(
    content: str,
    finish_reason: str = "stop",
    model: str = "fake-model",
    prompt_tokens: int = 12,
    completion_tokens: int = 7,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def cycling(contents: list[str]) -> Callable[[dict[str, Any]], Reply]:
    """Answer each request with the next content of ``contents``, round and round."""
    lock = threading.Lock()
    state = {"i": 0}

    def respond(body: dict[str, Any]) -> Reply:
        with lock:
            content = contents[state["i"] % len(contents)]
            state["i"] += 1
        return Reply(body=completion(content, model=body.get("model", "fake-model")))

    return respond


class FakeOpenAI:
    def __init__(self, respond: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.respond = respond or cycling(['{"ok": true}'])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: don't wait 40 ms between them

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _stream(self, reply: Reply) -> None:
                assert reply.events is not None
                self.send_response(reply.status)
                for name, value in ({"content-type": "text/event-stream"} | reply.headers).items():
                    self.send_header(name, value)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                for event in reply.events:
                    time.sleep(reply.gap_s)
                    data = event.encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                if reply.cut:
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")

            def _send(self, reply: Reply) -> None:
                if reply.events is not None:
                    self._stream(reply)
                    return
                body = reply.body
                data = (
                    body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
                )
                self.send_response(reply.status)
                headers = {"content-type": "application/json"} | reply.headers
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/health", "/v1/models"):
                    self._send(Reply(body={"status": "ok", "data": [{"id": "fake-model", "object": "model"}]}))
                else:
                    self._send(Reply(404, {"error": {"message": "not found"}}))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with server._lock:
                    server.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if not self.path.endswith("/chat/completions"):
                    self._send(Reply(404, {"error": {"message": f"no route {self.path}"}}))
                    return
                self._send(server.respond(body if isinstance(body, dict) else {}))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def chat_requests(self) -> list[Received]:
        return [r for r in self.received if r.path.endswith("/chat/completions")]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(respond: Callable[[dict[str, Any]], Reply] | None = None) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(respond) as server:
        yield server
