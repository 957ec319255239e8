"""Truth on real traffic: recorded OpenAI answers with tool calls, and every refusal, replayed through the tool
checks, the refusal check and the result columns (tests/corpus_tools.py builds the cases and cassettes and says what
each check must find, from the raw response). The shipped excerpt runs everywhere; the whole corpus (≥ 200 tool-call
answers and all 17 refusals) when ../shared is there (slow: it reads 55 MB).

Also from real lines: OpenAI's ``completion_tokens`` already include the reasoning tokens, so promptvcr bills them
once, as output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.load import _cases as cases_mod
from harness.load import _evals as evals
from harness.record import _cassettes as cassettes
from harness.run import _scoring as scoring
from tests import corpus_tools as corpus

EVAL = "corpus-tools"


def _project(root: Path, lines: list[dict[str, Any]]) -> Path:
    (root / "cases").mkdir(parents=True)
    (root / "evals").mkdir()
    doc = {"cases": [corpus.case_of(line) for line in lines]}
    (root / "cases" / "corpus.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), "utf-8")
    spec = {"name": EVAL, "cases": ["cases/corpus.yaml"], "endpoint": {"base_url": "http://127.0.0.1:9/v1"}}
    spec["variants"] = {"recorded": {}}
    path = root / "evals" / "corpus.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    by_id = {corpus.case_id(line): line for line in lines}
    for run in evals.load(path, root).runs:  # each cassette answers the request promptvcr makes of its case
        target = cassettes.cassette_path(root / "cassettes", EVAL, "recorded", run.case.id)
        cassettes.save(target, [corpus.interaction(run.body, by_id[run.case.id])])
    return path


def _replayed(tmp_path: Path, lines: list[dict[str, Any]]) -> dict[str, harness.Row]:
    path = _project(tmp_path, lines)
    done = harness.evaluate([path], root=tmp_path, record_mode="none")
    rows = {row.case: row for row in done.rows}
    assert len(rows) == len(lines)
    return rows


def _check(lines: list[dict[str, Any]], rows: dict[str, harness.Row]) -> None:
    for line in lines:
        row = rows[corpus.case_id(line)]
        where = f"{line['source_repo']} {line['interaction_sha256'][:12]}: {row.reasons} {row.error_message}"
        assert row.outcome in (harness.Outcome.PASSED, harness.Outcome.FAILED), where
        assert list(row.failed_checks) == corpus.failed_labels(line), where
        made = corpus.calls(line)
        assert row.tool_calls == (";".join(n for n, _ in made) or None), where
        assert row.tool_arguments == (json.dumps([a for _, a in made], ensure_ascii=False) if made else None), where
        valid = all(corpus.call_valid(line, n, a) for n, a in made) if made else None
        assert row.tool_calls_valid is valid, where
        details = (line["usage"] or {}).get("completion_tokens_details") or {}
        assert row.reasoning_tokens == details.get("reasoning_tokens"), where
        refusal = corpus.message_of(line).get("refusal")
        assert row.refusal == refusal, where
        if refusal:
            assert row.json_valid is False and f"refused: {refusal}" in row.reasons, where


def test_excerpt_of_real_tool_calls_and_refusals(tmp_path: Path) -> None:
    lines = [x for x in corpus.read(corpus.EXCERPT) if corpus.has_tool_calls(x) or corpus.is_refusal(x)]
    tools = [x for x in lines if corpus.has_tool_calls(x)]
    refusals = [x for x in lines if corpus.is_refusal(x)]
    assert len(tools) >= 40 and len(refusals) == 17  # the corpus's 17 refusals are all in the excerpt
    assert any(len(corpus.calls(x)) > 1 for x in tools)  # parallel calls
    assert any(not all(corpus.call_valid(x, n, a) for n, a in corpus.calls(x)) for x in tools)  # an invalid one
    _check(lines, _replayed(tmp_path, lines))


@pytest.mark.slow  # reads the whole 55 MB corpus
def test_whole_corpus_tool_calls_and_refusals(tmp_path: Path) -> None:
    if not corpus.CORPUS.is_file():
        pytest.skip(f"the shared corpus is not here ({corpus.CORPUS}); the excerpt test covers its lines")
    lines = corpus.selected(corpus.read(corpus.CORPUS), tool_lines=240)
    assert sum(corpus.has_tool_calls(x) for x in lines) >= 200
    assert sum(corpus.is_refusal(x) for x in lines) == 17
    _check(lines, _replayed(tmp_path, lines))


@pytest.mark.slow  # reads the whole corpus and loads 2,175 cases
def test_every_real_request_with_tools_is_a_valid_case(tmp_path: Path) -> None:
    """No false alarm: the tools, tool_choice, parallel_tool_calls and transcripts of every real request with tools
    (their documented keys) pass the load-time checks the API's shape is held to."""
    if not corpus.CORPUS.is_file():
        pytest.skip(f"the shared corpus is not here ({corpus.CORPUS})")
    lines = {corpus.case_id(x): x for x in corpus.read(corpus.CORPUS) if x["request"]["body"].get("tools")}
    assert len(lines) >= 2000
    doc = {"cases": [corpus.request_case(x) for x in lines.values()]}
    (tmp_path / "all.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert len(cases_mod.load(tmp_path / "all.yaml", tmp_path)) == len(lines)


def test_reasoning_tokens_are_inside_completion_tokens_and_billed_once() -> None:
    """On every real line with reasoning tokens: total = prompt + completion, and completion ≥ reasoning (so the
    reasoning is part of completion); an answer cut off while still reasoning has completion == reasoning and no
    text. promptvcr's cost is prompt × input + completion × output, the reasoning not added again."""
    lines = [
        x
        for x in corpus.read(corpus.EXCERPT)
        if ((x["usage"] or {}).get("completion_tokens_details") or {}).get("reasoning_tokens")
    ]
    assert len(lines) >= 10
    for line in lines:
        usage = line["usage"]
        reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert usage["completion_tokens"] >= reasoning
        price = harness.price_for(line["model"], line["response_model"])
        if price is None:
            continue
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        rate = price.cached_input if price.cached_input is not None else price.input
        want = (
            (usage["prompt_tokens"] - cached) * price.input + cached * rate + usage["completion_tokens"] * price.output
        ) / 1e6
        assert scoring.price_of(line["model"], line["response"]["body"]) == pytest.approx(want)
    spent = [
        x
        for x in lines
        if x["usage"]["completion_tokens"] == x["usage"]["completion_tokens_details"]["reasoning_tokens"]
    ]
    assert spent, "a line whose whole output was reasoning"
    assert all(not corpus.message_of(x).get("content") and not corpus.message_of(x).get("tool_calls") for x in spent)
