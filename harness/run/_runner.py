"""Execution of one case in one variant: every sample sent (or replayed), checked, and turned into a result row
(``harness.run._row.Row``), which the controller aggregates once (``harness.report._summary``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..checks import _builtins as checks
from ..checks import _judge as judge
from ..errors import ConfigError, LocalServerError
from ..load._evals import CaseRun, Endpoint
from ..record import _cassettes as cassettes
from ..record._cassettes import RecordMode
from ..record._redaction import mask_json
from . import _client as client
from . import _preflight as preflight
from . import _scoring as scoring
from . import _turns as turns
from ._limits import Pacer, retry_after
from ._remedy import Advise, Missing, Remedy
from ._row import CACHED, FROM_CACHE, PRIMARY, AnsweredBy, ErrorKind, Row

if TYPE_CHECKING:
    import openai  # the SDK's client, made by ``_client``: a replay answered from its cassettes never imports it


@dataclass(frozen=True)
class RunOptions:
    record_mode: RecordMode
    cassettes_dir: Path
    connections: client.Connections  # SDK clients and rate-limit pacers, one per endpoint for the session
    budgets: Mapping[str, preflight.Budget] = field(default_factory=dict)  # by eval name, for live runs
    # base_url → why it is considered down: one refused connection fails the rest of the run fast, not each sample
    unreachable: dict[str, str] = field(default_factory=dict)
    on_row: Callable[[Row], None] | None = None  # told of every sample as it ends (progress, the results journal)
    resume: bool = False  # continuing a killed run: its re-recording logs are kept (see harness.record._cassettes)
    done: Mapping[tuple[str, str, str], Mapping[int, Row]] = field(default_factory=dict)  # (eval, variant, case)
    rewritten: frozenset[str] = frozenset()  # cassettes the resumed run already wrote: continued, never restarted
    on_save: Callable[[Path], None] | None = None  # told of every cassette written (the run journal keeps them)
    advise: Advise | None = None  # the edge's words for a remedy (the CLI's commands); None: the remedy's own
    plans: Mapping[tuple[str, str, str], preflight.CallPlan] = field(default_factory=dict)  # made by a pre-flight

    def fix(self, remedy: Remedy) -> str:
        return str(remedy) if self.advise is None else self.advise(remedy)

    @property
    def replay(self) -> bool:
        return self.record_mode == RecordMode.NONE


def open_cassette(path: Path, run: CaseRun, options: RunOptions) -> cassettes.Cassette:
    """The cassette as this run records it. A resumed run continues one it already wrote (`new_episodes`: what is
    in it stays, what is missing is recorded) instead of starting it afresh (`all`) or leaving it as it is (`once`)."""
    continued = options.resume and str(path) in options.rewritten
    mode = RecordMode.NEW_EPISODES if continued else options.record_mode
    index = cassettes.index_dir(options.cassettes_dir)
    return cassettes.Cassette(path, mode, run.redactor, options.resume, index)


def close_cassette(cassette: cassettes.Cassette, options: RunOptions) -> None:
    if cassette.close() and options.on_save is not None:
        options.on_save(cassette.path)


def item_of(run: CaseRun) -> str:
    """The pytest item's name of a case × variant, as `-k` selects it."""
    return f"{run.case.id}[{run.variant.name}]"


def cassette_for(run: CaseRun, options: RunOptions) -> Path:
    return cassettes.cassette_path(options.cassettes_dir, run.eval_name, run.variant.name, run.case.id)


def judge_cassette_for(run: CaseRun, options: RunOptions) -> Path:
    return cassettes.cassette_path(options.cassettes_dir, run.eval_name, run.variant.name, run.case.id, judge=True)


