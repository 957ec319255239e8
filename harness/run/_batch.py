"""`--batch`: a recording run's requests sent through the OpenAI Batch API, their answers recorded into the cassettes.

A recording phase of the Session (``harness._session``), before any item runs. The requests a recording run would
send — each pending sample whose cassette has no answer for it that the record mode keeps — are written as batch
JSONL (one line per sample, ``custom_id`` eval/variant/case/sample, the very body a live call sends), uploaded
(``files.create(purpose="batch")``) and submitted (``batches.create``, ``/v1/chat/completions``, 24 h), split where
they pass a batch's limits (requests, file size). The batches are polled with a progress line; each one that ends
has its output and error files downloaded and its answers recorded into the standard cassettes as live answers are
(``harness.run._batch_record``). Then the items run as a replay of those cassettes: checked, gated, reported.

Durable: ``batch.json`` (``harness.run._batch_log``) journals each batch before its file is uploaded and its ids
the moment they exist, so `--resume` re-attaches to them and never submits a request twice. Requests an expired,
failed or cancelled batch did not answer, and per-line errors, become classified rows; what a batch answered before
it ended is kept. A batch's status or file that could not be read is asked for again at the next poll (its answers
are paid for), and given up on only at a 401, 403 or 404 or after ``MAX_FAILURES`` failed reads in a row.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .._lazy import httpx2, openai
from ..errors import ConfigError
from ..load._evals import BatchOptions, CaseRun, Endpoint, Eval
from ..record._cassettes import RecordMode, scrubbed
from ..record._secrets import redact
from . import _batch_record as recording
from . import _client as client
from . import _preflight as preflight
from . import _runner as runner
from ._batch_log import BatchLog, Entry
from ._batch_record import Request
from ._row import Row

MAX_FILE_BYTES = 200 * 1024 * 1024  # the Batch API's limit per batch (its request limit: BatchOptions.max_requests)
MAX_FAILURES = 20  # failed reads of a batch's status or files in a row before it is given up on (10 min at 30 s)
FINAL_STATUSES = frozenset({401, 403, 404})  # a read refused so will not succeed when asked again
Say = Callable[[str], None]
Item = tuple[str, str, str]


@dataclass(frozen=True)
class Phase:
    """What the batch phase needs of its Session."""

    options: runner.RunOptions  # the recording run's (record mode, cassettes, kept rows of a resumed run)
    run_dir: Path
    say: Say
    on_row: Callable[[Row], None]  # a request the batches did not answer: its classified row, journaled
    batching: Mapping[str, BatchOptions] = field(default_factory=dict)  # by eval name (default: BatchOptions())
    max_file_bytes: int = field(default_factory=lambda: MAX_FILE_BYTES)  # read when made: a test may lower it
    max_failures: int = field(default_factory=lambda: MAX_FAILURES)  # likewise


class Batching:
    """A session's batch phase: which evals it records, then the options their cases replay with and the cases
    with nothing left to replay (by item key)."""

    def __init__(self, every: bool) -> None:
        self.every = every  # --batch: every eval of a live run
        self.replay: runner.RunOptions | None = None
        self.settled: dict[str, list[Row]] = {}
        self._evals: set[str] = set()  # the evals the phase recorded
        self._connections: client.Connections | None = None

    def of(self, ev: Eval | None) -> BatchOptions | None:
        """How a live run records ``ev`` through the Batch API: its file's `batch`, or --batch's; else None."""
        own = ev.batch if ev is not None else None
        return own or (BatchOptions() if self.every else None)

    def record(self, runs: Sequence[CaseRun], phase: Phase, local_url: Callable[[], str]) -> None:
        failed = record(phase, runs)
        self._evals = {run.eval_name for run in runs}
        self._connections = client.Connections(True, local_url)
        self.replay = replaying(phase.options, failed, self._connections)

    def options_for(self, run: CaseRun, options: runner.RunOptions) -> runner.RunOptions:
        return self.replay if self.replay is not None and run.eval_name in self._evals else options

    def settle(self, key: str, run: CaseRun) -> bool:
        """Whether the batched case has every sample kept or classified already: then those are its rows."""
        if self.replay is None or run.eval_name not in self._evals:
            return False
        rows = settled(run, self.replay)
        if rows is not None:
            self.settled[key] = rows
        return rows is not None

    def close(self) -> None:
        if self._connections is not None:
            self._connections.close()


def record_mode(asked: RecordMode, batch: bool) -> RecordMode:
    """--batch is a way of recording: what is missing (`once`) unless a record mode is asked for."""
    return RecordMode.ONCE if batch and asked == RecordMode.NONE else asked


def check(runs: Sequence[CaseRun], worker: str | None = None) -> None:
    """Before anything is sent: one process (the batch phase runs before any item, in the controller), and each
    batched endpoint has a Batch API and its key (ConfigError)."""
    if worker is not None:
        raise ConfigError(
            "recording through the Batch API (--batch, or the eval's `batch` key) runs in one process: drop"
            " pytest-xdist's -n (the batches run in parallel anyway)"
        )
    for run in runs:
        where = f"--batch: case {run.case.id!r} in variant {run.variant.name!r}"
        if run.case.followups:
            raise ConfigError(
                f"{where} is a conversation (each turn needs the answer before it): record it without --batch"
            )
        if run.body.get("stream"):
            raise ConfigError(f"{where} streams: the Batch API answers whole; record it without --batch")
    for endpoint in {run.variant.endpoint for run in runs}:
        if endpoint.kind == "local":
            raise ConfigError(
                "--batch: the local llama.cpp server has no Batch API; record it without --batch, or point a custom"
                " endpoint at a Batch API (harness.testing.batchserver serves one over any OpenAI-compatible server)"
            )
        if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env):
            raise ConfigError(f"--batch: {endpoint.api_key_env} is not set: export it or put it in .env")


def record(phase: Phase, runs: Sequence[CaseRun]) -> dict[Item, dict[int, Row]]:
    """Send ``runs``' missing answers through batches, record what they answer; the classified rows of the rest."""
    log = BatchLog(phase.run_dir)
    requests = {r.custom_id: r for r in recording.pending(runs, phase.options)}
    covered = log.covered()  # a resumed run's batches: attached to, never submitted again
    new = [r for r in needed(runs, phase.options) if r.custom_id not in covered]
    for group in _groups(new):
        limit = phase.batching.get(group[0].run.eval_name, BatchOptions()).max_requests  # the schema caps it
        for chunk in split(group, limit, phase.max_file_bytes):
            endpoint = chunk[0].run.variant.endpoint
            log.add(Entry(chunk[0].run.eval_name, endpoint.base_url, [r.custom_id for r in chunk]))
    endpoints = {(run.eval_name, run.variant.endpoint.base_url): run.variant.endpoint for run in runs}
    apis: dict[str, openai.OpenAI] = {}
    try:
        for number, entry in enumerate(log.entries):
            if entry.recorded:
                continue
            if entry.base_url not in apis:
                apis[entry.base_url] = api_client(endpoints[(entry.eval, entry.base_url)])
            if not entry.terminal and entry.id is None:
                _submit(apis[entry.base_url], entry, requests, log, phase.run_dir / f"batch-{number + 1}.jsonl")
        _poll(apis, log, phase, requests)
    finally:
        for api in apis.values():
            api.close()
    rows = recording.failed_rows(log, requests)
    for by_sample in rows.values():
        for row in by_sample.values():
            phase.on_row(row)
    return rows


