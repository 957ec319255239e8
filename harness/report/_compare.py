"""Paired A/B comparisons: two variants of one run, or one variant in two runs, over the same cases and samples.

Rows are paired by eval, case and sample, so every case is its own control: a pair where both sides pass (or
both fail) says nothing about the difference, only the discordant pairs do. The samples of one case share a prompt
and are not independent, so every interval is a cluster bootstrap over cases (``harness.report._cluster``):
rates, cost, tokens and latency alike, reported with the number of cases and of samples. A rate whose interval is too
wide to tell a DETECT-point difference from none is "insufficient data", not "no significant difference". Everything is
a pure function over result-row DataFrames (``harness.run._row.COLUMNS``) and answers "insufficient data" rather than
failing on empty input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._lazy import numpy as np
from .._lazy import pandas as pd
from ..errors import PromptVCRError
from . import _cluster as cluster
from ._stats import paired_sample_size

if TYPE_CHECKING:
    Array = np.ndarray[Any, Any]  # annotations only (they are not evaluated)


ALPHA = cluster.ALPHA
DETECT = 0.05  # the sample-size estimate is for a 5-point difference...
POWER = 0.80  # ...found 80% of the time
BOOTSTRAP_RESAMPLES = cluster.RESAMPLES
MIN_BOOTSTRAP_PAIRS = 10  # below this a resampled interval is too coarse to call anything
MIN_CASES = 5  # fewer cases than this: too few clusters for a cluster bootstrap to mean anything
KEYS = ["eval", "case", "sample"]
# The result-row columns (harness.run._row.COLUMNS) a comparison reads. Not imported from there: `promptvcr` loads
# this module before pytest starts, and the runner's openai import would pre-empt pytest's assertion rewriting.
USED = ("eval", "case", "variant", "sample", "outcome", "json_valid", "schema_valid", "cost_usd", "prompt_tokens",
        "completion_tokens", "latency_ms")  # fmt: skip

Verdict = Literal["better", "worse", "no significant difference", "insufficient data"]
Unit = Literal["rate", "usd", "tokens", "ms"]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: Unit
    higher_is_better: bool
    gated: bool  # a significant change for the worse fails `promptvcr compare`
    column: str = ""  # continuous metrics: the per-call value they summarise...
    statistic: Callable[[Array], Array] | None = None  # ...and how (over the last axis: one sample or many)


# Rates: the row is 1/0 where the metric applies, NaN where it does not (e.g. errors in quality rates).
RATES = (
    Metric("pass_rate", "rate", True, True),
    Metric("json_valid_rate", "rate", True, True),
    Metric("schema_valid_rate", "rate", True, False),
    # Gated too: quality rates leave errored samples out, so a candidate that errors would otherwise look fine.
    Metric("error_rate", "rate", False, True),
)


# Per-call values of answered samples, summarised by a statistic; lower is better for all of them.
def _per_1k_mean(v: Array) -> Array:
    return np.asarray(1000 * v.mean(axis=-1))


def _mean(v: Array) -> Array:
    return np.asarray(v.mean(axis=-1))


def _p50(v: Array) -> Array:
    return np.asarray(np.percentile(v, 50, axis=-1))


def _p95(v: Array) -> Array:
    return np.asarray(np.percentile(v, 95, axis=-1))


PERCENTILES = {_p50: 50, _p95: 95}  # resampled together when they summarise one column (one partition of its rows)

CONTINUOUS = (
    Metric("cost_per_1k_calls", "usd", False, False, "cost_usd", _per_1k_mean),
    Metric("prompt_tokens", "tokens", False, False, "prompt_tokens", _mean),
    Metric("completion_tokens", "tokens", False, False, "completion_tokens", _mean),
    Metric("latency_p50_ms", "ms", False, False, "latency_ms", _p50),
    Metric("latency_p95_ms", "ms", False, False, "latency_ms", _p95),
)


@dataclass(frozen=True)
class MetricDelta:
    metric: Metric
    baseline: float
    candidate: float
    delta: float  # candidate − baseline
    low: float  # 95% interval of delta
    high: float
    n: int  # pairs measured
    verdict: Verdict
    p_value: float | None = None  # cluster-bootstrap p of "no difference" (rates only)
    discordant: tuple[int, int] = (0, 0)  # (only the baseline succeeded, only the candidate did) — rates only
    needed_pairs: int | None = None  # independent pairs needed to detect a DETECT difference with POWER (rates)
    cases: int = 0  # clusters (cases) the pairs come from
    icc: float = math.nan  # intra-case correlation of the paired differences (rates)
    needed_cases: int | None = None  # cases needed for needed_pairs at this many samples per case (rates)
    why: str = ""  # why the verdict is "insufficient data", when it is

    @property
    def per_case(self) -> int:
        return round(self.n / self.cases) if self.cases else 0


@dataclass(frozen=True)
class Comparison:
    eval: str
    baseline: str
    candidate: str
    metrics: tuple[MetricDelta, ...]
    cases: pd.DataFrame  # per case: each side's passed/answered/errored, side by side
    unpaired: int  # rows with no partner on the other side (a case or sample only one side has)

    @property
    def empty(self) -> bool:
        """Not one pair to compare (e.g. both sides skipped): worth a line, not a table of "insufficient data"."""
        return not any(m.n for m in self.metrics)

    def get(self, name: str) -> MetricDelta:
        return next(m for m in self.metrics if m.metric.name == name)

    def regressions(self, max_cost_increase_pct: float) -> list[str]:
        """Why this comparison fails a baseline check: a gated metric got significantly worse, or cost rose."""
        found = [
            f"{self.label}: {m.metric.name} {_value(m.metric, m.baseline)} → {_value(m.metric, m.candidate)}, "
            f"significantly worse ({_test(m)})"
            for m in self.metrics
            if m.metric.gated and m.verdict == "worse"
        ]
        cost = self.get("cost_per_1k_calls")
        rise = _relative_rise(cost.baseline, cost.candidate)
        if rise > max_cost_increase_pct:
            found.append(
                f"{self.label}: cost per 1k calls {_value(cost.metric, cost.baseline)} → "
                f"{_value(cost.metric, cost.candidate)} (+{rise:.1f}%, more than {max_cost_increase_pct:g}%)"
            )
        return found

    @property
    def label(self) -> str:
        return f"{self.eval}: {self.candidate} vs {self.baseline}"


def _relative_rise(baseline: float, candidate: float) -> float:
    """Percent rise; inf from a free baseline to a priced candidate, nan when either is unknown (unpriced)."""
    if math.isnan(baseline) or math.isnan(candidate):
        return math.nan
    if baseline == 0:
        return math.inf if candidate > 0 else 0.0
    return 100 * (candidate - baseline) / baseline


# ------------------------------------------------------------------------------------------------ the comparisons


def _flag(values: pd.Series) -> pd.Series:
    """json_valid / schema_valid as 1.0 / 0.0 / NaN, whether they come from rows (bool) or a CSV ("True")."""
    flags = {v: 1.0 if v in (True, "True") else 0.0 if v in (False, "False") else math.nan for v in values.unique()}
    return values.map(flags)  # each distinct value told once (NaN, in none of them, maps to NaN)


def _per_row(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per row: the pairing keys, each rate's 1/0/NaN and each per-call value (NaN unless answered)."""
    outcome = rows["outcome"].astype(str)
    answered = outcome.isin(["passed", "failed"])
    attempted = answered | (outcome == "errored")
    out = rows[KEYS].copy()
    out["pass_rate"] = (outcome == "passed").astype(float).where(answered)
    out["json_valid_rate"] = _flag(rows["json_valid"]).where(answered)
    out["schema_valid_rate"] = _flag(rows["schema_valid"]).where(answered)
    out["error_rate"] = (outcome == "errored").astype(float).where(attempted)
    for column in {m.column for m in CONTINUOUS}:
        out[column] = pd.to_numeric(rows[column], errors="coerce").where(answered)
    return out


