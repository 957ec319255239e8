"""LLM-as-judge: ``harness.checks._judge`` on its own, then end to end with the fake server as both the model
and the judge.

The fake server tells the two apart by the rubric, which only a judge request carries. Its judge scores each answer
from a fixed table, so what a sample's verdict should be is known in advance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.checks import _builtins as checks
from harness.checks import _judge as judge
from harness.errors import InputError
from harness.load import _evals as evals
from harness.tokens import _cost as cost
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion, cycling
from tests.test_inputs import assert_problem, line_of

RUBRIC = "The answer names a programming language."
THRESHOLD = 0.7
JUDGE_MODEL = "gpt-4o-mini"  # priced in the registry, so the judge's cost can be checked
ANSWER_MODEL = "gpt-4.1-mini"
SCORES = {"Python, of course.": 0.9, "No idea.": 0.1, "Rust.": 0.7, "Dunno.": 0.3}  # 0.7: the threshold passes
ANSWERS = list(SCORES)
JUDGE_USAGE = {"prompt_tokens": 300, "completion_tokens": 40}
ANSWER_USAGE = {"prompt_tokens": 12, "completion_tokens": 7}  # fakeserver.completion's defaults
EVAL = "judged"
CASE = "lang"
RECORD = ("--record-mode", "once")
QUIET = ("-p", "no:cacheprovider")


# ---------------------------------------------------------------------------------------------------- judge.py


def _spec(threshold: float = THRESHOLD, path: str | None = None) -> checks.JudgeSpec:
    return checks.JudgeSpec(RUBRIC, threshold, None, path)


def _verdict(content: str, finish_reason: str = "stop") -> checks.CheckResult:
    return judge.verdict(_spec(), completion(content, finish_reason=finish_reason))


def test_request_asks_for_a_strict_json_verdict_with_the_rubric_conversation_and_answer() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a language."}]
    body = judge.request_body(JUDGE_MODEL, RUBRIC, messages, "Rust.")
    assert body["model"] == JUDGE_MODEL
    assert body["temperature"] == 0
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "judgement", "schema": judge.VERDICT_SCHEMA, "strict": True},
    }
    schema = judge.VERDICT_SCHEMA
    assert schema["required"] == ["score", "reason"] and schema["additionalProperties"] is False
    system, user = body["messages"]
    assert system == {"role": "system", "content": judge.SYSTEM}
    assert user["role"] == "user"
    text = user["content"]
    assert f"<rubric>\n{RUBRIC}\n</rubric>" in text
    assert "<answer>\nRust.\n</answer>" in text
    assert text.index("[system]\nBe brief.") < text.index("[user]\nName a language.") < text.index("<rubric>")


def test_the_judge_reads_content_parts_and_tool_calls_as_the_conversation_said_them() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    asked = [{"type": "text", "text": "Which language is on this sign?"}, image, {"type": "text", "text": "Briefly."}]
    calls = [{"id": "call_1", "type": "function", "function": {"name": "ocr", "arguments": '{"lang": "fr"}'}}]
    messages = [
        {"role": "user", "content": asked},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "Bonjour"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't read signs."}]},
    ]
    text = judge.request_body(JUDGE_MODEL, RUBRIC, messages, "French.")["messages"][1]["content"]
    conversation = text[text.index("<conversation>\n") + 15 : text.index("\n</conversation>")]
    assert conversation.split("\n\n") == [
        "[user]\nWhich language is on this sign?\n[image]\nBriefly.",
        f"[assistant]\n{json.dumps(calls)}",
        "[tool]\nBonjour",
        "[assistant]\nI can't read signs.",
    ]


@pytest.mark.parametrize(
    ("score", "passed", "reason"),
    [
        (0.9, True, "score 0.9 ≥ 0.7: names Python"),
        (0.7, True, "score 0.7 ≥ 0.7: names Python"),
        (0.69, False, "score 0.69 < 0.7: names Python"),
        (0, False, "score 0 < 0.7: names Python"),
        (1, True, "score 1 ≥ 0.7: names Python"),
    ],
)
def test_verdict_passes_at_the_threshold_and_gives_the_judges_reason(score: float, passed: bool, reason: str) -> None:
    result = _verdict(json.dumps({"score": score, "reason": " names Python "}))
    assert result == checks.CheckResult("judge", passed, reason)


@pytest.mark.parametrize(
    ("content", "finish_reason", "reason"),
    [
        ("Looks good to me.", "stop", 'the judge did not answer with a JSON object: "Looks good to me."'),
        ("", "stop", 'the judge did not answer with a JSON object: ""'),
        ("[0.9]", "stop", 'the judge did not answer with a JSON object: "[0.9]"'),
        (
            '{"score": 0.9, "rea',
            "length",
            "the judge did not answer with a JSON object (cut off: finish_reason=length)",
        ),
        ('{"score": 1.5, "reason": "x"}', "stop", "the judge's score is not a number from 0 to 1"),
        ('{"score": -0.1, "reason": "x"}', "stop", "the judge's score is not a number from 0 to 1"),
        ('{"score": "0.9", "reason": "x"}', "stop", "the judge's score is not a number from 0 to 1"),
        ('{"score": true, "reason": "x"}', "stop", "the judge's score is not a number from 0 to 1"),
        ('{"score": NaN, "reason": "x"}', "stop", "the judge's score is not a number from 0 to 1"),
        ('{"reason": "x"}', "stop", "the judge's score is not a number from 0 to 1"),
    ],
)
def test_malformed_verdict_fails_the_check_with_a_reason(content: str, finish_reason: str, reason: str) -> None:
    result = _verdict(content, finish_reason)
    assert result.name == "judge"
    assert not result.passed
    assert result.reason.startswith(reason)


def test_verdict_without_a_reason_still_scores() -> None:
    assert _verdict('{"score": 0.8, "reason": ""}') == checks.CheckResult(
        "judge", True, "score 0.8 ≥ 0.7: (the judge gave no reason)"
    )


def test_graded_text_is_the_answer_or_the_value_at_the_path() -> None:
    answer = checks.Answer.parse('{"lang": "Rust", "why": {"fast": true}}', "stop")
    assert judge.graded_text(answer, _spec()) == (answer.content, None)
    assert judge.graded_text(answer, _spec(path="/lang")) == ("Rust", None)
    assert judge.graded_text(answer, _spec(path="/why")) == ('{"fast": true}', None)
    assert judge.graded_text(answer, _spec(path="/nope")) == ("", "'/nope' is not in the answer")
    text = checks.Answer.parse("Rust", "stop")
    assert judge.graded_text(text, _spec(path="/lang")) == ("", "cannot look up '/lang': the answer is not valid JSON")


def test_judge_checks_are_left_out_of_the_deterministic_checks() -> None:
    compiled = [
        checks.compile_check("judge", {"rubric": RUBRIC, "threshold": 0.5}),
        checks.compile_check("contains", "R"),
    ]
    assert compiled[0].args == checks.JudgeSpec(RUBRIC, 0.5, None, None)
    assert [r.name for r in checks.run_checks(compiled, {}, completion("Rust"))] == ["contains"]


# ---------------------------------------------------------------------------------------------------- end to end


def _graded(body: dict[str, Any]) -> str | None:
    """The answer a judge request grades; None for a request to the model under test."""
    user = str(body["messages"][-1]["content"])
    found = re.search(r"<answer>\n(.*)\n</answer>", user, re.DOTALL)
    return found.group(1) if RUBRIC in user and found else None


def _scored(answer: str) -> Reply:
    verdict = json.dumps({"score": SCORES[answer], "reason": f"graded {answer}"})
    return Reply(body=completion(verdict, model=JUDGE_MODEL, **JUDGE_USAGE))


def _serve(fake: FakeOpenAI, judge_reply: Callable[[str], Reply] = _scored) -> None:
    """The model answers ANSWERS in turn; the judge answers ``judge_reply(graded answer)``."""
    model = cycling(ANSWERS)
    fake.respond = lambda body: model(body) if (graded := _graded(body)) is None else judge_reply(graded)


def _judge_requests(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.body for r in fake.chat_requests if _graded(r.body) is not None]


def _write_case(root: Path, expect: list[dict[str, Any]]) -> str:
    case = {
        "id": CASE,
        "min_pass_rate": 0,
        "messages": [{"role": "user", "content": f"case {CASE}: name a programming language"}],
        "expect": expect,
    }
    return ep.write_cases(root, "langs", [case], defaults={"max_tokens": 50})


def _project(
    root: Path, base_url: str, *, check: dict[str, Any] | None = None, judge_config: dict[str, Any] | None = None
) -> Path:
    """One case, one variant, a sample per answer; the eval's judge is JUDGE_MODEL unless ``judge_config`` says."""
    ep.init_project(root)
    case_file = _write_case(root, [{"judge": check or {"rubric": RUBRIC, "threshold": THRESHOLD}}])
    # one request at a time, so that sample i gets ANSWERS[i] (the server answers them in turn)
    extra = {"judge": judge_config or {"model": JUDGE_MODEL}, "limits": {"concurrency": 1}}
    variants = {"v": {"model": ANSWER_MODEL}}
    ep.write_eval(root, EVAL, base_url=base_url, cases=[case_file], variants=variants, samples=len(ANSWERS), **extra)
    return root


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("evals", *QUIET, *args)


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def _by_output(root: Path) -> dict[str, dict[str, str]]:
    rows = ep.results(root)
    assert [r["output"] for r in rows] == ANSWERS
    return {r["output"]: r for r in rows}


