"""Reports: the files under ``reports/``, from the typed rows aggregated once per variant (``_variants``).

``reports/<run-id>/results.csv`` has one row per case × variant × sample; ``summary.csv`` and ``summary.md`` one
row per eval × variant (``summary.md`` adds each eval's A/B comparisons and the monthly cost projection);
``junit.xml`` one testcase per case × variant; ``report.html`` all of it with charts; ``reports/latest`` points at
the newest run.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..load._evals import Eval
from ..run._row import COLUMNS, PRIMARY, Outcome, Row
from . import _compare as compare
from . import _compare_text as compare_text
from . import _html as htmlreport
from . import _junit as junit
from . import _tables as tables
from . import _tabular as tabular
from . import _verdicts as verdicts
from ._variants import DAYS_PER_MONTH, frame_of, ordered
from ._variants import VariantSummary as VariantSummary  # the reports' callers (the session, merge) find them here
from ._variants import summarize as summarize

if TYPE_CHECKING:
    import pandas as pd


def summary_records(summaries: Sequence[VariantSummary]) -> tuple[list[str], list[list[Any]]]:
    """summary.csv's columns and lines: one per eval × variant, its metrics, gates and expected shortfall."""
    records = [
        s.metrics | {"gates": "; ".join(g.describe() for g in s.gates), "xfail": s.xfail or ""} for s in summaries
    ]
    columns = list(dict.fromkeys(key for record in records for key in record))
    return columns, [[record.get(c) for c in columns] for record in records]


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _interval(m: Mapping[str, Any], key: str, n: int) -> str:
    low, high = m[f"{key}_low"], m[f"{key}_high"]
    if math.isnan(m[f"{key}_rate"]):
        return "n/a"
    basis = "" if n == m["answered"] else f" of {n}"  # e.g. JSON validity counts only cases that expect JSON
    return f"{_pct(m[f'{key}_rate'])} [{100 * low:.1f}, {100 * high:.1f}]{basis}"


def _cost(m: Mapping[str, Any]) -> str:
    if m["answered"] == 0:
        return "n/a"
    return "unpriced" if m["cost_usd"] is None else f"{'≈' if m['cost_estimated'] else ''}${m['cost_usd']:.4f}"


def _judge_cost(m: Mapping[str, Any]) -> str:
    if m["judged"] == 0:
        return "—"
    return "unpriced" if m["judge_cost_usd"] is None else f"${m['judge_cost_usd']:.4f}"


def monthly_cell(m: Mapping[str, Any]) -> str:
    """The projection against the budget, e.g. "$1234.56 (budget $1000.00: OVER)"."""
    if m["cost_usd"] is None and m["answered"]:
        return "unpriced"
    if math.isnan(m["monthly_cost_usd"]):
        return "insufficient data"
    text = f"${m['monthly_cost_usd']:,.2f}"
    if m["monthly_budget_usd"] is None:
        return text
    flag = "OVER" if m["over_budget"] else "within"
    return f"{text} (budget ${m['monthly_budget_usd']:,.2f}: {flag})"


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def _gate_cell(s: VariantSummary) -> str:
    if not s.gates:
        return "—"
    text = "; ".join(g.describe() for g in s.gates)
    return f"{text} (expected: {s.xfail})" if s.xfail and any(g.verdict == "fail" for g in s.gates) else text


HEADERS = (
    "eval", "variant", "model", "n", "errors", "json_valid (95% CI)", "pass_rate (95% CI)", "tokens in/out", "cost",
    "p50/p95/p99 ms", "gates",
)  # fmt: skip