class RunningCase:
    """One case × variant being run (``harness.load._evals.CaseRun``, the loaded one, is what it runs): what is known
    before sending, and its cassette while samples use it."""

    def __init__(self, run: CaseRun, options: RunOptions) -> None:
        self.run = run
        self.options = options
        item = (run.eval_name, run.variant.name, run.case.id)
        # the pre-flight's, counted once; a replay's only says whether it overflows
        self.call = options.plans.get(item) or (preflight.replay_plan if options.replay else preflight.plan)(run)
        self.kept = dict(options.done.get(item, {}))
        self.pending = [s for s in range(run.samples) if s not in self.kept]
        self.path = cassette_for(run, options)
        self.refusal = self._refusal()  # every sample's row when nothing may be sent, else None
        self.cassette: cassettes.Cassette | None = None
        self.api: openai.OpenAI | None = None
        # made now, not when the case opens: the pool sizes itself on the pacers of the cases queued ahead
        self.pacer = None if options.replay else options.connections.pacer(run.variant.endpoint)
        self.tokens = 0.0 if self.pacer is None else self._tokens(0, run.body)  # what a paced send counts

    def _refusal(self) -> list[Row] | None:
        run = self.run
        if self.call.overflow:
            return scoring.all_errored(run, ErrorKind.CONTEXT_OVERFLOW, self.call.overflow_message())
        path = self.path
        if self.options.replay and not path.is_file():
            what = f"case {run.case.id!r} in variant {run.variant.name!r}"
            remedy = Remedy(Missing.RECORDING, run.eval_name, RecordMode.ONCE, (item_of(run),))
            message = f"no recording for {what} ({path}): {self.options.fix(remedy)}"
            return scoring.all_errored(run, ErrorKind.MISSING_RECORDING, message, remedy=remedy)
        return None

    def open(self) -> list[Row] | None:
        """Get the client and open the cassette; the rows of every pending sample when no client can be had."""
        run, options = self.run, self.options
        try:
            self.api = options.connections.client(run.variant.endpoint)
        except (ConfigError, LocalServerError) as exc:  # no key, no local server: nothing can be sent
            kind = ErrorKind.CONFIG if isinstance(exc, ConfigError) else ErrorKind.CONNECTION
            return scoring.all_errored(run, kind, str(exc), self.pending)
        path = self.path
        try:
            self.cassette = open_cassette(path, run, options)
        except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as exc:  # e.g. a merge conflict in it
            remedy = Remedy(Missing.READABLE_CASSETTE, run.eval_name, RecordMode.ALL, (item_of(run),))
            message = f"cannot read the cassette {path}: {cassettes.unreadable(exc)} — {options.fix(remedy)}"
            return scoring.all_errored(run, ErrorKind.CONFIG, message, self.pending, remedy)
        # Answers are claimed by the sample they were recorded for; a kept sample that replayed an older answer
        # noted for no sample claims it now, so that no other sample gets it again.
        for sample, row in self.kept.items():
            if row.replayed and row.answered_by is not None and row.answered_by.sent:
                body = {**run.body, "model": row.answered_by.model_or(run.model)}
                self.cassette.play(self.cassette.key(body), sample)
        return None

    def close(self) -> None:
        if self.cassette is not None:
            close_cassette(self.cassette, self.options)

    def settle(self) -> None:
        """Nothing left to send (a resumed run had every answer): the cassette still gets what its log holds."""
        if not self.options.replay and self.refusal is None and cassettes.has_log(self.path):
            close_cassette(open_cassette(self.path, self.run, self.options), self.options)

    def sample(self, sample: int) -> Row:
        """Send (or replay) one sample and check its answer; never raises for what an endpoint or a cassette does."""
        assert self.api is not None and self.cassette is not None  # opened first
        run, options = self.run, self.options
        budget = None if options.replay else options.budgets.get(run.eval_name)
        if budget is not None and not budget.reserve(self.call.unit_cost_usd):
            message = f"budget: ${budget.spent_usd:.4f} spent of budget_usd ${budget.limit_usd:g}; not sent"
            return scoring.errored(run, sample, client.CallResult(None, None, ErrorKind.BUDGET, message))
        with cassettes.playing(self.cassette, sample):
            # one request, or a conversation's turns in order (harness.run._turns)
            said = turns.converse(run.body, run.case.followups, partial(self._answer, sample))
        row = scoring.conversed(run, sample, said)
        if budget is not None:
            budget.spend(_billed(run, said), self.call.unit_cost_usd)
        return row

    def _answer(self, sample: int, body: dict[str, Any], turn: int) -> tuple[client.CallResult, AnsweredBy]:
        """The answer to ``body`` (the sample's request, or its conversation's turn ``turn``) and who gave it: the
        variant's model, a fallback model or the cassette's cache — for each turn of a conversation alike."""
        run = self.run
        result, answered_by = self._send(sample, body, turn), PRIMARY
        for step in run.variant.fallback:
            if result.response is not None or result.error is None or not result.error.falls_back:
                break
            if step == CACHED:
                assert self.cassette is not None
                cached = self.cassette.last_good_answer(body)
                if cached is not None:
                    result, answered_by = client.CallResult(cached, None), FROM_CACHE
            else:
                result, answered_by = self._send(sample, {**body, "model": step}, turn), AnsweredBy("fallback", step)
        return result, answered_by

    def _tokens(self, turn: int, body: dict[str, Any]) -> float:
        """What a request counts against a pace in tokens/min, as the endpoint counts: the prompt and the output it
        may write."""
        prompt = self.call.request_tokens(turn) or len(json.dumps(body.get("messages"))) // 4
        return prompt + (self.call.max_output or 0)

    def _send(self, sample: int, body: dict[str, Any], turn: int = 0) -> client.CallResult:
        """One request: replayed, or sent at the endpoint's pace and retried while its pacer allows."""
        assert self.api is not None and self.cassette is not None
        run = self.run
        if self.pacer is None:  # a replay: a recorded answer needs no SDK round trip (an error status still does)
            result = client.replayed(self.cassette, sample, body) or client.call(self.api, body)
        else:
            tokens = self.tokens if turn == 0 else self._tokens(turn, body)
            endpoint = run.variant.endpoint
            result = send_paced(self.api, self.pacer, body, tokens, endpoint.max_retries, self.options.unreachable)
        if run.redactor is not None and result.response is not None:
            # checks see what the cassette keeps, so a replay judges the very same text
            result = replace(result, response=mask_json(run.redactor, result.response))
        if result.error == ErrorKind.MISSING_RECORDING:
            return _unmatched(run, self.options, self.cassette, "recording")
        return result


