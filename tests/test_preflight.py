"""Pre-flight: context-window refusal, budget refusal and the live budget stop, against a test server."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.cli import _main as cli
from harness.load import _evals as evals
from harness.record._cassettes import RecordMode
from harness.run import _client as client
from harness.run import _preflight as preflight
from harness.run import _runner as runner
from harness.tokens import _count as tokens
from harness.tokens import _models as models
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

SYSTEM = {"role": "system", "content": "Count the words."}


def _project(root: Path, base_url: str, messages: list[dict[str, str]], **eval_extra: Any) -> Path:
    ep.init_project(root)
    case = {"id": "long", "messages": messages, "min_pass_rate": 0}
    cases = ep.write_cases(root, "limits", [case], defaults={"max_tokens": 200})
    ep.write_eval(
        root, "limits", base_url=base_url, cases=[cases], variants={"v": {"model": "gpt-3.5-turbo"}}, **eval_extra
    )
    return root


@pytest.mark.parametrize("over", [0, 1])
def test_a_request_one_token_over_the_window_is_refused_before_sending(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, over: int
) -> None:
    body = {"model": "gpt-3.5-turbo", "messages": [SYSTEM], "max_tokens": 200}
    filled = preflight.fill_context(body, over=over)
    window = models.lookup("gpt-3.5-turbo").context_window  # type: ignore[union-attr]
    assert tokens.prompt_tokens(filled) + 200 == window + over
    root = _project(pytester.path, fake_openai.base_url, filled["messages"], samples=2)
    pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    rows = ep.read_csv(ep.latest(root) / "results.csv")
    if over == 0:  # exactly full: sent
        assert len(fake_openai.chat_requests) == 2
        assert {r["outcome"] for r in rows} == {"passed"}
    else:
        assert fake_openai.chat_requests == []
        assert {r["error"] for r in rows} == {"context_overflow"}
        assert f"> {window}, the context window of gpt-3.5-turbo: nothing was sent" in rows[0]["error_message"]


def test_an_eval_over_its_budget_does_not_start(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url, [SYSTEM, {"role": "user", "content": "one two"}])
    ev_path = root / "evals" / "limits.yaml"
    run = evals.load(ev_path, root).runs[0]
    worst = preflight.plan(run).cost_usd
    assert worst is not None and worst > 0
    doc = yaml.safe_load(ev_path.read_text()) | {"budget_usd": worst / 2}
    ev_path.write_text(yaml.safe_dump(doc))
    result = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "exceeds budget_usd" in result.stdout.str()
    assert fake_openai.chat_requests == []


def test_a_live_run_stops_before_its_spend_passes_the_budget(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    # The start check already refuses an eval whose worst case is over budget; this is the second net, for spend
    # the start check could not see (e.g. several evals or shards sharing a budget), driven through the runner.
    root = _project(tmp_path, fake_openai.base_url, [SYSTEM, {"role": "user", "content": "one two three"}], samples=5)
    run = evals.load(root / "evals" / "limits.yaml", root).runs[0]
    call = preflight.plan(run)
    assert call.unit_cost_usd is not None and call.prompt_tokens is not None
    # every answer costs exactly the worst case, so a budget of 2.5 calls holds 2 and not a 3rd
    fake_openai.respond = lambda body: Reply(
        body=completion('{"n": 3}', model="gpt-3.5-turbo", prompt_tokens=call.prompt_tokens or 0, completion_tokens=200)
    )
    budget = preflight.Budget(2.5 * call.unit_cost_usd)
    connections = client.Connections(replay=False, local_url=lambda: "")
    options = runner.RunOptions(RecordMode.ONCE, root / "cassettes", connections, budgets={run.eval_name: budget})
    rows = runner.run_case(run, options)
    connections.close()
    assert len(fake_openai.chat_requests) == 2
    assert [r.error for r in rows] == [None, None, "budget", "budget", "budget"]
    assert "not sent" in (rows[2].error_message or "")
    assert budget.spent_usd == pytest.approx(2 * call.unit_cost_usd)


def test_the_budget_books_real_spend(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = preflight.Budget(1.0)
    assert budget.reserve(0.4)
    budget.spend(0.4, 0.4)
    assert budget.reserve(0.6) and not budget.reserve(0.61)
    budget.spend(None, 0.5)  # an unpriced answer books its worst case
    assert not budget.reserve(0.2)
    assert not preflight.Budget(1.0).reserve(None)  # a call whose cost can't be bounded never fits a budget


def test_estimate_prints_each_variant_and_refuses_over_budget(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path, fake_openai.base_url, [SYSTEM, {"role": "user", "content": "one two"}], samples=3)
    monkeypatch.chdir(root)
    ev_path = root / "evals" / "limits.yaml"
    call = preflight.plan(evals.load(ev_path, root).runs[0])
    assert call.prompt_tokens == tokens.prompt_tokens(call.run.body)
    assert cli.main(["estimate", "limits"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.strip().startswith("v "))
    assert f"{3 * call.prompt_tokens:,}" in line and "600" in line and f"${3 * call.unit_cost_usd:.4f}" in line  # type: ignore[operator]
    ev_path.write_text(yaml.safe_dump(yaml.safe_load(ev_path.read_text()) | {"budget_usd": 1e-9}))
    assert cli.main(["estimate", "limits"]) == 1
    assert "REFUSED" in capsys.readouterr().out
    assert fake_openai.chat_requests == []


def test_an_estimated_prompt_keeps_a_margin_below_the_window() -> None:
    run: Any = SimpleNamespace(model="gpt-4o", samples=1)
    exact = preflight.CallPlan(run, 900, True, 100, 1000, None)
    estimated = dataclasses.replace(exact, exact=False, margin=tokens.estimate_margin(900))
    assert not exact.overflow  # 900 + 100 fills the window exactly
    assert estimated.overflow  # the estimate may be 90 short
    assert "900 prompt tokens (estimated, + 90 margin) + 100 output tokens > 1000" in estimated.overflow_message()


@pytest.mark.slow  # two pytest-xdist workers
def test_the_budget_holds_for_the_run_across_xdist_workers(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    """Each pytest-xdist worker plans every eval: with a budget of its own each, two workers could spend twice
    budget_usd. They book in one ledger in the run's folder, so the run keeps to it."""
    ep.init_project(pytester.path)
    messages = [SYSTEM, {"role": "user", "content": "one two three"}]
    cases = [{"id": f"c{i}", "messages": messages, "min_pass_rate": 0} for i in range(4)]
    case_file = ep.write_cases(pytester.path, "limits", cases, defaults={"max_tokens": 200})
    ev_path = ep.write_eval(
        pytester.path, "limits", base_url=fake_openai.base_url, cases=[case_file],
        variants={"v": {"model": "gpt-3.5-turbo"}}, samples=3, limits={"concurrency": 1},
    )  # fmt: skip
    call = preflight.plan(evals.load(ev_path, pytester.path).runs[0])
    assert call.unit_cost_usd is not None and call.prompt_tokens is not None
    # the start check passes (12 calls' worst case is the budget), but each answer costs about 3 worst cases: one
    # budget holds 4 calls (at 0, 2.9, 5.8 and 8.7 worst cases spent), two budgets would hold 8
    fake_openai.respond = lambda body: Reply(
        body=completion('{"n": 3}', model="gpt-3.5-turbo", prompt_tokens=call.prompt_tokens or 0, completion_tokens=600)
    )
    ev_path.write_text(yaml.safe_dump(yaml.safe_load(ev_path.read_text()) | {"budget_usd": 12 * call.unit_cost_usd}))
    result = pytester.runpytest("evals", "--record-mode", "once", "-n", "2", "-p", "no:cacheprovider")
    assert "2 workers" in result.stdout.str()
    sent = len(fake_openai.chat_requests)
    assert 4 <= sent <= 5, result.stdout.str()[-2000:]  # 5: each worker may hold one last call of the last room
    assert sum(r["error"] == "budget" for r in ep.results(pytester.path)) == 12 - sent


