"""The one registry of gate metrics: every name ``gates[].metric`` may use, the built-ins' and the user's alike.

A metric is a function of one variant's result rows (a pandas DataFrame with the columns of results.csv, all samples
of that eval × variant) returning a float, or a ``Measure`` with the sample count it is measured over and its 95%
interval. A float is measured over every row. ``@harness.metric("name")`` registers one (in a module a conftest.py
imports, say); the built-ins (``harness.report._metric_builtins``) go through the same door. An eval file's gate
names are checked against the registry when it is loaded: an unknown name is a ``file:line`` problem, nothing is sent.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from ..errors import unknown_name

F = TypeVar("F", bound=Callable[..., Any])


class Metric(StrEnum):
    """The built-in metrics' names (eval.schema.json lists the same, for editors)."""

    JSON_VALID_RATE = "json_valid_rate"
    SCHEMA_VALID_RATE = "schema_valid_rate"
    PASS_RATE = "pass_rate"
    ERROR_RATE = "error_rate"
    LATENCY_P95_MS = "latency_p95_ms"
    REFUSAL_RATE = "refusal_rate"
    TOOL_CALLS_VALID_RATE = "tool_calls_valid_rate"
    TTFT_P95_MS = "ttft_p95_ms"


@dataclass(frozen=True)
class Measure:
    value: float  # nan: nothing to measure, an "insufficient data" gate
    n: int  # the samples it is measured over: a gate's min_n counts these
    interval: tuple[float, float] = (math.nan, math.nan)  # its 95% interval, when it has one
    error: str = ""  # why the metric could not be measured: its gates fail with this reason


@dataclass(frozen=True)
class Registered:
    name: str
    fn: Callable[[Any], Any]  # the variant's rows (a DataFrame) → float | Measure
    unit: str  # "rate": a share in 0..1 (a gate's value above 1 is a mistake); else e.g. "ms", shown unrounded
    interval: bool  # it gives a 95% interval, so a gate may judge on its lower or upper bound
    typed: bool = False  # a built-in: given the rows as a list of ``Row`` (no DataFrame, no pandas to import)


class MetricError(Exception):
    """A gate names a metric that is not registered (the message lists the known ones)."""


_metrics: dict[str, Registered | str] = {}  # a str: why the name cannot be used


def metric(name: str, *, unit: str = "rate", interval: bool = False, typed: bool = False) -> Callable[[F], F]:
    """``@harness.metric("name")``: register the decorated ``(rows) -> float | Measure`` function as a gate metric."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a metric's name is a non-empty string, not {name!r}")
    name = str(name)  # a Metric member: its plain name, as messages show it

    def decorate(fn: F) -> F:
        existing = _metrics.get(name)
        if isinstance(existing, Registered) and existing.fn is not fn and _origin(existing.fn) != _origin(fn):
            where = f"{_origin(existing.fn)} and {_origin(fn)}"
            _metrics[name] = f"metric {name!r} is defined twice: {where}: rename one"
        elif not isinstance(existing, str):  # a name already unusable stays so: which definition wins is not a guess
            _metrics[name] = Registered(name, fn, unit, interval, typed)
        return fn

    return decorate


def _origin(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else repr(fn)


def names() -> list[str]:
    """The usable names, in the order they were registered (the built-ins first)."""
    return [name for name, entry in _metrics.items() if isinstance(entry, Registered)]


def lookup(name: str) -> Registered:
    """The metric ``name``; MetricError when none has the name (saying the closest one) or it is unusable."""
    entry = _metrics.get(name)
    if isinstance(entry, Registered):
        return entry
    how = "one of your own is registered with @harness.metric"
    raise MetricError(entry if isinstance(entry, str) else f"{unknown_name('gate metric', name, names())}; {how}")


def measure(name: str, rows: Any) -> Measure:
    """The metric ``name`` of one variant's rows. A metric that raises or returns no number fails its gates with the
    reason, as a check that raises fails its sample: never the run, whose rows are all kept."""
    try:
        out = lookup(name).fn(rows)
    except Exception as exc:
        return Measure(math.nan, 0, error=f"the metric raised {type(exc).__name__}: {exc}")
    if isinstance(out, Measure):
        return out
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        return Measure(math.nan, 0, error=f"the metric returned {type(out).__name__}: a number or a harness.Measure")
    return Measure(float(out), len(rows))
