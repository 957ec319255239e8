"""A plain-Python accepter for the part of JSON Schema (2020-12) that case files' schemas use: ``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``, ``const``, the length, size and range
bounds, and the annotations (``title``, ``description``, …).

It may only ever say "valid". ``compile`` gives None for a schema it does not know all of — any other keyword
(``$ref``, ``$schema``, ``format``, ``pattern``, ``anyOf``…) or a keyword whose value is not of the form the
meta-schema requires — and the accepter it gives answers False whenever it is not sure (a float bound beside an
int, ``enum`` of lists…). Either way jsonschema then gives the verdict and its message
(``harness.checks._matching.Schema``): what this decides is only what jsonschema would decide the same, faster
(a json_schema check of every sample of a 100,000-row replay spent 9 s in jsonschema). Because every keyword it
knows has a value of the meta-schema's form, a schema it compiles is one ``check_schema`` accepts (and one without
``$ref`` neither dangles nor loops). Instances are JSON values, as ``json.loads`` makes them. Both claims are
tested against jsonschema itself on random schemas and instances (tests/test_schema_fast.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

Accepter = Callable[[Any], bool]


class _Unknown(Exception):
    """The schema has something this module does not know: jsonschema's to judge."""


def compile(schema: Any) -> Accepter | None:
    """An accepter of the values valid under ``schema`` (a JSON Schema object), or None (see the module doc)."""
    if not isinstance(schema, dict):
        return None
    try:
        return _schema(schema)
    except _Unknown:
        return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:  # 2.0 is an integer in JSON Schema 2020-12, as in jsonschema
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Accepter] = {
    "string": lambda v: isinstance(v, str),
    "integer": _integer,
    "number": _number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_SCALARS = (str, int, float, bool, type(None))


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _schema(schema: Any) -> Accepter:
    if schema is True or schema is False:
        return _always if schema else _never
    if not isinstance(schema, dict):
        raise _Unknown
    tests = []
    for keyword, value in schema.items():
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise _Unknown
        test = make(value, schema)
        if test is not None:  # None: an annotation, which tests nothing
            tests.append(test)
    return _every(tests)


def _every(tests: list[Accepter]) -> Accepter:
    """All of ``tests`` (loops, not generators: this runs for every value of every answer)."""
    if len(tests) == 1:
        return tests[0]

    def every(v: Any) -> bool:
        for test in tests:  # noqa: SIM110  # all() of a generator takes three times as long, on every value
            if not test(v):
                return False
        return True

    return every


def _type(value: Any, schema: dict[str, Any]) -> Accepter:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n in _TYPES for n in names):
        raise _Unknown
    if len(set(names)) != len(names):  # the meta-schema wants them unique
        raise _Unknown
    kinds = [_TYPES[name] for name in names]
    return kinds[0] if len(kinds) == 1 else lambda v: any(kind(v) for kind in kinds)


def _properties(value: Any, schema: dict[str, Any]) -> Accepter:
    if not isinstance(value, dict):
        raise _Unknown
    subs = [(name, _schema(sub)) for name, sub in value.items()]

    def properties(v: Any) -> bool:
        if isinstance(v, dict):
            for name, sub in subs:
                if name in v and not sub(v[name]):
                    return False
        return True

    return properties


def _required(value: Any, schema: dict[str, Any]) -> Accepter:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value) or len(set(value)) != len(value):
        raise _Unknown
    required = frozenset(value)
    return lambda v: not isinstance(v, dict) or v.keys() >= required


def _additional(value: Any, schema: dict[str, Any]) -> Accepter:
    sub = _schema(value)
    known = schema.get("properties", {})  # a `properties` of any other form is refused on its own
    if sub is _never:  # `additionalProperties: false`
        return lambda v: not isinstance(v, dict) or v.keys() <= known.keys()

    def additional(v: Any) -> bool:
        if isinstance(v, dict):
            for name, item in v.items():
                if name not in known and not sub(item):
                    return False
        return True

    return additional


def _items(value: Any, schema: dict[str, Any]) -> Accepter:
    sub = _schema(value)  # `prefixItems` is not known here: every item is one of these

    def items(v: Any) -> bool:
        if isinstance(v, list):
            for item in v:
                if not sub(item):
                    return False
        return True

    return items


def _allowed(values: list[Any]) -> Accepter:
    """Equal to one of ``values`` as jsonschema compares: only scalars of the very same type are said to be (it
    tells true from 1, and says 1 equals 1.0, which is left to it)."""
    keys = {(type(v), v) for v in values if isinstance(v, _SCALARS)}
    return lambda v: isinstance(v, _SCALARS) and (type(v), v) in keys


def _enum(value: Any, schema: dict[str, Any]) -> Accepter:
    if not isinstance(value, list):
        raise _Unknown
    return _allowed(value)


def _const(value: Any, schema: dict[str, Any]) -> Accepter:
    return _allowed([value])


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Unknown
    return value


def _sized(kind: type[Sized], at_least: bool) -> Callable[[Any, dict[str, Any]], Accepter]:
    def make(value: Any, schema: dict[str, Any]) -> Accepter:
        bound = _count(value)
        if at_least:
            return lambda v: not isinstance(v, kind) or len(v) >= bound
        return lambda v: not isinstance(v, kind) or len(v) <= bound

    return make


def _bounded(passes: Callable[[Any, Any], bool]) -> Callable[[Any, dict[str, Any]], Accepter]:
    """A range bound; ``passes(instance, bound)`` is jsonschema's own comparison turned round (NaN passes none)."""

    def make(value: Any, schema: dict[str, Any]) -> Accepter:
        if not _number(value):
            raise _Unknown
        return lambda v: not _number(v) or passes(v, value)

    return make


def _annotation(kind: type | None) -> Callable[[Any, dict[str, Any]], None]:
    def make(value: Any, schema: dict[str, Any]) -> None:
        if kind is not None and not isinstance(value, kind):
            raise _Unknown

    return make


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], Accepter | None]] = {
    "type": _type,
    "properties": _properties,
    "required": _required,
    "additionalProperties": _additional,
    "items": _items,
    "enum": _enum,
    "const": _const,
    "minLength": _sized(str, at_least=True),
    "maxLength": _sized(str, at_least=False),
    "minItems": _sized(list, at_least=True),
    "maxItems": _sized(list, at_least=False),
    "minProperties": _sized(dict, at_least=True),
    "maxProperties": _sized(dict, at_least=False),
    "minimum": _bounded(lambda v, bound: v >= bound),
    "maximum": _bounded(lambda v, bound: v <= bound),
    "exclusiveMinimum": _bounded(lambda v, bound: v > bound),
    "exclusiveMaximum": _bounded(lambda v, bound: v < bound),
    "title": _annotation(str),
    "description": _annotation(str),
    "$comment": _annotation(str),
    "default": _annotation(None),
    "examples": _annotation(list),
    "deprecated": _annotation(bool),
    "readOnly": _annotation(bool),
    "writeOnly": _annotation(bool),
}
