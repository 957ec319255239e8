"""Tool calls, reasoning models and refusals, end to end: a project with tools, an agent transcript, the tool checks
and the refusal check records against the fake OpenAI server, replays offline to the same rows, and reports the
tool-call columns, tool-call validity, reasoning tokens and the refusal rate. Expected values are written from the
scripted answers here, not computed with the harness.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.load import _evals as evals
from harness.run import _preflight as preflight
from harness.tokens import _count as tokens
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, chunk, completion

QUIET = ("-p", "no:cacheprovider")
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HISTORY = [
    {"role": "user", "content": "case {{ case }}: weather in Paris?"},
    {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    {"role": "user", "content": "And in Rome?"},
]

# what the fake server answers to each case: tool calls [(name, arguments text)], content, refusal
SCRIPT: dict[str, dict[str, Any]] = {
    "rome": {"calls": [("get_weather", '{"city": "Rome", "unit": "c"}')]},
    "both": {"calls": [("get_weather", '{"city": "Oslo", "unit": "c"}'), ("get_time", '{"city": "Oslo"}')]},
    "broken": {"calls": [("get_weather", '{"city": "Rome", "unit": ')]},
    "misfit": {"calls": [("get_weather", '{"city": "Rome", "unit": "kelvin"}')]},
    "chat": {"content": "Hello! How can I help?"},
    "refuses": {"refusal": "I'm sorry, but I can't assist with that."},
}
REASONING_TOKENS = 64


def _cases() -> list[dict[str, Any]]:
    def user(case: str, text: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": f"case {case}: {text}"}]

    rome_checks = [
        {"tool_call": {"name": "get_weather", "arguments": {"path": "/city", "equals": "Rome"}}},
        {"tool_calls": {"count": 1, "order": ["get_weather"]}},
        {"no_tool_call": False},
        {"refusal": False},
    ]
    return [
        {"id": "rome", "vars": {"case": "rome"}, "messages": HISTORY, "expect": rome_checks},
        {
            "id": "both",
            "parallel_tool_calls": True,
            "messages": user("both", "weather and time in Oslo?"),
            "expect": [
                {"tool_call": "get_time"},
                {"tool_calls": {"order": ["get_time", "get_weather"]}},  # fails: the calls came the other way round
                {"tool_call_f1": {"expected": ["get_weather", "get_time"]}},
                {"tool_call_f1": {"expected": ["get_weather"], "threshold": 0.7}},  # 2·1/(2+1) = 0.667: fails
            ],
        },
        {"id": "broken", "messages": user("broken", "weather in Rome?"), "expect": [{"tool_call": "get_weather"}]},
        {
            "id": "misfit",
            "messages": user("misfit", "weather in Rome?"),
            "expect": [
                {"tool_call": {"name": "get_weather", "arguments": {"path": "/unit", "regex": "^(c|f)$"}}},
                {"tool_call": {"name": "get_weather", "validate_parameters": False, "arguments": {"contains": "Rome"}}},
            ],
        },
        {
            "id": "chat",
            "tool_choice": "none",
            "messages": user("chat", "hello"),
            "expect": [{"no_tool_call": True}, {"tool_call": "get_weather"}],
        },
        {
            "id": "refuses",
            "response_format": "json_object",
            "messages": user("refuses", "something bad"),
            "expect": [{"refusal": True}, {"json_valid": True}],
        },
    ]


def _answer(body: dict[str, Any]) -> Reply:
    case = ep.case_of(body)
    step = SCRIPT[case]
    reply = completion(step.get("content") or "", model=str(body["model"]), prompt_tokens=50, completion_tokens=90)
    message = reply["choices"][0]["message"]
    if "calls" in step:
        message["content"] = None
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(step["calls"])
        ]
        reply["choices"][0]["finish_reason"] = "tool_calls"
    if "refusal" in step:
        message["content"], message["refusal"] = None, step["refusal"]
    reply["usage"]["completion_tokens_details"] = {"reasoning_tokens": REASONING_TOKENS}
    return Reply(body=reply)


def _project(root: Path, base_url: str, **eval_extra: Any) -> None:
    ep.init_project(root)
    defaults = {"model": "gpt-5-mini", "reasoning_effort": "low", "verbosity": "low", "tools": [WEATHER, TIME]}
    case_file = ep.write_cases(root, "agent", _cases(), defaults)
    gates = [
        {"metric": "refusal_rate", "op": "<=", "value": 0.5},
        {"metric": "tool_calls_valid_rate", "op": ">=", "value": 0.5},
    ]
    ep.write_eval(root, "agent", base_url=base_url, cases=[case_file], variants={"v": {}}, gates=gates, **eval_extra)


def _by_case(root: Path) -> dict[str, dict[str, str]]:
    return {row["case"]: row for row in ep.results(root)}


def test_tools_record_then_replay(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester.path, fake_openai.base_url)
    fake_openai.respond = _answer
    recorded = pytester.runpytest("evals", *QUIET, "--record-mode", "once")
    assert recorded.ret == pytest.ExitCode.TESTS_FAILED, recorded.stdout.str()
    sent = {ep.case_of(r.body): r.body for r in fake_openai.chat_requests}
    assert set(sent) == set(SCRIPT)
    # the request carries the tools, the parameters and the transcript as written
    assert sent["rome"]["tools"] == [WEATHER, TIME]
    assert sent["rome"]["reasoning_effort"] == "low" and sent["rome"]["verbosity"] == "low"
    assert sent["rome"]["messages"][1] == {**HISTORY[1]}
    assert sent["rome"]["messages"][2] == HISTORY[2]
    assert sent["both"]["parallel_tool_calls"] is True and sent["chat"]["tool_choice"] == "none"
    first = ep.results(pytester.path)

    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    assert len(fake_openai.chat_requests) == len(SCRIPT), "replay reached the server"
    again = ep.results(pytester.path)
    assert ep.without(again, "replayed", "latency_ms") == ep.without(first, "replayed", "latency_ms")
    _verdicts(_by_case(pytester.path))
    _summary(ep.summary(pytester.path)[0])
    out = replayed.stdout.str()
    assert "tool_calls_valid (95% CI)" in out and "refusals" in out  # the table shows both when there are any


def _verdicts(rows: dict[str, dict[str, str]]) -> None:
    assert rows["rome"]["outcome"] == "passed", rows["rome"]["reasons"]
    assert rows["rome"]["tool_calls"] == "get_weather"
    assert json.loads(rows["rome"]["tool_arguments"]) == ['{"city": "Rome", "unit": "c"}']
    assert rows["rome"]["tool_calls_valid"] == "True"
    assert rows["rome"]["reasoning_tokens"] == str(REASONING_TOKENS)

    both = rows["both"]
    assert both["tool_calls"] == "get_weather;get_time"
    assert both["failed_checks"] == "tool_calls;tool_call_f1"
    assert "expected in order: get_time, get_weather" in both["reasons"]
    assert "tool_call_f1: score 0.666667: called get_weather, get_time; expected get_weather" in both["reasons"]

    broken = rows["broken"]
    assert broken["failed_checks"] == "tool_call:get_weather" and broken["tool_calls_valid"] == "False"
    assert "the arguments of 'get_weather' are not valid JSON: Expecting value at line 1 column 26" in broken["reasons"]

    misfit = rows["misfit"]  # 'kelvin' is not one of the parameters' enum: only the check that validates fails
    assert misfit["failed_checks"] == "tool_call:get_weather" and misfit["tool_calls_valid"] == "False"
    assert (
        "do not fit its parameters: schema violation at /unit: 'kelvin' is not one of ['c', 'f']" in misfit["reasons"]
    )

    chat = rows["chat"]
    assert chat["failed_checks"] == "tool_call:get_weather" and chat["tool_calls"] == ""
    assert "no call to 'get_weather' (the answer calls no tool)" in chat["reasons"]
    assert chat["tool_calls_valid"] == ""  # no call: nothing to judge

    refuses = rows["refuses"]
    assert refuses["refusal"] == SCRIPT["refuses"]["refusal"]
    assert refuses["failed_checks"] == "json_valid" and refuses["json_valid"] == "False"  # a refusal is never JSON


def _summary(row: dict[str, str]) -> None:
    # calls in rome, both, broken, misfit: rome and both valid
    assert (row["tool_calls_checked"], float(row["tool_calls_valid_rate"])) == ("4", 0.5)
    assert (row["refusals"], float(row["refusal_rate"])) == ("1", 1 / 6)
    assert row["reasoning_tokens"] == str(6 * REASONING_TOKENS)
    assert row["completion_tokens"] == str(6 * 90)  # reasoning is inside completion: not added again
    # gpt-5-mini at $0.25 / $2.00 per 1M: the reasoning tokens are billed once, as output
    assert float(row["cost_usd"]) == pytest.approx(6 * (50 * 0.25 + 90 * 2.00) / 1e6)
    assert "PASS refusal_rate <= 0.5" in row["gates"] and "PASS tool_calls_valid_rate >= 0.5" in row["gates"]


def test_refusal_rate_gate_fails(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester.path, fake_openai.base_url)
    fake_openai.respond = _answer
    pytester.runpytest("evals", *QUIET, "--record-mode", "once")
    doc = yaml.safe_load((pytester.path / "evals" / "agent.yaml").read_text(encoding="utf-8"))
    doc["gates"] = [{"metric": "refusal_rate", "op": "<=", "value": 0.1}]
    (pytester.path / "evals" / "agent.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    replayed = pytester.runpytest("evals", *QUIET)
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    assert "FAIL refusal_rate <= 0.1 (observed 0.1667, n=6)" in ep.summary(pytester.path)[0]["gates"]


def test_preflight_counts_tools_and_reasoning_output(tmp_path: Path) -> None:
    _project(tmp_path, "http://127.0.0.1:9/v1")
    doc = yaml.safe_load((tmp_path / "cases" / "agent.yaml").read_text(encoding="utf-8"))
    doc["defaults"]["max_completion_tokens"] = 2000
    (tmp_path / "cases" / "agent.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    ev = evals.load(tmp_path / "evals" / "agent.yaml", tmp_path)
    run = next(r for r in ev.runs if r.case.id == "chat")
    plan = preflight.plan(run)
    bare = {k: v for k, v in run.body.items() if k not in ("tools", "tool_choice")}
    assert plan.prompt_tokens == tokens.estimate_prompt_tokens(run.body)[0]
    assert plan.prompt_tokens is not None and plan.prompt_tokens > tokens.estimate_prompt_tokens(bare)[0] + 20
    # max_completion_tokens bounds visible and reasoning tokens together: the worst case is all of it, as output
    assert plan.max_output == 2000
    assert plan.unit_cost_usd == pytest.approx(((plan.prompt_tokens + plan.margin) * 0.25 + 2000 * 2.00) / 1e6)


# --- the checks on answers written here --------------------------------------------------------------------------


def _answer_with(message: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", **message}}]}


def _verdicts_of(
    checks_: list[dict[str, Any]], request: dict[str, Any], message: dict[str, Any]
) -> list[tuple[str, bool, str]]:
    compiled = [harness.compile_check(*next(iter(c.items()))) for c in checks_]
    return [(r.name, r.passed, r.reason) for r in harness.run_checks(compiled, request, _answer_with(message))]


def test_custom_tools_legacy_function_calls_and_unoffered_tools() -> None:
    custom_call = {"id": "c1", "type": "custom", "custom": {"name": "math_exp", "input": "4 + 4"}}
    request = {"tools": [{"type": "custom", "custom": {"name": "math_exp"}}]}
    found = _verdicts_of(
        [
            {"tool_call": {"name": "math_exp", "arguments": {"regex": r"^\d \+ \d$"}}},
            {"tool_call": {"name": "math_exp", "arguments": {"equals": 8}}},
        ],
        request,
        {"content": None, "tool_calls": [custom_call]},
    )
    assert found[0] == ("tool_call:math_exp", True, "")
    assert found[1][1] is False and "a custom tool: its input is text" in found[1][2]
    # the legacy function_call is a call too; a tool the request does not offer fails unless told not to validate
    legacy = {"content": None, "function_call": {"name": "lookup", "arguments": '{"q": "x"}'}}
    found = _verdicts_of([{"tool_call": "lookup"}, {"tool_call": {"validate_parameters": False}}], {}, legacy)
    assert found[0] == ("tool_call:lookup", False, "the answer calls 'lookup', which the request does not offer")
    assert found[1] == ("tool_call", True, "")


def test_tool_arguments_carry_no_secret(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    planted = "sk-proj-" + "A1b2C3d4" * 6
    _project(pytester.path, fake_openai.base_url)

    def leaky(body: dict[str, Any]) -> Reply:
        reply = _answer(body)
        for call in reply.body["choices"][0]["message"].get("tool_calls") or []:
            call["function"]["arguments"] = json.dumps({"city": "Rome", "unit": "c", "note": planted})
        return reply

    fake_openai.respond = leaky
    pytester.runpytest("evals", *QUIET, "--record-mode", "once")
    rows = ep.results(pytester.path)
    assert any(row["tool_arguments"] for row in rows)
    for path, text in ep.texts_under(pytester.path / "reports").items():
        assert planted not in text, path
    for path in ep.cassettes(pytester.path, "agent"):
        assert planted not in path.read_text(encoding="utf-8"), path


def test_streamed_tool_calls_are_checked_as_assembled(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    """A streamed answer's tool calls, split over deltas, reach the tool checks and columns whole (streaming:
    harness.run._stream), and its reasoning tokens come from the final usage chunk."""
    ep.init_project(pytester.path)
    case = {
        "id": "streamed",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "weather and time in Oslo?"}],
        "expect": [
            {"tool_call": {"name": "get_weather", "arguments": {"path": "/city", "equals": "Oslo"}}},
            {"tool_calls": {"order": ["get_weather", "get_time"]}},
        ],
    }
    defaults = {"model": "gpt-5-mini", "tools": [WEATHER, TIME]}
    files = ep.write_cases(pytester.path, "s", [case], defaults)
    ep.write_eval(pytester.path, "s", base_url=fake_openai.base_url, cases=[files], variants={"v": {}})
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    second = {
        "index": 1,
        "id": "call_2",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"city": "Oslo"}'},
    }
    chunks = [
        chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Oslo", '}}]}),
        chunk({"tool_calls": [second]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"unit": "c"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    usage: dict[str, Any] = {"prompt_tokens": 50, "completion_tokens": 90, "total_tokens": 140}
    usage["completion_tokens_details"] = {"reasoning_tokens": REASONING_TOKENS}
    chunks.append({**chunk({}), "choices": [], "usage": usage})
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    fake_openai.respond = lambda body: Reply(events=events, headers={"content-type": "text/event-stream"})
    pytester.runpytest("evals", *QUIET, "--record-mode", "once")
    recorded = ep.results(pytester.path)
    pytester.runpytest("evals", *QUIET)
    (row,) = ep.results(pytester.path)
    assert len(fake_openai.chat_requests) == 1 and row["replayed"] == "True"
    assert ep.without([row], "replayed") == ep.without(recorded, "replayed")
    assert row["outcome"] == "passed", row["reasons"]
    assert row["tool_calls"] == "get_weather;get_time" and row["tool_calls_valid"] == "True"
    assert json.loads(row["tool_arguments"]) == ['{"city": "Oslo", "unit": "c"}', '{"city": "Oslo"}']
    assert row["reasoning_tokens"] == str(REASONING_TOKENS)
