"""Execution of one case in one variant: every sample sent (or replayed), checked, and turned into a result row.

Rows are plain dicts of JSON scalars so they travel unchanged from pytest-xdist workers to the controller, where
they are aggregated once (``harness.report``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import openai
from vcr.cassette import Cassette

from . import cassettes, checks, client, cost, judge, preflight
from .errors import ConfigError, LocalServerError
from .evals import CaseRun, Endpoint
from .redaction import mask_json
from .secrets import redact

Row = dict[str, Any]

COLUMNS = (
    "eval", "case", "variant", "model", "sample", "outcome", "failed_checks", "reasons", "error", "error_message",
    "json_valid", "schema_valid", "finish_reason", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms",
    "replayed", "answered_by", "output", "judge_reasons", "judge_prompt_tokens", "judge_completion_tokens",
    "judge_cost_usd",
)  # fmt: skip


@dataclass(frozen=True)
class RunOptions:
    record_mode: str
    cassettes_dir: Path
    local_url: Callable[[], str]  # base_url of a running local server, started on first use
    budgets: Mapping[str, preflight.Budget] = field(default_factory=dict)  # by eval name, for live runs
    # base_url → why it is considered down: one refused connection fails the rest of the run fast, not each sample
    unreachable: dict[str, str] = field(default_factory=dict)
    on_row: Callable[[Row], None] | None = None  # progress, told of every sample as it ends

    @property
    def replay(self) -> bool:
        return self.record_mode == "none"


def record_command(eval_name: str) -> str:
    return f"make record EVAL={eval_name}"


def cassette_for(run: CaseRun, options: RunOptions) -> Path:
    return cassettes.cassette_path(options.cassettes_dir, run.eval_name, run.variant.name, run.case.id)


def judge_cassette_for(run: CaseRun, options: RunOptions) -> Path:
    return cassettes.cassette_path(options.cassettes_dir, run.eval_name, run.variant.name, run.case.id, judge=True)


def run_case(run: CaseRun, options: RunOptions) -> list[Row]:
    """One row per sample, in sample order; never raises for what an endpoint or a cassette does."""
    call = preflight.plan(run)
    if call.overflow:
        return _all_errored(run, "context_overflow", call.overflow_message())
    path = cassette_for(run, options)
    if options.replay and not path.is_file():
        what = f"case {run.case.id!r} in variant {run.variant.name!r}"
        return _all_errored(
            run, "missing_recording", f"no recording for {what} ({path}): run `{record_command(run.eval_name)}`"
        )
    try:
        api = _client(run.variant.endpoint, options)
    except (ConfigError, LocalServerError) as exc:  # no key, no local server: nothing can be sent
        return _all_errored(run, "config" if isinstance(exc, ConfigError) else "connection", str(exc))
    budget = None if options.replay else options.budgets.get(run.eval_name)
    rows: list[Row] = []
    with api, cassettes.use(path, options.record_mode, run.redactor) as cassette:
        for sample in range(run.samples):
            if budget is not None and not budget.reserve(call.unit_cost_usd):
                message = f"budget: ${budget.spent_usd:.4f} spent of budget_usd ${budget.limit_usd:g}; not sent"
                rows.append(_errored(run, sample, client.CallResult(None, None, "budget", message)))
                continue
            down = options.unreachable.get(str(api.base_url))
            if down is not None:
                rows.append(_errored(run, sample, client.CallResult(None, None, "connection", down)))
                continue
            before, plays = len(cassette.data), cassette.play_count
            result, answered_by = _answer(run, options, api, cassette, sample)
            if result.latency_ms is not None and not options.replay:
                cassettes.stamp_latency(cassette, before, client.LATENCY_HEADER, result.latency_ms)
            row = _row(run, sample, result, replayed=cassette.play_count > plays, answered_by=answered_by)
            if budget is not None and not row["replayed"] and result.error != "missing_recording":
                budget.spend(row["cost_usd"], call.unit_cost_usd)
            rows.append(row)
            if options.on_row is not None:
                options.on_row(row)
    return _judged(run, options, rows) if run.judges else rows


# Failures of the endpoint, not of the prompt: the ones a fallback answers for. (A missing recording too: in replay,
# a primary that failed while recording has none, since failures are not recorded; its fallback's answer has one.)
FALLBACK_ON = frozenset({"rate_limited", "timeout", "server_error", "connection", "missing_recording"})
CACHED = "cached"


def _answer(
    run: CaseRun, options: RunOptions, api: openai.OpenAI, cassette: Cassette, sample: int
) -> tuple[client.CallResult, str]:
    """The sample's answer and who gave it: ``primary``, ``fallback:<model>`` or ``cached``."""
    result, answered_by = _send(run, options, api, cassette, sample, run.body), "primary"
    for step in run.variant.fallback:
        if result.response is not None or result.error not in FALLBACK_ON:
            break
        if step == CACHED:
            masked = mask_json(run.redactor, run.body) if run.redactor else run.body
            cached = cassettes.last_good_answer(cassette, masked)
            if cached is not None:
                result, answered_by = client.CallResult(cached, None), CACHED
        else:
            body = {**run.body, "model": step}
            result, answered_by = _send(run, options, api, cassette, sample, body), f"fallback:{step}"
    return result, answered_by


