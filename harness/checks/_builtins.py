"""Checks: pure functions of (request, response) that pass or fail with a reason.

A check is written in a case file as a one-key mapping (``- contains: "joke"``). ``compile_check`` turns it into a
``Check`` once, at load time, so a bad regex or an invalid JSON Schema is reported before anything is sent;
``run_checks`` applies the compiled checks to one answer and never touches the network. The opt-in ``judge`` check is
not one of them: its compiled form only holds its ``JudgeSpec``, and ``harness.run._runner`` has a judge model grade it
(``harness.checks._judge``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import specification_with

from . import _matching as matching

JSONDoc = Any
_NOT_JSON = object()
_UNKNOWN_DRAFT: Any = object()  # what validator_for answers for a $schema it does not know


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str = ""


class CheckArgError(ValueError):
    """A check's argument is unusable; ``pointer`` is relative to the check's value."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.pointer = pointer


@dataclass(frozen=True)
class Answer:
    """What the checks look at: the first choice's text, its parsed JSON (if any), why it stopped, and the model's
    refusal text when it refused (``message.refusal``: then there is no content, and never valid JSON)."""

    content: str
    finish_reason: str | None
    parsed: JSONDoc = field(default=_NOT_JSON)
    refusal: str | None = None

    @property
    def is_json(self) -> bool:
        return self.parsed is not _NOT_JSON

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> Answer:
        choices = response.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], Mapping) else {}
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, Mapping) else None
        refusal = message.get("refusal") if isinstance(message, Mapping) else None
        text = content if isinstance(content, str) else ""
        if isinstance(refusal, str) and refusal:
            return cls(text, choice.get("finish_reason"), _NOT_JSON, refusal)
        return cls.parse(text, choice.get("finish_reason"))

    @classmethod
    def parse(cls, text: str, finish_reason: str | None) -> Answer:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack, from a server
            parsed = _NOT_JSON
        return cls(text, finish_reason, parsed)


@dataclass(frozen=True)
class JudgeSpec:
    """A ``judge`` check: a judge model scores the answer (or the value at ``path``) against ``rubric`` from 0 to 1."""

    rubric: str
    threshold: float  # the lowest passing score
    model: str | None  # None: the eval's `judge: {model}`
    path: str | None


@dataclass(frozen=True)
class Check:
    name: str
    arg: Any
    fn: Callable[[Answer], CheckResult] | None = field(compare=False, repr=False)  # None: graded by a judge model


def run_checks(checks: Iterable[Check], request: Mapping[str, Any], response: Mapping[str, Any]) -> list[CheckResult]:
    """Apply every deterministic check to one response (judge checks are the runner's), all of them within the
    sample's time limit (``harness.checks._matching``): a check that runs out of it fails with "check timed out".

    ``request`` is part of the contract for checks that need it.
    """
    del request  # none of the built-in checks reads it yet
    answer = Answer.from_response(response)
    results: list[CheckResult] = []
    with matching.limit():
        for check in checks:
            if check.fn is not None:
                try:
                    results.append(check.fn(answer))
                except TimeoutError:
                    results.append(CheckResult(check.name, False, matching.TIMED_OUT))
                except RecursionError:  # a recursive schema on an answer nested deeper than the stack
                    results.append(CheckResult(check.name, False, "check could not finish: the answer nests too deep"))
    return results


def json_schema_of(checks: Iterable[Check]) -> dict[str, Any] | None:
    """The schema of the first ``json_schema`` check, used by ``response_format: from_expectation``."""
    for check in checks:
        if check.name == "json_schema":
            schema: dict[str, Any] = check.arg
            return schema
    return None


def expects_json(checks: Iterable[Check], request: Mapping[str, Any]) -> bool:
    """Whether JSON validity is measured for this request: a JSON check asks for it, or a JSON response_format."""
    wanted = any(c.name == "json_schema" or (c.name == "json_valid" and c.arg) for c in checks)
    fmt = request.get("response_format") or {}
    return wanted or fmt.get("type") in ("json_object", "json_schema")


