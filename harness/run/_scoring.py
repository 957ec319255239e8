"""A sample's result row from what happened to it: its answer checked and priced, or why it has none; a judge's
verdicts added to it. Nothing here sends anything (that is harness.run._runner's).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..checks import _builtins as checks
from ..checks import _tools as tools
from ..load._evals import CaseRun
from ..record._secrets import redact
from ..tokens import _cost as cost
from . import _client as client
from . import _stream as stream
from . import _turns as turns
from ._remedy import Remedy
from ._row import PRIMARY, AnsweredBy, ErrorKind, Outcome, Row


def all_errored(
    run: CaseRun, kind: ErrorKind, message: str, samples: Iterable[int] | None = None, remedy: Remedy | None = None
) -> list[Row]:
    """Every sample of ``run`` (or the ``samples`` given) errored for one reason found before sending anything."""
    chosen = range(run.samples) if samples is None else samples
    return [errored(run, i, client.CallResult(None, None, kind, message, remedy=remedy)) for i in chosen]


def _identity(run: CaseRun, sample: int) -> dict[str, Any]:  # the fields that say which sample a row is
    return {
        "eval": run.eval_name,
        "case": run.case.id,
        "variant": run.variant.name,
        "model": run.model,
        "sample": sample,
    }


def errored(run: CaseRun, sample: int, result: client.CallResult, replayed: bool = False) -> Row:
    return Row(
        **_identity(run, sample),
        outcome=Outcome.ERRORED,
        error=result.error,
        error_message=result.message,
        remedy=result.remedy,
        latency_ms=result.latency_ms,
        replayed=replayed,
    )


def scored(
    run: CaseRun,
    sample: int,
    result: client.CallResult,
    replayed: bool,
    answered_by: AnsweredBy,
    body: Mapping[str, Any] | None = None,
) -> Row:
    """The row of one answer to ``body`` (the case's request, or a conversation's last turn's), checked by `expect`."""
    if result.response is None:
        return errored(run, sample, result, replayed)
    request = run.body if body is None else body
    response = result.response
    answer = checks.Answer.from_response(response)
    outcomes = checks.check_answer(run.case.checks, request, answer)
    failed = [o for o in outcomes if not o.passed]
    schema = [o.passed for o in outcomes if o.name == "json_schema"]
    usage = usage_of(response) or {}
    reasons = " | ".join(map(_reason, failed))
    if answer.refusal is not None and checks.refused(answer) not in reasons:  # said, whichever checks failed
        reasons = " | ".join(filter(None, [checks.refused(answer), reasons]))
    return Row(
        **_identity(run, sample),
        outcome=Outcome.FAILED if failed else Outcome.PASSED,
        failed_checks=tuple(o.name for o in failed),
        reasons=reasons,
        refusal=None if answer.refusal is None else redact(answer.refusal),
        json_valid=answer.is_json if run.case.json_checked or checks.json_format(request) else None,
        schema_valid=schema[0] if schema else None,
        **_tool_columns(answer, run.body),
        reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
        finish_reason=answer.finish_reason,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        # priced as the model that answered; a cached answer cost nothing now
        cost_usd=answer_cost(run, response, answered_by, result.batch),
        latency_ms=result.latency_ms,
        ttft_ms=result.ttft_ms,
        tokens_per_s=stream.tokens_per_s(usage.get("completion_tokens"), result.latency_ms, result.ttft_ms),
        usage_estimated=result.usage_estimated,
        replayed=replayed,
        answered_by=answered_by,
        output=redact(answer.content),  # the cassette body is redacted; the report says the same
    )


def _tool_columns(answer: checks.Answer, request: Mapping[str, Any]) -> dict[str, Any]:
    calls = answer.tool_calls
    return {
        "tool_calls": ";".join(c.name for c in calls) if calls else None,
        "tool_arguments": redact(json.dumps([c.arguments for c in calls], ensure_ascii=False)) if calls else None,
        "tool_calls_valid": tools.calls_valid(answer, request),
    }


def answer_cost(
    run: CaseRun, response: Mapping[str, Any], answered_by: AnsweredBy, batch: bool = False
) -> float | None:
    """Priced as the model that answered (``batch``: at its Batch API price); a cached answer cost nothing now."""
    return price_of(answered_by.model_or(run.model), response, batch) if answered_by.sent else 0.0


def conversed(run: CaseRun, sample: int, said: Sequence[turns.Turn]) -> Row:
    """A sample's row from its turns (``harness.run._turns``). A case without ``turns`` has one: its answer's row.

    A conversation's row is its last answer's — output, finish reason, JSON validity, `expect`'s verdicts — with
    `expect_each`'s on every answer, named by their turn (``turn 2: contains``); tokens, cost and latency are the
    sums over its turns. A turn without an answer errors the sample with that turn's kind and number; a turn answered
    with tool calls before the last fails it (`turn 1: conversation`: the turns after it could not be sent).
    """
    last = said[-1]
    if not run.case.turns:
        return scored(run, sample, last.result, last.result.replayed, last.answered_by)
    replayed = all(turn.result.replayed for turn in said)
    latency = _total(turn.result.latency_ms for turn in said)
    latency = None if latency is None else round(latency, 1)  # to the cassette's precision, live and replayed alike
    if last.result.response is None:
        message = f"turn {len(said)} of {len(run.case.turns)}: {last.result.message}"
        return errored(run, sample, replace(last.result, message=message, latency_ms=latency), replayed)
    row = scored(run, sample, last.result, replayed, last.answered_by, last.body)
    each = [(number, o) for number, turn in enumerate(said, start=1) for o in _each(run, turn) if not o.passed]
    if len(said) < len(run.case.turns):  # the last answer called tools: the turns after it could not be sent
        each.append((len(said), _ended(len(said), len(run.case.turns), last.result.response)))
    usages = [usage_of(turn.result.response or {}) or {} for turn in said]
    costs = [answer_cost(run, turn.result.response or {}, turn.answered_by) for turn in said]
    return replace(
        row,
        outcome=Outcome.FAILED if each or row.failed_checks else row.outcome,
        failed_checks=(*row.failed_checks, *(f"turn {number}: {o.name}" for number, o in each)),
        reasons=" | ".join(filter(None, [row.reasons, *(f"turn {number}: {_reason(o)}" for number, o in each)])),
        prompt_tokens=_total(u.get("prompt_tokens") for u in usages),
        completion_tokens=_total(u.get("completion_tokens") for u in usages),
        cost_usd=_total(costs),
        latency_ms=latency,  # ttft_ms and tokens_per_s stay the last answer's: how that answer streamed
        usage_estimated=_any(turn.result.usage_estimated for turn in said),
        # a turn answered by a fallback or the cache says so, though the others were the model's own
        answered_by=next((turn.answered_by for turn in said if turn.answered_by != PRIMARY), last.answered_by),
    )


def _ended(number: int, total: int, response: Mapping[str, Any]) -> checks.CheckResult:
    names = ", ".join(turns.called(response))
    reason = (
        f"answered with tool calls ({names}), so turns {number + 1}–{total} were not sent: `turns:` sends no tool"
        " results (an agent transcript goes in `messages:`, each result as a `tool` message)"
    )
    return checks.CheckResult("conversation", False, reason)


def _each(run: CaseRun, turn: turns.Turn) -> list[checks.CheckResult]:
    assert turn.result.response is not None  # only answered turns are followed by another
    return checks.check_answer(run.case.each_checks, turn.body, checks.Answer.from_response(turn.result.response))


def _any(flags: Iterable[bool | None]) -> bool | None:
    """A conversation's usage is estimated when any turn's is; None when no turn was streamed."""
    known = [f for f in flags if f is not None]
    return any(known) if known else None


def _total(values: Iterable[Any]) -> Any:
    """The sum, or None when any value is unknown (an unpriced turn makes the conversation unpriced)."""
    known = list(values)
    return None if any(v is None for v in known) else sum(known)


def usage_of(response: Mapping[str, Any]) -> dict[str, Any] | None:
    usage = response.get("usage")
    return usage if isinstance(usage, dict) else None


def price_of(model: str, response: Mapping[str, Any], batch: bool = False) -> float | None:
    """Priced as the requested model, else as the model the response names (``batch``: at the Batch API's price);
    None when neither has a price."""
    return cost.cost_usd(usage_of(response), cost.price_for(model, response.get("model"), batch=batch))


def _reason(result: checks.CheckResult) -> str:
    return f"{result.name}: {result.reason}"


def with_judgement(
    row: Row, results: Sequence[checks.CheckResult], replies: Sequence[tuple[str, dict[str, Any]]]
) -> Row:
    """The judge's verdicts added to the row's checks; its tokens and cost in columns of their own."""
    failed = [r for r in results if not r.passed]
    usages = [usage_of(response) or {} for _, response in replies]
    costs = [price_of(model, response) for model, response in replies]
    priced = [c for c in costs if c is not None]
    return replace(
        row,
        outcome=Outcome.FAILED if failed else row.outcome,
        failed_checks=(*row.failed_checks, *(r.name for r in failed)),
        reasons=" | ".join(filter(None, [row.reasons, *map(_reason, failed)])),
        judge_reasons=" | ".join(r.reason for r in results),
        judge_prompt_tokens=sum(int(u.get("prompt_tokens") or 0) for u in usages) if replies else None,
        judge_completion_tokens=sum(int(u.get("completion_tokens") or 0) for u in usages) if replies else None,
        judge_cost_usd=sum(priced) if replies and len(priced) == len(costs) else None,
    )


def judge_failed(row: Row, result: client.CallResult) -> Row:
    """An answered sample the judge could not grade: errored, keeping the answer for a look at it."""
    return replace(
        row,
        outcome=Outcome.ERRORED,
        error=result.error,
        error_message=result.message,
        remedy=result.remedy,
        failed_checks=(),
        reasons="",
    )


def judge_failed_all(rows: list[Row], result: client.CallResult) -> list[Row]:
    return [judge_failed(row, result) if row.outcome.answered else row for row in rows]
