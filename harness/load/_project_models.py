"""A project's ``models.yaml``: models merged over the shipped registry, so a self-hosted or new model can be priced,
budgeted and checked against its context window like a shipped one (and a shipped model's price brought up to date).

Read strictly like the other files (``_yamlsrc``), validated by ``schemas/models.schema.json``, each problem at its
``file:line`` and JSON pointer; a field given replaces the shipped one, a field not given is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError, Problem
from ..tokens import _formats as formats
from ..tokens import _models as models
from . import _validated as validated

FILE = "models.yaml"


def use(root: Path) -> None:
    """Merge ``root/models.yaml`` (when there is one) over the shipped registry for this process; InputError when
    the file is not valid. Without the file the shipped registry is used as it is."""
    path = root / FILE
    if not path.is_file():
        models.use_project({})
        return
    checked = validated.load(path, "models.schema.json", root)
    doc, problems = checked.doc, checked.problems
    entries: dict[str, Any] = doc.data.get("models") or {} if not problems else {}
    for name, raw in entries.items():
        chat_format = raw.get("chat_format")
        if chat_format is not None and chat_format not in formats.FORMATS:
            known = ", ".join(sorted(formats.FORMATS))
            problems.append(
                doc.problem(f"/models/{name}/chat_format", f"unknown chat_format {chat_format!r} ({known})")
            )
    if problems:
        raise InputError(problems)
    try:
        models.use_project(entries)
    except ValueError as exc:  # e.g. a snapshot that another model already names
        raise InputError([Problem(path, 1, "/models", str(exc))]) from None
    checked.keep()
