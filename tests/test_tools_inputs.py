"""Bad inputs for the tool, reasoning and refusal keys: each defect stops the pytest run before any request, cited at
its ``file:line`` and JSON pointer (the approach of tests/test_inputs.py, whose helpers these are). Expected lines are
found in the YAML text written, never typed in.
"""

from __future__ import annotations

import pytest

from tests.fakeserver import FakeOpenAI
from tests.test_inputs import assert_problem, eval_yaml, line_of, run

CASE = """\
defaults:
  model: fake-model
  tools:
    - type: function
      function:
        name: get_weather
        description: The weather in a city
        parameters:
          type: object
          properties:
            city: {type: string}
          required: [city]
cases:
  - id: weather
    tool_choice: auto
    parallel_tool_calls: false
    reasoning_effort: low
    verbosity: low
    vars: {city: Paris}
    messages:
      - role: user
        content: Weather in {{ city }}?
      - role: assistant
        tool_calls:
          - {id: call_1, type: function, function: {name: get_weather, arguments: '{"city": "Paris"}'}}
      - role: tool
        tool_call_id: call_1
        content: sunny
      - role: user
        content: And in Rome?
    expect:
      - tool_call: {name: get_weather, arguments: {path: /city, equals: Rome}}
      - tool_calls: {count: 1, order: [get_weather]}
      - tool_call_f1: {expected: [get_weather], threshold: 1}
      - no_tool_call: false
      - refusal: false
"""

