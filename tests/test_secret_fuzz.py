"""Fuzz: fake secrets planted at random in everything a recording touches never reach a cassette, a report, the
output or `promptvcr scan`'s findings. Deterministic: the seed is fixed, so a failure reproduces."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from harness.cli import _scan as scan
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion


def _token(rng: random.Random, n: int) -> str:
    # letters and digits mixed, as real keys are (scan.py ignores all-letter or masked strings)
    chars = [rng.choice(string.ascii_letters + string.digits) for _ in range(n - 2)]
    return "".join(chars) + rng.choice(string.ascii_letters) + rng.choice(string.digits)


def _secrets(rng: random.Random) -> list[str]:
    prefix = rng.choice(["sk-", "sk-proj-", "sk-svcacct-", "sk-admin-"])
    return [prefix + _token(rng, 40), "org-" + _token(rng, 24), "proj_" + _token(rng, 24)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planted_secrets_survive_nowhere(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    key, org, project = _secrets(rng)
    echoed = _secrets(rng)  # what the server says back: other keys, in other places
    monkeypatch.setenv("PVCR_FUZZ_KEY", key)
    monkeypatch.setenv("OPENAI_ORG_ID", org)
    monkeypatch.setenv("OPENAI_PROJECT_ID", project)
    root = ep.init_project(pytester.path)
    cases = ep.write_cases(root, "c", [ep.json_case("alpha", min_pass_rate=1), ep.json_case("beta", min_pass_rate=1)])
    ep.write_eval(
        root, "fuzz", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=4,
        endpoint={"api_key_env": "PVCR_FUZZ_KEY", "max_retries": 0},
    )  # fmt: skip
    planted = [key, org, project, *echoed]

    def respond(body: dict[str, Any]) -> Reply:
        secret = rng.choice(planted)
        where = rng.choice(["header", "content", "field", "error", "cookie", "url"])
        if where == "error":
            return Reply(rng.choice([400, 401, 403]), {"error": {"message": f"Incorrect API key provided: {secret}"}})
        answer = completion(f'{{"n": 1, "note": "{secret}"}}' if where == "content" else '{"n": 1}', model="m")
        if where == "field":
            answer["system_fingerprint"] = f"Bearer {secret}"
        headers = {f"x-{rng.choice(['debug', 'trace', 'echo'])}": secret} if where == "header" else {}
        if where == "cookie":
            headers["set-cookie"] = f"session={secret}; HttpOnly"
        if where == "url":  # a key in a URL, as gateways that take it in the query string write it back
            headers["link"] = f"<https://gateway.invalid/v1/models?api-key={secret}>; rel=related"
            answer["choices"][0]["message"]["content"] = f'{{"n": 1, "docs": "https://gateway.invalid/?key={secret}"}}'
        return Reply(body=answer, headers=headers | {"openai-organization": org, "openai-project": project})

    fake_openai.respond = respond
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-rA", "-p", "no:cacheprovider")
    replayed = pytester.runpytest("evals", "-rA", "-p", "no:cacheprovider")
    sent = fake_openai.chat_requests
    assert len(sent) == 8 and sent[0].headers["authorization"] == f"Bearer {key}"  # the key really was used
    assert sent[0].headers["openai-organization"] == org
    places = {"output": recorded.stdout.str() + recorded.stderr.str() + replayed.stdout.str()}
    for folder in ("cassettes", "reports"):
        places |= {str(path): text for path, text in ep.texts_under(root / folder).items()}
    leaks = [f"{secret[:8]}… in {where}" for where, text in places.items() for secret in planted if secret in text]
    assert leaks == []
    assert scan.main([str(root / "cassettes"), str(root / "reports")]) == 0
