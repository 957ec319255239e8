"""The project's ``.promptvcr-cache/`` (git-ignored, safe to delete): faster reads of files kept elsewhere — parsed
cassettes (``harness.record._cassettes``) and validated case and eval files (``harness.load._validated``).

Nothing in it is ever the record: an entry is named by a digest of what it was made from, a missing, unreadable or
unwritable one only costs the time to make it again, and one is written to a temporary file and renamed, so that a
reader (another run, a killed writer) never sees half of it. Entries and the files they stand for (a cassette) are
read alike, by ``file_bytes``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

DIR = ".promptvcr-cache"
# what ``Path.is_file`` takes for "no file there" rather than an error (ENXIO: a socket, which open refuses)
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENXIO})
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a pipe opens without waiting for a writer (no effect on a file)


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
        return file_bytes(path)
    except OSError:
        return None


def file_bytes(path: Path) -> bytes | None:
    """The bytes of the regular file at ``path``; None when there is none (nothing there, or what ``Path.is_file``
    says is not a file: a directory, a pipe, a device). Any other error (a file not readable) is raised.

    One open and its fstat, not ``is_file``'s stat and then ``read_bytes``' open, fstat and buffered reader: a
    replay reads a cassette and its index for every item (~35 µs less each)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except OSError as exc:
        if exc.errno in _ABSENT:
            return None
        raise
    try:
        size = os.fstat(fd)
        if not stat.S_ISREG(size.st_mode):
            return None
        chunks, total = [], 0
        # a byte more than it holds: a read that comes back short with all of it is at its end (no second read to
        # find it); short before that (a signal, Linux's 2 GiB a read) or longer (grown meanwhile): read on to the end
        want = size.st_size + 1
        while chunk := os.read(fd, want):
            chunks.append(chunk)
            total += len(chunk)
            if len(chunk) < want and total >= size.st_size:
                break
            want = 1 << 16
        return b"".join(chunks)
    finally:
        os.close(fd)
