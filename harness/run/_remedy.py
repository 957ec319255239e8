"""What a sample lacks to be answered in replay, and the record mode that fixes it: the run layer's side of the advice
a missing recording gets. The words a user runs (a make target, a `promptvcr run` command line) are the edge's
(``harness.cli._remedies``), which ``RunOptions.advise`` brings in; without it the remedy says itself plainly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ..record._cassettes import RecordMode


class Missing(StrEnum):
    RECORDING = "recording"  # the case × variant has no cassette
    JUDGE_RECORDING = "judge_recording"  # its judge has no cassette
    MATCH = "match"  # a cassette whose recordings do not answer this request: changed, or too few answers
    READABLE_CASSETTE = "readable_cassette"  # a cassette that cannot be read (e.g. a merge conflict in it)


@dataclass(frozen=True, slots=True)
class Remedy:
    missing: Missing
    eval_name: str
    record_mode: RecordMode  # `once` adds what is missing to the eval; the others redo ``items``
    items: tuple[str, ...] = ()  # the pytest items (``case[variant]``) to record again; none: all of the eval's

    def __str__(self) -> str:
        which = " or ".join(self.items) if self.items and self.record_mode != RecordMode.ONCE else "all"
        return f"record eval {self.eval_name!r} ({which}) with record mode {self.record_mode}"


Advise = Callable[[Remedy], str]  # a remedy → the words that tell a user what to do (see harness.cli._remedies)