def _send(
    run: CaseRun, options: RunOptions, api: openai.OpenAI, cassette: Cassette, sample: int, body: dict[str, Any]
) -> client.CallResult:
    result = client.call(api, body)
    if run.redactor is not None and result.response is not None:
        # checks see what the cassette keeps, so a replay judges the very same text
        result = replace(result, response=mask_json(run.redactor, result.response))
    if result.unreachable:
        options.unreachable[str(api.base_url)] = f"{api.base_url} is not answering, not sent: {result.message}"
    if result.error == "missing_recording":
        return _unmatched(run, options, cassette, sample, "recording")
    return result


def _client(endpoint: Endpoint, options: RunOptions) -> openai.OpenAI:
    """A client for ``endpoint``; raises ConfigError (no key) or LocalServerError (no local server)."""
    base_url = options.local_url() if endpoint.kind == "local" and not options.replay else None
    return client.make_client(endpoint, replay=options.replay, base_url=base_url)


def _unmatched(run: CaseRun, options: RunOptions, cassette: Cassette, sample: int, what: str) -> client.CallResult:
    """A request of ``sample`` that no recording in ``cassette`` answered: why, and what to run."""
    why, mode = cassettes.describe_miss(cassette, run.samples)
    item = f"{run.case.id}[{run.variant.name}]"
    fix = (
        f"run `{record_command(run.eval_name)}`"
        if mode == "once"
        else f"run `promptvcr run {run.eval_name} --record-mode {mode} -- -k '{item}'` (`promptvcr status` lists all)"
    )
    message = (
        f"no {what} for case {run.case.id!r} in variant {run.variant.name!r} matches sample {sample + 1} ({why}): {fix}"
    )
    return client.CallResult(None, None, "missing_recording", message)


def _all_errored(run: CaseRun, kind: str, message: str) -> list[Row]:
    """Every sample of ``run`` errored for one reason found before sending anything."""
    return [_errored(run, i, client.CallResult(None, None, kind, message)) for i in range(run.samples)]


def _base(run: CaseRun, sample: int) -> Row:
    return {c: None for c in COLUMNS} | {
        "eval": run.eval_name,
        "case": run.case.id,
        "variant": run.variant.name,
        "model": run.model,
        "sample": sample,
    }


def _errored(run: CaseRun, sample: int, result: client.CallResult, replayed: bool = False) -> Row:
    return _base(run, sample) | {
        "replayed": replayed,
        "outcome": "errored",
        "error": result.error,
        "error_message": result.message,
        "latency_ms": result.latency_ms,
        "failed_checks": "",
        "reasons": "",
    }


def _row(run: CaseRun, sample: int, result: client.CallResult, replayed: bool, answered_by: str = "primary") -> Row:
    if result.response is None:
        return _errored(run, sample, result, replayed)
    response = result.response
    outcomes = checks.run_checks(run.case.checks, run.body, response)
    failed = [o for o in outcomes if not o.passed]
    answer = checks.Answer.from_response(response)
    schema = [o.passed for o in outcomes if o.name == "json_schema"]
    usage = _usage(response)
    return _base(run, sample) | {
        "outcome": "failed" if failed else "passed",
        "failed_checks": ";".join(o.name for o in failed),
        "reasons": " | ".join(map(_reason, failed)),
        "json_valid": answer.is_json if checks.expects_json(run.case.checks, run.body) else None,
        "schema_valid": schema[0] if schema else None,
        "finish_reason": answer.finish_reason,
        "prompt_tokens": (usage or {}).get("prompt_tokens"),
        "completion_tokens": (usage or {}).get("completion_tokens"),
        # priced as the model that answered; a cached answer cost nothing now
        "cost_usd": 0.0 if answered_by == CACHED else _cost(_answering_model(run, answered_by), response),
        "latency_ms": result.latency_ms,
        "replayed": replayed,
        "answered_by": answered_by,
        "output": redact(answer.content),  # the cassette body is redacted; the report says the same
    }


def _usage(response: Mapping[str, Any]) -> dict[str, Any] | None:
    usage = response.get("usage")
    return usage if isinstance(usage, dict) else None


