"""Small direct tests of the pure parts: checks, statistics, gates, cost, response_format and the YAML loader.

Expected values are derived here, independently of the code under test: by hand from the inputs, from published
figures, or with another implementation (numpy's percentile, the Wilson interval as the roots of its quadratic).
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
import yaml

from harness.checks import _builtins as checks
from harness.errors import InputError
from harness.load import _render as render
from harness.load import _yamlsrc as yamlsrc
from harness.load import schemas
from harness.load._evals import Gate
from harness.load._metrics import Measure, measure
from harness.report import _gates as gates
from harness.report import _stats as stats
from harness.run._row import Outcome, Row
from harness.tokens import _cost as cost
from tests.fakeserver import completion


def verdict(name: str, arg: Any, content: str, finish_reason: str = "stop") -> checks.CheckResult:
    """One check, compiled from its case-file form, applied to a chat.completion answering ``content``."""
    (result,) = checks.run_checks(
        [checks.compile_check(name, arg)], {}, completion(content, finish_reason=finish_reason)
    )
    assert result.name == name
    assert result.passed == (result.reason == ""), "a passing check has no reason, a failing one always has one"
    return result


def passes(name: str, arg: Any, content: str, finish_reason: str = "stop") -> bool:
    return verdict(name, arg, content, finish_reason).passed


# --- json_valid ------------------------------------------------------------------------------------------------------


def test_json_valid_passes_on_json() -> None:
    assert passes("json_valid", True, '{"joke": "x"}')
    assert passes("json_valid", True, "[1, 2]")


def test_json_valid_fails_with_the_parser_position() -> None:
    result = verdict("json_valid", True, '{"joke": x}')
    assert not result.passed
    # json.loads('{"joke": x}') fails at the "x": line 1, column 10
    assert result.reason == "not valid JSON: Expecting value at line 1 column 10"
    assert "cut off" not in result.reason


def test_json_valid_truncated_answer_says_cut_off() -> None:
    truncated = '{"joke": "Why did the'
    result = verdict("json_valid", True, truncated, finish_reason="length")
    assert not result.passed
    assert result.reason.startswith("not valid JSON: ")
    assert "cut off" in result.reason
    assert "finish_reason=length" in result.reason
    # the same text with a normal stop is broken JSON, not a truncation
    assert "cut off" not in verdict("json_valid", True, truncated, finish_reason="stop").reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('```json\n{"joke": "x"}\n```', "not valid JSON: wrapped in a markdown code fence"),
        ("", "the answer is empty"),
        ("   \n", "the answer is empty"),
    ],
)
def test_json_valid_explains_common_failures(content: str, reason: str) -> None:
    assert verdict("json_valid", True, content).reason == reason


def test_json_valid_false_wants_text() -> None:
    assert passes("json_valid", False, "Roses are red")
    result = verdict("json_valid", False, '{"a": 1}')
    assert not result.passed
    assert result.reason == "the answer is valid JSON"


def test_answer_without_content_is_empty() -> None:
    response = completion("x")
    response["choices"][0]["message"]["content"] = None  # e.g. a tool call
    (result,) = checks.run_checks([checks.compile_check("json_valid", True)], {}, response)
    assert not result.passed
    assert result.reason == "the answer is empty"


# --- json_schema -----------------------------------------------------------------------------------------------------

JOKE_SCHEMA = {"type": "object", "required": ["joke"], "properties": {"joke": {"type": "string", "minLength": 1}}}


def test_json_schema_passes_and_fails_with_the_location() -> None:
    assert passes("json_schema", JOKE_SCHEMA, '{"joke": "x"}')
    result = verdict("json_schema", JOKE_SCHEMA, '{"joke": 5}')
    assert not result.passed
    assert result.reason == "schema violation at /joke: 5 is not of type 'string'"
    result = verdict("json_schema", JOKE_SCHEMA, "{}")
    assert result.reason == "schema violation at /: 'joke' is a required property"


def test_json_schema_on_text_says_not_json() -> None:
    result = verdict("json_schema", JOKE_SCHEMA, "a joke")
    assert not result.passed
    assert result.reason == "the answer is not JSON"


PREFIX = {"type": "array", "prefixItems": [{"type": "integer"}]}  # prefixItems exists only since 2020-12


def test_json_schema_defaults_to_2020_12() -> None:
    result = verdict("json_schema", PREFIX, '["not an integer"]')
    assert not result.passed
    assert result.reason == "schema violation at /0: 'not an integer' is not of type 'integer'"
    explicit = {"$schema": "https://json-schema.org/draft/2020-12/schema", **PREFIX}
    assert not passes("json_schema", explicit, '["not an integer"]')


def test_json_schema_honours_a_declared_draft_07() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", **PREFIX}
    assert passes("json_schema", draft7, '["not an integer"]')  # an unknown keyword in draft 7: ignored
    # and draft 7's own array form of `items` applies positionally there
    draft7_items = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "integer"}]}
    assert not passes("json_schema", draft7_items, '["x"]')
    assert passes("json_schema", draft7_items, "[1, 2]")


def test_json_schema_checks_formats() -> None:
    schema = {"type": "string", "format": "date"}
    assert passes("json_schema", schema, '"2024-02-29"')
    result = verdict("json_schema", schema, '"2023-02-29"')  # 2023 is not a leap year
    assert not result.passed
    assert "is not a 'date'" in result.reason


def test_json_schema_invalid_schema_is_a_compile_error_with_its_pointer() -> None:
    with pytest.raises(checks.CheckArgError) as info:
        checks.compile_check("json_schema", {"type": "object", "properties": {"a": {"type": 12}}})
    assert info.value.pointer == "/properties/a/type"
    assert str(info.value).startswith("invalid JSON Schema: 12 is not valid")


def test_json_schema_dangling_ref_is_a_compile_error() -> None:
    schema = {"$defs": {"joke": {"type": "string"}}, "properties": {"joke": {"$ref": "#/$defs/jokes"}}}
    with pytest.raises(checks.CheckArgError) as info:
        checks.compile_check("json_schema", schema)
    assert info.value.pointer == "/properties/joke/$ref"


# --- contains / not_contains -----------------------------------------------------------------------------------------


def test_contains() -> None:
    assert passes("contains", "dad", "A dad joke.")
    result = verdict("contains", "cat", "A dad joke.")
    assert not result.passed
    assert result.reason == "the answer does not contain 'cat'"
    assert not passes("contains", "DAD", "A dad joke.")  # case-sensitive by default


def test_contains_ignore_case_and_path() -> None:
    answer = '{"joke": "A DAD joke", "tags": ["pun"]}'
    assert passes("contains", {"value": "dad", "ignore_case": True}, answer)
    assert passes("contains", {"value": "dad", "path": "/joke", "ignore_case": True}, answer)
    result = verdict("contains", {"value": "dad", "path": "/joke"}, answer)
    assert result.reason == "the answer at /joke does not contain 'dad'"
    # "tags" is in the whole answer but not in the value at /joke
    assert passes("contains", "tags", answer)
    assert not passes("contains", {"value": "tags", "path": "/joke"}, answer)
    # a non-string value is matched in its JSON text
    assert passes("contains", {"value": '"pun"', "path": "/tags"}, answer)
    assert passes("contains", {"value": "pun", "path": "/tags/0"}, answer)


def test_contains_path_problems() -> None:
    result = verdict("contains", {"value": "x", "path": "/nope"}, '{"joke": "x"}')
    assert result.reason == "'/nope' is not in the answer"
    result = verdict("contains", {"value": "x", "path": "/joke"}, "x marks the spot")
    assert result.reason == "cannot look up '/joke': the answer is not valid JSON"
    # RFC 6901 escapes: ~1 is "/", ~0 is "~"
    assert passes("contains", {"value": "yes", "path": "/a~1b/c~0d"}, '{"a/b": {"c~d": "yes"}}')


def test_not_contains() -> None:
    assert passes("not_contains", "sorry", "Here is a joke.")
    result = verdict("not_contains", "sorry", "I'm sorry, I can't.")
    assert not result.passed
    assert result.reason == "the answer contains 'sorry'"
    assert passes("not_contains", "SORRY", "I'm sorry.")  # case-sensitive by default
    result = verdict("not_contains", {"value": "SORRY", "ignore_case": True, "path": "/msg"}, '{"msg": "sorry"}')
    assert not result.passed
    assert result.reason == "the answer at /msg contains 'SORRY'"


# --- regex -----------------------------------------------------------------------------------------------------------


def test_regex() -> None:
    assert passes("regex", r"^\d{3}$", "123")
    result = verdict("regex", r"^\d{3}$", "1234")
    assert not result.passed
    assert result.reason == r"the answer does not match /^\d{3}$/"
    assert passes("regex", "\n", "two\nlines")  # searched anywhere, not only at the start


def test_regex_long_form() -> None:
    assert not passes("regex", {"pattern": "^yes$"}, "YES")
    assert passes("regex", {"pattern": "^yes$", "ignore_case": True}, "YES")
    assert passes("regex", {"pattern": r"^\d+$", "path": "/n"}, '{"n": 42}')
    result = verdict("regex", {"pattern": "^a", "path": "/s"}, '{"s": "ba"}')
    assert result.reason == "the answer at /s does not match /^a/"


def test_regex_invalid_pattern() -> None:
    with pytest.raises(checks.CheckArgError) as info:
        checks.compile_check("regex", "(")
    assert info.value.pointer == ""
    assert str(info.value) == "invalid regular expression '(': missing ), unterminated subpattern at position 0"
    with pytest.raises(checks.CheckArgError) as info:
        checks.compile_check("regex", {"pattern": "[", "path": "/a"})
    assert info.value.pointer == "/pattern"


def test_regex_invalid_pattern_long_form_points_at_pattern() -> None:
    with pytest.raises(checks.CheckArgError) as info:
        checks.compile_check("regex", {"pattern": "(", "ignore_case": True})
    assert info.value.pointer == "/pattern"


# --- equals ----------------------------------------------------------------------------------------------------------


def test_equals_on_content() -> None:
    assert passes("equals", "42", "42")
    result = verdict("equals", "42", "43")
    assert not result.passed
    assert result.reason == 'the answer is "43", expected "42"'
    assert not passes("equals", "42", "42\n")  # the text, exactly


def test_equals_on_a_pointer() -> None:
    answer = '{"name": "Ada", "age": 36, "tags": ["a", "b"]}'
    assert passes("equals", {"value": "Ada", "path": "/name"}, answer)
    assert passes("equals", {"value": 36, "path": "/age"}, answer)
    assert passes("equals", {"value": ["a", "b"], "path": "/tags"}, answer)
    result = verdict("equals", {"value": "Bob", "path": "/name"}, answer)
    assert result.reason == 'the answer at /name is "Ada", expected "Bob"'
    assert not passes("equals", {"value": "36", "path": "/age"}, answer)  # a string is not the number
    assert verdict("equals", {"value": 1, "path": "/nope"}, answer).reason == "'/nope' is not in the answer"


def test_equals_non_string_value_compares_parsed_json() -> None:
    assert passes("equals", 42, "42")
    assert passes("equals", 42, " 42 ")  # the parsed value, not the text
    assert not passes("equals", 42, "43")
    assert not passes("equals", 42, '"42"')
    assert passes("equals", {"value": {"a": [1, None]}}, '{"a": [1, null]}')
    assert not passes("equals", {"value": {"a": 1}}, '{"a": 1, "b": 2}')
    result = verdict("equals", 42, "forty-two")
    assert not result.passed
    assert "not valid JSON" in result.reason


@pytest.mark.parametrize(
    ("expected", "content"), [(1, "true"), (0, "false"), ({"value": 1, "path": "/a"}, '{"a": true}')]
)
def test_equals_does_not_confuse_booleans_and_numbers(expected: Any, content: str) -> None:
    assert not passes("equals", expected, content)


def test_equals_reason_tells_a_string_from_a_number() -> None:
    result = verdict("equals", 42, '"42"')
    assert not result.passed
    seen, wanted = result.reason.removeprefix("the answer is ").split(", expected ")
    assert seen != wanted, result.reason


# --- max_chars / finish_reason ---------------------------------------------------------------------------------------


def test_max_chars() -> None:
    assert passes("max_chars", 5, "hello")  # the limit itself is allowed
    result = verdict("max_chars", 5, "hello!")
    assert not result.passed
    assert result.reason == "the answer has 6 characters, limit 5"
    assert passes("max_chars", 0, "")
    assert passes("max_chars", 3, "äöü")  # characters, not bytes


def test_max_chars_on_a_pointer() -> None:
    answer = '{"joke": "abcdef", "short": "ab"}'
    assert passes("max_chars", {"value": 2, "path": "/short"}, answer)
    result = verdict("max_chars", {"value": 5, "path": "/joke"}, answer)
    assert result.reason == "the answer at /joke has 6 characters, limit 5"


def test_finish_reason() -> None:
    assert passes("finish_reason", "stop", "x", finish_reason="stop")
    result = verdict("finish_reason", "stop", "x", finish_reason="length")
    assert not result.passed
    assert result.reason == "finish_reason is 'length', expected stop"


def test_finish_reason_list() -> None:
    allowed = ["stop", "length"]
    assert passes("finish_reason", allowed, "x", finish_reason="stop")
    assert passes("finish_reason", allowed, "x", finish_reason="length")
    result = verdict("finish_reason", allowed, "x", finish_reason="content_filter")
    assert not result.passed
    assert result.reason == "finish_reason is 'content_filter', expected stop or length"


def test_run_checks_keeps_order_and_judges_each() -> None:
    compiled = [
        checks.compile_check("json_valid", True),
        checks.compile_check("contains", "nope"),
        checks.compile_check("max_chars", 100),
    ]
    results = checks.run_checks(compiled, {}, completion('{"joke": "x"}'))
    assert [(r.name, r.passed) for r in results] == [("json_valid", True), ("contains", False), ("max_chars", True)]
    assert checks.CHECK_NAMES == (
        "json_valid",
        "json_schema",
        "contains",
        "not_contains",
        "regex",
        "equals",
        "max_chars",
        "finish_reason",
        "refusal",
        "judge",
        "python",
        "tool_call",
        "no_tool_call",
        "tool_calls",
        "tool_call_f1",
    )
    # the shipped case schema lists exactly the built-ins, for editors
    listed = schemas.load_schema("case.schema.json")["$defs"]["check"]["properties"]
    assert sorted(listed) == sorted(checks.CHECK_NAMES)


# --- stats -----------------------------------------------------------------------------------------------------------


def wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """The Wilson bounds as the roots p of (p - k/n)^2 = z^2 p (1 - p) / n, solved with the quadratic formula."""
    z = NormalDist().inv_cdf(0.975)
    p_hat = k / n
    a = n + z * z
    b = -(2 * n * p_hat + z * z)
    c = n * p_hat * p_hat
    root = math.sqrt(b * b - 4 * a * c)
    return ((-b - root) / (2 * a), (-b + root) / (2 * a))


@pytest.mark.parametrize(
    ("k", "n", "published"),  # known 95% Wilson intervals, to 4 decimal places
    [
        (5, 10, (0.2366, 0.7634)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (1, 10, (0.0179, 0.4042)),
        (95, 100, (0.8882, 0.9785)),
    ],
)
def test_wilson(k: int, n: int, published: tuple[float, float]) -> None:
    low, high = stats.wilson(k, n)
    assert (low, high) == pytest.approx(wilson_by_quadratic(k, n), abs=1e-12)
    assert (low, high) == pytest.approx(published, abs=5e-5)
    assert 0.0 <= low <= high <= 1.0
    assert low - 1e-12 <= k / n <= high + 1e-12  # the estimate lies in its interval (up to rounding at k == n)


def test_wilson_default_z_is_the_95_percent_quantile() -> None:
    assert pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-12) == stats.Z95


def test_wilson_of_nothing_is_nan() -> None:
    low, high = stats.wilson(0, 0)
    assert math.isnan(low)
    assert math.isnan(high)
    assert math.isnan(stats.rate(0, 0))
    assert stats.rate(3, 4) == 0.75


@pytest.mark.parametrize(
    ("values", "q"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50),
        ([1.0, 2.0, 3.0, 4.0], 95),
        ([10.0, 1.0, 7.0, 3.0, 5.0], 90),
        ([3.0], 50),
        ([5.0, 1.0], 0),
        ([5.0, 1.0], 100),
    ],
)
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q, method="linear")))


def test_percentile_by_hand_and_ignores_nan() -> None:
    # sorted [1, 2, 3, 4]: the 50th percentile sits halfway between 2 and 3
    assert stats.percentile([4.0, math.nan, 1.0, 3.0, 2.0], 50) == 2.5
    assert math.isnan(stats.percentile([], 50))
    assert math.isnan(stats.percentile([math.nan, math.nan], 50))


# --- gates -----------------------------------------------------------------------------------------------------------


def gate(metric: str = "json_valid_rate", op: str = ">=", value: float = 0.99, min_n: int = 100) -> Gate:
    return Gate(metric, op, value, min_n, None)


def test_gate_pass_and_fail() -> None:
    passed = gates.evaluate(gate(), Measure(0.995, 200))
    assert (passed.verdict, passed.n, passed.observed) == ("pass", 200, 0.995)
    failed = gates.evaluate(gate(), Measure(0.98, 200))
    assert failed.verdict == "fail"
    assert failed.describe() == "FAIL json_valid_rate >= 0.99 (observed 0.9800, n=200)"


@pytest.mark.parametrize(("op", "verdict"), [(">=", "pass"), (">", "fail"), ("<=", "pass"), ("<", "fail")])
def test_gate_operators_at_the_boundary(op: str, verdict: str) -> None:
    assert gates.evaluate(gate(op=op, value=0.5, min_n=1), Measure(0.5, 10)).verdict == (verdict)


def test_gate_with_too_few_samples_is_insufficient_even_if_perfect() -> None:
    result = gates.evaluate(gate(min_n=100), Measure(1.0, 99))
    assert result.verdict == "insufficient"
    assert result.describe() == "INSUFFICIENT DATA json_valid_rate (n=99 < min_n=100)"
    assert gates.evaluate(gate(min_n=100), Measure(1.0, 100)).verdict == "pass"


def test_gate_counts_the_metric_own_basis() -> None:
    # pass_rate is over answered samples, error_rate over attempted ones
    outcomes = [Outcome.PASSED] * 5 + [Outcome.ERRORED] * 5 + [Outcome.SKIPPED] * 3
    rows = [Row("e", "c", "v", "m", i, outcome) for i, outcome in enumerate(outcomes)]  # the built-ins' typed rows
    passed = gates.evaluate(gate("pass_rate", ">=", 0.9, 10), measure("pass_rate", rows))
    assert (passed.verdict, passed.n, passed.observed) == ("insufficient", 5, 1.0)
    result = gates.evaluate(gate("error_rate", "<=", 0.1, 10), measure("error_rate", rows))
    assert (result.verdict, result.n, result.observed) == ("fail", 10, 0.5)


def test_gate_on_nan_is_insufficient_never_passed() -> None:
    result = gates.evaluate(gate("schema_valid_rate", "<=", 1.0, 1), Measure(math.nan, 5))
    assert result.verdict == "insufficient"
    assert result.describe().startswith("INSUFFICIENT DATA")


def test_gate_applies_to_named_variants() -> None:
    assert gates.applies(gate(), "any")
    only = Gate("pass_rate", ">=", 0.5, 1, ("a", "b"))
    assert gates.applies(only, "b")
    assert not gates.applies(only, "c")


# --- cost ------------------------------------------------------------------------------------------------------------


def test_cost_with_cached_tokens() -> None:
    price = cost.Price("m", input=2.0, output=8.0, cached_input=0.5, date="2025-01-01")
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 100_000,
        "prompt_tokens_details": {"cached_tokens": 200_000},
    }
    # 800k uncached × $2/M + 200k cached × $0.5/M + 100k output × $8/M = 1.6 + 0.1 + 0.8
    assert cost.cost_usd(usage, price) == pytest.approx(2.5)


def test_cost_without_a_cached_price_bills_cached_tokens_as_input() -> None:
    price = cost.Price("m", input=2.0, output=8.0, cached_input=None, date="2025-01-01")
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 100_000,
        "prompt_tokens_details": {"cached_tokens": 200_000},
    }
    assert cost.cost_usd(usage, price) == pytest.approx(2.0 + 0.8)


def test_cost_from_the_price_table() -> None:
    raw = yaml.safe_load((Path(cost.__file__).parent / "data" / "models.yaml").read_text(encoding="utf-8"))
    row = raw["models"]["gpt-4o-mini"]["price"]  # a model with a cached-input price
    price = cost.price_for("gpt-4o-mini")
    assert price is not None
    assert (price.input, price.cached_input, price.output) == (row["input"], row["cached_input"], row["output"])
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 400}}
    expected = (600 * row["input"] + 400 * row["cached_input"] + 500 * row["output"]) / 1_000_000
    assert cost.cost_usd(usage, price) == pytest.approx(expected)
    assert expected > 0


def test_unpriced_model_is_none_never_zero() -> None:
    assert cost.price_for("no-such-model") is None
    assert cost.price_for(None, "no-such-model") is None
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    assert cost.cost_usd(usage, None) is None
    # the response's model is the fallback when the requested one has no price
    fallback = cost.price_for("no-such-model", "gpt-4o")
    assert fallback is not None
    assert fallback.model == "gpt-4o"
    # a model priced at 0 (the local one) costs 0, which is not the same as unpriced
    local = cost.price_for("gemma-3-270m")
    assert local is not None
    assert cost.cost_usd(usage, local) == 0.0
    assert cost.cost_usd(None, local) is None


# --- render ----------------------------------------------------------------------------------------------------------


def test_response_format_from_expectation() -> None:
    schema = {"type": "object"}
    assert render.response_format("from_expectation", schema, "dad.joke 1") == {
        "type": "json_schema",
        "json_schema": {"name": "dad_joke_1", "schema": schema, "strict": True},
    }
    assert len(render.response_format("from_expectation", schema, "x" * 100)["json_schema"]["name"]) == 64


def test_response_format_from_expectation_needs_a_schema() -> None:
    with pytest.raises(ValueError, match="case 'c1' has no json_schema check"):
        render.response_format("from_expectation", None, "c1")


def test_response_format_str_and_dict() -> None:
    assert render.response_format("json_object", None, "c") == {"type": "json_object"}
    assert render.response_format("text", None, "c") == {"type": "text"}
    given = {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}
    assert render.response_format(given, {"type": "object"}, "c") == given


def test_request_body() -> None:
    messages = [{"role": "user", "content": "hi"}]
    params = {"seed": 1, "model": "m", "response_format": "from_expectation", "temperature": 0.5}
    body = render.request_body(messages, params, {"type": "object"}, "c")
    assert list(body) == ["model", "messages", "temperature", "seed", "response_format"]
    assert body["response_format"]["type"] == "json_schema"


def test_render_template() -> None:
    assert render.render("Hi {{ name }}!", {"name": "Ada"}) == "Hi Ada!"
    with pytest.raises(render.TemplateProblem, match=r"'nope' is undefined \(vars: name\)"):
        render.render("{{ nope }}", {"name": "Ada"})
    with pytest.raises(render.TemplateProblem) as info:
        render.render("line one\n{% if %}", {})
    assert info.value.line == 2


# --- yamlsrc ---------------------------------------------------------------------------------------------------------


def test_load_reports_duplicate_keys_with_lines(tmp_path: Path) -> None:
    text = "name: a\ncases:\n  - id: x\n    model: m\n    model: n\nname: b\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        yamlsrc.load(path)
    found = [(p.line, p.pointer, p.message) for p in info.value.problems]
    assert found == [
        (5, "/cases/0/model", "duplicate key 'model' (first at line 4)"),
        (6, "/name", "duplicate key 'name' (first at line 1)"),
    ]
    assert f"{path}:5: at /cases/0/model duplicate key 'model' (first at line 4)" in str(info.value)


def test_load_records_lines_of_pointers(tmp_path: Path) -> None:
    text = "# comment\ncases:\n  - id: x\n    expect:\n      - contains: a\n      - regex:\n          pattern: b\n"
    path = tmp_path / "ok.yaml"
    path.write_text(text, encoding="utf-8")
    doc = yamlsrc.load(path)
    assert doc.data == {"cases": [{"id": "x", "expect": [{"contains": "a"}, {"regex": {"pattern": "b"}}]}]}
    lines = text.splitlines()
    for ptr, needle in [
        ("/cases", "cases:"),
        ("/cases/0/id", "id: x"),
        ("/cases/0/expect/1/regex", "regex:"),
        ("/cases/0/expect/1/regex/pattern", "pattern: b"),
    ]:
        assert needle in lines[doc.line(ptr) - 1], ptr
    # a pointer that is not in the file falls back to its nearest ancestor
    assert doc.line("/cases/0/expect/1/regex/nope") == doc.line("/cases/0/expect/1/regex")


def test_load_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {a: 1}\nx:\n  <<: *b\n  <<: {c: 3}\n  d: 4\n", encoding="utf-8")
    assert yamlsrc.load(path).data["x"] == {"a": 1, "c": 3, "d": 4}


def test_load_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: c: d\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        yamlsrc.load(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.pointer) == (2, "")
    assert problem.message == "YAML syntax error: mapping values are not allowed here"
    with pytest.raises(InputError, match="cannot read the file"):
        yamlsrc.load(tmp_path / "missing.yaml")


def test_pointer_escaping() -> None:
    assert yamlsrc.pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"


@pytest.mark.parametrize(
    "text", ["plain", "two\nlines\n", "", "tabs\tand é 漢字 🙂", "a } b % c", "x\u2028y", "a\ud800b", "a\r\nb"]
)
def test_a_message_without_template_syntax_renders_as_jinja2_renders_it(text: str) -> None:
    def outcome(template: str) -> tuple[str, int | None]:
        try:
            return render.render(template, {}), None
        except render.TemplateProblem as exc:
            return str(exc), exc.line

    through_jinja = "{{ '' }}"  # renders to nothing, but takes the template through jinja2
    assert outcome(text) == outcome(text + through_jinja)
