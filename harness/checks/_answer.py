"""What a check looks at and what it says: the answer, a check's result, and the error for an unusable argument.

Also the few rules about JSON values every check shares: a JSON pointer's lookup, JSON equality, a value's short text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._slotted import filled_by_slot

JSONDoc = Any
_NOT_JSON = object()


@filled_by_slot  # one for each check of every sample (harness._slotted)
@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check's verdict on one answer. ``score`` (0 to 1, optional) is what a graded check measured: the reason
    says it, and ``passed`` decides."""

    name: str
    passed: bool
    reason: str = ""
    score: float | None = None


class CheckArgError(ValueError):
    """A check's argument is unusable; ``pointer`` is relative to the check's value."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.pointer = pointer


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an answer: the tool's name and its arguments as the model wrote them — JSON text for a
    function, free text (the ``input``) for a custom tool."""

    name: str
    arguments: str
    id: str | None = None
    parsed: JSONDoc = field(default=_NOT_JSON)  # a function's arguments as JSON, when they parse
    error: str | None = None  # why they do not
    custom: bool = False  # a custom tool's call: its input is text, not JSON

    @classmethod
    def parse(cls, raw: Any) -> ToolCall:
        """A call from the API's ``tool_calls`` item (or the legacy ``function_call``, which has no id)."""
        raw = raw if isinstance(raw, Mapping) else {}
        call_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        custom = raw.get("type") == "custom"
        inner = raw.get("custom" if custom else "function", raw if "name" in raw else {})
        inner = inner if isinstance(inner, Mapping) else {}
        text = inner.get("input" if custom else "arguments")
        name, text = str(inner.get("name") or ""), text if isinstance(text, str) else ""
        if custom:
            return cls(name, text, call_id, custom=True)
        try:
            return cls(name, text, call_id, json.loads(text))
        except json.JSONDecodeError as exc:
            return cls(name, text, call_id, error=f"{exc.msg} at line {exc.lineno} column {exc.colno}")
        except RecursionError:
            return cls(name, text, call_id, error="nested deeper than can be read")

    @property
    def valid_json(self) -> bool:
        return self.parsed is not _NOT_JSON


@filled_by_slot  # one for every sample (harness._slotted)
@dataclass(frozen=True, slots=True)
class Answer:
    """What the checks look at: the first choice's text, its parsed JSON (if any), why it stopped, the model's
    refusal text when it refused (``message.refusal``: then there is no content, and never valid JSON), and the tool
    calls it made (``message.tool_calls``, in order)."""

    content: str
    finish_reason: str | None
    parsed: JSONDoc = field(default=_NOT_JSON)
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def is_json(self) -> bool:
        return self.parsed is not _NOT_JSON

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> Answer:
        choices = response.get("choices") or [{}]
        choice = choices[0] if _is_mapping(choices[0]) else {}
        message = choice.get("message") or {}
        message = message if _is_mapping(message) else {}
        content, refusal = message.get("content"), message.get("refusal")
        text = content if isinstance(content, str) else ""
        raw_calls = message.get("tool_calls")
        calls = [ToolCall.parse(c) for c in raw_calls] if isinstance(raw_calls, list) else []
        if isinstance(message.get("function_call"), Mapping):
            calls.append(ToolCall.parse(message["function_call"]))
        if isinstance(refusal, str) and refusal:
            return cls(text, choice.get("finish_reason"), _NOT_JSON, refusal, tuple(calls))
        return cls(text, choice.get("finish_reason"), _json_of(text), None, tuple(calls))

    @classmethod
    def parse(cls, text: str, finish_reason: str | None) -> Answer:
        return cls(text, finish_reason, _json_of(text))


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # a dict (JSON's) without the ABC's Python-level check


def _json_of(text: str) -> JSONDoc:
    try:
        parsed: JSONDoc = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack, from a server
        return _NOT_JSON
    return parsed


def at_pointer(doc: JSONDoc, path: str) -> tuple[bool, Any]:
    """(found, value) at the RFC 6901 pointer ``path`` in ``doc`` ("" is the whole document)."""
    node = doc
    for raw in path.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


def same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, false is not 0 (Python's == says they are); 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float))) and a == b


def short(value: Any, limit: int = 60) -> str:
    """JSON text of ``value``, cut to ``limit``: the string "42" and the number 42 read differently."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
