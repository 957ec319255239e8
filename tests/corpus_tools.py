"""Real recorded OpenAI answers with tool calls and refusals (../shared/corpus, or the shipped excerpt
tests/data/corpus_excerpt_tools.jsonl.gz) turned into promptvcr cases and cassettes, and what each check must say of
them, computed here from the raw response with plain Python and jsonschema — never with the harness's checks.

A line's case carries the line's own model, tools (their documented keys: name, description, parameters, strict),
tool_choice and parallel_tool_calls, and its own messages when a case file can hold them (plain text, assistant tool
calls, tool results; content kept verbatim inside ``{% raw %}``), else one user message naming the line. Its
cassette holds the request promptvcr sends for that case and the line's response body verbatim.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from harness.record import _cassettes as cassettes

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "shared" / "corpus" / "openai_real_traffic.jsonl.gz"
EXCERPT = HERE / "data" / "corpus_excerpt_tools.jsonl.gz"
MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id"}
FUNCTION_KEYS = ("name", "description", "parameters", "strict")


def message_of(line: dict[str, Any]) -> dict[str, Any]:
    choices = line["response"]["body"].get("choices") or [{}]
    message: dict[str, Any] = choices[0].get("message") or {}
    return message


def is_refusal(line: dict[str, Any]) -> bool:
    return bool(message_of(line).get("refusal"))


def has_tool_calls(line: dict[str, Any]) -> bool:
    return "response_tool_calls" in line["features"] and bool(message_of(line).get("tool_calls"))


def read(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for raw in handle:
            yield json.loads(raw)


def case_id(line: dict[str, Any]) -> str:
    repo = re.sub(r"[^A-Za-z0-9]+", "-", line["source_repo"]).strip("-")
    return f"{repo}-{line['interaction_sha256'][:12]}"


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    kind = tool["type"]
    return {"type": kind, kind: {k: tool[kind][k] for k in FUNCTION_KEYS if k in tool[kind]}}


def _message(message: dict[str, Any]) -> dict[str, Any] | None:
    """The message as a case file holds it, or None when it cannot (content parts, other keys)."""
    if not set(message) <= MESSAGE_KEYS or message.get("role") not in (
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
    ):
        return None
    content = message.get("content")
    if content is None and not message.get("tool_calls"):
        return None
    if content is not None and (not isinstance(content, str) or "endraw" in content):
        return None
    out = {k: v for k, v in message.items() if k != "content"}
    if isinstance(content, str):
        out["content"] = "{% raw %}" + content + "{% endraw %}"  # the text as it was, whatever braces it has
    return out


def case_of(line: dict[str, Any]) -> dict[str, Any]:
    """The line's case, with the checks of ``expectations``."""
    return {**request_case(line), "expect": [{name: arg} for name, arg, _ in expectations(line)]}


def request_case(line: dict[str, Any]) -> dict[str, Any]:
    """The line's request as a case without checks."""
    request = line["request"]["body"]
    messages = [_message(m) for m in request["messages"]]
    usable = all(m is not None for m in messages)
    case: dict[str, Any] = {
        "id": case_id(line),
        "description": f"recorded OpenAI traffic: {line['source_repo']} {line['source_path']} "
        f"@ {line['source_commit']}",
        "model": request["model"],
        "messages": messages if usable else [{"role": "user", "content": f"corpus line {line['interaction_sha256']}"}],
    }
    # the request's output limit, else the answer's own size: the pre-flight's worst case must fit the context window
    for key in ("max_tokens", "max_completion_tokens"):
        if key in request:
            case[key] = request[key]
    if not {"max_tokens", "max_completion_tokens"} & set(request):
        case["max_completion_tokens"] = max(1, (line["usage"] or {}).get("completion_tokens") or 1)
    if request.get("tools"):
        case["tools"] = [_tool(t) for t in request["tools"]]
        for key in ("tool_choice", "parallel_tool_calls"):
            if key in request:
                case[key] = request[key]
    return case


