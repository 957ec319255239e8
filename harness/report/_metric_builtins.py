"""The built-in gate metrics, registered as a user's are (``harness.load._metrics``); the summary's columns too.

Quality rates count answered samples only (an error is no answer to judge), and only those the check applies to;
``error_rate`` counts every attempted sample. The built-ins read the typed rows (``typed=True``): a run whose gates
are all built-in builds no DataFrame and imports no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..load._metrics import Measure, Metric, metric
from ._stats import percentile, rate, wilson

if TYPE_CHECKING:  # `import harness` registers these, in every pytest run: the rows' module comes with the rows
    from ..run._row import Row

Rows = Sequence["Row"]
PASSED, ERRORED = "passed", "errored"  # Outcome's values (an Outcome is equal to its text)


class Answered(list["Row"]):
    """Rows that ``answered`` kept: a group's are filtered once, however many of its metrics read them."""


def answered(rows: Rows) -> Answered:
    return rows if isinstance(rows, Answered) else Answered(r for r in rows if r.outcome.answered)


def _share(hits: int, n: int) -> Measure:
    return Measure(rate(hits, n), n, wilson(hits, n))


def _valid(values: list[bool | None]) -> Measure:
    """The share of True among the answered samples' values that are set (a check that applied)."""
    checked = [v for v in values if v is not None]
    return _share(sum(map(bool, checked)), len(checked))


@metric(Metric.JSON_VALID_RATE, interval=True, typed=True)
def json_valid_rate(rows: Rows) -> Measure:
    return _valid([r.json_valid for r in answered(rows)])


@metric(Metric.SCHEMA_VALID_RATE, interval=True, typed=True)
def schema_valid_rate(rows: Rows) -> Measure:
    return _valid([r.schema_valid for r in answered(rows)])


@metric(Metric.PASS_RATE, interval=True, typed=True)
def pass_rate(rows: Rows) -> Measure:
    return _share(sum(r.outcome == PASSED for r in rows), len(answered(rows)))


@metric(Metric.ERROR_RATE, interval=True, typed=True)
def error_rate(rows: Rows) -> Measure:
    errors = sum(r.outcome == ERRORED for r in rows)
    return _share(errors, len(answered(rows)) + errors)


@metric(Metric.LATENCY_P95_MS, unit="ms", typed=True)
def latency_p95_ms(rows: Rows) -> Measure:
    latencies = [r.latency_ms for r in answered(rows) if r.latency_ms is not None]
    return Measure(percentile(latencies, 95), len(latencies))  # answered samples with a measured latency


@metric(Metric.REFUSAL_RATE, interval=True, typed=True)
def refusal_rate(rows: Rows) -> Measure:
    """The share of answered samples the model refused (``message.refusal``)."""
    return _share(*_refused(rows))


def _refused(rows: Rows) -> tuple[int, int]:
    """The answered samples the model refused, and the answered samples."""
    checked = answered(rows)
    return sum(r.refusal is not None for r in checked), len(checked)


@metric(Metric.TOOL_CALLS_VALID_RATE, interval=True, typed=True)
def tool_calls_valid_rate(rows: Rows) -> Measure:
    """Over answers that called a tool: every call names an offered tool, with JSON arguments that fit it."""
    return _valid([r.tool_calls_valid for r in answered(rows)])


def tool_columns(rows: Rows) -> dict[str, Any]:
    """The summary's tool-call validity (as JSON validity's: a rate over the answers it applies to) and refusals."""
    tools, (refused, of) = tool_calls_valid_rate(rows), _refused(rows)
    return {
        "tool_calls_checked": tools.n,
        "tool_calls_valid_rate": tools.value,
        "tool_calls_valid_low": tools.interval[0],
        "tool_calls_valid_high": tools.interval[1],
        "refusals": refused,
        "refusal_rate": rate(refused, of),
    }


@metric(Metric.TTFT_P95_MS, unit="ms", typed=True)
def ttft_p95_ms(rows: Rows) -> Measure:
    ttfts = [r.ttft_ms for r in answered(rows) if r.ttft_ms is not None]
    return Measure(percentile(ttfts, 95), len(ttfts))  # streamed answered samples (a gate's min_n counts these)
