"""The run journal of a live run: its result rows as they arrive, and what `--resume` needs to continue it.

A live run's folder (``reports/<run-id>/``) is made when the run starts. ``run.json`` says how it was started and
whether it finished; ``results*.jsonl`` get one line per sample the moment it ends (one file per pytest-xdist
worker), flushed, so a run killed at any moment — SIGKILL included — keeps every result it had: the line a kill
cut short is not a result and is ignored. The report at the end is made from these lines.

``--resume`` continues a run that did not finish, and exactly its plan: ``run.json`` keeps what selected its items
(the paths it was given, ``--eval``, ``--variant``, ``--samples``, ``--shard``) and ``plan*.json`` the items
themselves, written when collection ends, before anything is sent. Samples with an answer (passed or failed) are
kept as they are; the others — errored, or never started — are run again. Their answers, when a killed run paid
for them, come back from the cassettes' logs (harness.record._cassettes), so nothing is paid twice.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..errors import PromptVCRError
from ..record._cassettes import RecordMode, ends_a_line
from ._row import Row

STATE = "run.json"
UNFINISHED = ("running", "interrupted")  # a run in one of these states is one ``--resume`` continues
Key = tuple[str, str, str, int]  # eval, variant, case, sample: Row.key


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
        line = json.dumps(row.to_dict(), ensure_ascii=False, default=str) + "\n"
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


def rows(run_dir: Path) -> list[Row]:
    """Every complete row of a run's journals, one per sample. A sample written twice was errored, then re-run by
    --resume (perhaps by another pytest-xdist worker, in another file): its answered row wins, else the later one."""
    latest: dict[Key, Row] = {}
    for path in sorted(run_dir.glob("results*.jsonl")):
        for row in _complete_lines(path):
            before = latest.get(row.key)
            if before is None or not before.outcome.answered:
                latest[row.key] = row
    return list(latest.values())


def _complete_lines(path: Path) -> Iterable[Row]:
    text = path.read_text(encoding="utf-8", errors="replace")
    for line in text.split("\n")[:-1]:  # after the last newline: a line a kill cut short
        try:
            raw = json.loads(line)
            row = Row.from_dict(raw) if isinstance(raw, dict) else None
        except (ValueError, KeyError, TypeError):  # not a row: e.g. a row cut short that the next one continued
            continue
        if row is not None:
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
        if row.outcome.answered:
            out.setdefault(row.item, {})[row.sample] = row
    return out


@dataclass(frozen=True)
class Selection:
    """What chose a run's items: its targets (absolute paths) and the promptvcr options that narrow them."""

    targets: tuple[str, ...]
    evals: tuple[str, ...] = ()  # --eval
    variants: tuple[str, ...] = ()  # --variant
    samples: int | None = None  # --samples
    shard: tuple[int, int] | None = None  # --shard

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": list(self.targets),
            "evals": list(self.evals),
            "variants": list(self.variants),
            "samples": self.samples,
            "shard": list(self.shard) if self.shard else None,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Selection:
        shard = raw.get("shard")
        return cls(
            tuple(raw.get("targets") or ()),
            tuple(raw.get("evals") or ()),
            tuple(raw.get("variants") or ()),
            raw.get("samples"),
            (int(shard[0]), int(shard[1])) if shard else None,
        )


@dataclass(frozen=True)
class Plan:
    """A run's items (eval, variant, case → samples) and its evals' files (name → path)."""

    items: dict[tuple[str, str, str], int]
    evals: dict[str, str]


@dataclass(frozen=True)
class Resumed:
    """The run ``--resume`` continues, and what of the files before us belongs to its plan."""

    run_dir: Path
    selection: Selection
    plan: Plan | None  # None: stopped before its collection ended; then its selection decides

    @classmethod
    def of(cls, run_dir: Path) -> Resumed:
        return cls(run_dir, Selection.from_dict(read_state(run_dir).get("selection") or {}), read_plan(run_dir))

    def has_eval(self, name: str, path: Path) -> bool:
        if self.plan is not None:
            return name in self.plan.evals
        targets = [Path(t) for t in self.selection.targets]
        under = not targets or any(path.resolve().is_relative_to(t) for t in targets)
        return under and (not self.selection.evals or name in self.selection.evals or path.stem in self.selection.evals)

    def samples(self, item: tuple[str, str, str], loaded: int) -> int | None:
        """The item's samples in the plan (``loaded``, as the files say, when the run had no plan yet); None when the
        item is not part of it."""
        if self.plan is not None:
            return self.plan.items.get(item)
        return loaded if not self.selection.variants or item[1] in self.selection.variants else None


