"""Per case × variant verdicts, shared by the pytest items and ``junit.xml`` so both say the same thing."""

from __future__ import annotations

import operator
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

    Written as text, byte for byte what ElementTree's ``indent`` and ``tostring`` make of the same elements
    (``tests/test_reports.py`` holds it to them), in half the time it took for 10,000 testcases.
    """
    lines: list[str] = []
    counts: Counter[str] = Counter()
    runs = {(ev.name, r.case.id, r.variant.name): r for ev in evals.values() for r in ev.runs}
    for (eval_name, case, variant), group in groups(rows, operator.attrgetter("eval", "case", "variant")):
        run = runs[(eval_name, case, variant)]
        kind, message = case_verdict(group, run.case.min_pass_rate)
        # a sample without a latency counts 0 ms; summed as numpy sums, so the seconds written keep their digits
        latency = [r.latency_ms or 0.0 for r in group]
        live = pairwise_sum([ms for ms, r in zip(latency, group, strict=True) if not r.replayed]) / 1000
        seconds = durations.get((eval_name, case, variant), live)
        lines += [
            f'    <testcase classname="{_attribute(eval_name)}" name="{_attribute(f"{case}[{variant}]")}" '
            f'time="{seconds:.3f}">',
            "      <properties>",
            f'        <property name="recorded_latency_s" value="{pairwise_sum(latency) / 1000:.3f}" />',
            "      </properties>",
        ]
        kind, said = _verdict_element(kind, message, run.variant.xfail)
        lines += [*said, "    </testcase>"]
        counts[kind] += 1
        counts["tests"] += 1
    named = (("tests", "tests"), ("failures", "failed"), ("errors", "errored"), ("skipped", "skipped"))
    suite = '<testsuite name="promptvcr" ' + " ".join(f'{name}="{counts[counted]}"' for name, counted in named)
    lines = [f"  {suite}>", *lines, "  </testsuite>"] if lines else [f"  {suite} />"]
    text = "\n".join(["<?xml version='1.0' encoding='utf-8'?>", "<testsuites>", *lines, "</testsuites>"])
    return text.encode("utf-8", "xmlcharrefreplace")  # as ElementTree writes what UTF-8 cannot encode


def _verdict_element(kind: Kind, message: str, xfail: str | None) -> tuple[Kind, list[str]]:
    """A testcase's verdict as junit counts it (an expected shortfall is skipped) and its element, if it has one."""
    if kind == "failed" and xfail:
        return "skipped", [f'      <skipped type="pytest.xfail" message="{_attribute(f"{xfail} — {message}")}" />']
    if kind == "passed":
        return kind, []
    tag = {"failed": "failure", "errored": "error", "skipped": "skipped"}[kind]
    return kind, [f'      <{tag} message="{_attribute(message.splitlines()[0])}">{_text(message)}</{tag}>']


def _text(value: str) -> str:
    """Character data as ElementTree escapes it."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    """An attribute's value as ElementTree escapes it (line breaks and tabs as character references)."""
    return _text(value).translate(_ATTRIBUTE)


_ATTRIBUTE = str.maketrans({'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})
