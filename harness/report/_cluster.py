"""Statistics clustered by case: samples of one case share a prompt, so they are not independent observations.

Treating every sample as its own pair makes a difference that lives in two or three cases look like hundreds of
independent discordant pairs. Here the case is the unit that is resampled: a cluster (case) bootstrap of the paired
difference (Field & Welsh, "Bootstrapping clustered data", JRSS B 69 (2007) 369–390; Cameron, Gelbach & Miller,
"Bootstrap-based improvements for inference with clustered errors", REStat 90 (2008) 414–427), and sample-size
advice through the design effect 1 + (m − 1)·ρ of m samples per case with intra-case correlation ρ (Kish 1965;
Donner & Klar, Design and Analysis of Cluster Randomization Trials, 2000, ch. 5).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._lazy import numpy as np

if TYPE_CHECKING:
    Array = np.ndarray[Any, Any]  # annotations only (they are not evaluated)


RESAMPLES = 2000
SEED = 0  # fixed: the same rows give the same report (serial and pytest-xdist runs compare equal)
ALPHA = 0.05
CHUNK = 250  # resamples drawn at once: memory stays at CHUNK × cases values
KEPT_PICKS_BYTES = 32 << 20  # draws kept for the next statistic (``_kept_picks``): 2,000 of ~8,000 cases
ROW_VALUES = 1 << 21  # rows of resamples taken at once by a statistic (a few arrays of this many: ~16 MB each)


def codes(labels: Array) -> tuple[Array, int]:
    """Each row's cluster as 0..k−1, and k."""
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.intp), int(inverse.max()) + 1 if len(inverse) else 0


def _picks(k: int, resamples: int) -> Iterator[Array]:
    """Which clusters each resample draws (with replacement), one row per resample, in chunks that bound memory."""
    kept = _kept_picks(k, resamples)
    if kept is not None:
        yield from (kept[start : start + CHUNK] for start in range(0, resamples, CHUNK))
        return
    rng = np.random.default_rng(SEED)
    for start in range(0, resamples, CHUNK):
        yield rng.integers(0, k, size=(min(CHUNK, resamples - start), k))


@functools.lru_cache(maxsize=1)
def _kept_picks(k: int, resamples: int) -> Array | None:
    """``_picks``' draws, all of them, in the smallest integers that hold them: every statistic of a comparison
    draws the same clusters (nine of them, at 5,000 cases 10 M numbers each); None past KEPT_PICKS_BYTES."""
    compact = np.int16 if k <= np.iinfo(np.int16).max else np.int32
    if resamples * k * np.dtype(compact).itemsize > KEPT_PICKS_BYTES:
        return None
    rng = np.random.default_rng(SEED)
    kept = np.empty((resamples, k), compact)
    for start in range(0, resamples, CHUNK):  # filled in place: no second copy of them all
        kept[start : start + CHUNK] = rng.integers(0, k, size=(min(CHUNK, resamples - start), k))
    kept.flags.writeable = False  # shared by every caller
    return kept


def _slices(k: int, resamples: int, step: int) -> Iterator[Array]:
    """``_picks``' draws, at most ``step`` resamples at a time (so that their rows stay within ROW_VALUES)."""
    for picks in _picks(k, resamples):
        yield from (picks[start : start + step] for start in range(0, len(picks), step))


def mean_differences(a: Array, b: Array, cluster: Array, k: int, resamples: int = RESAMPLES) -> Array:
    """Resampled mean(b − a), whole clusters drawn: from each cluster's sum of differences and count of pairs."""
    sums = np.bincount(cluster, weights=b - a, minlength=k)
    counts = np.bincount(cluster, minlength=k).astype(float)
    return np.concatenate([sums[p].sum(axis=1) / _pairs_drawn(counts, p) for p in _picks(k, resamples)])


def _pairs_drawn(counts: Array, picks: Array) -> Array | float:
    """How many pairs each resample holds: the drawn clusters' counts summed (whole numbers: exact in any order), or,
    when every cluster has as many (a case's samples), that many k times over, without gathering them."""
    if counts.size and counts.min() == counts.max():
        return float(counts[0] * picks.shape[1])
    return np.asarray(counts[picks].sum(axis=1))


def whole_mean_differences(a: Array, b: Array, cluster: Array, k: int, resamples: int = RESAMPLES) -> Array | None:
    """Resampled mean(b) − mean(a), the numbers ``statistic_differences`` gives with a mean, from each cluster's sums
    and counts: when every value is a whole number (token counts) every sum is exact, in any order, so a resample's
    mean is its exact sum over its count, as numpy's mean of its rows. None when a value is not whole (or a sum could
    exceed the doubles' exact integers)."""
    if not (_whole(a) and _whole(b)):
        return None
    largest = max(float(np.bincount(cluster, weights=np.abs(v), minlength=k).max(initial=0)) for v in (a, b))
    if k * largest >= 2**53:  # a resample's partial sums stay below this: exact
        return None
    sums_a = np.bincount(cluster, weights=a, minlength=k)
    sums_b = np.bincount(cluster, weights=b, minlength=k)
    counts = np.bincount(cluster, minlength=k).astype(float)
    out = []
    for picks in _picks(k, resamples):
        n = _pairs_drawn(counts, picks)
        out.append(sums_b[picks].sum(axis=1) / n - sums_a[picks].sum(axis=1) / n)
    return np.concatenate(out)


