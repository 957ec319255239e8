"""A batch that ended: its output and error files read, its answers recorded into the cassettes, the rest classified.

An answer is recorded as a live one is (``harness.record._transport.record_answer``: scrubbed, masked, for its
sample), with the batch's id in ``x-promptvcr-batch`` — the marker that prices it at the model's batch price when
it is replayed — and without a latency (a batch's requests have none of their own). A permanent refusal (a 400) is
recorded too, as live: its replay is the same refusal. A request the batch did not answer, or answered with a
transient failure (429, 5xx), becomes a row classified by why: ``batch_expired``, ``batch_cancelled``,
``batch_failed``, or the HTTP status's own kind.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .._lazy import httpx2, openai
from ..load._evals import CaseRun
from ..record._cassettes import BATCH_HEADER, TRANSIENT_STATUSES
from ..record._secrets import redact
from . import _client as client
from . import _runner as runner
from . import _scoring as scoring
from ._batch_log import BatchLog, Entry
from ._row import ErrorKind, Row

ENDPOINT = "/v1/chat/completions"
Item = tuple[str, str, str]
# a request the batch did not answer: by its error line's code, else by the status the batch ended in
_KINDS = {
    "batch_expired": ErrorKind.BATCH_EXPIRED,
    "expired": ErrorKind.BATCH_EXPIRED,
    "batch_cancelled": ErrorKind.BATCH_CANCELLED,
    "cancelled": ErrorKind.BATCH_CANCELLED,
}


@dataclass(frozen=True)
class Request:
    """One sample's request as a line of batch JSONL."""

    run: CaseRun
    sample: int

    @property
    def custom_id(self) -> str:
        return f"{self.run.eval_name}/{self.run.variant.name}/{self.run.case.id}/{self.sample}"

    @functools.cached_property
    def line(self) -> bytes:  # asked for its size, then written: serialized once
        raw = {"custom_id": self.custom_id, "method": "POST", "url": ENDPOINT, "body": self.run.body}
        return (json.dumps(raw, ensure_ascii=False) + "\n").encode()


def pending(runs: Sequence[CaseRun], options: runner.RunOptions) -> list[Request]:
    """Every sample of ``runs`` without a kept answer (a resumed run's)."""
    return [
        Request(run, s)
        for run in runs
        for s in range(run.samples)
        if s not in options.done.get((run.eval_name, run.variant.name, run.case.id), {})
    ]


def update(entry: Entry, batch: openai.types.Batch) -> None:
    """The entry as the Batch API reports its batch now."""
    entry.status = batch.status
    counts = batch.request_counts
    entry.completed, entry.failed_count = (counts.completed, counts.failed) if counts is not None else (0, 0)
    entry.output_file_id, entry.error_file_id = batch.output_file_id, batch.error_file_id
    errors = batch.errors.data if batch.errors is not None and batch.errors.data else []
    if errors:
        entry.error = redact("; ".join(f"{e.code or 'error'}: {e.message or ''}".strip() for e in errors))


def record(
    entry: Entry,
    lines: Mapping[str, Any],
    requests: Mapping[str, Request],
    options: runner.RunOptions,
    written: set[str],
) -> None:
    """Record the ended batch's answers (``lines``, its files' by custom id) into their cassettes; what it did not
    answer into ``entry.failed``."""
    answers: dict[Item, list[tuple[Request, int, Any]]] = {}
    for custom_id in entry.custom_ids:
        request = requests.get(custom_id)
        if request is None:  # not pending any more (kept by a resumed run)
            continue
        line = lines.get(custom_id)
        response = line.get("response") if isinstance(line, dict) else None
        status = response.get("status_code") if isinstance(response, dict) else None
        if isinstance(status, int) and status not in TRANSIENT_STATUSES:
            item = (request.run.eval_name, request.run.variant.name, request.run.case.id)
            answers.setdefault(item, []).append((request, status, response.get("body") if response else None))
        else:
            entry.failed[custom_id] = [str(kind) for kind in _why(entry, line, status)]
    for found in answers.values():
        _write(found, entry, options, written)


