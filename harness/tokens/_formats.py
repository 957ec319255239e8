"""The prompt layouts of the model families: fixed tokens around messages, tool definitions and response formats.

The registry (``data/models.yaml``) names a model's ``chat_format`` here and may override single fields
(``format_overrides``); ``harness.tokens._count`` adds these offsets to the rendered texts. docs/tokens.md gives
the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ._rules import Rules, format_rule, override_rule


@dataclass(frozen=True)
class Format:
    """How a family lays a request out: fixed tokens around messages, tool definitions and response formats.

    Offsets are what the server adds beyond the rendered text; ``*_system`` applies when the request starts with a
    system/developer message (the definitions join it) and the plain one when the server adds a message for them.
    """

    per_message: int = 3  # <|im_start|>, the role/content separator, <|im_end|>
    per_name: int | None = None  # None: a name costs the tokens of ":name"; else its own tokens plus this
    priming: int = 3  # <|im_start|>assistant<|im_sep|> that starts the answer
    assistant_extra: int = 0  # e.g. the "final" channel tokens reasoning models put on assistant turns
    tools: int = 3
    tools_system: int = -1
    schema: int = 7
    schema_system: int = 4
    # A schema next to tool definitions (it joins their message) costs this much beyond schema_system (measured:
    # gpt-4o, gpt-4o-mini, gpt-5-mini; crewAI, Mirascope, pydantic-ai).
    schema_tools: int = -3
    per_call: int = 6  # an assistant tool call and its result, beyond the names and arguments
    json_assistant_extra: int = 4  # each assistant turn when a json_schema constrains the answer
    # A schema with a top-level "title" costs that title's tokens once more, plus this (measured; the title is
    # evidently shown a second time, where it merges with its surroundings).
    schema_title: int = -1
    schema_title_system: int = -2
    forced_function: int = 9  # tool_choice naming one function, beyond the name
    forced_function_system: int = 7
    # Each strict function with a property that has neither description nor title costs this much beyond its rendering
    # (measured, cause unknown).
    strict_bare: int = -1
    # Each function whose description is empty ("description": "") costs this much beyond its rendering.
    empty_description: int = 0
    # A request with a strict function that types a property by a list of types (`"type": ["string", "null"]`, at
    # any depth) costs this much more, once, whatever the schema (measured, cause unknown: two sources, four snapshots).
    strict_type_list: int = 34
    # Non-strict functions' property titles are shown ("// Title"), whatever else the request holds.
    titles: bool = True
    # The 0613 snapshots' function renderer (see tokens_layout.render_tools): strict ignored, no parameters' title or
    # description, nested objects indented without their comments.
    legacy_functions: bool = False
    required_choice: int = 0  # tool_choice "required"


FORMATS: Mapping[str, Format] = {
    "chatml": Format(),
    # cl100k_base snapshots show no non-strict titles (and a forced function may cost one less: forced-function-cl100k).
    "chatml-cl100k": Format(titles=False),
    # The 0613 snapshots (gpt-4-0613, gpt-3.5-turbo-0613), the first with function calling, keep that release's
    # renderer; a forced function costs its name + 4 with or without a system message (as hmarr/openai-chat-tokens,
    # fitted on these snapshots, has it) and "required" 2.
    "chatml-0613": Format(
        forced_function=4,
        forced_function_system=4,
        required_choice=2,
        titles=False,
        legacy_functions=True,
    ),
    # The first gpt-3.5-turbo snapshot: four tokens per message, and a name replaces the role token.
    "chatml-0301": Format(per_message=4, per_name=-1, titles=False),
    # gpt-5 and o3/o4: assistant turns carry a channel; with tools the server adds its own system preamble.
    "reasoning": Format(
        priming=2,
        assistant_extra=2,
        tools=85,
        tools_system=84,
        schema=4,
        schema_system=3,
        per_call=10,
        forced_function=-1,
        forced_function_system=-1,
        # pydantic-ai's undescribed functions on gpt-5-mini (41 lines; exact on gpt-4o, gpt-4.1: an estimate)
        empty_description=-1,
    ),
    "o3-mini": Format(priming=2),
    # Fitted on one recorded source (15 lines): each message costs 12 more than in chatml.
    "o1-preview": Format(per_message=15, priming=16),
    # gpt-4o(-mini)-search-preview: fitted on 5 recorded lines of two layouts (user; system + user), so weakly
    # supported; the server's own search instructions replace most of the framing.
    "search": Format(per_message=-1, priming=0),
}


CHATML = FORMATS["chatml"]


def _rules_of(values: Mapping[str, Any], name: Callable[[str], str]) -> dict[str, str]:
    """Field → the rule that governs its value: one per offset and its ``_system`` twin (titles excluded)."""
    groups: dict[str, list[str]] = {}
    for key in sorted(values):
        if key != "titles":
            groups.setdefault(key.removesuffix("_system"), []).append(key)
    return {key: name(",".join(f"{k}={values[k]}" for k in group)) for group in groups.values() for key in group}


class Layout:
    """A model's format with its registry overrides, each value that differs from plain ChatML a switchable rule.

    A field's value is looked up where the count uses it: the model's override (rule ``override:<field>=<value>``),
    else its format's value (rule ``format:<field>=<value>``), else plain ChatML's. A rule is one for every format or
    model with that value, so e.g. the reasoning families' priming of 2 is one rule; an offset and its ``_system``
    twin (the same framing, joined to a system message) are one rule. Only the rules of fields a request uses are
    consulted. Whether titles show is not switched here: it is the rule titles-hidden-before-structured-outputs,
    applied where titles are rendered.
    """

    def __init__(self, chat_format: str, overrides: Mapping[str, Any], rules: Rules) -> None:
        self._rules = rules
        fmt = FORMATS[chat_format]
        own = {f.name: getattr(fmt, f.name) for f in fields(Format) if getattr(fmt, f.name) != getattr(CHATML, f.name)}
        self._chain: dict[str, list[tuple[Any, str]]] = {}
        for key, rule in _rules_of(own, format_rule).items():
            self._chain[key] = [(own[key], rule)]
        offsets = {key: value for key, value in overrides.items() if key != "titles"}
        for key, rule in _rules_of(offsets, override_rule).items():
            self._chain.setdefault(key, []).insert(0, (offsets[key], rule))
        self.titles = bool(overrides.get("titles", fmt.titles))

    def __getattr__(self, field: str) -> Any:
        for value, rule in self._chain.get(field, ()):
            if self._rules.on(rule):
                return value
        return getattr(CHATML, field)