def test_a_replay_of_a_request_over_the_window_is_refused_as_a_live_run_is(pytester: pytest.Pytester) -> None:
    filled = preflight.fill_context({"model": "gpt-3.5-turbo", "messages": [SYSTEM], "max_tokens": 200}, over=1)
    root = _project(pytester.path, "http://127.0.0.1:9/v1", filled["messages"], samples=2)
    pytester.runpytest("evals", "-p", "no:cacheprovider")  # a replay, with no cassette at all
    rows = ep.read_csv(ep.latest(root) / "results.csv")
    assert [r["error"] for r in rows] == ["context_overflow"] * 2  # not a missing recording


def _corpus_requests() -> list[dict[str, Any]]:
    path = Path(__file__).parent / "data" / "corpus_excerpt.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    return [r for r in records if r["category"] == "chat" and (r.get("usage") or {}).get("prompt_tokens")]


def test_the_bound_a_replay_uses_is_above_what_openai_billed_and_our_estimate_with_its_margin() -> None:
    bounded = 0
    for record in _corpus_requests():
        body = record["request"]["body"]
        bound = tokens.prompt_tokens_at_most(body)
        if bound is None:
            continue
        bounded += 1
        assert bound >= record["usage"]["prompt_tokens"], record["interaction_sha256"]
        try:
            count, exact = tokens.estimate_prompt_tokens(body, model=record["response_model"])
        except tokens.TokenCountError:
            continue
        assert bound >= count + (0 if exact else tokens.estimate_margin(count)), record["interaction_sha256"]
    assert bounded >= 50  # the excerpt's plain-text requests


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]},
        {"messages": [{"role": "assistant", "content": None, "tool_calls": []}]},
    ],
)
def test_no_bound_for_what_it_cannot_bound(extra: dict[str, Any]) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]} | extra
    assert tokens.prompt_tokens_at_most(body) is None
