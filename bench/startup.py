"""Start-up: a replay of one recorded case as a whole process, against the cost of importing the SDK (issue 14).

    .venv/bin/python bench/startup.py [--rounds 5]

A throw-away project of 1 case × 1 variant × 1 sample is recorded once against a fake server (not timed); then, in
interleaved rounds, a fresh ``python -m pytest evals`` and a fresh ``promptvcr run`` (``make eval``'s command)
replay it and a fresh ``python -c "import openai"`` (the floor) runs, each timed from outside (wall, CPU, peak RSS
of the child: ``bench/procs.py``). The least-CPU round of each counts (neighbours share the cores). Targets: the
replay ≤ 0.8 s and below the floor. Also printed: which of the heavy libraries (openai, pandas, numpy, jinja2, vcr,
httpx2) the replay imported (``-X importtime``).

The children run as a user's do, with their bytecode cached (the SDK's installed ``.pyc`` files are; our modules'
are written at the first import), into a throw-away ``PYTHONPYCACHEPREFIX``, so that no source tree gets a
``__pycache__``; ``--no-bytecode`` keeps an environment's ``PYTHONDONTWRITEBYTECODE``: every harness module is then
compiled from source at every start.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import procs  # noqa: E402

from tests import evalproject  # noqa: E402
from tests.fakeserver import FakeOpenAI, Reply, completion  # noqa: E402

TARGET_S = 0.8
HEAVY = ("openai", "pandas", "numpy", "jinja2", "vcr", "httpx2", "jsonschema")
PYTEST = [sys.executable, "-m", "pytest", "evals", "-q", "-p", "no:cacheprovider"]
# what a user's `make eval` runs (it leaves out anyio's plugin, harness.cli._main), and pytest as a user runs it
REPLAYS = {
    "replay (python -m pytest)": PYTEST,
    "replay (promptvcr run)": [str(Path(sys.executable).with_name("promptvcr")), "run", "--", *PYTEST[4:]],
}


def answer(body: dict[str, object]) -> Reply:
    return Reply(body=completion('{"n": 1}', model=str(body.get("model")), prompt_tokens=20, completion_tokens=5))


def recorded(root: Path, env: dict[str, str]) -> None:
    with FakeOpenAI(answer) as server:
        evalproject.init_project(root)
        path = evalproject.write_cases(root, "one", [evalproject.json_case("only-case", min_pass_rate=1.0)])
        variants = {"v": {"model": "gpt-4o-mini"}}
        evalproject.write_eval(root, "one", base_url=server.base_url, cases=[path], variants=variants, samples=1)
        procs.run([*PYTEST, "--record-mode", "once"], root, env)
        if len(server.chat_requests) != 1:
            raise SystemExit(f"recording sent {len(server.chat_requests)} requests, not 1")


def imported(root: Path, env: dict[str, str]) -> list[str]:
    """The heavy top-level packages a replay imports."""
    err = procs.run([sys.executable, "-X", "importtime", *PYTEST[1:]], root, env).stderr
    names = {line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    # a package's own line can be missing (importtime prints it when its import ends): its submodules count too
    return [lib for lib in HEAVY if any(name == lib or name.startswith(lib + ".") for name in names)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the least-CPU one counts")
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE (see above)")
    args = parser.parse_args()
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        env = procs.environment(Path(tmp), not args.no_bytecode)
        recorded(root, env)
        floors: list[procs.Proc] = []
        replays: dict[str, list[procs.Proc]] = {label: [] for label in REPLAYS}
        for _ in range(args.rounds):
            floors.append(procs.run([sys.executable, "-c", "import openai"], root, env))
            for label, cmd in REPLAYS.items():
                replay = procs.run(cmd, root, env)
                if "1 passed" not in replay.stdout:
                    raise SystemExit(f"{label} did not pass its one case:\n{replay.stdout[-2000:]}")
                replays[label].append(replay)
        heavy = imported(root, env)
    floor, best = procs.best(floors), {label: procs.best(rounds) for label, rounds in replays.items()}
    cache = "compiled at every start" if args.no_bytecode else "cached"
    print(f"== replay of 1 case, whole process (least-CPU of {args.rounds} interleaved rounds; bytecode {cache})")
    print(f"{'':<28} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7}")
    print(f"{'floor: import openai':<28} {floor.wall:>7.3f} {floor.cpu:>7.3f} {floor.rss_mb:>7.0f}")
    for label, replay in best.items():
        print(f"{label:<28} {replay.wall:>7.3f} {replay.cpu:>7.3f} {replay.rss_mb:>7.0f}")
    for label, replay in best.items():
        ratio = replay.wall / floor.wall
        verdict = "meets" if replay.wall <= TARGET_S else "MISSES"
        print(
            f"{label}: {ratio:.2f} × floor (wall; target < 1: {'meets' if ratio < 1 else 'MISSES'}), "
            f"{replay.wall:.3f} s (target ≤ {TARGET_S} s: {verdict})"
        )
    print(f"heavy libraries the replay imported: {', '.join(heavy) or 'none'}")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
