"""Live throughput of the real runner (issue 4): 1,000 calls recorded through ``pytest.main`` against the chaos server.

    .venv/bin/python bench/runner.py [--repeats 3]

A throw-away project of 50 cases × 2 variants × 10 samples with ``limits: {concurrency: 50}`` and a custom endpoint
at a chaos server (a subprocess, fixed 200 ms latency) is recorded (`--record-mode once`, fresh cassettes) in this
process. The ideal bound is 1,000 × 0.2 s / 50 = 4.0 s. Printed: the whole run (collection, cassettes, reports), the
span from the first request sent to the last answer received (the runner's own pacing), the ratio of each to the
bound, calls/s and the server's own count of requests and their maximum in flight. Then the same with 5% of the
answers a 429 (Retry-After 1 s) to show the retries: every sample must still pass. Last, issue 14's targets: the whole
run ≤ 1.3 × its floor and ≤ 2 ms of this process's CPU a call (also shown against the SDK's own CPU a call, measured
in the same run: the machine's speed moves). The floor is the span of an ideal runner against the same server
answers (bench/ideal.py): the bound without faults; with the 429s, the bound plus the one pause every
sender takes plus the tail of the last 429's own Retry-After (the earlier floor, bound + 1 s, is printed beside it:
no runner that honours Retry-After can reach it). The chaos server is test tooling: these are figures about the
runner, never about a model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ideal  # noqa: E402
import pytest  # noqa: E402
from load import chaos_server  # noqa: E402

from harness.run import _client as client  # noqa: E402
from harness.testing.chaos import ChaosConfig, Latency  # noqa: E402
from tests import evalproject  # noqa: E402

CASES, VARIANTS, SAMPLES, CONCURRENCY, LATENCY_S = 50, 2, 10, 50, 0.2
CALLS = CASES * VARIANTS * SAMPLES
LATENCY = Latency.parse(f"fixed:{LATENCY_S * 1000:g}")
BOUND_S = CALLS * LATENCY_S / CONCURRENCY
WHOLE_TARGET = 1.3  # the whole run ≤ 1.3 × its floor (issue 14)
RETRY_AFTER_S = 1
NAIVE_429_S = BOUND_S + RETRY_AFTER_S  # the bench's floor until 2026-12: the bound and one pause, no tail
CPU_TARGET_MS = 2.0  # this process's CPU a call, collection and reports included
SCHEMA = {"type": "object", "required": ["joke"], "properties": {"joke": {"type": "string", "minLength": 1}}}


class Span:
    """When the first call of the run started and the last one ended (``harness.run._client.call``, wrapped)."""

    def __init__(self) -> None:
        self.first = self.last = 0.0
        self._lock = threading.Lock()
        self._call = client.call

    def __enter__(self) -> Span:
        def timed(api: Any, body: dict[str, Any]) -> client.CallResult:
            start = time.perf_counter()
            try:
                return self._call(api, body)
            finally:
                end = time.perf_counter()
                with self._lock:
                    self.first = min(self.first, start) if self.first else start
                    self.last = max(self.last, end)

        client.call = timed  # type: ignore[assignment]  # the runner calls it as client.call: seen at call time
        return self

    def __exit__(self, *exc: object) -> None:
        client.call = self._call

    @property
    def seconds(self) -> float:
        return self.last - self.first


@dataclass(frozen=True)
class Figures:
    run_s: float
    cpu_s: float  # this process's CPU time over the run, every thread's: near the wall time = bound by the GIL
    span_s: float
    stats: dict[str, Any]


def build(root: Path, base_url: str, cases: int = CASES) -> None:
    root.mkdir(parents=True)
    evalproject.init_project(root)
    bodies = []
    for i in range(cases):
        case = evalproject.json_case(f"joke-{i:03d}", min_pass_rate=0.9, topic=f"a joke about topic #{i}")
        case["expect"] = [{"json_valid": True}, {"json_schema": SCHEMA}]
        bodies.append(case)
    path = evalproject.write_cases(root, "jokes", bodies, {"model": "chaos-model", "response_format": "json_object"})
    evalproject.write_eval(
        root,
        "jokes",
        base_url=base_url,
        cases=[path],
        variants={"cold": {"temperature": 0.2}, "warm": {"temperature": 0.8}},
        samples=SAMPLES,
        limits={"concurrency": CONCURRENCY},
    )


def recorded(root: Path) -> tuple[float, float]:
    """A recording run of the project, in this process; its wall and CPU time (pytest's output is kept)."""
    sys.modules.pop("conftest", None)  # each project has its own conftest.py
    out = io.StringIO()
    # modules this process imported before (anyio, a pytest plugin, came with the SDK) cannot be assert-rewritten
    args = ["evals", "-q", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    start, cpu = time.perf_counter(), time.process_time()
    with contextlib.chdir(root), contextlib.redirect_stdout(out):
        code = pytest.main([*args, "--record-mode", "once"])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"pytest exited {code} in {root}:\n{out.getvalue()[-3000:]}")
    return elapsed, cpu


def server_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=5) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def one_run(tmp: Path, name: str, flags: list[str], cases: int = CASES) -> Figures:
    """A fresh chaos server and a fresh project: the server's counts are this run's alone."""
    with chaos_server("--latency", f"fixed:{LATENCY_S * 1000:g}", *flags) as (url, _):
        root = tmp / name
        build(root, url, cases)
        with Span() as span:
            run_s, cpu_s = recorded(root)
        stats = server_stats(url)
    rows = evalproject.results(root)
    calls = cases * VARIANTS * SAMPLES
    passed = sum(r["outcome"] == "passed" and r["replayed"] == "False" for r in rows)
    if len(rows) != calls or passed != calls:
        raise SystemExit(f"{name}: {len(rows)} rows, {passed} passed live, of {calls}")
    return Figures(run_s, cpu_s, span.seconds, stats)


