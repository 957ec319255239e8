"""The pytest plugin: eval files become test items, results become reports, gates decide the exit code.

Each ``evals/*.yaml`` is collected as a file; each case × variant is a real ``pytest.Function`` (so fixtures,
``-k``, ``-x``, ``--junitxml`` and pytest-xdist work) named ``<case-id>[<variant>]``. The item's result rows ride
on its test report, which pytest-xdist carries to the controller; the controller aggregates once at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import math
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dotenv import load_dotenv

from .errors import PromptVCRError
from .load import _evals as evals
from .load import _profiles as profiles
from .record._cassettes import RECORD_MODES
from .report import _junit as junit
from .report import _summary as report
from .run import _client as client
from .run import _journal as journal
from .run import _preflight as preflight
from .run import _runner as runner
from .run import _scheduler as scheduler
from .run._progress import Progress
from .testing import local
from .tokens import _models as models

try:  # the variant is a real parameter of the item: pytest's cache (--lf, --ff), -k and --deselect see it as one
    from _pytest.python import CallSpec  # pytest ≥ 9.2, whose node ids are structured
except ImportError:  # pragma: no cover  # older pytest
    from _pytest.python import CallSpec2 as CallSpec  # its name there

pytest_plugins = ["harness.checks._pytest_hook"]  # the pytest_promptvcr_checks hook, for conftest.py files
_STATE = pytest.StashKey["_State"]()
OUTCOMES = frozenset({"passed", "failed", "errored", "skipped"})
_ROWS = pytest.StashKey[list[runner.Row]]()


class _State:
    def __init__(self, config: pytest.Config) -> None:
        root = config.rootpath
        self.root = root
        self._config = config
        self.budgets: dict[str, preflight.Budget] = {}
        self.reports_dir = root / config.getoption("reports_dir")
        self.worker = getattr(config, "workerinput", None)  # set on pytest-xdist workers
        record_mode = config.getoption("record_mode")
        self.run_dir: Path | None = None
        resume = config.getoption("resume")
        self.resumed: journal.Resumed | None = None
        if resume:
            self.run_dir = self._resumed_run(record_mode)
            self.resumed = journal.Resumed.of(self.run_dir)
            record_mode = journal.read_state(self.run_dir)["record_mode"]
        self.live = record_mode != "none"
        # workers of pytest-xdist have no terminal of their own; the controller shows pytest's progress
        every = config.getoption("progress_every")
        self.progress = Progress(self._say, every) if self.live and self.worker is None else None
        self._lock = threading.Lock()
        self._local: str | None = None
        self.connections = client.Connections(not self.live, self.local_url)
        self.pool = scheduler.Pool(self.connections.workers)
        self.journal: journal.Journal | None = None
        kept = journal.kept(self.run_dir) if resume and self.run_dir is not None else {}
        self.options = runner.RunOptions(
            record_mode=record_mode,
            cassettes_dir=root / config.getoption("cassettes_dir"),
            connections=self.connections,
            budgets=self.budgets,
            on_row=self._sample_ended,
            resume=bool(resume),
            done=kept,
            rewritten=journal.rewritten(self.run_dir) if resume and self.run_dir is not None else frozenset(),
            on_save=self._cassette_saved,
        )
        self.judged: set[tuple[str, str, str]] = set()  # cases whose rows are journaled once judged
        self.jobs: dict[str, scheduler.Job] = {}  # by item nodeid, started ahead (see harness.run._scheduler)
        self.rows: list[runner.Row] = []
        self.planned: dict[tuple[str, str, str], int] = {}  # (eval, variant, case) → samples, of the items that ran
        self.durations: dict[tuple[str, str, str], float] = {}  # (eval, case, variant) → the item's time, for junit
        self.eval_paths: dict[str, str] = {}
        self.collected: dict[str, evals.Eval] = {}  # loaded once, at collection (pytest-xdist's controller doesn't)
        self.summaries: list[report.VariantSummary] = []
        self.problem: str | None = None
        self.notes: list[str] = []
        self._stack = ExitStack()

    def _resumed_run(self, record_mode: str) -> Path:
        if self.worker is not None:
            return Path(self.worker["promptvcr_run_dir"])
        config = self._config
        named = [*config.getoption("eval"), *(str(Path(a)) for a in config.args if Path(a).suffix in (".yaml", ".yml"))]
        try:
            run_dir = journal.unfinished(self.reports_dir, named)
        except PromptVCRError as exc:  # a user's mistake: pytest's usage error, not an internal one
            raise pytest.UsageError(str(exc)) from None
        state = journal.read_state(run_dir)
        was = journal.Selection.from_dict(state.get("selection") or {})
        now = _selection(config)
        changed = [
            f"--{flag} {old or '(none)'}"
            for flag, old, new in (
                ("record-mode", state.get("record_mode"), None if record_mode == "none" else record_mode),
                ("variant", " ".join(was.variants), " ".join(now.variants)),
                ("samples", was.samples, now.samples),
                ("shard", "/".join(map(str, was.shard or ())), "/".join(map(str, now.shard or ()))),
            )
            if new and new != old
        ]
        if changed:
            raise pytest.UsageError(
                f"--resume continues {run_dir.name} as it was started ({', '.join(changed)}): drop the options that"
                " differ, or start a new run without --resume"
            )
        return run_dir

    def start_journal(self, argv: list[str]) -> None:
        """A live run's folder and results journal, before anything is sent (workers: the controller's folder)."""
        if not self.live:
            return
        if self.worker is not None:
            self.run_dir = Path(self.worker["promptvcr_run_dir"])
            self.journal = journal.Journal(self.run_dir, f".{self.worker['workerid']}")
            return
        if self.run_dir is None:
            self.run_dir = report.new_run_dir(self.reports_dir)
            journal.start(self.run_dir, self.options.record_mode, argv, _selection(self._config))
        else:
            journal.finish(self.run_dir, "running")
        self.journal = journal.Journal(self.run_dir)

    def _cassette_saved(self, path: Path) -> None:
        if self.journal is not None:
            self.journal.saved(path)

    def _sample_ended(self, row: runner.Row) -> None:
        if self.progress is not None:
            self.progress.sample(row)
        if self.journal is not None and (row["eval"], row["variant"], row["case"]) not in self.judged:
            self.journal.append(row)

    def case_rows(self, item: pytest.Item, run: evals.CaseRun) -> list[runner.Row]:
        if not self.live:
            return runner.run_case(run, self.options)
        if run.judges:
            self.judged.add((run.eval_name, run.variant.name, run.case.id))
        job = self.jobs.pop(item.nodeid, None) or scheduler.Job(runner.Case(run, self.options), self.pool)
        rows = job.rows(self.tick)
        if self.journal is not None and run.judges:
            for row in rows:
                self.journal.append(row)
        self.tick()
        return rows

    def tick(self) -> None:
        if self.progress is not None:
            self.progress.tick()

    def write_plan(self, items: list[pytest.Item]) -> None:
        """The items of a new live run, before anything is sent: what `--resume` will continue, and only that."""
        if self.run_dir is None or self.resumed is not None or not items:
            return
        runs = [item.stash[_RUN] for item in items if _RUN in item.stash]
        plan = journal.Plan(
            {(run.eval_name, run.variant.name, run.case.id): run.samples for run in runs},
            {run.eval_name: self.eval_paths[run.eval_name] for run in runs},
        )
        journal.write_plan(self.run_dir, plan, f".{self.worker['workerid']}" if self.worker else "")

    def start_ahead(self, items: list[pytest.Item]) -> None:
        """Without pytest-xdist: every case's samples queued now, in item order (see harness.run._scheduler)."""
        for item in items:
            run = item.stash.get(_RUN, None)
            if run is not None:
                if run.judges:
                    self.judged.add((run.eval_name, run.variant.name, run.case.id))
                job = self.jobs[item.nodeid] = scheduler.Job(runner.Case(run, self.options), self.pool)
                job.start()

    def kept(self, run: evals.CaseRun) -> Mapping[int, runner.Row]:
        return self.options.done.get((run.eval_name, run.variant.name, run.case.id), {})

    def local_url(self) -> str:
        """A running local server: PROMPTVCR_LOCAL_URL, one already on the default port, or one we start."""
        with self._lock:
            if self._local is None:
                wanted = os.environ.get("PROMPTVCR_LOCAL_URL", evals.DEFAULT_LOCAL_URL)
                self._local = self._stack.enter_context(local.ensure_running(wanted))
            return self._local

    def close(self) -> None:
        self.pool.stop()
        if self.journal is not None:
            self.journal.close()
        self.connections.close()
        self._stack.close()

    def _say(self, line: str) -> None:
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")  # registered after our configure
        if reporter is None:
            return
        # while an item runs, pytest captures its output: a progress line would surface only in a failed item's
        # report; and a pipe (a CI log) is block-buffered: without the flush it arrives when the run is over
        capture = self._config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(line)
            reporter.flush()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rows = getattr(report, "promptvcr_rows", None)
        if rows:
            name, path = report.promptvcr_eval  # set in pytest_runtest_makereport
            self.rows.extend(rows)
            eval_name, variant, case, samples = report.promptvcr_item
            self.planned[(eval_name, variant, case)] = samples
            self.durations[(eval_name, case, variant)] = report.duration
            self.eval_paths[name] = path

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.pool.stop()  # -x, Ctrl-C: nothing more is sent
        if self.worker is not None:
            return  # a pytest-xdist worker: the controller aggregates
        rows = journal.rows(self.run_dir) if self.run_dir is not None else self.rows
        if not rows:  # no eval ran (e.g. collection stopped): a live run's folder says so, not to be resumed
            if self.run_dir is not None and self.live:
                journal.finish(self.run_dir, "empty")
            return
        interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
        try:
            loaded = {
                name: self.collected.get(name) or evals.load(Path(path), self.root)
                for name, path in self.eval_paths.items()
            }
            loaded |= self._evals_of(rows, loaded)
        except PromptVCRError as exc:  # an eval file changed while the session ran
            self.problem = str(exc)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        accounted = self._accounting(rows, interrupted)
        if accounted and not interrupted:
            self.problem = accounted
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.rows = rows
        df = report.frame(rows)
        self.summaries = report.summarize(df, loaded)
        self.run_dir = self.run_dir or report.new_run_dir(self.reports_dir)
        mode = "replayed from cassettes" if not self.live else f"record mode {self.options.record_mode}"
        partial = " Partial: the run was stopped before every sample ran." if interrupted else ""
        note = f"{len(df)} samples, {mode}.{partial}"
        report.write(self.run_dir, df, self.summaries, note, loaded, self.durations)
        status = "interrupted" if interrupted else "complete"
        shard = session.config.getoption("shard")  # what `promptvcr merge` checks: every part of one split, complete
        paths = self.eval_paths | {n: str(e.path) for n, e in loaded.items()}
        journal.finish(self.run_dir, status, evals=paths, shard=list(shard) if shard else None)
        if session.config.getoption("shard"):  # a shard's gates see part of the rows: `promptvcr merge` decides
            self.notes.append("promptvcr: a shard: its gates are not final; `promptvcr merge` the shards' reports")
        elif any(s.failed for s in self.summaries) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _evals_of(self, rows: list[runner.Row], loaded: dict[str, evals.Eval]) -> dict[str, evals.Eval]:
        """Evals with rows but no finished item in this session (a resumed run's, a stopped item's)."""
        state = journal.read_state(self.run_dir) if self.run_dir is not None else {}
        paths = state.get("evals") or {}
        missing = {str(r["eval"]) for r in rows} - loaded.keys()
        return {name: evals.load(Path(paths[name]), self.root) for name in missing if name in paths}

    def _accounting(self, rows: list[runner.Row], interrupted: bool) -> str | None:
        """Results == planned: every sample of every item that ran has one row, with an outcome (and an error class
        when it errored). Interrupted, it says how far the run got instead."""
        if interrupted:
            how = ": continue with `promptvcr run --resume`" if self.live else ""
            self.notes.append(f"promptvcr: interrupted with {len(rows)} sample(s) done{how}")
            return None
        samples: dict[tuple[str, str, str], set[int]] = {}
        for row in rows:
            samples.setdefault((row["eval"], row["variant"], row["case"]), set()).add(int(row["sample"]))
        lost = sum(len(set(range(n)) - samples.get(item, set())) for item, n in self.planned.items())
        bad = [r for r in rows if r.get("outcome") not in OUTCOMES or (r["outcome"] == "errored" and not r["error"])]
        if lost or bad:
            return (
                f"promptvcr: {sum(self.planned.values())} samples planned; {lost} without a result, {len(bad)} without"
                " an outcome or error class — a bug in promptvcr: please report it with reports/latest/results.csv"
            )
        return None

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.problem and not self.summaries:
            terminalreporter.write_sep("=", "promptvcr: no report", red=True)
            terminalreporter.write_line(self.problem)
        if not self.summaries:
            return
        failed = any(s.failed for s in self.summaries) and not self._config.getoption("shard")
        title = "promptvcr gates FAILED" if failed else "promptvcr summary"
        terminalreporter.write_sep("=", title, red=failed, green=not failed)
        terminalreporter.write_line(report.text_table(self.summaries))
        for line in report.fallback_lines(self.rows):
            terminalreporter.write_line(line, yellow=True)
        for line in self.notes:
            terminalreporter.write_line(line, yellow=True)
        if self.problem:
            terminalreporter.write_line(self.problem, red=True)
        terminalreporter.write_line(f"reports: {self.run_dir} (latest: {self.reports_dir / 'latest'})")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds above 0, e.g. 5")
    return value


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: use I/N with 1 <= I <= N, e.g. 1/4")
    return i, n


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptvcr", "promptvcr prompt evals")
    group.addoption(
        "--eval", action="append", default=[], metavar="NAME", help="run only these evals (name or file stem)"
    )
    group.addoption("--variant", action="append", default=[], metavar="NAME", help="run only these variants")
    group.addoption(
        "--record-mode", default="none", choices=RECORD_MODES, help="cassette record mode (default: none = replay only)"
    )
    group.addoption(
        "--samples", type=_positive, default=None, metavar="N", help="samples per case, overriding the files"
    )
    group.addoption(
        "--cassettes-dir", default="cassettes", metavar="DIR", help="where cassettes live (default: cassettes)"
    )
    group.addoption("--profile", default=None, metavar="NAME", help="key profile from profiles.yaml (dev, prod, …)")
    group.addoption(
        "--reports-dir", default="reports", metavar="DIR", help="where reports are written (default: reports)"
    )
    group.addoption(
        "--resume",
        action="store_true",
        help="continue the newest live run that did not finish: send only samples without an answer",
    )
    group.addoption(
        "--progress-every",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="seconds between the progress lines of a live run (default: 5)",
    )
    group.addoption(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run the I-th of N parts of the items (1-based), e.g. one per CI machine; `promptvcr merge` joins them",
    )


