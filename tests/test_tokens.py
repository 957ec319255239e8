"""Token counting (harness.tokens._count), the model registry (harness.tokens._models) and cost, checked
on recorded real traffic.

The corpus tests read /work/shared/corpus (or ../shared/corpus next to the repository) once per session and skip when
it is absent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from harness.errors import PromptVCRError
from harness.tokens import _cost as cost
from harness.tokens import _count as tokens
from harness.tokens import _encoding as tokens_encoding
from harness.tokens import _models as models
from harness.tokens import _rules as tokens_rules

REPO = Path(__file__).resolve().parent.parent


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tokens", REPO / "bench" / "tokens.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_tokens"] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()

# Floors on the macro-average over sources of the exact-match rate per category (each source repository weighs the
# same), set just under what bench/tokens.py measured (see docs/tokens.md): counted for the answering snapshot with
# every rule, leave-one-source-out (each source with only the rules justified without it), and from the body alone
# with the alias resolved by the line's date. A change to the counting rules must not make any of them worse.
_FITTED = {
    "plain": 0.977,
    "names": 0.99,
    "content_parts": 0.974,
    "tools": 0.947,
    "json_schema": 0.835,
    "reasoning": 0.98,
}
MACRO_FLOORS = {
    "snapshot": _FITTED,
    "loso": {
        "plain": 0.972,
        "names": 0.99,
        "content_parts": 0.974,
        "tools": 0.866,
        "json_schema": 0.637,
        "reasoning": 0.929,
    },
    "body": _FITTED,
}


# The excerpt shipped in tests/data (real lines of the corpus, each with the public repository it was recorded in;
# tests/data/make_corpus_excerpt.py made it): these run everywhere, the corpus or not. Exact lines per category as
# measured when it was made, (exact, counted): a change to the counting rules may not lose one.
EXCERPT = REPO / "tests" / "data" / "corpus_excerpt.jsonl.gz"
EXCERPT_FLOORS = {
    "plain": (133, 138),
    "names": (12, 12),
    "content_parts": (41, 42),
    "tools": (125, 132),
    "json_schema": (64, 74),
    "reasoning": (65, 66),
}


@pytest.fixture(scope="session")
def excerpt_results() -> list[Any]:
    return list(bench.evaluate(list(bench.read_lines(EXCERPT))))


@pytest.mark.parametrize("category", sorted(EXCERPT_FLOORS))
def test_the_shipped_excerpt_keeps_its_exact_lines(excerpt_results: list[Any], category: str) -> None:
    exact, counted, _ = bench.rates(excerpt_results, "category")[category]
    floor, lines = EXCERPT_FLOORS[category]
    assert counted == lines
    assert exact >= floor, f"{category}: {exact} of {counted} exact, was {floor}"


def test_the_shipped_excerpt_spans_the_sources() -> None:
    with gzip.open(EXCERPT, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) >= 300
    assert len({row["source_repo"] for row in rows}) >= 15  # macro-average needs many sources, not many lines
    assert all(row["source_path"] and row["source_commit"] for row in rows)


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    path = bench.corpus_path()
    if path is None:
        pytest.skip("the shared traffic corpus (/work/shared/corpus or ../shared/corpus) is not on this machine")
    return Path(path)


@pytest.fixture(scope="session")
def corpus_results(corpus_path: Path) -> list[Any]:
    return list(bench.evaluate(list(bench.read_lines(corpus_path))))


@pytest.fixture(scope="session")
def corpus_lines(corpus_path: Path) -> list[Any]:
    return list(bench.read_lines(corpus_path))


@pytest.fixture(scope="session")
def rule_effects(corpus_lines: list[Any], corpus_results: list[Any]) -> list[Any]:
    return list(bench.rule_effects(corpus_lines, corpus_results))


@pytest.fixture(scope="session")
def macro_tables(corpus_lines: list[Any], corpus_results: list[Any], rule_effects: list[Any]) -> dict[str, Any]:
    return {
        "snapshot": bench.cells(corpus_results),
        "loso": bench.cells(bench.leave_one_out(corpus_lines, rule_effects)),
        "body": bench.cells(bench.evaluate(corpus_lines, body_only=True)),
    }


@pytest.fixture(scope="session")
def corpus_rows(corpus_path: Path) -> dict[str, dict[str, Any]]:
    with gzip.open(corpus_path, "rt", encoding="utf-8") as f:
        rows = (json.loads(line) for line in f)
        return {row["interaction_sha256"][:16]: row for row in rows}


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
@pytest.mark.parametrize(("view", "category"), [(v, c) for v, floors in MACRO_FLOORS.items() for c in sorted(floors)])
def test_macro_average_per_category_does_not_regress(macro_tables: dict[str, Any], view: str, category: str) -> None:
    table = macro_tables[view]
    figure = bench.macro(table, category)
    assert figure is not None
    # The macro-average weighs each source alike: worked out here from the per-source cells on their own.
    shares = [exact / n for (_, column), (exact, n) in table.items() if column == category]
    assert figure == pytest.approx(sum(shares) / len(shares))
    assert figure >= MACRO_FLOORS[view][category], f"{view} {category}: {figure:.2%}"


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_every_corpus_line_is_counted_and_estimates_say_so(corpus_results: list[Any]) -> None:
    assert [r.skipped for r in corpus_results if r.delta is None] == []
    estimated = [r for r in corpus_results if not r.exact]
    assert any("custom" in json.dumps(r.line.body.get("tools")) for r in estimated)
    # An estimate stays in every rate: flagging a shape does not make the figures look better.
    assert len(corpus_results) == sum(n for _, n, _ in bench.rates(corpus_results, "category").values())


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_each_rule_is_justified_by_the_sources_it_records(rule_effects: list[Any]) -> None:
    measured = {e.name: e for e in rule_effects}
    for rule in tokens_rules.RULES.values():
        effect = measured[rule.name]
        assert set(rule.sources) == set(effect.sources()), rule.name
        # An exact rule raises two sources' figures or more; a single-source one only gives estimates.
        assert effect.justified() is rule.exact, rule.name
        assert len(rule.sources) >= 2 if rule.exact else len(rule.sources) <= 1, rule.name
    # The registry's overrides and the chat formats are rules too: each one still in use is justified.
    for name, effect in measured.items():
        if name not in tokens_rules.RULES:
            assert name.startswith(("override:", "format:")), name
            assert effect.justified(), f"{name}: raises {effect.gains}"


def test_leave_one_source_out_drops_the_rules_that_source_alone_confirms() -> None:
    counted = {"a": 10, "b": 10, "c": 10}
    two = bench.RuleEffect("two", {"a": 5, "b": 1}, counted)
    three = bench.RuleEffect("three", {"a": 5, "b": 1, "c": 1}, counted)
    harmful = bench.RuleEffect("harmful", {"a": 1, "b": 1, "c": -5}, counted)
    assert two.justified() and not two.justified(without="a") and two.justified(without="c")
    assert three.justified(without="a")
    assert not harmful.justified()


# (line, prompt, cached, completion, USD): usage copied from each line, USD worked out by hand from the registry's
# prices for the request's model (USD per 1M tokens: uncached prompt × input + cached × cached input + completion ×
# output; reasoning tokens are inside completion).
COST_CASES = [
    ("0014c443c056dc88", 2618, 2176, 27, ((2618 - 2176) * 0.15 + 2176 * 0.075 + 27 * 0.60) / 1e6),  # gpt-4o-mini
    ("026f9145a96d0405", 3486, 3200, 1820, ((3486 - 3200) * 0.05 + 3200 * 0.005 + 1820 * 0.40) / 1e6),  # gpt-5-nano
    ("038a42090f3c7280", 1954, 1920, 76, ((1954 - 1920) * 0.10 + 1920 * 0.025 + 76 * 0.40) / 1e6),  # gpt-4.1-nano
    ("2198b52be24e4784", 2091, 1408, 634, ((2091 - 1408) * 2.50 + 1408 * 1.25 + 634 * 10.00) / 1e6),  # gpt-4o
    ("274bd6fbd1825c55", 1187, 1152, 14, ((1187 - 1152) * 2.00 + 1152 * 0.50 + 14 * 8.00) / 1e6),  # gpt-4.1
    ("0005182b74f56895", 86, 0, 5, (86 * 2.50 + 5 * 10.00) / 1e6),  # gpt-4o
    ("000917c9a44292fc", 42, 0, 2299, (42 * 1.10 + 2299 * 4.40) / 1e6),  # o4-mini, 1600 of them reasoning
    ("0011b4e28cbc7aee", 432, 0, 28, (432 * 30.0 + 28 * 60.0) / 1e6),  # gpt-4
    ("0013dce64b9e8d3a", 8, 0, 9, (8 * 0.10 + 9 * 0.40) / 1e6),  # gpt-4.1-nano
    ("00234bdd19b22294", 472, 0, 612, (472 * 2.50 + 612 * 10.00) / 1e6),  # gpt-4o (answered by 2024-05-13)
    ("00241b33a54b3c18", 109, 0, 131, (109 * 0.5 + 131 * 1.5) / 1e6),  # gpt-3.5-turbo
    ("0029db4eff5262c4", 543, 0, 49, (543 * 0.15 + 49 * 0.60) / 1e6),  # gpt-4o-mini
    ("006dc2aa824650a9", 43, 0, 405, (43 * 0.05 + 405 * 0.40) / 1e6),  # gpt-5-nano, 384 of them reasoning
    ("008b95c0ad679dfe", 161, 0, 11, (161 * 0.40 + 11 * 1.60) / 1e6),  # gpt-4.1-mini
    ("00902656a403ab1b", 10, 0, 10, (10 * 0.5 + 10 * 1.5) / 1e6),  # gpt-3.5-turbo
    ("015977ca848f182f", 258, 0, 226, (258 * 2.00 + 226 * 8.00) / 1e6),  # gpt-4.1
    ("020444ceb129a4f8", 129, 0, 19, (129 * 0.25 + 19 * 2.00) / 1e6),  # gpt-5-mini
    ("0207bc1c9dc06f79", 1553, 0, 122, (1553 * 30.0 + 122 * 60.0) / 1e6),  # gpt-4-0314
    ("06e896b121c23ca2", 15, 0, 30, (15 * 0.5 + 30 * 1.5) / 1e6),  # gpt-3.5-turbo
    ("07dd7eb8bf2cdaf5", 276, 0, 35, (276 * 10.0 + 35 * 30.0) / 1e6),  # gpt-4-0125-preview
]


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
@pytest.mark.parametrize(("line", "prompt", "cached", "completion", "usd"), COST_CASES)
def test_cost_of_corpus_lines_matches_the_hand_calculation(
    corpus_rows: dict[str, dict[str, Any]], line: str, prompt: int, cached: int, completion: int, usd: float
) -> None:
    row = corpus_rows[line]
    usage = row["usage"]
    assert (usage["prompt_tokens"], (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0) == (
        prompt,
        cached,
    )
    assert usage["completion_tokens"] == completion
    assert cost.cost_usd(usage, cost.price_for(row["model"], row["response_model"])) == pytest.approx(usd)


# --- encodings -------------------------------------------------------------------------------------------------------

# The sha256 OpenAI publishes for each vocabulary (tiktoken's openai_public.py), written out here on their own.
PUBLISHED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_SHA256))
def test_vocabularies_are_the_published_files(name: str) -> None:
    assert hashlib.sha256(tokens.vocabulary_bytes(name)).hexdigest() == PUBLISHED_SHA256[name]


def test_a_tampered_vocabulary_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "cl100k_base.tiktoken"
    fake.write_bytes(b"aGVsbG8= 0\n")
    monkeypatch.setattr(tokens_encoding, "_vocabulary_file", lambda vocab: fake)
    with pytest.raises(tokens.EncodingDataError, match="is not OpenAI's cl100k_base"):
        tokens.vocabulary_bytes("cl100k_base")


def test_encodings_match_known_token_ids() -> None:
    # Ids from tiktoken's own documentation and tests.
    assert tokens.encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokens.encoding("o200k_base").encode("hello world") == [24912, 2375]


def test_count_text_uses_the_model_encoding() -> None:
    assert tokens.count_text("hello world", "gpt-4") == 2
    assert tokens.count_text("<|endoftext|>", "gpt-4o") > 1  # special-token text is ordinary text here


# --- prompt rules ----------------------------------------------------------------------------------------------------


def _body(model: str, *messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": list(messages), **extra}


def test_plain_chat_is_three_per_message_plus_three() -> None:
    enc = tokens.encoding("o200k_base")
    body = _body("gpt-4o", {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"})
    by_hand = 3 + (3 + len(enc.encode("system")) + len(enc.encode("Be brief.")))
    by_hand += 3 + len(enc.encode("user")) + len(enc.encode("Hi there"))
    assert tokens.prompt_tokens(body) == by_hand


def test_text_parts_count_like_their_joined_text() -> None:
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "world"}]
    joined = _body("gpt-4o-mini", {"role": "user", "content": "Hello world"})
    assert tokens.prompt_tokens(_body("gpt-4o-mini", {"role": "user", "content": parts})) == tokens.prompt_tokens(
        joined
    )


def test_call_arguments_count_as_compact_json() -> None:
    def history(arguments: str) -> dict[str, Any]:
        call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        return _body(
            "gpt-4o",
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        )

    assert tokens.prompt_tokens(history('{"city": "Paris"}')) == tokens.prompt_tokens(history('{"city":"Paris"}'))


def test_nested_object_properties_are_not_indented() -> None:
    window = {"type": "object", "properties": {"start": {"type": "string", "description": "ISO start"}}}
    fn = {"name": "schedule", "parameters": {"type": "object", "properties": {"window": window}}}
    assert "window?: {\n// ISO start\nstart?: string,\n}," in tokens.render_tools([fn])


def test_a_union_with_null_is_inline_unless_the_other_variant_is_an_object() -> None:
    status = {"anyOf": [{"type": "string", "enum": ["pending", "done"]}, {"type": "null"}]}
    arguments = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    fn = {"name": "f", "parameters": {"type": "object", "properties": {"status": status, "arguments": arguments}}}
    text = tokens.render_tools([fn])
    assert 'status?: "pending" | "done" | null,' in text
    assert "arguments?:\n | {\n   }\n | null\n," in text


def test_a_union_of_plain_types_is_inline() -> None:
    repo = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    domains = {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "description": "Domains."}
    entity = {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"id": {"type": "string"}}}]}
    properties = {"repo": repo, "domains": domains, "entity": entity}
    fn = {"name": "f", "strict": True, "parameters": {"type": "object", "properties": properties}}
    text = tokens.render_tools([fn])
    assert "repo?: string | string[]," in text
    assert "// Domains.\ndomains?: string[] | null," in text
    assert "entity?:\n | string\n | {\n" in text  # a union with an object variant stays one line per variant


def _tool(strict: bool, description: str | None) -> dict[str, Any]:
    city: dict[str, Any] = {"type": "string"} if description is None else {"type": "string", "description": description}
    parameters = {"type": "object", "properties": {"city": city}, "required": ["city"], "additionalProperties": False}
    return {"type": "function", "function": {"name": "get_weather", "parameters": parameters, "strict": strict}}


def test_a_strict_function_with_an_undescribed_property_costs_one_less() -> None:
    enc = tokens.encoding("o200k_base")

    def beyond_rendering(model: str, tool: dict[str, Any]) -> int:
        body = _body(model, {"role": "user", "content": "Weather?"}, tools=[tool])
        return tokens.prompt_tokens(body) - len(enc.encode_ordinary(tokens.render_tools([tool["function"]])))

    assert beyond_rendering("gpt-4o", _tool(True, None)) == beyond_rendering("gpt-4o", _tool(True, "City")) - 1
    assert beyond_rendering("gpt-4o", _tool(False, None)) == beyond_rendering("gpt-4o", _tool(False, "City"))
    # Reasoning models alike (pydantic-ai's strict tools on gpt-5-mini and gpt-5.4-mini, gpt-5, ellmer's on gpt-5-nano).
    for model in ("gpt-5", "gpt-5-mini", "gpt-5.4-mini", "gpt-5-nano"):
        assert beyond_rendering(model, _tool(True, None)) == beyond_rendering(model, _tool(True, "City")) - 1
    # An empty description is no description.
    assert beyond_rendering("gpt-4o", _tool(True, "")) == beyond_rendering("gpt-4o", _tool(True, None))
    # A titled property is not bare: its title line is shown alone instead.
    titled = _tool(True, None)
    titled["function"]["parameters"]["properties"]["city"]["title"] = "City"
    assert beyond_rendering("gpt-4o", titled) == beyond_rendering("gpt-4o", _tool(True, "City"))


def test_non_strict_parameters_without_comments_are_written_on_one_line() -> None:
    add = {"a": {"type": "integer"}, "b": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}}}
    fn = {"name": "add", "parameters": {"type": "object", "properties": add, "required": ["a", "b"]}}
    assert "type add = (_: {a: number, b: number, tags?: string[]}) => any;" in tokens.render_tools([fn])
    # A description, default or title (even one the snapshot does not show) keeps the one-property-per-line layout,
    # and so does strict mode.
    for extra in ({"description": "First"}, {"default": 1}, {"title": "A"}):
        described = {**fn, "parameters": {**fn["parameters"], "properties": {**add, "a": {"type": "integer", **extra}}}}
        assert "(_: {\n" in tokens.render_tools([described])
    assert "(_: {\n" in tokens.render_tools([{**fn, "strict": True}])


def test_descriptions_are_stripped_line_by_line() -> None:
    doc = "Add two numbers.\n\n    Args:\n        a: first\n    "
    fn = {"name": "add", "description": doc, "parameters": {"type": "object", "properties": {}}}
    assert "// Add two numbers.\n//\n// Args:\n// a: first\ntype add = () => any;" in tokens.render_tools([fn])
    city = {"type": "string", "description": "The city.\n  Valid: any "}
    fn = {"name": "f", "parameters": {"type": "object", "properties": {"city": city}}}
    assert "// The city.\n// Valid: any\ncity?: string," in tokens.render_tools([fn])


def test_the_parameters_title_and_description_follow_the_function_description() -> None:
    params = {"title": "Book", "description": "A book.", "type": "object", "properties": {"t": {"type": "string"}}}
    text = tokens.render_tools([{"name": "f", "description": "Extract.", "parameters": params, "strict": True}])
    assert "// Extract.\n// Book\n//\n// A book.\ntype f = (_: {\n" in text
    # Non-strict: the title line alone.
    text = tokens.render_tools([{"name": "f", "description": "Extract.", "parameters": params}])
    assert "// Extract.\n// Book\n// A book.\ntype f = (_: {" in text


def test_a_strict_type_list_costs_a_fixed_34() -> None:
    def count(kind: Any, strict: bool) -> int:
        tz = {"type": kind, "description": "Time zone"}
        parameters = {"type": "object", "properties": {"tz": tz}, "required": ["tz"], "additionalProperties": False}
        tool = {"type": "function", "function": {"name": "now", "parameters": parameters, "strict": strict}}
        return tokens.prompt_tokens(_body("gpt-4o", {"role": "user", "content": "Time?"}, tools=[tool]))

    shown = tokens.count_text(" | null", "gpt-4o")
    assert count(["string", "null"], True) == count("string", True) + shown + 34
    assert count(["string", "null"], False) == count("string", False) + shown


def test_a_schema_title_is_counted_once_more() -> None:
    enc = tokens.encoding("o200k_base")

    def count(schema: dict[str, Any], first: str) -> int:
        response_format = {"type": "json_schema", "json_schema": {"name": "SimpleBook", "schema": schema}}
        return tokens.prompt_tokens(
            _body("gpt-4o", {"role": first, "content": "A book?"}, response_format=response_format)
        )

    plain = {"type": "object", "properties": {"title": {"type": "string"}}}
    titled = {"type": "object", "properties": {"title": {"type": "string"}}, "title": "SimpleBook"}
    shown = len(enc.encode_ordinary(json.dumps(titled, separators=(",", ":")))) - len(
        enc.encode_ordinary(json.dumps(plain, separators=(",", ":")))
    )
    again = len(enc.encode_ordinary("SimpleBook"))
    assert count(titled, "user") - count(plain, "user") == shown + again - 1
    assert count(titled, "system") - count(plain, "system") == shown + again - 2


def test_a_json_schema_is_shown_with_ascii_escapes_and_without_defaults_or_bounds() -> None:
    score = {"type": "number", "description": "0 – 1", "default": 0.5, "minimum": 0.0, "maximum": 1.0}
    schema = {"type": "object", "properties": {"score": score}, "required": ["score"], "additionalProperties": False}
    text = tokens.render_response_format({"name": "Score", "schema": schema})
    assert text.endswith('{"type":"object","properties":{"score":{"type":"number","description":"0 \\u2013 1"}}}')


def test_non_strict_titles_show_on_newer_snapshots() -> None:
    city = {"type": "string", "title": "City", "description": "A city"}
    fn = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": city}, "required": ["city"]}}
    assert "// City\n// A city\ncity: string," in tokens.render_tools([fn], titles=True)
    assert "City" not in tokens.render_tools([fn])

    def count(model: str, **extra: Any) -> int:
        body = _body(model, {"role": "user", "content": "Weather?"}, tools=[{"type": "function", "function": fn}])
        return tokens.prompt_tokens({**body, **extra})

    described = {"city": {"type": "string", "description": "A city"}}
    untitled = {**fn, "parameters": {**fn["parameters"], "properties": described}}

    def count_untitled(model: str, **extra: Any) -> int:
        body = _body(model, {"role": "user", "content": "Weather?"}, tools=[{"type": "function", "function": untitled}])
        return tokens.prompt_tokens({**body, **extra})

    assert count("gpt-4o-mini") > count_untitled("gpt-4o-mini")
    assert count("gpt-4o-2024-05-13") == count_untitled("gpt-4o-2024-05-13")
    # A json_schema answer or a strict function in the request does not hide them.
    schema = {"type": "json_schema", "json_schema": {"name": "Weather", "schema": {"type": "object"}}}
    assert count("gpt-4o-mini", response_format=schema) > count_untitled("gpt-4o-mini", response_format=schema)
    assert "// City\n// A city\ncity: string," in tokens.render_tools([fn, {**untitled, "strict": True}], titles=True)


def test_a_strict_title_is_set_off_from_a_description_only() -> None:
    titled = {"title": "City", "type": "string"}
    params = {"type": "object", "properties": {"city": titled, "day": {**titled, "title": "Day", "description": "D"}}}
    text = tokens.render_tools([{"name": "f", "parameters": params, "strict": True}])
    assert "// City\ncity?: string,\n// Day\n//\n// D\nday?: string," in text


def test_a_json_schema_next_to_tools_costs_three_less() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    schema = {"type": "json_schema", "json_schema": {"name": "Out", "schema": {"type": "object"}}}
    enc = tokens.encoding("o200k_base")
    shown = len(enc.encode_ordinary(tokens.render_response_format(schema["json_schema"])))
    user = {"role": "user", "content": "Hi"}

    def extra(**fields: Any) -> int:
        with_schema = tokens.prompt_tokens(_body("gpt-4o", user, response_format=schema, **fields))
        return with_schema - tokens.prompt_tokens(_body("gpt-4o", user, **fields)) - shown

    assert extra() == 7  # a new message for the schema
    assert extra(tools=[tool]) == 4 - 3  # joined to the tools' message, 3 less


def test_tools_join_a_system_message_across_its_last_characters() -> None:
    tool = {"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}}

    def extra(system: str) -> int:
        bare = _body("gpt-4o", {"role": "system", "content": system}, {"role": "user", "content": "Hi"})
        return tokens.prompt_tokens({**bare, "tools": [tool]}) - tokens.prompt_tokens(bare)

    # ".\n" is one token, so the definitions cost one token less after a full stop than after a word.
    assert extra("Be brief.") == extra("Be brief") - 1


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo-0125", "gpt-4-0613"])
def test_tools_are_set_off_from_the_system_text_by_an_empty_line(model: str) -> None:
    fn: dict[str, Any] = {"name": "noop", "parameters": {"type": "object", "properties": {}}}
    tool = {"type": "function", "function": fn}
    entry = models.lookup(model)
    assert entry is not None
    enc = tokens.encoding(str(entry.encoding))
    shown = tokens.render_tools([fn], legacy=model == "gpt-4-0613")

    def join(system: str) -> int:
        bare = _body(model, {"role": "system", "content": system}, {"role": "user", "content": "Hi"})
        extra = tokens.prompt_tokens({**bare, "tools": [tool]}) - tokens.prompt_tokens(bare)
        return extra - len(enc.encode_ordinary(shown))

    def merged(joined: str, system: str) -> int:
        count = enc.encode_ordinary
        return len(count(joined + shown)) - len(count(system)) - len(count(shown))

    # The same rule on both encodings: the definitions follow an empty line, merging with the system text's end.
    for system in ("Be brief.", "Be brief", "Be brief.\n"):
        separator = "\n" if system.endswith("\n") else "\n\n"
        assert join(system) == merged(system + separator, system) - 1, repr(system)
    # An indented text's last run of spaces merges with one newline, not with two (crewAI's prompts on gpt-4-0613).
    indented = "Answer in JSON:\n" + " " * 28
    assert join(indented) == merged(indented + "\n\n", indented) - 1 == merged(indented + "\n", indented)
    # After a full stop the newlines merge into it (".\n\n" is one token): one token less than after a word.
    assert join("Be brief.") == join("Be brief") - 1


def test_a_tool_result_name_is_not_counted() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}

    def count(**name: str) -> int:
        return tokens.prompt_tokens(
            _body(
                "gpt-4o",
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny", **name},
            )
        )

    assert count(name="get_weather") == count()


def _parallel(name: str, ask: str, results: tuple[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Two parallel calls of ``name`` and their results: (the calls, the request body)."""
    calls = [{"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": "{}"}} for i in (1, 2)]
    answers = [
        {"role": "tool", "tool_call_id": f"c{i}", "content": text} for i, text in zip((1, 2), results, strict=True)
    ]
    user = {"role": "user", "content": ask}
    return calls, _body("gpt-4o", user, {"role": "assistant", "content": None, "tool_calls": calls}, *answers)


