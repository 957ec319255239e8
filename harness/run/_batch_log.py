"""``batch.json`` in a live run's folder: every batch of a `--batch` run, journaled the moment its ids exist.

One entry per batch, in the order they were planned: its requests (custom ids), the eval and endpoint it goes to,
then the input file's id once uploaded, the batch's id once created, its last status and counts, and — once its
answers are in the cassettes — ``recorded`` with the requests that got none and why (``failed``). The file is
rewritten whole (temp file + rename) at each change, so a kill at any moment leaves the previous or the next
version, never half of one; `--resume` reads it to re-attach to the batches instead of submitting them again.
No key is ever written here: an endpoint is named by its URL and the name of its key's variable.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FILE = "batch.json"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class Entry:
    eval: str
    base_url: str
    custom_ids: list[str]
    input_file_id: str | None = None
    id: str | None = None  # the batch's
    status: str = "planned"  # planned, uploaded, then the Batch API's own statuses
    completed: int = 0
    failed_count: int = 0
    error: str = ""  # why the batch failed as a whole (the API's `errors`, or a refused upload or submission)
    output_file_id: str | None = None
    error_file_id: str | None = None
    recorded: bool = False  # its answers are in the cassettes
    failures: int = 0  # reads of its status or files that failed in a row (given up on at a cap: harness.run._batch)
    failed: dict[str, list[str]] = field(default_factory=dict)  # custom id → [ErrorKind, message]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class BatchLog:
    """The entries of ``run_dir/batch.json``; ``save`` after every change (safe from any thread)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / FILE
        self._lock = threading.Lock()
        self.entries: list[Entry] = [Entry(**raw) for raw in _read(self.path)]

    def covered(self) -> set[str]:
        """Every request some journaled batch holds: never submitted again."""
        return {custom_id for entry in self.entries for custom_id in entry.custom_ids}

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.save()

    def save(self) -> None:
        with self._lock:
            text = json.dumps({"batches": [asdict(e) for e in self.entries]}, indent=1, ensure_ascii=False)
            tmp = self.path.with_name(f".{FILE}.tmp")
            tmp.write_text(text + "\n", encoding="utf-8")
            tmp.replace(self.path)


def waiting(run_dir: Path) -> bool:
    """Whether a batch of the run was planned and its answers are not recorded yet."""
    return any(not raw.get("recorded") for raw in _read(run_dir / FILE))


def exists(run_dir: Path) -> bool:
    """Whether a run was batched (so that `--resume` continues it as one)."""
    return (run_dir / FILE).is_file()


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    raw = json.loads(path.read_text(encoding="utf-8"))
    return list(raw.get("batches") or [])
