"""Pre-flight: before anything is sent, the tokens and worst-case cost of every planned call, and whether it fits.

A call's worst case is its exact prompt tokens (``harness.tokens._count``) plus the most output it may ask for
(``max_completion_tokens``, ``max_tokens``, else the model's own limit), priced from the registry. A request whose
prompt plus that output exceeds the model's context window is refused as ``context_overflow``; an eval whose
worst case exceeds its ``budget_usd`` is not started, and a live run stops before its spend would pass it.

A multi-turn case (``turns:``) makes one call per turn, each sample. Turn k's prompt holds the k−1 answers before
it, unknown before they are written: its worst case counts the conversation's messages exactly, each earlier
answer as an empty assistant message, plus the answer's max output tokens for each (the answer re-read as prompt
is the tokens it was written in; its message's framing is counted exactly). The conversation fits when its last
turn does; its worst-case cost is every turn's.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..load._evals import CaseRun, Eval
from ..tokens import _count as tokens
from ..tokens import _models as models
from . import _turns as turns

PER = 1_000_000


@dataclass(frozen=True)
class CallPlan:
    run: CaseRun
    prompt_tokens: int | None  # per call; None when it can't be counted offline (see ``note``)
    exact: bool
    max_output: int | None
    context_window: int | None
    unit_cost_usd: float | None  # worst case of one call; None = unpriced or uncountable
    note: str = ""
    margin: int = 0  # tokens an estimated prompt may be short by (tokens.estimate_margin); 0 when exact
    # a conversation's worst-case prompt tokens of each turn (their sum is ``prompt_tokens``); () for one request
    turn_prompts: tuple[int, ...] = ()
    calls: int = 1  # requests one sample sends: one, or one per turn of a conversation

    @property
    def peak_prompt_tokens(self) -> int | None:
        """The largest prompt of a sample's requests: a conversation's last turn's."""
        return max(self.turn_prompts) if self.turn_prompts else self.prompt_tokens

    def request_tokens(self, turn: int) -> int | None:
        """The prompt tokens of a sample's request ``turn`` (0: the first), as paced."""
        return self.turn_prompts[turn] if self.turn_prompts else self.prompt_tokens

    @property
    def overflow(self) -> bool:
        peak = self.peak_prompt_tokens
        if peak is None or self.max_output is None or self.context_window is None:
            return False
        return peak + self.margin + self.max_output > self.context_window

    @property
    def cost_usd(self) -> float | None:
        return None if self.unit_cost_usd is None else self.unit_cost_usd * self.run.samples

    def overflow_message(self) -> str:
        turn = (
            f"turn {self.calls} of the conversation, each earlier answer at its max output: " if self.calls > 1 else ""
        )
        return (
            f"context_overflow: {turn}{self.peak_prompt_tokens} prompt tokens"
            + (f" (estimated, + {self.margin} margin)" if self.margin else "")
            + f" + {self.max_output} output tokens > "
            f"{self.context_window}, the context window of {self.run.model}: nothing was sent "
            "(shorten the prompt or lower max_tokens)"
        )


def plan(run: CaseRun, batch: bool = False) -> CallPlan:
    """The pre-flight figures of one case × variant; ``batch``: priced as sent through the Batch API."""
    entry = models.lookup(run.model)
    body = run.body
    max_output = _max_output(body, entry)
    window = entry.context_window if entry else None
    price = entry.price_for(batch) if entry else None
    calls = run.case.calls
    try:
        counts, exact = _turn_prompts(run, max_output or 0)
    except tokens.TokenCountError as exc:
        free = price is not None and price.input == price.output == 0  # a local model costs 0 whatever its tokens
        return CallPlan(run, None, False, max_output, window, 0.0 if free else None, str(exc), calls=calls)
    prompt = sum(counts)
    margin = 0 if exact else tokens.estimate_margin(max(counts))
    unit = None
    if price is not None and max_output is not None:
        unit = ((prompt + calls * margin) * price.input + calls * max_output * price.output) / PER
    note = "" if exact else "estimated (non-text parts, or a layout confirmed on one source only): + 10% margin"
    per_turn = tuple(counts) if calls > 1 else ()
    return CallPlan(run, prompt, exact, max_output, window, unit, note, margin, per_turn, calls)