def _verdict(metric: Metric, significant: bool, delta: float) -> Verdict:
    if not significant or delta == 0:
        return "no significant difference"
    return "better" if (delta > 0) == metric.higher_is_better else "worse"


def _empty(metric: Metric) -> MetricDelta:
    return MetricDelta(metric, math.nan, math.nan, math.nan, math.nan, math.nan, 0, "insufficient data", why="no pairs")


def _rate(metric: Metric, a: Array, b: Array, case: Array) -> MetricDelta:
    n = len(a)
    if n == 0:
        return _empty(metric)
    codes, k = cluster.codes(case)
    baseline_only = int(((a == 1) & (b == 0)).sum())
    candidate_only = int(((a == 0) & (b == 1)).sum())
    delta = (candidate_only - baseline_only) / n
    rho = cluster.icc(b - a, codes, k)
    needed = paired_sample_size((baseline_only + candidate_only) / n, DETECT, ALPHA, POWER)
    found = MetricDelta(metric, float(a.mean()), float(b.mean()), delta, math.nan, math.nan, n, "insufficient data",
                        None, (baseline_only, candidate_only), needed, k, rho,
                        cluster.cases_needed(needed, rho, max(1, round(n / k))))  # fmt: skip
    if k < MIN_CASES:
        return replace(found, why=f"{k} case(s), fewer than {MIN_CASES}")
    deltas = cluster.mean_differences(a, b, codes, k)
    low, high = cluster.interval(deltas)
    verdict = _verdict(metric, low > 0 or high < 0, delta)
    why = ""
    if verdict == "no significant difference" and high - low > 2 * DETECT:  # can't tell ±DETECT from nothing
        verdict, why = "insufficient data", f"95% interval wider than ±{100 * DETECT:.0f} pts"
    return replace(found, low=low, high=high, verdict=verdict, p_value=cluster.p_value(deltas), why=why)