def _short(value: Any, limit: int = 60) -> str:
    """JSON text of ``value``, cut to ``limit``: the string "42" and the number 42 read differently."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, false is not 0 (Python's == says they are); 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float))) and a == b


def _json_reason(answer: Answer) -> str:
    if answer.refusal is not None:
        return refused(answer)
    text = answer.content.strip()
    if not text:
        return "the answer is empty"
    if text.startswith("```"):
        return "not valid JSON: wrapped in a markdown code fence"
    try:
        json.loads(answer.content)
    except json.JSONDecodeError as exc:
        cut = " (the answer was cut off: finish_reason=length)" if answer.finish_reason == "length" else ""
        what = exc.msg.removesuffix(" at")  # "Unterminated string starting at": the place follows
        return f"not valid JSON: {what} at line {exc.lineno} column {exc.colno}{cut}"
    except RecursionError:
        return "not valid JSON: nested deeper than can be read"
    return "valid JSON"


def refused(answer: Answer) -> str:
    return f"refused: {answer.refusal}"


def value_at(answer: Answer, path: str | None) -> tuple[Any, str | None]:
    """The value a check looks at: the content, or the value at a JSON pointer into the parsed answer."""
    if path is None:
        return answer.content, None
    if not answer.is_json:
        return (
            None,
            f"cannot look up {path!r}: the answer is not valid JSON" if path else "the answer is not valid JSON",
        )
    node = answer.parsed
    for raw in path.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None, f"{path!r} is not in the answer"
    return node, None


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _where(path: str | None) -> str:
    return f" at {path}" if path is not None else ""


def _spec(arg: Any, key: str) -> tuple[Any, str | None, bool]:
    """Split the short form (``contains: "x"``) and the long form (``contains: {value: x, path: /a}``)."""
    if isinstance(arg, dict):
        return arg[key], arg.get("path"), bool(arg.get("ignore_case", False))
    return arg, None, False


def _json_valid(arg: Any) -> Callable[[Answer], CheckResult]:
    want = bool(arg)

    def check(answer: Answer) -> CheckResult:
        ok = answer.is_json == want
        reason = "" if ok else (_json_reason(answer) if want else "the answer is valid JSON")
        return CheckResult("json_valid", ok, reason)

    return check


def _json_schema(arg: Any) -> Callable[[Answer], CheckResult]:
    # every case of a file often shares one schema, and checking a schema against its meta-schema is the slow part
    key = json.dumps(arg, sort_keys=True)
    if key not in _SCHEMA_CHECKS:
        _SCHEMA_CHECKS[key] = _compiled_schema_check(arg)
    return _SCHEMA_CHECKS[key]


_SCHEMA_CHECKS: dict[str, Callable[[Answer], CheckResult]] = {}
_SAMPLE_VALUES: tuple[JSONDoc, ...] = (None, {}, [], "", 0)  # one of each kind of JSON value


def _compiled_schema_check(arg: Any) -> Callable[[Answer], CheckResult]:
    cls = validator_for(arg, default=_UNKNOWN_DRAFT) if "$schema" in arg else jsonschema.Draft202012Validator
    if cls is _UNKNOWN_DRAFT:
        raise CheckArgError(f"unknown $schema {arg['$schema']!r}: use a JSON Schema draft's URI", "/$schema")
    try:
        cls.check_schema(arg)
    except SchemaError as exc:
        where = "".join(f"/{p}" for p in exc.absolute_path)
        raise CheckArgError(f"invalid JSON Schema: {exc.message}", where) from None
    _check_refs(arg, cls)
    validator = matching.timed(cls)(arg, format_checker=cls.FORMAT_CHECKER)
    try:  # a $ref loop that never moves into the instance recurses on any value: found now, not on every answer
        for value in _SAMPLE_VALUES:
            validator.is_valid(value)
    except RecursionError:
        raise CheckArgError("the schema refers to itself without end (a $ref loop)") from None

    def check(answer: Answer) -> CheckResult:
        if not answer.is_json:
            return CheckResult("json_schema", False, "the answer is not JSON")
        error = jsonschema.exceptions.best_match(validator.iter_errors(answer.parsed))
        if error is None:
            return CheckResult("json_schema", True)
        where = "".join(f"/{p}" for p in error.absolute_path) or "/"
        return CheckResult("json_schema", False, f"schema violation at {where}: {error.message}")

    return check


def _on_value(name: str, path: str | None, judge: Callable[[Any], str]) -> Callable[[Answer], CheckResult]:
    """A check of the answer (or the value at ``path`` in it): ``judge`` returns "" to pass, else the reason."""

    def check(answer: Answer) -> CheckResult:
        value, missing = value_at(answer, path)
        reason = missing or judge(value)
        return CheckResult(name, not reason, reason)

    return check


def _check_refs(schema: dict[str, Any], cls: Any) -> None:
    """Every ``$ref`` must resolve inside the schema: nothing is fetched, and a dangling one would fail mid-run."""
    base = "urn:promptvcr:schema"
    spec = specification_with(cls.META_SCHEMA["$schema"])
    resource: Resource[Any] = spec.create_resource(schema)
    resolver = Registry().with_resource(base, resource).resolver(base_uri=base)
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    raise CheckArgError(f"$ref {ref!r} does not resolve within the schema", f"{where}/$ref") from None
            stack.extend((f"{where}/{_escape(k)}", v) for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            stack.extend((f"{where}/{i}", v) for i, v in enumerate(node))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _contains(name: str, negate: bool) -> Callable[[Any], Callable[[Answer], CheckResult]]:
    def build(arg: Any) -> Callable[[Answer], CheckResult]:
        needle, path, ignore_case = _spec(arg, "value")
        verb = "contains" if negate else "does not contain"

        def judge(value: Any) -> str:
            hay = as_text(value)
            found = needle.lower() in hay.lower() if ignore_case else needle in hay
            return "" if found != negate else f"the answer{_where(path)} {verb} {needle!r}"

        return _on_value(name, path, judge)

    return build


def _regex(arg: Any) -> Callable[[Answer], CheckResult]:
    pattern, path, ignore_case = _spec(arg, "pattern")
    try:
        compiled = matching.compiled(pattern, ignore_case)
    except re.error as exc:
        raise CheckArgError(
            f"invalid regular expression {pattern!r}: {exc}", "/pattern" if isinstance(arg, dict) else ""
        ) from None
    return _on_value(
        "regex",
        path,
        lambda value: (
            "" if matching.search(compiled, as_text(value)) else f"the answer{_where(path)} does not match /{pattern}/"
        ),
    )


def _equals(arg: Any) -> Callable[[Answer], CheckResult]:
    expected, path, _ = _spec(arg, "value")
    # `equals: {value: {a: 1}}` without a path compares the whole parsed JSON answer, not its text
    lookup = "" if path is None and not isinstance(expected, str) else path

    def judge(value: Any) -> str:
        same = _same(value, expected)
        return "" if same else f"the answer{_where(path)} is {_short(value)}, expected {_short(expected)}"

    return _on_value("equals", lookup, judge)


def _max_chars(arg: Any) -> Callable[[Answer], CheckResult]:
    limit, path, _ = _spec(arg, "value")

    def judge(value: Any) -> str:
        size = len(as_text(value))
        return "" if size <= limit else f"the answer{_where(path)} has {size} characters, limit {limit}"

    return _on_value("max_chars", path, judge)


def _finish_reason(arg: Any) -> Callable[[Answer], CheckResult]:
    allowed = [arg] if isinstance(arg, str) else list(arg)

    def check(answer: Answer) -> CheckResult:
        ok = answer.finish_reason in allowed
        reason = "" if ok else f"finish_reason is {answer.finish_reason!r}, expected {' or '.join(allowed)}"
        return CheckResult("finish_reason", ok, reason)

    return check


_BUILDERS: dict[str, Callable[[Any], Callable[[Answer], CheckResult]]] = {
    "json_valid": _json_valid,
    "json_schema": _json_schema,
    "contains": _contains("contains", negate=False),
    "not_contains": _contains("not_contains", negate=True),
    "regex": _regex,
    "equals": _equals,
    "max_chars": _max_chars,
    "finish_reason": _finish_reason,
}

CHECK_NAMES = (*_BUILDERS, "judge")


def compile_check(name: str, arg: Any) -> Check:
    """Build a check from its case-file form; raises CheckArgError for an unusable argument."""
    if name == "judge":  # the case schema has checked its keys and types
        spec = JudgeSpec(arg["rubric"], float(arg["threshold"]), arg.get("model"), arg.get("path"))
        return Check(name, spec, None)
    return Check(name, arg, _BUILDERS[name](arg))
