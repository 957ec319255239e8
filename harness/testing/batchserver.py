"""A local OpenAI Batch API on 127.0.0.1: the files and batches endpoints, each line run against a real server.

Test tooling for `promptvcr run --batch` (harness.run._batch), never a source of quality numbers. It speaks the
documented formats the SDK parses (``FileObject``, ``Batch``, the output and error files' lines): ``POST
/v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files/{id}`` and ``/content``, ``POST /v1/batches``, ``GET
/v1/batches`` and ``/v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. A batch goes validating → in_progress →
finalizing → completed; each line's body is sent to ``upstream`` (an OpenAI-compatible server: the test server,
or the local llama.cpp one), its answer written to the output file, a failure status to the error file.

Faults (``Faults``, changeable while it runs): a line answered with an error status instead of being sent, a batch
that fails validation, expires or is cancelled after so many lines, a hold that keeps batches in progress until
released, and failed reads of a batch's status or of a file's content. It counts what it was asked to do
(``created``, ``uploads``, ``executed``) so tests can say what was sent. The key a client sends is never stored or
forwarded.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}


@dataclass
class Faults:
    fail: dict[str, int] = field(default_factory=dict)  # custom_id → the HTTP status its line is answered with
    fail_validation: str | None = None  # every batch fails validation with this message
    expire_after: int | None = None  # lines run before a batch expires (the rest: batch_expired error lines)
    cancel_after: int | None = None  # lines run before a batch is cancelled, as by its owner (the rest: no line)
    hold: threading.Event | None = None  # while set is not called, batches stay in progress before their next line
    step_s: float = 0.0  # time spent in validating and finalizing, and per line
    require_key: str | None = None  # answer 401 to a request without this bearer key (it is compared, not kept)
    # the statuses the next reads of a batch (GET /v1/batches/{id}) or of a file's content are answered with, one
    # read each, in order (told not to retry: each is one failed call of the client's)
    retrieve_errors: list[int] = field(default_factory=list)
    content_errors: list[int] = field(default_factory=list)


class BatchServer:
    def __init__(self, upstream: str, faults: Faults | None = None, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults or Faults()
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.created = self.uploads = self.executed = 0
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> BatchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.faults.hold is not None:
            self.faults.hold.set()  # no batch thread waits for ever
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- files and batches -------------------------------------------------------------------------------------

    def add_file(self, name: str, purpose: str, data: bytes) -> dict[str, Any]:
        with self._lock:
            self.uploads += purpose == "batch"
            file_id = f"file-{len(self.files) + 1:06d}"
            meta = {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": name,
                "purpose": purpose,
                "status": "processed",
            }
            self.files[file_id] = (meta, data)
            return meta

    def create_batch(self, raw: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.created += 1
            batch_id = f"batch_{self.created:06d}"
            now = int(time.time())
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": raw.get("endpoint", "/v1/chat/completions"),
                "input_file_id": raw["input_file_id"],
                "completion_window": raw.get("completion_window", "24h"),
                "status": "validating",
                "created_at": now,
                "expires_at": now + 86_400,
                "metadata": raw.get("metadata"),
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
            }
            self.batches[batch_id] = batch
        threading.Thread(target=self._work, args=(batch_id,), daemon=True).start()
        return dict(batch)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                self._cancel.add(batch_id)
                batch |= {"status": "cancelling", "cancelling_at": int(time.time())}
            return dict(batch)

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.batches.get(batch_id)
            return None if found is None else json.loads(json.dumps(found))

    # -- running a batch ---------------------------------------------------------------------------------------

    def _set(self, batch_id: str, **changes: Any) -> None:
        with self._lock:
            self.batches[batch_id] |= changes

    def _work(self, batch_id: str) -> None:
        faults = self.faults
        time.sleep(faults.step_s)
        batch = self.batch(batch_id) or {}
        lines = [json.loads(t) for t in self.files[batch["input_file_id"]][1].decode().splitlines() if t.strip()]
        if faults.fail_validation is not None:
            errors = {"object": "list", "data": [{"code": "invalid_request", "message": faults.fail_validation}]}
            self._set(batch_id, status="failed", failed_at=int(time.time()), errors=errors)
            return
        total = {"total": len(lines), "completed": 0, "failed": 0}
        self._set(batch_id, status="in_progress", in_progress_at=int(time.time()), request_counts=total)
        output, failed = self._lines(batch_id, lines)
        self._finish(batch_id, output, failed)

    def _lines(self, batch_id: str, lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        faults = self.faults
        output: list[str] = []
        failed: list[str] = []
        for n, line in enumerate(lines):
            if faults.hold is not None:
                faults.hold.wait()
            if faults.cancel_after is not None and n >= faults.cancel_after:
                self.cancel(batch_id)
            if batch_id in self._cancel:
                break
            if faults.expire_after is not None and n >= faults.expire_after:
                failed += [_line(rest["custom_id"], None, EXPIRED) for rest in lines[n:]]
                self._set(batch_id, status="expired", expired_at=int(time.time()))
                break
            status, body = self._execute(line)
            (output if status == 200 else failed).append(_line(line["custom_id"], (status, body), None))
            with self._lock:
                counts = self.batches[batch_id]["request_counts"]
                counts["completed" if status == 200 else "failed"] += 1
            time.sleep(faults.step_s)
        return output, failed

    def _execute(self, line: dict[str, Any]) -> tuple[int, Any]:
        status = self.faults.fail.get(line["custom_id"])
        if status is not None:
            return status, {"error": {"message": f"injected failure {status}", "type": "server_error", "code": None}}
        with self._lock:
            self.executed += 1
        request = urllib.request.Request(
            self.upstream + "/chat/completions",
            data=json.dumps(line["body"]).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:
                return int(answer.status), json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), _json_or_text(exc.read())

    def _finish(self, batch_id: str, output: list[str], failed: list[str]) -> None:
        if (self.batch(batch_id) or {})["status"] == "in_progress":
            self._set(batch_id, status="finalizing", finalizing_at=int(time.time()))
            time.sleep(self.faults.step_s)
        ended = self.batch(batch_id) or {}
        files = {}
        for key, lines in (("output_file_id", output), ("error_file_id", failed)):
            if lines:
                files[key] = self.add_file(f"{batch_id}_{key}.jsonl", "batch_output", "".join(lines).encode())["id"]
        status = {"cancelling": "cancelled", "finalizing": "completed"}.get(ended["status"], ended["status"])
        at = {"cancelled": "cancelled_at", "completed": "completed_at"}.get(status)
        self._set(batch_id, status=status, **files, **({at: int(time.time())} if at else {}))


def _line(custom_id: str, response: tuple[int, Any] | None, error: dict[str, Any] | None) -> str:
    answer = None
    if response is not None:
        answer = {"status_code": response[0], "request_id": f"req_{custom_id}", "body": response[1]}
    return (
        json.dumps({"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": answer, "error": error}) + "\n"
    )


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name → (filename, bytes)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


class _Handler(BaseHTTPRequestHandler):
    """The routes; ``server_`` is set on the subclass each BatchServer makes (``_handler``)."""

    server_: BatchServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json", retry: bool = True) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        if not retry:
            self.send_header("x-should-retry", "false")  # the SDK's own retries would hide an injected failure
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refused(self) -> bool:
        """Whether the request lacks the key ``Faults.require_key`` asks for (then answered 401)."""
        wanted = self.server_.faults.require_key
        if wanted is None or self.headers.get("authorization") == f"Bearer {wanted}":
            return False
        self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
        return True

    def _injected(self, errors: list[int]) -> bool:
        """Whether the read is answered with the next of ``errors`` (a ``Faults`` list, consumed)."""
        with self.server_._lock:
            status = errors.pop(0) if errors else None
        if status is None:
            return False
        self._send(status, {"error": {"message": f"injected {status}", "type": "server_error"}}, retry=False)
        return True

    def _missing(self) -> None:
        self._send(404, {"error": {"message": f"no route or object {self.path}", "type": "invalid_request_error"}})

    def do_GET(self) -> None:
        if self._refused():
            return
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        faults = self.server_.faults
        if parts[:2] == ["v1", "files"] and parts[3:] == ["content"] and self._injected(faults.content_errors):
            return None
        if parts[:2] == ["v1", "batches"] and len(parts) == 3 and self._injected(faults.retrieve_errors):
            return None
        if parts[:2] == ["v1", "files"] and len(parts) >= 3 and parts[2] in self.server_.files:
            meta, data = self.server_.files[parts[2]]
            return (
                self._send(200, data, "application/octet-stream") if parts[3:] == ["content"] else self._send(200, meta)
            )
        if parts == ["v1", "batches"]:
            limit = int(parse_qs(url.query).get("limit", ["20"])[0])
            found = [self.server_.batch(b) for b in sorted(self.server_.batches, reverse=True)][:limit]
            return self._send(200, {"object": "list", "data": found, "has_more": False})
        if parts[:2] == ["v1", "batches"] and len(parts) == 3 and self.server_.batch(parts[2]) is not None:
            return self._send(200, self.server_.batch(parts[2]))
        self._missing()

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self._refused():
            return
        parts = urlparse(self.path).path.strip("/").split("/")
        if parts == ["v1", "files"]:
            fields = _multipart(self.headers.get("content-type", ""), raw)
            name, data = fields.get("file", (None, b""))
            return self._send(200, self.server_.add_file(name or "upload.jsonl", fields["purpose"][1].decode(), data))
        if parts == ["v1", "batches"]:
            body = json.loads(raw)
            if body.get("input_file_id") not in self.server_.files:
                return self._send(400, {"error": {"message": "no such input file", "type": "invalid_request"}})
            return self._send(200, self.server_.create_batch(body))
        if parts[:2] == ["v1", "batches"] and parts[3:] == ["cancel"] and parts[2] in self.server_.batches:
            return self._send(200, self.server_.cancel(parts[2]))
        self._missing()


def _handler(server: BatchServer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"server_": server})


@contextmanager
def serve(upstream: str, faults: Faults | None = None) -> Iterator[BatchServer]:
    with BatchServer(upstream, faults) as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.testing.batchserver --upstream URL`: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="batchserver", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upstream", required=True, help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:8765/v1"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with BatchServer(args.upstream, port=args.port) as server:
        print(f"Batch API on {server.base_url} over {server.upstream}", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
