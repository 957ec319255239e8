"""The named layout rules of the token counter, each with the recorded sources that justify it.

A rule is one thing the server was found to do beyond the plain ChatML framing (a join, a hidden keyword, a fixed
cost). Each is switchable so ``bench/tokens.py`` can measure it per source repository of the recorded traffic: a rule
stays only while it raises the exact-match figure of at least two sources (the one it was found on and another), and
the bench's leave-one-source-out view counts each source with only the rules justified without it. ``sources`` records
that measurement (the bench prints where it no longer holds); docs/tokens.md explains each rule.

Besides the rules below, the registry's ``format_overrides`` (``override:<field>=<value>,…``: one rule for all the
models that override the same fields alike) and each chat format other than plain ChatML (``format:<name>``) are
switchable the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ._encoding import TokenCountError


@dataclass(frozen=True)
class Rule:
    name: str
    what: str  # what the server does, in a few words
    sources: tuple[str, ...]  # source repositories whose exact figure it raises (measured by bench/tokens.py)
    # False: found on one source only, so a request it applies to gets an estimate (exact False), not an exact count
    exact: bool = True


_CREWAI = "crewAIInc/crewAI"
_RUBY_LLM = "crmne/ruby_llm"
_MIRASCOPE = "Mirascope/mirascope"
_PYDANTIC_AI = "pydantic/pydantic-ai"
_ELLMER = "tidyverse/ellmer"
_ARIZE = "Arize-ai/openinference"
_OPENLLMETRY = "traceloop/openllmetry"
_DD = "DataDog/dd-trace-py"
_OTEL = "open-telemetry/opentelemetry-python-contrib"
_LLM = "simonw/llm"
_LOGFIRE = "pydantic/logfire"
_LANGCHAINRB = "patterns-ai-core/langchainrb"
_CHATLAS = "posit-dev/chatlas"

# Rules found on one source only: a request they apply to gets that source's count as an estimate (exact False).
_SINGLE_SOURCE: Mapping[str, tuple[str, str]] = {
    "schema-hidden-bounds": (_CREWAI, "a json_schema is shown without default, minimum and maximum"),
    "schema-ascii-escapes": (_CREWAI, "a json_schema is shown with non-ASCII as \\u escapes"),
    "legacy-empty-objects-hidden": (_CREWAI, "the 0613 renderer leaves out objects without properties"),
    "forced-function-cl100k": (_OPENLLMETRY, "a forced function costs one less on cl100k (but 0613)"),
    "format:per_message=15": (_CREWAI, "o1-preview: 15 tokens per message"),
    "format:priming=16": (_CREWAI, "o1-preview: 16 tokens of priming"),
    "format:forced_function=-1,forced_function_system=-1": (
        _RUBY_LLM,
        "reasoning: a forced function costs its name − 1",
    ),
    "format:required_choice=2": (_MIRASCOPE, "0613: tool_choice required costs 2"),
    "format:empty_description=-1": (_PYDANTIC_AI, "reasoning: a function with an empty description costs 1 less"),
}

# Rules confirmed on two sources or more (the ones whose figures they raise, as bench/tokens.py measures them).
_CONFIRMED: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "system-join-merge": (
        "definitions follow the system text after an empty line, tokenized with it",
        (_CREWAI, _ELLMER, _ARIZE, _OPENLLMETRY),
    ),
    "parallel-results-escaped-until-2026-03": (
        "parallel results' non-ASCII text was \\u-escaped until March 2026",
        (_ARIZE, _RUBY_LLM, _MIRASCOPE, _PYDANTIC_AI, _CREWAI),
    ),
    "tool-result-name-hidden": ("a tool message's own name is not shown", (_CREWAI, _ARIZE, _LOGFIRE)),
    "call-arguments-compact": (
        "call arguments are re-serialized as compact JSON",
        (_PYDANTIC_AI, _CREWAI, _OPENLLMETRY, _MIRASCOPE, _DD, _LLM, _ARIZE, _LOGFIRE),
    ),
    "parallel-wrapper": (
        "parallel calls are one multi_tool_use.parallel call, answered by one list",
        (_RUBY_LLM, _ELLMER, _CREWAI, _MIRASCOPE, _OTEL, _PYDANTIC_AI, _ARIZE, _DD),
    ),
    "strict-bare-property": (
        "a strict function with an undescribed, untitled property costs 1 less",
        (_PYDANTIC_AI, _ELLMER, _ARIZE, _DD),
    ),
    "strict-type-list": ("a strict function with a list of types costs 34 more, once", (_CREWAI, _ELLMER)),
    "schema-next-to-tools": (
        "a json_schema next to tool definitions costs 3 less",
        (_MIRASCOPE, _CREWAI, _PYDANTIC_AI),
    ),
    "schema-title-twice": (
        "a json_schema's top-level title is shown a second time",
        (_OPENLLMETRY, _CREWAI, _MIRASCOPE),
    ),
    "schema-assistant-turns": (
        "assistant turns cost 4 more while a json_schema constrains the answer",
        (_CREWAI, _CHATLAS),
    ),
    "plain-union-inline": ("a union of plain types is written inline", (_RUBY_LLM, _PYDANTIC_AI, _CREWAI)),
    "description-lines-stripped": (
        "descriptions are shown line by line, each line stripped",
        (_PYDANTIC_AI, _DD, _ELLMER, _MIRASCOPE, _CREWAI),
    ),
    "uncommented-one-line": (
        "non-strict parameters without comments are written on one line",
        (_DD, _PYDANTIC_AI, _ARIZE, _OPENLLMETRY, _MIRASCOPE, _LLM, _RUBY_LLM, _LOGFIRE, _LANGCHAINRB),
    ),
    "nested-flat": ("a nested object's properties are not indented further", (_RUBY_LLM, _CREWAI)),
    "strict-titles": ("a strict function's property titles are shown", (_CREWAI, _MIRASCOPE, _ARIZE)),
    "nonstrict-titles": (
        "a non-strict function's property titles are shown (newer snapshots)",
        (_MIRASCOPE, _CREWAI, _ARIZE, _OTEL),
    ),
    "titles-hidden-before-structured-outputs": (
        "snapshots before 2024-08-06 show no non-strict titles",
        (_CREWAI, _MIRASCOPE, _LANGCHAINRB),
    ),
    "parameters-comments": ("the parameters' own title and description are shown", (_MIRASCOPE, _ARIZE, _LANGCHAINRB)),
    "parameters-title-separator": ("the parameters' title is set off by an empty // line", (_MIRASCOPE, _ARIZE)),
    "legacy-nested-uncommented": (
        "the 0613 renderer indents nested objects, without their comments",
        (_CREWAI, _MIRASCOPE),
    ),
}

RULES: Mapping[str, Rule] = {
    **{name: Rule(name, what, sources) for name, (what, sources) in _CONFIRMED.items()},
    **{name: Rule(name, what, (source,), exact=False) for name, (source, what) in _SINGLE_SOURCE.items()},
}


def override_rule(values: str) -> str:
    return f"override:{values}"


def format_rule(chat_format: str) -> str:
    return f"format:{chat_format}"


class Rules:
    """Which rules apply (all but ``off``), recording the ones consulted so the bench re-counts only where they act."""

    def __init__(self, off: Collection[str] = ()) -> None:
        unknown = sorted(n for n in off if n not in RULES and not n.startswith(("override:", "format:")))
        if unknown:
            raise TokenCountError(f"unknown token-count rules {unknown} (known: {', '.join(RULES)})")
        self.off = frozenset(off)
        self.consulted: set[str] = set()
        self.estimated: set[str] = set()  # why the count is an estimate (single-source rules, unsure shapes)

    def on(self, name: str) -> bool:
        self.consulted.add(name)
        applies = name not in self.off
        rule = RULES.get(name)
        if applies and rule is not None and not rule.exact:
            self.estimated.add(f"rule {name} (found on one source)")
        return applies

    def unsure(self, shape: str) -> None:
        """A shape no rule counts exactly on the recorded sources: the count is an estimate."""
        self.estimated.add(shape)
