"""``report.html``: one self-contained page (inline CSS and SVG, no scripts or external resources) per run.

Built as plain strings, every value escaped by ``_e`` (as jinja2's autoescape did, which a replay then had to
import: a tenth of a one-case replay's start-up) and the charts, markup already, inserted as they are.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ..run._row import Outcome, Row
from . import _charts as charts
from . import _compare as compare
from . import _compare_text as compare_text
from . import _verdicts as verdicts
from ._variants import groups

MAX_FAILURES_SHOWN = 20  # failing samples listed per case × variant; results.csv has them all
MAX_OUTPUT_CHARS = 4000


# JSON-validity bars take the colour of their gate's verdict, never of their position in the list.
GATE_COLOURS = {"pass": "#2ca02c", "fail": "#d62728", "insufficient": "#999999", "": "#1f77b4"}


def _colour(share: float) -> str:
    """Red (no sample passed) through yellow to green (all passed); grey when nothing was answered."""
    return "#ddd" if math.isnan(share) else f"hsl({120 * share:.0f}, 65%, 72%)"


_STYLE = """\
  body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 1400px; }
  h1 { margin-bottom: 0.2rem; }
  table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.85rem; }
  th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
  th { background: #f3f3f3; }
  td.cell { text-align: center; min-width: 6rem; }
  td.cell a { color: inherit; }
  .verdict-better { background: #c8efc8; }
  .verdict-worse { background: #f6c4c4; }
  .verdict-insufficient { color: #777; }
  .charts svg { display: block; margin: 0.6rem 0; max-width: 100%; height: auto; }
  details { margin: 0.3rem 0; }
  summary { cursor: pointer; }
  pre { background: #f7f7f7; padding: 0.4rem; white-space: pre-wrap; word-break: break-word; max-height: 20rem;
        overflow: auto; }
  .note, .method { color: #555; font-size: 0.85rem; }
  ul.verdicts li { margin: 0.3rem 0; }
  table.disagreements td { max-width: 32rem; font-size: 0.8rem; overflow-wrap: anywhere; }
  section.eval { border-top: 2px solid #ddd; margin-top: 1.5rem; }
"""
# what jinja2's autoescape (markupsafe) replaced, with the same entities
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})


def _e(value: object) -> str:
    """``value`` as text in the page: never markup."""
    return str(value).translate(_ENTITIES)


def _cells(tag: str, values: Sequence[object]) -> str:
    return "".join(f"<{tag}>{_e(v)}</{tag}>" for v in values)


def _table(css: str, headers: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A table whose first row is the headers; ``css``: its class attribute, if any."""
    lines = [f"<tr>{_cells('th', headers)}</tr>", *(f"<tr>{_cells('td', row)}</tr>" for row in rows)]
    opening = f'<table class="{css}">' if css else "<table>"
    return "\n".join([opening, *lines, "</table>"])


_GRID_OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.ERRORED)


def _grid(rows: Sequence[Row], variants: list[str]) -> str:
    # counted in one pass, in C (boolean masks per case × variant were 2.7 s of a 10,000-row replay)
    tally = Counter((row.case, row.variant, row.outcome) for row in rows)
    ran = {(case, variant) for case, variant, _ in tally}
    lines = ['<table class="grid">', f"<tr><th>case</th>{_cells('th', variants)}</tr>"]
    for case in sorted({case for case, _ in ran}):
        cells = []
        for variant in variants:
            passed, failed, errored = (tally[(case, variant, o)] for o in _GRID_OUTCOMES)
            answered = passed + failed
            share = passed / answered if answered else math.nan
            text = (
                f"{passed}/{answered}" + (f" ({errored} errors)" if errored else "") if (case, variant) in ran else "—"
            )
            shown = (
                f'<a href="#{_e(_anchor(case, variant))}">{_e(text)}</a>' if answered - passed + errored else _e(text)
            )
            cells.append(f'<td class="cell" style="background: {_colour(share)}">{shown}</td>')
        lines.append(f"<tr><td>{_e(case)}</td>{''.join(cells)}</tr>")
    return "\n".join([*lines, "</table>"])


def _anchor(case: object, variant: object) -> str:
    return f"fail-{case}-{variant}"


def _or_nan(text: str | None) -> str:
    """A missing message as the report always showed it (it was read back from results.csv: an empty cell, nan)."""
    return "nan" if text is None else text


def _failures(rows: Sequence[Row]) -> list[str]:
    """Per case × variant with failing or errored samples: a folded list of the first of them."""
    totals = Counter((r.variant, r.case) for r in rows)
    bad = (r for r in rows if r.outcome in (Outcome.FAILED, Outcome.ERRORED))
    out = []
    for (variant, case), group in groups(bad, lambda r: (r.variant, r.case)):
        title = f"{case} [{variant}]: {len(group)} of {totals[(variant, case)]} samples failed or errored"
        lines = [f'<details id="{_e(_anchor(case, variant))}">', f"<summary>{_e(title)}</summary>"]
        for r in group[:MAX_FAILURES_SHOWN]:
            why = r.reasons if r.outcome == Outcome.FAILED else f"{r.error}: {_or_nan(r.error_message)}"
            lines += [f"<p><strong>sample {r.sample}</strong>: {_e(why)}</p>", f"<pre>{_e(_clip(r.output))}</pre>"]
        if len(group) > MAX_FAILURES_SHOWN:
            lines.append(f'<p class="note">… and {len(group) - MAX_FAILURES_SHOWN} more in results.csv</p>')
        out.append("\n".join([*lines, "</details>"]))
    return out


def _clip(output: str | None) -> str:
    text = "" if output is None else output
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + f"… ({len(text)} characters)"


def _charts(rows: Sequence[Row], mine: Sequence[Mapping[str, Any]]) -> list[str]:
    """JSON validity, cost against quality and latency of the eval's variants: none when nothing was answered
    (e.g. every case skipped: empty axes would only add noise)."""
    if not any(m["answered"] for m in mine):
        return []
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
    return [json_chart, scatter, latency]


def _comparison(c: compare.Comparison) -> str:
    lines = [f"<h4>{_e(compare_text.heading(c))}</h4>"]
    if c.empty:
        return "\n".join([*lines, '<p class="verdict-insufficient">Insufficient data: no answered pairs.</p>'])
    lines += ['<table class="comparison">', f"<tr>{_cells('th', compare_text.HEADERS)}</tr>"]
    for row in compare_text.verdict_rows(c):
        lines.append(f'<tr class="verdict-{_e(row[-1].split(" ")[0])}">{_cells("td", row)}</tr>')
    side_by_side = _table("", compare_text.CASE_HEADERS, compare_text.case_rows(c))
    return "\n".join(
        [*lines, "</table>", "<details>", "<summary>per case, side by side</summary>", side_by_side, "</details>"]
    )


def _eval_section(
    name: str, rows: Sequence[Row], metrics: Sequence[Mapping[str, Any]], comparisons: Sequence[compare.Comparison]
) -> str:
    mine = [m for m in metrics if m["eval"] == name]
    drawn = _charts(rows, mine) or ['<p class="note">No answered samples: nothing to chart.</p>']
    lines = [f'<section class="eval" id="eval-{_e(name)}">', f"<h2>{_e(name)}</h2>", '<div class="charts">', *drawn]
    lines += ["</div>", "<h3>Outcomes per case (passed / answered samples; colour: share passed)</h3>"]
    lines.append(_grid(rows, [str(m["variant"]) for m in mine]))
    failures = _failures(rows)
    if failures:
        lines += ["<h3>Failing outputs</h3>", *failures]
    mine_compared = [_comparison(c) for c in comparisons if c.eval == name]
    if mine_compared:
        lines += ["<h3>A/B comparisons</h3>", *mine_compared, f'<p class="method">{_e(compare_text.METHODS)}</p>']
    return "\n".join([*lines, "</section>"])


def _verdicts(stories: Sequence[verdicts.Story]) -> list[str]:
    """The headlines of each comparison told, then where its sides disagree."""
    if not stories:
        return []
    lines = ["<h2>Verdict</h2>"]
    for s in stories:
        items = "".join(f"<li>{_e(line)}</li>" for line in s.headlines)
        lines += [f"<p><strong>{_e(s.comparison.label)}</strong></p>", f'<ul class="verdicts">{items}</ul>']
    for s in stories:
        rows = verdicts.disagreement_rows(s)
        if rows:
            lines.append(f"<h3>Where they disagree: {_e(s.comparison.label)}</h3>")
            lines.append(_table("disagreements", verdicts.disagreement_headers(s), rows))
    return lines


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
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">']
    lines += ['<meta name="viewport" content="width=device-width, initial-scale=1">', "<title>promptvcr report</title>"]
    lines += [f"<style>\n{_STYLE}</style>", "</head>", "<body>", "<h1>promptvcr report</h1>"]
    lines += [f'<p class="note">{_e(note)}</p>', *_verdicts(stories)]
    for title, headers, body in tables:
        lines += [f"<h2>{_e(title)}</h2>", _table("summary", headers, body)]
    lines += [_eval_section(name, mine, metrics, comparisons) for name, mine in groups(rows, lambda r: r.eval)]
    return "\n".join([*lines, "</body>", "</html>", ""])