def test_parallel_calls_are_one_wrapper_call_answered_by_one_list() -> None:
    enc = tokens.encoding("o200k_base")
    calls, body = _parallel("roll", "Roll twice", ("4", "6"))
    wrapper = '{"tool_uses":[{"recipient_name":"functions.roll","parameters":{}},' + (
        '{"recipient_name":"functions.roll","parameters":{}}]}'
    )
    assert tokens.render_parallel_calls(calls) == wrapper
    user = 3 + 1 + len(enc.encode_ordinary("Roll twice"))
    assistant = 3 + 1 + len(enc.encode_ordinary(" to=multi_tool_use.parallel")) + len(enc.encode_ordinary(wrapper)) + 6
    results = 3 + 1 + len(enc.encode_ordinary('["4", "6"]'))
    assert tokens.prompt_tokens(body) == user + assistant + results + 3


def test_parallel_results_were_escaped_until_march_2026() -> None:
    _, body = _parallel("temp", "Temperatures?", ("72°F", "64°F"))
    enc = tokens.encoding("o200k_base")
    raw, escaped = json.dumps(["72°F", "64°F"], ensure_ascii=False), json.dumps(["72°F", "64°F"])
    extra = len(enc.encode_ordinary(escaped)) - len(enc.encode_ordinary(raw))
    assert extra > 0
    after = tokens.prompt_tokens(body, at=dt.date(2026, 3, 12))
    assert tokens.prompt_tokens(body, at=dt.date(2026, 3, 3)) == after + extra
    assert tokens.prompt_tokens(body) == after  # today: as the server writes them now
    # Between the last escaped and the first raw recording the count is an estimate.
    assert tokens.estimate_prompt_tokens(body, at=dt.date(2026, 3, 8)) == (after, False)
    # ASCII results are the same either way.
    plain = [
        {**m, "content": m["content"].replace("°", " deg ")} if m["role"] == "tool" else m for m in body["messages"]
    ]
    ascii_body = {**body, "messages": plain}
    assert tokens.prompt_tokens(ascii_body, at=dt.date(2026, 1, 1)) == tokens.prompt_tokens(ascii_body)


