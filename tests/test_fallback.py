"""The incident plan: a variant's fallback chain answers when its primary model fails."""

from __future__ import annotations

from typing import Any

import pytest

from harness.tokens import _cost as cost
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

PRIMARY, BACKUP = "gpt-4.1-mini", "gpt-4o-mini"  # priced models, so the row's price says who answered


def _project(pytester: pytest.Pytester, base_url: str, fallback: list[str], samples: int = 3) -> Any:
    root = ep.init_project(pytester.path)
    cases = ep.write_cases(root, "c", [ep.json_case("alpha")])
    variants = {"v": {"model": PRIMARY, "fallback": fallback}}
    ep.write_eval(
        root, "e", base_url=base_url, cases=[cases], variants=variants, samples=samples, endpoint={"max_retries": 0}
    )
    return root


def _by_model(down: set[str]) -> Any:
    def respond(body: dict[str, Any]) -> Reply:
        if body["model"] in down:
            return Reply(503, {"error": {"message": f"{body['model']} is overloaded"}})
        return Reply(body=completion('{"n": 1}', model=body["model"]))

    return respond


def test_a_failing_primary_is_answered_by_the_fallback_model_and_the_run_says_so(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(pytester, fake_openai.base_url, [BACKUP])
    fake_openai.respond = _by_model({PRIMARY})
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    assert f"promptvcr: 3 answer(s) of e / v came from fallback:{BACKUP}" in recorded.stdout.str()
    # samples run concurrently: each primary failure was followed by a backup request, in whatever order
    assert sorted(r.body["model"] for r in fake_openai.chat_requests) == sorted([PRIMARY, BACKUP] * 3)
    rows = ep.results(root)
    assert [r["answered_by"] for r in rows] == [f"fallback:{BACKUP}"] * 3
    expected = cost.cost_usd(completion("x")["usage"], cost.price_for(BACKUP))
    assert all(float(r["cost_usd"]) == pytest.approx(expected) for r in rows)  # priced as the backup

    replayed = pytester.runpytest("evals", "-p", "no:cacheprovider")  # the 503s were not recorded: same story
    assert replayed.ret == pytest.ExitCode.OK
    assert len(fake_openai.chat_requests) == 6
    assert [r["answered_by"] for r in ep.results(root)] == [f"fallback:{BACKUP}"] * 3


def test_when_every_model_fails_the_last_good_recorded_answer_is_used(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(pytester, fake_openai.base_url, [BACKUP, "cached"], samples=2)
    fake_openai.respond = _by_model(set())
    assert pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider").ret == pytest.ExitCode.OK
    fake_openai.respond = _by_model({PRIMARY, BACKUP})  # an incident: both models down
    sent = len(fake_openai.chat_requests)
    result = pytester.runpytest("evals", "--record-mode", "new_episodes", "--samples", "4", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    rows = ep.results(root)
    assert [r["answered_by"] for r in rows] == ["primary", "primary", "cached", "cached"]
    assert [float(r["cost_usd"]) for r in rows[2:]] == [0.0, 0.0]
    assert sorted(r.body["model"] for r in fake_openai.chat_requests[sent:]) == sorted([PRIMARY, BACKUP] * 2)


def test_a_prompt_failure_is_not_a_reason_to_fall_back(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester, fake_openai.base_url, [BACKUP], samples=1)
    fake_openai.respond = lambda body: Reply(400, {"error": {"message": "bad request"}})
    pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert [r.body["model"] for r in fake_openai.chat_requests] == [PRIMARY]
    assert [r["error"] for r in ep.results(root)] == ["refused_by_endpoint"]
