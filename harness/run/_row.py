"""A result row: one sample of one case in one variant, as the runner made it, typed.

Rows are ``Row`` objects everywhere inside promptvcr; they become plain dicts of JSON scalars (``to_dict``) only at
the edges — the results journal (``results*.jsonl``), pytest-xdist's report transport, and the pandas frame that
``results.csv`` and every report are made from — and come back with ``from_dict`` (``from_text`` for results.csv's
cells, as ``promptvcr merge`` reads them). The dict's keys and values are the file formats: ``COLUMNS`` in this
order, enums and ``answered_by`` as their text.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from .._slotted import filled_by_slot
from ._remedy import Remedy


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERRORED = "errored"
    SKIPPED = "skipped"  # errored for want of a recording, in an eval whose missing_recordings is `skip`

    @property
    def answered(self) -> bool:
        """The endpoint answered and the checks judged it (what --resume keeps, what quality rates count)."""
        return self in (Outcome.PASSED, Outcome.FAILED)


class ErrorKind(StrEnum):
    """Why a sample has no answer. Each rule about kinds is one property here."""

    RATE_LIMITED = "rate_limited"  # 429
    SERVER_ERROR = "server_error"  # 5xx
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused, DNS, reset; or no local server
    REFUSED_BY_ENDPOINT = "refused_by_endpoint"  # any other HTTP error status (400, 401, 404 …)
    BAD_RESPONSE = "bad_response"  # a 200 whose body is not a chat completion
    MISSING_RECORDING = "missing_recording"  # replay: no cassette, or no recording matches
    CONFIG = "config"  # no key, an unreadable cassette
    BUDGET = "budget"  # the eval's budget_usd is spent: not sent
    CONTEXT_OVERFLOW = "context_overflow"  # the prompt does not fit the model's context window: not sent
    JUDGE_ERROR = "judge_error"  # the answer came, its judge did not
    BATCH_EXPIRED = "batch_expired"  # --batch: the batch's 24 h window ended before this request ran
    BATCH_CANCELLED = "batch_cancelled"  # --batch: the batch was cancelled before this request ran
    BATCH_FAILED = "batch_failed"  # --batch: the batch (or this line of it) failed without an answer
    INTERNAL = "internal"  # a bug of promptvcr's

    @property
    def retryable(self) -> bool:
        """Sent again (paced, while the endpoint's retry time lasts): the endpoint may answer next time."""
        return self in _RETRYABLE

    @property
    def falls_back(self) -> bool:
        """A failure of the endpoint, not of the prompt: the variant's fallback chain answers for it. A missing
        recording too: in replay, a primary that failed while recording has none (failures are not recorded), while
        its fallback's answer has one."""
        return self in _FALLS_BACK

    @property
    def billable(self) -> bool:
        """The call died in flight, after the endpoint may have run it: its cost is unknown, booked as the worst
        case. The endpoint refused the others (or they were never sent): they cost nothing."""
        return self in _BILLABLE


_RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT, ErrorKind.CONNECTION})
_FALLS_BACK = _RETRYABLE | {ErrorKind.MISSING_RECORDING}
_BILLABLE = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.BAD_RESPONSE})

CACHED = "cached"  # the fallback step that answers with the cassette's last good answer (see eval.schema.json)


@dataclass(frozen=True, slots=True)
class AnsweredBy:
    """Who answered a sample: the variant's own model, a fallback model, or the cassette's last good answer.
    Its text (``primary``, ``fallback:<model>``, ``cached``) is the ``answered_by`` column."""

    kind: Literal["primary", "fallback", "cached"]
    model: str | None = None  # the fallback's

    def __str__(self) -> str:
        return f"fallback:{self.model}" if self.kind == "fallback" else self.kind

    @classmethod
    def parse(cls, text: str) -> AnsweredBy:
        if text.startswith("fallback:"):
            return cls("fallback", text.removeprefix("fallback:"))
        if text in ("primary", CACHED):
            return cls("primary") if text == "primary" else cls("cached")
        raise ValueError(f"answered_by {text!r}: primary, fallback:<model> or cached")

    def model_or(self, primary: str) -> str:
        """The model that answered, ``primary`` being the variant's."""
        return self.model if self.model is not None else primary

    @property
    def sent(self) -> bool:
        """A request answered it (not the cassette's last good answer): replayed, it claims a recording."""
        return self.kind != "cached"


PRIMARY = AnsweredBy("primary")
FROM_CACHE = AnsweredBy("cached")