def pytest_configure(config: pytest.Config) -> None:
    load_dotenv(config.rootpath / ".env", override=False)
    if config.getoption("profile"):
        os.environ[profiles.ENV] = config.getoption("profile")  # read where evals are loaded, workers included
    _sigterm_as_ctrl_c(config)
    state = _State(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "promptvcr-state")
    state.start_journal([str(a) for a in config.invocation_params.args])


def _sigterm_as_ctrl_c(config: pytest.Config) -> None:
    """CI cancels a job with SIGTERM: stop as Ctrl-C does (nothing more sent, a partial report, `interrupted`),
    unless something else already handles it."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, interrupt)
    config.add_cleanup(restore)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: a worker journals into the controller's run folder."""
    state = node.config.stash[_STATE]
    if state.run_dir is not None:
        node.workerinput["promptvcr_run_dir"] = str(state.run_dir)


def _selection(config: pytest.Config) -> journal.Selection:
    return journal.Selection(
        tuple(str(Path(a).resolve()) for a in config.args),
        tuple(config.getoption("eval")),
        tuple(config.getoption("variant")),
        config.getoption("samples"),
        config.getoption("shard"),
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    if state.live:
        state.write_plan(session.items)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--shard I/N``: every N-th item from the I-th on, in collection order — the same on every machine."""
    state = config.stash[_STATE]
    shard = state.resumed.selection.shard if state.resumed is not None else config.getoption("shard")
    if shard is None:
        return
    index, count = shard
    keep = [item for n, item in enumerate(items) if n % count == index - 1]
    dropped = [item for n, item in enumerate(items) if n % count != index - 1]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    state = session.config.stash[_STATE]
    # pytest's own loop stops a session whose collection failed before running anything: so must we
    stopping = session.testsfailed and not session.config.option.continue_on_collection_errors
    if state.live and state.worker is None and not stopping and not session.config.option.collectonly:
        state.start_ahead(session.items)
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STATE in config.stash:
        config.stash[_STATE].close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.parent.name == "evals":
        collector: pytest.Collector = EvalFile.from_parent(parent, path=file_path)
        return collector
    return None


class EvalFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        state = self.config.stash[_STATE]
        resumed: journal.Resumed | None = state.resumed
        samples = resumed.selection.samples if resumed is not None else self.config.getoption("samples")
        ev = evals.load(self.path, self.config.rootpath, samples)
        if resumed is not None:  # exactly the killed run's plan, whatever this session's arguments would add
            if not resumed.has_eval(ev.name, self.path):
                return
            planned = [(run, resumed.samples((ev.name, run.variant.name, run.case.id), run.samples)) for run in ev.runs]
            runs = [dataclasses.replace(run, samples=n) for run, n in planned if n is not None]
        else:
            wanted = self.config.getoption("eval")
            if wanted and ev.name not in wanted and self.path.stem not in wanted:
                return
            variants = self.config.getoption("variant")
            runs = [run for run in ev.runs if not variants or run.variant.name in variants]
        other = state.eval_paths.get(ev.name)
        if other is not None and other != str(self.path):  # they would share cassettes and reports
            raise PromptVCRError(f"{self.path}: eval name {ev.name!r} is also the name of {other}: rename one")
        state.eval_paths[ev.name] = str(self.path)
        state.collected[ev.name] = ev
        if not state.options.replay:
            self._preflight(ev, runs, state)
        if state.progress is not None:
            state.progress.plan(sum(run.samples - len(state.kept(run)) for run in runs))
        for run in runs:
            item = CaseItem.from_parent(
                self,
                name=f"{run.case.id}[{run.variant.name}]",
                originalname=run.case.id,
                callspec=CallSpec(_idlist=(run.variant.name,)),  # the variant, as pytest's own parametrize says it
                callobj=_test_for(run, ev),
            )
            item.stash[_RUN] = run
            yield item

    def _preflight(self, ev: evals.Eval, runs: list[evals.CaseRun], state: _State) -> None:
        """Before a live run: refuse an eval whose worst case exceeds its budget; warn about retired models."""
        if ev.budget_usd is not None:
            problem = preflight.budget_problem(ev, [preflight.plan(run) for run in runs])
            if problem:
                raise PromptVCRError(problem)
            budget = state.budgets[ev.name] = preflight.Budget(ev.budget_usd)
            for run in runs:  # a resumed run's answers were paid for
                kept = [row["cost_usd"] for row in state.kept(run).values() if not row["replayed"]]
                if kept:
                    budget.spend(sum(float(c or 0.0) for c in kept), None)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for model in sorted({run.model for run in runs}):
            warning = models.shutdown_warning(model, dt.date.today())
            if warning and reporter is not None:
                reporter.write_line(f"promptvcr: warning: {warning}", yellow=True)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, PromptVCRError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


_RUN = pytest.StashKey[evals.CaseRun]()


class CaseItem(pytest.Function):
    def reportinfo(self) -> tuple[Path, int, str]:
        run = self.stash[_RUN]
        return run.case.path, run.case.line - 1, self.name


def _test_for(run: evals.CaseRun, ev: evals.Eval) -> Callable[[pytest.FixtureRequest], None]:
    def promptvcr_case(request: pytest.FixtureRequest) -> None:
        state = request.config.stash[_STATE]
        rows = state.case_rows(request.node, run)
        request.node.stash[_ROWS] = rows
        _verdict(run, ev, rows, state.options)

    return promptvcr_case


def _verdict(run: evals.CaseRun, ev: evals.Eval, rows: list[runner.Row], options: runner.RunOptions) -> None:
    errors = [r for r in rows if r["outcome"] == "errored"]
    never_recorded = options.replay and not runner.cassette_for(run, options).is_file()
    if errors and never_recorded and ev.missing_recordings == "skip":
        for row in rows:
            row["outcome"] = "skipped"
        pytest.skip(errors[0]["error_message"])
    kind, message = junit.case_verdict(rows, run.case.min_pass_rate)
    if kind == "passed":
        return
    if kind == "failed" and run.variant.xfail:  # one line: -ra prints it for every item; details in results.csv
        pytest.xfail(f"{run.variant.xfail} — {message.splitlines()[0]}")
    pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep: Any = yield
    if call.when == "call" and _ROWS in item.stash:
        rep.promptvcr_rows = item.stash[_ROWS]
        run = item.stash[_RUN]
        rep.promptvcr_eval = [run.eval_name, str(item.path)]
        rep.promptvcr_item = [run.eval_name, run.variant.name, run.case.id, run.samples]
    return rep  # type: ignore[no-any-return]  # pluggy wrappers return what they received
