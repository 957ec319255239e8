"""Personal data: masked before cassettes and reports, and replay still matches the masked requests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.record._redaction import compile_rules, mask_json_text
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

EMAIL = "ada.lovelace@example.org"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"  # a test card number: passes Luhn


def test_builtin_rules_mask_what_they_name_and_leave_the_rest() -> None:
    redactor = compile_rules(["email", "phone", "card"])
    text = f"Write to {EMAIL}, call {PHONE}, pay with {CARD}; order 1234567890123 on 2024-08-06 costs 12.50"
    masked = redactor.text(text)
    assert masked == (
        "Write to [REDACTED:email], call [REDACTED:phone], pay with [REDACTED:card]; "
        "order 1234567890123 on 2024-08-06 costs 12.50"
    )
    custom = compile_rules([{"name": "ticket", "pattern": "TCK-[0-9]+"}])
    assert custom.text("see TCK-1234") == "see [REDACTED:ticket]"
    with pytest.raises(ValueError, match="unknown redaction rule 'ssn'"):
        compile_rules(["ssn"])


@pytest.mark.parametrize("opening", [": OPENROUTER PROCESSING\n\n", "event: message\n", "id: 1\nretry: 500\n"])
def test_a_stream_is_masked_chunk_by_chunk_whatever_its_first_line(opening: str) -> None:
    redactor = compile_rules(["email", {"name": "stamp", "pattern": "[0-9]{10}"}])  # it would hit `created` too
    chunks = [
        {"created": 1_790_000_000, "choices": [{"index": 0, "delta": {"content": f"mail {EMAIL} at 1234567890"}}]}
    ]
    sse = opening + "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    masked = mask_json_text(redactor, sse)
    datas = [json.loads(line[5:]) for line in masked.splitlines() if line.startswith("data: {")]
    assert [d["created"] for d in datas] == [1_790_000_000]  # the chunk's framing kept: a replay reads it back
    assert datas[0]["choices"][0]["delta"]["content"] == "mail [REDACTED:email] at [REDACTED:stamp]"
    assert masked.startswith(opening) and masked.endswith("data: [DONE]\n\n")
    # text with a `data:` line among others is text: masked whole, numbers of its JSON too
    text = f'note {EMAIL}\ndata: {{"n": 1234567890}}'
    assert mask_json_text(redactor, text) == 'note [REDACTED:email]\ndata: {"n": [REDACTED:stamp]}'


def _texts(root: Path) -> str:
    return "\n".join(text for folder in ("cassettes", "reports") for text in ep.texts_under(root / folder).values())


def test_record_masks_prompts_and_answers_and_replay_matches(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = ep.init_project(pytester.path)
    case = {
        "id": "support",
        "vars": {"email": EMAIL, "phone": PHONE},
        "messages": [{"role": "user", "content": "I am {{ email }}, phone {{ phone }}. Summarise my ticket."}],
        "expect": [{"contains": "[REDACTED:email]"}],  # checks see the masked answer, live and in replay alike
    }
    cases = ep.write_cases(root, "support", [case])
    ep.write_eval(
        root, "support", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=2,
        redact=["email", "phone", "card"],
    )  # fmt: skip

    def respond(body: dict[str, Any]) -> Reply:
        return Reply(body=completion(f"Dear {EMAIL}, we will call {PHONE}; card {CARD} is on file.", model="m"))

    fake_openai.respond = respond
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    sent = fake_openai.chat_requests
    assert len(sent) == 2 and EMAIL in sent[0].body["messages"][0]["content"]  # the model did get the real prompt
    first = ep.results(root)
    written = _texts(root)
    for secret in (EMAIL, PHONE, CARD):
        assert secret not in written
        assert secret not in recorded.stdout.str()
    interactions = yaml.safe_load((root / "cassettes" / "support" / "v" / "support.yaml").read_text())["interactions"]
    assert "[REDACTED:email]" in interactions[0]["request"]["body"]
    assert "[REDACTED:card]" in interactions[0]["response"]["body"]["string"]

    replayed = pytester.runpytest("evals", "-p", "no:cacheprovider")
    assert replayed.ret == pytest.ExitCode.OK, replayed.stdout.str()
    assert len(fake_openai.chat_requests) == 2  # matched in its masked form: nothing sent
    strip = [{k: v for k, v in row.items() if k != "replayed"} for row in first]
    assert strip == [{k: v for k, v in row.items() if k != "replayed"} for row in ep.results(root)]


def test_a_bad_redaction_rule_is_an_input_error(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = ep.init_project(pytester.path)
    cases = ep.write_cases(root, "c", [ep.json_case("a")])
    ev = ep.write_eval(root, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    doc = yaml.safe_load(ev.read_text()) | {"redact": ["email", {"name": "bad", "pattern": "("}]}
    ev.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "at /redact/1 invalid pattern for redaction rule 'bad'" in result.stdout.str()
    assert fake_openai.chat_requests == []


def test_every_run_writes_a_metadata_only_log(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    import json

    root = ep.init_project(pytester.path)
    cases = ep.write_cases(root, "c", [ep.json_case("a")])
    ep.write_eval(root, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=2)
    fake_openai.respond = lambda body: Reply(body=completion(f'{{"secret": "{EMAIL}"}}', model="m"))
    pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    lines = (ep.latest(root) / "calls.jsonl").read_text().splitlines()
    calls = [json.loads(line) for line in lines]
    assert [c["sample"] for c in calls] == [0, 1]
    assert {c["outcome"] for c in calls} == {"passed"} and all(c["latency_ms"] > 0 for c in calls)
    assert all(c["prompt_tokens"] == 12 for c in calls)  # the fake server's usage
    assert EMAIL not in "\n".join(lines) and "output" not in calls[0] and "messages" not in calls[0]


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_status_matches_requests_as_replay_does_masked(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    """With `redact: [email]` and an email in the prompt, a fresh recording is `ok`, not "changed" forever: status
    and replay match by one rule (harness.record._cassettes.request_key). The judge's cassette, masked too, likewise."""
    root = ep.init_project(pytester.path)
    case = {
        "id": "support",
        "vars": {"email": EMAIL},
        "messages": [{"role": "user", "content": "I am {{ email }}. Answer with JSON."}],
        "expect": [{"json_valid": True}, {"judge": {"rubric": "Answers the user.", "threshold": 0.5}}],
    }
    cases = ep.write_cases(root, "support", [case])
    ep.write_eval(
        root, "support", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=2,
        redact=["email"], judge={"model": "judge-model"},
    )  # fmt: skip

    def respond(body: dict[str, Any]) -> Reply:
        if body["model"] == "judge-model":
            return Reply(body=completion('{"score": 1, "reason": "fine"}', model="judge-model"))
        return Reply(body=completion(f'{{"to": "{EMAIL}"}}', model="m"))

    fake_openai.respond = respond
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    assert EMAIL not in _texts(root)
    status = pytester.run(sys.executable, "-m", "harness", "status")
    out = status.stdout.str()
    assert status.ret == 0, out
    assert "changed" not in out
    # and an edit is still seen: the masked prompt differs
    ep.write_cases(root, "support", [{**case, "messages": [{"role": "user", "content": "I am {{ email }}!"}]}])
    edited = pytester.run(sys.executable, "-m", "harness", "status")
    assert edited.ret == 1
    assert "changed" in edited.stdout.str() and "prompt" in edited.stdout.str()