def test_an_image_part_is_only_estimated() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
    body = _body("gpt-4o", {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]})
    with pytest.raises(tokens.NotCountableError, match="estimate_prompt_tokens"):
        tokens.prompt_tokens(body)
    count, exact = tokens.estimate_prompt_tokens(body)
    assert exact is False
    assert count > tokens.prompt_tokens(_body("gpt-4o", {"role": "user", "content": "What is this?"}))


def test_a_custom_tool_is_only_estimated() -> None:
    tool = {"type": "custom", "custom": {"name": "math_exp", "description": "Creates math expressions"}}
    body = _body("gpt-5", {"role": "user", "content": "Add four and four."}, tools=[tool])
    with pytest.raises(tokens.NotCountableError, match="'custom' tool"):
        tokens.prompt_tokens(body)
    assert tokens.estimate_prompt_tokens(body)[1] is False


def test_a_text_only_request_is_an_exact_estimate() -> None:
    body = _body("gpt-4o", {"role": "user", "content": "Hi"})
    assert tokens.estimate_prompt_tokens(body) == (tokens.prompt_tokens(body), True)


def test_an_unknown_model_names_itself_and_the_registry_file() -> None:
    with pytest.raises(tokens.UnknownModelError, match=r"'gpt-9-ultra'.*harness/tokens/data/models\.yaml") as info:
        tokens.prompt_tokens(_body("gpt-9-ultra", {"role": "user", "content": "Hi"}))
    assert isinstance(info.value, PromptVCRError)