def _whole(values: Array) -> bool:
    return bool(np.all(np.isfinite(values)) and np.array_equal(values, np.trunc(values)))


def statistic_differences(
    a: Array, b: Array, cluster: Array, k: int, statistic: Callable[[Array], Array], resamples: int = RESAMPLES
) -> Array:
    """Resampled statistic(b) − statistic(a) for any statistic (e.g. a percentile), whole clusters drawn; one value
    per resample along the last axis (a statistic may give several per resample, e.g. two percentiles at once). The
    statistic is given the drawn rows' values as a new array of its own (it may reorder them).

    When every cluster has as many rows and the statistic works along the last axis (``axis=-1``), a slice of
    resamples is one array: the same rows in the same order as one resample at a time, so the same numbers, without
    a Python loop per resample (the whole of a small replay's report time, before)."""
    members = _members(cluster, k)
    if len({len(m) for m in members}) == 1:
        table = np.stack(members)
        found = _along_rows(a[table], b[table], k, statistic, resamples)
        if found is not None:
            return found
    out: list[Array] = []
    for side_a, side_b in _drawn(a, b, cluster, k, resamples):
        out.append(np.asarray(statistic(side_b)) - np.asarray(statistic(side_a)))
    return np.stack(out, axis=-1)


def percentile_differences(
    a: Array, b: Array, cluster: Array, k: int, qs: Sequence[float], resamples: int = RESAMPLES
) -> Array:
    """``statistic_differences`` of ``np.percentile(v, qs, axis=-1)`` (its linear method), bit for bit, without
    gathering or partitioning any resample's rows (most of a 100,000-row report's compare time): a resample holds
    each drawn cluster's rows as many times as it is drawn, so its i-th smallest value is the first of a side's values,
    sorted once, where the running count of drawn rows passes i; np.percentile's interpolation is then applied to the
    same two neighbours. Values that are not all finite, or hold a −0.0 (equal to 0.0, so either may be the one an
    order statistic finds), take the general way (whose rows are a fresh gather, free to be reordered in place)."""
    if k == 0 or not (_orderable(a) and _orderable(b)):
        return statistic_differences(
            a, b, cluster, k, lambda v: np.percentile(v, qs, axis=-1, overwrite_input=True), resamples
        )
    sizes = np.bincount(cluster, minlength=k)
    counter = np.int32 if k * int(sizes.max()) < 2**31 else np.int64  # a resample's rows fit: half the memory
    sides = [(values[order], cluster[order]) for values, order in ((v, np.argsort(v, kind="stable")) for v in (a, b))]
    quantiles = np.true_divide(qs, 100)
    step = max(1, ROW_VALUES // len(cluster))
    out = []
    for chosen in _slices(k, resamples, step):
        rows = len(chosen)
        offsets = (chosen + k * np.arange(rows)[:, None]).ravel()
        drawn = np.bincount(offsets, minlength=rows * k).reshape(rows, k)
        ranks, gamma = _neighbours(drawn @ sizes, quantiles)
        drawn = drawn.astype(counter)
        found = []
        for ordered, owner in sides:
            running = np.cumsum(np.take(drawn, owner, axis=1), axis=1, dtype=counter)
            at = np.stack([np.searchsorted(running[r], ranks[r], side="right") for r in range(rows)])
            found.append(_lerp(ordered[at[:, : len(qs)]], ordered[at[:, len(qs) :]], gamma))
        out.append((found[1] - found[0]).T)
    return np.concatenate(out, axis=-1)


def _orderable(values: Array) -> bool:
    return bool(
        values.dtype == np.float64 and np.all(np.isfinite(values)) and not np.any(np.signbit(values[values == 0]))
    )


def _neighbours(n: Array, quantiles: Array) -> tuple[Array, Array]:
    """For resamples of ``n`` rows: the ranks of the two values each quantile lies between (the lower ones, then the
    upper ones), and its weight between them, as numpy's ``_get_indexes`` and ``_get_gamma`` find them (an index at
    or past the last is the last value's, -1, and the weight is taken from that -1)."""
    virtual = (n - 1)[:, None] * quantiles
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= (n - 1)[:, None]
    previous[above] = -1
    following[above] = -1
    lower, upper = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - lower
    last = (n - 1)[:, None]
    return np.concatenate([np.where(lower < 0, last, lower), np.where(upper < 0, last, upper)], axis=1), gamma


def _lerp(low: Array, high: Array, t: Array) -> Array:
    """numpy's ``_lerp``: from the nearer end, so a weight of 1 gives the upper value exactly."""
    diff = high - low
    found: Array = np.where(t >= 0.5, high - diff * (1 - t), low + diff * t)
    return found


def _drawn(a: Array, b: Array, cluster: Array, k: int, resamples: int) -> Iterator[tuple[Array, Array]]:
    """Each resample's rows of both sides: its clusters' rows one after the other (``_members``' order), as
    ``np.concatenate([members[c] for c in chosen])`` picks them, gathered a slice of resamples (at most ROW_VALUES
    values) at a time rather than a concatenation of every cluster's rows per resample."""
    order = np.argsort(cluster, kind="stable")
    counts = np.bincount(cluster, minlength=k)
    starts = np.cumsum(counts) - counts
    step = max(1, ROW_VALUES // max(1, len(cluster)))
    for chosen in _slices(k, resamples, step):
        lengths = counts[chosen].ravel()
        ends = np.cumsum(lengths)
        # row i of the slice's draws comes from the cluster drawn at position j: starts[j] + (i − where j began)
        rows = order[np.repeat(starts[chosen].ravel() - (ends - lengths), lengths) + np.arange(ends[-1])]
        bounds = np.cumsum(counts[chosen].sum(axis=1))[:-1]
        yield from zip(np.split(a[rows], bounds), np.split(b[rows], bounds), strict=True)


def _along_rows(
    table_a: Array, table_b: Array, k: int, statistic: Callable[[Array], Array], resamples: int
) -> Array | None:
    """``statistic_differences`` for equal clusters (``table_a``, ``table_b``: each cluster's values, one row per
    cluster), slices of resamples at a time, at most ROW_VALUES values each (a 100,000-row run held all 2,000
    resamples' rows at once: gigabytes); None when the statistic does not give one value per resample."""
    step = max(1, ROW_VALUES // table_a.size)
    deltas = []
    for chosen in _slices(k, resamples, step):
        delta = statistic(table_b[chosen].reshape(len(chosen), -1)) - statistic(
            table_a[chosen].reshape(len(chosen), -1)
        )
        if np.shape(delta)[-1:] != (len(chosen),):
            return None
        deltas.append(delta)
    return np.concatenate(deltas, axis=-1)


def _members(cluster: Array, k: int) -> list[Array]:
    """Each cluster's row numbers, ascending (as ``np.flatnonzero(cluster == c)``, in one sort instead of a pass over
    every row per cluster: 5,000 cases × 50,000 rows was seconds per statistic)."""
    order = np.argsort(cluster, kind="stable")
    return np.split(order, np.cumsum(np.bincount(cluster, minlength=k))[:-1])


def interval(deltas: Array) -> tuple[float, float]:
    """The percentile interval (1 − ALPHA) of the resampled differences."""
    low, high = np.percentile(deltas, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(low), float(high)


def p_value(deltas: Array) -> float:
    """Two-sided bootstrap p-value of "no difference": twice the share of resamples on the far side of 0, counted
    as (r + 1) / (R + 1) so that no finite number of resamples claims p = 0 (Davison & Hinkley 1997, §4.2)."""
    far = min(int(np.sum(deltas <= 0)), int(np.sum(deltas >= 0)))
    return min(1.0, 2 * (far + 1) / (len(deltas) + 1))


def icc(d: Array, cluster: Array, k: int) -> float:
    """Intra-case correlation of the paired differences by one-way ANOVA, clipped to 0..1 (nan: fewer than 2 cases).

    ρ = (MSB − MSW) / (MSB + (m₀ − 1)·MSW), m₀ the mean case size; cases whose samples are all alike give ρ = 1.
    """
    n = len(d)
    if k < 2 or n <= k:
        return math.nan
    counts = np.bincount(cluster, minlength=k).astype(float)
    means = np.bincount(cluster, weights=d, minlength=k) / counts
    msb = float(np.sum(counts * (means - d.mean()) ** 2) / (k - 1))
    msw = float(np.sum((d - means[cluster]) ** 2) / (n - k))
    m0 = n / k
    if msb + (m0 - 1) * msw == 0:
        return 0.0  # every difference equal: nothing varies, within or between cases
    return min(1.0, max(0.0, (msb - msw) / (msb + (m0 - 1) * msw)))


def cases_needed(independent_pairs: int, rho: float, per_case: int) -> int:
    """Cases that give ``independent_pairs`` worth of information at ``per_case`` samples each.

    Effective pairs of k cases × m samples = k·m / (1 + (m − 1)·ρ); solved for k. At ρ = 1 a case is worth one
    pair however many samples it has: more cases help, more samples per case do not.
    """
    rho = 0.0 if math.isnan(rho) else rho
    return max(2, math.ceil(independent_pairs * (1 + (per_case - 1) * rho) / per_case))
