"""What a check looks at and what it says: the answer, a check's result, and the error for an unusable argument."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSONDoc = Any
_NOT_JSON = object()


@dataclass(frozen=True)
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
class Answer:
    """What the checks look at: the first choice's text, its parsed JSON (if any), why it stopped, and the model's
    refusal text when it refused (``message.refusal``: then there is no content, and never valid JSON)."""

    content: str
    finish_reason: str | None
    parsed: JSONDoc = field(default=_NOT_JSON)
    refusal: str | None = None

    @property
    def is_json(self) -> bool:
        return self.parsed is not _NOT_JSON

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> Answer:
        choices = response.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], Mapping) else {}
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, Mapping) else None
        refusal = message.get("refusal") if isinstance(message, Mapping) else None
        text = content if isinstance(content, str) else ""
        if isinstance(refusal, str) and refusal:
            return cls(text, choice.get("finish_reason"), _NOT_JSON, refusal)
        return cls.parse(text, choice.get("finish_reason"))

    @classmethod
    def parse(cls, text: str, finish_reason: str | None) -> Answer:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack, from a server
            parsed = _NOT_JSON
        return cls(text, finish_reason, parsed)
