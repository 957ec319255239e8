"""The paired comparisons of ``harness.report._compare`` as tables and text: the verdict rows, the per-case rows, the
text and markdown reports, and the sentence on the methods. Kept apart from the statistics so that each reads alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import _tables as tables
from ._compare import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    DETECT,
    MIN_CASES,
    POWER,
    Comparison,
    Metric,
    MetricDelta,
    _test,
    _value,
)


def _delta(metric: Metric, m: MetricDelta) -> str:
    if math.isnan(m.delta):
        return "n/a"
    scale, unit, digits = {"rate": (100, " pts", 1), "usd": (1, "", 4), "tokens": (1, "", 1), "ms": (1, " ms", 0)}[
        metric.unit
    ]

    def signed(x: float) -> str:
        return f"{round(scale * x, digits) + 0.0:+.{digits}f}"  # + 0.0: a rounded -0 reads "+0"

    text = signed(m.delta) + unit
    return text if math.isnan(m.low) else f"{text} [{signed(m.low)}, {signed(m.high)}]"


def _power(m: MetricDelta) -> str:
    if m.needed_cases is None:
        return ""
    rho = "" if math.isnan(m.icc) else f" (ICC {m.icc:.2f})"
    return f"{m.needed_cases} cases × {m.per_case}{rho}"


def _size(m: MetricDelta) -> str:
    return f"{m.cases} × {m.per_case}" if m.cases else "0"


HEADERS = (
    "metric",
    "baseline",
    "candidate",
    "Δ (95% CI)",
    "cases × samples",
    "test",
    f"to see {100 * DETECT:.0f} pts",
    "verdict",
)


def verdict_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    return [
        (
            m.metric.name + (" (gated)" if m.metric.gated else ""),
            _value(m.metric, m.baseline),
            _value(m.metric, m.candidate),
            _delta(m.metric, m),
            _size(m),
            _test(m),
            _power(m),
            m.verdict,
        )
        for m in comparison.metrics
    ]


CASE_HEADERS = ("case", "baseline passed", "candidate passed", "baseline errors", "candidate errors")


def case_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    c = comparison.cases
    return [
        (
            str(r.case),
            f"{r.baseline_passed}/{r.baseline_answered}",
            f"{r.candidate_passed}/{r.candidate_answered}",
            str(r.baseline_errored),
            str(r.candidate_errored),
        )
        for r in c.itertuples()
    ]


def heading(comparison: Comparison) -> str:
    extra = f"; {comparison.unpaired} rows without a partner left out" if comparison.unpaired else ""
    return f"{comparison.label} (α = {ALPHA}{extra})"


def text_report(comparisons: Sequence[Comparison]) -> str:
    blocks: list[str] = []
    for comparison in comparisons:
        if comparison.empty:
            blocks += [f"{heading(comparison)}: insufficient data (no answered pairs)", ""]
            continue
        blocks += [heading(comparison), tables.aligned(HEADERS, verdict_rows(comparison)), ""]
        blocks += [tables.aligned(CASE_HEADERS, case_rows(comparison)), ""]
    return "\n".join(blocks)


def markdown_report(comparisons: Sequence[Comparison]) -> str:
    blocks: list[str] = []
    for comparison in comparisons:
        if comparison.empty:
            blocks += [f"### {heading(comparison)}", "", "Insufficient data: no answered pairs.", ""]
            continue
        blocks += [f"### {heading(comparison)}", "", tables.markdown(HEADERS, verdict_rows(comparison)), ""]
    return "\n".join(blocks)


METHODS = (
    f"Paired by case and sample; samples of one case are not independent, so every 95% interval is a cluster "
    f"bootstrap over cases ({BOOTSTRAP_RESAMPLES} resamples of whole cases, percentile interval); a verdict needs "
    f"the interval to exclude 0, at least {MIN_CASES} cases, and for rates an interval narrower than "
    f"±{100 * DETECT:.0f} pts (else 'insufficient data'). 'to see {100 * DETECT:.0f} pts': cases needed, at this "
    f"many samples per case, to detect a {100 * DETECT:.0f}-point difference with {100 * POWER:.0f}% power: "
    f"independent pairs n = (z₁₋α/₂·√ψ + z₁₋β·√(ψ − δ²))² / δ² (Connor 1987, ψ = observed discordant share), times "
    f"the design effect 1 + (m − 1)·ICC of m samples per case, divided by m."
)
