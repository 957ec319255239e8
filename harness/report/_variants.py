"""Per eval × variant: the summary's metrics and the gates' verdicts, aggregated once over the typed rows.

A gate on a metric of the user's (``@harness.metric``, given a DataFrame) makes the variant's frame, and imports
pandas, then; the built-in metrics read the rows themselves. Sums and means are taken as pandas took them
(``harness.report._stats``), so every figure keeps its digits.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._lazy import pandas as pd
from ..load import _metrics as measures
from ..load._evals import Eval
from ..run._row import COLUMNS, Outcome, Row
from . import _gates as gates_mod
from . import _metric_builtins as builtins
from ._stats import pairwise_sum, percentile, percentiles, sorted_group_mean

DAYS_PER_MONTH = 365.25 / 12  # an average month, so twelve projections make a year


def ordered(rows: Iterable[Row]) -> list[Row]:
    """The rows in the results' order: by eval, variant, case and sample."""
    return sorted(rows, key=_RESULTS_ORDER)


_RESULTS_ORDER = operator.attrgetter("eval", "variant", "case", "sample")


def frame(rows: Iterable[Row]) -> pd.DataFrame:
    """The rows as a DataFrame (results.csv's columns, in the results' order): what a metric of the user's and an
    A/B comparison are given; the rows' one way into pandas."""
    return frame_of([row.cells() for row in ordered(rows)])


