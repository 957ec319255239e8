"""What the case schema cannot say about tools and agent transcripts, checked before anything is sent.

The schema checks each value's shape; these rules span values or need a JSON Schema validator: a function's
``parameters`` must be a usable JSON Schema (and, with ``strict: true``, one the API's structured outputs take:
every object closed with ``additionalProperties: false`` and all its properties required); tool names are unique; a
``tool_choice`` naming a tool names one of ``tools``, and neither it nor ``parallel_tool_calls`` comes without
``tools`` (the API refuses both); a ``tool`` message answers a call of the assistant message before it, and every
call is answered before the conversation goes on. Each problem is (the parameter or message it is in, the pointer
inside it, the message), for the loader to place at its ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..checks import _builtins as checks
from ._yamlsrc import escape

TOOL_KEYS = ("tools", "tool_choice", "parallel_tool_calls")
_MAX_STRICT_PROBLEMS = 5  # per function: the first few say what to fix


def tool_problems(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, pointer inside the key's value, message) for every problem of the request's tool parameters."""
    tools = params.get("tools")
    problems: list[tuple[str, str, str]] = []
    names: dict[str, int] = {}
    for index, tool in enumerate(tools or []):
        kind = tool["type"]
        name = tool[kind]["name"]
        if name in names:
            problems.append(("tools", f"/{index}/{kind}/name", f"tool {name!r} is defined twice (also /{names[name]})"))
        names.setdefault(name, index)
        if kind == "function":
            problems.extend(("tools", f"/{index}/function{at}", msg) for at, msg in _function_problems(tool[kind]))
    for key in ("tool_choice", "parallel_tool_calls"):
        if key in params and not tools and params[key] != "none":
            problems.append((key, "", f"{key} needs `tools` (the API refuses it without them)"))
    if tools:
        problems.extend(("tool_choice", at, msg) for at, msg in _choice_problems(params.get("tool_choice"), names))
    return problems


def _function_problems(function: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    schema = function.get("parameters")
    if schema is None:
        return
    try:
        checks.compile_check("json_schema", schema)
    except checks.CheckArgError as exc:
        yield f"/parameters{exc.pointer}", f"parameters: {exc}"
        return
    if function.get("strict"):
        strict = list(_strict_problems(schema, "/parameters"))
        yield from strict[:_MAX_STRICT_PROBLEMS]


def _strict_problems(node: Any, at: str) -> Iterator[tuple[str, str]]:
    """Where a ``strict`` function's schema breaks the rules of structured outputs."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strict_problems(item, f"{at}/{index}")
        return
    if not isinstance(node, Mapping):
        return
    properties = node.get("properties")
    if isinstance(properties, Mapping) or node.get("type") == "object":
        if node.get("additionalProperties") is not False:
            yield at, "strict: true needs `additionalProperties: false` on every object"
        missing = sorted(set(properties or {}) - set(node.get("required") or []))
        if missing:
            yield f"{at}/required", f"strict: true needs every property required; not required: {', '.join(missing)}"
    for key in ("properties", "$defs", "definitions"):
        if isinstance(node.get(key), Mapping):
            for name, sub in node[key].items():
                yield from _strict_problems(sub, f"{at}/{key}/{escape(name)}")
    for key in ("items", "anyOf", "oneOf", "allOf"):
        if key in node:
            yield from _strict_problems(node[key], f"{at}/{key}")


def _choice_problems(choice: Any, names: Mapping[str, int]) -> Iterator[tuple[str, str]]:
    if not isinstance(choice, Mapping):
        return
    named = [("", choice)] if choice["type"] != "allowed_tools" else []
    if choice["type"] == "allowed_tools":
        named = [(f"/allowed_tools/tools/{i}", t) for i, t in enumerate(choice["allowed_tools"]["tools"])]
    for at, tool in named:
        name = tool[tool["type"]]["name"]
        if name not in names:
            known = ", ".join(names)
            yield f"{at}/{tool['type']}/name", f"tool_choice names {name!r}, which is not one of the tools ({known})"


def message_problems(messages: Sequence[Mapping[str, Any]]) -> list[tuple[int, str, str]]:
    """(message index, pointer inside it, message) for a transcript the API would refuse: a tool result without its
    call, or a call left unanswered."""
    problems: list[tuple[int, str, str]] = []
    open_calls: dict[str, int] = {}  # call id → the index of the assistant message that made it
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if message["tool_call_id"] not in open_calls:
                said = f"open calls: {', '.join(open_calls)}" if open_calls else "no call is waiting for a result"
                what = f"tool_call_id {message['tool_call_id']!r} answers no call of the assistant message before it"
                problems.append((index, "/tool_call_id", f"{what} ({said})"))
            open_calls.pop(message["tool_call_id"], None)
            continue
        problems.extend(_unanswered(open_calls))
        open_calls = {}
        if role == "assistant":
            for position, call in enumerate(message.get("tool_calls") or []):
                if call["id"] in open_calls:
                    problems.append((index, f"/tool_calls/{position}/id", f"call id {call['id']!r} is used twice"))
                open_calls[call["id"]] = index
    problems.extend(_unanswered(open_calls))
    return problems


def _unanswered(open_calls: Mapping[str, int]) -> list[tuple[int, str, str]]:
    return [
        (index, "/tool_calls", f"call {call_id!r} has no `tool` message answering it (the API requires one per call)")
        for call_id, index in open_calls.items()
    ]
