"""What a Chat Completions request body holds, read for counting: its functions, forced function, json_schema, the
texts of content parts, parallel tool-call groups.

Pure readers of the body's shape, kept apart from ``harness.tokens._count`` so that the counter reads as the layout
rules and their token costs alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [p for p in content or [] if isinstance(p, Mapping) and p.get("type") == "text"]
    return "".join(str(p.get("text") or "") for p in parts)


def parallel_groups(messages: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Call id → index of the assistant message that made it, for messages with parallel calls."""
    return {
        str(call.get("id")): i
        for i, m in enumerate(messages)
        if len(m.get("tool_calls") or []) > 1
        for call in m["tool_calls"]
    }


def result_of(message: Mapping[str, Any], groups: Mapping[str, int]) -> int | None:
    return groups.get(str(message.get("tool_call_id"))) if message.get("role") == "tool" else None


def forced_function(body: Mapping[str, Any]) -> str | None:
    choice = body.get("tool_choice") or body.get("function_call")
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return str(name) if name else None
    return None


def strict_bare(fn: Mapping[str, Any]) -> bool:
    properties = (fn.get("parameters") or {}).get("properties") or {}
    # Only a property with neither description nor title: a titled one is shown as its "// Title" line alone.
    # An empty description is no description (measured: ellmer's `roll`, "description": "").
    return bool(fn.get("strict")) and any(
        isinstance(p, Mapping) and not str(p.get("description") or "").strip() and "title" not in p
        for p in properties.values()
    )


def has_type_list(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return isinstance(schema.get("type"), list) or any(has_type_list(v) for v in schema.values())
    if isinstance(schema, list):
        return any(has_type_list(v) for v in schema)
    return False


def canonical_json(arguments: Any) -> str:
    """Call arguments as the server re-serializes them: compact JSON (the request's spacing does not count)."""
    text = str(arguments or "")
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def function_specs(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    specs: list[Mapping[str, Any]] = []
    for tool in body.get("tools") or []:
        if tool.get("type") == "function" and tool.get("function"):
            specs.append(tool["function"])
    specs.extend(body.get("functions") or [])
    return specs


def json_schema_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        return spec if isinstance(spec, Mapping) else {}
    return None


def image_estimate(image_url: Mapping[str, Any]) -> int:
    # gpt-4o's published rule without the image's size: low detail is 85 tokens; otherwise a 1024×1024 image
    # (4 tiles of 170 + 85) stands in for the unknown size.
    return 85 if image_url.get("detail") == "low" else 765
