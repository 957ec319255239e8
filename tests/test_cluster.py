"""Statistics clustered by case (harness.report._cluster) and what they change in a comparison
(harness.report._compare).

Two synthetic evals: one whose difference lives in a few cases, every sample of a case alike (per-sample McNemar
calls it significant, the cases don't support it), one whose difference is spread over many cases (it is real).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.report import _cluster as cluster
from harness.report import _compare as compare
from harness.report import _stats as stats
from harness.run._row import COLUMNS


def rows(variant: str, outcomes: dict[str, list[int]]) -> pd.DataFrame:
    """Result rows of one variant: case id → its samples' outcomes (1 passed, 0 failed)."""
    out: list[dict[str, Any]] = []
    for case, samples in outcomes.items():
        for sample, ok in enumerate(samples):
            row: dict[str, Any] = dict.fromkeys(COLUMNS)
            row |= {"eval": "ev", "case": case, "variant": variant, "model": "m", "sample": sample}
            row |= {"outcome": "passed" if ok else "failed", "json_valid": bool(ok), "cost_usd": 0.0}
            row |= {"prompt_tokens": 10, "completion_tokens": 5, "latency_ms": 100.0 + sample}
            out.append(row)
    return pd.DataFrame(out, columns=list(COLUMNS))


def test_identical_samples_within_cases_are_not_a_significant_difference() -> None:
    # 10 cases × 20 samples, every sample of a case the same. B is better on 3 cases, worse on 1, equal on 6.
    samples = 20
    a_cases = [1, 1, 1, 0, 0, 0, 1, 1, 0, 0]
    b_cases = [1, 1, 1, 1, 1, 1, 0, 1, 0, 0]
    a = rows("a", {f"c{i}": [ok] * samples for i, ok in enumerate(a_cases)})
    b = rows("b", {f"c{i}": [ok] * samples for i, ok in enumerate(b_cases)})
    # Per sample, these are 60 pairs only B passed against 20 only A passed: McNemar calls that significant.
    assert stats.mcnemar_exact(20, 60) < 0.001
    result = compare.compare(a, b, "a", "b")
    json_valid = result.get("json_valid_rate")
    assert json_valid.discordant == (20, 60) and json_valid.delta == pytest.approx(0.2)
    assert (json_valid.cases, json_valid.per_case) == (10, 20)
    assert json_valid.icc == pytest.approx(1.0)  # all of a case's samples alike
    assert json_valid.low <= 0 <= json_valid.high  # the cases do not exclude "no difference"
    assert json_valid.verdict not in ("better", "worse")
    assert json_valid.p_value is not None and json_valid.p_value > 0.05
    # at ρ = 1 a case is worth one pair: the advice is in cases, and more samples per case would not lower it
    assert json_valid.needed_pairs is not None
    assert json_valid.needed_cases == json_valid.needed_pairs
    assert result.regressions(10) == []


def test_a_true_difference_spread_over_many_cases_is_significant() -> None:
    # 40 cases × 5 samples, each sample drawn on its own: A passes 60% of the time, B 85%.
    rng = random.Random(7)
    a = rows("a", {f"c{i}": [int(rng.random() < 0.60) for _ in range(5)] for i in range(40)})
    b = rows("b", {f"c{i}": [int(rng.random() < 0.85) for _ in range(5)] for i in range(40)})
    result = compare.compare(a, b, "a", "b")
    json_valid = result.get("json_valid_rate")
    expected = (b["outcome"] == "passed").mean() - (a["outcome"] == "passed").mean()
    assert json_valid.delta == pytest.approx(expected)
    assert json_valid.cases == 40 and json_valid.n == 200
    assert 0 < json_valid.low < json_valid.delta < json_valid.high
    assert json_valid.verdict == "better"
    reverse = compare.compare(b, a, "b", "a").get("json_valid_rate")
    assert reverse.verdict == "worse" and any(
        "json_valid_rate" in r for r in compare.compare(b, a, "b", "a").regressions(10)
    )


def test_too_few_cases_or_too_wide_an_interval_is_insufficient_data() -> None:
    # 3 cases: too few clusters to resample, however many samples
    few = compare.compare(
        rows("a", {f"c{i}": [0] * 50 for i in range(3)}), rows("b", {f"c{i}": [1] * 50 for i in range(3)}), "a", "b"
    )
    assert few.get("json_valid_rate").verdict == "insufficient data" and "3 case" in few.get("json_valid_rate").why
    # 6 cases, one better and one worse: no evidence either way, and an interval far wider than ±5 pts
    a = rows("a", {f"c{i}": [int(i == 0)] * 10 for i in range(6)})
    b = rows("b", {f"c{i}": [int(i == 1)] * 10 for i in range(6)})
    wide = compare.compare(a, b, "a", "b").get("json_valid_rate")
    assert wide.delta == 0 and wide.high - wide.low > 2 * compare.DETECT
    assert wide.verdict == "insufficient data" and "wider" in wide.why


def test_cluster_bootstrap_of_a_mean_against_resampling_by_hand() -> None:
    a = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    b = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    case = np.array(["x", "x", "y", "y", "z", "z"])
    codes, k = cluster.codes(case)
    fast = cluster.mean_differences(a, b, codes, k, resamples=200)
    slow = cluster.statistic_differences(a, b, codes, k, lambda v: v.mean(), resamples=200)
    assert fast == pytest.approx(slow)  # same draws (fixed seed), two ways of computing them
    # whole cases drawn: case x sums +2 over its 2 pairs, y −1, z 0; a draw of nx, ny, nz cases (3 in all) gives
    # (2·nx − ny) / 6 — only those values can occur, and over 200 draws both ends do
    possible = {round((2 * nx - ny) / 6, 9) for nx in range(4) for ny in range(4 - nx)}
    assert {round(float(v), 9) for v in fast} <= possible
    assert fast.max() == 1.0 and fast.min() == -0.5


def test_icc_and_cases_needed_by_hand() -> None:
    # two cases, each with identical values inside: everything varies between cases, ρ = 1
    d = np.array([1.0, 1.0, 0.0, 0.0])
    codes, k = cluster.codes(np.array(["p", "p", "q", "q"]))
    assert cluster.icc(d, codes, k) == 1.0
    # no variation between case means: ρ clipped at 0
    d2 = np.array([1.0, 0.0, 1.0, 0.0])
    assert cluster.icc(d2, codes, k) == 0.0
    assert math.isnan(cluster.icc(np.array([1.0]), np.array([0]), 1))
    # 100 independent pairs at 10 samples per case: 10 cases when ρ = 0, 100 when ρ = 1, 55 when ρ = 0.5
    assert [cluster.cases_needed(100, rho, 10) for rho in (0.0, 1.0, 0.5)] == [10, 100, 55]


@pytest.mark.parametrize(("k", "n"), [(1, 5), (7, 100), (50, 1000)])
def test_each_clusters_rows_are_its_rows_in_order(k: int, n: int) -> None:
    codes = np.random.default_rng(k).integers(0, k, size=n)
    codes[:k] = np.arange(k)  # every cluster has a row
    members = cluster._members(codes, k)
    assert [list(m) for m in members] == [[i for i in range(n) if codes[i] == c] for c in range(k)]
