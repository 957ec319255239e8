"""Reports: results rows into pandas once, per-variant metrics and gates, and the files under ``reports/``.

``reports/<run-id>/results.csv`` has one row per case × variant × sample; ``summary.csv`` and ``summary.md`` one
row per eval × variant; ``reports/latest`` points at the newest run.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import gates as gates_mod
from .evals import Eval
from .runner import COLUMNS, Row
from .stats import percentile, rate, wilson


@dataclass(frozen=True)
class VariantSummary:
    metrics: dict[str, Any]
    gates: list[gates_mod.GateResult]
    xfail: str | None

    @property
    def failed(self) -> bool:
        """A gate failed on a variant that is not expected to fall short."""
        return self.xfail is None and any(g.verdict == "fail" for g in self.gates)


def frame(rows: Iterable[Row]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    return df.sort_values(["eval", "variant", "case", "sample"], kind="stable").reset_index(drop=True)


def summarize(df: pd.DataFrame, evals: Mapping[str, Eval]) -> list[VariantSummary]:
    """One summary per eval × variant present in ``df``, with its gates evaluated."""
    out: list[VariantSummary] = []
    for (eval_name, variant), group in df.groupby(["eval", "variant"], sort=True):
        ev = evals[str(eval_name)]
        spec = next(v for v in ev.variants if v.name == variant)
        metrics = _metrics(str(eval_name), str(variant), group, ev.budget_usd)
        results = [gates_mod.evaluate(g, metrics) for g in ev.gates if gates_mod.applies(g, str(variant))]
        out.append(VariantSummary(metrics, results, spec.xfail))
    return out


def _metrics(eval_name: str, variant: str, g: pd.DataFrame, budget: float | None) -> dict[str, Any]:
    answered = g[g["outcome"].isin(["passed", "failed"])]
    errors = int((g["outcome"] == "errored").sum())
    json_rows = answered[answered["json_valid"].notna()]
    valid = int(json_rows["json_valid"].astype(bool).sum())
    passed = int((answered["outcome"] == "passed").sum())
    schema = answered[answered["schema_valid"].notna()]
    schema_ok = int(schema["schema_valid"].astype(bool).sum())
    n = len(answered)
    lo, hi = wilson(valid, len(json_rows))
    plo, phi = wilson(passed, n)
    priced = answered["cost_usd"].notna().all() and n > 0
    return {
        "eval": eval_name,
        "variant": variant,
        "model": ", ".join(sorted(set(map(str, g["model"])))),
        "planned": len(g),
        "attempted": n + errors,
        "answered": n,
        "errors": errors,
        "skipped": int((g["outcome"] == "skipped").sum()),
        "json_checked": len(json_rows),
        "json_valid_rate": rate(valid, len(json_rows)),
        "json_valid_low": lo,
        "json_valid_high": hi,
        "schema_checked": len(schema),
        "schema_valid_rate": rate(schema_ok, len(schema)),
        "pass_rate": rate(passed, n),
        "pass_low": plo,
        "pass_high": phi,
        "error_rate": rate(errors, n + errors),
        "prompt_tokens": int(answered["prompt_tokens"].fillna(0).sum()),
        "completion_tokens": int(answered["completion_tokens"].fillna(0).sum()),
        "cost_usd": float(answered["cost_usd"].sum()) if priced else None,
        "budget_usd": budget,
        "latency_p50_ms": percentile(answered["latency_ms"].dropna().tolist(), 50),
        "latency_p95_ms": percentile(answered["latency_ms"].dropna().tolist(), 95),
    }


def summary_frame(summaries: Sequence[VariantSummary]) -> pd.DataFrame:
    records = [
        s.metrics | {"gates": "; ".join(g.describe() for g in s.gates), "xfail": s.xfail or ""} for s in summaries
    ]
    return pd.DataFrame(records)


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
    return "unpriced" if m["cost_usd"] is None else f"${m['cost_usd']:.4f}"


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def _gate_cell(s: VariantSummary) -> str:
    if not s.gates:
        return "—"
    text = "; ".join(g.describe() for g in s.gates)
    return f"{text} (expected: {s.xfail})" if s.xfail and any(g.verdict == "fail" for g in s.gates) else text


HEADERS = (
    "eval",
    "variant",
    "model",
    "n",
    "errors",
    "json_valid (95% CI)",
    "pass_rate (95% CI)",
    "tokens in/out",
    "cost",
    "p50/p95 ms",
    "gates",
)


def table_rows(summaries: Sequence[VariantSummary]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in summaries:
        m = s.metrics
        rows.append(
            (
                m["eval"], m["variant"], m["model"], str(m["answered"]), str(m["errors"]),
                _interval(m, "json_valid", m["json_checked"]), _interval(m, "pass", m["answered"]),
                f"{m['prompt_tokens']}/{m['completion_tokens']}", _cost(m),
                f"{_ms(m['latency_p50_ms'])}/{_ms(m['latency_p95_ms'])}", _gate_cell(s),
            )
        )  # fmt: skip
    return rows


def text_table(summaries: Sequence[VariantSummary]) -> str:
    rows = [HEADERS, *table_rows(summaries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
    )


def markdown(summaries: Sequence[VariantSummary], note: str) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    body = [line(HEADERS), line(["---"] * len(HEADERS)), *(line(r) for r in table_rows(summaries))]
    return "\n".join(["# promptvcr summary", "", note, "", *body, ""])


def new_run_dir(reports_dir: Path) -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    path = reports_dir / run_id
    path.mkdir(parents=True, exist_ok=False)
    return path


def write(run_dir: Path, df: pd.DataFrame, summaries: Sequence[VariantSummary], note: str) -> None:
    df.to_csv(run_dir / "results.csv", index=False)
    summary_frame(summaries).to_csv(run_dir / "summary.csv", index=False)
    (run_dir / "summary.md").write_text(markdown(summaries, note), encoding="utf-8")
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{run_dir.name}"
    tmp.unlink(missing_ok=True)
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, latest)  # atomic: readers see the old run or the new one, never neither
