"""Cassettes: one vcrpy file per case × variant, matched on the JSON body, scrubbed before anything is written.

The files are standard vcrpy YAML so any vcrpy user can read them. What we add: matching on the parsed JSON
body (vcrpy's default ignores bodies), header scrubbing on both sides, no recording of retryable failures, atomic
writes, and the measured latency of each live call stored as a response header.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vcr
from vcr.cassette import Cassette
from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request
from vcr.serialize import serialize

from .redaction import Redactor, mask_json_text
from .secrets import DROP_RESPONSE_HEADERS, KEEP_REQUEST_HEADERS, redact

RECORD_MODES = ("none", "once", "new_episodes", "all")
RETRYABLE = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def cassette_path(root: Path, eval_name: str, variant: str, case_id: str, *, judge: bool = False) -> Path:
    """The answers' cassette, or (``judge``) the one of the judge's requests about them, ``<case-id>.judge.yaml``."""
    return root / eval_name / variant / f"{case_id}{'.judge' if judge else ''}.yaml"


def _json_body(r1: Request, r2: Request) -> None:
    if _parsed(r1.body) != _parsed(r2.body):
        raise AssertionError("the JSON bodies differ")


def _parsed(body: bytes | str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _scrub_request(request: Request) -> Request:
    for name in list(request.headers):
        if name.lower() not in KEEP_REQUEST_HEADERS:
            del request.headers[name]
    request.uri = redact(request.uri)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any] | None:
    if response["status"]["code"] in RETRYABLE:
        return None  # a recorded 429 or 503 would replay as a failure (and, with retries, a real sleep)
    headers = response["headers"]
    for name in list(headers):
        if name.lower() in DROP_RESPONSE_HEADERS:
            del headers[name]
        else:  # any other header may still echo a key (a debug header, a proxy's)
            headers[name] = [redact(value) for value in headers[name]]
    body = response["body"].get("string")
    # e.g. a proxy's 401 that echoes the key in full; the body stays bytes, as vcrpy replays it
    if isinstance(body, bytes):
        response["body"]["string"] = redact(body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    elif isinstance(body, str):
        response["body"]["string"] = redact(body)
    return response


class AtomicPersister(FilesystemPersister):  # type: ignore[misc]  # vcrpy is untyped
    """Write to a temporary file beside the cassette and rename it, so a killed run leaves no half file."""

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: str) -> None:
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = serialize(cassette_dict, serializer)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _vcr() -> vcr.VCR:
    config = vcr.VCR(
        serializer="yaml",
        match_on=["method", "path", "json_body"],
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )
    config.register_matcher("json_body", _json_body)
    config.register_persister(AtomicPersister)
    return config


_VCR = _vcr()


@contextmanager
def use(path: Path, record_mode: str, redactor: Redactor | None = None) -> Iterator[Cassette]:
    """Open the cassette at ``path``; ``all`` starts it afresh, the other modes keep what is recorded.

    With a ``redactor`` (the eval's personal-data rules) request and response bodies are masked too; vcrpy applies
    the request filter before matching as well, so a replay matches the masked form of the same request.
    """
    if record_mode == "all":
        path.unlink(missing_ok=True)
    filters: dict[str, Any] = {}
    if redactor is not None and redactor.rules:
        filters = {
            "before_record_request": lambda request: _mask_request(_scrub_request(request), redactor),
            "before_record_response": lambda response: _mask_response(_scrub_response(response), redactor),
        }
    with _VCR.use_cassette(str(path), record_mode=record_mode, **filters) as cassette:
        yield cassette


def _mask_request(request: Request, redactor: Redactor) -> Request:
    if request.body:
        text = request.body.decode("utf-8") if isinstance(request.body, bytes) else request.body
        request.body = mask_json_text(redactor, text).encode("utf-8")
    return request


def _mask_response(response: dict[str, Any] | None, redactor: Redactor) -> dict[str, Any] | None:
    if response is not None:
        body = response["body"].get("string")
        if isinstance(body, bytes):
            response["body"]["string"] = mask_json_text(redactor, body.decode("utf-8", "surrogateescape")).encode()
        elif isinstance(body, str):
            response["body"]["string"] = mask_json_text(redactor, body)
    return response


def stamp_latency(cassette: Cassette, recorded_before: int, header: str, latency_ms: float) -> None:
    """Store a live call's measured latency in the interaction it just added, so replays report it too."""
    if len(cassette.data) > recorded_before:
        _, response = cassette.data[-1]
        response["headers"][header] = [f"{latency_ms:.1f}"]
        cassette.dirty = True


def last_good_answer(cassette: Cassette, body: Any) -> dict[str, Any] | None:
    """The newest recorded 200 answer to a request with this JSON body (the fallback of last resort)."""
    for request, response in reversed(cassette.data):
        if response["status"]["code"] == 200 and _parsed(request.body) == body:
            answer = _parsed(response["body"]["string"])
            if isinstance(answer, dict):
                return answer
    return None


def describe_miss(cassette: Cassette, samples: int) -> tuple[str, str]:
    """Why no recorded answer matched, and the record mode that fixes it: nothing recorded (once), too few
    answers (new_episodes), or a request that no longer matches its recording (all)."""
    recorded = len(cassette.data)
    if recorded == 0:
        return "nothing is recorded", "once"
    if cassette.play_count > 0:
        return f"{recorded} answer(s) recorded for {samples} sample(s)", "new_episodes"
    return "the request differs from the recording (prompt, parameters or model changed)", "all"
