"""The ``promptvcr`` command: a thin front over the pytest run and the local server.

`promptvcr run` hands over to ``pytest.main`` in this process. pytest rewrites the asserts of plugins it loads
(anyio's among them) and warns, as an error under ``filterwarnings = error``, about any already imported: so this
module imports nothing that pulls in the openai SDK, httpx2 or anyio at start; subcommands that need them import
them when they run.

It also leaves out anyio's pytest plugin (``-p no:anyio``; ``-- -p anyio`` puts it back): the SDK's transport
installs anyio, and with it a plugin for async Python tests that an eval never has, whose import is a fifth of a
one-case replay's start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dotenv import load_dotenv

from .. import _cliargs as cliargs
from ..checks import _python as python_checks
from ..errors import InternalError, PromptVCRError
from ..load import _evals as evals
from ..load import _profiles as profiles
from ..load import _project_models as project_models
from ..load import _yamlsrc as yamlsrc
from ..record._cassettes import RecordMode
from ..report import _compare as compare
from ..report import _compare_text as compare_text
from ..run import _preflight as preflight
from ..testing import chaos, local
from . import _doctor as doctor
from . import _scaffold as scaffold
from . import _scan as scan


def _eval_files(root: Path) -> list[Path]:
    folder = root / "evals"
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def resolve(target: str, root: Path) -> Path:
    """An eval given as a path, a file stem under evals/, or the eval's `name`."""
    path = Path(target)
    if path.is_file() or path.is_dir():
        return path
    for candidate in _eval_files(root):
        if candidate.stem == target:
            return candidate
        try:
            data = yamlsrc.load(candidate).data  # bounded like every read of a user's file (billion laughs, bytes)
        except PromptVCRError:
            continue  # a broken file is reported when it is run, not while looking for another
        if isinstance(data, dict) and data.get("name") == target:
            return candidate
    known = ", ".join(p.stem for p in _eval_files(root)) or "none"
    raise PromptVCRError(f"no eval {target!r}: give a path, or one of the evals in {root / 'evals'} ({known})")


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    root = Path.cwd()
    targets = [str(resolve(t, root)) for t in args.evals] or [str(root / "evals")]
    argv = [*targets, "-p", "harness.plugin", "--record-mode", args.record_mode]
    for variant in args.variant:
        argv += ["--variant", variant]
    if args.samples:
        argv += ["--samples", str(args.samples)]
    if args.resume:
        argv.append("--resume")
    if args.batch:
        argv.append("--batch")
    if args.shard:
        argv += ["--shard", args.shard]
    if args.progress_every:
        argv += ["--progress-every", args.progress_every]
    if args.profile:
        argv += ["--profile", args.profile]
    if not any("anyio" in arg for arg in extra):  # the user's own word on that plugin stands
        argv += ["-p", "no:anyio"]
    return int(pytest.main(argv + extra))


def _merge(args: argparse.Namespace) -> int:
    from ..report import _merge as merge  # pandas and the report modules: only when merging

    root = Path.cwd()
    return merge.merge([Path(t) for t in args.runs], Path(args.reports_dir), lambda name: resolve(name, root), root)


def _validate(args: argparse.Namespace) -> int:
    """0 when every file is valid; else 2, as `run` and every other command exit on a bad file (3: our own bug)."""
    root = Path.cwd()
    python_checks.conftest_checks(root)  # as pytest registers them in `run`
    paths = [resolve(t, root) for t in args.evals] or _eval_files(root)
    code = 0
    for path in paths:
        try:
            ev = evals.load(path, root, profile=args.profile)
        except PromptVCRError as exc:
            code = max(code, 3 if isinstance(exc, InternalError) else 2)
            print(exc, file=sys.stderr)
            continue
        # a conversation: one call per turn; each judge check: one more per sample
        calls = sum(r.samples * (r.case.calls + len(r.judges)) for r in ev.runs)
        print(f"{path}: ok — eval {ev.name!r}, {len(ev.runs)} case × variant items, {calls} calls")
    return code


def _estimate(args: argparse.Namespace) -> int:
    """Pre-flight of each eval, nothing sent: 1 when an eval's worst case exceeds its budget."""
    root = Path.cwd()
    python_checks.conftest_checks(root)
    refused = 0
    for path in [resolve(t, root) for t in args.evals] or _eval_files(root):
        text, ok = preflight.describe(evals.load(path, root, args.samples, args.profile), args.batch)
        print(text, end="\n\n")
        refused += not ok
    return 1 if refused else 0


def _loaded(targets: list[str], root: Path, profile: str | None) -> list[evals.Eval]:
    python_checks.conftest_checks(root)
    paths = [resolve(t, root) for t in targets] or _eval_files(root)
    return [evals.load(path, root, profile=profile) for path in paths]


