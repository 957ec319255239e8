"""Tables written as text: results.csv and summary.csv as CSV, calls.jsonl as JSON lines, cell for cell as pandas
wrote them (``DataFrame.to_csv(index=False)``, ``to_json(orient="records", lines=True)``), so that the files stay
the same — without pandas, whose import was half a second of every run.

A column's type is what pandas infers from records: whole numbers with a missing value are floats (``20.0``), a
boolean column with a missing value holds objects. Each cell is then written as pandas writes its type: floats
shortest-exact in CSV and to 10 decimals in JSON (pandas' ujson), missing cells empty or ``null``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, TextIO

Kind = Literal["int", "float", "bool", "object"]
Record = Sequence[Any]

_NONE = type(None)
_PLAIN = re.compile(r"[\x20\x21\x23-\x2e\x30-\x5b\x5d-\x7f]*")  # printable ASCII but " / \: written as it is
_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_FIXED = 1e16 - 1  # ujson writes a double outside [1e-15, 1e16) with "%.10g"
_MIN_FIXED = 1e-15
_DECIMALS = 10  # pandas' double_precision


def kinds(records: Sequence[Record], width: int) -> list[Kind]:
    """Each column's type, as pandas infers it from ``records``."""
    return [_kind({type(record[i]) for record in records}) for i in range(width)]


def _kind(types: set[type]) -> Kind:
    missing = _NONE in types
    types.discard(_NONE)
    if not types:
        return "object"
    if types == {bool}:
        return "object" if missing else "bool"
    if types == {int}:
        return "float" if missing else "int"
    return "float" if types <= {int, float} else "object"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def write_csv(out: TextIO, columns: Sequence[str], records: Sequence[Record]) -> None:
    """``records`` (cells in ``columns`` order) as ``to_csv(index=False)`` writes their frame.

    The csv module writes a cell as ``str`` does, as pandas does; what differs is mended column by column: a float
    column's whole numbers are written as floats, a missing float (nan) is an empty cell."""
    types = kinds(records, len(columns))
    floats = [i for i, kind in enumerate(types) if kind == "float"]
    mended = [i for i, kind in enumerate(types) if kind == "object"]  # nan only: None is written empty already
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for record in records:
        line = list(record)
        for i in floats:
            line[i] = None if _missing(line[i]) else float(line[i])
        for i in mended:
            if _missing(line[i]):
                line[i] = None
        writer.writerow(line)


def csv_text(columns: Sequence[str], records: Sequence[Record]) -> str:
    out = io.StringIO()
    write_csv(out, columns, records)
    return out.getvalue()


def json_string(text: str) -> str:
    """A string as pandas' ujson writes it: ASCII only, ``/`` escaped."""
    if _PLAIN.fullmatch(text):
        return f'"{text}"'
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= code < 0x80:  # DEL too, as it is
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:  # a surrogate pair
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    out.append('"')
    return "".join(out)


def json_double(value: float) -> str:
    """A double as pandas' ujson writes it (``double_precision=10``): fixed-point, trailing zeros dropped, halves
    to even; ``%.10g`` outside its fixed-point range."""
    negative = value < 0
    value = -value if negative else value
    if value > _MAX_FIXED or (value != 0.0 and value < _MIN_FIXED):
        return f"{-value if negative else value:.{_DECIMALS}g}"
    scale = 10**_DECIMALS
    whole = int(value)
    scaled = (value - whole) * scale
    frac = int(scaled)
    diff = scaled - frac
    if diff > 0.5 or (diff == 0.5 and (frac == 0 or frac & 1)):
        frac += 1
    if frac >= scale:
        frac, whole = 0, whole + 1
    digits = f"{frac:0{_DECIMALS}d}".rstrip("0") if frac else "0"
    return f"{'-' if negative else ''}{whole}.{digits}"


def _json_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):  # pandas writes ±inf as null too
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json_double(value)
    return str(value) if isinstance(value, int) else json_string(str(value))


def _json_cells(kind: Kind) -> Callable[[Any], str]:
    """One column's cell writer, each distinct value written once (a run's rows repeat their names and numbers)."""
    written: dict[Any, str] = {}

    def cell(value: Any) -> str:
        key = (value.__class__, value) if kind == "object" else value  # True == 1 == 1.0: kept apart in objects
        text = written.get(key)
        if text is None:
            text = written[key] = _json_cell(float(value) if kind == "float" and not _missing(value) else value)
        return text

    return cell


def write_jsonl(out: TextIO, columns: Sequence[str], records: Sequence[Record]) -> None:
    """``records`` (cells in ``columns`` order) as ``to_json(orient="records", lines=True)`` writes their frame."""
    cells = [_json_cells(kind) for kind in kinds(records, len(columns))]
    keys = [json_string(c) + ":" for c in columns]
    for record in records:
        out.write("{" + ",".join([key + cell(v) for key, cell, v in zip(keys, cells, record, strict=True)]) + "}\n")