def frame_of(cells: Sequence[Sequence[Any]], columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """``frame`` of rows whose cells are made already (``Row.cells``, in the results' order), only ``columns`` of
    them: pandas infers each column's type from its own values, so a column is the same in any selection."""
    if tuple(columns) != COLUMNS:
        pick = operator.itemgetter(*map(COLUMNS.index, columns))
        cells = [pick(line) for line in cells]
    return pd.DataFrame(cells, columns=list(columns))  # lists (or tuples): lighter than dicts


@dataclass(frozen=True)
class VariantSummary:
    metrics: dict[str, Any]
    gates: list[gates_mod.GateResult]
    xfail: str | None

    @property
    def failed(self) -> bool:
        """A gate failed on a variant that is not expected to fall short."""
        return self.xfail is None and any(g.verdict == "fail" for g in self.gates)


def groups(rows: Iterable[Row], key: Callable[[Row], Any]) -> list[tuple[Any, list[Row]]]:
    """The rows by ``key``, keys sorted, each group in the rows' order (as ``groupby(sort=True)`` makes them)."""
    found: dict[Any, list[Row]] = {}
    for row in rows:
        found.setdefault(key(row), []).append(row)
    return sorted(found.items(), key=lambda item: item[0])


def summarize(rows: Iterable[Row], evals: Mapping[str, Eval]) -> list[VariantSummary]:
    """One summary per eval × variant present in ``rows``, with its gates evaluated."""
    rows = ordered(rows)
    whole = functools.cache(lambda: frame(rows))  # made once, if a metric of the user's needs it
    out: list[VariantSummary] = []
    for (eval_name, variant), group in groups(rows, operator.attrgetter("eval", "variant")):
        ev = evals[eval_name]
        spec = next(v for v in ev.variants if v.name == variant)
        gated = [g for g in ev.gates if gates_mod.applies(g, variant)]
        results = [gates_mod.evaluate(g, _measure(g.metric, group, whole)) for g in gated]
        out.append(VariantSummary(_metrics(eval_name, variant, group, ev), results, spec.xfail))
    return out


def _measure(name: str, group: list[Row], whole: Callable[[], pd.DataFrame]) -> measures.Measure:
    """A built-in measures the group's rows; a metric of the user's its slice of the run's frame."""
    try:
        typed = measures.lookup(name).typed
    except measures.MetricError:  # measure says why, as the gate's failure
        typed = True
    if typed:
        return measures.measure(name, group)
    df = whole()
    return measures.measure(name, df[(df["eval"] == group[0].eval) & (df["variant"] == group[0].variant)])


def _numbers(values: Iterable[float | int | None]) -> list[float]:
    return [float(v) for v in values if v is not None]


def _judge_spend(g: Sequence[Row]) -> dict[str, Any]:
    """The judge's tokens and cost, also on samples it then failed to grade (never added into the answers')."""
    judged = [r for r in g if r.judge_prompt_tokens is not None]
    costs = [r.judge_cost_usd for r in judged]
    priced = bool(judged) and all(c is not None for c in costs)
    return {
        "judged": len(judged),
        "judge_prompt_tokens": int(pairwise_sum(_numbers(r.judge_prompt_tokens for r in judged))),
        "judge_completion_tokens": int(pairwise_sum(_numbers(r.judge_completion_tokens for r in judged))),
        "judge_cost_usd": pairwise_sum(_numbers(costs)) if priced else None,
    }


def _projection(answered: Sequence[Row], ev: Eval, priced: bool) -> dict[str, Any]:
    """The budget and, with a traffic profile, the monthly cost at the measured mix-weighted cost per call."""
    per_call = _mix_cost_per_call(answered, ev) if priced else math.nan
    monthly = ev.traffic.requests_per_day * DAYS_PER_MONTH * per_call if ev.traffic else math.nan
    return {
        "budget_usd": ev.budget_usd,
        "requests_per_day": ev.traffic.requests_per_day if ev.traffic else None,
        "mix_cost_per_call_usd": per_call,
        "monthly_cost_usd": monthly,
        "monthly_budget_usd": ev.monthly_budget_usd,
        "over_budget": bool(ev.monthly_budget_usd is not None and monthly > ev.monthly_budget_usd),
    }


def _metrics(eval_name: str, variant: str, g: list[Row], ev: Eval) -> dict[str, Any]:
    # filtered once: a metric of answered samples reads the same from them as from the group (a passed one too)
    answered = builtins.answered(g)
    json, schema = builtins.json_valid_rate(answered), builtins.schema_valid_rate(answered)
    passed, errors = builtins.pass_rate(answered), builtins.error_rate(g)
    latency = builtins.latency_p95_ms(answered)
    n = len(answered)
    costs = [r.cost_usd for r in answered]
    priced = n > 0 and all(c is not None for c in costs)
    p50, p99 = percentiles(_numbers(r.latency_ms for r in answered), (50, 99))
    return {
        "eval": eval_name,
        "variant": variant,
        "model": ", ".join(sorted({r.model for r in g})),
        "planned": len(g),
        "attempted": errors.n,
        "answered": n,
        "errors": errors.n - n,
        "skipped": sum(r.outcome == Outcome.SKIPPED for r in g),
        "json_checked": json.n,
        "json_valid_rate": json.value,
        "json_valid_low": json.interval[0],
        "json_valid_high": json.interval[1],
        "schema_checked": schema.n,
        "schema_valid_rate": schema.value,
        "schema_valid_low": schema.interval[0],
        "schema_valid_high": schema.interval[1],
        **builtins.tool_columns(answered),
        "pass_rate": passed.value,
        "pass_low": passed.interval[0],
        "pass_high": passed.interval[1],
        "error_rate": errors.value,
        "error_low": errors.interval[0],
        "error_high": errors.interval[1],
        "prompt_tokens": sum(r.prompt_tokens or 0 for r in answered),
        "completion_tokens": sum(r.completion_tokens or 0 for r in answered),
        "reasoning_tokens": sum(r.reasoning_tokens or 0 for r in answered),  # within completion
        "cost_usd": pairwise_sum(_numbers(costs)) if priced else None,
        **_judge_spend(g),
        **_projection(answered, ev, priced),
        "latency_n": latency.n,
        "latency_p50_ms": p50,
        "latency_p95_ms": latency.value,
        "latency_p99_ms": p99,
        **_streamed(answered),
    }


def _streamed(answered: builtins.Answered) -> dict[str, Any]:
    """Streamed samples' time to first token, output speed, and whether a cost was counted here (shown "≈")."""
    ttft = builtins.ttft_p95_ms(answered)
    estimated = any(r.usage_estimated is True for r in answered)
    speed = percentile(_numbers(r.tokens_per_s for r in answered), 50)
    return {"ttft_n": ttft.n, "ttft_p95_ms": ttft.value, "tokens_per_s_p50": speed, "cost_estimated": estimated}


def _mix_cost_per_call(answered: Sequence[Row], ev: Eval) -> float:
    """The cost of an average production call: each case's measured mean cost, weighted by the traffic mix.

    nan without a traffic profile, or when a case the mix weighs has no answered sample to measure.
    """
    if ev.traffic is None:
        return math.nan
    per_case = {case: sorted_group_mean(_numbers(r.cost_usd for r in rows)) for case, rows in groups(answered, _case)}
    weights = {case: w for case, w in ev.traffic.mix.items() if w > 0}
    if not weights or any(case not in per_case for case in weights):
        return math.nan
    return sum(w * per_case[case] for case, w in weights.items()) / sum(weights.values())


def _case(row: Row) -> str:
    return row.case
