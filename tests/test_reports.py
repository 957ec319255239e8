"""The files a run writes for people and CI: summary.md (A/B verdicts, monthly cost), junit.xml, report.html;
the eval-file additions they use (traffic profile, monthly budget, the latency gate).

``small_run`` records a two-variant eval against the fake server: ``steady`` always answers valid JSON,
``shaky`` every other time, so the A/B comparison has a known, significant drop in JSON validity.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InputError
from harness.load import _evals as evals
from harness.report import _junit as junit
from harness.report._summary import DAYS_PER_MONTH
from harness.run._row import ErrorKind, Outcome, Row
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

SAMPLES = 10
# With the price table's gpt-4o-mini and gpt-4.1-nano, steady projects to about $0.89 a month and shaky $0.59.
BUDGET = 0.75
MIX = {"alpha": 3, "beta": 1}
VARIANTS = {"steady": {"model": "gpt-4o-mini"}, "shaky": {"model": "gpt-4.1-nano"}}


TOKENS = {"alpha": (12, 7), "beta": (300, 90)}  # per case, so the traffic mix changes the cost of a call


def _answers() -> Any:
    """Valid JSON for ``steady``'s model; for ``shaky``'s, valid and invalid in turn."""
    lock = threading.Lock()
    count = {"n": 0}

    def respond(body: dict[str, Any]) -> Reply:
        model = str(body["model"])
        prompt, output = TOKENS[ep.case_of(body)]
        content = '{"n": 1}'
        if model == VARIANTS["shaky"]["model"]:
            with lock:
                count["n"] += 1
                content = '{"n": 2}' if count["n"] % 2 else "not json"
        return Reply(body=completion(content, model=model, prompt_tokens=prompt, completion_tokens=output))

    return respond


def small_run(pytester: pytest.Pytester, fake: FakeOpenAI, **extra: Any) -> Path:
    """Record the eval (its items fail: shaky misses min_pass_rate 1) and return the run's reports directory."""
    root = ep.init_project(pytester.path)
    cases = ep.write_cases(root, "small", [ep.json_case(c, min_pass_rate=1) for c in ("alpha", "beta")])
    settings: dict[str, Any] = {
        "traffic": {"requests_per_day": 1000, "mix": MIX},
        "monthly_budget_usd": BUDGET,
        "limits": {"concurrency": 1},  # shaky's answers alternate in the order requests arrive: one at a time
        "gates": [
            {"metric": "latency_p95_ms", "op": "<=", "value": 60000},
            {"metric": "json_valid_rate", "op": ">=", "value": 0.4},
        ],
    }
    ep.write_eval(
        root, "small", base_url=fake.base_url, cases=[cases], variants=VARIANTS, samples=SAMPLES, **settings | extra
    )
    fake.respond = _answers()
    result = pytester.runpytest("evals", "-p", "no:cacheprovider", "--record-mode", "once")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    return ep.latest(root)