def interaction(body: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """One vcrpy interaction: the request promptvcr sends for the line's case, the line's answer verbatim."""
    latency = str((line["response"].get("headers") or {}).get("openai-processing-ms") or "0")
    return {
        "request": {
            "body": cassettes.sent(body).decode(),  # as promptvcr sends it (the SDK's bytes)
            "headers": {"content-type": ["application/json"]},
            "method": "POST",
            "uri": "http://127.0.0.1:9/v1/chat/completions",
        },
        "response": {
            "body": {"string": json.dumps(line["response"]["body"], ensure_ascii=False)},
            "headers": {
                "content-type": ["application/json"],
                cassettes.LATENCY_HEADER: [latency if latency.isdigit() else "0"],
                cassettes.SAMPLE_HEADER: ["0"],
            },
            "status": {"code": 200, "message": "OK"},
        },
    }


# --- what the checks must say, from the raw response ------------------------------------------------------------------


def calls(line: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, arguments text) of each call, in order (a custom tool's text input as its arguments)."""
    out = []
    for call in message_of(line).get("tool_calls") or []:
        inner = call.get("function") or call["custom"]
        out.append((inner["name"], inner["arguments"] if "function" in call else inner["input"]))
    return out


def is_custom(line: dict[str, Any], name: str) -> bool:
    return any(c.get("custom", {}).get("name") == name for c in message_of(line).get("tool_calls") or [])


def _parsed(arguments: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(arguments)
    except ValueError:
        return False, None


def call_valid(line: dict[str, Any], name: str, arguments: str) -> bool:
    """JSON arguments that fit the parameters the request gave the tool ``name``; any text for a custom tool the
    request offers."""
    if is_custom(line, name):
        return any(t.get("custom", {}).get("name") == name for t in line["request"]["body"].get("tools") or [])
    ok, value = _parsed(arguments)
    offered = {
        t["function"]["name"]: t["function"]
        for t in line["request"]["body"].get("tools") or []
        if t["type"] == "function"
    }
    if not ok or name not in offered:
        return False
    schema = offered[name].get("parameters")
    if not isinstance(schema, dict):
        return True
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    return bool(cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value))


def f1(called: list[str], expected: list[str]) -> float:
    matched = sum((Counter(called) & Counter(expected)).values())
    return 1.0 if not called and not expected else 2 * matched / (len(called) + len(expected))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def expectations(line: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(check name, its argument, whether it must pass) for the line's case."""
    if is_refusal(line):
        return [("refusal", True, True), ("json_valid", True, False), ("no_tool_call", True, not calls(line))]
    made = calls(line)
    names = [n for n, _ in made]
    first, first_args = made[0]
    offered = sorted(
        t["function"]["name"] for t in line["request"]["body"].get("tools") or [] if t["type"] == "function"
    )
    out: list[tuple[str, Any, bool]] = [
        ("no_tool_call", True, False),
        ("tool_calls", {"count": len(made)}, True),
        ("tool_calls", {"order": names[::-1]}, names[::-1] == names),
        ("tool_call", first, any(n == first and call_valid(line, n, a) for n, a in made)),
        ("tool_call_f1", {"expected": offered, "threshold": 0.5}, f1(names, offered) >= 0.5),
        ("refusal", False, True),
    ]
    ok, value = _parsed(first_args)
    if ok and isinstance(value, dict) and value and not is_custom(line, first):
        key = next(iter(value))
        arguments = {"path": f"/{_escape(key)}", "equals": value[key]}
        out.append(("tool_call", {"name": first, "validate_parameters": False, "arguments": arguments}, True))
    return out


def failed_labels(line: dict[str, Any]) -> list[str]:
    """The failed_checks of the line's row, in the checks' order (a tool_call check is named for its tool)."""
    labels = []
    for name, arg, passes in expectations(line):
        if not passes:
            tool = arg if isinstance(arg, str) else arg.get("name") if isinstance(arg, dict) else None
            labels.append(f"tool_call:{tool}" if name == "tool_call" else name)
    return labels


def selected(lines: Iterable[dict[str, Any]], tool_lines: int) -> list[dict[str, Any]]:
    """The first ``tool_lines`` answers with tool calls by interaction_sha256, and every refusal."""
    pool = list(lines)
    tools = sorted((x for x in pool if has_tool_calls(x) and not is_refusal(x)), key=lambda x: x["interaction_sha256"])
    return tools[:tool_lines] + sorted((x for x in pool if is_refusal(x)), key=lambda x: x["interaction_sha256"])
