"""What a PM reads first: one sentence per A/B pair and gated metric, then the cases where the two sides disagree.

"smollm2 is better than gemma on json_valid_rate by +40.2 pts [95% CI +21.6, +58.8] (6 cases × 17 samples); same
cost (all local, $0); 812 ms faster at p95 [−1400, −300]; smollm2 meets its gates, gemma doesn't." Every figure is
the comparison's own (``harness.report._compare``, clustered by case) and the gates' own
(``harness.report._gates``); nothing is computed twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._lazy import pandas as pd
from . import _compare as compare
from . import _tables as tables
from ._gates import GateResult

ANSWER_CHARS = 240  # of each side's answer shown where they disagree; results.csv has them whole
MAX_DISAGREEMENTS = 12  # cases listed per pair
USED = ("eval", "case", "variant", "sample", "outcome", "output", "error_message")  # the result columns a story reads


def _pts(x: float) -> str:
    return f"{round(100 * x, 1) + 0.0:+.1f}"


def _ci(m: compare.MetricDelta, scale: float = 100, digits: int = 1) -> str:
    if math.isnan(m.low):
        return ""
    return (
        f" [95% CI {round(scale * m.low, digits) + 0.0:+.{digits}f}, {round(scale * m.high, digits) + 0.0:+.{digits}f}]"
    )


def _size(m: compare.MetricDelta) -> str:
    return f"{m.cases} cases × {m.per_case} samples"


def rate_sentence(c: compare.Comparison, m: compare.MetricDelta) -> str:
    """The verdict on one rate, naming the candidate first."""
    name = m.metric.name
    if m.verdict in ("better", "worse"):
        return f"{c.candidate} is {m.verdict} than {c.baseline} on {name} by {_pts(m.delta)} pts{_ci(m)} ({_size(m)})"
    if m.verdict == "no significant difference":
        return f"no significant difference on {name} ({_pts(m.delta)} pts{_ci(m)}, {_size(m)})"
    if m.n == 0:
        return f"not enough data on {name}: no answered pairs"
    advice = f"; about {m.needed_cases} cases × {m.per_case} samples would tell" if m.needed_cases else ""
    return f"not enough data on {name} to decide ({_pts(m.delta)} pts{_ci(m)}, {_size(m)}: {m.why}{advice})"


def cost_sentence(c: compare.Comparison) -> str:
    cost = c.get("cost_per_1k_calls")
    if cost.n == 0 or math.isnan(cost.baseline) or math.isnan(cost.candidate):
        return "cost unknown (unpriced or no answers)"
    if cost.baseline == 0 and cost.candidate == 0:
        return "same cost (all local, $0)"
    if cost.verdict in ("better", "worse"):
        word = "cheaper" if cost.verdict == "better" else "dearer"
        return f"{c.candidate} {word} by ${abs(cost.delta):.4f} per 1,000 calls{_ci(cost, 1, 4)}"
    return f"no significant cost difference (${cost.baseline:.4f} vs ${cost.candidate:.4f} per 1,000 calls)"


def latency_sentence(c: compare.Comparison) -> str:
    p95 = c.get("latency_p95_ms")
    if p95.verdict in ("better", "worse"):
        word = "faster" if p95.verdict == "better" else "slower"
        low, high = sorted((abs(p95.low), abs(p95.high)))  # the interval excludes 0: both ends on one side
        return f"{abs(p95.delta):.0f} ms {word} at p95 [95% CI {low:.0f}, {high:.0f}]"
    if p95.verdict == "no significant difference":
        return f"no significant difference at p95 ({p95.delta:+.0f} ms{_ci(p95, 1, 0)})"
    return "p95 latency: not enough data"


def gates_sentence(variant: str, results: Sequence[GateResult]) -> str:
    if not results:
        return f"{variant} has no gate"
    failed = [g for g in results if g.verdict == "fail"]
    unknown = [g for g in results if g.verdict == "insufficient"]
    if failed:
        return f"{variant} doesn't meet its gates ({'; '.join(g.describe() for g in failed)})"
    if unknown:
        return f"{variant}: not enough data for its gates ({'; '.join(g.describe() for g in unknown)})"
    shaky = [g.gate.metric for g in results if g.uncertain]
    caveat = f" (uncertain: the 95% interval of {', '.join(shaky)} crosses its threshold)" if shaky else ""
    return f"{variant} meets its gates{caveat}"


def headlines(
    comparison: compare.Comparison, gated: Sequence[str], gate_results: Mapping[str, Sequence[GateResult]]
) -> list[str]:
    """One sentence per gated metric of the eval (its gates' rates; else the comparison's gated ones), then one on
    cost, latency and the two sides' gates."""
    if comparison.empty:
        return ["not enough data: no answered pairs (every sample skipped or errored)"]
    rates = {m.name for m in compare.RATES}
    names = [n for n in gated if n in rates] or [m.name for m in compare.RATES if m.gated]
    tail = [
        cost_sentence(comparison),
        latency_sentence(comparison),
        gates_sentence(comparison.candidate, gate_results.get(comparison.candidate, ())),
        gates_sentence(comparison.baseline, gate_results.get(comparison.baseline, ())),
    ]
    return [f"{rate_sentence(comparison, comparison.get(name))}." for name in names] + [f"{'; '.join(tail)}."]


