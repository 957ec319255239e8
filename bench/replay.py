"""Replay cost per call at 100 / 1,000 / 10,000 recorded calls, against the SDK's own floor (issue 4, fast replay).

    .venv/bin/python bench/replay.py [--sizes 100,1000,10000] [--repeats 3] [--profile 10000]

The floor: the openai SDK over an ``httpx2.MockTransport`` that answers a canned chat.completion at once —
``with_raw_response.create`` plus a JSON parse, per call. The measured thing is a whole replay run: a throw-away
project of N/20 cases × 2 variants × 10 samples (JSON-schema checks on every case) is recorded once against a fake
server in this process (not timed), the server is stopped, then ``pytest.main`` replays it in this process —
collection, checks, report files and all. Each size runs ``--repeats`` times after one warm-up run; the median counts.
Every replay must answer every sample from its cassette (the server got nothing) and pass every row.
``--profile N`` prints cProfile's top functions of one N-call replay instead.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402
import openai  # noqa: E402
import pytest  # noqa: E402

from tests import evalproject  # noqa: E402
from tests.fakeserver import FakeOpenAI, Reply, completion  # noqa: E402

VARIANTS, SAMPLES = 2, 10  # calls per case: variants × samples
TARGET = 2.0  # × the floor
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["label", "score"],
    "properties": {"label": {"type": "string", "minLength": 1, "maxLength": 40}, "score": {"type": "integer"}},
}
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Classify this."}],
    "temperature": 0.2,
    "max_tokens": 60,
    "response_format": {"type": "json_object"},
}


def answer(body: dict[str, Any]) -> Reply:
    case = evalproject.case_of(body)
    content = json.dumps({"label": f"label of {case}", "score": len(case)})
    return Reply(body=completion(content, model=str(body.get("model")), prompt_tokens=40, completion_tokens=12))


# ---------------------------------------------------------------------------------------------------- the SDK floor


@dataclass(frozen=True)
class Took:
    """Seconds of wall-clock time and of this process's CPU time (the machine is shared: CPU time is steadier)."""

    wall: float
    cpu: float

    def per_call_ms(self, calls: int) -> Took:
        return Took(self.wall / calls * 1000, self.cpu / calls * 1000)


@contextlib.contextmanager
def timer(into: list[Took]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append(Took(time.perf_counter() - wall, time.process_time() - cpu))


def floor_ms(calls: int) -> Took:
    """Per call: the SDK's request building, an instant in-process answer, and parsing its JSON."""
    canned = json.dumps(completion('{"label": "x", "score": 1}')).encode()
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=canned))
    api = openai.OpenAI(api_key="k", base_url="http://floor.invalid/v1", http_client=httpx2.Client(transport=transport))
    took: list[Took] = []
    with timer(took):
        for _ in range(calls):
            json.loads(api.chat.completions.with_raw_response.create(**BODY).text)
    api.close()
    return took[0].per_call_ms(calls)


# ------------------------------------------------------------------------------------------------ the replayed project


def build(root: Path, calls: int, base_url: str) -> None:
    """A project of ``calls`` samples: calls/20 cases, each with its own schema check, × 2 variants × 10 samples."""
    root.mkdir(parents=True, exist_ok=True)
    evalproject.init_project(root)
    cases = []
    for i in range(calls // (VARIANTS * SAMPLES)):
        case = evalproject.json_case(f"case-{i:05d}", min_pass_rate=0.9, topic=f"ticket #{i} about billing")
        case["expect"] = [{"json_valid": True}, {"json_schema": SCHEMA}, {"finish_reason": "stop"}]
        cases.append(case)
    defaults = {"model": "gpt-4o-mini", "response_format": "json_object", "max_tokens": 60}
    path = evalproject.write_cases(root, "tickets", cases, defaults)
    evalproject.write_eval(
        root,
        "tickets",
        base_url=base_url,
        cases=[path],
        variants={"cold": {"temperature": 0.2}, "warm": {"temperature": 0.8}},
        samples=SAMPLES,
        gates=[{"metric": "json_valid_rate", "op": ">=", "value": 0.99, "min_n": 50}],
    )


def run_pytest(root: Path, *args: str) -> Took:
    """``pytest.main`` on the project, in this process; its exit code and wall time (its output is kept, not shown)."""
    sys.modules.pop("conftest", None)  # each project has its own conftest.py
    # modules this process imported before (anyio, a pytest plugin, came with the SDK) cannot be assert-rewritten
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    out = io.StringIO()
    took: list[Took] = []
    with timer(took), contextlib.chdir(root), contextlib.redirect_stdout(out):
        code = pytest.main(["evals", "-q", "-p", "no:cacheprovider", *quiet, *args])
    if code != 0:
        raise SystemExit(f"pytest exited {code} in {root}:\n{out.getvalue()[-3000:]}")
    return took[0]


def verify(root: Path, calls: int, mode: str) -> None:
    rows = evalproject.results(root)
    replayed = sum(r["replayed"] == "True" for r in rows)
    passed = sum(r["outcome"] == "passed" for r in rows)
    wanted = calls if mode == "replay" else 0
    if len(rows) != calls or passed != calls or replayed != wanted:
        raise SystemExit(f"{mode} of {calls} calls: {len(rows)} rows, {passed} passed, {replayed} replayed")


def recorded(root: Path, calls: int) -> None:
    """Record the project once (not timed); then the server is gone: a replay that sent anything would fail."""
    with FakeOpenAI(answer) as server:
        build(root, calls, server.base_url)
        run_pytest(root, "--record-mode", "once")
        sent = len(server.chat_requests)
    verify(root, calls, "record")
    if sent != calls:
        raise SystemExit(f"recording {calls} calls sent {sent} requests")


def replay(root: Path, calls: int) -> Took:
    took = run_pytest(root)
    verify(root, calls, "replay")
    return took


# ---------------------------------------------------------------------------------------------------------- figures


def profile(calls: int, top: int, save: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        root = Path(tmp)
        recorded(root, calls)
        replay(root, calls)  # warm: imports, first-run caches
        profiler = cProfile.Profile()
        profiler.enable()
        elapsed = replay(root, calls)
        profiler.disable()
    if save:
        profiler.dump_stats(save)  # for `python -m pstats FILE` or snakeviz
    print(f"== cProfile of one {calls:,}-call replay ({elapsed.wall:.2f} s under the profiler)")
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    for key in ("cumulative", "tottime"):
        print(f"\n-- top {top} by {key} (share of {total:.2f} s profiled)")
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3 if key == "cumulative" else 2], reverse=True)  # type: ignore[attr-defined]
        for (path, line, name), (_, ncalls, tt, ct, _) in rows[:top]:
            where = f"{_short(path)}:{line}({name})"
            print(f"{ct / total:6.1%} cum {tt / total:6.1%} self {ncalls:>9,} calls  {where}")


