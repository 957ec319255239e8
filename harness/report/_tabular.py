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
from collections.abc import Sequence
from typing import Any, Literal, TextIO

Kind = Literal["int", "float", "bool", "object"]
Record = Sequence[Any]

_NONE = type(None)
_PLAIN = re.compile(r"[\x20\x21\x23-\x2e\x30-\x5b\x5d-\x7f]*")  # printable ASCII but " / \: written as it is
_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_FIXED = 1e16 - 1  # ujson writes a double outside [1e-15, 1e16) with "%.10g"
_MIN_FIXED = 1e-15
_DECIMALS = 10  # pandas' double_precision


def column_kinds(columns: Sequence[Sequence[Any]]) -> list[Kind]:
    """Each column's type, as pandas infers it from its values."""
    return [_kind(set(map(type, column))) for column in columns]


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


def by_column(records: Sequence[Record], width: int = 0) -> list[Sequence[Any]]:
    """The records' cells column by column (one pass in C, not a pass over every record per column)."""
    return list(zip(*records, strict=True)) if records else [() for _ in range(width)]


def write_csv(out: TextIO, columns: Sequence[str], records: Sequence[Record]) -> None:
    """``records`` (cells in ``columns`` order) as ``to_csv(index=False)`` writes their frame."""
    write_csv_columns(out, columns, by_column(records, len(columns)))


def write_csv_columns(out: TextIO, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
    """``write_csv`` of the same cells given column by column (``columns[i]``: the ``names[i]`` cell of every line).

    The csv module writes a cell as ``str`` does, as pandas does; what differs is mended column by column: a float
    column's whole numbers are written as floats, a missing float (nan) is an empty cell."""
    mended = [_mended(column, set(map(type, column))) for column in columns]
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(names)
    writer.writerows(zip(*mended, strict=True))


def _mended(column: Sequence[Any], types: set[type]) -> Sequence[Any]:
    """``column`` (whose values are of ``types``) as the csv module should write it."""
    kind = _kind(set(types))
    if kind == "float":
        return [None if v is None or v != v else float(v) for v in column]  # v != v: nan
    if kind == "object" and float in types:  # nan only: None is written empty already
        return [None if v.__class__ is float and v != v else v for v in column]
    return column


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


def _json_texts(column: Sequence[Any], kind: Kind) -> list[str]:
    """One column's cells as JSON, each distinct value written once (a run's rows repeat their names and numbers)."""
    types = set(map(type, column))
    if kind == "object" and len(types & {bool, int, float}) > 1:  # True == 1 == 1.0: kept apart by their class
        keyed: dict[tuple[type, Any], str] = {}
        for value in column:
            if (value.__class__, value) not in keyed:
                keyed[(value.__class__, value)] = _json_cell(value)
        return [keyed[(value.__class__, value)] for value in column]
    floats = kind == "float"
    written = {value: _json_cell(float(value) if floats and value is not None else value) for value in set(column)}
    return list(map(written.__getitem__, column))  # a nan is its own key: found as the same object


def write_jsonl(out: TextIO, columns: Sequence[str], records: Sequence[Record]) -> None:
    """``records`` (cells in ``columns`` order) as ``to_json(orient="records", lines=True)`` writes their frame."""
    write_jsonl_columns(out, columns, by_column(records, len(columns)))


def write_jsonl_columns(out: TextIO, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
    """``write_jsonl`` of the same cells given column by column."""
    texts = [
        [key + text for text in _json_texts(column, kind)]
        for key, column, kind in zip((json_string(n) + ":" for n in names), columns, column_kinds(columns), strict=True)
    ]
    out.writelines("{" + ",".join(line) + "}\n" for line in zip(*texts, strict=True))
