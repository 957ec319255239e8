"""``report.html``: one self-contained page (inline CSS and SVG, no scripts or external resources) per run."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .._lazy import jinja2
from ..run._row import Outcome, Row
from . import _charts as charts
from . import _compare as compare
from . import _compare_text as compare_text
from . import _verdicts as verdicts
from ._variants import groups

MAX_FAILURES_SHOWN = 20  # failing samples listed per case × variant; results.csv has them all
MAX_OUTPUT_CHARS = 4000


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


# JSON-validity bars take the colour of their gate's verdict, never of their position in the list.
GATE_COLOURS = {"pass": "#2ca02c", "fail": "#d62728", "insufficient": "#999999", "": "#1f77b4"}


def _colour(share: float) -> str:
    """Red (no sample passed) through yellow to green (all passed); grey when nothing was answered."""
    return "#ddd" if math.isnan(share) else f"hsl({120 * share:.0f}, 65%, 72%)"


def _grid(rows: Sequence[Row], variants: list[str]) -> dict[str, Any]:
    # counted in one pass (boolean masks per case × variant were 2.7 s of a 10,000-row replay)
    outcomes: dict[str, dict[str, Counter[str]]] = {}
    for row in rows:
        outcomes.setdefault(row.case, {}).setdefault(row.variant, Counter())[str(row.outcome)] += 1
    lines = []
    for case in sorted(outcomes):
        cells = []
        for variant in variants:
            counts = outcomes[case].get(variant, Counter())
            answered = counts["passed"] + counts["failed"]
            passed, errored = counts["passed"], counts["errored"]
            share = passed / answered if answered else math.nan
            text = f"{passed}/{answered}" + (f" ({errored} errors)" if errored else "") if counts.total() else "—"
            failing = answered - passed + errored
            cells.append({"text": text, "colour": _colour(share), "anchor": _anchor(case, variant) if failing else ""})
        lines.append({"case": case, "cells": cells})
    return {"variants": variants, "rows": lines}


def _anchor(case: object, variant: object) -> str:
    return f"fail-{case}-{variant}"


def _or_nan(text: str | None) -> str:
    """A missing message as the report always showed it (it was read back from results.csv: an empty cell, nan)."""
    return "nan" if text is None else text


def _failures(rows: Sequence[Row]) -> list[dict[str, Any]]:
    totals = Counter((r.variant, r.case) for r in rows)
    bad = (r for r in rows if r.outcome in (Outcome.FAILED, Outcome.ERRORED))
    out = []
    for (variant, case), group in groups(bad, lambda r: (r.variant, r.case)):
        samples = [
            {
                "sample": r.sample,
                "why": r.reasons if r.outcome == Outcome.FAILED else f"{r.error}: {_or_nan(r.error_message)}",
                "output": _clip(r.output),
            }
            for r in group[:MAX_FAILURES_SHOWN]
        ]
        out.append(
            {
                "anchor": _anchor(case, variant),
                "title": f"{case} [{variant}]: {len(group)} of {totals[(variant, case)]} samples failed or errored",
                "samples": samples,
                "more": max(0, len(group) - MAX_FAILURES_SHOWN),
            }
        )
    return out


def _clip(output: str | None) -> str:
    text = "" if output is None else output
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + f"… ({len(text)} characters)"


def _eval_section(
    name: str, rows: Sequence[Row], metrics: Sequence[Mapping[str, Any]], comparisons: Sequence[compare.Comparison]
) -> dict[str, Any]:
    mine = [m for m in metrics if m["eval"] == name]
    variants = [str(m["variant"]) for m in mine]
    json_chart = charts.rate_bars(
        "JSON validity (95% Wilson interval; green: meets its gate, red: fails it, grey: not enough data)",
        [(str(m["variant"]), m["json_valid_rate"], m["json_valid_low"], m["json_valid_high"]) for m in mine],
        target=0.99,
        colours=[GATE_COLOURS[m.get("json_gate", "")] for m in mine],
    )
    per_1k = [math.nan if m["cost_usd"] is None else 1000 * m["cost_usd"] / max(m["answered"], 1) for m in mine]
    if per_1k and all(c == 0 for c in per_1k):  # every point on one vertical line: a scatter would be noise
        scatter = charts.notice("Cost against quality", "All local, $0: every variant costs nothing per call.")
    else:
        scatter = charts.scatter(
            "Cost against quality",
            [(v, c, m["pass_rate"]) for v, c, m in zip(variants, per_1k, mine, strict=True)],
            "USD per 1,000 calls",
            "pass rate",
        )
    latency = charts.distributions(
        "Latency per call (box p25–p75, line p50, dashed p95, dotted p99)",
        [(v, [float(r.latency_ms) for r in rows if r.variant == v and r.latency_ms is not None]) for v in variants],
        "ms",
    )
    answered = any(m["answered"] for m in mine)  # e.g. every case skipped: empty axes would only add noise
    return {
        "name": name,
        "charts": [json_chart, scatter, latency] if answered else [],
        "grid": _grid(rows, variants),
        "failures": _failures(rows),
        "comparisons": [
            {
                "heading": compare_text.heading(c),
                "empty": c.empty,
                "rows": compare_text.verdict_rows(c),
                "case_rows": compare_text.case_rows(c),
            }
            for c in comparisons
            if c.eval == name
        ],
    }


def render(
    rows: Sequence[Row],
    metrics: Sequence[Mapping[str, Any]],
    comparisons: Sequence[compare.Comparison],
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]]]],
    note: str,
    stories: Sequence[verdicts.Story] = (),
) -> str:
    """The page: the verdicts and where the sides disagree, the given tables (title, headers, rows), then per eval
    its charts, outcome grid and A/B tables."""
    sections = [_eval_section(name, mine, metrics, comparisons) for name, mine in groups(rows, lambda r: r.eval)]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            note=note,
            stories=[
                {
                    "label": s.comparison.label,
                    "headlines": s.headlines,
                    "headers": verdicts.disagreement_headers(s),
                    "rows": verdicts.disagreement_rows(s),
                }
                for s in stories
            ],
            tables=tables,
            evals=sections,
            verdict_headers=compare_text.HEADERS,
            case_headers=compare_text.CASE_HEADERS,
            method=compare_text.METHODS,
        )
    )
