"""The project's ``.promptvcr-cache/`` (git-ignored, safe to delete): faster reads of files kept elsewhere — parsed
cassettes (``harness.record._cassettes``) and validated case and eval files (``harness.load._validated``).

Nothing in it is ever the record: an entry is named by a digest of what it was made from, a missing, unreadable or
unwritable one only costs the time to make it again, and one is written to a temporary file and renamed, so that a
reader (another run, a killed writer) never sees half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DIR = ".promptvcr-cache"


def folder(root: Path, kind: str) -> Path:
    """Where the project at ``root`` keeps the entries of one ``kind`` (``cassettes``, ``validated``)."""
    return root / DIR / kind


def write(path: Path, text: str) -> None:
    """Best effort: an entry that cannot be written costs time, not answers (a read-only checkout, a full disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except (OSError, ValueError):  # ValueError: text JSON escaped as half a UTF-16 pair (no UTF-8 for it)
        Path(tmp).unlink(missing_ok=True)


def read(path: Path) -> bytes | None:
    """The entry's bytes, or None when there is none (or it cannot be read)."""
    try:
        return path.read_bytes()
    except OSError:
        return None
