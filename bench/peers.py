"""promptvcr beside promptfoo and Inspect on the same workload (issue 14's table); skipped unless they are installed.

    .venv/bin/python bench/peers.py [--rounds 3]

Never in CI: it needs the peers (``npm i -g promptfoo``; ``pip install inspect-ai``), which promptvcr does not
depend on. Each tool sends the same 1,000 chat calls (50 prompts × 20 repeats) to one chaos server (fixed 200 ms,
concurrency 50; bound 4.0 s) and is timed as a whole process from the shell (``bench/procs.py``), min of
``--rounds`` interleaved rounds. promptvcr's own figure is bench/runner.py's workload. A peer that is not installed
is reported as skipped; with neither installed the script prints that and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import procs  # noqa: E402
from load import chaos_server  # noqa: E402

PROMPTS, REPEATS, CONCURRENCY, LATENCY_MS = 50, 20, 50, 200
BOUND_S = PROMPTS * REPEATS * LATENCY_MS / 1000 / CONCURRENCY


def promptfoo(root: Path, base_url: str) -> list[str]:
    config = {
        "providers": [{"id": "openai:chat:chaos-model", "config": {"apiBaseUrl": base_url, "apiKey": "k"}}],
        "prompts": ["Tell a joke about topic #{{n}}"],
        "tests": [{"vars": {"n": i}} for i in range(PROMPTS)],
        "evaluateOptions": {"maxConcurrency": CONCURRENCY, "repeat": REPEATS, "cache": False},
    }
    (root / "promptfooconfig.json").write_text(json.dumps(config), encoding="utf-8")
    return ["promptfoo", "eval", "-c", str(root / "promptfooconfig.json"), "--no-cache", "--no-table"]


def inspect(root: Path, base_url: str) -> list[str]:
    task = f"""
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.solver import generate

@task
def jokes():
    return Task(dataset=[Sample(input=f"Tell a joke about topic #{{n}}") for n in range({PROMPTS})] * {REPEATS},
                solver=[generate()])
"""
    (root / "jokes.py").write_text(task, encoding="utf-8")
    return [sys.executable, "-m", "inspect_ai", "eval", str(root / "jokes.py"), "--model", "openai/chaos-model",
            "--model-base-url", base_url, "--max-connections", str(CONCURRENCY)]  # fmt: skip


PEERS: dict[str, tuple[Callable[[], bool], Callable[[Path, str], list[str]]]] = {
    "promptfoo": (lambda: shutil.which("promptfoo") is not None, promptfoo),
    "inspect-ai": (lambda: importlib.util.find_spec("inspect_ai") is not None, inspect),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    installed = {name: build for name, (present, build) in PEERS.items() if present()}
    for name in PEERS.keys() - installed.keys():
        print(f"{name}: not installed, skipped")
    if not installed:
        print("no peer installed: nothing to compare (promptvcr's own figures: make bench-runner)")
        return 0
    print(f"== 1,000 calls, {LATENCY_MS} ms, concurrency {CONCURRENCY}; bound {BOUND_S:.1f} s")
    env = {**os.environ, "OPENAI_API_KEY": "k"}
    for name, build in installed.items():
        rounds = []
        for _ in range(args.rounds):
            with chaos_server("--latency", f"fixed:{LATENCY_MS}") as (url, _), tempfile.TemporaryDirectory() as tmp:
                rounds.append(procs.run(build(Path(tmp), url), Path(tmp), env))
        best = procs.best(rounds)
        print(f"{name:<12} whole {best.wall:6.2f} s ({best.wall / BOUND_S:.2f} × bound), CPU {best.cpu:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