def _continuous(metric: Metric, a: Array, b: Array, case: Array, shared: dict[str, Array]) -> MetricDelta:
    """Cluster bootstrap of the statistic's difference: whole cases resampled, each keeping its pairs' link.
    ``shared``: the resampled percentiles of this metric's column, once one of them is drawn."""
    statistic = metric.statistic
    assert statistic is not None  # every CONTINUOUS metric has one
    n = len(a)
    if n == 0:
        return _empty(metric)
    codes, k = cluster.codes(case)
    base, cand = float(statistic(a)), float(statistic(b))
    found = MetricDelta(metric, base, cand, cand - base, math.nan, math.nan, n, "insufficient data", cases=k)
    if n < MIN_BOOTSTRAP_PAIRS or k < MIN_CASES:
        return replace(found, why=f"{n} pairs in {k} case(s)")
    low, high = cluster.interval(_resampled(metric, a, b, codes, k, shared))
    return replace(found, low=low, high=high, verdict=_verdict(metric, low > 0 or high < 0, cand - base))


def _resampled(metric: Metric, a: Array, b: Array, codes: Array, k: int, shared: dict[str, Array]) -> Array:
    """The metric's resampled differences, each the number ``cluster.statistic_differences`` gives for it."""
    statistic = metric.statistic
    assert statistic is not None
    if statistic is _per_1k_mean:  # the fast path of sums per case
        return 1000 * cluster.mean_differences(a, b, codes, k)
    if statistic is _mean:  # token counts: sums per case, the same numbers
        found = cluster.whole_mean_differences(a, b, codes, k)
        return found if found is not None else cluster.statistic_differences(a, b, codes, k, statistic)
    if statistic in PERCENTILES:  # every percentile of the column from one draw: np.percentile's, q by q
        if f"{metric.column} {PERCENTILES[statistic]}" not in shared:
            together = [m.statistic for m in CONTINUOUS if m.column == metric.column and m.statistic in PERCENTILES]
            qs = [PERCENTILES[s] for s in together if s is not None]
            found = cluster.percentile_differences(a, b, codes, k, qs)
            shared |= {f"{metric.column} {q}": row for q, row in zip(qs, found, strict=True)}
        return shared[f"{metric.column} {PERCENTILES[statistic]}"]
    return cluster.statistic_differences(a, b, codes, k, statistic)


def _cases(baseline: pd.DataFrame, candidate: pd.DataFrame) -> pd.DataFrame:
    def counts(rows: pd.DataFrame, side: str) -> pd.DataFrame:
        outcome = rows["outcome"].astype(str)
        grouped = (
            pd.DataFrame(
                {
                    "eval": rows["eval"],
                    "case": rows["case"],
                    "passed": outcome == "passed",
                    "answered": outcome.isin(["passed", "failed"]),
                    "errored": outcome == "errored",
                }
            )
            .groupby(["eval", "case"], sort=True)
            .sum()
        )
        return grouped.add_prefix(f"{side}_")

    both = counts(baseline, "baseline").join(counts(candidate, "candidate"), how="outer")
    return both.fillna(0).astype(int).reset_index()


