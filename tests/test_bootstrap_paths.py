"""The cluster bootstrap's short cuts (harness.report._cluster, harness.report._compare) give the very numbers of
the plain way: every resample drawn one at a time, its rows gathered, the statistic taken on each side — written
out here on its own, so a short cut that drifts by one bit fails."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.report import _cluster as cluster
from harness.report import _compare as compare
from harness.run._row import COLUMNS

Array = np.ndarray[Any, Any]


def by_hand(a: Array, b: Array, codes: Array, k: int, statistic: Callable[[Array], Any]) -> Array:
    """statistic(b) − statistic(a) over each resample of whole clusters, drawn as the module draws them."""
    rng = np.random.default_rng(cluster.SEED)
    members = [np.flatnonzero(codes == c) for c in range(k)]
    out = []
    for start in range(0, cluster.RESAMPLES, cluster.CHUNK):
        for chosen in rng.integers(0, k, size=(min(cluster.CHUNK, cluster.RESAMPLES - start), k)):
            rows = np.concatenate([members[c] for c in chosen])
            out.append(float(statistic(b[rows])) - float(statistic(a[rows])))
    return np.asarray(out)


def data(seed: int, k: int, equal: bool, whole: bool) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    sizes = np.full(k, 6) if equal else rng.integers(1, 9, size=k)
    codes = np.repeat(np.arange(k), sizes)
    rng.shuffle(codes)  # a cluster's rows need not be together
    n = len(codes)
    if whole:
        return rng.integers(0, 400, size=n).astype(float), rng.integers(0, 400, size=n).astype(float), codes
    ties = rng.choice([100.0, 250.5], size=n)  # repeated values too: percentiles between equal neighbours
    a = np.where(rng.random(n) < 0.3, ties, rng.gamma(2.0, 300.0, size=n))
    return a, rng.gamma(2.0, 290.0, size=n), codes


@pytest.mark.parametrize(("seed", "equal"), [(1, True), (2, False), (3, True), (4, False)])
def test_means_of_whole_numbers_from_sums_are_the_means_by_hand(seed: int, equal: bool) -> None:
    a, b, codes = data(seed, 23, equal, whole=True)
    fast = cluster.whole_mean_differences(a, b, codes, 23)
    assert fast is not None
    assert np.array_equal(fast, by_hand(a, b, codes, 23, np.mean))
    assert np.array_equal(cluster.statistic_differences(a, b, codes, 23, lambda v: v.mean(axis=-1)), fast)


@pytest.mark.parametrize(("seed", "equal"), [(15, True), (16, False)])
def test_mean_differences_are_each_resamples_sum_over_its_pairs_by_hand(seed: int, equal: bool) -> None:
    """A rate's (and cost's) resampled mean difference: the drawn cases' sums of differences over their pairs, to
    the bit, whether every case has as many pairs (counted without gathering) or not."""
    a, b, codes = data(seed, 19, equal, whole=False)
    sums = np.bincount(codes, weights=b - a, minlength=19)
    members = [np.flatnonzero(codes == c) for c in range(19)]
    rng = np.random.default_rng(cluster.SEED)
    plain = []
    for start in range(0, cluster.RESAMPLES, cluster.CHUNK):
        for chosen in rng.integers(0, 19, size=(min(cluster.CHUNK, cluster.RESAMPLES - start), 19)):
            plain.append(np.sum(sums[chosen]) / sum(len(members[c]) for c in chosen))
    assert np.array_equal(cluster.mean_differences(a, b, codes, 19), np.asarray(plain))


def test_draws_kept_for_the_next_statistic_are_the_draws_made_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statistic of a comparison draws the same cases: kept once (in small integers) or drawn each time, the
    resamples are the same to the bit."""
    a, b, codes = data(17, 21, False, whole=False)
    cluster._kept_picks.cache_clear()
    kept = cluster.mean_differences(a, b, codes, 21), cluster.percentile_differences(a, b, codes, 21, [50, 95])
    assert cluster._kept_picks(21, cluster.RESAMPLES) is not None
    monkeypatch.setattr(cluster, "KEPT_PICKS_BYTES", 0)
    cluster._kept_picks.cache_clear()
    fresh = cluster.mean_differences(a, b, codes, 21), cluster.percentile_differences(a, b, codes, 21, [50, 95])
    assert cluster._kept_picks(21, cluster.RESAMPLES) is None
    cluster._kept_picks.cache_clear()
    for one, other in zip(kept, fresh, strict=True):
        assert np.array_equal(one.view(np.int64), other.view(np.int64))


def test_means_of_fractions_are_not_taken_from_sums() -> None:
    a, b, codes = data(5, 9, True, whole=False)
    assert cluster.whole_mean_differences(a, b, codes, 9) is None
    huge = np.full(len(a), 2.0**52)  # whole, but a resample's sum would pass the doubles' exact integers
    assert cluster.whole_mean_differences(huge, huge, codes, 9) is None


@pytest.mark.parametrize(("seed", "equal"), [(6, True), (7, False), (8, True)])
def test_percentiles_drawn_together_are_each_percentile_by_hand(seed: int, equal: bool) -> None:
    a, b, codes = data(seed, 17, equal, whole=False)
    together = cluster.statistic_differences(a, b, codes, 17, lambda v: np.percentile(v, [50, 95], axis=-1))
    assert together.shape == (2, cluster.RESAMPLES)
    for row, q in zip(together, (50, 95), strict=True):
        assert np.array_equal(row, by_hand(a, b, codes, 17, lambda v, q=q: np.percentile(v, q)))


