"""Gate metrics go through one registry: a metric of the user's is gated like a built-in, an unknown name is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.errors import InputError
from harness.load import _evals as evals
from harness.load import _metrics as metrics
from harness.report import _summary as report
from harness.run._row import Outcome, Row
from tests.test_models_ab import CASE

SHORT = 5  # completion tokens


@harness.metric("short_answer_rate")
def short_answer_rate(rows: pd.DataFrame) -> float:
    """The share of answers of at most SHORT completion tokens (a user's metric: a float, over every row)."""
    return float((rows["completion_tokens"] <= SHORT).mean())


def write(tmp_path: Path, gates: str) -> Path:
    (tmp_path / "c.yaml").write_text(CASE, encoding="utf-8")
    body = f"name: e\ncases: [c.yaml]\nvariants: {{terse: {{}}, wordy: {{}}}}\n{gates}"
    (tmp_path / "e.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    return tmp_path / "e.yaml"


def rows(variant: str, tokens: list[int]) -> list[Row]:
    return [Row("e", "greet", variant, "m", i, Outcome.PASSED, completion_tokens=t) for i, t in enumerate(tokens)]


def test_a_registered_metric_gates_a_variant_like_a_built_in(tmp_path: Path) -> None:
    path = write(tmp_path, 'gates: [{metric: short_answer_rate, op: ">=", value: 0.75, min_n: 10}]\n')
    ev = evals.load(path, tmp_path)
    terse, wordy = [3] * 8 + [9] * 2, [3] * 5 + [9] * 5
    expected = {"terse": sum(t <= SHORT for t in terse) / 10, "wordy": sum(t <= SHORT for t in wordy) / 10}
    ran = rows("terse", terse) + rows("wordy", wordy)
    summaries = report.summarize(ran, {"e": ev})
    found = {s.metrics["variant"]: s.gates[0] for s in summaries}
    assert {v: (g.verdict, g.observed, g.n) for v, g in found.items()} == {
        "terse": ("pass" if expected["terse"] >= 0.75 else "fail", expected["terse"], 10),
        "wordy": ("pass" if expected["wordy"] >= 0.75 else "fail", expected["wordy"], 10),
    }
    assert found["wordy"].describe() == "FAIL short_answer_rate >= 0.75 (observed 0.5000, n=10)"
    assert "short_answer_rate" not in report.summary_records(summaries)[0]  # summary.csv keeps its columns
    (tmp_path / "run").mkdir()
    report.write(tmp_path / "run", ran, summaries, "a note", {"e": ev})  # every report file, the comparison's too
    assert "FAIL short_answer_rate >= 0.75" in (tmp_path / "run" / "summary.md").read_text(encoding="utf-8")


def test_an_unknown_gate_metric_is_refused_at_load_with_the_closest_name(tmp_path: Path) -> None:
    path = write(tmp_path, 'gates:\n  - {metric: pass_rat, op: ">=", value: 0.9}\n')
    with pytest.raises(InputError) as info:  # raised by load: before any request could be built, nothing is sent
        evals.load(path, tmp_path)
    text = str(info.value)
    assert "no request was sent" in text and f"{path}:5" in text and "at /gates/0/metric" in text
    assert "unknown gate metric 'pass_rat' — did you mean 'pass_rate'?" in text
    known = "json_valid_rate, schema_valid_rate, pass_rate, error_rate, latency_p95_ms, refusal_rate, "
    known += "tool_calls_valid_rate, ttft_p95_ms"
    assert f"{known}, short_answer_rate" in text


def test_a_rate_metric_of_the_users_is_held_to_0_to_1_and_has_no_interval_unless_it_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, 'gates: [{metric: short_answer_rate, op: ">=", value: 2, basis: lower_bound}]\n')
    with pytest.raises(InputError) as info:
        evals.load(path, tmp_path)
    text = str(info.value)
    assert "at /gates/0/value short_answer_rate is a rate: value 2 is over 1" in text
    assert "at /gates/0/basis basis 'lower_bound' needs a rate's interval; short_answer_rate has none" in text


def test_a_metric_defined_twice_is_unusable_and_says_where() -> None:
    name = "twice_defined_rate"
    harness.metric(name)(lambda rows: 1.0)
    harness.metric(name)(lambda rows: 0.0)
    with pytest.raises(metrics.MetricError, match="defined twice"):
        metrics.lookup(name)


@harness.metric("broken_rate")
def broken_rate(rows: pd.DataFrame) -> float:
    raise KeyError("no_such_column")


@harness.metric("wordy_rate")
def wordy_rate(rows: pd.DataFrame) -> str:
    return "high"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("broken_rate", "the metric raised KeyError: 'no_such_column'"),
        ("wordy_rate", "the metric returned str: a number or a harness.Measure"),
    ],
)
def test_a_metric_that_raises_or_returns_no_number_fails_its_gate_with_the_reason(
    tmp_path: Path, name: str, reason: str
) -> None:
    ev = evals.load(write(tmp_path, f'gates: [{{metric: {name}, op: ">=", value: 0.5}}]\n'), tmp_path)
    summaries = report.summarize(rows("terse", [1, 2]), {"e": ev})
    [gate] = summaries[0].gates
    assert gate.verdict == "fail" and summaries[0].failed
    assert gate.describe() == f"FAIL {name} >= 0.5: {reason}"
