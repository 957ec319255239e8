"""`promptvcr status`: which recordings still match what the eval files would send, nothing sent.

Each case × variant's request body (as ``harness.evals`` renders it) is compared with the request bodies in its
cassette, parsed JSON against parsed JSON — the rule replay matches by (``harness.cassettes``). A case is *changed*
when no recorded body is its body (prompt, parameters or model edited), *incomplete* when fewer recorded answers
match than it has samples, *missing* when it has no cassette; a cassette no case × variant uses is *orphaned*.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from . import cassettes, preflight, runner
from .evals import CaseRun, Eval

State = Literal["ok", "changed", "incomplete", "missing"]
# What an edit to each request key means to a reader; any other key is a parameter and keeps its own name.
KEY_NAMES = {"messages": "prompt", "model": "model"}


@dataclass(frozen=True)
class Entry:
    run: CaseRun
    path: Path
    state: State
    detail: str

    @property
    def item(self) -> str:
        return f"{self.run.case.id}[{self.run.variant.name}]"


def recorded_bodies(path: Path) -> list[Any]:
    """The parsed request body of each interaction of a vcrpy cassette (a body that isn't JSON stays as text)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    bodies: list[Any] = []
    for interaction in data.get("interactions") or []:
        body = (interaction.get("request") or {}).get("body")
        try:
            bodies.append(json.loads(body) if body else None)
        except ValueError:
            bodies.append(body)
    return bodies


def what_changed(wanted: dict[str, Any], recorded: Any) -> str:
    if not isinstance(recorded, dict):
        return "the recorded request is not a JSON object"
    keys = sorted(k for k in wanted.keys() | recorded.keys() if wanted.get(k) != recorded.get(k))
    names = [KEY_NAMES.get(k, k) for k in keys]
    if "model" in keys:
        names[keys.index("model")] = f"model {recorded.get('model')} → {wanted.get('model')}"
    return ", ".join(names)


def check(run: CaseRun, cassettes_dir: Path) -> Entry:
    path = cassettes.cassette_path(cassettes_dir, run.eval_name, run.variant.name, run.case.id)
    if not path.is_file():
        return Entry(run, path, "missing", "never recorded")
    try:
        bodies = recorded_bodies(path)
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        return Entry(run, path, "changed", f"unreadable cassette: {exc}")
    if not bodies:
        return Entry(run, path, "missing", "the cassette holds no answer")
    matching = sum(body == run.body for body in bodies)
    if matching == 0:
        return Entry(run, path, "changed", what_changed(run.body, bodies[0]))
    if matching < run.samples:
        return Entry(run, path, "incomplete", f"{matching} answer(s) recorded for {run.samples} sample(s)")
    return Entry(run, path, "ok", "")


def orphans(cassettes_dir: Path, evs: Iterable[Eval], every_eval: bool) -> list[Path]:
    """Cassettes of these evals that no case × variant uses; with ``every_eval``, also folders of no eval at all."""
    evs = list(evs)
    used = {
        cassettes.cassette_path(cassettes_dir, run.eval_name, run.variant.name, run.case.id)
        for ev in evs
        for run in ev.runs
    }
    folders = (
        [p for p in sorted(cassettes_dir.iterdir()) if p.is_dir()]
        if every_eval and cassettes_dir.is_dir()
        else [cassettes_dir / ev.name for ev in evs]
    )
    return sorted(p for folder in folders for p in folder.rglob("*.yaml") if p not in used)


def rerecord_command(ev: Eval, stale: list[Entry]) -> str:
    """Missing cassettes only: record mode `once` adds them. Otherwise redo exactly the stale items (`all`)."""
    if all(e.state == "missing" for e in stale):
        return runner.record_command(ev.name)
    command = f"promptvcr run {ev.name} --record-mode all"
    if len(stale) < len(ev.runs):
        command += " -- -k " + shlex.quote(" or ".join(e.item for e in stale))
    return command


def cost_line(stale: list[Entry]) -> str:
    """Calls needed to re-record, and their worst-case cost by ``harness.preflight`` where the model is priced."""
    calls = sum(e.run.samples for e in stale)
    priced = 0.0
    unpriced: set[str] = set()
    for entry in stale:
        unit = preflight.plan(entry.run).unit_cost_usd
        if unit is None:
            unpriced.add(entry.run.model)
        else:
            priced += unit * entry.run.samples
    if not unpriced:
        return f"{calls} call(s), worst case ${priced:.4f}"
    cost = f"at least ${priced:.4f} + " if priced else ""
    return f"{calls} call(s), {cost}unpriced ({', '.join(sorted(unpriced))})"


def describe(evs: list[Eval], cassettes_dir: Path, every_eval: bool) -> tuple[str, bool]:
    """The status text and whether everything that must match does (missing cassettes of a `skip` eval may)."""

    def rel(path: Path) -> str:
        return os.path.relpath(path)

    lines: list[str] = []
    blocking = 0
    tolerated = False
    orphaned = orphans(cassettes_dir, evs, every_eval)
    for ev in evs:
        entries = [check(run, cassettes_dir) for run in ev.runs]
        stale = [e for e in entries if e.state != "ok"]
        mine = [p for p in orphaned if p.is_relative_to(cassettes_dir / ev.name)]
        if not stale and not mine:
            lines.append(f"eval {ev.name}: all {len(entries)} recordings match")
            continue
        lines.append(f"eval {ev.name} ({rel(ev.path)}): {len(stale)} of {len(entries)} need a new recording")
        if len(stale) == len(entries) and all(e.state == "missing" for e in stale):
            lines.append(f"  {'missing':<10} every case × variant (nothing under {rel(cassettes_dir / ev.name)})")
        else:
            lines += [f"  {e.state:<10} {e.item}  {e.detail} ({rel(e.path)})" for e in stale]
        lines += [f"  {'orphaned':<10} {rel(p)}  no case × variant uses it: delete it" for p in mine]
        if stale:
            lines.append(f"  to re-record: {cost_line(stale)}")
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