def test_a_registry_entry_with_an_unknown_format_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = models.lookup("gpt-4o")
    assert entry is not None
    broken = dataclasses.replace(entry, chat_format="no-such-format")
    monkeypatch.setattr(tokens, "lookup", lambda model: broken)
    with pytest.raises(tokens.TokenCountError, match=r"models\.yaml: gpt-4o names an unknown chat_format"):
        tokens.prompt_tokens(_body("gpt-4o", {"role": "user", "content": "Hi"}))


def test_the_local_model_is_not_countable_offline() -> None:
    with pytest.raises(tokens.NotCountableError, match="gemma-3-270m"):
        tokens.prompt_tokens(_body("gemma-3-270m", {"role": "user", "content": "Hi"}))


# --- registry --------------------------------------------------------------------------------------------------------


def test_snapshots_resolve_to_their_model() -> None:
    raw = yaml.safe_load((REPO / "harness" / "tokens" / "data" / "models.yaml").read_text(encoding="utf-8"))["models"]
    assert "gpt-4o-2024-08-06" in raw["gpt-4o"]["snapshots"]
    price = cost.price_for("gpt-4o-2024-08-06")
    assert price is not None
    assert (price.model, price.input, price.cached_input, price.output) == ("gpt-4o", 2.50, 1.25, 10.00)
    assert models.lookup("gpt-4o-mini-2024-07-18") is models.lookup("gpt-4o-mini")
    # the request's model is tried first, then the one the response names
    assert cost.price_for("no-such-model", "gpt-4.1-nano-2025-04-14") == cost.price_for("gpt-4.1-nano")
    assert models.context_window("gpt-4.1-mini-2025-04-14") == 1047576


