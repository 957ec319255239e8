"""Case, eval, profile and models files read and checked against their schema, with a cache of the ones found
valid: ``.promptvcr-cache/validated/<sha256>.json`` under the project's root (git-ignored, safe to delete).

Reading a file strictly (``harness.load._yamlsrc``) and validating it (``harness.load.schemas``) was most of the
start of a big run (an eval of 5,000 cases: 6.6 s CPU to load, 0.7 s from the cache) and what imported
jsonschema. An entry holds a file's data and the
line of each pointer, named by the sha256 of what decided that the file is valid: its bytes, the schema's name, the
shipped schemas, the source of the modules that read and validate (this one's too) and the versions of PyYAML and
jsonschema. A changed file or rule is a new name, so an entry is never stale. Only a file without any problem is
kept (``Checked.keep``, called by the loader once the whole file is found good): a file with problems is read and
validated every time, and its errors cite ``file:line`` and JSON pointer as they always do. An entry that is
missing, corrupt (its first line is the sha256 of the rest) or cannot be written is ignored: the file is read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..record import _cache as cache
from . import _yamlsrc as yamlsrc
from . import schemas


@dataclass
class Checked:
    """A file read and checked against its schema: its problems (a list its loader adds its own to)."""

    doc: yamlsrc.Located
    problems: list[Problem]
    entry: Path | None  # where it is kept once found good; None: it came from there (or nothing can be kept)

    def keep(self) -> None:
        """Keep the file as valid: call once its loader found no problem in it."""
        if self.entry is None:
            return
        payload = {"data": self.doc.data, "lines": self.doc.lines}
        text = json.dumps(payload, ensure_ascii=False)
        if json.loads(text) == payload:  # JSON gives back the very data (it always should: YAML read as JSON)
            cache.write(self.entry, f"{_digest(text.encode('utf-8'))}\n{text}")


def load(path: Path, schema: str, root: Path) -> Checked:
    """``path`` read and validated against the shipped ``schema`` (the cache's copy, when it holds it); InputError
    for a file that cannot be read as YAML (``harness.load._yamlsrc``)."""
    raw = yamlsrc.read(path)
    rules = _rules()
    entry = None if rules is None else cache.folder(root, "validated") / f"{_digest(rules, schema.encode(), raw)}.json"
    kept = _kept(path, entry) if entry is not None else None
    if kept is not None:
        return Checked(kept, [], None)
    doc = yamlsrc.parse(path, raw)
    return Checked(doc, schemas.validate(doc, schema), entry)


def _kept(path: Path, entry: Path) -> yamlsrc.Located | None:
    stored = cache.read(entry)
    digest, _, text = (stored or b"").partition(b"\n")
    if not text or digest.decode("ascii", "replace") != _digest(text):
        return None
    try:
        payload: Any = json.loads(text)
    except ValueError:
        return None
    lines = payload.get("lines") if isinstance(payload, dict) else None
    if not isinstance(lines, dict) or "data" not in payload:
        return None
    return yamlsrc.Located(path, payload["data"], lines)


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))  # each part's length first: no two lists of parts hash alike
        hasher.update(part)
    return hasher.hexdigest()


@functools.cache
def _rules() -> bytes | None:
    """What every file's validity depends on besides its bytes; None when it cannot be known (no module source)."""
    try:
        sources = [Path(module.__file__ or "").read_bytes() for module in (yamlsrc, schemas, sys.modules[__name__])]
        versions = [metadata.version(name).encode() for name in ("PyYAML", "jsonschema")]
    except (OSError, metadata.PackageNotFoundError):
        return None
    return _digest(*sources, schemas.schema_bytes(), *versions).encode()