def _answering_model(run: CaseRun, answered_by: str) -> str:
    return answered_by.removeprefix("fallback:") if answered_by.startswith("fallback:") else run.model


def _cost(model: str, response: Mapping[str, Any]) -> float | None:
    """Priced as the requested model, else as the model the response names; None when neither has a price."""
    return cost.cost_usd(_usage(response), cost.price_for(model, response.get("model")))


def _reason(result: checks.CheckResult) -> str:
    return f"{result.name}: {result.reason}"


# ---------------------------------------------------------------------------------------------------- LLM-as-judge


def _judged(run: CaseRun, options: RunOptions, rows: list[Row]) -> list[Row]:
    """``rows`` with every answered sample graded by each of the case's judge checks (one judge request each).

    The judge's requests go to their own cassette, opened after the answers' is closed: vcrpy answers every request
    from the cassette opened last.
    """
    path = judge_cassette_for(run, options)
    if options.replay and not path.is_file():
        what = f"case {run.case.id!r} in variant {run.variant.name!r}"
        message = f"no judge recording for {what} ({path}): run `{record_command(run.eval_name)}`"
        return _judge_failed_all(rows, client.CallResult(None, None, "missing_recording", message))
    with ExitStack() as stack:
        try:
            endpoints = {call.endpoint for call in run.judges}
            apis = {e: stack.enter_context(_client(e, options)) for e in endpoints}
        except (ConfigError, LocalServerError) as exc:
            return _judge_failed_all(rows, client.CallResult(None, None, "judge_error", f"judge: {exc}"))
        cassette = stack.enter_context(cassettes.use(path, options.record_mode, run.redactor))
        return [_judge_sample(run, options, row, cassette, apis) if _answered(row) else row for row in rows]


def _answered(row: Row) -> bool:
    return row["outcome"] in ("passed", "failed")


def _judge_sample(
    run: CaseRun, options: RunOptions, row: Row, cassette: Cassette, apis: Mapping[Endpoint, openai.OpenAI]
) -> Row:
    answer = checks.Answer.parse(row["output"], row["finish_reason"])
    results: list[checks.CheckResult] = []
    replies: list[tuple[str, dict[str, Any]]] = []  # (judge model, its response) of every request sent
    for call in run.judges:
        text, missing = judge.graded_text(answer, call.spec)
        if missing:  # e.g. the path is not in the answer: nothing worth a judge's tokens
            results.append(checks.CheckResult(judge.NAME, False, missing))
            continue
        body = judge.request_body(call.model, call.spec.rubric, run.case.messages, text)
        result = client.call(apis[call.endpoint], body)
        if result.response is None:  # never a pass: the judge said nothing about the answer
            failure = (
                _unmatched(run, options, cassette, row["sample"], "judge recording")
                if result.error == "missing_recording"
                else replace(result, error="judge_error", message=f"judge {result.error}: {result.message}")
            )
            return _judge_failed(_with_judgement(row, results, replies), failure)  # keeps what the judge cost so far
        results.append(judge.verdict(call.spec, result.response))
        replies.append((call.model, result.response))
    return _with_judgement(row, results, replies)


def _with_judgement(
    row: Row, results: Sequence[checks.CheckResult], replies: Sequence[tuple[str, dict[str, Any]]]
) -> Row:
    """The judge's verdicts added to the row's checks; its tokens and cost in columns of their own."""
    failed = [r for r in results if not r.passed]
    usages = [_usage(response) or {} for _, response in replies]
    costs = [_cost(model, response) for model, response in replies]
    priced = [c for c in costs if c is not None]
    return row | {
        "outcome": "failed" if failed else row["outcome"],
        "failed_checks": ";".join(filter(None, [row["failed_checks"], *(r.name for r in failed)])),
        "reasons": " | ".join(filter(None, [row["reasons"], *map(_reason, failed)])),
        "judge_reasons": " | ".join(r.reason for r in results),
        "judge_prompt_tokens": sum(int(u.get("prompt_tokens") or 0) for u in usages) if replies else None,
        "judge_completion_tokens": sum(int(u.get("completion_tokens") or 0) for u in usages) if replies else None,
        "judge_cost_usd": sum(priced) if replies and len(priced) == len(costs) else None,
    }


def _judge_failed(row: Row, result: client.CallResult) -> Row:
    """An answered sample the judge could not grade: errored, keeping the answer for a look at it."""
    return row | {
        "outcome": "errored",
        "error": result.error,
        "error_message": result.message,
        "failed_checks": "",
        "reasons": "",
    }


def _judge_failed_all(rows: list[Row], result: client.CallResult) -> list[Row]:
    return [_judge_failed(row, result) if _answered(row) else row for row in rows]