def _status(args: argparse.Namespace) -> int:
    """1 when a recording is changed, incomplete, missing or orphaned (see ``harness.cli._status``)."""
    from . import (
        _status as status,  # imports the openai SDK: not before `run` hands over to pytest (see the module doc)
    )

    root = Path.cwd()
    text, ok = status.describe(_loaded(args.evals, root, args.profile), root / args.cassettes_dir, not args.evals)
    print(text)
    return 0 if ok else 1


def _doctor(args: argparse.Namespace) -> int:
    root = Path.cwd()
    load_dotenv(root / ".env", override=False)  # as a run does: a key in .env counts as set
    local_url = os.environ.get(doctor.LOCAL_URL_ENV)  # the edge, as for the run
    text, ok = doctor.describe(_loaded(args.evals, root, args.profile), args.online, dt.date.today(), local_url)
    print(text)
    return 0 if ok else 1


def _init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    clashes = scaffold.init(root, args.force)
    if clashes:
        raise PromptVCRError(f"not overwriting {', '.join(clashes)} in {root} (--force overwrites them)")
    for name in scaffold.FILES:
        print(f"wrote {root / name}")
    hint = scaffold.install_hint()
    if hint:  # the example eval runs the local model: without llama.cpp and the model `make record` can't
        print(f"first install llama.cpp and the local model: {hint}")
    print("next: `make record` (starts the local model), `make eval`, then commit cases/, evals/ and cassettes/")
    if not scaffold.install_source():
        print(f"then set PROMPTVCR_PIP in {scaffold.WORKFLOW_FILE}: where CI installs promptvcr from (not on PyPI)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Run B against run A: the verdict tables, and 1 when B regressed (see ``Comparison.regressions``)."""
    if args.run_a and not args.run_b:
        raise PromptVCRError("compare needs both RUN_A and RUN_B, or neither (the two newest runs)")
    targets = [Path(args.run_a), Path(args.run_b)] if args.run_a else compare.newest_runs(Path(args.reports_dir))
    if len(targets) < 2:
        raise PromptVCRError(f"compare needs two runs and {args.reports_dir} has {len(targets)}")
    a, b = (compare.load_run(t) for t in targets)
    comparisons = compare.compare_runs(a, b, "A", "B")
    print(f"A = {targets[0]}\nB = {targets[1]}\n")
    print(compare_text.text_report(comparisons))
    for note in compare.unmatched(a, b):
        print(f"not compared: {note}")
    if not comparisons:
        raise PromptVCRError("the two runs have no eval × variant in common: nothing to compare")
    print(compare_text.METHODS)
    problems = [p for c in comparisons for p in c.regressions(args.max_cost_increase)]
    print()
    for problem in problems:
        print(f"REGRESSION {problem}")
    print("compare: FAILED" if problems else "compare: no regression")
    return 1 if problems else 0


def _add_run_and_merge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run evals (replay by default); extra arguments after -- go to pytest")
    run.add_argument("evals", nargs="*", metavar="EVAL", help="eval name, file stem or path (default: every eval)")
    run.add_argument("--record-mode", choices=tuple(map(str, RecordMode)), default="none")
    run.add_argument("--variant", action="append", default=[])
    run.add_argument("--samples", type=int)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished live run (killed, Ctrl-C, SIGTERM) of the evals named, or the only one",
    )
    run.add_argument(
        "--batch",
        action="store_true",
        help="record through the OpenAI Batch API (half the price, in 24 h), then replay (default record mode: once)",
    )
    run.add_argument("--shard", metavar="I/N", help="run the I-th of N parts of the items; join with `promptvcr merge`")
    run.add_argument("--progress-every", metavar="S", help="seconds between progress lines of a live run (default 5)")
    joiner = sub.add_parser(
        "merge",
        help="join the reports of the shards of one run (--shard I/N) into one; exit 1 when a gate fails",
        description="RUN: a reports/<run-id> directory or its results.csv, one per shard.",
    )
    joiner.add_argument("runs", nargs="+", metavar="RUN")
    joiner.add_argument("--reports-dir", default="reports", metavar="DIR", help="where the merged report is written")


