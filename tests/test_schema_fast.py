"""The plain-Python schema accepter (harness.checks._schema_fast) only ever says "valid" where jsonschema does, and
only compiles schemas jsonschema's meta-schema accepts: checked on random schemas and instances against jsonschema
itself. A json_schema check gives the same results through it as through jsonschema alone.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import jsonschema
import pytest

from harness.checks import _builtins as checks
from harness.checks import _schema_fast as schema_fast
from harness.checks._answer import Answer

NAMES = ("a", "b", "c")
TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
UNKNOWN = ("pattern", "format", "$ref", "anyOf", "uniqueItems", "prefixItems", "multipleOf", "x-note", "$schema")


def _scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None, True, False, 0, 1, -1, 2, 3, 10**20, 0.0, -0.0, 1.0, 2.0, 2.5, -1.5, 1e300, math.inf, math.nan,
            "", "a", "b", "ab", "abc", "é", "abcd",
        ]
    )  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value as json.loads makes them (NaN and infinity too: it reads them)."""
    kind = rng.random()
    if depth >= 3 or kind < 0.55:
        return _scalar(rng)
    if kind < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = rng.sample((*NAMES, "z"), rng.randint(0, 4))
    return {key: _value(rng, depth + 1) for key in keys}


def _bound(rng: random.Random) -> Any:
    """Mostly what the meta-schema allows for a bound, sometimes not (the accepter must then refuse the schema)."""
    return rng.choice([0, 1, 2, 3, 2, 1, -1, 2.0, 1.5, True, "2", None])


def _subschema(rng: random.Random, depth: int) -> Any:
    return rng.choice([True, False]) if rng.random() < 0.15 else _schema(rng, depth + 1)


def _schema(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for _ in range(rng.randint(0, 4)):
        keyword = rng.choice(
            [
                "type", "type", "properties", "required", "additionalProperties", "items", "enum", "const",
                "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minimum",
                "maximum", "exclusiveMinimum", "exclusiveMaximum", "title", "description", "default", "examples",
                "deprecated", "unknown",
            ]
        )  # fmt: skip
        if keyword == "type":
            names = rng.sample(TYPES, rng.randint(1, 3))
            schema["type"] = names[0] if rng.random() < 0.6 else names + (names[:1] if rng.random() < 0.1 else [])
        elif keyword == "properties" and depth < 3:
            schema["properties"] = {n: _subschema(rng, depth) for n in rng.sample(NAMES, rng.randint(0, 3))}
        elif keyword == "required":
            schema["required"] = rng.sample(NAMES, rng.randint(0, 3)) + (["a"] if rng.random() < 0.1 else [])
        elif keyword in ("additionalProperties", "items") and depth < 3:
            schema[keyword] = _subschema(rng, depth)
        elif keyword == "enum":
            schema["enum"] = [_value(rng, 2) for _ in range(rng.randint(0, 4))]
        elif keyword == "const":
            schema["const"] = _value(rng, 2)
        elif keyword.startswith(("min", "max", "exclusive")):
            schema[keyword] = _bound(rng) if "Length" in keyword or "Items" in keyword else _scalar(rng)
        elif keyword in ("title", "description"):
            schema[keyword] = rng.choice(["a title", 3])
        elif keyword in ("default", "examples"):
            schema[keyword] = _value(rng) if keyword == "default" else rng.choice([[1, "x"], "not a list"])
        elif keyword == "deprecated":
            schema[keyword] = rng.choice([True, "yes"])
        elif keyword == "unknown":
            schema[rng.choice(UNKNOWN)] = rng.choice(["^a", "date", "#", [{"type": "string"}], True, 2])
    return schema


def _near(rng: random.Random, schema: Any, depth: int = 0) -> Any:
    """An instance likely to pass ``schema`` (then mutated now and then), so both verdicts get exercised."""
    if not isinstance(schema, dict) or depth > 3 or rng.random() < 0.2:
        return _value(rng)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    kind = rng.choice(kind) if isinstance(kind, list) and kind else kind
    if kind == "object" or "properties" in schema or "required" in schema:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        names = set(props) | {n for n in schema.get("required", []) if isinstance(n, str)}
        return {n: _near(rng, props.get(n, True), depth + 1) for n in sorted(names)}
    if kind == "array" or "items" in schema:
        return [_near(rng, schema.get("items", True), depth + 1) for _ in range(rng.randint(0, 3))]
    samples = {"string": "ab", "integer": 2, "number": 1.5, "boolean": True, "null": None}
    return samples.get(kind, _scalar(rng)) if isinstance(kind, str) else _scalar(rng)


@pytest.mark.parametrize("seed", range(8))
def test_the_accepter_never_says_valid_where_jsonschema_says_invalid(seed: int) -> None:
    rng = random.Random(seed)
    compiled = accepted = rejected_by_both = 0
    for _ in range(600):
        schema = _schema(rng)
        accepts = schema_fast.compile(schema)
        if accepts is None:
            continue
        compiled += 1
        jsonschema.Draft202012Validator.check_schema(schema)  # what it compiles, the meta-schema accepts
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        for _ in range(12):
            instance = _near(rng, schema) if rng.random() < 0.7 else _value(rng)
            valid = validator.is_valid(instance)
            if accepts(instance):
                accepted += 1
                assert valid, f"said valid, jsonschema says not: {json.dumps(schema)} {instance!r}"
            elif not valid:
                rejected_by_both += 1
    # the run exercised both sides: schemas it compiles, values it accepts, values it leaves to jsonschema
    assert compiled > 100 and accepted > 500 and rejected_by_both > 200, (compiled, accepted, rejected_by_both)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}},
        {"type": "string", "format": "email"},
        {"type": "string", "pattern": "^a"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"type": "objekt"},
        {"minLength": -1},
        {"minLength": 2.0},
        {"required": ["a", "a"]},
        {"properties": {"a": {"anyOf": [{"type": "string"}]}}},
        {"type": "object", "x-vendor": 1},
    ],
)
def test_what_it_does_not_know_all_of_is_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert schema_fast.compile(schema) is None


