"""What a load run counts while it runs (``Tally``) and how it is shown: the progress line, and the final
``LoadReport`` with its percentiles.

Kept apart from the sending (``harness.testing.loadgen``), which only adds to the tally: the figures and their
arithmetic (the send window, the 429 share, CPU per attempt) are read here in one place.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    started: int = 0
    done: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    attempts: int = 0
    retries: int = 0
    count_429: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    last_send: float = 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank) and max; zeros for no values."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


@dataclass
class LoadReport:
    target_rps: float
    requests: int
    duration_s: float  # from the first scheduled send to the last answer
    send_window_s: float  # from the first scheduled send to the last actual send
    achieved_rps: float
    latency_ms: dict[str, float]
    lag_ms: dict[str, float]
    statuses: dict[str, int]
    attempts: int
    retries: int
    share_429: float
    concurrency: int
    max_in_flight: int
    cpu_ms_per_attempt: (
        float  # this process's CPU time over attempts: when it nears 1000 / rps, the client is the limit
    )
    planned: int = 0  # more than ``requests`` when Ctrl-C stopped the run early

    @property
    def stopped(self) -> bool:
        return self.planned > self.requests

    def text(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        lat, lag = self.latency_ms, self.lag_ms
        stopped = f" — stopped by Ctrl-C, {self.planned} planned" if self.stopped else ""
        sent = f"{self.requests} in {self.duration_s:.2f}s (sent over {self.send_window_s:.2f}s)"
        return "\n".join(
            [
                f"requests      {sent}{stopped}",
                f"achieved RPS  {self.achieved_rps:.1f} of {self.target_rps:g} "
                f"({self.achieved_rps / self.target_rps:.1%})",
                f"latency ms    p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}",
                f"sched. lag ms p50 {lag['p50']:.2f}  p99 {lag['p99']:.2f}  max {lag['max']:.2f}",
                f"statuses      {statuses}",
                f"attempts      {self.attempts} ({self.retries} retries), 429 share {self.share_429:.1%}",
                f"in flight     max {self.max_in_flight} (cap {self.concurrency}); "
                f"client CPU {self.cpu_ms_per_attempt:.2f} ms per attempt",
            ]
        )


def report_of(
    tally: Tally, target_rps: float, concurrency: int, start: float, end: float, cpu_s: float, planned: int
) -> LoadReport:
    """The report of a run that began at ``start`` and ended at ``end`` (perf_counter), ``cpu_s`` of this process's
    CPU time spent on it."""
    window = max(tally.last_send - start, 0.0) + 1 / target_rps  # n sends on schedule span exactly n / rps
    return LoadReport(
        target_rps=target_rps,
        requests=tally.started,
        duration_s=end - start,
        send_window_s=window,
        achieved_rps=tally.started / window,
        latency_ms=percentiles(tally.latencies),
        lag_ms=percentiles(tally.lags),
        statuses=dict(tally.statuses),
        attempts=tally.attempts,
        retries=tally.retries,
        share_429=tally.count_429 / tally.attempts if tally.attempts else 0.0,
        concurrency=concurrency,
        max_in_flight=tally.max_in_flight,
        cpu_ms_per_attempt=cpu_s * 1000 / max(1, tally.attempts),
        planned=planned,
    )


def progress_line(tally: Tally, total: int, start: float, now: float, duration_s: float) -> str:
    elapsed = max(1e-9, now - start)
    errors = sum(v for k, v in tally.statuses.items() if k != "200")
    lag = percentiles(tally.lags[-2000:])["p99"]  # recent: a lag spike shows while it happens
    return (
        f"load: {elapsed:5.1f}s/{duration_s:g}s  sent {tally.started}/{total}  done {tally.done}  "
        f"in flight {tally.in_flight}  {tally.started / elapsed:6.1f} rps  errors {errors}  lag p99 {lag:.1f} ms"
    )
