"""Multi-turn cases (`turns:`, `expect_each:`), end to end against the fake OpenAI server on 127.0.0.1.

A conversation is recorded turn by turn — each later request carries the answer before it as the assistant message,
checked here from what the server itself answered — and replayed offline into the very same rows. Expected values
(summed tokens, latencies, which turn failed which check) are computed from the server's replies and the cassette
text, never through the harness.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.cli import _main as cli
from harness.load import _evals as evals
from harness.run import _preflight as preflight
from harness.tokens import _models as models
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion, streamed

QUIET = ("-p", "no:cacheprovider")
RECORD = ("--record-mode", "once")
SYSTEM = {"role": "system", "content": "You are a travel agent."}
TURNS = ["Name a city in {{ country }}.", "What is it famous for?", "Thanks, bye!"]
RENDERED = ["Name a city in Italy.", "What is it famous for?", "Thanks, bye!"]


class Script:
    """Answers each request with a unique text naming its turn (the number of user messages); keeps every reply."""

    def __init__(self, texts: dict[int, str] | None = None, status: dict[int, int] | None = None) -> None:
        self.texts = texts or {}
        self.status = status or {}  # turn → an HTTP error status to answer it with
        self.replies: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (request, reply body)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        turn = sum(m["role"] == "user" for m in body["messages"])
        if turn in self.status:
            return Reply(self.status[turn], {"error": {"message": f"no turn {turn}"}})
        with self._lock:
            number = len(self.replies)
            text = f"{self.texts.get(turn, 'answer')} #{number} (turn {turn})"
            reply = completion(text, model=body["model"], prompt_tokens=10 * turn + number, completion_tokens=turn)
            self.replies.append((body, reply))
        return Reply(body=reply)


def _project(root: Path, base_url: str, case: dict[str, Any], samples: int = 2, **extra: Any) -> None:
    ep.init_project(root)
    case_file = ep.write_cases(root, "talk", [case], defaults={"max_tokens": 30})
    variants = {"v": {"model": "m-chat"}}
    ep.write_eval(root, "talk", base_url=base_url, cases=[case_file], variants=variants, samples=samples, **extra)


def _conversation(**extra: Any) -> dict[str, Any]:
    return {"id": "trip", "vars": {"country": "Italy"}, "messages": [SYSTEM], "turns": TURNS, **extra}


def _content(reply: dict[str, Any]) -> str:
    return str(reply["choices"][0]["message"]["content"])


def test_a_conversation_records_every_turn_after_the_answer_before_and_replays_the_same_rows(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester.path, fake_openai.base_url, _conversation(expect=[{"contains": "turn 3"}]))
    script = Script()
    fake_openai.respond = script
    recorded = pytester.runpytest("evals", *QUIET, *RECORD)
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    assert len(fake_openai.chat_requests) == 2 * 3  # two samples, three turns each
    answers = {_content(reply): request for request, reply in script.replies}
    firsts = [request for request, _ in script.replies if len(request["messages"]) == 2]
    assert [r["messages"] for r in firsts] == [[SYSTEM, {"role": "user", "content": RENDERED[0]}]] * 2
    for request, _ in script.replies:
        messages = request["messages"]
        for turn in range(1, (len(messages) - 1) // 2):  # every answer before the last user turn
            assistant = messages[2 * turn]
            # the previous turn's answer as the server sent it, after exactly the request it answered
            assert assistant["role"] == "assistant"
            assert answers[assistant["content"]]["messages"] == messages[: 2 * turn]
            assert messages[2 * turn + 1] == {"role": "user", "content": RENDERED[turn]}

    rows = ep.results(pytester.path)
    assert len(rows) == 2  # one row per sample, not per turn
    cassette = ep.interactions(pytester.path / "cassettes" / "talk" / "v" / "trip.yaml")
    assert len(cassette) == 6
    for row in rows:
        last = next(reply for _, reply in script.replies if _content(reply) == row["output"])
        chain = [last]
        while len(chain) < 3:  # back from the last answer to the first, by the assistant message each request holds
            request = answers[_content(chain[0])]
            earlier = request["messages"][-2]["content"]
            chain.insert(0, next(reply for _, reply in script.replies if _content(reply) == earlier))
        assert row["outcome"] == "passed" and "turn 3" in row["output"]
        assert int(row["prompt_tokens"]) == sum(r["usage"]["prompt_tokens"] for r in chain)
        assert int(row["completion_tokens"]) == 1 + 2 + 3
        texts = {_content(r) for r in chain}
        latencies = [
            float(i["response"]["headers"]["x-promptvcr-latency-ms"][0])
            for i in cassette
            if _content(json.loads(i["response"]["body"]["string"])) in texts
        ]
        assert len(latencies) == 3
        assert float(row["latency_ms"]) == pytest.approx(sum(latencies))

    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.OK, replayed.stdout.str()
    assert len(fake_openai.chat_requests) == 6, "the replay reached the server"
    again = ep.results(pytester.path)
    assert {r["replayed"] for r in again} == {"True"}
    assert ep.without(again, "replayed") == ep.without(rows, "replayed")


def test_expect_checks_the_last_answer_and_expect_each_every_answer(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(
        pytester.path,
        fake_openai.base_url,
        _conversation(expect=[{"contains": "ciao"}, {"contains": "gelato"}], expect_each=[{"contains": "ciao"}]),
        samples=1,
    )
    fake_openai.respond = Script({1: "ciao Roma", 2: "the Colosseum", 3: "ciao ciao"})
    result = pytester.runpytest("evals", *QUIET, *RECORD)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (row,) = ep.results(pytester.path)
    # `expect` saw only the last answer (which says ciao, not gelato); `expect_each` every one (turn 2 lacks ciao)
    assert row["outcome"] == "failed"
    assert row["failed_checks"] == "contains;turn 2: contains"
    reasons = row["reasons"].split(" | ")
    assert [r.split(":")[0] for r in reasons] == ["contains", "turn 2"]
    assert "gelato" in reasons[0] and "ciao" in reasons[1]
    assert row["output"].startswith("ciao ciao")
    assert "failed_checks" in ep.read_csv(ep.latest(pytester.path) / "results.csv")[0]


def test_a_turn_without_an_answer_errors_the_sample_and_sends_no_later_turn(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester.path, fake_openai.base_url, _conversation(), samples=2)
    fake_openai.respond = Script(status={2: 400})
    recorded = pytester.runpytest("evals", *QUIET, *RECORD)
    assert recorded.ret == pytest.ExitCode.TESTS_FAILED
    turns_sent = sorted(sum(m["role"] == "user" for m in r.body["messages"]) for r in fake_openai.chat_requests)
    assert turns_sent == [1, 1, 2, 2]  # turn 3 never sent
    rows = ep.results(pytester.path)
    assert {r["error"] for r in rows} == {"refused_by_endpoint"}
    assert all(r["error_message"].startswith("turn 2 of 3: HTTP 400") for r in rows)
    # the refusal (not a transient failure) is recorded, so the replay errors the same way, offline
    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    assert len(fake_openai.chat_requests) == 4
    assert ep.without(ep.results(pytester.path), "replayed", "latency_ms") == ep.without(rows, "replayed", "latency_ms")


def test_a_fallback_answers_the_turn_its_model_failed_and_the_conversation_goes_on(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    script = Script()

    def respond(body: dict[str, Any]) -> Reply:
        turn = sum(m["role"] == "user" for m in body["messages"])
        if body["model"] == "m-chat" and turn == 2:
            return Reply(503, {"error": {"message": "overloaded"}})
        return script(body)

    fake_openai.respond = respond
    ep.init_project(pytester.path)
    case_file = ep.write_cases(pytester.path, "talk", [_conversation()], defaults={"max_tokens": 30})
    ep.write_eval(
        pytester.path, "talk", base_url=fake_openai.base_url, cases=[case_file], samples=1,
        variants={"v": {"model": "m-chat", "fallback": ["m-backup"]}}, endpoint={"max_retries": 0},
    )  # fmt: skip
    result = pytester.runpytest("evals", *QUIET, *RECORD)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    models = [
        (r.body["model"], sum(m["role"] == "user" for m in r.body["messages"])) for r in fake_openai.chat_requests
    ]
    assert models == [("m-chat", 1), ("m-chat", 2), ("m-backup", 2), ("m-chat", 3)]
    backup_answer = _content(script.replies[1][1])
    assert fake_openai.chat_requests[-1].body["messages"][-2] == {"role": "assistant", "content": backup_answer}
    (row,) = ep.results(pytester.path)
    assert row["answered_by"] == "fallback:m-backup" and row["outcome"] == "passed"
    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.OK
    assert ep.without(ep.results(pytester.path), "replayed") == ep.without([row], "replayed")


# ---------------------------------------------------------------------------------------------------- pre-flight


def _plan(root: Path, case: dict[str, Any], model: str = "gpt-4o-mini", **extra: Any) -> preflight.CallPlan:
    ep.init_project(root)
    case_file = ep.write_cases(root, "talk", [case], defaults={"max_tokens": 30})
    ep.write_eval(root, "talk", base_url="http://127.0.0.1:9/v1", cases=[case_file], variants={"v": {"model": model}})
    (run,) = evals.load(root / "evals" / "talk.yaml", root).runs
    return preflight.plan(run)


def test_the_preflight_counts_every_turn_with_each_earlier_answer_at_its_max_tokens(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _conversation())
    messages: list[dict[str, Any]] = [SYSTEM]
    expected = []
    for number, text in enumerate(RENDERED):
        if number:
            messages.append({"role": "assistant", "content": ""})
        messages.append({"role": "user", "content": text})
        body = {"model": "gpt-4o-mini", "messages": list(messages), "max_tokens": 30}
        expected.append(harness.prompt_tokens(body) + 30 * number)
    assert plan.turn_prompts == tuple(expected)
    assert plan.prompt_tokens == sum(expected) and plan.calls == 3
    (row,) = preflight.by_variant([plan])
    assert row["calls"] == 3 and row["max_output_tokens"] == 90 and row["prompt_tokens"] == sum(expected)
    entry = models.lookup("gpt-4o-mini")
    assert entry is not None and entry.price is not None
    price = entry.price
    assert plan.unit_cost_usd == pytest.approx((sum(expected) * price.input + 90 * price.output) / 1e6)


def test_a_conversation_whose_last_turn_cannot_fit_is_refused_before_anything_is_sent(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    # gpt-4o-mini's window is 128,000 tokens: each answer of 16,000 fits, eight of them before turn 9 do not
    case = {"id": "long", "turns": list("abcdefghi"), "max_tokens": 16000}
    ep.init_project(pytester.path)
    case_file = ep.write_cases(pytester.path, "talk", [case], defaults={})
    variants = {"v": {"model": "gpt-4o-mini"}}
    ep.write_eval(pytester.path, "talk", base_url=fake_openai.base_url, cases=[case_file], variants=variants)
    result = pytester.runpytest("evals", *QUIET, *RECORD)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert fake_openai.chat_requests == []
    (row,) = ep.results(pytester.path)
    assert row["error"] == "context_overflow"
    assert "turn 9 of the conversation" in row["error_message"]
    (pytester.path / "one").mkdir()
    one = _plan(pytester.path / "one", {"id": "one", "turns": ["a"], "max_tokens": 16000})
    assert not one.overflow and one.calls == 1


# ---------------------------------------------------------------------------------------------------- bad input

BAD = {
    "turns-not-a-list": ("    turns: hello\n", "/cases/0/turns", "expected array"),
    "turn-not-a-string": ("    turns:\n      - {role: user}\n", "/cases/0/turns/0", "expected string"),
    "no-turns": ("    turns: []\n", "/cases/0/turns", "should be non-empty"),
    "turn-undefined-var": ("    turns:\n      - hi\n      - '{{ nobody }}'\n", "/cases/0/turns/1", "undefined"),
    "each-unknown-check": (
        "    turns: [hi]\n    expect_each:\n      - containz: x\n",
        "/cases/0/expect_each/0/containz",
        "unknown check",
    ),
    "each-without-turns": (
        "    messages: [{role: user, content: hi}]\n    expect_each:\n      - contains: x\n",
        "/cases/0/expect_each",
        "has no `turns`",
    ),
    "each-judge": (
        "    turns: [hi]\n    expect_each:\n      - judge: {rubric: nice, threshold: 0.5, model: j}\n",
        "/cases/0/expect_each/0/judge",
        "judge check",
    ),
    "judge-in-a-conversation": (
        "    turns: [hi, again]\n    expect:\n      - judge: {rubric: nice, threshold: 0.5, model: j}\n",
        "/cases/0/expect/0/judge",
        "not a case with `turns`",
    ),
    "each-not-a-list": ("    turns: [hi]\n    expect_each: {contains: x}\n", "/cases/0/expect_each", "expected array"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_turns_or_expect_each_stops_the_run_at_its_line_and_pointer(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, name: str
) -> None:
    tail, pointer, words = BAD[name]
    text = "cases:\n  - id: talk\n    model: fake-model\n" + tail
    ep.init_project(pytester.path)
    (pytester.path / "cases" / "talk.yaml").write_text(text, encoding="utf-8")
    ep.write_eval(pytester.path, "talk", base_url=fake_openai.base_url, cases=["cases/talk.yaml"], variants={"v": {}})
    result = pytester.runpytest("evals", *QUIET, *RECORD)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    key = pointer.split("/")[3]  # turns or expect_each: the line it is written on, or its item's
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines, start=1) if t.strip().startswith(f"{key}:"))
    if pointer.count("/") > 3 and not lines[line - 1].rstrip().endswith("]"):
        line += int(pointer.split("/")[4]) + 1
    assert f"cases/talk.yaml:{line}: at {pointer} " in out, out
    assert words in out, out
    assert fake_openai.chat_requests == []
    assert yaml.safe_load(text)  # the file is valid YAML: the schema or the loader found the problem


# ---------------------------------------------------------------------------------------------------- matching


def test_an_edited_later_turn_is_flagged_by_status_and_new_episodes_records_only_that_turn(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _project(pytester.path, fake_openai.base_url, _conversation(), samples=2)
    fake_openai.respond = Script()
    assert pytester.runpytest("evals", *QUIET, *RECORD).ret == pytest.ExitCode.OK
    monkeypatch.chdir(pytester.path)
    assert cli.main(["status"]) == 0
    assert "all 1 recordings match" in capsys.readouterr().out
    case_file = pytester.path / "cases" / "talk.yaml"
    case_file.write_text(case_file.read_text(encoding="utf-8").replace("Thanks, bye!", "Bye now!"), encoding="utf-8")
    assert cli.main(["status"]) == 1
    out = capsys.readouterr().out
    assert "changed    trip[v]  turn 3 of 3 differs from the recording" in out and "6 call(s)" in out
    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    assert {r["error"] for r in ep.results(pytester.path)} == {"missing_recording"}
    assert all(r["error_message"].startswith("turn 3 of 3: no recording") for r in ep.results(pytester.path))
    sent = len(fake_openai.chat_requests)
    # turns 1 and 2 still match their recordings: only the edited turn is sent, once per sample
    assert pytester.runpytest("evals", *QUIET, "--record-mode", "new_episodes").ret == pytest.ExitCode.OK
    assert [r.body["messages"][-1]["content"] for r in fake_openai.chat_requests[sent:]] == ["Bye now!"] * 2
    assert pytester.runpytest("evals", *QUIET).ret == pytest.ExitCode.OK


def test_an_earlier_answer_goes_back_as_the_cassette_keeps_it_masked(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester.path, fake_openai.base_url, _conversation(), samples=1, redact=["email"])
    fake_openai.respond = Script({1: "write to ada@example.org"})
    assert pytester.runpytest("evals", *QUIET, *RECORD).ret == pytest.ExitCode.OK
    later = [r.body for r in fake_openai.chat_requests if len(r.body["messages"]) > 2]
    assert later and all("ada@example.org" not in json.dumps(body) for body in later)
    assert "[REDACTED:email]" in later[0]["messages"][2]["content"]
    text = (pytester.path / "cassettes" / "talk" / "v" / "trip.yaml").read_text(encoding="utf-8")
    assert "ada@example.org" not in text
    rows = ep.results(pytester.path)
    assert pytester.runpytest("evals", *QUIET).ret == pytest.ExitCode.OK  # every turn's request matched again
    assert ep.without(ep.results(pytester.path), "replayed") == ep.without(rows, "replayed")


def test_a_budget_holds_a_whole_conversation_not_its_first_turn(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    plan = _plan(pytester.path, _conversation())  # the project, on gpt-4o-mini, priced
    entry = models.lookup("gpt-4o-mini")
    assert entry is not None and entry.price is not None and plan.unit_cost_usd is not None
    first_turn = (plan.turn_prompts[0] * entry.price.input + 30 * entry.price.output) / 1e6
    eval_path = pytester.path / "evals" / "talk.yaml"
    doc = yaml.safe_load(eval_path.read_text(encoding="utf-8"))
    doc["endpoint"]["base_url"] = fake_openai.base_url
    eval_path.write_text(yaml.safe_dump(doc | {"budget_usd": (first_turn + plan.unit_cost_usd) / 2}), "utf-8")
    result = pytester.runpytest("evals", *QUIET, *RECORD)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "exceeds budget_usd" in result.stdout.str()
    assert fake_openai.chat_requests == []


@pytest.mark.slow  # a promptvcr subprocess, killed
def test_a_conversation_killed_mid_way_resumes_without_paying_a_turn_twice(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    import signal
    import subprocess
    import sys
    import time

    _project(pytester.path, fake_openai.base_url, _conversation(), samples=2)
    script, hold = Script(), threading.Event()

    def respond(body: dict[str, Any]) -> Reply:
        if sum(m["role"] == "user" for m in body["messages"]) == 2:
            hold.wait(30)  # turn 2 hangs: the run is killed with every turn 1 answered and logged
        return script(body)

    fake_openai.respond = respond
    command = [sys.executable, "-m", "harness", "run", "talk"]
    run = subprocess.Popen([*command, "--record-mode", "once", "--", *QUIET], cwd=pytester.path)
    deadline = time.monotonic() + 60
    while len(fake_openai.chat_requests) < 4 and time.monotonic() < deadline:  # both samples' turns 1 and 2
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    hold.set()
    firsts = [r for r in fake_openai.chat_requests if len(r.body["messages"]) == 2]
    assert len(firsts) == 2
    sent = len(fake_openai.chat_requests)
    done = subprocess.run([*command, "--resume", "--", *QUIET], cwd=pytester.path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    again = [sum(m["role"] == "user" for m in r.body["messages"]) for r in fake_openai.chat_requests[sent:]]
    assert sorted(again) == [2, 2, 3, 3]  # the logged turn 1 answers were replayed, not bought again
    rows = ep.results(pytester.path)
    assert len(rows) == 2 and {r["outcome"] for r in rows} == {"passed"}
    assert len(ep.interactions(pytester.path / "cassettes" / "talk" / "v" / "trip.yaml")) == 6
    replayed = subprocess.run([*command, "--", *QUIET], cwd=pytester.path, capture_output=True, text=True)
    assert replayed.returncode == 0, replayed.stdout
    assert ep.without(ep.results(pytester.path), "replayed") == ep.without(rows, "replayed")


def test_a_cached_fallback_continues_the_recorded_conversation_turn_by_turn(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    def project(samples: int) -> None:
        ep.init_project(pytester.path)
        case_file = ep.write_cases(pytester.path, "talk", [_conversation()], defaults={"max_tokens": 30})
        ep.write_eval(
            pytester.path, "talk", base_url=fake_openai.base_url, cases=[case_file], samples=samples,
            variants={"v": {"model": "m-chat", "fallback": ["cached"]}}, endpoint={"max_retries": 0},
        )  # fmt: skip

    project(samples=1)
    fake_openai.respond = Script()
    assert pytester.runpytest("evals", *QUIET, *RECORD).ret == pytest.ExitCode.OK
    (recorded,) = ep.results(pytester.path)
    project(samples=2)  # a second sample, recorded while the endpoint is down
    fake_openai.respond = lambda body: Reply(503, {"error": {"message": "down"}})
    sent = len(fake_openai.chat_requests)
    assert pytester.runpytest("evals", *QUIET, "--record-mode", "new_episodes").ret == pytest.ExitCode.OK
    # each turn failed live and was answered by the recorded answer to that very request: the conversation went on
    # as recorded, so every later turn's request had a recording to fall back on
    assert len(fake_openai.chat_requests) - sent == 3
    new = next(r for r in ep.results(pytester.path) if r["sample"] == "1")
    assert new["answered_by"] == "cached" and new["outcome"] == "passed"
    assert new["output"] == recorded["output"] and float(new["cost_usd"]) == 0.0


def test_a_streamed_conversation_sends_back_each_assembled_answer_and_replays_the_same_rows(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester.path, fake_openai.base_url, _conversation(stream=True, stream_options={"include_usage": True}))
    lock, count = threading.Lock(), [0]

    def respond(body: dict[str, Any]) -> Reply:
        turn = sum(m["role"] == "user" for m in body["messages"])
        with lock:
            count[0] += 1
            number = count[0]
        return streamed([f"part {number} ", f"of turn {turn}"], usage={"prompt_tokens": 5, "completion_tokens": 4})

    fake_openai.respond = respond
    assert pytester.runpytest("evals", *QUIET, *RECORD).ret == pytest.ExitCode.OK
    later = [r.body for r in fake_openai.chat_requests if len(r.body["messages"]) > 2]
    assert len(later) == 4 and all(body["stream"] is True for body in later)
    for body in later:  # the previous answer, joined from its chunks, then the next turn
        assistant, user = body["messages"][-2:]
        assert re.fullmatch(r"part \d+ of turn \d", assistant["content"]) and assistant["role"] == "assistant"
        before = len(body["messages"]) // 2 - 1  # the turns answered before this request
        assert assistant["content"].endswith(f"of turn {before}")
        assert user == {"role": "user", "content": RENDERED[before]}
    rows = ep.results(pytester.path)
    assert all(r["output"].endswith("of turn 3") and int(r["completion_tokens"]) == 12 for r in rows)
    assert pytester.runpytest("evals", *QUIET).ret == pytest.ExitCode.OK
    assert ep.without(ep.results(pytester.path), "replayed") == ep.without(rows, "replayed")


def test_a_turn_answered_with_tool_calls_ends_the_conversation_and_fails_the_sample(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    _project(pytester.path, fake_openai.base_url, _conversation(tools=[weather]), samples=1)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    reply = completion("", model="m-chat")
    reply["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [call]}
    reply["choices"][0]["finish_reason"] = "tool_calls"
    fake_openai.respond = lambda body: Reply(body=reply)
    recorded = pytester.runpytest("evals", *QUIET, *RECORD)
    assert recorded.ret == pytest.ExitCode.TESTS_FAILED, recorded.stdout.str()
    assert len(fake_openai.chat_requests) == 1  # turns 2 and 3 would send no tool result: never sent
    (row,) = ep.results(pytester.path)
    assert row["outcome"] == "failed" and row["failed_checks"] == "turn 1: conversation"
    assert "answered with tool calls (get_weather), so turns 2–3 were not sent" in row["reasons"]
    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    assert len(fake_openai.chat_requests) == 1
    assert ep.without(ep.results(pytester.path), "replayed") == ep.without([row], "replayed")
    monkeypatch.chdir(pytester.path)
    capsys.readouterr()
    assert cli.main(["status"]) == 0  # the conversation ended where it was recorded ending
    assert "all 1 recordings match" in capsys.readouterr().out