def show(label: str, runs: list[Figures]) -> None:
    run = sorted(runs, key=lambda f: f.run_s)[len(runs) // 2]  # the median run, its own figures
    sent = run.stats["chat_requests"]
    outcomes = {k: v for k, v in run.stats["outcomes"].items() if v}
    print(
        f"{label:<15} {run.run_s:>6.2f} {run.run_s / BOUND_S:>6.2f} {run.span_s:>6.2f} {run.span_s / BOUND_S:>6.2f} "
        f"{CALLS / run.span_s:>8.0f} {run.cpu_s:>6.2f} {run.cpu_s / CALLS * 1000:>7.2f} {sent:>6,} {sent - CALLS:>8,} "
        f"{run.stats['max_in_flight']:>9}  {outcomes}"
    )
    if len(runs) > 1:
        whole = " ".join(f"{f.run_s:.2f}" for f in runs)
        spans = " ".join(f"{f.span_s:.2f}" for f in runs)
        cpus = " ".join(f"{f.cpu_s:.2f}" for f in runs)
        print(f"{'':<15} runs: whole {whole} s; send span {spans} s; CPU {cpus} s")


def verdict(label: str, runs: list[Figures], floor_s: float, sdk_ms: float) -> None:
    """The issue's targets (whole run ≤ ``WHOLE_TARGET`` × its floor, ≤ ``CPU_TARGET_MS`` of CPU a call), on the
    median run as shown, and on the least-CPU run (the one least disturbed by neighbours on a shared machine). The
    CPU a call is also set against the SDK's own cost of one (``sdk_ms``, measured in the same run), because the
    machine's speed moves and the target is in milliseconds."""
    median = sorted(runs, key=lambda f: f.run_s)[len(runs) // 2]
    least = min(runs, key=lambda f: f.cpu_s)
    for name, run in (("median", median), ("least-CPU", least)):
        ratio, per_call = run.run_s / floor_s, run.cpu_s / CALLS * 1000
        meets = "meets" if ratio <= WHOLE_TARGET and per_call <= CPU_TARGET_MS else "misses"
        print(
            f"{label}, {name} run: whole {ratio:.2f}× its floor {floor_s:g} s (target ≤ {WHOLE_TARGET:g}), "
            f"CPU {per_call:.2f} ms/call (target ≤ {CPU_TARGET_MS:g}; {per_call / sdk_ms:.2f}× the SDK's "
            f"{sdk_ms:.2f} ms): {meets}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario; the median run is shown")
    parser.add_argument("--no-429", action="store_true", help="skip the run with 5%% rate-limited answers")
    args = parser.parse_args()
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(
        f"== runner, live: {CASES} cases × {VARIANTS} variants × {SAMPLES} samples = {CALLS:,} calls, concurrency "
        f"{CONCURRENCY}, chaos latency fixed {LATENCY_S * 1000:g} ms; bound {CALLS:,} × {LATENCY_S:g} s / "
        f"{CONCURRENCY} = {BOUND_S:.1f} s"
    )
    print("whole = pytest.main, collection and reports included; span = first request sent → last answer received;")
    print("CPU s = this process's CPU time over the whole run (all threads; near `whole`: the GIL is the bottleneck)")
    scenarios: list[tuple[str, list[str], ChaosConfig]] = [("no faults", [], ChaosConfig(latency=LATENCY))]
    if not args.no_429:
        flags = ["--rate-429", "0.05", "--retry-after", str(RETRY_AFTER_S)]
        config = ChaosConfig(latency=LATENCY, rates={"429": 0.05}, retry_after_s=RETRY_AFTER_S)
        scenarios.append(("429 at 5%", flags, config))
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        one_run(Path(tmp), "warm-up", [], cases=5)  # the first run in a process pays the imports
        # the SDK's floor imports it: only now that the warm-up's pytest.main has loaded its plugins
        import replay

        print(
            f"\n{'':<15} {'whole':>6} {'/bound':>6} {'span':>6} {'/bound':>6} {'calls/s':>8} {'CPU s':>6} "
            f"{'ms/call':>7} {'sent':>6} {'retries':>8} {'in-flight':>9}  server outcomes"
        )
        measured, sdk_ms = [], []
        for label, flags, config in scenarios:
            runs = []
            for i in range(args.repeats):
                sdk_ms.append(replay.floor_ms(1000).cpu)
                runs.append(one_run(Path(tmp), f"{label[:3]}-{i}", flags))
            show(label, runs)
            measured.append((label, runs, ideal.span(config, CALLS, CONCURRENCY)))
    print()
    for label, runs, floor_s in measured:
        verdict(label, runs, floor_s, min(sdk_ms))
    if not args.no_429:
        run_s = sorted(measured[-1][1], key=lambda f: f.run_s)[len(measured[-1][1]) // 2].run_s
        print(
            f"429 at 5%, median run against the earlier floor (bound + one {RETRY_AFTER_S} s pause = "
            f"{NAIVE_429_S:g} s, below any runner that honours Retry-After): {run_s / NAIVE_429_S:.2f}×"
        )
    print(f"calls/s over the span; the bound's is {CALLS / BOUND_S:.0f} calls/s. retries = sent − {CALLS:,}.")
    print("ms/call = CPU s / calls (the whole process: pytest, collection, cassettes, checks, reports); the SDK's:")
    print("its own CPU a call over httpx2.MockTransport (bench/replay.py's floor), least of the ones before each run")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