def frame(variant: str, a: Array, codes: Array, tokens: Array) -> pd.DataFrame:
    lines = []
    for i, (value, code) in enumerate(zip(a, codes, strict=True)):
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        sample = int(np.sum(codes[:i] == code))
        row |= {"eval": "ev", "case": f"c{code:03d}", "variant": variant, "model": "m", "sample": sample}
        row |= {"outcome": "passed" if value > 500 else "failed", "json_valid": bool(value > 300)}
        row |= {"cost_usd": value / 1e6, "prompt_tokens": int(tokens[i]), "completion_tokens": int(tokens[i]) // 3}
        row |= {"latency_ms": float(value)}
        lines.append(row)
    return pd.DataFrame(lines, columns=list(COLUMNS))


@pytest.mark.parametrize("equal", [True, False])
def test_a_comparisons_continuous_intervals_are_the_plain_bootstraps(equal: bool) -> None:
    a, b, codes = data(9, 12, equal, whole=False)
    tokens_a, tokens_b, same = data(9, 12, equal, whole=True)  # the same seed: the same clusters
    assert np.array_equal(same, codes)
    result = compare.compare(frame("a", a, codes, tokens_a), frame("b", b, codes, tokens_b), "a", "b")
    pairs = compare._per_row(frame("a", a, codes, tokens_a)).merge(
        compare._per_row(frame("b", b, codes, tokens_b)), on=compare.KEYS, suffixes=("_a", "_b")
    )
    case_codes, k = cluster.codes(pairs["case"].to_numpy())
    plain: dict[str, Callable[[Array], Any]] = {
        "prompt_tokens": np.mean,
        "completion_tokens": np.mean,
        "latency_p50_ms": lambda v: np.percentile(v, 50),
        "latency_p95_ms": lambda v: np.percentile(v, 95),
    }
    for name, statistic in plain.items():
        column = compare.CONTINUOUS[[m.name for m in compare.CONTINUOUS].index(name)].column
        side_a, side_b = pairs[f"{column}_a"].to_numpy(float), pairs[f"{column}_b"].to_numpy(float)
        low, high = cluster.interval(by_hand(side_a, side_b, case_codes, k, statistic))
        found = result.get(name)
        assert (found.low, found.high) == (low, high), name
        assert found.baseline == float(statistic(side_a)) and found.candidate == float(statistic(side_b))


def spread(seed: int, k: int, sizes: Array, kind: str) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(k), sizes)
    rng.shuffle(codes)
    n = len(codes)
    if kind == "ties":  # few distinct values: ranks land inside runs of equal ones
        return rng.integers(0, 4, size=n).astype(float), rng.integers(0, 3, size=n).astype(float), codes
    if kind == "equal":  # every value alike: every percentile is that value
        return np.full(n, 7.25), np.full(n, 7.25), codes
    return rng.normal(0.0, 1e3, size=n), rng.lognormal(3.0, 1.5, size=n), codes


@pytest.mark.parametrize("kind", ["spread", "ties", "equal"])
@pytest.mark.parametrize(
    ("seed", "k", "shape"), [(10, 5, "equal"), (11, 13, "unequal"), (12, 40, "equal"), (13, 1, "equal"), (14, 7, "one")]
)
def test_percentiles_from_order_statistics_are_np_percentiles_bit_for_bit(
    seed: int, k: int, shape: str, kind: str
) -> None:
    rng = np.random.default_rng(seed)
    sizes = {"equal": np.full(k, 4), "unequal": rng.integers(1, 12, size=k), "one": np.ones(k, int)}[shape]
    a, b, codes = spread(seed, k, sizes, kind)
    qs = [0, 2.5, 33.3, 50, 95, 97.5, 99.9, 100]
    fast = cluster.percentile_differences(a, b, codes, k, qs, resamples=600)
    plain = cluster.statistic_differences(a, b, codes, k, lambda v: np.percentile(v, qs, axis=-1), resamples=600)
    assert fast.shape == (len(qs), 600)
    assert np.array_equal(fast.view(np.int64), plain.view(np.int64))  # the same bits, −0.0 and 0.0 apart


@pytest.mark.parametrize("odd", [math.nan, math.inf])
def test_percentiles_of_values_not_all_finite_take_the_general_way(odd: float) -> None:
    a, b, codes = spread(15, 9, np.full(9, 5), "spread")
    a[3], b[17] = odd, odd
    qs = [50, 95]
    with np.errstate(invalid="ignore"):  # inf − inf between two infinite neighbours
        fast = cluster.percentile_differences(a, b, codes, 9, qs, resamples=300)
        plain = cluster.statistic_differences(a, b, codes, 9, lambda v: np.percentile(v, qs, axis=-1), resamples=300)
    assert np.array_equal(fast, plain, equal_nan=True)


def test_percentiles_of_signed_zeros_are_np_percentiles_bit_for_bit() -> None:
    rng = np.random.default_rng(16)
    codes = np.repeat(np.arange(11), 3)
    a, b = rng.choice([0.0, -0.0], size=len(codes)), rng.choice([0.0, -0.0], size=len(codes))
    qs = [50, 90, 97.5]  # weights of 0.5 and more: the upper neighbour's sign can come through
    fast = cluster.percentile_differences(a, b, codes, 11, qs, resamples=300)
    plain = cluster.statistic_differences(a, b, codes, 11, lambda v: np.percentile(v, qs, axis=-1), resamples=300)
    assert np.array_equal(fast.view(np.int64), plain.view(np.int64))
