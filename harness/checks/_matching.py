"""Regular expressions under a time limit: the `regex` check's, a JSON Schema's ``pattern`` and (with a limit of
their own, harness.record._redaction) an eval's redaction rules.

A pattern such as ``(a+)+$`` backtracks exponentially on a long answer, and Python's ``re`` cannot be stopped: it
holds the GIL inside one C call, so no thread or signal ends it. The ``regex`` package (same syntax) takes a
``timeout``. ``limit`` opens the time one sample's checks have; every match made inside it gets what is left, and
one that runs out raises ``TimeoutError``, which fails that sample's check, never the run.

``Schema`` is a compiled JSON Schema, its ``pattern`` keywords matched so (``timed``).
"""

from __future__ import annotations

import contextvars
import math
import re
import threading
import time
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import regex

from .._lazy import jsonschema
from .._scoped import Scoped
from . import _schema_fast as schema_fast

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

CHECK_TIME_LIMIT_S = 2.0  # for all the checks of one sample
TIMED_OUT = f"check timed out (the sample's checks may take {CHECK_TIME_LIMIT_S:g} s)"

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("promptvcr_check_deadline", default=math.inf)


def limit(seconds: float = CHECK_TIME_LIMIT_S) -> Scoped[float]:
    """Matches inside the block share ``seconds`` from now (each thread, each sample, its own)."""
    return Scoped(_deadline, time.monotonic() + seconds)


@cache
def compiled(pattern: str, ignore_case: bool = False) -> Any:  # a regex.Pattern (its stubs' generic)
    """``pattern`` as the ``regex`` package runs it; re.error when it is not a valid Python pattern."""
    re.compile(pattern, re.IGNORECASE if ignore_case else 0)  # Python's syntax, and its messages, are the contract
    try:
        return regex.compile(pattern, regex.IGNORECASE if ignore_case else 0)
    except regex.error as exc:
        raise re.error(f"{exc} (in the `regex` package, which runs it under a time limit)") from None


def remaining() -> float:
    """Seconds left of the sample's time (infinite outside ``limit``)."""
    return _deadline.get() - time.monotonic()


def search(pattern: Any, text: str) -> bool:
    """Whether ``pattern`` (compiled) matches somewhere in ``text``; TimeoutError when the sample's time is up."""
    left = remaining()
    if left <= 0:
        raise TimeoutError(TIMED_OUT)
    if math.isinf(left):
        return pattern.search(text) is not None
    try:  # nearly every match ends at once: no thread for those
        return pattern.search(text, timeout=min(left, _QUICK_S), concurrent=True) is not None
    except TimeoutError:
        if left <= _QUICK_S:
            raise TimeoutError(TIMED_OUT) from None
    # The package's timeout counts the CPU time of the matching thread, which a busy machine stretches in wall time:
    # the match goes on in a thread of its own (concurrent: without the GIL), waited for until the wall clock's limit.
    # One that overruns is left to end at its own timeout, and the sample's check has timed out.
    outcome: list[bool | TimeoutError] = []
    worker = threading.Thread(target=_match, args=(pattern, text, left, outcome), daemon=True)
    worker.start()
    worker.join(_deadline.get() - time.monotonic())
    if not outcome or isinstance(outcome[0], TimeoutError):
        raise TimeoutError(TIMED_OUT)
    return outcome[0]


_QUICK_S = 0.05  # of CPU time, tried before a match gets a thread of its own


def _match(pattern: Any, text: str, seconds: float, outcome: list[bool | TimeoutError]) -> None:
    try:
        outcome.append(pattern.search(text, timeout=seconds, concurrent=True) is not None)
    except TimeoutError as exc:
        outcome.append(exc)


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(compiled(patrn), instance):
        yield jsonschema.exceptions.ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator: Any, properties: dict[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in properties.items():
        for key, value in instance.items():
            if search(compiled(patrn), key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def timed(cls: Any) -> Any:
    """The jsonschema validator class ``cls`` with ``pattern`` and ``patternProperties`` matched under the limit."""
    keywords = {"pattern": _pattern, "patternProperties": _pattern_properties}
    return jsonschema.validators.extend(cls, keywords)  # type: ignore[no-untyped-call]  # jsonschema leaves it untyped


class Schema:
    """A compiled JSON Schema, as a json_schema check (or a tool's parameters) holds answers to it. A value the
    plain-Python accepter (``harness.checks._schema_fast``) knows to be valid passes without jsonschema; any other
    gets jsonschema's verdict and message, from ``validator`` — or, for a schema the accepter compiled (draft
    2020-12, no ``$schema``), a validator made when a value first needs one."""

    def __init__(self, schema: Any, accepts: schema_fast.Accepter | None, validator: Any = None) -> None:
        self.schema = schema
        self.accepts = accepts
        self._validator = validator

    def validator(self) -> Any:
        if self._validator is None:  # two threads may both make one: the same validator
            cls = timed(jsonschema.Draft202012Validator)
            self._validator = cls(self.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        return self._validator

    def violation(self, instance: Any) -> str | None:
        """Why ``instance`` does not satisfy the schema (its most telling error), or None."""
        if self.accepts is not None and self.accepts(instance):
            return None
        error = jsonschema.exceptions.best_match(self.validator().iter_errors(instance))
        if error is None:
            return None
        where = "".join(f"/{p}" for p in error.absolute_path) or "/"
        return f"schema violation at {where}: {error.message}"