def send_paced(
    api: openai.OpenAI, pacer: Pacer, body: dict[str, Any], tokens: float, max_retries: int, unreachable: dict[str, str]
) -> client.CallResult:
    """Send ``body`` when the pacer allows; retried while it allows (429s pause every thread sending that model)."""
    model, base_url, attempt = str(body["model"]), str(api.base_url), 0
    while True:
        with pacer.slot(model, tokens):
            down = unreachable.get(base_url)  # seen again once a slot is ours: the first request may have failed
            result = client.CallResult(None, None, ErrorKind.CONNECTION, down) if down else client.call(api, body)
            # both said before the slot (and the first request's turn) is given up: the others see them
            pacer.learn(model, result.headers)
            if result.unreachable:
                unreachable[base_url] = f"{api.base_url} is not answering, not sent: {result.message}"
        if down is not None or result.unreachable:
            return result
        wait = pacer.retry_wait(model, result.error, retry_after(result.headers), attempt, max_retries)
        if wait is None:
            break
        pacer.wait_to_retry(wait)
        attempt += 1
    if attempt and result.error:
        result = replace(result, message=f"{result.message} (gave up after {attempt + 1} attempts)")
    return result


def run_case(run: CaseRun, options: RunOptions) -> list[Row]:
    """One row per sample, in sample order, each sent after the other (a replay: no waiting to share)."""
    case = RunningCase(run, options)
    if case.refusal is not None:
        return case.refusal
    rows = case.open() or []
    if not rows:
        try:
            for sample in case.pending:
                row = case.sample(sample)
                rows.append(row)
                if options.on_row is not None:
                    options.on_row(row)
        finally:
            case.close()
    return finish(case, rows)


def finish(case: RunningCase, rows: list[Row]) -> list[Row]:
    """The case's rows in sample order, the kept ones of a resumed run included, judged when the case asks."""
    new = _judged(case.run, case.options, rows) if case.run.judges else rows
    return sorted([*case.kept.values(), *new], key=lambda row: row.sample)