# (what is replaced, by what, the line's marker in the new text, the pointer, parts of the message)
DEFECTS = {
    "parameters-not-a-schema": (
        "          type: object\n",
        "          type: objec\n",
        "type: objec",
        "/defaults/tools/0/function/parameters/type",
        "parameters: invalid JSON Schema",
    ),
    "function-unknown-key": (
        "        parameters:\n",
        "        paramters:\n",
        "paramters:",
        "/defaults/tools/0/function/paramters",
        "unknown key 'paramters'",
    ),
    "tool-unknown-type": (
        "    - type: function\n",
        "    - type: functoin\n",
        "type: functoin",
        "/defaults/tools/0/type",
        "'functoin' is not one of ['function', 'custom']",
    ),
    "strict-open-object": (
        "        description: The weather in a city\n",
        "        description: The weather in a city\n        strict: true\n",
        "parameters:",
        "/defaults/tools/0/function/parameters",
        "strict: true needs `additionalProperties: false`",
    ),
    "duplicate-tool": (
        "cases:\n",
        "    - {type: function, function: {name: get_weather}}\ncases:\n",
        "{type: function, function: {name: get_weather}}",
        "/defaults/tools/1/function/name",
        "tool 'get_weather' is defined twice",
    ),
    "tool-choice-unknown-tool": (
        "    tool_choice: auto\n",
        "    tool_choice: {type: function, function: {name: get_wether}}\n",
        "get_wether",
        "/cases/0/tool_choice/function/name",
        "tool_choice names 'get_wether', which is not one of the tools (get_weather)",
    ),
    "tool-choice-bad-value": (
        "    tool_choice: auto\n",
        "    tool_choice: always\n",
        "tool_choice: always",
        "/cases/0/tool_choice",
        "is not allowed here",
    ),
    "parallel-not-boolean": (
        "    parallel_tool_calls: false\n",
        "    parallel_tool_calls: 'no'\n",
        "parallel_tool_calls:",
        "/cases/0/parallel_tool_calls",
        "expected boolean",
    ),
    "reasoning-effort": (
        "    reasoning_effort: low\n",
        "    reasoning_effort: extreme\n",
        "reasoning_effort:",
        "/cases/0/reasoning_effort",
        "'extreme' is not one of",
    ),
    "verbosity": (
        "    verbosity: low\n",
        "    verbosity: loud\n",
        "verbosity:",
        "/cases/0/verbosity",
        "'loud' is not one of",
    ),
    "tool-message-without-id": (
        "        tool_call_id: call_1\n",
        "",
        "      - role: tool",
        "/cases/0/messages/2",
        "'tool_call_id' is required here",
    ),
    "tool-message-answers-nothing": (
        "        tool_call_id: call_1\n",
        "        tool_call_id: call_9\n",
        "call_9",
        "/cases/0/messages/2/tool_call_id",
        "tool_call_id 'call_9' answers no call",
    ),
    "call-unanswered": (
        "      - role: tool\n        tool_call_id: call_1\n        content: sunny\n",
        "",
        "        tool_calls:",
        "/cases/0/messages/1/tool_calls",
        "call 'call_1' has no `tool` message answering it",
    ),
    "tool-calls-on-user": (
        "        content: And in Rome?\n",
        "        content: And in Rome?\n"
        "        tool_calls: [{id: x, type: function, function: {name: a, arguments: a}}]\n",
        "tool_calls: [{id: x",
        "/cases/0/messages/3/tool_calls",
        "only an assistant message has tool_calls",
    ),
    "user-content-null": (
        "        content: And in Rome?\n",
        "        content: null\n",
        "content: null",
        "/cases/0/messages/3/content",
        "expected string",
    ),
    "tool-call-bad-arguments-json-type": (
        'arguments: \'{"city": "Paris"}\'',
        "arguments: {city: Paris}",
        "arguments: {city: Paris}",
        "/cases/0/messages/1/tool_calls/0/function/arguments",
        "expected string",
    ),
    "tool-call-check-regex": (
        "{path: /city, equals: Rome}",
        "{path: /city, regex: '('}",
        "regex: '('",
        "/cases/0/expect/0/tool_call/arguments/regex",
        "invalid regular expression '('",
    ),
    "tool-call-check-two-tests": (
        "{path: /city, equals: Rome}",
        "{equals: Rome, contains: Ro}",
        "contains: Ro",
        "/cases/0/expect/0/tool_call/arguments",
        "exactly one of equals, contains, regex, json_schema",
    ),
    "tool-call-check-schema": (
        "{path: /city, equals: Rome}",
        "{json_schema: {type: strin}}",
        "json_schema: {type: strin}",
        "/cases/0/expect/0/tool_call/arguments/json_schema/type",
        "invalid JSON Schema",
    ),
    "tool-call-check-unknown-key": (
        "tool_call: {name: get_weather, arguments:",
        "tool_call: {name: get_weather, validate: false, arguments:",
        "validate: false",
        "/cases/0/expect/0/tool_call/validate",
        "unknown key 'validate'",
    ),
    "tool-calls-count": (
        "{count: 1, order",
        "{count: -1, order",
        "count: -1",
        "/cases/0/expect/1/tool_calls/count",
        "minimum of 0",
    ),
    "tool-call-f1-threshold": (
        "threshold: 1}",
        "threshold: 2}",
        "threshold: 2",
        "/cases/0/expect/2/tool_call_f1/threshold",
        "maximum of 1",
    ),
    "tool-call-f1-expected": (
        "{expected: [get_weather], threshold: 1}",
        "{threshold: 1}",
        "tool_call_f1: {threshold",
        "/cases/0/expect/2/tool_call_f1",
        "'expected' is required here",
    ),
    "no-tool-call-not-boolean": (
        "no_tool_call: false",
        "no_tool_call: 'no'",
        "no_tool_call:",
        "/cases/0/expect/3/no_tool_call",
        "expected boolean",
    ),
    "function-strict-not-boolean": (
        "        description: The weather in a city\n",
        "        description: The weather in a city\n        strict: 'yes'\n",
        "strict: 'yes'",
        "/defaults/tools/0/function/strict",
        "expected boolean",
    ),
    "tool-call-check-not-a-name": (
        "      - refusal: false\n",
        "      - refusal: false\n      - tool_call: 3\n",
        "tool_call: 3",
        "/cases/0/expect/5/tool_call",
        "is not allowed here",
    ),
    "tool-calls-order-not-a-list": (
        "{count: 1, order: [get_weather]}",
        "{order: get_weather}",
        "{order: get_weather}",
        "/cases/0/expect/1/tool_calls/order",
        "expected array",
    ),
    "refusal-not-boolean": (
        "refusal: false",
        "refusal: sometimes",
        "refusal:",
        "/cases/0/expect/4/refusal",
        "expected boolean",
    ),
}
_TOOLS_BLOCK = CASE[CASE.index("  tools:\n") : CASE.index("cases:\n")]
DEFECTS["parallel-without-tools"] = (
    _TOOLS_BLOCK,
    "",
    "parallel_tool_calls:",
    "/cases/0/parallel_tool_calls",
    "parallel_tool_calls needs `tools`",
)
DEFECTS["tool-choice-without-tools"] = (
    _TOOLS_BLOCK,
    "",
    "tool_choice:",
    "/cases/0/tool_choice",
    "tool_choice needs `tools`",
)


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_bad_tool_key_in_a_case_file(pytester: pytest.Pytester, fake_openai: FakeOpenAI, defect: str) -> None:
    old, new, marker, pointer, message = DEFECTS[defect]
    assert old in CASE
    case = CASE.replace(old, new, 1)
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    assert_problem(result, fake_openai, f"cases/a.yaml:{line_of(case, marker)}", pointer, message)


