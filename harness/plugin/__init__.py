"""The pytest plugin: eval files become test items, results become reports, gates decide the exit code.

Each ``evals/*.yaml`` is collected as a file; each case × variant is a real ``pytest.Function`` (so fixtures,
``-k``, ``-x``, ``--junitxml`` and pytest-xdist work) named ``<case-id>[<variant>]``. The item's result rows ride
on its test report, which pytest-xdist carries to the controller; the controller aggregates once at the end.

The package's ``pytest11`` entry point loads this module into every pytest run, a project's unit tests too: so it
holds only the options and the hooks that find out whether the run has evals. The machinery (``harness.plugin._state``:
the session, loading, running, reporting) is imported, and its hooks registered, when it has: at the first eval file
collected, at the start of a live or resumed run (its folder and journal come before anything is sent), or on
pytest-xdist's controller at the first report that carries rows.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import pytest
from dotenv import load_dotenv

from .. import _cliargs as cliargs
from ..record._mode import RecordMode

if TYPE_CHECKING:
    from pathlib import Path

    from ._state import State

pytest_plugins = ["harness.checks._pytest_hook"]  # the pytest_promptvcr_checks hook, for conftest.py files
STATE = pytest.StashKey["State"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptvcr", "promptvcr prompt evals")
    group.addoption(
        "--eval", action="append", default=[], metavar="NAME", help="run only these evals (name or file stem)"
    )
    group.addoption("--variant", action="append", default=[], metavar="NAME", help="run only these variants")
    group.addoption(
        "--record-mode", default="none", choices=tuple(map(str, RecordMode)), help="cassette record mode (none: replay)"
    )
    group.addoption(
        "--samples",
        type=cliargs.typed("samples", int),
        default=None,
        metavar="N",
        help="samples per case, overriding the files",
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
        "--batch",
        action="store_true",
        help="record through the OpenAI Batch API (half the price, in 24 h), then replay (default record mode: once)",
    )
    group.addoption(
        "--progress-every",
        type=cliargs.typed("progress_every", float),
        default=5.0,
        metavar="S",
        help="seconds between the progress lines of a live run (default: 5)",
    )
    group.addoption(
        "--shard",
        type=cliargs.shard,
        default=None,
        metavar="I/N",
        help="run the I-th of N parts of the items (1-based), e.g. one per CI machine; `promptvcr merge` joins them",
    )


def pytest_configure(config: pytest.Config) -> None:
    load_dotenv(config.rootpath / ".env", override=False)
    _sigterm_as_ctrl_c(config)
    config.pluginmanager.register(_Reports(config), "promptvcr-reports")
    # the last cleanup: after pytest's own last collections (its unraisable-exception plugin's, configured after
    # this plugin, so cleaned up before it), which an eval-only run lets skip what it froze (State.pytest_unconfigure)
    config.add_cleanup(lambda: _thaw(config))
    live = RecordMode(config.getoption("record_mode")) != RecordMode.NONE
    if live or config.getoption("resume") or config.getoption("batch"):
        state_of(config)


def state_of(config: pytest.Config) -> State:
    """The run's eval machinery, made (and its hooks registered) on first need."""
    state = config.stash.get(STATE, None)
    if state is None:
        from ._state import start

        state = config.stash[STATE] = start(config)
    return state


def _thaw(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.thaw()


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


class _Reports:
    """Every test report passes here: one whose item ran an eval case carries its rows to the session (on
    pytest-xdist's controller, which collects nothing, the first such report is where the run's evals show)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "promptvcr_rows", None):
            state_of(self._config).ended(report)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: a worker journals into the controller's run folder."""
    state = node.config.stash.get(STATE, None)
    if state is not None and state.session.run_dir is not None:
        node.workerinput["promptvcr_run_dir"] = str(state.session.run_dir)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--shard I/N``: every N-th item from the I-th on, in collection order — the same on every machine."""
    state = config.stash.get(STATE, None)
    resumed = state.session.resumed if state is not None else None
    shard = resumed.selection.shard if resumed is not None else config.getoption("shard")
    if shard is None:
        return
    index, count = shard
    keep = [item for n, item in enumerate(items) if n % count == index - 1]
    dropped = [item for n, item in enumerate(items) if n % count != index - 1]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.parent.name == "evals":
        return state_of(parent.config).eval_file(file_path, parent)
    return None
