"""The JSON Schemas that define case and eval files, and validation that reports file:line and JSON pointer.

The schemas are package data so editors can use them (``# yaml-language-server: $schema=...``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from ..._lazy import jsonschema, referencing
from ...errors import Problem
from ...load._yamlsrc import Located, pointer

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

SCHEMA_FILES = ("case.schema.json", "eval.schema.json", "profiles.schema.json", "models.schema.json")


@cache
def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(files(__package__).joinpath(name).read_text(encoding="utf-8"))
    return schema


def schema_bytes() -> bytes:
    """The shipped schemas as they are: what a file's validity depends on (harness.load._validated)."""
    return b"".join(files(__package__).joinpath(name).read_bytes() for name in SCHEMA_FILES)


@cache
def _validator(name: str) -> Any:  # an instance of a class made by jsonschema.validators.extend
    resource = referencing.Resource.from_contents
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (f, resource(load_schema(f))) for f in SCHEMA_FILES
    )
    registry = registry.with_resources((load_schema(f)["$id"], resource(load_schema(f))) for f in SCHEMA_FILES)
    # JSON Schema counts 2.0 as an integer; the harness uses the value as one (a count, a range), so every "integer"
    # field of the shipped schemas takes whole numbers written as such. (NaN and infinity are refused by
    # harness.load._yamlsrc.)
    strict = jsonschema.validators.extend(  # type: ignore[no-untyped-call]  # jsonschema leaves extend untyped
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _integral),
    )
    return strict(load_schema(name), registry=registry)


def _integral(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def validate(doc: Located, name: str) -> list[Problem]:
    """Every schema problem in ``doc``, each with the line and JSON pointer of the offending value."""
    problems: list[Problem] = []
    for error in _validator(name).iter_errors(doc.data):
        problems.extend(_explain(doc, error))
    return problems


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _explain(doc: Located, error: ValidationError) -> list[Problem]:
    ptr = pointer(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return [doc.problem(f"{ptr}/{k}", f"unknown key {k!r}{hint}") for k in extra]
    if error.validator == "pattern" and "propertyNames" in schema_path:
        return [doc.problem(f"{ptr}/{error.instance}", f"name {error.instance!r} must match {error.validator_value}")]
    if error.validator == "pattern" and "description" in schema:
        return [doc.problem(ptr, f"{_short(error.instance)} is not valid here: {schema['description']}")]
    if error.validator in ("oneOf", "anyOf"):
        # the form of the value's own kind said more than "not a string" of the others (an unknown key in a mapping)
        shaped = [e for e in error.context or [] if e.validator not in ("type", "enum", "const")]
        if shaped and all(len(e.absolute_path) == len(error.absolute_path) for e in shaped):
            return _explain(doc, max(shaped, key=lambda e: len(e.absolute_path)))
        deepest = max(error.context or [], key=lambda e: len(e.absolute_path), default=None)
        if deepest is not None and len(deepest.absolute_path) > len(error.absolute_path):
            return _explain(doc, deepest)
        what = schema.get("description") or "it matches none of the allowed forms"
        return [doc.problem(ptr, f"{_short(error.instance)} is not allowed here: {what}")]
    if error.validator == "not" and "description" in schema:  # a key this kind of value must not have
        key = next(iter(schema["not"].get("required", [])), None)
        return [doc.problem(f"{ptr}/{key}" if key else ptr, schema["description"])]
    if error.validator == "required":
        return [doc.problem(ptr, error.message.replace("is a required property", "is required here"))]
    if error.validator in ("minProperties", "maxProperties") and schema.get("title") == "check":
        return [doc.problem(ptr, "a check is a mapping with exactly one key, e.g. `- json_valid: true`")]
    if error.validator == "type":
        got = _short(error.instance)
        if error.validator_value == "integer" and isinstance(error.instance, float) and error.instance.is_integer():
            return [doc.problem(ptr, f"expected a whole number, got {got}: write {int(error.instance)}")]
        return [doc.problem(ptr, f"expected {error.validator_value}, got {got}")]
    return [
        doc.problem(ptr, error.message if len(error.message) < 200 else _short(error.instance) + " is not valid here")
    ]