def test_the_valid_tools_case_reaches_the_server(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    """The control: without a defect the same file is sent, with its tools and transcript."""
    result = run(pytester, {"cases/a.yaml": CASE, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    assert "no request was sent" not in result.stdout.str()
    (request,) = fake_openai.chat_requests
    assert request.body["tools"][0]["function"]["name"] == "get_weather"
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "tool", "user"]
    assert "content" not in request.body["messages"][1]  # no content written, none sent


VARIANT_DEFECTS = {
    "variant-tools-bad-schema": (
        "  v: {max_tokens: 50}\n",
        "  v:\n    tools: [{type: function, function: {name: f, parameters: {type: 3}}}]\n",
        "parameters: {type: 3}",
        "/variants/v/tools/0/function/parameters/type",
        "parameters: invalid JSON Schema",
    ),
    "variant-tool-choice-unknown": (
        "  v: {max_tokens: 50}\n",
        "  v:\n    tool_choice: {type: function, function: {name: get_time}}\n",
        "name: get_time",
        "/variants/v/tool_choice/function/name",
        "tool_choice names 'get_time'",
    ),
    "variant-reasoning-effort": (
        "  v: {max_tokens: 50}\n",
        "  v: {reasoning_effort: max}\n",
        "reasoning_effort: max",
        "/variants/v/reasoning_effort",
        "'max' is not one of",
    ),
    "variant-tools-null": (
        "  v: {max_tokens: 50}\n",
        "  v:\n    tools: null\n",
        "tools: null",
        "/variants/v/tools",
        "expected array",
    ),
    "variant-verbosity": (
        "  v: {max_tokens: 50}\n",
        "  v: {verbosity: 3}\n",
        "verbosity: 3",
        "/variants/v/verbosity",
        "3 is not one of",
    ),
    "variant-parallel-not-boolean": (
        "  v: {max_tokens: 50}\n",
        "  v: {parallel_tool_calls: 1}\n",
        "parallel_tool_calls: 1",
        "/variants/v/parallel_tool_calls",
        "expected boolean",
    ),
    "gate-refusal-rate-over-1": (
        "value: 0.5}",
        "value: 2, metric: refusal_rate}",
        "refusal_rate",
        "/gates/0/value",
        "2 is greater than the maximum of 1",
    ),
}


@pytest.mark.parametrize("defect", sorted(VARIANT_DEFECTS))
def test_bad_tool_key_in_an_eval_file(pytester: pytest.Pytester, fake_openai: FakeOpenAI, defect: str) -> None:
    old, new, marker, pointer, message = VARIANT_DEFECTS[defect]
    good = eval_yaml(fake_openai.base_url, ["cases/a.yaml"])
    assert old in good
    text = good.replace(old, new, 1)
    if defect == "gate-refusal-rate-over-1":
        text = text.replace("metric: pass_rate, ", "")
    result = run(pytester, {"cases/a.yaml": CASE, "evals/e.yaml": text})
    assert_problem(result, fake_openai, f"evals/e.yaml:{line_of(text, marker)}", pointer, message)


def test_a_variant_without_the_named_tool_is_cited_at_the_case(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    """The case names get_weather in tool_choice; the variant's tools have no such tool: the problem is the case's
    tool_choice, in that variant."""
    case = CASE.replace("    tool_choice: auto\n", "    tool_choice: {type: function, function: {name: get_weather}}\n")
    text = eval_yaml(fake_openai.base_url, ["cases/a.yaml"]).replace(
        "  v: {max_tokens: 50}\n", "  v:\n    tools: [{type: function, function: {name: other}}]\n"
    )
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": text})
    where = f"cases/a.yaml:{line_of(case, 'tool_choice:')}"
    assert_problem(result, fake_openai, where, "/cases/0/tool_choice", "in variant 'v'", "not one of the tools (other)")
