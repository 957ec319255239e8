"""The record modes: a module of its own, as the pytest plugin reads them for its options in every pytest run
(``harness.record._cassettes``, where the modes are used, imports the redaction rules and their schema checks)."""

from __future__ import annotations

from enum import StrEnum


class RecordMode(StrEnum):
    """vcrpy's record modes, as ``--record-mode`` takes them."""

    NONE = "none"  # replay only: nothing is sent
    ONCE = "once"  # record cassettes that do not exist yet; replay the others as they are
    NEW_EPISODES = "new_episodes"  # replay what matches, record what does not, keep both
    ALL = "all"  # record everything afresh
