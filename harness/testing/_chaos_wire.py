"""What the chaos server reads and writes on the wire: HTTP/1.1 requests and responses, and the canned
``chat.completion`` answer as one JSON body or as SSE chunks.

Kept apart from the server (``harness.testing.chaos``) so that the server reads as its faults and decisions; the
framing here is the minimum a keep-alive OpenAI client needs, nothing more.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests"}
REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}
ANSWER = '{"joke": "I told my computer a joke about UDP. I am not sure it got it."}'


def completion(n: int, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-chaos-{n}",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 18, "total_tokens": 38},
    }


def _chunk(n: int, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": f"chatcmpl-chaos-{n}",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def stream_events(n: int, model: str) -> list[bytes]:
    """The answer as SSE events, a word each, then a final chunk with ``usage`` and ``[DONE]``."""
    words = ANSWER.split(" ")
    events = [_chunk(n, model, {"role": "assistant", "content": ""})]
    events += [_chunk(n, model, {"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    final = json.loads(_chunk(n, model, {}, "stop")[6:])
    final["usage"] = completion(n, model)["usage"]
    return [*events, f"data: {json.dumps(final)}\n\n".encode(), b"data: [DONE]\n\n"]


class Request:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None  # the client closed the connection between requests (or sent garbage): end it quietly
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    try:
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return None
    return Request(method, path.split("?", 1)[0], headers, body)


def response(status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", "content-type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"content-length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