def download(api: openai.OpenAI, entry: Entry) -> tuple[dict[str, Any], openai.APIError | None]:
    """The output and error files' lines by custom id, and the error of a file that could not be downloaded (its
    lines are then missing: the caller asks again, or gives up on them)."""
    out: dict[str, Any] = {}
    failed: openai.APIError | None = None
    for file_id in (entry.output_file_id, entry.error_file_id):
        if not file_id:
            continue
        try:
            content = api.files.content(file_id).content
        except openai.APIError as exc:
            failed = failed or exc
            continue
        for text in content.decode("utf-8", "replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                out[line["custom_id"]] = line
    return out, failed


def _why(entry: Entry, line: Any, status: int | None) -> tuple[ErrorKind, str]:
    """The class and message of a request the batch did not answer."""
    where = f"batch {entry.id or '(not submitted)'}"
    if status is not None:
        kinds = {429: ErrorKind.RATE_LIMITED, 408: ErrorKind.TIMEOUT}
        kind = kinds.get(status, ErrorKind.SERVER_ERROR)
        body = line["response"].get("body")
        return kind, redact(f"{where}: HTTP {status}: {json.dumps(body)[:300]}")
    error = line.get("error") if isinstance(line, dict) else None
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    if isinstance(error, dict):
        message = f"{where}: {code}: {error.get('message') or ''}"
    else:
        message = f"{where} ended {entry.status} without an answer to this request" + (
            f" ({entry.error})" if entry.error else ""
        )
    if code:  # a line of the error file: its own code says why
        return _KINDS.get(code, ErrorKind.BATCH_FAILED), redact(message)
    return _KINDS.get(entry.status, ErrorKind.BATCH_FAILED), redact(message)


def _write(found: list[tuple[Request, int, Any]], entry: Entry, options: runner.RunOptions, written: set[str]) -> None:
    """One case's answers into its cassette. A cassette this phase wrote already (a case split over two batches)
    is continued, as a resumed run continues one it wrote: never started afresh."""
    from ..record import _transport as transport  # imports httpx2 itself: only a batch phase that ended needs it

    run = found[0][0].run
    path = runner.cassette_for(run, options)
    mine = options.rewritten | written
    continued = dataclasses.replace(options, resume=options.resume or str(path) in mine, rewritten=mine)
    cassette = runner.open_cassette(path, run, continued)
    url = f"{run.variant.endpoint.base_url}/chat/completions"
    headers = {"content-type": "application/json", "accept": "application/json"}
    sent = httpx2.Request("POST", url, headers=headers, content=json.dumps(run.body).encode())
    key = cassette.key(run.body)  # every sample of a case sends the same body
    try:
        for request, status, body in found:
            if cassette.play(key, request.sample, peek=True) is not None:
                continue  # recorded already: by the run a kill stopped while it recorded this batch
            content = json.dumps(body, ensure_ascii=False).encode()
            answer_headers = [("content-type", "application/json"), (BATCH_HEADER, str(entry.id))]
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
            transport.record_answer(cassette, key, request.sample, sent, (status, phrase, answer_headers, content))
    finally:
        runner.close_cassette(cassette, options)
        written.add(str(path))


def failed_rows(log: BatchLog, requests: Mapping[str, Request]) -> dict[Item, dict[int, Row]]:
    """The rows of the pending requests that the batches did not answer, by item and sample."""
    rows: dict[Item, dict[int, Row]] = {}
    for entry in log.entries:
        for custom_id, (kind, message) in entry.failed.items():
            request = requests.get(custom_id)
            if request is None:
                continue
            run = request.run
            result = client.CallResult(None, None, ErrorKind(kind), message)
            rows.setdefault((run.eval_name, run.variant.name, run.case.id), {})[request.sample] = scoring.errored(
                run, request.sample, result
            )
    return rows


class Progress:
    """A batch's progress line, said when its state or counts change: status, answered and failed, an ETA."""

    def __init__(self, say: Callable[[str], None], batches: int) -> None:
        self._say = say
        self._batches = batches
        self._last: dict[int, tuple[str, int, int, bool]] = {}
        self._start: dict[int, tuple[float, int]] = {}  # when a batch was first seen running, and its count then

    def show(self, number: int, entry: Entry) -> None:
        now = (entry.status, entry.completed, entry.failed_count, entry.recorded)
        if self._last.get(number) == now:
            return
        self._last[number] = now
        total = len(entry.custom_ids)
        done = entry.completed + entry.failed_count
        line = (
            f"promptvcr: batch {number + 1}/{self._batches} {entry.id} ({entry.eval}): {entry.status}, "
            f"{entry.completed}/{total} answered, {entry.failed_count} failed"
        )
        if entry.recorded:
            line += f"; recorded, {len(entry.failed)} without an answer"
        elif entry.status == "in_progress":
            line += self._eta(number, done, total)
        self._say(line)

    def _eta(self, number: int, done: int, total: int) -> str:
        start, before = self._start.setdefault(number, (time.monotonic(), done))
        elapsed = time.monotonic() - start
        if done <= before or elapsed <= 0:
            return ", ETA unknown"
        seconds = (total - done) * elapsed / (done - before)
        return f", ETA {int(seconds // 60)}m{int(seconds % 60):02d}s"
