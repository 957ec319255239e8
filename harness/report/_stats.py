"""Small statistics, each guarded for empty input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a proportion; (nan, nan) when n is 0."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)  # exact at the ends, not 0.9999999999999999
    return (low, high)


def rate(successes: int, n: int) -> float:
    return successes / n if n > 0 else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of the finite values; nan when there are none."""
    return percentiles(values, (q,))[0]


def percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    """``percentile`` at each of ``qs``, the values sorted once."""
    data = sorted([v for v in values if v == v])  # NaN is the one float unequal to itself
    return [_interpolated(data, q) for q in qs]


def _interpolated(data: Sequence[float], q: float) -> float:
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def mcnemar_exact(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against Binomial(b + c, 1/2).

    p = min(1, 2 · Σ_{k ≤ min(b, c)} C(b + c, k) / 2^(b + c)); 1.0 without discordant pairs (no evidence).
    Integer arithmetic until the one division, so large counts neither overflow nor lose the tail.
    """
    n = first_only + second_only
    tail = sum(math.comb(n, k) for k in range(min(first_only, second_only) + 1))
    return min(1.0, 2 * tail / (1 << n))  # 1 << n is 2^n as an int (int ** int is typed Any)


def newcombe_paired(both: int, first_only: int, second_only: int, neither: int, z: float = Z95) -> tuple[float, float]:
    """95% interval for p_first − p_second from paired binary outcomes; (nan, nan) without pairs.

    Newcombe's method 10 (hybrid score, no continuity correction on the Wilson limits): R. G. Newcombe, "Improved
    confidence intervals for the difference between binomial proportions based on paired data", Statistics in
    Medicine 17 (1998) 2635–2650; as in Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables
    (2017), ch. 8. It combines the two Wilson intervals with the correlation φ of the pairs, so it stays inside
    [−1, 1] and behaves at 0% and 100%, where the Wald interval collapses.
    """
    n = both + first_only + second_only + neither
    if n == 0:
        return (math.nan, math.nan)
    p1, p2 = (both + first_only) / n, (both + second_only) / n
    l1, u1 = wilson(both + first_only, n, z)
    l2, u2 = wilson(both + second_only, n, z)
    margins = (both + first_only) * (second_only + neither) * (both + second_only) * (first_only + neither)
    cross = both * neither - first_only * second_only
    # Newcombe's φ: the cross-product shrunk by n/2 when positive (his correction), 0 for a degenerate margin.
    shrunk = cross - n / 2 if cross > n / 2 else (0.0 if cross >= 0 else float(cross))
    phi = shrunk / math.sqrt(margins) if margins else 0.0
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return (max(-1.0, low), min(1.0, high))


def paired_sample_size(discordant: float, difference: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Pairs needed for a two-sided McNemar test to detect ``difference`` (Connor, Biometrics 43 (1987) 207–211).

    n = (z_{1−α/2}·√ψ + z_{1−β}·√(ψ − δ²))² / δ², with ψ the share of discordant pairs and δ the difference.
    ψ can't be below |δ| (every changed outcome is a discordant pair), so a smaller observed ψ is raised to it.
    """
    delta = abs(difference)
    if delta == 0:
        raise ValueError("difference must not be 0")
    psi = max(discordant, delta)
    z_alpha = NormalDist().inv_cdf(1 - alpha / 2)
    z_beta = NormalDist().inv_cdf(power)
    return math.ceil((z_alpha * math.sqrt(psi) + z_beta * math.sqrt(psi - delta * delta)) ** 2 / delta**2)


_LANES, _BLOCK = 8, 128  # numpy's pairwise summation: 8 accumulators, blocks of up to 128 values


def pairwise_sum(values: Sequence[float]) -> float:
    """The float sum as numpy (and so pandas' ``Series.sum``) adds it, to the last bit: the reports' figures were
    pandas' and keep their digits. Pairwise over halves, blocks of up to 128 values added in 8 lanes."""
    return 0.0 + _pairwise(values, 0, len(values))


def _pairwise(a: Sequence[float], start: int, n: int) -> float:
    if n < _LANES:
        total = 0.0
        for i in range(start, start + n):
            total += a[i]
        return total
    if n <= _BLOCK:
        lanes = [float(a[start + j]) for j in range(_LANES)]
        i = _LANES
        while i < n - n % _LANES:
            for j in range(_LANES):
                lanes[j] += a[start + i + j]
            i += _LANES
        total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        for k in range(start + i, start + n):
            total += a[k]
        return total
    half = n // 2
    half -= half % _LANES
    return _pairwise(a, start, half) + _pairwise(a, start + half, n - half)


def sorted_group_mean(values: Sequence[float]) -> float:
    """The mean of one group as pandas' ``groupby(...).mean()`` takes it over rows sorted by the key, to the last
    bit: numpy's ``add.reduceat``, the first value plus the pairwise sum of the others; nan if empty."""
    if not values:
        return math.nan
    return (values[0] + _pairwise(values, 1, len(values) - 1)) / len(values)