def start(run_dir: Path, record_mode: RecordMode, argv: list[str], selection: Selection) -> None:
    state = {"status": "running", "record_mode": str(record_mode), "argv": argv, "selection": selection.to_dict()}
    write_state(run_dir, state | {"started": _now()})


def write_plan(run_dir: Path, plan: Plan, suffix: str = "") -> None:
    """The items the run will send, before it sends anything (pytest-xdist workers: each the same, in a file each)."""
    items = [[*key, samples] for key, samples in sorted(plan.items.items())]
    tmp = run_dir / f".plan{suffix}.json.tmp"
    tmp.write_text(json.dumps({"items": items, "evals": plan.evals}) + "\n", encoding="utf-8")
    tmp.replace(run_dir / f"plan{suffix}.json")


def read_plan(run_dir: Path) -> Plan | None:
    """The run's items, or None when it was stopped before its collection ended (then it sent nothing)."""
    for path in sorted(run_dir.glob("plan*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            items = {(str(e), str(v), str(c)): int(n) for e, v, c, n in raw["items"]}
            return Plan(items, {str(k): str(p) for k, p in raw["evals"].items()})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


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


def unfinished(reports_dir: Path, named: Sequence[str]) -> Path:
    """The newest live run that did not finish whose evals are the ``named`` ones (eval names or file paths), or
    with none named, the only one; PromptVCRError with the list of unfinished runs when none or several fit."""
    runs = sorted(
        (p.parent for p in reports_dir.glob("*/" + STATE) if not p.parent.is_symlink()),
        key=lambda run: run.name,
        reverse=True,
    )
    runs = [run for run in runs if read_state(run).get("status") in UNFINISHED]
    if not runs:
        raise PromptVCRError(
            f"--resume: no unfinished live run in {reports_dir} (a run that finished is complete; start a new one)"
        )
    listing = "\n".join(f"  {run.name}: {', '.join(run_evals(run)) or 'no eval collected'}" for run in runs)
    if named:
        fitting = [run for run in runs if _same_evals(run, named)]
        if fitting:
            return fitting[0]
        raise PromptVCRError(
            f"--resume: no unfinished run of exactly {', '.join(named)}; the unfinished runs are:\n{listing}\n"
            "resume one by naming its evals (`promptvcr run EVAL… --resume`), or start a new run without --resume"
        )
    if len({tuple(run_evals(run)) for run in runs}) > 1:
        raise PromptVCRError(
            f"--resume: several unfinished runs of different evals:\n{listing}\n"
            "name the evals of the one to continue: `promptvcr run EVAL… --resume`"
        )
    return runs[0]


def resumable(reports_dir: Path, named: Sequence[str], record_mode: str, now: Selection) -> Path:
    """The run ``--resume`` continues (``unfinished``); PromptVCRError when this session's options would change its
    plan (``record_mode`` "none" and options not given leave it as it was)."""
    run_dir = unfinished(reports_dir, named)
    state = read_state(run_dir)
    was = Selection.from_dict(state.get("selection") or {})
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
        raise PromptVCRError(
            f"--resume continues {run_dir.name} as it was started ({', '.join(changed)}): drop the options that"
            " differ, or start a new run without --resume"
        )
    return run_dir


def run_evals(run_dir: Path) -> list[str]:
    """The names of the evals a run planned; before its collection ended, the evals it was pointed at."""
    plan = read_plan(run_dir)
    if plan is not None:
        return sorted(plan.evals)
    selection = Selection.from_dict(read_state(run_dir).get("selection") or {})
    return sorted(selection.evals or {Path(t).stem for t in selection.targets if Path(t).suffix in (".yaml", ".yml")})


def _same_evals(run_dir: Path, named: Sequence[str]) -> bool:
    plan = read_plan(run_dir)
    evals = plan.evals if plan is not None else {name: "" for name in run_evals(run_dir)}
    paths = {name: Path(path).resolve() for name, path in evals.items() if path}

    def matches(target: str, name: str) -> bool:
        return target in (name, Path(paths.get(name, name)).stem) or (
            name in paths and Path(target).resolve() == paths[name]
        )

    return all(any(matches(t, n) for n in evals) for t in named) and all(
        any(matches(t, n) for t in named) for n in evals
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