def test_a_dated_snapshot_with_its_own_price_stays_apart() -> None:
    older, current = cost.price_for("gpt-4o-2024-05-13"), cost.price_for("gpt-4o")
    assert older is not None and current is not None
    assert older.input != current.input


def test_unpriced_models_are_none_never_zero() -> None:
    assert cost.price_for("gpt-5.4") is None  # known to the registry, not priced yet
    assert cost.cost_usd({"prompt_tokens": 10, "completion_tokens": 5}, cost.price_for("gpt-5.4")) is None


def test_shutdown_warning() -> None:
    today = dt.date(2026, 11, 25)
    retired = models.shutdown_warning("gpt-4", today)
    assert retired is not None and "was shut down" in retired and "2026-10-23" in retired
    assert models.shutdown_warning("gpt-4-0613", today) == retired.replace("gpt-4 ", "gpt-4-0613 ")
    soon = models.shutdown_warning("gpt-4o", today)
    assert soon is not None and "2027-01-14" in soon and "in 50 days" in soon
    assert models.shutdown_warning("gpt-5.4", today) is None
    assert models.shutdown_warning("no-such-model", today) is None


def test_every_model_the_sdk_lists_as_retired_before_today_is_marked_shut_down() -> None:
    # The three models the project's README names as shut down on 2026-10-23.
    for name in ("gpt-3.5-turbo", "gpt-4", "gpt-4-0613"):
        entry = models.lookup(name)
        assert entry is not None and entry.shutdown == dt.date(2026, 10, 23)


