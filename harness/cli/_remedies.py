"""The words of a ``harness.run._remedy.Remedy``: the command a user runs to record what is missing. One phrasing for
the runner's error messages (through ``Settings.advise``) and for `promptvcr status`."""

from __future__ import annotations

import shlex

from ..record._cassettes import RecordMode
from ..run._remedy import Missing, Remedy


def command(remedy: Remedy) -> str:
    """`once` adds what is missing and replays the rest: the eval's make target. Any other mode redoes what it
    records, so only the items named (all the eval's when none is)."""
    if remedy.record_mode == RecordMode.ONCE:
        return f"make record EVAL={remedy.eval_name}"
    text = f"promptvcr run {remedy.eval_name} --record-mode {remedy.record_mode}"
    return f"{text} -- -k {shlex.quote(' or '.join(remedy.items))}" if remedy.items else text


def advice(remedy: Remedy) -> str:
    """What a row's error message tells the user to do."""
    if remedy.missing == Missing.READABLE_CASSETTE:
        return f"fix it, or record it again with `{command(remedy)}`"
    more = remedy.missing == Missing.MATCH and remedy.record_mode != RecordMode.ONCE  # one item of maybe many
    return f"run `{command(remedy)}`" + (" (`promptvcr status` lists all)" if more else "")