def replaying(
    options: runner.RunOptions, failed: Mapping[Item, Mapping[int, Row]], connections: client.Connections
) -> runner.RunOptions:
    """The options the batched cases then run with: a replay of what the phase recorded, on replay connections
    (nothing is sent), the samples the batches did not answer kept as the rows ``record`` classified."""
    kept = options.done
    done = {item: {**kept.get(item, {}), **failed.get(item, {})} for item in {*kept, *failed}}
    return dataclasses.replace(options, record_mode=RecordMode.NONE, connections=connections, done=done)


def settled(run: CaseRun, options: runner.RunOptions) -> list[Row] | None:
    """A batched case whose every sample is kept or classified: those rows, nothing to replay (its cassette may
    not even exist); else None."""
    done = options.done.get((run.eval_name, run.variant.name, run.case.id), {})
    return sorted(done.values(), key=lambda row: row.sample) if len(done) >= run.samples else None


def needed(runs: Sequence[CaseRun], options: runner.RunOptions) -> list[Request]:
    """The requests a recording run would send: pending samples its cassette has no answer for, where it records
    (a request over the model's context window is refused by the replay, not sent)."""
    out: list[Request] = []
    for run in runs:
        item = (run.eval_name, run.variant.name, run.case.id)
        samples = [r.sample for r in recording.pending([run], options)]
        if not samples or (options.plans.get(item) or preflight.plan(run)).overflow:
            continue
        try:
            cassette = runner.open_cassette(runner.cassette_for(run, options), run, options)
        except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
            continue  # unreadable: the replay says so, with the fix
        if not cassette.records:
            continue  # answers as it is: a live run would send nothing either
        key = cassette.key(run.body)
        out += [Request(run, s) for s in samples if cassette.play(key, s) is None]
    return out


def _groups(requests: Sequence[Request]) -> list[list[Request]]:
    """One batch (or more) per eval and endpoint: the eval's `batch` options, the endpoint's key."""
    groups: dict[tuple[str, str], list[Request]] = {}
    for r in requests:
        groups.setdefault((r.run.eval_name, r.run.variant.endpoint.base_url), []).append(r)
    return list(groups.values())


def split(requests: Sequence[Request], max_requests: int, max_bytes: int) -> list[list[Request]]:
    """Consecutive chunks of at most ``max_requests`` requests and ``max_bytes`` of JSONL each."""
    chunks: list[list[Request]] = []
    size = 0
    for r in requests:
        n = len(r.line)
        if not chunks or len(chunks[-1]) >= max_requests or size + n > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(r)
        size += n
    return chunks


