"""The built-in checks, registered as any check is (``harness.checks._registry``), and the two steps every check goes
through: ``compile_check`` and ``run_checks``.

A check is written in a case file as a one-key mapping (``- contains: "joke"``). ``compile_check`` looks its name up in
the registry and prepares its value once, at load time, so an unknown name, a bad regex or an invalid JSON Schema is
reported before anything is sent; ``run_checks`` applies the compiled checks to one answer and never touches the
network. The opt-in ``judge`` check is not one of them: its compiled form only holds its ``JudgeSpec``, and
``harness.run._runner`` has a judge model grade it (``harness.checks._judge``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._lazy import jsonschema, referencing
from . import _matching as matching
from . import _python as python
from . import _registry as registry
from . import _schema_fast as schema_fast
from . import _tools as tools

# what the loader and the runner use of a check, said here with the steps (compile_check, run_checks)
from ._answer import Answer as Answer
from ._answer import CheckArgError as CheckArgError
from ._answer import CheckResult as CheckResult
from ._answer import JSONDoc, at_pointer, same, short
from ._answer import as_text as as_text

_UNKNOWN_DRAFT: Any = object()  # what validator_for answers for a $schema it does not know


@dataclass(frozen=True)
class JudgeSpec:
    """A ``judge`` check: a judge model scores the answer (or the value at ``path``) against ``rubric`` from 0 to 1."""

    rubric: str
    threshold: float  # the lowest passing score
    model: str | None  # None: the eval's `judge: {model}`
    path: str | None


@dataclass(frozen=True)
class Check:
    name: str  # what its results are called (the registered name; `python:<file>:<function>` for a python check)
    arg: Any  # as written in the case file
    args: Any = field(compare=False, repr=False)  # what the function gets: the value prepared at load time
    entry: registry.Registered = field(compare=False, repr=False)

    @property
    def judged(self) -> bool:
        """Graded by a judge model (the runner's), not by a function here."""
        return self.entry.fn is None


def lookup(name: str) -> registry.Registered:
    """The registered check ``name``: CheckArgError when there is none (saying the closest) or it is unusable."""
    return registry.lookup(name)


def compile_check(name: str, arg: Any, root: Path | None = None) -> Check:
    """Build a check from its case-file form (``root``: the project's, for paths in it); raises CheckArgError for an
    unknown name or an unusable value."""
    entry = lookup(name)
    args = entry.prepare(arg, root or Path.cwd()) if entry.prepare is not None else arg
    return Check(entry.label(arg) if entry.label is not None else name, arg, args, entry)


def run_checks(checks: Iterable[Check], request: Mapping[str, Any], response: Mapping[str, Any]) -> list[CheckResult]:
    """Apply every deterministic check to one response (judge checks are the runner's), all of them within the
    sample's time limit (``harness.checks._matching``): a check that runs out of it fails with "check timed out"."""
    return check_answer(checks, request, Answer.from_response(response))


def check_answer(checks: Iterable[Check], request: Mapping[str, Any], answer: Answer) -> list[CheckResult]:
    """``run_checks`` for an answer already parsed (the runner needs the answer itself too: parsed once)."""
    with matching.limit():
        return [registry.verdict(c.entry, c.name, answer, request, c.args) for c in checks if not c.judged]


def json_schema_of(checks: Iterable[Check]) -> dict[str, Any] | None:
    """The schema of the first ``json_schema`` check, used by ``response_format: from_expectation``."""
    for check in checks:
        if check.name == "json_schema":
            schema: dict[str, Any] = check.arg
            return schema
    return None


def wants_json(checks: Iterable[Check]) -> bool:
    """Whether a check asks for JSON: then JSON validity is measured (as it is for a JSON response_format)."""
    return any(c.name == "json_schema" or (c.name == "json_valid" and c.arg) for c in checks)


def json_format(request: Mapping[str, Any]) -> bool:
    """Whether the request asks for a JSON response_format: then JSON validity is measured."""
    fmt = request.get("response_format") or {}
    return fmt.get("type") in ("json_object", "json_schema")


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
    found, node = at_pointer(answer.parsed, path)
    return (node, None) if found else (None, f"{path!r} is not in the answer")


def _where(path: str | None) -> str:
    return f" at {path}" if path is not None else ""


def _spec(arg: Any, key: str) -> tuple[Any, str | None, bool]:
    """Split the short form (``contains: "x"``) and the long form (``contains: {value: x, path: /a}``)."""
    if isinstance(arg, dict):
        return arg[key], arg.get("path"), bool(arg.get("ignore_case", False))
    return arg, None, False


def _builtin(name: str, prepare: Callable[[Any], Any] | None = None) -> Callable[[registry.F], registry.F]:
    """Register a built-in check: its ``prepare`` (of the case file's value) runs at load time."""

    def decorate(fn: registry.F) -> registry.F:
        ready = (lambda arg, root: prepare(arg)) if prepare is not None else None
        registry.add(registry.Registered(name, fn, registry.BUILT_IN, ready, inline=True))
        return fn

    return decorate


def _told(name: str, reason: str) -> CheckResult:
    """A built-in's verdict: failed for ``reason``, passed without one (the same frozen result for every answer)."""
    return CheckResult(name, False, reason) if reason else _passed(name)


@functools.cache
def _passed(name: str) -> CheckResult:
    return CheckResult(name, True)


@_builtin("json_valid", prepare=bool)
def _json_valid(answer: Answer, request: Mapping[str, Any], want: bool) -> CheckResult:
    ok = answer.is_json == want
    reason = "" if ok else (_json_reason(answer) if want else "the answer is valid JSON")
    return _told("json_valid", reason)


def _compiled_schema(arg: Any) -> matching.Schema:
    # every case of a file often shares one schema, and checking a schema against its meta-schema is the slow part
    key = json.dumps(arg, sort_keys=True)
    if key not in _SCHEMAS:
        accepts = schema_fast.compile(arg)  # a schema it compiles is a valid one: jsonschema when an answer needs it
        _SCHEMAS[key] = matching.Schema(arg, accepts, None if accepts is not None else _checked_validator(arg))
    return _SCHEMAS[key]


_SCHEMAS: dict[str, matching.Schema] = {}
_SAMPLE_VALUES: tuple[JSONDoc, ...] = (None, {}, [], "", 0)  # one of each kind of JSON value


def _checked_validator(arg: Any) -> Any:
    """jsonschema's validator of ``arg``, once the schema itself is found valid (CheckArgError if not)."""
    validator_for = jsonschema.validators.validator_for
    cls = validator_for(arg, default=_UNKNOWN_DRAFT) if "$schema" in arg else jsonschema.Draft202012Validator
    if cls is _UNKNOWN_DRAFT:
        raise CheckArgError(f"unknown $schema {arg['$schema']!r}: use a JSON Schema draft's URI", "/$schema")
    try:
        cls.check_schema(arg)
    except jsonschema.exceptions.SchemaError as exc:
        where = "".join(f"/{p}" for p in exc.absolute_path)
        raise CheckArgError(f"invalid JSON Schema: {exc.message}", where) from None
    _check_refs(arg, cls)
    validator = matching.timed(cls)(arg, format_checker=cls.FORMAT_CHECKER)
    try:  # a $ref loop that never moves into the instance recurses on any value: found now, not on every answer
        for value in _SAMPLE_VALUES:
            validator.is_valid(value)
    except RecursionError:
        raise CheckArgError("the schema refers to itself without end (a $ref loop)") from None
    return validator


@_builtin("json_schema", prepare=_compiled_schema)
def _json_schema(answer: Answer, request: Mapping[str, Any], schema: matching.Schema) -> CheckResult:
    if not answer.is_json:
        return CheckResult("json_schema", False, "the answer is not JSON")
    return _told("json_schema", schema.violation(answer.parsed) or "")


def _check_refs(schema: dict[str, Any], cls: Any) -> None:
    """Every ``$ref`` must resolve inside the schema: nothing is fetched, and a dangling one would fail mid-run."""
    base = "urn:promptvcr:schema"
    spec = referencing.jsonschema.specification_with(cls.META_SCHEMA["$schema"])
    resource: referencing.Resource[Any] = spec.create_resource(schema)
    resolver = referencing.Registry().with_resource(base, resource).resolver(base_uri=base)
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable:
                    raise CheckArgError(f"$ref {ref!r} does not resolve within the schema", f"{where}/$ref") from None
            stack.extend((f"{where}/{_escape(k)}", v) for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            stack.extend((f"{where}/{i}", v) for i, v in enumerate(node))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class _OnValue:
    """What a check of the answer's text (or of the value at ``path`` in the answer) compares with: ``value``."""

    value: Any
    path: str | None
    ignore_case: bool = False
    lookup: str | None = None  # where the value is looked up: `path`, or "" for the whole parsed answer
    pattern: Any = None  # a regex check's compiled pattern


def _verdict(name: str, answer: Answer, spec: _OnValue, judge: Callable[[Any], str]) -> CheckResult:
    """``judge`` of the value looked at returns "" to pass, else the reason."""
    value, missing = value_at(answer, spec.lookup if spec.lookup is not None else spec.path)
    reason = missing or judge(value)
    return CheckResult(name, not reason, reason)


def _text_spec(arg: Any) -> _OnValue:
    return _OnValue(*_spec(arg, "value"))


def _contains_check(name: str, negate: bool) -> None:
    verb = "contains" if negate else "does not contain"

    def check(answer: Answer, request: Mapping[str, Any], spec: _OnValue) -> CheckResult:
        def judge(value: Any) -> str:
            hay = as_text(value)
            found = spec.value.lower() in hay.lower() if spec.ignore_case else spec.value in hay
            return "" if found != negate else f"the answer{_where(spec.path)} {verb} {spec.value!r}"

        return _verdict(name, answer, spec, judge)

    _builtin(name, prepare=_text_spec)(check)


_contains_check("contains", negate=False)
_contains_check("not_contains", negate=True)


def _regex_spec(arg: Any) -> _OnValue:
    pattern, path, ignore_case = _spec(arg, "pattern")
    try:
        compiled = matching.compiled(pattern, ignore_case)
    except re.error as exc:
        raise CheckArgError(
            f"invalid regular expression {pattern!r}: {exc}", "/pattern" if isinstance(arg, dict) else ""
        ) from None
    return _OnValue(pattern, path, ignore_case, pattern=compiled)


@_builtin("regex", prepare=_regex_spec)
def _regex(answer: Answer, request: Mapping[str, Any], spec: _OnValue) -> CheckResult:
    def judge(value: Any) -> str:
        found = matching.search(spec.pattern, as_text(value))
        return "" if found else f"the answer{_where(spec.path)} does not match /{spec.value}/"

    return _verdict("regex", answer, spec, judge)


def _equals_spec(arg: Any) -> _OnValue:
    expected, path, _ = _spec(arg, "value")
    # `equals: {value: {a: 1}}` without a path compares the whole parsed JSON answer, not its text
    return _OnValue(expected, path, lookup="" if path is None and not isinstance(expected, str) else path)


@_builtin("equals", prepare=_equals_spec)
def _equals(answer: Answer, request: Mapping[str, Any], spec: _OnValue) -> CheckResult:
    def judge(value: Any) -> str:
        equal = same(value, spec.value)
        return "" if equal else f"the answer{_where(spec.path)} is {short(value)}, expected {short(spec.value)}"

    return _verdict("equals", answer, spec, judge)


@_builtin("max_chars", prepare=_text_spec)
def _max_chars(answer: Answer, request: Mapping[str, Any], spec: _OnValue) -> CheckResult:
    def judge(value: Any) -> str:
        size = len(as_text(value))
        return "" if size <= spec.value else f"the answer{_where(spec.path)} has {size} characters, limit {spec.value}"

    return _verdict("max_chars", answer, spec, judge)


@_builtin("finish_reason", prepare=lambda arg: [arg] if isinstance(arg, str) else list(arg))
def _finish_reason(answer: Answer, request: Mapping[str, Any], allowed: list[str]) -> CheckResult:
    ok = answer.finish_reason in allowed
    reason = "" if ok else f"finish_reason is {answer.finish_reason!r}, expected {' or '.join(allowed)}"
    return _told("finish_reason", reason)


def _judge_spec(arg: Any) -> JudgeSpec:  # the case schema has checked its keys and types
    return JudgeSpec(arg["rubric"], float(arg["threshold"]), arg.get("model"), arg.get("path"))


@_builtin("refusal", prepare=bool)
def _refusal(answer: Answer, request: Mapping[str, Any], want: bool) -> CheckResult:
    ok = (answer.refusal is not None) == want
    reason = "" if ok else (refused(answer) if answer.refusal is not None else "the model did not refuse")
    return _told("refusal", reason)


# graded by a judge model: the registry knows the name, the runner grades it (harness.checks._judge)
registry.add(registry.Registered("judge", None, registry.BUILT_IN, lambda arg, root: _judge_spec(arg), inline=True))
python.register()
tools.register()

CHECK_NAMES = tuple(registry.names())  # the built-ins, as the case schema lists them for editors
