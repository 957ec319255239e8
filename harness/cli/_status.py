"""`promptvcr status`: which recordings still match what the eval files would send, nothing sent.

Each case × variant's request body (as ``harness.load._evals`` renders it) is compared with the request bodies in its
cassette by the rule replay matches by, ``harness.record._cassettes.request_key`` (parsed JSON, secrets and personal
data masked as the cassette keeps them). A case is *changed*
when no recorded body is its body (prompt, parameters or model edited), *incomplete* when fewer recorded answers
match than it has samples, *missing* when it has no cassette; a cassette no case × variant uses is *orphaned*.
A case with judge checks also needs, for each recorded answer, the judge request built from it in its judge cassette;
a conversation (``turns:``), each later turn's request built from the recorded answer before it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..checks import _builtins as checks
from ..checks import _judge as judge
from ..load._evals import CaseRun, Eval
from ..record import _cassettes as cassettes
from ..record._cassettes import RecordMode
from ..run import _preflight as preflight
from ..run import _stream as stream
from ..run import _turns as turns
from ..run._remedy import Missing, Remedy
from . import _remedies as remedies

State = Literal["ok", "changed", "incomplete", "missing"]
# What an edit to each request key means to a reader; any other key is a parameter and keeps its own name.
KEY_NAMES = {"messages": "prompt", "model": "model"}


@dataclass(frozen=True)
class Entry:
    run: CaseRun
    path: Path
    state: State
    detail: str
    judge: bool = False  # about the judge's cassette, not the answers'

    @property
    def item(self) -> str:
        """The pytest item (what `-k` selects); re-recording it redoes its answers and their judging."""
        return f"{self.run.case.id}[{self.run.variant.name}]"

    @property
    def label(self) -> str:
        return f"{self.item} judge" if self.judge else self.item


@dataclass(frozen=True)
class Interaction:
    request: Any  # the parsed JSON body (text when it isn't JSON)
    response: Any  # the parsed JSON body of a 200 answer, else None
    body: str  # the request body as stored


def _key(body: Any, run: CaseRun) -> str:
    return cassettes.request_key(body if isinstance(body, str) else json.dumps(body), run.redactor)


def _parsed(body: Any) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body


def interactions(path: Path) -> list[Interaction]:
    """The requests and answers of a vcrpy cassette."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: list[Interaction] = []
    for raw in data.get("interactions") or []:
        response = raw.get("response") or {}
        ok = (response.get("status") or {}).get("code") == 200
        body = (raw.get("request") or {}).get("body") or ""
        out.append(
            Interaction(_parsed(body), _parsed((response.get("body") or {}).get("string")) if ok else None, body)
        )
    return out


def what_changed(wanted: dict[str, Any], recorded: Any) -> str:
    if not isinstance(recorded, dict):
        return "the recorded request is not a JSON object"
    keys = sorted(k for k in wanted.keys() | recorded.keys() if wanted.get(k) != recorded.get(k))
    names = [KEY_NAMES.get(k, k) for k in keys]
    if "model" in keys:
        names[keys.index("model")] = f"model {recorded.get('model')} → {wanted.get('model')}"
    return ", ".join(names)


def _read(path: Path) -> list[Interaction] | str:
    """The cassette's interactions, or why it can't be read."""
    try:
        return interactions(path)
    except (OSError, ValueError, TypeError, yaml.YAMLError, AttributeError) as exc:  # ValueError: not UTF-8
        return f"unreadable cassette: {cassettes.unreadable(exc)}"


def check(run: CaseRun, cassettes_dir: Path) -> list[Entry]:
    """The entry of the answers' cassette, then (when its answers match and the case has judges) the judge's."""
    path = cassettes.cassette_path(cassettes_dir, run.eval_name, run.variant.name, run.case.id)
    if not path.is_file():
        return [Entry(run, path, "missing", "never recorded")]
    recorded = _read(path)
    if isinstance(recorded, str):
        return [Entry(run, path, "changed", recorded)]
    if not recorded:
        return [Entry(run, path, "missing", "the cassette holds no answer")]
    wanted = _key(run.body, run)
    matching = [i for i in recorded if _key(i.body, run) == wanted]
    if not matching:
        return [Entry(run, path, "changed", what_changed(json.loads(wanted), recorded[0].request))]
    if len(matching) < run.samples:
        return [Entry(run, path, "incomplete", f"{len(matching)} answer(s) recorded for {run.samples} sample(s)")]
    unmatched = _unmatched_turn(run, recorded, matching[: run.samples]) if run.case.followups else None
    if unmatched is not None:
        return [Entry(run, path, "changed", unmatched)]
    entries = [Entry(run, path, "ok", "")]
    if run.judges:
        answers = [_answer(i.response, run) for i in matching[: run.samples]]
        entries.append(_check_judge(run, cassettes_dir, answers))
    return entries


