"""The pytest plugin: eval files become test items, results become reports, gates decide the exit code.

Each ``evals/*.yaml`` is collected as a file; each case × variant is a real ``pytest.Function`` (so fixtures,
``-k``, ``-x``, ``--junitxml`` and pytest-xdist work) named ``<case-id>[<variant>]``. The item's result rows ride
on its test report, which pytest-xdist carries to the controller; the controller aggregates once at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dotenv import load_dotenv

from . import evals, junit, local, models, preflight, profiles, report, runner
from .cassettes import RECORD_MODES
from .errors import PromptVCRError
from .progress import Progress

_STATE = pytest.StashKey["_State"]()
_ROWS = pytest.StashKey[list[runner.Row]]()


class _State:
    def __init__(self, config: pytest.Config) -> None:
        root = config.rootpath
        self.root = root
        self.budgets: dict[str, preflight.Budget] = {}
        live = config.getoption("record_mode") != "none"
        # workers of pytest-xdist have no terminal of their own; the controller shows pytest's progress
        self.progress = Progress(self._say) if live and not hasattr(config, "workerinput") else None
        self._config = config
        self.options = runner.RunOptions(
            record_mode=config.getoption("record_mode"),
            cassettes_dir=root / config.getoption("cassettes_dir"),
            local_url=self.local_url,
            budgets=self.budgets,
            on_row=self.progress.sample if self.progress else None,
        )
        self.reports_dir = root / config.getoption("reports_dir")
        self.rows: list[runner.Row] = []
        self.eval_paths: dict[str, str] = {}
        self.summaries: list[report.VariantSummary] = []
        self.run_dir: Path | None = None
        self.problem: str | None = None
        self._stack = ExitStack()
        self._local: str | None = None

    def local_url(self) -> str:
        """A running local server: PROMPTVCR_LOCAL_URL, one already on the default port, or one we start."""
        if self._local is None:
            wanted = os.environ.get("PROMPTVCR_LOCAL_URL", evals.DEFAULT_LOCAL_URL)
            self._local = self._stack.enter_context(local.ensure_running(wanted))
        return self._local

    def close(self) -> None:
        self._stack.close()

    def _say(self, line: str) -> None:
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")  # registered after our configure
        if reporter is not None:
            reporter.write_line(line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rows = getattr(report, "promptvcr_rows", None)
        if rows:
            name, path = report.promptvcr_eval  # set in pytest_runtest_makereport
            self.rows.extend(rows)
            self.eval_paths[name] = path

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput") or not self.rows:
            return  # a pytest-xdist worker (the controller aggregates), or no eval ran
        try:
            loaded = {name: evals.load(Path(path), self.root) for name, path in self.eval_paths.items()}
        except PromptVCRError as exc:  # an eval file changed while the session ran
            self.problem = str(exc)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        df = report.frame(self.rows)
        self.summaries = report.summarize(df, loaded)
        self.run_dir = report.new_run_dir(self.reports_dir)
        mode = "replayed from cassettes" if self.options.replay else f"record mode {self.options.record_mode}"
        report.write(self.run_dir, df, self.summaries, f"{len(df)} samples, {mode}.", loaded)
        if any(s.failed for s in self.summaries) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.problem:
            terminalreporter.write_sep("=", "promptvcr: no report", red=True)
            terminalreporter.write_line(self.problem)
        if not self.summaries:
            return
        failed = any(s.failed for s in self.summaries)
        title = "promptvcr gates FAILED" if failed else "promptvcr summary"
        terminalreporter.write_sep("=", title, red=failed, green=not failed)
        terminalreporter.write_line(report.text_table(self.summaries))
        for line in report.fallback_lines(self.rows):
            terminalreporter.write_line(line, yellow=True)
        terminalreporter.write_line(f"reports: {self.run_dir} (latest: {self.reports_dir / 'latest'})")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


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


def pytest_configure(config: pytest.Config) -> None:
    load_dotenv(config.rootpath / ".env", override=False)
    if config.getoption("profile"):
        os.environ[profiles.ENV] = config.getoption("profile")  # read where evals are loaded, workers included
    state = _State(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "promptvcr-state")


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
        ev = evals.load(self.path, self.config.rootpath, self.config.getoption("samples"))
        wanted = self.config.getoption("eval")
        if wanted and ev.name not in wanted and self.path.stem not in wanted:
            return
        variants = self.config.getoption("variant")
        runs = [run for run in ev.runs if not variants or run.variant.name in variants]
        state = self.config.stash[_STATE]
        if not state.options.replay:
            self._preflight(ev, runs, state)
        if state.progress is not None:
            state.progress.plan(sum(run.samples for run in runs))
        for run in runs:
            item = CaseItem.from_parent(self, name=f"{run.case.id}[{run.variant.name}]", callobj=_test_for(run, ev))
            item.stash[_RUN] = run
            yield item

    def _preflight(self, ev: evals.Eval, runs: list[evals.CaseRun], state: _State) -> None:
        """Before a live run: refuse an eval whose worst case exceeds its budget; warn about retired models."""
        if ev.budget_usd is not None:
            problem = preflight.budget_problem(ev, [preflight.plan(run) for run in runs])
            if problem:
                raise PromptVCRError(problem)
            state.budgets[ev.name] = preflight.Budget(ev.budget_usd)
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
        rows = runner.run_case(run, state.options)
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
        rep.promptvcr_eval = [item.stash[_RUN].eval_name, str(item.path)]
    return rep  # type: ignore[no-any-return]  # pluggy wrappers return what they received
