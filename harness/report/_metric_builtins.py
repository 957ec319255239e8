"""The built-in gate metrics, registered as a user's are (``harness.load._metrics``); the summary's columns too.

Quality rates count answered samples only (an error is no answer to judge), and only those the check applies to;
``error_rate`` counts every attempted sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..load._metrics import Measure, Metric, metric
from ._stats import percentile, rate, wilson

if TYPE_CHECKING:  # pandas is imported by whoever passes the rows, not by `import harness`
    import pandas as pd


def answered(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["outcome"].isin(["passed", "failed"])]


def _share(hits: int, n: int) -> Measure:
    return Measure(rate(hits, n), n, wilson(hits, n))


def _valid(rows: pd.DataFrame, column: str) -> Measure:
    checked = answered(rows)
    checked = checked[checked[column].notna()]
    return _share(int(checked[column].astype(bool).sum()), len(checked))


@metric(Metric.JSON_VALID_RATE, interval=True)
def json_valid_rate(rows: pd.DataFrame) -> Measure:
    return _valid(rows, "json_valid")


@metric(Metric.SCHEMA_VALID_RATE, interval=True)
def schema_valid_rate(rows: pd.DataFrame) -> Measure:
    return _valid(rows, "schema_valid")


@metric(Metric.PASS_RATE, interval=True)
def pass_rate(rows: pd.DataFrame) -> Measure:
    return _share(int((rows["outcome"] == "passed").sum()), len(answered(rows)))


@metric(Metric.ERROR_RATE, interval=True)
def error_rate(rows: pd.DataFrame) -> Measure:
    errors = int((rows["outcome"] == "errored").sum())
    return _share(errors, len(answered(rows)) + errors)


@metric(Metric.LATENCY_P95_MS, unit="ms")
def latency_p95_ms(rows: pd.DataFrame) -> Measure:
    latencies = answered(rows)["latency_ms"].dropna().tolist()
    return Measure(percentile(latencies, 95), len(latencies))  # answered samples with a measured latency


@metric(Metric.REFUSAL_RATE, interval=True)
def refusal_rate(rows: pd.DataFrame) -> Measure:
    """The share of answered samples the model refused (``message.refusal``)."""
    return _share(*_refused(rows))


def _refused(rows: pd.DataFrame) -> tuple[int, int]:
    """The answered samples the model refused, and the answered samples."""
    checked = answered(rows)
    return int(checked["refusal"].notna().sum()), len(checked)


@metric(Metric.TOOL_CALLS_VALID_RATE, interval=True)
def tool_calls_valid_rate(rows: pd.DataFrame) -> Measure:
    """Over answers that called a tool: every call names an offered tool, with JSON arguments that fit it."""
    return _valid(rows, "tool_calls_valid")


def tool_columns(rows: pd.DataFrame) -> dict[str, Any]:
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


@metric(Metric.TTFT_P95_MS, unit="ms")
def ttft_p95_ms(rows: pd.DataFrame) -> Measure:
    ttfts = answered(rows)["ttft_ms"].dropna().tolist()
    return Measure(percentile(ttfts, 95), len(ttfts))  # streamed answered samples (a gate's min_n counts these)
