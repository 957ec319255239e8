"""Data tables: the rows a case's ``vars_from`` names, one case per row (see harness.load._cases).

A table is a ``.csv`` file (a header line, then one row per record; every value a string), a ``.jsonl`` file (one
JSON object per non-blank line) or a ``.yaml``/``.yml`` file (a list of mappings, read by harness.load._yamlsrc with
its strict rules and limits). Each row is kept with its line, so that anything wrong with it — not a mapping, the
wrong number of columns, a line that is not JSON, a duplicate key, bytes that are not UTF-8 — is a ``file:line``
problem in the data file itself. Every problem of a table is collected before anything else happens.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem
from . import _yamlsrc as yamlsrc

MAX_ROWS = 10_000  # cases one table may make: past this, a table is a data set for a batch job, not test cases


@dataclass(frozen=True)
class Row:
    """One row of a table: its values (the case's template variables), where it is, and its place in the table."""

    values: dict[str, Any]
    path: Path
    line: int
    index: int  # 0-based, the row's JSON pointer (``/3``) in problems

    def problem(self, message: str) -> Problem:
        return Problem(self.path, self.line, f"/{self.index}", message)


def load(path: Path) -> list[Row]:
    """Every row of the table at ``path`` (its suffix says its kind: the case schema allows these four); raises
    InputError listing every problem in it (at its lines)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        rows, problems = _yaml_rows(path)
    else:
        text = _text(path, yamlsrc.read(path))  # a regular file of a sane size, as a case file
        rows, problems = (_csv_rows if path.suffix.lower() == ".csv" else _jsonl_rows)(path, text)
    if len(rows) > MAX_ROWS:
        problems.append(rows[MAX_ROWS].problem(f"more than {MAX_ROWS} rows: a data table makes one case per row"))
    if not rows and not problems:
        problems.append(Problem(path, 1, "", "the data table has no rows"))
    if problems:
        raise InputError(problems)
    return rows


def _text(path: Path, raw: bytes) -> str:
    # a spreadsheet's byte order mark is no part of the first column's name
    return yamlsrc.decoded(path, raw).removeprefix("\ufeff")


def _control(text: str) -> str | None:
    """A control character no prompt variable should hold (what YAML refuses too), as its code; tabs and line ends
    are text."""
    bad = next((c for c in text if (ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127), None)
    return None if bad is None else f"U+{ord(bad):04X}"


def _csv_rows(path: Path, text: str) -> tuple[list[Row], list[Problem]]:
    problems: list[Problem] = []
    records = list(_records(path, text, problems))
    if not records:
        return [], problems or [Problem(path, 1, "", "the CSV file has no header line")]
    header_line, header = records[0]
    seen: dict[str, int] = {}
    for position, name in enumerate(header):
        if not name.strip():
            problems.append(Problem(path, header_line, "", f"column {position + 1} of the header has no name"))
        elif name in seen:
            problems.append(Problem(path, header_line, "", f"column {name!r} is named twice in the header"))
        seen.setdefault(name, position)
    rows: list[Row] = []
    for index, (line, values) in enumerate(records[1:]):
        row = Row(dict(zip(header, values, strict=False)), path, line, index)
        if len(values) != len(header):
            problems.append(row.problem(f"{len(values)} value(s) for the header's {len(header)} column(s)"))
        rows.append(row)
    return rows, problems


def _records(path: Path, text: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """The CSV records that are not blank lines, each with the line it starts at."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a stray quote (strict), a NUL byte: the line the reader was at
            problems.append(Problem(path, reader.line_num or start, "", f"CSV error: {exc}"))
            return
        if record:
            code = next(filter(None, map(_control, record)), None)
            if code is not None:
                problems.append(Problem(path, start, "", f"the control character {code} is not allowed in a table"))
            yield start, record
        start = reader.line_num + 1


def _jsonl_rows(path: Path, text: str) -> tuple[list[Row], list[Problem]]:
    rows: list[Row] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: a JSON string may hold U+2028
        if not line.strip():
            continue
        index = len(rows)
        try:
            value = json.loads(line, parse_constant=_no_constant, object_pairs_hook=_unique)
        except RecursionError:
            problems.append(Problem(path, number, f"/{index}", f"nested more than {yamlsrc.MAX_DEPTH} levels deep"))
            value = None
        except ValueError as exc:
            problems.append(Problem(path, number, f"/{index}", f"not a JSON line: {exc}"))
            value = None
        row = Row(value if isinstance(value, dict) else {}, path, number, index)
        if value is not None and not isinstance(value, dict):
            problems.append(row.problem(f"a row is a JSON object of template variables, not {_kind(value)}"))
        elif value is not None:
            problems.extend(row.problem(message) for message in _not_json_text(value))
        rows.append(row)
    return rows, problems


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _not_json_text(value: Any, depth: int = 0) -> Iterator[str]:
    """What no UTF-8 request body can hold (a lone surrogate from a ``\\ud800`` escape), or nesting past the limit."""
    if depth > yamlsrc.MAX_DEPTH:
        yield f"nested more than {yamlsrc.MAX_DEPTH} levels deep"
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        for text in (key, item) if isinstance(key, str) else (item,):
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    yield f"{exc.object[exc.start]!a} is half of a UTF-16 pair, not a character"
        yield from _not_json_text(item, depth + 1)


def _yaml_rows(path: Path) -> tuple[list[Row], list[Problem]]:
    doc = yamlsrc.load(path)
    if not isinstance(doc.data, list):
        return [], [doc.problem("", f"a YAML data table is a list of mappings, not {_kind(doc.data)}")]
    rows: list[Row] = []
    problems: list[Problem] = []
    for index, value in enumerate(doc.data):
        row = Row(value if isinstance(value, dict) else {}, path, doc.line(f"/{index}"), index)
        if not isinstance(value, dict):
            problems.append(row.problem(f"a row is a mapping of template variables, not {_kind(value)}"))
        rows.append(row)
    return rows, problems


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
