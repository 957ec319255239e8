"""Per case × variant verdicts, shared by the pytest items and ``junit.xml`` so both say the same thing."""

from __future__ import annotations

import operator
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

from ..load._evals import Eval
from ..run._row import Outcome, Row
from ._stats import pairwise_sum
from ._variants import groups

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
    outcomes = Counter(r.outcome for r in rows)  # one pass, in C: junit.xml judges every case × variant
    if outcomes[Outcome.SKIPPED] == n:
        return "skipped", str(rows[0].error_message)
    if outcomes[Outcome.ERRORED]:
        kinds = Counter(f"{r.error}: {r.error_message}" for r in rows if r.outcome == Outcome.ERRORED)
        return "errored", f"{outcomes[Outcome.ERRORED]} of {n} samples errored:\n" + top(kinds)
    passed = outcomes[Outcome.PASSED]
    if passed / n >= min_pass_rate:
        return "passed", f"{passed} of {n} samples passed"
    reasons = Counter(r.reasons for r in rows if r.outcome == Outcome.FAILED)
    return "failed", f"{passed} of {n} samples passed (min_pass_rate {min_pass_rate:g}):\n" + top(reasons)


def junit_xml(rows: Sequence[Row], evals: Mapping[str, Eval], durations: Mapping[Item, float]) -> bytes:
    """One testcase per case × variant (classname = eval, name = ``case[variant]``), failures with their reasons.

    Its ``time`` is what the item took in this session (``durations``; where unknown, as in a merge of shards, the
    latency of the calls it sent): a CI dashboard reads it as test time. The latency the answers were recorded with
    is the ``recorded_latency_s`` property. An expected shortfall (an ``xfail`` variant) is written as skipped, as
    pytest's own junitxml does.
    """
    suite = ET.Element("testsuite", name="promptvcr")
    counts: Counter[str] = Counter()
    runs = {(ev.name, r.case.id, r.variant.name): r for ev in evals.values() for r in ev.runs}
    for (eval_name, case, variant), group in groups(rows, operator.attrgetter("eval", "case", "variant")):
        run = runs[(eval_name, case, variant)]
        kind, message = case_verdict(group, run.case.min_pass_rate)
        # a sample without a latency counts 0 ms; summed as numpy sums, so the seconds written keep their digits
        latency = [r.latency_ms or 0.0 for r in group]
        live = pairwise_sum([ms for ms, r in zip(latency, group, strict=True) if not r.replayed]) / 1000
        seconds = durations.get((eval_name, case, variant), live)
        element = ET.SubElement(
            suite, "testcase", classname=eval_name, name=f"{case}[{variant}]", time=f"{seconds:.3f}"
        )
        properties = ET.SubElement(element, "properties")
        ET.SubElement(properties, "property", name="recorded_latency_s", value=f"{pairwise_sum(latency) / 1000:.3f}")
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
