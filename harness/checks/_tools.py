"""The tool-call checks — ``tool_call``, ``no_tool_call``, ``tool_calls``, ``tool_call_f1`` — registered as the
built-ins are (``register``, called by ``harness.checks._builtins``), and the one rule of a valid tool call.

A call's arguments are JSON text written by the model: every check parses them first, and arguments that are not
JSON are a failure of their own ("not valid JSON"), never a crash or a silent pass. Unless a ``tool_call`` check
says ``validate_parameters: false``, the arguments must also fit the JSON Schema the request gave that tool as its
``parameters`` (the request the answer came from, so a variant's tools are the ones judged).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _matching as matching
from . import _registry as registry
from ._answer import Answer, CheckArgError, CheckResult, ToolCall, as_text, at_pointer, same, short

ARGUMENT_TESTS = ("equals", "contains", "regex", "json_schema")


@dataclass(frozen=True)
class _Arguments:
    """What a ``tool_call`` check asks of the arguments: one test of the value at ``path`` (None: all of them)."""

    test: str  # one of ARGUMENT_TESTS
    value: Any  # as written
    path: str | None
    compiled: Any = None  # a regex's pattern, a json_schema's compiled schema


@dataclass(frozen=True)
class _CallSpec:
    name: str | None  # None: any call
    arguments: _Arguments | None
    validate_parameters: bool


def _schema(schema: Any, where: str) -> matching.Schema:
    """A JSON Schema compiled as the ``json_schema`` check compiles it (one rule of schemas)."""
    prepare = registry.lookup("json_schema").prepare
    assert prepare is not None
    try:
        compiled: matching.Schema = prepare(schema, Path.cwd())
        return compiled
    except CheckArgError as exc:
        raise CheckArgError(str(exc), f"{where}{exc.pointer}") from None


def _arguments(raw: Mapping[str, Any]) -> _Arguments:
    (test,) = [t for t in ARGUMENT_TESTS if t in raw]  # the case schema allows exactly one
    value, compiled = raw[test], None
    if test == "regex":
        try:
            compiled = matching.compiled(value)
        except re.error as exc:
            raise CheckArgError(f"invalid regular expression {value!r}: {exc}", "/arguments/regex") from None
    elif test == "json_schema":
        compiled = _schema(value, "/arguments/json_schema")
    return _Arguments(test, value, raw.get("path"), compiled)


def _call_spec(arg: Any) -> _CallSpec:
    if isinstance(arg, str):  # the short form: `tool_call: get_weather`
        return _CallSpec(arg, None, True)
    arguments = _arguments(arg["arguments"]) if "arguments" in arg else None
    return _CallSpec(arg.get("name"), arguments, bool(arg.get("validate_parameters", True)))


def _label(arg: Any) -> str:
    name = arg if isinstance(arg, str) else arg.get("name")
    return f"tool_call:{name}" if name else "tool_call"


def offered(request: Mapping[str, Any], name: str, kind: str = "function") -> Mapping[str, Any] | None:
    """The tool the request offers under ``name`` (a function in ``tools`` or the legacy ``functions``, or a custom
    tool), or None."""
    tools = [t.get(kind) for t in request.get("tools") or [] if isinstance(t, Mapping) and t.get("type") == kind]
    tools += list(request.get("functions") or []) if kind == "function" else []
    return next((f for f in tools if isinstance(f, Mapping) and f.get("name") == name), None)


def _not_offered(call: ToolCall) -> str:
    return f"the answer calls {call.name!r}, which the request does not offer"


def call_problem(call: ToolCall, request: Mapping[str, Any], validate: bool = True) -> str:
    """Why ``call`` is not a valid call of a tool the request offers ("" when it is): its arguments are JSON and,
    with ``validate``, fit the tool's ``parameters``."""
    if call.custom:  # free text: the tool's own grammar, if any, is the API's to enforce
        return "" if not validate or offered(request, call.name, "custom") else _not_offered(call)
    if not call.valid_json:
        return f"the arguments of {call.name!r} are not valid JSON: {call.error}"
    if not validate:
        return ""
    function = offered(request, call.name)
    if function is None:
        return _not_offered(call)
    if not isinstance(function.get("parameters"), Mapping):
        return ""  # a tool without parameters takes anything
    try:
        violation = _schema(function["parameters"], "").violation(call.parsed)
    except CheckArgError as exc:  # the request's schema itself: found at load for a case's own tools
        return f"the parameters of {call.name!r} are not a usable JSON Schema: {exc}"
    return f"the arguments of {call.name!r} do not fit its parameters: {violation}" if violation else ""


