"""Per case × variant verdicts, shared by the pytest items and ``junit.xml`` so both say the same thing."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from .._lazy import numpy as np
from .._lazy import pandas as pd
from ..load._evals import Eval
from ..run._row import Outcome, Row

Kind = Literal["passed", "failed", "errored", "skipped"]
Item = tuple[str, str, str]  # eval, case, variant


def top(counts: Counter[str], limit: int = 5) -> str:
    lines = [f"  {count}× {text}" for text, count in counts.most_common(limit)]
    if len(counts) > limit:
        lines.append(f"  … and {len(counts) - limit} other reasons (see results.csv)")
    return "\n".join(lines)


def case_verdict(rows: Sequence[Row], min_pass_rate: float) -> tuple[Kind, str]:
    """Errors fail a case outright; otherwise the share of passed samples must reach ``min_pass_rate``."""
    n = len(rows)
    if n == 0:
        return "failed", "no samples"
    if all(r.outcome == Outcome.SKIPPED for r in rows):
        return "skipped", str(rows[0].error_message)
    errors = [r for r in rows if r.outcome == Outcome.ERRORED]
    if errors:
        kinds = Counter(f"{r.error}: {r.error_message}" for r in errors)
        return "errored", f"{len(errors)} of {n} samples errored:\n" + top(kinds)
    passed = sum(r.outcome == Outcome.PASSED for r in rows)
    if passed / n >= min_pass_rate:
        return "passed", f"{passed} of {n} samples passed"
    reasons = Counter(r.reasons for r in rows if r.outcome == Outcome.FAILED)
    return "failed", f"{passed} of {n} samples passed (min_pass_rate {min_pass_rate:g}):\n" + top(reasons)


def _groups(df: pd.DataFrame) -> Iterator[tuple[tuple[Any, Any, Any], list[dict[str, Any]]]]:
    """The rows of each eval × case × variant as ``to_dict("records")`` gives them, in ``groupby``'s order: pandas
    per group cost a 4 ms ``to_dict`` per case × variant (7 s of a 10,000-row replay), and all rows as dicts at
    once held a copy of the run in memory; the columns are read once and one group's dicts made at a time."""
    columns = {str(name): df[name].tolist() for name in df.columns}
    positions: dict[tuple[Any, Any, Any], list[int]] = {}
    for i, key in enumerate(zip(columns["eval"], columns["case"], columns["variant"], strict=True)):
        positions.setdefault(key, []).append(i)
    for key in sorted(positions):
        yield key, [{name: values[i] for name, values in columns.items()} for i in positions[key]]


def _number(value: object) -> float:
    """A cell as ``pd.to_numeric(errors="coerce").fillna(0)`` reads it."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def junit_xml(df: pd.DataFrame, evals: Mapping[str, Eval], durations: Mapping[Item, float]) -> bytes:
    """One testcase per case × variant (classname = eval, name = ``case[variant]``), failures with their reasons.

    Its ``time`` is what the item took in this session (``durations``; where unknown, as in a merge of shards, the
    latency of the calls it sent): a CI dashboard reads it as test time. The latency the answers were recorded with
    is the ``recorded_latency_s`` property. An expected shortfall (an ``xfail`` variant) is written as skipped, as
    pytest's own junitxml does.
    """
    suite = ET.Element("testsuite", name="promptvcr")
    counts: Counter[str] = Counter()
    runs = {(ev.name, r.case.id, r.variant.name): r for ev in evals.values() for r in ev.runs}
    for (eval_name, case, variant), group in _groups(df):
        run = runs[(str(eval_name), str(case), str(variant))]
        rows = [Row.from_dict({str(k): v for k, v in r.items()}) for r in group]
        kind, message = case_verdict(rows, run.case.min_pass_rate)
        # as pandas sums a column (numpy's pairwise sum of float64), so the seconds written stay the same digits
        latency = np.array([_number(r["latency_ms"]) for r in group], dtype=float)
        live = latency[~np.array([bool(r["replayed"]) for r in group], dtype=bool)].sum() / 1000
        seconds = durations.get((str(eval_name), str(case), str(variant)), live)
        element = ET.SubElement(
            suite, "testcase", classname=str(eval_name), name=f"{case}[{variant}]", time=f"{seconds:.3f}"
        )
        properties = ET.SubElement(element, "properties")
        ET.SubElement(properties, "property", name="recorded_latency_s", value=f"{latency.sum() / 1000:.3f}")
        if kind == "failed" and run.variant.xfail:
            kind = "skipped"
            ET.SubElement(element, "skipped", type="pytest.xfail", message=f"{run.variant.xfail} — {message}")
        elif kind != "passed":
            tag = {"failed": "failure", "errored": "error", "skipped": "skipped"}[kind]
            ET.SubElement(element, tag, message=message.splitlines()[0]).text = message
        counts[kind] += 1
        counts["tests"] += 1
    for attribute, counted in (
        ("tests", "tests"),
        ("failures", "failed"),
        ("errors", "errored"),
        ("skipped", "skipped"),
    ):
        suite.set(attribute, str(counts[counted]))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