@dataclass(frozen=True)
class Disagreement:
    case: str
    baseline: str  # "3/17 passed"
    candidate: str
    baseline_answer: str  # one answer, truncated: a failing one where the side failed, else a passing one
    candidate_answer: str


def _answer(rows: pd.DataFrame, prefer_failing: bool) -> str:
    if rows.empty:
        return ""
    order = rows.sort_values("sample", kind="stable")
    pick = order[order["outcome"] != "passed"] if prefer_failing else order[order["outcome"] == "passed"]
    row = (pick if len(pick) else order).iloc[0]
    text = row["output"] if isinstance(row["output"], str) else f"({row['outcome']}: {row['error_message']})"
    text = " ".join(text.split())  # one line: it sits in a table cell
    return text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + "…"


def disagreements(df: pd.DataFrame, comparison: compare.Comparison) -> list[Disagreement]:
    """The cases whose pass counts differ between the two sides, the widest gap first, each with an answer per side."""
    table = comparison.cases
    gap = (table["candidate_passed"] - table["baseline_passed"]).abs()
    chosen = table.assign(gap=gap)[gap > 0].sort_values(["gap", "case"], ascending=[False, True])
    out: list[Disagreement] = []
    for r in chosen.head(MAX_DISAGREEMENTS).to_dict("records"):
        mine = df[(df["eval"] == r["eval"]) & (df["case"] == r["case"])]
        side_a, side_b = mine[mine["variant"] == comparison.baseline], mine[mine["variant"] == comparison.candidate]
        a_worse = int(r["baseline_passed"]) < int(r["candidate_passed"])
        out.append(
            Disagreement(
                str(r["case"]),
                f"{r['baseline_passed']}/{r['baseline_answered']} passed",
                f"{r['candidate_passed']}/{r['candidate_answered']} passed",
                _answer(side_a, prefer_failing=a_worse),
                _answer(side_b, prefer_failing=not a_worse),
            )
        )
    return out


@dataclass(frozen=True)
class Story:
    """One A/B pair as the report tells it: the headlines, then the cases where the sides disagree."""

    comparison: compare.Comparison
    headlines: list[str]
    disagreements: list[Disagreement]


def story(
    df: pd.DataFrame,
    comparison: compare.Comparison,
    gated: Sequence[str],
    gate_results: Mapping[str, Sequence[GateResult]],
) -> Story:
    rows = df[df["eval"] == comparison.eval]
    return Story(comparison, headlines(comparison, gated, gate_results), disagreements(rows, comparison))


def disagreement_headers(s: Story) -> tuple[str, ...]:
    a, b = s.comparison.baseline, s.comparison.candidate
    return ("case", a, b, f"an answer of {a}", f"an answer of {b}")


def disagreement_rows(s: Story) -> list[tuple[str, ...]]:
    return [(d.case, d.baseline, d.candidate, d.baseline_answer, d.candidate_answer) for d in s.disagreements]


def markdown(stories: Sequence[Story]) -> list[str]:
    """summary.md's opening: the verdicts per pair, then per pair the cases where its two sides disagree."""
    if not stories:
        return []
    parts = ["## Verdict", ""]
    for s in stories:
        parts += [f"**{s.comparison.label}**", "", *(f"- {line}" for line in s.headlines), ""]
    for s in stories:
        if s.disagreements:
            parts += [f"### Where they disagree: {s.comparison.label}", ""]
            parts += [tables.markdown(disagreement_headers(s), disagreement_rows(s)), ""]
    return parts