def test_a_typical_case_schema_is_decided_without_jsonschema() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["label", "score"],
        "properties": {"label": {"type": "string", "minLength": 1, "maxLength": 40}, "score": {"type": "integer"}},
    }
    accepts = schema_fast.compile(schema)
    assert accepts is not None
    assert accepts({"label": "billing", "score": 3}) and accepts({"label": "x", "score": 2.0})
    for invalid in ({"label": "", "score": 1}, {"label": "x"}, {"label": "x", "score": 1, "more": 0}, [], "x"):
        assert not accepts(invalid)
    assert not accepts({"label": "x", "score": True})  # true is not an integer in JSON Schema


@pytest.mark.parametrize(
    "text",
    [
        '{"label": "billing", "score": 3}',
        '{"label": "", "score": 3}',
        '{"label": "billing"}',
        '{"label": "billing", "score": 3, "extra": 1}',
        '{"label": 7, "score": "x"}',
        "[1, 2]",
        "not json",
    ],
)
def test_a_json_schema_check_says_what_jsonschema_alone_says(text: str) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["label", "score"],
        "properties": {"label": {"type": "string", "minLength": 1}, "score": {"type": "integer"}},
    }
    check = checks.compile_check("json_schema", schema)
    assert check.args.accepts is not None  # the accepter's path
    answer = Answer.parse(text, "stop")
    (got,) = checks.check_answer([check], {}, answer)
    # jsonschema alone, as the check said before the accepter: its best error's place and message
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(answer.parsed)) if answer.is_json else None
    if not answer.is_json:
        expected = (False, "the answer is not JSON")
    elif error is None:
        expected = (True, "")
    else:
        where = "".join(f"/{p}" for p in error.absolute_path) or "/"
        expected = (False, f"schema violation at {where}: {error.message}")
    assert (got.passed, got.reason) == expected