def calls_valid(answer: Answer, request: Mapping[str, Any]) -> bool | None:
    """Tool-call validity, the ``tool_calls_valid`` column: every call names an offered tool and its arguments are
    JSON that fits that tool's parameters. None when the answer made no call (nothing to judge)."""
    if not answer.tool_calls:
        return None
    return all(not call_problem(call, request) for call in answer.tool_calls)


def _names(answer: Answer) -> str:
    return ", ".join(c.name for c in answer.tool_calls) or "no tool"


def _argument_problem(call: ToolCall, test: _Arguments) -> str:
    if call.custom and (test.path is not None or test.test in ("equals", "json_schema")):
        return f"{call.name!r} is a custom tool: its input is text, for contains or regex without a path"
    found, value = at_pointer(call.arguments if call.custom else call.parsed, test.path or "")
    where = f"arguments of {call.name!r}" + (f" at {test.path}" if test.path else "")
    if not found:
        return f"{test.path!r} is not in the arguments of {call.name!r}"
    if test.test == "equals":
        return "" if same(value, test.value) else f"the {where} is {short(value)}, expected {short(test.value)}"
    text = call.arguments if test.path is None else as_text(value)
    if test.test == "contains":
        return "" if test.value in text else f"the {where} do not contain {test.value!r}"
    if test.test == "regex":
        return "" if matching.search(test.compiled, text) else f"the {where} do not match /{test.value}/"
    violation = test.compiled.violation(value)
    return f"the {where}: {violation}" if violation else ""


def _tool_call(answer: Answer, request: Mapping[str, Any], spec: _CallSpec) -> CheckResult:
    calls = [c for c in answer.tool_calls if spec.name is None or c.name == spec.name]
    if not calls:
        wanted = f"no call to {spec.name!r}" if spec.name else "no tool call"
        return CheckResult("tool_call", False, f"{wanted} (the answer calls {_names(answer)})")
    problems = []
    for call in calls:  # any one call that fits passes: a model may call a tool twice, once well
        problem = call_problem(call, request, spec.validate_parameters)
        if not problem and spec.arguments is not None:
            problem = _argument_problem(call, spec.arguments)
        if not problem:
            return CheckResult("tool_call", True)
        problems.append(problem)
    more = f" (and {len(problems) - 1} other call(s) that do not fit either)" if len(problems) > 1 else ""
    return CheckResult("tool_call", False, problems[0] + more)


def _no_tool_call(answer: Answer, request: Mapping[str, Any], want: bool) -> CheckResult:
    ok = (not answer.tool_calls) == want
    reason = "" if ok else (f"the answer calls {_names(answer)}" if want else "the answer calls no tool")
    return CheckResult("no_tool_call", ok, reason)


def _tool_calls(answer: Answer, request: Mapping[str, Any], spec: Mapping[str, Any]) -> CheckResult:
    names = [c.name for c in answer.tool_calls]
    if "count" in spec and len(names) != spec["count"]:
        reason = f"{len(names)} tool call(s) ({_names(answer)}), expected {spec['count']}"
        return CheckResult("tool_calls", False, reason)
    if "order" in spec and names != list(spec["order"]):
        expected = ", ".join(spec["order"]) or "none"
        return CheckResult("tool_calls", False, f"the answer calls {_names(answer)}, expected in order: {expected}")
    return CheckResult("tool_calls", True)


def f1(called: list[str], expected: list[str]) -> float:
    """F1 of the called tool names against the expected ones, counted as multisets (1 when both are empty)."""
    if not called and not expected:
        return 1.0
    matched = sum((Counter(called) & Counter(expected)).values())
    return 0.0 if matched == 0 else 2 * matched / (len(called) + len(expected))


def _tool_call_f1(answer: Answer, request: Mapping[str, Any], spec: Mapping[str, Any]) -> CheckResult:
    score = f1([c.name for c in answer.tool_calls], list(spec["expected"]))
    threshold = float(spec.get("threshold", 1.0))
    reason = f"called {_names(answer)}; expected {', '.join(spec['expected']) or 'none'}"
    return CheckResult("tool_call_f1", score >= threshold, reason, score=score)


def register() -> None:
    """The tool checks, in the registry beside the built-ins (the case schema lists them for editors)."""
    built_in = registry.BUILT_IN
    # inline: they keep to the sample's time limit themselves (their matching is harness.checks._matching's)
    prepare = lambda a, _: _call_spec(a)  # noqa: E731
    registry.add(registry.Registered("tool_call", _tool_call, built_in, prepare, _label, inline=True))
    registry.add(registry.Registered("no_tool_call", _no_tool_call, built_in, lambda a, r: bool(a), inline=True))
    registry.add(registry.Registered("tool_calls", _tool_calls, built_in, inline=True))
    registry.add(registry.Registered("tool_call_f1", _tool_call_f1, built_in, inline=True))