def _unmatched_turn(run: CaseRun, recorded: list[Interaction], firsts: list[Interaction]) -> str | None:
    """Why a recorded conversation no longer replays: the first of its later turns whose request (the recorded answer
    before it, then the case's next turn, as ``harness.run._turns`` builds it) no recording has; None when all do."""
    left: dict[str, list[Interaction]] = {}
    for interaction in recorded:
        left.setdefault(_key(interaction.body, run), []).append(interaction)
    for first in firsts:
        body, answer = run.body, _answer(first.response, run)
        for number, user in enumerate(run.case.followups, start=2):
            if not isinstance(answer, dict) or turns.called(answer):  # it ended there, as recorded (an error or tool
                break  # calls answered it)
            body = turns.follow_up(body, turns.assistant_message(answer), user)
            found = left.get(_key(body, run))
            if not found:
                total = len(run.case.turns)
                return f"turn {number} of {total} differs from the recording (its prompt, or an earlier turn, changed)"
            answer = _answer(found.pop(0).response, run)
    return None


def _answer(response: Any, run: CaseRun) -> Any:
    """A recorded answer as the runner's checks saw it: a streamed one assembled from its SSE text."""
    return stream.from_text(response, run.body) if isinstance(response, str) and run.body.get("stream") else response


def _check_judge(run: CaseRun, cassettes_dir: Path, answers: list[Any]) -> Entry:
    """Whether the judge cassette holds the request each judge check makes about each recorded answer (as
    ``harness.run._runner`` builds it: nothing is asked about an errored answer or one lacking the judged path)."""
    path = cassettes.cassette_path(cassettes_dir, run.eval_name, run.variant.name, run.case.id, judge=True)
    wanted = []
    for response in answers:
        if not isinstance(response, dict):
            continue
        answer = checks.Answer.from_response(response)
        for call in run.judges:
            text, missing = judge.graded_text(answer, call.spec)
            if not missing:
                wanted.append(judge.request_body(call.model, call.spec.rubric, run.case.messages, text))
    if not wanted:
        return Entry(run, path, "ok", "", judge=True)
    if not path.is_file():
        return Entry(run, path, "missing", "the answers were never judged", judge=True)
    recorded = _read(path)
    if isinstance(recorded, str):
        return Entry(run, path, "changed", recorded, judge=True)
    keys = {_key(i.body, run) for i in recorded}
    unmatched = [key for key in (_key(body, run) for body in wanted) if key not in keys]
    if not unmatched:
        return Entry(run, path, "ok", "", judge=True)
    detail = (
        what_changed(json.loads(unmatched[0]), recorded[0].request) if recorded else "the cassette holds no judgement"
    )
    return Entry(run, path, "changed", detail, judge=True)


def orphans(cassettes_dir: Path, evs: Iterable[Eval], every_eval: bool) -> list[Path]:
    """Cassettes of these evals that no case × variant uses; with ``every_eval``, also folders of no eval at all."""
    evs = list(evs)
    used = {
        cassettes.cassette_path(cassettes_dir, run.eval_name, run.variant.name, run.case.id, judge=judged)
        for ev in evs
        for run in ev.runs
        for judged in ((False, True) if run.judges else (False,))
    }
    folders = (
        [p for p in sorted(cassettes_dir.iterdir()) if p.is_dir()]
        if every_eval and cassettes_dir.is_dir()
        else [cassettes_dir / ev.name for ev in evs]
    )
    return sorted(p for folder in folders for p in folder.rglob("*.yaml") if p not in used)


def only_missing(stale: list[Entry]) -> bool:
    """Record mode `once` fixes these (it adds missing cassettes); anything else is redone with `all`."""
    return all(e.state == "missing" for e in stale)