def test_the_0613_renderer_ignores_strict_and_drops_nested_comments() -> None:
    book = {
        "type": "object",
        "title": "Book",
        "properties": {"vibe": {"type": "string", "title": "Vibe", "description": "One word"}},
        "required": ["vibe"],
    }
    params = {
        "type": "object",
        "title": "Series",
        "description": "A series.",
        "properties": {"books": {"type": "array", "title": "Books", "items": book}},
        "required": ["books"],
    }
    fn = {"name": "f", "description": "Extract.", "parameters": params, "strict": True}
    text = tokens.render_tools([fn], legacy=True)
    # No parameters' title or description, no strict titles; the nested object indented, without its comments.
    assert "// Extract.\ntype f = (_: {\nbooks: {\n  vibe: string,\n}[],\n}) => any;" in text
    assert "Series" not in text and "A series." not in text
    assert tokens.render_tools([{**fn, "strict": False}], legacy=True) == text
    # A strict function's extra costs (bare properties, type lists) do not apply either.
    bare = {"type": "object", "properties": {"tz": {"type": ["string", "null"]}}, "required": ["tz"]}
    tool = {"type": "function", "function": {"name": "now", "parameters": bare, "strict": True}}
    body = _body("gpt-4-0613", {"role": "user", "content": "Time?"}, tools=[tool])
    enc = tokens.encoding("cl100k_base")
    shown = len(enc.encode_ordinary(tokens.render_tools([tool["function"]], legacy=True)))
    assert tokens.prompt_tokens(body) == tokens.prompt_tokens(_body("gpt-4-0613", body["messages"][0])) + shown + 3


