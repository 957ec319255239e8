"""The prompt layouts of the model families: fixed tokens around messages, tool definitions and response formats.

The registry (``data/models.yaml``) names a model's ``chat_format`` here and may override single fields
(``format_overrides``); ``harness.tokens`` adds these offsets to the rendered texts. docs/tokens.md gives the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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
    # (measured, cause unknown), except for the first `strict_bare_free` such functions.
    strict_bare: int = -1
    strict_bare_free: int = 0
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
        strict_bare_free=1,
        schema_title_system=-1,
    ),
    "o3-mini": Format(priming=2),
    # Fitted on one recorded source (15 lines): each message costs 12 more than in chatml.
    "o1-preview": Format(per_message=15, priming=16),
    # gpt-4o(-mini)-search-preview: fitted on 5 recorded lines of two layouts (user; system + user), so weakly
    # supported; the server's own search instructions replace most of the framing.
    "search": Format(per_message=-1, priming=0),
}