@filled_by_slot  # made for every sample: each slot filled directly (harness._slotted)
@dataclass(frozen=True, slots=True)
class Row:
    eval: str
    case: str
    variant: str
    model: str
    sample: int
    outcome: Outcome
    failed_checks: tuple[str, ...] = ()
    reasons: str = ""
    refusal: str | None = None
    error: ErrorKind | None = None
    error_message: str | None = None
    json_valid: bool | None = None
    schema_valid: bool | None = None
    # tool calls and reasoning (harness.checks._tools): the called names (";"-joined, in order), their arguments (a
    # JSON array of the arguments' texts), their validity (None: no call), reasoning tokens (part of completion)
    tool_calls: str | None = None
    tool_arguments: str | None = None
    tool_calls_valid: bool | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    # streamed answers (`stream: true`; None otherwise): time to first token, output speed after it, and whether the
    # tokens and cost were counted here for want of a usage chunk (`stream_options.include_usage`)
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    usage_estimated: bool | None = None
    replayed: bool = False
    answered_by: AnsweredBy | None = None
    output: str | None = None
    judge_reasons: str | None = None
    judge_prompt_tokens: int | None = None
    judge_completion_tokens: int | None = None
    judge_cost_usd: float | None = None
    # not a column: the files keep the advice it was phrased into (error_message), the running session the remedy
    remedy: Remedy | None = field(default=None, compare=False)

    @property
    def item(self) -> tuple[str, str, str]:
        """(eval, variant, case): the pytest item, and the cassette, the sample belongs to."""
        return (self.eval, self.variant, self.case)

    @property
    def key(self) -> tuple[str, str, str, int]:
        """(eval, variant, case, sample): one per sample of a run."""
        return (self.eval, self.variant, self.case, self.sample)

    def to_dict(self) -> dict[str, Any]:
        """The row as the files have it: JSON scalars, keyed by ``COLUMNS`` in order."""
        return dict(zip(COLUMNS, self.cells(), strict=True))

    def cells(self) -> list[Any]:
        """``to_dict``'s values, in ``COLUMNS`` order: a results file's line, without a dict per row."""
        out = list(_CELLS(self))
        out[_OUTCOME] = str(self.outcome)
        out[_ERROR] = None if self.error is None else str(self.error)
        out[_ANSWERED_BY] = None if self.answered_by is None else str(self.answered_by)
        out[_FAILED_CHECKS] = ";".join(self.failed_checks)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Row:
        """A row from ``to_dict``'s form (a journal line, a report's transport, a frame's record: NaN is None).
        Raises ValueError or KeyError for a dict that is not one."""
        values = {name: _none_if_nan(raw.get(name)) for name in COLUMNS}
        values |= {name: str(raw[name]) for name in ("eval", "case", "variant")}
        values["outcome"] = Outcome(raw["outcome"])
        values["sample"] = int(raw["sample"])
        values["replayed"] = bool(values["replayed"])
        values["failed_checks"] = tuple(filter(None, str(values["failed_checks"] or "").split(";")))
        values["reasons"] = str(values["reasons"] or "")
        values["error"] = ErrorKind(values["error"]) if values["error"] else None
        values["answered_by"] = AnsweredBy.parse(values["answered_by"]) if values["answered_by"] else None
        return cls(**values)

    @classmethod
    def from_text(cls, cells: Mapping[str, str]) -> Row:
        """A row from its results.csv cells, all text (``promptvcr merge``): an empty cell is None."""
        read = {name: _TEXT_TO_VALUE[name](text) for name, text in cells.items() if name in COLUMNS and text != ""}
        return cls.from_dict(read)


COLUMNS = tuple(f.name for f in dataclasses.fields(Row) if f.name != "remedy")
_TEXT_CELLS = ("outcome", "error", "answered_by", "failed_checks")  # cells whose value is made text
_OUTCOME, _ERROR, _ANSWERED_BY, _FAILED_CHECKS = map(COLUMNS.index, _TEXT_CELLS)
_CELLS = operator.attrgetter(*COLUMNS)  # every cell in one call (a report reads 100,000 rows' 40)


def _scalar(hint: Any) -> Any:
    """``int | None`` → int: the type a column's text is read as."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (types.UnionType, typing.Union) else hint


_READ_AS: dict[Any, Callable[[str], Any]] = {int: lambda t: int(float(t)), float: float, bool: lambda t: t == "True"}
_TEXT_TO_VALUE = {name: _READ_AS.get(_scalar(hint), str) for name, hint in typing.get_type_hints(Row).items()}


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value