def _short(path: str) -> str:
    for marker in ("site-packages/", str(REPO) + "/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000", help="recorded calls per run, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per size (after one warm-up run)")
    parser.add_argument("--floor-calls", type=int, default=1000, help="SDK calls per floor measurement")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile one N-call replay instead")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    parser.add_argument("--save", metavar="FILE", help="with --profile: write the raw profile to FILE too")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.top, args.save)
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(
        f"floor: the openai SDK over httpx2.MockTransport, with_raw_response.create + json parse, {args.floor_calls:,}"
        " calls,\nmeasured before each timed replay (the machine is shared: each run is set against its own floor;"
        " CPU time\nis this process's, steadier than wall time when neighbours load the cores)."
    )
    print("replay: pytest.main on the project, whole run (collection, checks, reports); median of the timed runs.")
    floor_ms(200)  # warm: the SDK's lazy imports
    medians: dict[int, Took] = {}
    floors: dict[int, Took] = {}
    ratios: dict[tuple[int, str], float] = {}  # (calls, wall|cpu) → median of the runs' ratios to their floor
    print(f"\n{'':>14}{'-------------- wall --------------':>37}  {'-------------- CPU ---------------':>36}")
    print(f"{'calls':>7} {'cases':>6} " + f"{'run s':>8} {'ms/call':>8} {'floor':>8} {'× floor':>8}   " * 2)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        for calls in sizes:
            root = Path(tmp) / f"n{calls}"
            recorded(root, calls)
            replay(root, calls)  # warm-up, not counted
            runs: list[tuple[Took, Took]] = []  # (replay, floor per call) pairs
            for _ in range(args.repeats):
                floor = floor_ms(args.floor_calls)
                runs.append((replay(root, calls), floor))
            medians[calls] = Took(*(statistics.median(getattr(r, k) for r, _ in runs) for k in ("wall", "cpu")))
            floors[calls] = Took(*(statistics.median(getattr(f, k) for _, f in runs) for k in ("wall", "cpu")))
            cells = []
            for kind in ("wall", "cpu"):
                total, floor_call = getattr(medians[calls], kind), getattr(floors[calls], kind)
                ratio = statistics.median(getattr(r, kind) / calls * 1000 / getattr(f, kind) for r, f in runs)
                ratios[(calls, kind)] = ratio
                cells.append(f"{total:>8.3f} {total / calls * 1000:>8.3f} {floor_call:>8.3f} {ratio:>8.2f}   ")
            print(f"{calls:>7,} {calls // (VARIANTS * SAMPLES):>6,} " + "".join(cells))
            print(f"{'':>15}runs (wall s): " + " ".join(f"{r.wall:.2f}" for r, _ in runs))
    for kind in ("wall", "cpu"):
        floor = statistics.median(getattr(f, kind) for f in floors.values())
        print(f"\n{kind}: slope between sizes (marginal cost of a call), intercept (fixed cost); floor {floor:.3f} ms")
        for small, big in itertools.pairwise(sizes):
            a, b = getattr(medians[small], kind), getattr(medians[big], kind)
            marginal = (b - a) / (big - small) * 1000
            print(
                f"  {small:>6,} → {big:>6,} calls: marginal {marginal:.3f} ms/call ({marginal / floor:.2f} × floor), "
                f"fixed {a - marginal * small / 1000:.2f} s"
            )
    biggest = sizes[-1]
    for kind in ("wall", "cpu"):
        ratio = ratios[(biggest, kind)]
        verdict = "meets" if ratio <= TARGET else "MISSES"
        print(f"whole run at {biggest:,} calls / floor ({kind}): {ratio:.2f} (target ≤ {TARGET:g}: {verdict})")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
