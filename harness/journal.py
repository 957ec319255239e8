"""The run journal of a live run: its result rows as they arrive, and what `--resume` needs to continue it.

A live run's folder (``reports/<run-id>/``) is made when the run starts. ``run.json`` says how it was started and
whether it finished; ``results*.jsonl`` get one line per sample the moment it ends (one file per pytest-xdist
worker), flushed, so a run killed at any moment — SIGKILL included — keeps every result it had: the line a kill
cut short is not a result and is ignored. The report at the end is made from these lines.

``--resume`` continues the newest run that did not finish: samples with an answer (passed or failed) are kept as
they are; the others — errored, or never started — are run again. Their answers, when a killed run paid for them,
come back from the cassettes' logs (harness.cassettes), so nothing is paid twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from .errors import PromptVCRError

Row = dict[str, Any]
STATE = "run.json"
Key = tuple[str, str, str, int]  # eval, variant, case, sample


def key(row: Row) -> Key:
    return (str(row["eval"]), str(row["variant"]), str(row["case"]), int(row["sample"]))


class Journal:
    """Appends rows to ``results<suffix>.jsonl`` in a run folder; safe to call from any thread."""

    def __init__(self, run_dir: Path, suffix: str = "") -> None:
        self.path = run_dir / f"results{suffix}.jsonl"
        self._lock = threading.Lock()
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        if self._file.tell() and not ends_a_line(self.path):
            self._file.write("\n")  # a row a kill cut short stays a line of its own, not glued to the next row
        self._saved: TextIO = (run_dir / f"cassettes{suffix}.txt").open("a", encoding="utf-8")

    def append(self, row: Row) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file.closed:  # a call that ended after its run did: its answer is in the cassette's log
                return
            self._file.write(line)
            self._file.flush()  # handed to the kernel: survives the death of this process

    def saved(self, cassette: Path) -> None:
        """Note a cassette this run wrote: resumed, the run continues it rather than starting it afresh."""
        with self._lock:
            if not self._saved.closed:
                self._saved.write(f"{cassette}\n")
                self._saved.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
            self._saved.close()


def ends_a_line(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def rows(run_dir: Path) -> list[Row]:
    """Every complete row of a run's journals, one per sample. A sample written twice was errored, then re-run by
    --resume (perhaps by another pytest-xdist worker, in another file): its answered row wins, else the later one."""
    latest: dict[Key, Row] = {}
    for path in sorted(run_dir.glob("results*.jsonl")):
        for row in _complete_lines(path):
            if not _answered(latest.get(key(row))):
                latest[key(row)] = row
    return list(latest.values())


def _answered(row: Row | None) -> bool:
    return row is not None and row.get("outcome") in ("passed", "failed")


def _complete_lines(path: Path) -> Iterable[Row]:
    text = path.read_text(encoding="utf-8", errors="replace")
    for line in text.split("\n")[:-1]:  # after the last newline: a line a kill cut short
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and {"eval", "variant", "case", "sample"} <= row.keys():
            yield row


def rewritten(run_dir: Path) -> frozenset[str]:
    """The cassettes a run wrote (complete lines only: a path a kill cut short was not fully noted)."""
    return frozenset(
        line
        for path in run_dir.glob("cassettes*.txt")
        for line in path.read_text(encoding="utf-8").split("\n")[:-1]
        if line
    )


def kept(run_dir: Path) -> dict[tuple[str, str, str], dict[int, Row]]:
    """The rows --resume keeps, by (eval, variant, case): those with an answer."""
    out: dict[tuple[str, str, str], dict[int, Row]] = {}
    for row in rows(run_dir):
        if row.get("outcome") in ("passed", "failed"):
            out.setdefault((row["eval"], row["variant"], row["case"]), {})[int(row["sample"])] = row
    return out


def start(run_dir: Path, record_mode: str, argv: list[str]) -> None:
    write_state(run_dir, {"status": "running", "record_mode": record_mode, "argv": argv, "started": _now()})


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / STATE)


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        state = json.loads((run_dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def finish(run_dir: Path, status: str, **extra: Any) -> None:
    write_state(run_dir, read_state(run_dir) | {"status": status, "ended": _now()} | extra)


def unfinished(reports_dir: Path) -> Path:
    """The newest live run that did not finish; PromptVCRError when there is none."""
    runs = [
        p
        for p in reports_dir.glob("*/" + STATE)
        if not p.parent.is_symlink() and read_state(p.parent).get("status") in ("running", "interrupted")
    ]
    if not runs:
        raise PromptVCRError(
            f"--resume: no unfinished live run in {reports_dir} (a run that finished is complete; start a new one)"
        )
    return max(runs, key=lambda p: p.parent.name).parent


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