def _max_output(body: Mapping[str, Any], entry: models.Model | None) -> int | None:
    """The most a call may write: what the request caps it at, else the model's own limit."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(asked) if asked else (entry.max_output_tokens if entry else None)


def _turn_prompts(run: CaseRun, max_output: int) -> tuple[list[int], bool]:
    """The worst-case prompt tokens of each request of a sample (one, or a conversation's turns), and whether every
    count is exact. Raises TokenCountError."""
    body, counts, exact = run.body, [], True
    for number in range(run.case.calls):
        if number:  # the answer before is unknown: an empty one, its tokens added as max_output below
            body = turns.follow_up(body, {"role": "assistant", "content": ""}, run.case.followups[number - 1])
        prompt, known = tokens.estimate_prompt_tokens(body)
        counts.append(prompt + number * max_output)
        exact = exact and known
    return counts, exact


def replay_plan(run: CaseRun) -> CallPlan:
    """A replay's figures: nothing is sent, paced or paid, so only whether the call overflows its context window
    counts. The prompt is counted unless a bound without the encoding shows a one-request case fits."""
    full = None
    entry = models.lookup(run.model)
    # a conversation's later turns carry earlier answers: counted as ``plan`` counts them
    bound = None if run.case.followups else tokens.prompt_tokens_at_most(run.body)
    if entry is None or entry.context_window is None or bound is None:
        full = plan(run)
    else:
        max_output = _max_output(run.body, entry)
        if max_output is None or bound + max_output > entry.context_window:
            full = plan(run)
    return full or CallPlan(run, None, False, None, None, None, "not counted: the replay's prompt fits")


def plans(ev: Eval, batch: bool = False) -> list[CallPlan]:
    return [plan(run, batch) for run in ev.runs]


def by_variant(call_plans: Iterable[CallPlan]) -> list[dict[str, Any]]:
    """One row per eval × variant: calls, prompt tokens, worst-case output tokens, worst-case cost."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for p in call_plans:
        key = (p.run.eval_name, p.run.variant.name)
        row = rows.setdefault(
            key,
            {"eval": key[0], "variant": key[1], "model": p.run.model, "calls": 0, "prompt_tokens": 0,
             "max_output_tokens": 0, "cost_usd": 0.0, "overflows": 0, "notes": set()},
        )  # fmt: skip
        row["calls"] += p.run.samples * p.calls
        row["overflows"] += p.run.samples if p.overflow else 0
        if p.prompt_tokens is None:
            row["prompt_tokens"] = None
        elif row["prompt_tokens"] is not None:
            row["prompt_tokens"] += p.prompt_tokens * p.run.samples
        row["max_output_tokens"] = (
            None if p.max_output is None or row["max_output_tokens"] is None
            else row["max_output_tokens"] + p.max_output * p.run.samples * p.calls
        )  # fmt: skip
        row["cost_usd"] = None if p.cost_usd is None or row["cost_usd"] is None else row["cost_usd"] + p.cost_usd
        if p.note:
            row["notes"].add(p.note)
    return list(rows.values())


def worst_case_usd(call_plans: Iterable[CallPlan]) -> float | None:
    """The eval's worst-case cost; None when any call is unpriced or uncountable (it can't be bounded)."""
    total = 0.0
    for p in call_plans:
        if p.cost_usd is None:
            return None
        total += p.cost_usd
    return total


def budget_problem(ev: Eval, call_plans: list[CallPlan]) -> str | None:
    """Why a live run of ``ev`` must not start, or None."""
    if ev.budget_usd is None:
        return None
    worst = worst_case_usd(p for p in call_plans if not p.overflow)
    if worst is None:
        unknown = sorted({p.run.model for p in call_plans if p.cost_usd is None})
        return f"eval {ev.name!r} has budget_usd {ev.budget_usd:g} but its cost can't be bounded: {', '.join(unknown)}"
    if worst > ev.budget_usd:
        return (
            f"eval {ev.name!r}: worst-case cost ${worst:.4f} exceeds budget_usd ${ev.budget_usd:g}; nothing was sent "
            f"(see `promptvcr estimate {ev.name}`; lower samples or max_tokens, or raise the budget)"
        )
    return None


class Budget:
    """Spend of a live run against ``budget_usd``: a call may start only if its worst case still fits.

    In one process the books are kept in memory. Shared (``shared``), they are a small JSON ledger in the run's
    folder, read and written under a file lock by every process of the run — the pytest-xdist workers — so that
    ``budget_usd`` holds for the run, not for each worker: the first to plan the eval opens it, the others join.
    """

    def __init__(self, limit_usd: float, ledger: Path | None = None, spent_usd: float = 0.0) -> None:
        self.limit_usd = limit_usd
        self._ledger = ledger
        self._spent = spent_usd
        self._held = 0.0  # worst cases of calls in flight: concurrent calls can't overshoot together
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, limit_usd: float, ledger: Path, spent_usd: float) -> Budget:
        """The run's budget in ``ledger``: created with ``spent_usd`` already spent unless another process of the
        run created it first (then joined as it is)."""
        try:
            with ledger.open("x", encoding="utf-8") as handle:
                json.dump({"spent": spent_usd, "held": 0.0}, handle)
        except FileExistsError:
            pass
        return cls(limit_usd, ledger)

    @property
    def spent_usd(self) -> float:
        with self._books() as books:
            return books[0]

    def reserve(self, worst_usd: float | None) -> bool:
        """Hold a call's worst case if it still fits; ``spend`` settles it."""
        with self._books() as books:
            spent, held = books
            if worst_usd is None or spent + held + worst_usd > self.limit_usd:
                return False
            books[1] = held + worst_usd
            return True

    def spend(self, usd: float | None, held_usd: float | None) -> None:
        """Book a call's real cost, releasing what ``reserve`` held; an unpriced cost books the worst case."""
        with self._books() as books:
            books[1] = max(0.0, books[1] - (held_usd or 0.0))
            books[0] += usd if usd is not None else (held_usd or 0.0)

    @contextmanager
    def _books(self) -> Iterator[list[float]]:
        """[spent, held], written back when the block ends: in memory, or in the ledger under its lock."""
        with self._lock:
            if self._ledger is None:
                books = [self._spent, self._held]
                yield books
                self._spent, self._held = books
                return
            with self._ledger.with_suffix(".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                raw = json.loads(self._ledger.read_text(encoding="utf-8"))
                books = [float(raw["spent"]), float(raw["held"])]
                yield books
                tmp = self._ledger.with_suffix(".tmp")
                tmp.write_text(json.dumps({"spent": books[0], "held": books[1]}), encoding="utf-8")
                tmp.replace(self._ledger)


def describe(ev: Eval, batch: bool = False) -> tuple[str, bool]:
    """`promptvcr estimate`: a table per variant and the budget verdict; False when the eval could not start."""
    batch = batch or ev.batch is not None  # recorded through the Batch API: at its prices
    call_plans = plans(ev, batch)
    rows = by_variant(call_plans)

    def num(value: float | int | None, money: bool = False) -> str:
        if value is None:
            return "n/a"
        return f"${value:.4f}" if money else f"{value:,}"

    table = [("variant", "model", "calls", "prompt tokens", "worst-case output", "worst-case cost", "overflows")]
    table += [
        (r["variant"], r["model"], num(r["calls"]), num(r["prompt_tokens"]), num(r["max_output_tokens"]),
         num(r["cost_usd"], money=True) if r["cost_usd"] is not None else "unpriced", num(r["overflows"]))
        for r in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [f"eval {ev.name} ({ev.path})" + (", at Batch API prices" if batch else "")]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in table]
    lines += [f"  note: {note}" for note in sorted({n for r in rows for n in r["notes"]})]
    lines += [
        f"  {p.overflow_message()} [case {p.run.case.id}, variant {p.run.variant.name}]"
        for p in call_plans
        if p.overflow
    ]
    problem = budget_problem(ev, call_plans)
    worst = worst_case_usd(call_plans)
    if problem:
        lines.append(f"  REFUSED: {problem}")
    elif ev.budget_usd is not None:
        lines.append(f"  budget: worst case ${worst:.4f} of budget_usd ${ev.budget_usd:g}: ok")
    return "\n".join(lines), problem is None


FILLER = " hello"  # one token in cl100k_base and o200k_base, and it doesn't merge with its neighbours


def fill_context(body: dict[str, Any], over: int = 0) -> dict[str, Any]:
    """``body`` plus a user message that makes prompt + max output exactly the model's context window (+ ``over``).

    The edge case of the guide's test plan "at maximum length", built on exact counts: ``over=0`` must be accepted,
    ``over=1`` refused as context_overflow before anything is sent.
    """
    entry = models.lookup(str(body.get("model")))
    if entry is None or entry.context_window is None:
        raise tokens.UnknownModelError(str(body.get("model")))
    asked = body.get("max_completion_tokens") or body.get("max_tokens") or entry.max_output_tokens or 0
    target = entry.context_window - int(asked) + over
    filled = {**body, "messages": [*body["messages"], {"role": "user", "content": ""}]}
    words = max(0, target - tokens.prompt_tokens(filled))
    for _ in range(5):  # converges in one or two steps; the bound only guards against a tokenizer surprise
        filled["messages"][-1]["content"] = FILLER.strip() + FILLER * (words - 1) if words else ""
        missing = target - tokens.prompt_tokens(filled)
        if missing == 0:
            return filled
        words += missing
    raise ValueError(f"could not fill the context window of {body.get('model')} exactly")