def test_judge_grades_every_sample_then_replays_offline(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    _serve(fake_openai)
    recorded = _run(pytester, *RECORD)
    assert recorded.ret == pytest.ExitCode.OK, _output(recorded)
    sent = _judge_requests(fake_openai)
    assert [_graded(body) for body in sent] == ANSWERS  # one judge request per sample, after its answer
    assert len(fake_openai.chat_requests) == 2 * len(ANSWERS)
    assert {body["model"] for body in sent} == {JUDGE_MODEL}

    folder = root / "cassettes" / EVAL / "v"
    assert sorted(p.name for p in folder.iterdir()) == [f"{CASE}.judge.yaml", f"{CASE}.yaml"]
    assert len(ep.interactions(folder / f"{CASE}.judge.yaml")) == len(ANSWERS)
    assert len(ep.interactions(folder / f"{CASE}.yaml")) == len(ANSWERS)
    assert RUBRIC not in (folder / f"{CASE}.yaml").read_text(encoding="utf-8")

    first = _by_output(root)
    for answer, score in SCORES.items():
        row = first[answer]
        passed = score >= THRESHOLD
        said = f"score {score:g} {'≥' if passed else '<'} {THRESHOLD:g}: graded {answer}"
        assert row["judge_reasons"] == said
        assert (row["outcome"], row["failed_checks"], row["reasons"]) == (
            ("passed", "", "") if passed else ("failed", "judge", f"judge: {said}")
        )

    replayed = _run(pytester)
    assert replayed.ret == pytest.ExitCode.OK, _output(replayed)
    assert len(fake_openai.chat_requests) == 2 * len(ANSWERS), "replay reached the server"
    second = ep.results(root)
    assert {r["replayed"] for r in second} == {"True"}
    assert ep.without(second, "replayed") == ep.without(first.values(), "replayed")


def test_judge_added_to_a_recorded_case_records_only_the_judge(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    _write_case(root, [{"not_contains": "COBOL"}])
    _serve(fake_openai)
    assert _run(pytester, *RECORD).ret == pytest.ExitCode.OK
    answers = root / "cassettes" / EVAL / "v" / f"{CASE}.yaml"
    recorded = answers.read_text(encoding="utf-8")
    assert not answers.with_name(f"{CASE}.judge.yaml").exists()
    assert "judge cost" not in (ep.latest(root) / "summary.md").read_text(encoding="utf-8")

    _write_case(root, [{"not_contains": "COBOL"}, {"judge": {"rubric": RUBRIC, "threshold": THRESHOLD}}])
    fake_openai.received.clear()
    result = _run(pytester, *RECORD)
    assert result.ret == pytest.ExitCode.OK, _output(result)
    assert [_graded(body) for body in _judge_requests(fake_openai)] == ANSWERS
    assert len(fake_openai.chat_requests) == len(ANSWERS)  # the answers came from their cassette
    assert answers.read_text(encoding="utf-8") == recorded
    assert {r["judge_reasons"].split(":")[0] for r in ep.results(root)} == {
        f"score {s:g} {'≥' if s >= THRESHOLD else '<'} {THRESHOLD:g}" for s in SCORES.values()
    }


def test_judge_replay_without_its_recording_says_so(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    _serve(fake_openai)
    assert _run(pytester, *RECORD).ret == pytest.ExitCode.OK
    sent = len(fake_openai.chat_requests)

    _write_case(root, [{"judge": {"rubric": RUBRIC + " Any one.", "threshold": THRESHOLD}}])
    assert _run(pytester).ret == pytest.ExitCode.TESTS_FAILED
    for sample, row in enumerate(ep.results(root)):
        assert (row["outcome"], row["error"]) == ("errored", "missing_recording")
        assert row["error_message"].startswith(
            f"no judge recording for case '{CASE}' in variant 'v' matches this sample"
        )
        assert "the request differs from the recording" in row["error_message"]
        assert f"run `promptvcr run {EVAL} --record-mode all -- -k '{CASE}[v]'`" in row["error_message"], sample

    (root / "cassettes" / EVAL / "v" / f"{CASE}.judge.yaml").unlink()
    assert _run(pytester).ret == pytest.ExitCode.TESTS_FAILED
    messages = {r["error_message"] for r in ep.results(root)}
    assert len(messages) == 1
    assert messages.pop().startswith(f"no judge recording for case '{CASE}' in variant 'v' (")
    assert len(fake_openai.chat_requests) == sent


def test_judge_cost_is_reported_apart_from_the_answers(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    _serve(fake_openai)
    result = _run(pytester, *RECORD)
    assert result.ret == pytest.ExitCode.OK, _output(result)
    judge_price, answer_price = cost.price_for(JUDGE_MODEL), cost.price_for(ANSWER_MODEL)
    assert judge_price is not None and answer_price is not None
    per_judgement = (
        JUDGE_USAGE["prompt_tokens"] * judge_price.input + JUDGE_USAGE["completion_tokens"] * judge_price.output
    ) / 1e6
    per_answer = (
        ANSWER_USAGE["prompt_tokens"] * answer_price.input + ANSWER_USAGE["completion_tokens"] * answer_price.output
    ) / 1e6
    assert per_judgement != pytest.approx(per_answer)
    for row in ep.results(root):
        assert float(row["judge_cost_usd"]) == pytest.approx(per_judgement)
        assert float(row["cost_usd"]) == pytest.approx(per_answer)
        assert int(row["judge_prompt_tokens"]) == JUDGE_USAGE["prompt_tokens"]
        assert int(row["judge_completion_tokens"]) == JUDGE_USAGE["completion_tokens"]
        assert int(row["prompt_tokens"]) == ANSWER_USAGE["prompt_tokens"]

    (summary,) = ep.summary(root)
    n = len(ANSWERS)
    assert int(summary["judged"]) == n
    assert float(summary["judge_cost_usd"]) == pytest.approx(n * per_judgement)
    assert float(summary["cost_usd"]) == pytest.approx(n * per_answer)
    assert int(summary["judge_prompt_tokens"]) == n * JUDGE_USAGE["prompt_tokens"]
    assert int(summary["prompt_tokens"]) == n * ANSWER_USAGE["prompt_tokens"]
    markdown = (ep.latest(root) / "summary.md").read_text(encoding="utf-8")
    header = next(line for line in markdown.splitlines() if line.startswith("| eval |"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[cells.index("cost") + 1] == "judge cost"
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {EVAL} |"))
    values = [c.strip() for c in row.strip("|").split("|")]
    assert values[cells.index("cost")] == f"${n * per_answer:.4f}"
    assert values[cells.index("judge cost")] == f"${n * per_judgement:.4f}"
    assert "judge cost" in _output(result)  # the terminal table too


def test_malformed_judge_answer_fails_the_check_with_a_reason(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    _serve(fake_openai, lambda answer: Reply(body=completion(f"I like {answer}", model=JUDGE_MODEL)))
    result = _run(pytester, *RECORD)
    assert result.ret == pytest.ExitCode.OK, _output(result)  # min_pass_rate 0: the samples fail, not the run
    for answer, row in _by_output(root).items():
        reason = f'the judge did not answer with a JSON object: "I like {answer}"'
        assert (row["outcome"], row["failed_checks"], row["error"]) == ("failed", "judge", "")
        assert row["reasons"] == f"judge: {reason}"
        assert row["judge_reasons"] == reason


def test_judge_http_error_errors_the_sample(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    endpoint = {"base_url": fake_openai.base_url, "max_retries": 0}
    root = _project(pytester.path, fake_openai.base_url, judge_config={"model": JUDGE_MODEL, "endpoint": endpoint})
    _serve(fake_openai, lambda _: Reply(500, {"error": {"message": "the judge is overloaded"}}))
    result = _run(pytester, *RECORD)
    out = _output(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.assert_outcomes(failed=1)
    assert "judge_error" in out
    assert len(_judge_requests(fake_openai)) == len(ANSWERS)  # max_retries 0: no second try
    for answer, row in _by_output(root).items():  # the answer is kept for a look at it
        assert (row["outcome"], row["error"], row["output"]) == ("errored", "judge_error", answer)
        assert "HTTP 500" in row["error_message"] and "the judge is overloaded" in row["error_message"]
        assert row["judge_cost_usd"] == ""


def test_judge_path_missing_from_the_answer_fails_without_asking_the_judge(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    check = {"rubric": RUBRIC, "threshold": THRESHOLD, "path": "/lang"}
    root = _project(pytester.path, fake_openai.base_url, check=check)
    _serve(fake_openai)
    result = _run(pytester, *RECORD)
    assert result.ret == pytest.ExitCode.OK, _output(result)
    assert _judge_requests(fake_openai) == []
    for row in ep.results(root):
        assert row["outcome"] == "failed"
        assert row["reasons"] == "judge: cannot look up '/lang': the answer is not valid JSON"
        assert row["judge_cost_usd"] == ""


def test_judge_without_a_model_is_an_input_error(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(
        pytester.path,
        fake_openai.base_url,
        judge_config={"endpoint": {"base_url": fake_openai.base_url}},  # an endpoint, but no model
    )
    case_file = root / "cases" / "langs.yaml"
    where = f"cases/langs.yaml:{line_of(case_file.read_text(encoding='utf-8'), '- judge:')}"
    result = _run(pytester, *RECORD)
    line = assert_problem(result, fake_openai, where, "/cases/0/expect/0/judge", "judge check without a model")
    assert "evals/judged.yaml" in line


def test_judge_in_defaults_without_a_model_is_reported_once(tmp_path: Path) -> None:
    ep.init_project(tmp_path)
    rubric = {"judge": {"rubric": RUBRIC, "threshold": THRESHOLD}}
    cases = [ep.json_case("a"), ep.json_case("b")]
    case_file = ep.write_cases(tmp_path, "two", cases, defaults={"max_tokens": 50, "expect": [rubric]})
    path = ep.write_eval(
        tmp_path, EVAL, base_url="http://127.0.0.1:9/v1", cases=[case_file], variants={"v": {"model": "m"}}
    )
    with pytest.raises(InputError) as info:
        evals.load(path, tmp_path)
    (problem,) = info.value.problems
    assert problem.pointer == "/defaults/expect/0/judge"
