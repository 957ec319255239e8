"""Load-test figures of ``promptvcr load`` against the chaos server (issue 4), printed with their targets.

    .venv/bin/python bench/load.py [--duration 30] [--rps 200]

1. Open loop: 200 RPS for 30 s against a chaos server with lognormal latency (median 50 ms, p99 200 ms); target:
   achieved RPS = target and scheduling lag p99 < 20 ms.
2. Throughput: 1,000 calls at a fixed 200 ms latency with concurrency 50, against the ideal bound
   1,000 / 50 × 0.2 s = 4.0 s.

Each chaos server runs in a subprocess, so the load generator and the server do not share an event loop (they still
share this machine's cores). The chaos server's latencies are synthetic: these are figures about the load tool,
never about a model.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.testing import loadgen  # noqa: E402

BODY = {"model": "chaos-model", "messages": [{"role": "user", "content": "Tell me a joke about load tests."}]}
LAG_TARGET_MS = 20.0


def busy_s() -> float:
    """CPU seconds every process on this machine has used since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def chaos_server(*flags: str) -> Iterator[tuple[str, int]]:
    """A chaos server subprocess; yields its base_url (the first line it prints) and its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "chaos-server", *flags],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the chaos server did not start (it printed {base_url!r})")
        yield base_url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rps", type=float, default=200.0)
    args = parser.parse_args()
    # the machine is shared: its load says how much of a miss is this tool's and how much the neighbours'
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    print(f"== open loop: {args.rps:g} RPS × {args.duration:g} s, chaos latency lognormal median 50 ms, p99 200 ms")
    with chaos_server("--latency", "lognormal:50:200") as (url, pid):
        before = (busy_s(), time.process_time(), process_cpu_s(pid), time.monotonic())
        report = loadgen.run(loadgen.LoadConfig(url, BODY, args.rps, args.duration, concurrency=100))
        after = (busy_s(), time.process_time(), process_cpu_s(pid), time.monotonic())
    print(report.text())
    machine, client, server, wall = (b - a for a, b in zip(before, after, strict=True))
    others = max(0.0, machine - client - server)
    print(
        f"CPU over the run (2 cores = {2 * wall:.0f} core-s): load client {client:.1f} s, chaos server {server:.1f} s, "
        f"other processes {others:.1f} s"
    )
    lag = report.lag_ms["p99"]
    print(f"achieved / target RPS  {report.achieved_rps / args.rps:.3f}")
    print(
        f"lag p99 / {LAG_TARGET_MS:g} ms      {lag / LAG_TARGET_MS:.2f} "
        f"({'meets' if lag < LAG_TARGET_MS else 'MISSES'} the target)"
    )

    print("\n== throughput: 1,000 calls, fixed 200 ms latency, concurrency 50 (ideal bound 4.0 s)")
    calls, concurrency, latency_s = 1000, 50, 0.2
    bound = calls / concurrency * latency_s
    with chaos_server("--latency", "fixed:200") as (url, _):
        # a schedule far above what 50 connections can carry: the cap, not the schedule, sets the pace
        report = loadgen.run(loadgen.LoadConfig(url, BODY, 5000.0, calls / 5000.0, concurrency=concurrency))
    print(report.text())
    print(f"total {report.duration_s:.2f} s / bound {bound:.1f} s  {report.duration_s / bound:.3f}")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