def table_rows(summaries: Sequence[VariantSummary]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in summaries:
        m = s.metrics
        rows.append(
            (
                m["eval"], m["variant"], m["model"], str(m["answered"]), str(m["errors"]),
                _interval(m, "json_valid", m["json_checked"]), _interval(m, "pass", m["answered"]),
                f"{m['prompt_tokens']}/{m['completion_tokens']}", _cost(m),
                "/".join(_ms(m[f"latency_{p}_ms"]) for p in ("p50", "p95", "p99")), _gate_cell(s),
            )
        )  # fmt: skip
    return rows


def per_variant(summaries: Sequence[VariantSummary]) -> Table:
    """The per-variant table (headers, rows); a "judge cost" column beside "cost" when a judge graded anything (the
    judge's cost is shown apart, never added into the answers' cost), a "ttft p95 ms" one when a variant streams,
    the tool-call validity and the refusals beside "json_valid" when any variant has them."""
    table: Table = (HEADERS, table_rows(summaries))
    json, m = "json_valid (95% CI)", [s.metrics for s in summaries]  # refusals first: validity then comes before it
    if any(x["refusals"] for x in m):
        table = _column(table, json, "refusals", [f"{x['refusals']} ({_pct(x['refusal_rate'])})" for x in m])
    if any(x["tool_calls_checked"] for x in m):
        cells = [_interval(x, "tool_calls_valid", x["tool_calls_checked"]) for x in m]
        table = _column(table, json, "tool_calls_valid (95% CI)", cells)
    if any(s.metrics["judged"] for s in summaries):
        table = _column(table, "cost", "judge cost", [_judge_cost(s.metrics) for s in summaries])
    if any(s.metrics["ttft_n"] for s in summaries):
        table = _column(table, "p50/p95/p99 ms", "ttft p95 ms", [_ms(s.metrics["ttft_p95_ms"]) for s in summaries])
    return table


Table = tuple[tuple[str, ...], list[tuple[str, ...]]]


def _column(table: Table, after: str, name: str, cells: list[str]) -> Table:
    (headers, rows), at = table, table[0].index(after) + 1
    return (*headers[:at], name, *headers[at:]), [(*r[:at], c, *r[at:]) for r, c in zip(rows, cells, strict=True)]


def text_table(summaries: Sequence[VariantSummary]) -> str:
    return tables.aligned(*per_variant(summaries))


def _json_gate(s: VariantSummary) -> str:
    """The verdict of the variant's JSON-validity gates ("pass", "fail", "insufficient"; "" without one)."""
    found = [g.verdict for g in s.gates if g.gate.metric == "json_valid_rate"]
    for verdict in ("fail", "insufficient", "pass"):
        if verdict in found:
            return verdict
    return ""


PROJECTION_HEADERS = ("eval", "variant", "requests/day", "cost per 1k calls (traffic mix)", "projected monthly cost")


def projection_rows(summaries: Sequence[VariantSummary]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in summaries:
        m = s.metrics
        if m["requests_per_day"] is None:
            continue
        per_1k = "n/a" if math.isnan(m["mix_cost_per_call_usd"]) else f"${1000 * m['mix_cost_per_call_usd']:.4f}"
        rows.append((m["eval"], m["variant"], f"{m['requests_per_day']:g}", per_1k, monthly_cell(m)))
    return rows


def markdown(
    summaries: Sequence[VariantSummary],
    note: str,
    comparisons: Sequence[compare.Comparison],
    stories: Sequence[verdicts.Story] = (),
) -> str:
    """The verdicts and disagreements first (what a PM decides on), then the per-variant table, cost, the A/B detail."""
    parts = ["# promptvcr summary", "", note, "", *verdicts.markdown(stories)]
    parts += ["## Per variant", "", tables.markdown(*per_variant(summaries)), ""]
    projections = projection_rows(summaries)
    if projections:
        over = sum(bool(s.metrics["over_budget"]) for s in summaries)
        flag = f" — **{over} variant(s) over budget**" if over else ""
        parts += [f"## Monthly cost projection{flag}", "", tables.markdown(PROJECTION_HEADERS, projections), ""]
        parts += [
            f"Projected: cost per call (each case's measured mean, weighted by the traffic mix) × requests/day × "
            f"{DAYS_PER_MONTH} days.",
            "",
        ]
    if comparisons:
        parts += ["## A/B comparisons", ""]
        parts += [compare_text.markdown_report(comparisons), compare_text.METHODS, ""]
    return "\n".join(parts)


def new_run_dir(reports_dir: Path) -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    path = reports_dir / run_id
    path.mkdir(parents=True, exist_ok=False)
    return path


# What the metadata-only log keeps of each call: enough to audit volume, cost, latency and failures, and no prompt,
# answer or reason text, for data too sensitive to keep even masked.
METADATA = (
    "eval", "case", "variant", "model", "sample", "outcome", "error", "finish_reason", "prompt_tokens",
    "completion_tokens", "cost_usd", "latency_ms", "replayed",
)  # fmt: skip


def fallback_lines(rows: Iterable[Row]) -> list[str]:
    """Which answers came from a variant's fallback chain rather than its own model (the incident plan at work)."""
    counts = Counter((r.eval, r.variant, str(r.answered_by)) for r in rows if r.answered_by not in (None, PRIMARY))
    return [
        f"promptvcr: {n} answer(s) of {ev} / {variant} came from {source} (answered_by in results.csv)"
        for (ev, variant, source), n in sorted(counts.items())
    ]


def stories(
    df: pd.DataFrame,  # the compared rows (``frame_of``)
    comparisons: Sequence[compare.Comparison],
    summaries: Sequence[VariantSummary],
    evals: Mapping[str, Eval],
) -> list[verdicts.Story]:
    """Each comparison told verdict first, on the metrics its eval gates."""
    results = {(s.metrics["eval"], s.metrics["variant"]): s.gates for s in summaries}
    out = []
    for c in comparisons:
        ev = evals.get(c.eval)
        gated = list(dict.fromkeys(g.metric for g in ev.gates)) if ev else []
        mine = {v: results.get((c.eval, v), []) for v in (c.baseline, c.candidate)}
        out.append(verdicts.story(df, c, gated, mine))
    return out


# The result columns a comparison and its story read: the frame they are given has only these.
COMPARED = tuple(dict.fromkeys((*compare.USED, *verdicts.USED)))


def _compared(
    cells: Sequence[Sequence[Any]], summaries: Sequence[VariantSummary], evals: Mapping[str, Eval]
) -> tuple[list[compare.Comparison], list[verdicts.Story]]:
    """The A/B comparisons and their stories (``cells``: the results' lines); pandas (the pairing, the bootstrap)
    only when a pair ran."""
    ran = {(s.metrics["eval"], s.metrics["variant"]) for s in summaries}
    pairs = {name: ev.compare for name, ev in evals.items()}
    compared = {e for e, p in pairs.items() for a, b in p if (e, a) in ran and (e, b) in ran}
    if not compared:
        return [], []
    df = frame_of(cells, COMPARED)
    comparisons = compare.compare_variants(df, pairs)
    return comparisons, stories(df, comparisons, summaries, evals)


def run_note(rows: Sequence[Row], mode: str) -> str:
    """What the run did with its samples: replayed, sent, skipped (a skipped sample is never "replayed")."""
    replayed = sum(r.replayed for r in rows)
    skipped = sum(r.outcome == Outcome.SKIPPED for r in rows)
    sent = len(rows) - replayed - skipped
    counts = [(replayed, "replayed from cassettes"), (sent, "sent live"), (skipped, "skipped (no recording)")]
    said = ", ".join(f"{n} {what}" for n, what in counts if n)
    return f"{len(rows)} samples: {said or 'none ran'}; {mode}."


def write(
    run_dir: Path,
    rows: Iterable[Row],
    summaries: Sequence[VariantSummary],
    note: str,
    evals: Mapping[str, Eval],
    durations: Mapping[junit.Item, float] | None = None,
) -> None:
    """Every report file of a run; ``durations``: each item's own time in this session, for junit.xml."""
    rows = ordered(rows)
    cells = [row.cells() for row in rows]  # the results' lines: once, for the comparisons and both files
    comparisons, told = _compared(cells, summaries, evals)
    columns = tabular.by_column(cells, len(COLUMNS))
    del cells
    with (run_dir / "results.csv").open("w", encoding="utf-8", newline="") as out:
        tabular.write_csv_columns(out, COLUMNS, columns)
    with (run_dir / "calls.jsonl").open("w", encoding="utf-8", newline="") as out:
        tabular.write_jsonl_columns(out, METADATA, [columns[COLUMNS.index(c)] for c in METADATA])
    del columns
    (run_dir / "summary.csv").write_text(tabular.csv_text(*summary_records(summaries)), encoding="utf-8", newline="")
    (run_dir / "summary.md").write_text(markdown(summaries, note, comparisons, told), encoding="utf-8")
    (run_dir / "junit.xml").write_bytes(junit.junit_xml(rows, evals, durations or {}))
    shown: list[tuple[str, Sequence[str], Sequence[Sequence[str]]]] = [("Per variant", *per_variant(summaries))]
    projections = projection_rows(summaries)
    if projections:
        shown.append(("Monthly cost projection", PROJECTION_HEADERS, projections))
    coloured = [s.metrics | {"json_gate": _json_gate(s)} for s in summaries]
    html = htmlreport.render(rows, coloured, comparisons, shown, note, told)
    (run_dir / "report.html").write_text(html, encoding="utf-8")
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{run_dir.name}"
    tmp.unlink(missing_ok=True)
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, latest)  # atomic: readers see the old run or the new one, never neither