def test_summary_md_has_the_ab_verdicts_and_the_monthly_projection(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    run = small_run(pytester, fake_openai)
    md = (run / "summary.md").read_text(encoding="utf-8")
    assert "p50/p95/p99 ms" in md
    assert "PASS latency_p95_ms <= 60000 (observed" in md
    assert "## A/B comparisons" in md
    assert "### small: shaky vs steady" in md
    verdicts = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| json_valid_rate")}
    line = verdicts["json_valid_rate (gated)"]
    # 20 pairs, steady valid in all, shaky in 10 — but from 2 cases only: too few to resample, not a verdict
    assert "100.0% | 50.0% | -50.0 pts | 2 × 10 | 2 case(s), fewer than 5" in line
    assert line.rstrip(" |").endswith("insufficient data")
    # the verdict opens the summary, before the per-variant table
    assert md.index("## Verdict") < md.index("## Per variant")
    assert "**small: shaky vs steady**\n\n- not enough data on json_valid_rate to decide (-50.0 pts" in md

    rows = ep.results(pytester.path)
    summary = {r["variant"]: r for r in ep.summary(pytester.path)}
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        per_case = {c: [float(r["cost_usd"]) for r in mine if r["case"] == c] for c in MIX}
        per_call = sum(w * sum(per_case[c]) / len(per_case[c]) for c, w in MIX.items()) / sum(MIX.values())
        assert per_call != pytest.approx(sum(per_case["alpha"] + per_case["beta"]) / 20)  # the mix matters here
        expected = 1000 * DAYS_PER_MONTH * per_call
        assert float(summary[variant]["monthly_cost_usd"]) == pytest.approx(expected)
        flag = "OVER" if expected > BUDGET else "within"
        assert f"| small | {variant} | 1000 | ${1000 * per_call:.4f} |" in md
        assert f"${expected:,.2f} (budget ${BUDGET:,.2f}: {flag})" in md
        assert summary[variant]["over_budget"] == str(expected > BUDGET)
    assert "## Monthly cost projection — **1 variant(s) over budget**" in md


def test_junit_xml_has_one_testcase_per_case_and_variant_with_reasons(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    run = small_run(pytester, fake_openai)
    suite = ET.parse(run / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    assert set(cases) == {f"{c}[{v}]" for c in MIX for v in VARIANTS}
    assert {c.attrib["classname"] for c in cases.values()} == {"small"}
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["errors"]) == ("4", "2", "0")
    for case in MIX:
        assert cases[f"{case}[steady]"].find("failure") is None
        failure = cases[f"{case}[shaky]"].find("failure")
        assert failure is not None
        assert failure.attrib["message"] == f"5 of {SAMPLES} samples passed (min_pass_rate 1):"
        assert "5× json_valid: not valid JSON" in (failure.text or "")


HOSTILE = "a \"quoted\" <tag> & 'apostrophe'\tthen\na second line — ünïcode 🙂"


def test_junit_xml_is_what_elementtree_writes_of_it_hostile_text_and_every_kind(tmp_path: Path) -> None:
    """junit.xml is written as text: it must be, byte for byte, ElementTree's indented serialization of the tree it
    parses to (what it was made with before), for every kind of verdict and text that needs escaping."""
    ep.init_project(tmp_path)
    cases = ep.write_cases(tmp_path, "c", [ep.json_case(c, min_pass_rate=0.5) for c in ("ok", "bad", "err", "skip")])
    variants = {"v": {"model": "m"}, "x": {"model": "m", "xfail": f"known {HOSTILE}"}}
    ev = evals.load(
        ep.write_eval(tmp_path, "e", base_url="http://127.0.0.1:9/v1", cases=[cases], variants=variants), tmp_path
    )
    rows = []
    for variant in variants:
        for sample in range(2):
            common = {"eval": "e", "variant": variant, "model": "m", "sample": sample, "latency_ms": 12.5 + sample}
            rows += [
                Row(case="ok", outcome=Outcome.PASSED, **common),
                Row(case="bad", outcome=Outcome.FAILED, reasons=f"json_valid: {HOSTILE}", **common),
                Row(case="err", outcome=Outcome.ERRORED, error=ErrorKind.TIMEOUT, error_message=HOSTILE, **common),
                Row(case="skip", outcome=Outcome.SKIPPED, error_message=f"no recording: {HOSTILE}", **common),
            ]
    written = junit.junit_xml(rows, {"e": ev}, {("e", "ok", "v"): 1.25})
    root = ET.fromstring(written)
    ET.indent(root)
    assert written == ET.tostring(root, encoding="utf-8", xml_declaration=True)
    suite = root.find("testsuite")
    assert suite is not None
    assert dict(suite.attrib) == {"name": "promptvcr", "tests": "8", "failures": "1", "errors": "2", "skipped": "3"}
    failure = suite.find("testcase[@name='bad[v]']/failure")
    assert failure is not None and HOSTILE in (failure.text or "")
    assert suite.find("testcase[@name='bad[x]']/skipped[@type='pytest.xfail']") is not None
    assert suite.find("testcase[@name='ok[v]']").attrib["time"] == "1.250"  # type: ignore[union-attr]
    empty = junit.junit_xml([], {"e": ev}, {})
    assert empty == ET.tostring(ET.fromstring(empty), encoding="utf-8", xml_declaration=True)


def test_a_latency_gate_can_fail_and_fails_the_run(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    gate = {"metric": "latency_p95_ms", "op": "<=", "value": 0, "variant": "steady"}
    run = small_run(pytester, fake_openai, gates=[gate])
    assert "FAIL latency_p95_ms <= 0 (observed" in (run / "summary.md").read_text(encoding="utf-8")


# --- eval files ------------------------------------------------------------------------------------------------------


def _load(tmp_path: Path, **extra: Any) -> evals.Eval:
    ep.init_project(tmp_path)
    cases = ep.write_cases(tmp_path, "c", [ep.json_case("alpha"), ep.json_case("beta")])
    path = ep.write_eval(
        tmp_path, "e", base_url="http://127.0.0.1:9/v1", cases=[cases], variants={"v": {"model": "m"}}, **extra
    )
    return evals.load(path, tmp_path)


def _problems(tmp_path: Path, **extra: Any) -> str:
    with pytest.raises(InputError) as info:
        _load(tmp_path, **extra)
    return str(info.value)


def test_traffic_and_latency_gate_are_optional_and_parsed(tmp_path: Path) -> None:
    plain = _load(tmp_path)
    assert (plain.traffic, plain.monthly_budget_usd) == (None, None)
    ev = _load(
        tmp_path,
        traffic={"requests_per_day": 250},
        monthly_budget_usd=40,
        gates=[{"metric": "latency_p95_ms", "op": "<=", "value": 2500}],
    )
    assert ev.traffic == evals.Traffic(250.0, {"alpha": 1.0, "beta": 1.0})  # no mix: every case alike
    assert ev.monthly_budget_usd == 40
    assert (ev.gates[0].metric, ev.gates[0].value) == ("latency_p95_ms", 2500.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"gates": [{"metric": "latency_p95_ms", "op": ">=", "value": 100}]}, "/gates/0/op"),
        ({"gates": [{"metric": "pass_rate", "op": ">=", "value": 2}]}, "/gates/0/value"),
        ({"traffic": {"requests_per_day": 10, "mix": {"gamma": 1}}}, "traffic mix names case 'gamma'"),
        ({"traffic": {"requests_per_day": 10, "mix": {"alpha": 0}}}, "traffic mix weights are all 0"),
        ({"traffic": {"mix": {"alpha": 1}}}, "requests_per_day"),
        ({"monthly_budget_usd": 0}, "/monthly_budget_usd"),
    ],
)
def test_bad_traffic_or_latency_gate_is_reported(tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    assert message in _problems(tmp_path, **extra)