def _billed(run: CaseRun, said: list[turns.Turn]) -> float | None:
    """What a sample cost, summed over its requests (a conversation's turns): a request's price when answered live
    (None: unpriced, booked as the worst case); nothing when replayed or refused; unknown (the worst case) when the
    call died in flight, after the endpoint may have run it."""
    total = 0.0
    for turn in said:
        result = turn.result
        if result.replayed or (result.error is not None and not result.error.billable):
            continue
        cost = None if result.response is None else scoring.answer_cost(run, result.response, turn.answered_by)
        if cost is None:
            return None
        total += cost
    return total


def _unmatched(run: CaseRun, options: RunOptions, cassette: cassettes.Cassette, what: str) -> client.CallResult:
    """A sample's request that no recording in ``cassette`` answered: why, and what fixes it. The same words for
    every sample it happens to (the row has the sample), so the item's verdict says it once, with the count."""
    why, mode = cassette.describe_miss(run.samples)
    remedy = Remedy(Missing.MATCH, run.eval_name, mode, (item_of(run),))
    where = f"case {run.case.id!r} in variant {run.variant.name!r}"
    message = f"no {what} for {where} matches this sample ({why}): {options.fix(remedy)}"
    return client.CallResult(None, None, ErrorKind.MISSING_RECORDING, message, remedy=remedy)


# ---------------------------------------------------------------------------------------------------- LLM-as-judge


def _judged(run: CaseRun, options: RunOptions, rows: list[Row]) -> list[Row]:
    """``rows`` with every answered sample graded by each of the case's judge checks (one judge request each).

    The judge's requests go to their own cassette, so that the answers' one holds answers only.
    """
    path = judge_cassette_for(run, options)
    if options.replay and not path.is_file():
        what = f"case {run.case.id!r} in variant {run.variant.name!r}"
        remedy = Remedy(Missing.JUDGE_RECORDING, run.eval_name, RecordMode.ONCE, (item_of(run),))
        message = f"no judge recording for {what} ({path}): {options.fix(remedy)}"
        missing = client.CallResult(None, None, ErrorKind.MISSING_RECORDING, message, remedy=remedy)
        return scoring.judge_failed_all(rows, missing)
    try:
        apis = {e: options.connections.client(e) for e in {call.endpoint for call in run.judges}}
    except (ConfigError, LocalServerError) as exc:
        return scoring.judge_failed_all(rows, client.CallResult(None, None, ErrorKind.JUDGE_ERROR, f"judge: {exc}"))
    cassette = open_cassette(path, run, options)
    try:
        return [_judge_sample(run, options, row, cassette, apis) if row.outcome.answered else row for row in rows]
    finally:
        close_cassette(cassette, options)


def _judge_sample(
    run: CaseRun, options: RunOptions, row: Row, cassette: cassettes.Cassette, apis: Mapping[Endpoint, openai.OpenAI]
) -> Row:
    answer = checks.Answer.parse(row.output or "", row.finish_reason)  # answered: it has an output
    results: list[checks.CheckResult] = []
    replies: list[tuple[str, dict[str, Any]]] = []  # (judge model, its response) of every request sent
    for call in run.judges:
        text, missing = judge.graded_text(answer, call.spec)
        if missing:  # e.g. the path is not in the answer: nothing worth a judge's tokens
            results.append(checks.CheckResult(judge.NAME, False, missing))
            continue
        body = judge.request_body(call.model, call.spec.rubric, run.case.messages, text)
        with cassettes.playing(cassette, row.sample):
            if options.replay:
                result = client.call(apis[call.endpoint], body)
            else:  # paced and retried like the answers: a judge shares the endpoint's limits
                pacer, tokens = options.connections.pacer(call.endpoint), len(json.dumps(body)) / 4
                result = send_paced(
                    apis[call.endpoint], pacer, body, tokens, call.endpoint.max_retries, options.unreachable
                )
        if result.response is None:  # never a pass: the judge said nothing about the answer
            failure = (
                _unmatched(run, options, cassette, "judge recording")
                if result.error == ErrorKind.MISSING_RECORDING
                else replace(result, error=ErrorKind.JUDGE_ERROR, message=f"judge {result.error}: {result.message}")
            )
            judged = scoring.with_judgement(row, results, replies)  # keeps what the judge cost so far
            return scoring.judge_failed(judged, failure)
        results.append(judge.verdict(call.spec, result.response))
        replies.append((call.model, result.response))
    return scoring.with_judgement(row, results, replies)
