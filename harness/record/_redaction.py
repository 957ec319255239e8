"""Personal data in prompts and answers: rules that mask it before anything is written to a cassette or a report.

An eval lists the rules it wants (``redact: [email, phone, card, {name: ticket, pattern: "TCK-[0-9]+"}]``). Requests
are masked before vcrpy records them *and* before it matches them, so a replay matches the masked form of the same
request; answers are masked in cassettes and in ``results.csv`` alike. A rule's pattern is the user's: one that
backtracks without end on some text (``(a|aa)+$``) gets ``TIME_LIMIT_S`` per text and then masks all of it, so the
run neither hangs nor keeps what the rule was meant to hide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..checks import _matching as matching

TIME_LIMIT_S = 1.0  # of CPU time, for one rule on one text

BUILTIN = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    # numbers written as phone numbers: an optional +country code, then groups with separators (not bare digits)
    "phone": r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]?\d{3,4}(?!\w)",
    # 13–19 digits in groups, as card numbers are written; checked with Luhn so order ids stay readable
    "card": r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)",
}


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Any  # a compiled pattern of the regex package (harness.checks._matching)

    def apply(self, text: str) -> str:
        marker = f"[REDACTED:{self.name}]"
        card = self.name == "card"
        replace: Any = (lambda m: marker if _luhn(m.group()) else m.group()) if card else marker
        try:
            return str(self.pattern.sub(replace, text, timeout=TIME_LIMIT_S))
        except TimeoutError:
            return f"[REDACTED:{self.name}: the rule took over {TIME_LIMIT_S:g} s on this text, so all of it is masked]"


@dataclass(frozen=True)
class Redactor:
    rules: tuple[Rule, ...]

    def text(self, value: str) -> str:
        for rule in self.rules:
            value = rule.apply(value)
        return value


def compile_rules(raw: Iterable[Any]) -> Redactor:
    """Rules from an eval file; raises ValueError(message, index) for an unknown name or a bad pattern."""
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        name, pattern = (item, BUILTIN.get(item)) if isinstance(item, str) else (item["name"], item["pattern"])
        if pattern is None:
            raise ValueError(f"unknown redaction rule {name!r} (built in: {', '.join(BUILTIN)})", index)
        try:
            rules.append(Rule(name, matching.compiled(pattern)))
        except re.error as exc:
            raise ValueError(f"invalid pattern for redaction rule {name!r}: {exc}", index) from None
    # a card number also looks like a phone number: cards go first
    return Redactor(tuple(sorted(rules, key=lambda rule: rule.name != "card")))


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def mask_json_text(redactor: Redactor, text: str) -> str:
    """Mask every string inside a JSON document (keys stay); in a server-sent event stream, inside each event's JSON
    (so that the stream stays one: a rule must not rewrite a chunk's framing or numbers); other text as text."""
    try:
        doc = json.loads(text)
    except ValueError:
        if _is_event_stream(text):
            return "\n".join(_mask_event_line(redactor, line) for line in text.split("\n"))
        return redactor.text(text)
    return json.dumps(mask_json(redactor, doc), ensure_ascii=False, separators=(",", ":"))


_EVENT_LINES = ("data:", "event:", "id:", "retry:", ":")  # an event's fields, and a comment (`: keep-alive`)


def _is_event_stream(text: str) -> bool:
    """Whether a body is a server-sent event stream by its lines: each one a field or a comment, one of them data
    (whatever comes first: a proxy's comment or an `event:` line). The body is all a cassette's masking is given."""
    lines = [line for line in text.splitlines() if line]
    return any(line.startswith("data:") for line in lines) and all(line.startswith(_EVENT_LINES) for line in lines)


def _mask_event_line(redactor: Redactor, line: str) -> str:
    if not line.startswith("data:"):
        return redactor.text(line)
    try:
        chunk = json.loads(line[5:])
    except ValueError:
        return redactor.text(line)  # `data: [DONE]`, or a chunk that is not JSON: kept as the text it is
    return "data: " + json.dumps(mask_json(redactor, chunk), ensure_ascii=False, separators=(",", ":"))


def mask_json(redactor: Redactor, node: Any) -> Any:
    """``node`` with every string masked (keys stay)."""
    if isinstance(node, str):
        return redactor.text(node)
    if isinstance(node, list):
        return [mask_json(redactor, item) for item in node]
    if isinstance(node, dict):
        return {key: mask_json(redactor, value) for key, value in node.items()}
    return node
