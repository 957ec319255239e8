"""Plain-text and Markdown tables from rows of cells (the terminal, summary.md and `promptvcr compare`)."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last one is left ragged (it holds the long texts)."""
    table = [tuple(headers), *map(tuple, rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in table
    )


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])
