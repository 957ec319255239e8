"""Streamed answers (``stream: true``): the SSE chunks assembled into the ``chat.completion`` a non-streamed request
gets, and the stream's timing. Pure functions: the SDK's ``Stream`` yields the chunks (``harness.run._client``), the
transport measures when the bytes arrived (``harness.record._transport``); nothing here sends or reads a socket.

The assembled answer has the shape of a non-streamed one (``choices[i].message`` with ``content``, ``refusal``,
``tool_calls``; ``finish_reason``; ``usage`` from the final usage chunk), so every check reads both alike. A stream
without a usage chunk gets its tokens counted from the assembled message (``harness.tokens._cost.counted_usage``, the
one rule of a streamed answer's usage), marked estimated. What a complete stream must have is checked here; a stream
that lacks it is a ``StreamError`` (the sample's ``bad_response``), never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..tokens import _cost as cost

DONE = "[DONE]"
_TOKEN_FIELDS = ("content", "refusal", "tool_calls", "function_call")  # a delta carrying any of these is output


class StreamError(ValueError):
    """The stream is not a complete chat-completion stream; the message says what is wrong with it."""


def assembled(chunks: Sequence[Any], done: bool, request: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The ``chat.completion`` the chunks make, and whether its ``usage`` was counted here (no usage chunk came).

    ``done``: the stream ended with ``data: [DONE]`` (without it the stream was cut short). Raises StreamError."""
    if not chunks:
        raise StreamError("the stream has no `data:` chunks (not a server-sent event stream)")
    if not done:
        raise StreamError(f"the stream ended without `data: {DONE}` after {len(chunks)} chunk(s): it was cut short")
    choices: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] | None = None
    for number, chunk in enumerate(chunks, 1):
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices", []), list):
            raise StreamError(f"chunk {number} is not a chat.completion.chunk: {json.dumps(chunk)[:200]}")
        for choice in chunk.get("choices") or []:
            _add_choice(choices, choice, number)
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
    if not choices:
        raise StreamError(f"no choices in the stream's {len(chunks)} chunk(s)")
    first = chunks[0]  # every chunk is a dict: checked above
    response: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": next((c["model"] for c in chunks if c.get("model")), None),
        "choices": [_message(i, choices[i]) for i in sorted(choices)],
    }
    asked = bool((request.get("stream_options") or {}).get("include_usage"))
    if usage is None and asked:
        raise StreamError("stream_options.include_usage asked for a final usage chunk; the stream had none")
    if usage is not None:
        return response | {"usage": usage}, False
    counted = cost.counted_usage([choice["message"] for choice in response["choices"]], request)
    return response | ({"usage": counted} if counted else {}), True


def from_text(sse: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer a recorded stream's text assembles into, read without the SDK (for `promptvcr status`, which looks
    at recordings without playing them); None for what a replay would make an errored sample."""
    events = sse.replace("\r\n", "\n").split("\n\n")[:-1]  # an event is one once a blank line ends it
    datas = [line[5:].strip() for event in events for line in event.split("\n") if line.startswith("data:")]
    try:
        chunks = [json.loads(data) for data in datas if data != DONE]
        if any(isinstance(c, dict) and c.get("error") for c in chunks):
            return None  # an error event: the SDK raises it
        return assembled(chunks, DONE in datas, request)[0]
    except ValueError:
        return None


def _add_choice(choices: dict[int, dict[str, Any]], choice: Any, number: int) -> None:
    delta = choice.get("delta") if isinstance(choice, dict) else None
    if not isinstance(delta, dict) or not isinstance(choice.get("index", 0), int):
        raise StreamError(f"chunk {number}: a choice without a `delta` object: {json.dumps(choice)[:200]}")
    into = choices.setdefault(choice.get("index", 0), {"content": [], "refusal": [], "tools": {}, "function": {}})
    for field in ("content", "refusal"):
        piece = delta.get(field)
        if piece is not None and not isinstance(piece, str):
            raise StreamError(f"chunk {number}: delta.{field} is {type(piece).__name__}, not a string")
        if piece is not None:
            into[field].append(piece)
    for call in delta.get("tool_calls") or []:
        if not isinstance(call, dict) or not isinstance(call.get("index", 0), int):
            raise StreamError(f"chunk {number}: a tool call delta without an index: {json.dumps(call)[:200]}")
        _merge(into["tools"].setdefault(call.get("index", 0), {}), call)
    if isinstance(delta.get("function_call"), dict):  # the legacy `functions` answer
        _merge(into["function"], delta["function_call"])
    if choice.get("finish_reason") is not None:
        into["finish_reason"] = choice["finish_reason"]


def _merge(into: dict[str, Any], delta: Mapping[str, Any]) -> None:
    """A tool call's delta added to what came before: strings (a function's name, its arguments) are continued, as
    the API streams them; ``id`` and ``type`` are said once."""
    for key, value in delta.items():
        if key == "index":
            continue
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        elif isinstance(value, str) and key not in ("id", "type"):
            into[key] = into.get(key, "") + value
        elif value is not None and key not in into:
            into[key] = value


def _message(index: int, parts: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(parts["content"]) if parts["content"] else None,
        "refusal": "".join(parts["refusal"]) if parts["refusal"] else None,
    }
    if parts["tools"]:
        message["tool_calls"] = [parts["tools"][i] for i in sorted(parts["tools"])]
    if parts["function"]:
        message["function_call"] = parts["function"]
    return {"index": index, "message": message, "finish_reason": parts.get("finish_reason")}


def first_token_ms(arrivals: Iterable[tuple[float, bytes]]) -> float | None:
    """Time to first token: when the piece of body that completed the first event carrying output arrived (its
    milliseconds since the request was sent, as ``arrivals`` gives them). None when no event carried any."""
    pending = b""
    for at, piece in arrivals:
        pending += piece.replace(b"\r\n", b"\n")
        *events, pending = pending.split(b"\n\n")
        if any(_has_token(event) for event in events):
            return at
    return None


def _has_token(event: bytes) -> bool:
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            continue  # not a chunk (e.g. [DONE]); whether the stream is sound is ``assembled``'s to say
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and any(delta.get(f) for f in _TOKEN_FIELDS):
                return True
    return False


def tokens_per_s(completion_tokens: int | None, latency_ms: float | None, ttft_ms: float | None) -> float | None:
    """Output speed after the first token: the other ``completion_tokens - 1`` over the time from the first token to
    the end of the stream. None when it cannot be measured (fewer than 2 tokens, no time between them)."""
    if completion_tokens is None or latency_ms is None or ttft_ms is None or completion_tokens < 2:
        return None
    span_s = (latency_ms - ttft_ms) / 1000
    return round((completion_tokens - 1) / span_s, 1) if span_s > 0 else None