def test_a_forced_function_on_0613_costs_its_name_plus_4_and_required_2() -> None:
    fn = {"name": "Joke", "parameters": {"type": "object", "properties": {"setup": {"type": "string"}}}}
    tools = [{"type": "function", "function": fn}]
    for first in ("system", "user"):
        message = {"role": first, "content": "A joke."}
        free = tokens.prompt_tokens(_body("gpt-4-0613", message, tools=tools))
        named = {"type": "function", "function": {"name": "Joke"}}
        forced = tokens.prompt_tokens(_body("gpt-4-0613", message, tools=tools, tool_choice=named))
        assert forced - free == tokens.count_text("Joke", "gpt-4-0613") + 4
        # "required" costs 2 there, measured on one source only: an estimate.
        required = _body("gpt-4-0613", message, tools=tools, tool_choice="required")
        assert tokens.estimate_prompt_tokens(required) == (free + 2, False)
    # Later snapshots keep their own costs.
    message = {"role": "user", "content": "A joke."}
    assert tokens.prompt_tokens(_body("gpt-3.5-turbo-0125", message, tools=tools, tool_choice="required")) == (
        tokens.prompt_tokens(_body("gpt-3.5-turbo-0125", message, tools=tools))
    )


def test_the_0613_renderer_leaves_out_objects_without_properties() -> None:
    name = {"type": "string", "description": "The tool."}
    arguments = {"type": "object", "description": "Its arguments."}
    params = {"type": "object", "properties": {"tool_name": name, "arguments": arguments}, "required": ["tool_name"]}
    fn = {"name": "Call", "parameters": params}
    text = tokens.render_tools([fn], legacy=True)
    assert "type Call = (_: {\n// The tool.\ntool_name: string,\n}) => any;" in text
    # In a union the empty object is left out: `dict | None` is shown as null.
    optional = {"anyOf": [{"type": "object"}, {"type": "null"}], "description": "Its arguments."}
    text = tokens.render_tools([{**fn, "parameters": {**params, "properties": {"arguments": optional}}}], legacy=True)
    assert "// Its arguments.\narguments?: null,\n" in text
    # Later snapshots show them.
    assert "arguments?: {\n}," in tokens.render_tools([fn])


def test_a_parameters_title_is_set_off_where_titles_show() -> None:
    params = {"type": "object", "title": "get_temp_input", "properties": {"city": {"type": "string", "title": "City"}}}
    fn = {"name": "get_temp", "description": "Temperature.", "parameters": params}
    assert "// Temperature.\n// get_temp_input\n//\ntype get_temp" in tokens.render_tools([fn], titles=True)
    assert "// Temperature.\n// get_temp_input\ntype get_temp" in tokens.render_tools([fn])
    assert "// get_temp_input\n//\ntype" in tokens.render_tools([{**fn, "strict": True}])


# --- aliases by date -------------------------------------------------------------------------------------------------


def test_an_alias_resolves_to_the_snapshot_it_served_on_that_date() -> None:
    assert models.resolve("gpt-4o", dt.date(2024, 9, 30)) == "gpt-4o-2024-05-13"
    assert models.resolve("gpt-4o", dt.date(2024, 10, 2)) == "gpt-4o-2024-08-06"
    assert models.resolve("gpt-3.5-turbo", dt.date(2023, 5, 1)) == "gpt-3.5-turbo-0301"
    assert models.resolve("gpt-3.5-turbo", dt.date(2023, 12, 20)) == "gpt-3.5-turbo-0613"
    assert models.resolve("gpt-3.5-turbo", dt.date(2024, 3, 1)) == "gpt-3.5-turbo-0125"
    assert models.resolve("gpt-4", dt.date(2023, 4, 1)) == "gpt-4-0314"
    # Before its first recorded move an alias is its first snapshot; a dated id or an alias without history is itself.
    assert models.resolve("gpt-4o", dt.date(2020, 1, 1)) == "gpt-4o-2024-05-13"
    assert models.resolve("gpt-4o-2024-08-06", dt.date(2024, 6, 1)) == "gpt-4o-2024-08-06"
    assert models.resolve("chatgpt-4o-latest", dt.date(2024, 6, 1)) == "chatgpt-4o-latest"
    assert models.resolve("no-such-model", dt.date(2024, 6, 1)) == "no-such-model"


def test_prompt_tokens_counts_an_alias_as_of_the_request_date() -> None:
    city = {"type": "string", "title": "City", "description": "A city"}
    fn = {"name": "weather", "parameters": {"type": "object", "properties": {"city": city}}}
    body = _body("gpt-4o", {"role": "user", "content": "Weather?"}, tools=[{"type": "function", "function": fn}])
    # gpt-4o-2024-05-13 (the alias until 2024-10-02) shows no non-strict titles; its successor does.
    before = tokens.prompt_tokens(body, at=dt.date(2024, 9, 1))
    assert before == tokens.prompt_tokens(body, model="gpt-4o-2024-05-13")
    assert tokens.prompt_tokens(body, at=dt.date(2025, 1, 1)) == before + tokens.count_text("// City\n", "gpt-4o")
    # Without a date, today: the current snapshot.
    assert tokens.prompt_tokens(body) == tokens.prompt_tokens(body, model="gpt-4o-2024-08-06")
    # gpt-3.5-turbo was gpt-3.5-turbo-0301 in spring 2023: four tokens per message.
    chat = _body("gpt-3.5-turbo", {"role": "user", "content": "Hi"})
    assert tokens.prompt_tokens(chat, at=dt.date(2023, 4, 1)) == tokens.prompt_tokens(chat) + 1


def _registry_with(entries: dict[str, Any]) -> Any:
    return {name: models._model(name, raw) for name, raw in entries.items()}