def rerecord_command(ev: Eval, stale: list[Entry]) -> str:
    if only_missing(stale):
        return remedies.command(Remedy(Missing.RECORDING, ev.name, RecordMode.ONCE))
    # at most one entry per item (its answers', or else its judge's): naming every item is naming none
    items = tuple(e.item for e in stale) if len(stale) < len(ev.runs) else ()
    return remedies.command(Remedy(Missing.MATCH, ev.name, RecordMode.ALL, items))


def cost_line(stale: list[Entry], batch: bool = False) -> str:
    """Calls the re-recording makes, and the answers' worst-case cost by ``harness.run._preflight`` where priced
    (``batch``: an eval with a `batch` key records through the Batch API, at its prices).

    `all` redoes an item's answers and their judging; `once` only adds what is missing, so a missing judge
    cassette costs just the judge's calls. A judge's prompt holds an answer not known yet: its cost isn't estimated.
    """
    redo = not only_missing(stale)
    calls = judge_calls = 0
    priced = 0.0
    unpriced: set[str] = set()
    for entry in stale:
        run = entry.run
        judge_calls += run.samples * len(run.judges)
        if entry.judge and not redo:
            continue
        plan = preflight.plan(run, batch)
        calls += run.samples * plan.calls  # a conversation: a call per turn
        unit = plan.unit_cost_usd
        if unit is None:
            unpriced.add(run.model)
        else:
            priced += unit * run.samples
    if unpriced:
        cost = f"{f'at least ${priced:.4f} + ' if priced else ''}unpriced ({', '.join(sorted(unpriced))})"
    else:
        cost = f"worst case ${priced:.4f}"
    parts = [f"{calls} call(s), {cost}"] if calls else []
    parts += [f"{judge_calls} judge call(s), not estimated"] if judge_calls else []
    return " + ".join(parts)


def describe(evs: list[Eval], cassettes_dir: Path, every_eval: bool) -> tuple[str, bool]:
    """The status text and whether everything that must match does (missing cassettes of a `skip` eval may)."""

    def rel(path: Path) -> str:
        return os.path.relpath(path)

    lines: list[str] = []
    blocking = 0
    tolerated = False
    orphaned = orphans(cassettes_dir, evs, every_eval)
    for ev in evs:
        entries = [entry for run in ev.runs for entry in check(run, cassettes_dir)]
        stale = [e for e in entries if e.state != "ok"]
        mine = [p for p in orphaned if p.is_relative_to(cassettes_dir / ev.name)]
        logs = sorted((cassettes_dir / ev.name).rglob(f"*{cassettes.WAL_SUFFIX}"))
        if logs:  # answers a killed run paid for and the cassette doesn't hold yet: not stale, but not done
            blocking += len(logs)
            lines += [f"eval {ev.name}: an interrupted recording left answers outside their cassette"]
            lines += [f"  {'unsaved':<10} {rel(p)}  continue with `promptvcr run --resume` to keep them" for p in logs]
        if not stale and not mine:
            lines.append(f"eval {ev.name}: all {len(entries)} recordings match")
            continue
        lines.append(f"eval {ev.name} ({rel(ev.path)}): {len(stale)} of {len(entries)} need a new recording")
        if len(stale) == len(entries) and all(e.state == "missing" for e in stale):
            lines.append(f"  {'missing':<10} every case × variant (nothing under {rel(cassettes_dir / ev.name)})")
        else:
            lines += [f"  {e.state:<10} {e.label}  {e.detail} ({rel(e.path)})" for e in stale]
        lines += [f"  {'orphaned':<10} {rel(p)}  no case × variant uses it: delete it" for p in mine]
        if stale:
            lines.append(f"  to re-record: {cost_line(stale, ev.batch is not None)}")
            lines.append(f"  run: {rerecord_command(ev, stale)}")
        skipped = ev.missing_recordings == "skip"
        blocking += len(mine) + sum(not (e.state == "missing" and skipped) for e in stale)
        if skipped and any(e.state == "missing" for e in stale):
            tolerated = True
            lines.append("  (missing_recordings: skip — its missing cassettes are skipped in replay, not failed)")
    known = {ev.name for ev in evs}
    for path in orphaned:
        owner = path.relative_to(cassettes_dir).parts[0]
        if owner not in known:
            blocking += 1
            lines.append(f"orphaned   {rel(path)}  no eval is named {owner!r}: delete it")
    if blocking:
        lines.append(f"status: {blocking} to fix")
    else:
        lines.append("status: ok (recordings missing only where the eval skips them)" if tolerated else "status: ok")
    return "\n".join(lines), blocking == 0