def _add_validate_estimate_compare(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("validate", help="check eval and case files without sending anything")
    check.add_argument("evals", nargs="*", metavar="EVAL")
    estimate = sub.add_parser("estimate", help="planned calls, prompt tokens, worst-case output and cost per variant")
    estimate.add_argument("evals", nargs="*", metavar="EVAL")
    estimate.add_argument("--samples", type=int)
    estimate.add_argument("--batch", action="store_true", help="at the Batch API's prices (as `run --batch` pays)")
    versus = sub.add_parser(
        "compare",
        help="compare run B against baseline run A (paired by case and sample); exit 1 on a regression",
        description="RUN: a reports/<run-id> directory or its results.csv. Without runs: the two newest.",
    )
    versus.add_argument("run_a", nargs="?", metavar="RUN_A", help="the baseline run")
    versus.add_argument("run_b", nargs="?", metavar="RUN_B", help="the run under test")
    versus.add_argument(
        "--max-cost-increase",
        type=float,
        default=10.0,
        metavar="PCT",
        help="fail when cost per call rises more than this many percent (default: 10)",
    )
    versus.add_argument("--reports-dir", default="reports", metavar="DIR", help="where to find the newest runs")


def _add_project_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stale = sub.add_parser(
        "status", help="which recordings no longer match the cases (nothing sent); exit 1 when any must be redone"
    )
    stale.add_argument("evals", nargs="*", metavar="EVAL")
    stale.add_argument("--cassettes-dir", default="cassettes", metavar="DIR")
    finder = sub.add_parser("scan", help="look for API keys, tokens, org/project ids and tracked .env files")
    finder.add_argument("paths", nargs="*", metavar="PATH", help="default: the git tree plus cassettes/ and reports/")
    checkup = sub.add_parser("doctor", help="endpoints, key variables, whether servers answer, retired models")
    checkup.add_argument("evals", nargs="*", metavar="EVAL")
    checkup.add_argument("--online", action="store_true", help="also contact endpoints that are not on this machine")
    setup = sub.add_parser("init", help="scaffold cases/, evals/, a Makefile, .gitignore and a CI workflow")
    setup.add_argument("dir", nargs="?", default=".", metavar="DIR")
    setup.add_argument("--force", action="store_true", help="overwrite files that exist")


def _parser() -> argparse.ArgumentParser:
    """The whole command line, in the order ``--help`` lists it. serve-local, chaos-server and load are listed here
    but parse their own flags (see ``main``)."""
    parser = argparse.ArgumentParser(
        prog="promptvcr", description="Evaluate and regression-test prompts for the OpenAI Chat Completions API."
    )
    parser.add_argument("--profile", metavar="NAME", help="key profile from profiles.yaml (also PROMPTVCR_PROFILE)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_and_merge(sub)
    _add_validate_estimate_compare(sub)
    _add_project_commands(sub)
    sub.add_parser("serve-local", help="serve the local models with llama.cpp on 127.0.0.1, one URL (see its --help)")
    sub.add_parser("chaos-server", help=f"fault-injecting OpenAI-compatible server on 127.0.0.1. {chaos.DISCLAIMER}")
    sub.add_parser("load", help="open-loop load (target RPS) against a loopback endpoint; see its --help")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command's exit code: 2 for a user's mistake, 3 for our own bug, 130 after Ctrl-C (see ``_guard``)."""
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["serve-local"]:  # its own parser owns its flags
        return _guard(lambda: local.main(raw[1:]))
    if raw[:1] == ["chaos-server"]:
        return _guard(lambda: chaos.main(raw[1:]))
    if raw[:1] == ["load"]:
        from ..testing import loadgen  # imports httpx2: not before `run` hands over to pytest (see the module doc)

        return _guard(lambda: loadgen.main(raw[1:], Path.cwd(), resolve))
    ours, extra = (raw[: raw.index("--")], raw[raw.index("--") + 1 :]) if "--" in raw else (raw, [])
    args = cliargs.parse(_parser(), ours)
    args.profile = args.profile or os.environ.get(profiles.ENV) or None  # the edge: passed down from here on
    if args.command in ("validate", "estimate", "status", "doctor", "merge"):  # `run`: its Session reads it
        refused = _guard(lambda: _project_models(Path.cwd()))
        if refused:
            return refused
    commands: dict[str, Callable[[], int]] = {
        "validate": lambda: _validate(args),
        "compare": lambda: _compare(args),
        "merge": lambda: _merge(args),
        "estimate": lambda: _estimate(args),
        "status": lambda: _status(args),
        "scan": lambda: scan.main(args.paths),
        "doctor": lambda: _doctor(args),
        "init": lambda: _init(args),
        "run": lambda: _run(args, extra),
    }
    return _guard(commands[args.command])


def _project_models(root: Path) -> int:
    """The project's models.yaml over the shipped registry, before a command prices or counts anything."""
    project_models.use(root)
    return 0


def _guard(command: Callable[[], int]) -> int:
    """Run a subcommand; a user's mistake ends with its message, not a traceback."""
    try:
        return command()
    except InternalError as exc:  # our bug, not the user's: pytest's code for an internal error
        print(f"promptvcr: {exc}", file=sys.stderr)
        return 3
    except PromptVCRError as exc:
        print(f"promptvcr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