def test_a_history_out_of_order_or_naming_an_unknown_snapshot_is_refused() -> None:
    known = _registry_with({"a-1": {}, "a-2": {}})
    unordered = models._model(
        "a", {"history": [{"from": "2024-05-01", "snapshot": "a-2"}, {"from": "2024-01-01", "snapshot": "a-1"}]}
    )
    with pytest.raises(ValueError, match=r"models\.yaml: a: history dates must be distinct and oldest first"):
        models._check_history(unordered, {**known, "a": unordered})
    unknown = models._model("a", {"history": [{"from": "2024-01-01", "snapshot": "a-3"}]})
    with pytest.raises(ValueError, match=r"names snapshots not in the registry: \['a-3'\]"):
        models._check_history(unknown, {**known, "a": unknown})


@pytest.mark.parametrize(
    "history",
    [
        [{"snapshot": "a-1"}],
        [{"from": "2024-13-01", "snapshot": "a-1"}],
        ["a-1"],
        [{"from": "2024-01-01", "snapshot": 1}],
    ],
)
def test_a_malformed_history_entry_is_refused(history: Any) -> None:
    with pytest.raises(ValueError, match=r"models\.yaml: a: history\[0\]"):
        models._model("a", {"history": history})


def test_an_alias_resolves_for_a_datetime_too() -> None:
    assert models.resolve("gpt-4o", dt.datetime(2024, 9, 30, 23, 59, tzinfo=dt.UTC)) == "gpt-4o-2024-05-13"


def test_every_history_snapshot_shares_the_alias_encoding() -> None:
    for name, entry in models.registry().items():
        for _, snapshot in entry.history if name == entry.name else ():
            target = models.lookup(snapshot)
            assert target is not None and target.encoding == entry.encoding, (name, snapshot)


# --- rules and estimates ---------------------------------------------------------------------------------------------


def test_an_unknown_rule_name_is_refused() -> None:
    with pytest.raises(tokens.TokenCountError, match=r"unknown token-count rules \['no-such-rule'\]"):
        tokens_rules.Rules({"no-such-rule"})


def test_switching_a_rule_off_changes_only_what_it_governs() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    body = _body("gpt-4o", {"role": "user", "content": "Go"}, {"role": "assistant", "tool_calls": [call]})
    rules = tokens_rules.Rules({"call-arguments-compact"})
    spaced = tokens.prompt_tokens(body, rules=rules)
    assert "call-arguments-compact" in rules.consulted
    enc = tokens.encoding("o200k_base")
    assert spaced - tokens.prompt_tokens(body) == len(enc.encode('{"a": 1}')) - len(enc.encode('{"a":1}'))
    plain = _body("gpt-4o", {"role": "user", "content": "Go"})
    assert tokens.prompt_tokens(plain, rules=tokens_rules.Rules({"call-arguments-compact"})) == tokens.prompt_tokens(
        plain
    )


@pytest.mark.parametrize(
    "score",
    [{"type": "number", "default": 0.5}, {"type": "number", "maximum": 1}, {"type": "string", "description": "0 – 1"}],
)
def test_a_schema_shape_confirmed_on_one_source_only_is_an_estimate(score: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"score": score}}
    response_format = {"type": "json_schema", "json_schema": {"name": "Score", "schema": schema}}
    body = _body("gpt-4o", {"role": "user", "content": "Score?"}, response_format=response_format)
    with pytest.raises(tokens.NotCountableError, match=r"rule schema-[a-z-]+ \(found on one source\)"):
        tokens.prompt_tokens(body)
    count, exact = tokens.estimate_prompt_tokens(body)
    assert exact is False
    plain = {"type": "object", "properties": {"score": {"type": "number"}}}
    assert tokens.estimate_prompt_tokens(
        {**body, "response_format": {**response_format, "json_schema": {"name": "Score", "schema": plain}}}
    )[1]
    assert count > 0


def test_an_empty_function_description_on_a_reasoning_model_is_an_estimate() -> None:
    fn = {"name": "get_file", "description": "", "parameters": {"type": "object", "properties": {}}}
    body = _body("gpt-5-mini", {"role": "user", "content": "File?"}, tools=[{"type": "function", "function": fn}])
    described = {**body, "tools": [{"type": "function", "function": {**fn, "description": "A file."}}]}
    count, exact = tokens.estimate_prompt_tokens(body)
    assert exact is False and tokens.estimate_prompt_tokens(described)[1] is True
    # One less than the same function with no description at all (pydantic-ai's gpt-5-mini lines).
    bare = {**body, "tools": [{"type": "function", "function": {k: v for k, v in fn.items() if k != "description"}}]}
    assert count == tokens.prompt_tokens(bare) - 1
    # Elsewhere an empty description is exact and costs nothing.
    assert tokens.prompt_tokens({**body, "model": "gpt-4o"}) == tokens.prompt_tokens({**bare, "model": "gpt-4o"})


def test_a_reference_to_a_titled_definition_is_an_estimate() -> None:
    address = {"type": "object", "properties": {"city": {"type": "string"}}}
    params = {"type": "object", "properties": {"address": {"$ref": "#/$defs/Address"}}, "$defs": {"Address": address}}
    fn = {"name": "save", "parameters": params}
    body = _body("gpt-4o", {"role": "user", "content": "Save"}, tools=[{"type": "function", "function": fn}])
    assert tokens.estimate_prompt_tokens(body)[1] is True  # an untitled definition is shown expanded, exactly
    titled = {**params, "$defs": {"Address": {**address, "title": "Address"}}}
    body["tools"][0]["function"] = {**fn, "parameters": titled}
    count, exact = tokens.estimate_prompt_tokens(body)
    assert (
        exact is False
        and count == tokens.estimate_prompt_tokens({**body, "tools": [{"type": "function", "function": fn}]})[0]
    )
    with pytest.raises(tokens.NotCountableError, match=r"a \$ref to a titled or described definition"):
        tokens.prompt_tokens(body)


def test_the_estimate_margin_is_a_tenth_and_at_least_32() -> None:
    assert tokens.estimate_margin(100) == 32
    assert tokens.estimate_margin(1000) == 100
    assert tokens.estimate_margin(1001) == 101
