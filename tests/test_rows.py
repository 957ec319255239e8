"""harness.run._row: the typed result row, its dict form at the edges, and the rules on outcomes and error kinds."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import vcr.record_mode

from harness.load._metrics import Metric
from harness.record._cassettes import TRANSIENT_STATUSES, RecordMode
from harness.report import _merge as merge
from harness.report import _tabular as tabular
from harness.run import _journal as journal
from harness.run._row import COLUMNS, FROM_CACHE, PRIMARY, AnsweredBy, ErrorKind, Outcome, Row

SCHEMAS = Path(__file__).resolve().parents[1] / "harness" / "load" / "schemas"


def _answered(**changes: object) -> Row:
    values: dict[str, object] = {
        "failed_checks": ("json_valid", "max_chars"),
        "reasons": "json_valid: not JSON | max_chars: 900 > 800",
        "json_valid": False,
        "schema_valid": None,
        "finish_reason": "stop",
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "cost_usd": 0.00021,
        "latency_ms": 812.5,
        "replayed": True,
        "answered_by": AnsweredBy("fallback", "gpt-4o-mini"),
        "output": "{'a': 1}",
    }
    return Row("e", "c", "v", "gpt-4.1", 3, Outcome.FAILED, **(values | changes))


def test_to_dict_is_the_file_format_and_from_dict_reads_it_back() -> None:
    row = _answered()
    raw = row.to_dict()
    assert list(raw) == list(COLUMNS)
    assert raw["outcome"] == "failed" and type(raw["outcome"]) is str
    assert raw["failed_checks"] == "json_valid;max_chars"
    assert raw["answered_by"] == "fallback:gpt-4o-mini"
    assert raw["error"] is None and raw["judge_cost_usd"] is None
    assert json.loads(json.dumps(raw)) == raw  # JSON scalars only: the journal and pytest-xdist carry it
    assert Row.from_dict(json.loads(json.dumps(raw))) == row


def test_an_errored_row_round_trips_with_its_kind() -> None:
    row = Row("e", "c", "v", "m", 0, Outcome.ERRORED, error=ErrorKind.TIMEOUT, error_message="HTTP 408", replayed=False)
    raw = row.to_dict()
    assert (raw["error"], raw["failed_checks"], raw["reasons"], raw["answered_by"]) == ("timeout", "", "", None)
    back = Row.from_dict(raw)
    assert back == row and back.error is ErrorKind.TIMEOUT


def test_from_dict_reads_a_frame_record_whose_empty_cells_are_nan() -> None:
    raw = _answered().to_dict() | {"schema_valid": math.nan, "judge_cost_usd": math.nan, "refusal": math.nan}
    row = Row.from_dict(raw)
    assert (row.schema_valid, row.judge_cost_usd, row.refusal) == (None, None, None)


@pytest.mark.parametrize(
    "change",
    [{"outcome": "unknown"}, {"outcome": None}, {"error": "flaky"}, {"sample": "x"}, {"answered_by": "someone"}],
)
def test_from_dict_refuses_what_is_not_a_row(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Row.from_dict(_answered().to_dict() | change)


def test_from_dict_needs_which_sample_a_row_is() -> None:
    raw = _answered().to_dict()
    del raw["case"]
    with pytest.raises(KeyError):
        Row.from_dict(raw)


def test_rows_are_frozen_and_slotted() -> None:
    row = _answered()
    with pytest.raises(AttributeError):
        row.outcome = Outcome.PASSED  # type: ignore[misc]  # the point: it cannot be
    assert not hasattr(row, "__dict__")
    assert row.item == ("e", "v", "c") and row.key == ("e", "v", "c", 3)


@pytest.mark.parametrize(
    ("text", "kind", "model", "answered_as"),
    [
        ("primary", "primary", None, "gpt-4.1"),
        ("cached", "cached", None, "gpt-4.1"),
        ("fallback:gpt-4o-mini", "fallback", "gpt-4o-mini", "gpt-4o-mini"),
        ("fallback:org/model:v2", "fallback", "org/model:v2", "org/model:v2"),  # a model id may hold a colon
    ],
)
def test_answered_by_text_is_parsed_once(text: str, kind: str, model: str | None, answered_as: str) -> None:
    who = AnsweredBy.parse(text)
    assert (who.kind, who.model, str(who), who.model_or("gpt-4.1")) == (kind, model, text, answered_as)
    assert who.sent is (kind != "cached")


def test_answered_by_constants() -> None:
    assert (str(PRIMARY), str(FROM_CACHE)) == ("primary", "cached")
    with pytest.raises(ValueError, match="primary, fallback:<model> or cached"):
        AnsweredBy.parse("secondary")


def test_each_error_kind_rule_is_its_own_set() -> None:
    retried = {k.value for k in ErrorKind if k.retryable}
    assert retried == {"rate_limited", "server_error", "timeout", "connection"}
    assert {k.value for k in ErrorKind if k.falls_back} == retried | {"missing_recording"}
    # the ones whose request may have run at the endpoint before it died: cost unknown, booked as the worst case
    assert {k.value for k in ErrorKind if k.billable} == {"timeout", "connection", "bad_response"}


def test_outcomes_that_count_as_answered() -> None:
    assert {o.value for o in Outcome if o.answered} == {"passed", "failed"}
    assert {o.value for o in Outcome} == {"passed", "failed", "errored", "skipped"}


def test_record_modes_are_vcrpys_and_transient_statuses_are_http() -> None:
    ours = {m.value for m in RecordMode}
    assert ours == {m.value for m in vcr.record_mode.RecordMode} - {"any"}  # vcrpy's `any` is not offered
    assert {408, 409, 429, 500, 503, 599} <= TRANSIENT_STATUSES and not {200, 400, 401, 404} & TRANSIENT_STATUSES


def test_the_schema_lists_the_built_in_gate_metrics_for_editors() -> None:
    schema = json.loads((SCHEMAS / "eval.schema.json").read_text(encoding="utf-8"))
    found: list[list[str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            metric = node.get("metric")
            if isinstance(metric, dict) and "examples" in metric:
                found.append(metric["examples"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert found and all(sorted(names) == sorted(m.value for m in Metric) for names in found)


def test_the_journal_keeps_rows_typed_and_skips_lines_that_are_not_rows(tmp_path: Path) -> None:
    log = journal.Journal(tmp_path)
    first = dataclasses.replace(_answered(), sample=0)
    log.append(first)
    log.close()
    with (tmp_path / "results.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"eval": "e", "variant": "v", "case": "c", "sample": 1}) + "\n")  # no outcome
        f.write("[1, 2]\n")
        f.write('{"eval": "e", "variant"')  # cut short by a kill
    assert journal.rows(tmp_path) == [first]
    assert journal.kept(tmp_path) == {("e", "v", "c"): {0: first}}


def test_a_row_comes_back_from_results_csv(tmp_path: Path) -> None:
    # the way `promptvcr merge` reads a shard: results.csv as the report writes it, every cell read as text
    rows = [_answered(), dataclasses.replace(_answered(), sample=4, error=None, answered_by=PRIMARY, json_valid=True)]
    rows.append(Row("e", "c", "v", "m", 5, Outcome.ERRORED, error=ErrorKind.BUDGET, error_message="spent"))
    (tmp_path / "results.csv").write_text(tabular.csv_text(COLUMNS, [row.cells() for row in rows]), encoding="utf-8")
    assert merge.rows_of(tmp_path / "results.csv") == rows
