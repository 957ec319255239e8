"""The eval machinery of the pytest plugin (``harness.plugin``), imported when a run has evals: the ``Session``
behind it, the eval files' collectors and items, and the hooks that carry rows onto reports and into the reports.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .._session import Finished, Session, Settings
from ..cli import _remedies as remedies
from ..errors import InternalError, PromptVCRError
from ..load import _evals as evals
from ..load import _profiles as profiles
from ..record._cassettes import RecordMode
from ..report import _junit as junit
from ..report import _summary as report
from ..run import _batch as batches
from ..run import _journal as journal
from ..run._row import Row
from . import STATE

try:  # the variant is a real parameter of the item: pytest's cache (--lf, --ff), -k and --deselect see it as one
    from _pytest.python import CallSpec  # pytest ≥ 9.2, whose node ids are structured
except ImportError:  # pragma: no cover  # older pytest
    from _pytest.python import CallSpec2 as CallSpec  # its name there

LOCAL_URL_ENV = "PROMPTVCR_LOCAL_URL"  # a local model server that is running already
# while evals are collected and while only evals run: a young collection every 50,000 new objects (Python's
# default: 700), so that short-lived ones die before any collection sees them rather than move up to be walked
# again (a 100,000-row replay spent 2.34 s of CPU collecting, 1.45 s after); while only evals run, a middle one
# every 1,000 young ones (default 10: the rows that survived a young one were walked again, 0.44 s of that replay,
# to free ~40 objects) and a full one every 100 of the middle's (default 10)
YOUNG_COLLECTIONS_EVERY, MIDDLE_COLLECTIONS_EVERY, FULL_COLLECTIONS_EVERY = 50_000, 1000, 100


def start(config: pytest.Config) -> State:
    """The run's state, its hooks registered; a live run's folder and journal started."""
    state = State(config)
    config.pluginmanager.register(state, "promptvcr-state")
    state.session.start_journal([str(a) for a in config.invocation_params.args], _selection(config))
    return state


class State:
    """The pytest side of a session: options and environment in, the ``Session``'s rows onto items and reports."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self.worker = getattr(config, "workerinput", None)  # set on pytest-xdist workers
        record_mode = RecordMode(config.getoption("record_mode"))
        root = config.rootpath
        self.reports_dir = root / config.getoption("reports_dir")
        resume = bool(config.getoption("resume"))
        run_dir = self._resumed_run(record_mode) if resume else None
        if run_dir is not None:
            record_mode = RecordMode(journal.read_state(run_dir)["record_mode"])
        batch = bool(config.getoption("batch"))
        record_mode = batches.record_mode(record_mode, batch)
        if self.worker is not None and run_dir is None and "promptvcr_run_dir" in self.worker:
            run_dir = Path(self.worker["promptvcr_run_dir"])
        live = record_mode != RecordMode.NONE
        self.session = Session(
            Settings(
                root=root,
                record_mode=record_mode,
                cassettes_dir=root / config.getoption("cassettes_dir"),
                reports_dir=self.reports_dir,
                # the environment is read here, at the edge, and passed down
                profile=config.getoption("profile") or os.environ.get(profiles.ENV) or None,
                local_url=os.environ.get(LOCAL_URL_ENV) or None,
                # workers of pytest-xdist have no terminal of their own; the controller shows pytest's progress
                say=self._say if live and self.worker is None else None,
                progress_every=config.getoption("progress_every"),
                run_dir=run_dir,
                resume=resume,
                worker=self.worker["workerid"] if self.worker is not None else None,
                advise=remedies.advice,
                batch=batch,
            )
        )
        self.finished = Finished()
        self.internal_error = False  # a bug of ours while loading a file (errors.InternalError)
        # the cycle collector's thresholds as they were: young collections are rarer from here on (the items that
        # collection makes all live to the end: walking them only moves them up), to the end if only evals run
        self.collector: tuple[int, int, int] | None = gc.get_threshold()
        young, middle, old = self.collector
        gc.set_threshold(max(young, YOUNG_COLLECTIONS_EVERY), middle, old)

    def _resumed_run(self, record_mode: RecordMode) -> Path:
        if self.worker is not None:
            return Path(self.worker["promptvcr_run_dir"])
        config = self._config
        named = [*config.getoption("eval"), *(str(Path(a)) for a in config.args if Path(a).suffix in (".yaml", ".yml"))]
        try:
            return journal.resumable(self.reports_dir, named, record_mode, _selection(config))
        except PromptVCRError as exc:  # a user's mistake: pytest's usage error, not an internal one
            raise pytest.UsageError(str(exc)) from None

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

    def ended(self, report: pytest.TestReport) -> None:
        """An item's rows, off its report (``harness.plugin`` passes every report that has some)."""
        rows = report.promptvcr_rows  # set in pytest_runtest_makereport
        _, path = report.promptvcr_eval
        eval_name, variant, case, samples = report.promptvcr_item
        if isinstance(rows[0], dict):  # as pytest-xdist carried them
            rows = list(map(Row.from_dict, rows))
        self.session.ended(rows, (eval_name, variant, case), samples, report.duration, path)
        # the session has them now: one copy of 100,000 rows, not two (a pytest-xdist worker's report still has
        # them to carry)
        if self.worker is None:
            setattr(report, "promptvcr_rows", None)  # noqa: B010  # not an attribute TestReport declares

    def eval_file(self, path: Path, parent: pytest.Collector) -> pytest.Collector:
        collector: pytest.Collector = EvalFile.from_parent(parent, path=path)
        return collector

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        cases = [item.stash[_CASE] for item in session.items if _CASE in item.stash]
        self.session.write_plan([case.run for case in cases])
        if cases and len(cases) == len(session.items):
            # Only evals run: what collection made (the evals, their items) lives to the end, so Python's cycle
            # collector need not walk it again at every full collection while the rows pile up, nor walk the rows
            # that often (a 100,000-row replay spent seconds there). Not when other tests run: theirs may count on
            # collecting it.
            young, middle, old = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(young, max(middle, MIDDLE_COLLECTIONS_EVERY), max(old, FULL_COLLECTIONS_EVERY))
        elif self.collector is not None:
            gc.set_threshold(*self.collector)
            self.collector = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        # pytest's own loop stops a session whose collection failed before running anything: so must we
        stopping = session.testsfailed and not session.config.option.continue_on_collection_errors
        if self.session.live and self.worker is None and not stopping and not session.config.option.collectonly:
            cases = [item.stash[_CASE] for item in session.items if _CASE in item.stash]
            self.session.start_ahead([(case.key, case.run) for case in cases])
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        rep: Any = yield
        case = item.stash.get(_CASE, None) if call.when == "call" else None
        if case is not None and case.rows is not None:
            # taken off the item, which pytest keeps to the end (as it keeps the report, until the rows on it are
            # the session's: ended); typed in this process, dicts only for a pytest-xdist worker's to carry
            rows, case.rows = case.rows, None
            rep.promptvcr_rows = rows if self.worker is None else [row.to_dict() for row in rows]
            run = case.run
            rep.promptvcr_eval = [run.eval_name, str(item.path)]
            rep.promptvcr_item = [run.eval_name, run.variant.name, run.case.id, run.samples]
        return rep  # type: ignore[no-any-return]  # pluggy wrappers return what they received

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.session.close()
        self.session.rows, self.finished = [], Finished()  # reported: pytest's last full collections need not walk them
        if self.collector is not None:
            # Only evals ran: pytest's last two full collections (0.3 s of a 1,000-call run, ~1 s of a 100,000-row
            # replay) would walk every object left, the SDK's and pandas' included, for the cycles that died. The
            # young and middle generations are collected here (cheap: the run's garbage that is young, whose
            # finalizers pytest still reports, as its unraisable-exception hook is still in place), the rest is
            # frozen until ``thaw``, after those collections.
            gc.collect(1)
            gc.freeze()

    def thaw(self) -> None:
        """The cycle collector as it was before the session (``harness.plugin``'s last cleanup)."""
        if self.collector is not None:
            gc.unfreeze()
            gc.set_threshold(*self.collector)
            self.collector = None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.internal_error:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if self.worker is not None:
            self.session.pool.stop()
            return  # a pytest-xdist worker: the controller aggregates
        interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
        shard = session.config.getoption("shard")
        self.finished = done = self.session.finish(interrupted, tuple(shard) if shard else None)
        if (done.problem and not interrupted) or (
            done.failed and not shard and session.exitstatus == pytest.ExitCode.OK
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        done = self.finished
        if done.problem and not done.summaries:
            terminalreporter.write_sep("=", "promptvcr: no report", red=True)
            terminalreporter.write_line(done.problem)
        if not done.summaries:
            return
        failed = done.failed and not self._config.getoption("shard")
        title = "promptvcr gates FAILED" if failed else "promptvcr summary"
        terminalreporter.write_sep("=", title, red=failed, green=not failed)
        terminalreporter.write_line(report.text_table(done.summaries))
        for line in report.fallback_lines(done.rows):
            terminalreporter.write_line(line, yellow=True)
        for line in done.notes:
            terminalreporter.write_line(line, yellow=True)
        if done.problem:
            terminalreporter.write_line(done.problem, red=True)
        terminalreporter.write_line(f"reports: {done.run_dir} (latest: {self.reports_dir / 'latest'})")


def _selection(config: pytest.Config) -> journal.Selection:
    return journal.Selection(
        tuple(str(Path(a).resolve()) for a in config.args),
        tuple(config.getoption("eval")),
        tuple(config.getoption("variant")),
        config.getoption("samples"),
        config.getoption("shard"),
    )


class EvalFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        session = self.config.stash[STATE].session
        resumed = session.resumed
        samples = resumed.selection.samples if resumed is not None else self.config.getoption("samples")
        ev = evals.load(self.path, self.config.rootpath, samples, session.settings.profile)
        wanted = self.config.getoption("eval")
        if resumed is None and wanted and ev.name not in wanted and self.path.stem not in wanted:
            return
        variants = self.config.getoption("variant")
        runs = session.planned_runs(ev, [r for r in ev.runs if resumed or not variants or r.variant.name in variants])
        if not runs:
            return
        session.add_eval(ev)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for warning in session.preflight(ev, runs):
            if reporter is not None:
                reporter.write_line(f"promptvcr: warning: {warning}", yellow=True)
        fixtures = None  # the items' fixtures are their file's: found once, shared (as pytest's parametrize does)
        for run in runs:
            name = f"{run.case.id}[{run.variant.name}]"
            case = _Case(run, ev, f"{self.nodeid}::{name}")
            item = CaseItem.from_parent(
                self,
                name=name,
                originalname=run.case.id,
                callspec=CallSpec(_idlist=(run.variant.name,)),  # the variant, as pytest's own parametrize says it
                callobj=functools.partial(_play, session, case),  # no arguments: no fixture to set up per item
                fixtureinfo=fixtures,
            )
            fixtures = item._fixtureinfo
            item.stash[_CASE] = case
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, InternalError):  # our bug, not the file's: the run ends with pytest's code 3
            self.config.stash[STATE].internal_error = True
        if isinstance(excinfo.value, PromptVCRError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


@dataclass
class _Case:
    """An item's case × variant, the node id its job was started ahead under, and its rows once it ran."""

    run: evals.CaseRun
    ev: evals.Eval
    key: str
    rows: list[Row] | None = None


_CASE = pytest.StashKey[_Case]()


class CaseItem(pytest.Function):
    def reportinfo(self) -> tuple[Path, int, str]:
        run = self.stash[_CASE].run
        return run.case.path, run.case.line - 1, self.name


def _play(session: Session, case: _Case) -> None:
    """The item's test: its rows (kept for its report, see pytest_runtest_makereport), then its verdict."""
    case.rows = session.rows_of(case.key, case.run, case.ev)
    _verdict(case.run, case.rows)


def _verdict(run: evals.CaseRun, rows: list[Row]) -> None:
    kind, message = junit.case_verdict(rows, run.case.min_pass_rate)
    if kind == "passed":
        return
    if kind == "skipped":
        pytest.skip(message)
    if kind == "failed" and run.variant.xfail:  # one line: -ra prints it for every item; details in results.csv
        pytest.xfail(f"{run.variant.xfail} — {message.splitlines()[0]}")
    pytest.fail(message, pytrace=False)