def _measured(pairs: pd.DataFrame, column: str, case: Array) -> tuple[Array, Array, Array]:
    """Both sides' values of one column, and each pair's case, over the pairs where both sides have a value."""
    both = pairs[[f"{column}_a", f"{column}_b"]]
    kept = both.notna().all(axis=1).to_numpy()
    values = both.to_numpy(dtype=float)[kept]
    return values[:, 0], values[:, 1], case[kept]


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, baseline_name: str, candidate_name: str) -> Comparison:
    """Compare two sides' result rows, paired by eval, case and sample (each side is one variant of one run)."""
    a, b = _per_row(baseline), _per_row(candidate)
    pairs = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
    unpaired = len(a) + len(b) - 2 * len(pairs)
    deltas: list[MetricDelta] = []
    # the cluster of a pair, as its label's rank: each metric's np.unique of its pairs' clusters then sorts numbers,
    # not 50,000 strings, and numbers them as it would the labels
    case, _ = cluster.codes((pairs["eval"].astype(str) + "\x1f" + pairs["case"].astype(str)).to_numpy())
    for metric in RATES:
        deltas.append(_rate(metric, *_measured(pairs, metric.name, case)))
    shared: dict[str, Array] = {}
    for metric in CONTINUOUS:
        deltas.append(_continuous(metric, *_measured(pairs, metric.column, case), shared))
    evals = sorted({str(e) for side in (baseline, candidate) for e in side["eval"].unique()})  # not every row's
    return Comparison(
        ", ".join(evals), baseline_name, candidate_name, tuple(deltas), _cases(baseline, candidate), unpaired
    )


def compare_variants(df: pd.DataFrame, pairs: Mapping[str, Sequence[tuple[str, str]]]) -> list[Comparison]:
    """Within one run: each eval's (baseline, candidate) variant pairs (eval → pairs), in the order given.

    A pair one of whose variants did not run (e.g. filtered out with --variant) has nothing to be compared.
    """
    out: list[Comparison] = []
    for eval_name, rows in df.groupby("eval", sort=True):
        side = rows["variant"].astype(str)
        ran = set(side.unique())  # not a Python loop over every row
        for baseline, candidate in pairs.get(str(eval_name), ()):
            if baseline in ran and candidate in ran:
                out.append(compare(rows[side == baseline], rows[side == candidate], baseline, candidate))
    return out


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, a_name: str, b_name: str) -> list[Comparison]:
    """Between two runs: each eval × variant that both ran, run A as the baseline."""
    common = sorted(set(_groups(a)) & set(_groups(b)))
    return [compare(_groups(a)[key], _groups(b)[key], f"{key[1]} @ {a_name}", f"{key[1]} @ {b_name}") for key in common]


def _groups(df: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    return {(str(e), str(v)): rows for (e, v), rows in df.groupby(["eval", "variant"], sort=True)}


def unmatched(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Eval × variant pairs that only one of two runs has (reported, not compared)."""
    only_a = sorted(set(_groups(a)) - set(_groups(b)))
    only_b = sorted(set(_groups(b)) - set(_groups(a)))
    return [f"{e}/{v} only in A" for e, v in only_a] + [f"{e}/{v} only in B" for e, v in only_b]


def load_run(target: Path, as_text: bool = False) -> pd.DataFrame:
    """A run's result rows, from its reports directory or its results.csv (``as_text``: every cell as written)."""
    path = target / "results.csv" if target.is_dir() else target
    if not path.is_file():
        raise PromptVCRError(f"no results.csv at {path}: give a reports/<run-id> directory or its results.csv")
    text: Any = str if as_text else {"eval": str, "case": str, "variant": str, "outcome": str}
    df = pd.read_csv(path, dtype=text, keep_default_na=False)
    missing = [c for c in USED if c not in df.columns]
    if missing:
        raise PromptVCRError(f"{path} is not a promptvcr results.csv (missing columns: {', '.join(missing)})")
    return df


def newest_runs(reports_dir: Path, count: int = 2) -> list[Path]:
    """The ``count`` newest run directories (run ids sort by time), oldest first."""
    runs = sorted(p for p in reports_dir.iterdir() if p.is_dir() and not p.is_symlink()) if reports_dir.is_dir() else []
    return runs[-count:]


# ------------------------------------------------------------------------------------------------ presentation


def _value(metric: Metric, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if metric.unit == "rate":
        return f"{100 * value:.1f}%"
    if metric.unit == "usd":
        return f"${value:.4f}"
    return f"{value:.0f}" if metric.unit == "ms" else f"{value:.1f}"


def _test(m: MetricDelta) -> str:
    if m.why:
        return m.why
    if m.p_value is None:
        return "cluster bootstrap 95% CI"
    b, c = m.discordant
    return f"cluster bootstrap p={m.p_value:.3g}; discordant {b}/{c}"