def api_client(endpoint: Endpoint) -> openai.OpenAI:
    """The SDK's client for the endpoint's Batch API: not through a cassette (files and batches are not answers)."""
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else "no-key-needed"
    if not key:
        raise ConfigError(f"--batch: {endpoint.api_key_env} is not set: export it or put it in .env")
    return openai.OpenAI(
        api_key=key,
        base_url=endpoint.base_url,
        timeout=endpoint.timeout_s,
        max_retries=max(endpoint.max_retries, 2),
        http_client=httpx2.Client(timeout=endpoint.timeout_s, trust_env=False),
    )


def _submit(api: openai.OpenAI, entry: Entry, requests: Mapping[str, Request], log: BatchLog, jsonl: Path) -> None:
    """Upload the entry's JSONL and create its batch, journaling each id as it comes; a refusal fails the batch."""
    attached = entry.input_file_id is not None  # uploaded by a run killed before its batch's id was journaled
    try:
        if entry.input_file_id is None:
            data = b"".join(requests[c].line for c in entry.custom_ids)
            kept = "".join(scrubbed(requests[c].line, requests[c].run.redactor) for c in entry.custom_ids)
            tmp = jsonl.with_name(f".{jsonl.name}.tmp")
            tmp.write_text(kept, encoding="utf-8")  # to look at: as the cassettes keep requests, not as sent
            tmp.replace(jsonl)
            uploaded = api.files.create(file=(jsonl.name, data, "application/jsonl"), purpose="batch")
            entry.input_file_id, entry.status = uploaded.id, "uploaded"
            log.save()
        found = _created(api, entry.input_file_id) if attached else None
        batch = found or api.batches.create(
            input_file_id=entry.input_file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"promptvcr_run": log.path.parent.name, "promptvcr_eval": entry.eval},
        )
        entry.id = batch.id
        recording.update(entry, batch)
    except openai.APIError as exc:
        entry.status, entry.error = "failed", f"not submitted: {redact(str(exc))}"
    log.save()


def _created(api: openai.OpenAI, input_file_id: str) -> openai.types.Batch | None:
    """The batch already created from this file, if any (the last 100 batches are searched)."""
    for batch in api.batches.list(limit=100).data:
        if batch.input_file_id == input_file_id:
            return batch
    return None


def _poll(apis: Mapping[str, openai.OpenAI], log: BatchLog, phase: Phase, requests: Mapping[str, Request]) -> None:
    """Until every batch has ended and its answers are recorded: its status, a progress line when it changes."""
    progress = recording.Progress(phase.say, len(log.entries))
    poll_s = min([phase.batching[e.eval].poll_s for e in log.entries if e.eval in phase.batching] or [30.0])
    written: set[str] = set()  # the cassettes this phase wrote: a case split over two batches is continued
    while True:
        for number, entry in enumerate(log.entries):
            if entry.recorded:
                continue
            api = apis[entry.base_url]
            if not entry.terminal and entry.id is not None:
                read = _retrieved(api, entry, entry.id, phase)
                log.save()
                if not read:
                    continue
                progress.show(number, entry)
            if entry.terminal:
                _recorded(api, entry, phase, requests, written)
                log.save()
                progress.show(number, entry)
        if all(entry.recorded for entry in log.entries):
            return
        time.sleep(poll_s)


def _retrieved(api: openai.OpenAI, entry: Entry, batch_id: str, phase: Phase) -> bool:
    """Whether the batch's status was read, or given up on: the entry has then failed (its requests are classified)."""
    try:
        recording.update(entry, api.batches.retrieve(batch_id))
    except openai.APIError as exc:
        if not _gives_up(entry, exc, phase, "status not read"):
            return False
        entry.status, entry.error = "failed", f"status not read: {redact(str(exc))}"
        return True
    entry.failures = 0
    return True


def _recorded(
    api: openai.OpenAI, entry: Entry, phase: Phase, requests: Mapping[str, Request], written: set[str]
) -> None:
    """The ended batch's answers recorded, unless a file of it was not downloaded: the next poll downloads it again
    (they are paid for) until that is given up on, and the requests it holds are classified."""
    lines, failed = recording.download(api, entry)
    if failed is not None:
        if not _gives_up(entry, failed, phase, "files not downloaded"):
            return
        entry.error = entry.error or f"files not downloaded: {redact(str(failed))}"
    entry.failures = 0
    recording.record(entry, lines, requests, phase.options, written)
    entry.recorded = True


def _gives_up(entry: Entry, exc: openai.APIError, phase: Phase, what: str) -> bool:
    """A failed read of the batch's status or files: given up on at a status that will not change (a key refused,
    a batch or file not found), or after ``max_failures`` in a row; else the next poll asks again."""
    entry.failures += 1
    final = getattr(exc, "status_code", None) in FINAL_STATUSES or entry.failures >= phase.max_failures
    then = "giving up: its requests fail" if final else "asking again"
    phase.say(f"promptvcr: batch {entry.id}: {what} ({redact(str(exc))}); {then}")
    return final
