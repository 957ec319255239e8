"""The numbers a command line gives, checked in one place for every subcommand.

argparse reads ``--samples -1`` as a fine int and ``--rps nan`` as a fine float; what each number may be is the
table below, by the flag's name, whichever subcommand has it. ``parse`` is every promptvcr parser's
``parse_args``: a number out of its range is a usage error (exit 2) before anything is read or sent.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    low: float
    high: float = math.inf
    low_open: bool = False  # the low end itself is not allowed

    def fault(self, value: float) -> str | None:
        if not math.isfinite(value):
            return "must be a finite number"
        if value < self.low or (self.low_open and value == self.low) or value > self.high:
            low = f"must be above {self.low:g}" if self.low_open else f"must be at least {self.low:g}"
            return low + (f" and at most {self.high:g}" if math.isfinite(self.high) else "")
        return None


_COUNT = Rule(1)  # how many of something
_ZERO_UP = Rule(0)
_SECONDS = Rule(0, low_open=True)

RULES: dict[str, Rule] = {
    "samples": _COUNT,
    "requests": _COUNT,
    "concurrency": _COUNT,
    "slots": _COUNT,
    "stall_chunks": _ZERO_UP,
    "max_retries": _ZERO_UP,
    "retry_after": _ZERO_UP,
    "retry_after_ms": _ZERO_UP,
    "max_cost_increase": _ZERO_UP,
    "port": Rule(0, 65535),
    "rps": _SECONDS,
    "duration": _SECONDS,
    "timeout": _SECONDS,
    "hold": _SECONDS,
    "progress_every": _SECONDS,
}
RATE = Rule(0, 1)  # every --rate-* flag: a share of answers


def typed(name: str, convert: Callable[[str], float]) -> Callable[[str], Any]:
    """An argparse ``type`` (for the pytest plugin's options, whose parser is pytest's): ``convert``, then the rule
    of ``name`` in the table above."""

    def checked(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        fault = RULES[name].fault(value)
        if fault is not None:
            raise argparse.ArgumentTypeError(f"{text}: {fault}")
        return value

    return checked


def shard(text: str) -> tuple[int, int]:
    """``I/N`` (1-based): the I-th of N parts of a run's items."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: use I/N with 1 <= I <= N, e.g. 1/4")
    return i, n


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, then every number in its range (``parser.error`` exits 2 with the usage)."""
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        rule = RATE if name.startswith("rate_") else RULES.get(name)
        if rule is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        fault = rule.fault(value)
        if fault is not None:
            parser.error(f"--{name.replace('_', '-')} {value:g}: {fault}")
    return args
