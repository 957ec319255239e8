"""Cassettes: one file per case × variant in vcrpy's YAML format, played and recorded by harness.record._transport.

Why not vcrpy's own patching: it patches httpx2 process-wide for one cassette at a time, so concurrent samples of
different cases cannot each play their own, and its matcher scans every interaction for every request (8.8 ms a
call at 100 recorded calls, ~29 ms at 400). Here a cassette is indexed by a canonical request key (the parsed JSON
body), the thread that sends says which cassette it plays (``playing``), and the files stay standard vcrpy
cassettes, written by vcrpy's own serializer, which vcrpy can replay as they are.

Nothing paid for is lost: a live answer is appended at once to ``<cassette>.wal`` (one JSON line, flushed before the
answer is used), and closing the cassette writes the YAML atomically (temp file + rename) and removes the log. The
log's first line names what it extends — the sha256 of the YAML it was appended to, or ``fresh`` for a re-recording
(`--record-mode all`) — so a log is only ever added to the file it belongs to, and a torn last line is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from .._scoped import Scoped
from . import _cache as cache
from . import _index as indexed
from ._index import Interaction as Interaction  # where they are defined: imported from here
from ._index import index_dir as index_dir
from ._mode import RecordMode as RecordMode
from ._redaction import Redactor, mask_json_text
from ._secrets import redact

# HTTP statuses of a transient failure, never recorded: a recorded 429 or 503 would replay as a failure for ever.
# (Whether the runner sends again is ErrorKind.retryable's rule, on the kind the SDK's error is classified as.)
TRANSIENT_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
LATENCY_HEADER = "x-promptvcr-latency-ms"
TTFT_HEADER = "x-promptvcr-ttft-ms"  # a streamed answer's measured time to first token (see _transport)
REPLAYED_HEADER = "x-promptvcr-replayed"  # on replayed answers only, never stored
SAMPLE_HEADER = "x-promptvcr-sample"  # the sample an answer was recorded for
BATCH_HEADER = "x-promptvcr-batch"  # on answers the Batch API gave (`--batch`): the batch's id; priced as such
FORMAT_VERSION = 1  # vcrpy's cassette format version
WAL_SUFFIX = ".wal"
FRESH = "fresh"


class NoRecording(Exception):
    """No recorded answer matches the request, and the cassette may not record one."""


def cassette_path(root: Path, eval_name: str, variant: str, case_id: str, *, judge: bool = False) -> Path:
    """The answers' cassette, or (``judge``) the one of the judge's requests about them, ``<case-id>.judge.yaml``."""
    return root / eval_name / variant / f"{case_id}{'.judge' if judge else ''}.yaml"


def parsed(body: bytes | str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def sent(body: Any, *, allow_nan: bool = True) -> bytes:
    """A request body serialized as the SDK sends it (``openai._utils._json.openapi_dumps``), so that, scrubbed, it is
    the text its recording keeps. Sending refuses NaN as the SDK does (``allow_nan=False``); a key never raises."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan).encode()


def body_key(body: Any) -> str:
    """A JSON body's canonical text, whatever the key order or spacing."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def scrubbed(body: bytes | str, redactor: Redactor | None) -> str:
    """A body as a cassette keeps it: secrets out, personal data masked (idempotent: stored bodies stay as they are)."""
    text = redact(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)
    return mask_json_text(redactor, text) if redactor is not None and redactor.rules else text


def request_key(body: bytes | str, redactor: Redactor | None) -> str:
    """What a request is matched on — by replay and by `promptvcr status` alike: its JSON body as the cassette keeps
    it (``scrubbed``), whatever the key order or spacing."""
    return stored_key(scrubbed(body, redactor))


def stored_key(body: bytes | str | None) -> str:
    """``request_key`` of a body as a cassette keeps it (scrubbed already)."""
    return body_key(parsed(body))


class Cassette:
    """The interactions of one file (plus its log), an index of them by request, and what was played so far."""

    def __init__(
        self,
        path: Path,
        mode: RecordMode,
        redactor: Redactor | None = None,
        resume: bool = False,
        index: Path | None = None,
    ) -> None:
        self.path = path
        self.mode = mode
        self._redactor = redactor if redactor is not None and redactor.rules else None
        read = cache.file_bytes(path)
        existed, raw = read is not None, read or b""
        self._extends = FRESH if mode == RecordMode.ALL else (_digest(raw) if existed else "none")
        fresh = mode == RecordMode.ALL or not existed
        self.data: list[Interaction] = [] if fresh else indexed.read(path, raw, self._extends, index)
        self.records = mode in (RecordMode.NEW_EPISODES, RecordMode.ALL) or (mode == RecordMode.ONCE and not existed)
        self._unsaved = 0
        if has_log(path):
            wal = _wal(path)
            extends, logged = _read_wal(wal)
            if extends == self._extends and (extends != FRESH or resume):
                self.data += logged  # what a killed run paid for: kept, and written with the rest at close
                self._unsaved = len(logged)
            elif mode != RecordMode.NONE:
                wal.unlink()  # a log of another version of the file, or of an abandoned re-recording
        # answers by request and by the sample that got them live (None: a cassette from before samples were noted)
        self._index: dict[tuple[str, int | None], list[int]] = {}
        # a stored body → its key: every sample of a case recorded the same body
        self._stored: dict[str, str] = {}
        for number, interaction in enumerate(self.data):
            self._index.setdefault(_key_and_sample(interaction, self._stored), []).append(number)
        self._cursor: dict[tuple[str, int | None], int] = {}
        self._keys: dict[bytes, str] = {}  # request bodies → their keys (``key_of``)
        self._last: tuple[Any, str] | None = None  # the last body given as data, and its key (``key``)
        self.play_count = 0
        self._lock = threading.Lock()
        self._log: Any = None  # the open .wal file, once something was recorded

    # -- requests as stored ----------------------------------------------------------------------------------------

    def scrubbed(self, body: bytes) -> str:
        return scrubbed(body, self._redactor)

    def key(self, body: Any) -> str:
        """The index key of a request body given as data (e.g. to find a fallback's answer). Every sample of a case
        sends the very same body (a request body is never changed once built: a turn or a fallback makes its own),
        so the last one's key is kept for it, not made again for every sample."""
        last = self._last
        if last is not None and last[0] is body:
            return last[1]
        key = self.key_of(sent(body))
        self._last = (body, key)
        return key

    def key_of(self, body: bytes) -> str:
        # every sample of a case sends the same body: scrubbed and canonicalized once (a third of a replay's call)
        key = self._keys.get(body)
        if key is None:
            text = self.scrubbed(body)
            # ``request_key``, known already for a body as it is stored (a recording's own request's)
            key = self._keys[body] = self._stored.get(text) or stored_key(text)
        return key

    # -- playing and recording -------------------------------------------------------------------------------------

    def play(
        self, key: str, sample: int | None, *, peek: bool = False, status: int | None = None
    ) -> dict[str, Any] | None:
        """The recorded response to this request that ``sample`` got when it was live, else the next one that no
        sample claims and that has not been played yet; ``peek`` leaves it unplayed, and so does ``status`` unless
        the response has that status."""
        with self._lock:
            for slot in ((key, sample), (key, None)) if sample is not None else ((key, None),):
                numbers = self._index.get(slot, [])
                cursor = self._cursor.get(slot, 0)
                if cursor < len(numbers):
                    response: dict[str, Any] = self.data[numbers[cursor]]["response"]
                    if not peek and (status is None or response["status"]["code"] == status):
                        self._cursor[slot] = cursor + 1
                        self.play_count += 1
                    return response
            return None

    def record(self, key: str, sample: int | None, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Keep a live interaction (already scrubbed): in memory, counted as played, and in the log at once."""
        if sample is not None:  # so that a replay gives each sample its own answer, whatever order they came in
            response["headers"][SAMPLE_HEADER] = [str(sample)]
        interaction = {"request": request, "response": response}
        with self._lock:
            slot = (key, sample)
            self._index.setdefault(slot, []).append(len(self.data))
            self._cursor[slot] = self._cursor.get(slot, 0) + 1
            self.data.append(interaction)
            self._unsaved += 1
            if self._log is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._log = _wal(self.path).open("a", encoding="utf-8")
                if self._log.tell() == 0:
                    self._log.write(json.dumps({"promptvcr_wal": 1, "extends": self._extends}) + "\n")
                elif not ends_a_line(_wal(self.path)):
                    self._log.write("\n")  # a line a kill cut short stays a line of its own, not glued to the next
            self._log.write(json.dumps(interaction, ensure_ascii=False) + "\n")
            self._log.flush()  # in the kernel's hands: a SIGKILL of this process no longer loses it

    def close(self) -> bool:
        """Write what was recorded (atomically) and drop the log; whether the file was written (a replay never is)."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self.mode == RecordMode.NONE:
                return False
            saved = bool(self._unsaved) and bool(self.data)
            if self.mode == RecordMode.ALL and not self.data:
                self.path.unlink(missing_ok=True)  # a re-recording that got no answer leaves no stale one behind
            elif saved:
                save(self.path, self.data)
            _wal(self.path).unlink(missing_ok=True)
            self._unsaved = 0
            return saved

    # -- reading ---------------------------------------------------------------------------------------------------

    def last_good_answer(self, body: Any) -> dict[str, Any] | None:
        """The newest recorded 200 answer to a request with this JSON body (the fallback of last resort)."""
        key = self.key(body)
        with self._lock:  # other samples' threads may be recording into the index
            numbers = sorted(n for (k, _), ns in self._index.items() if k == key for n in ns)
        for number in reversed(numbers):
            response = self.data[number]["response"]
            if response["status"]["code"] == 200:
                answer = parsed(response["body"].get("string"))
                if isinstance(answer, dict):
                    return answer
        return None

    def describe_miss(self, samples: int) -> tuple[str, RecordMode]:
        """Why no recorded answer matched, and the record mode that fixes it: nothing recorded (once), too few
        answers (new_episodes), or a request that no longer matches its recording (all)."""
        recorded = len(self.data)
        if recorded == 0:
            return "nothing is recorded", RecordMode.ONCE
        if self.play_count > 0:
            return f"{recorded} answer(s) recorded for {samples} sample(s)", RecordMode.NEW_EPISODES
        return "the request differs from the recording (prompt, parameters or model changed)", RecordMode.ALL


def _key_and_sample(interaction: Interaction, keys: dict[str, str]) -> tuple[str, int | None]:
    """The interaction's index key and sample; ``keys``: the keys of the stored bodies seen so far."""
    tag = interaction["response"].get("headers", {}).get(SAMPLE_HEADER)
    body = interaction["request"].get("body")
    key = keys.get(body) if isinstance(body, str) else None
    if key is None:
        key = stored_key(body)
        if isinstance(body, str):
            keys[body] = key
    return key, int(tag[0]) if tag else None


def ends_a_line(path: Path) -> bool:
    """Whether a log's last line is complete (the journal's and the cassettes' logs alike)."""
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def unreadable(exc: BaseException) -> str:
    """Why a cassette can't be read, without quoting its text: a cassette can be a link to any file (a pull request
    can add one), and a YAML error's snippet would print a line of that file into the CI log."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{type(exc).__name__}: {exc.problem or exc.context}{where}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return f"{type(exc).__name__}: {exc}"


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _wal(path: Path) -> Path:
    return path.with_name(path.name + WAL_SUFFIX)


def _read_wal(path: Path) -> tuple[str | None, list[Interaction]]:
    """What a log extends and its complete lines (a line cut by a kill is not one)."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    entries: list[Any] = []
    for line in lines[:-1]:  # the text after the last newline is a torn write, if anything
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line a kill cut short, then continued on its own line by the next run
    if not entries or not isinstance(entries[0], dict) or "extends" not in entries[0]:
        return None, []
    return str(entries[0]["extends"]), [e for e in entries[1:] if isinstance(e, dict) and "response" in e]


def has_log(path: Path) -> bool:
    """Whether answers of a killed run wait in ``path``'s log for the cassette to be written (``_wal(path)`` as a
    string: every cassette opened asks, and most have none)."""
    return os.path.isfile(f"{path}{WAL_SUFFIX}")


def save(path: Path, interactions: list[Interaction]) -> None:
    """Write a standard vcrpy cassette to a temporary file beside ``path`` and rename it: never a half file."""
    from . import _yamlwrite  # vcrpy's writer (so vcrpy replays the file), made faster; only when recording

    path.parent.mkdir(parents=True, exist_ok=True)
    text = _yamlwrite.dumped({"version": FORMAT_VERSION, "interactions": indexed.unshared(interactions)})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed before its rename
        stale.unlink(missing_ok=True)


_PLAYING: ContextVar[tuple[Cassette, int | None] | None] = ContextVar("promptvcr_cassette", default=None)


def playing(cassette: Cassette, sample: int | None = None) -> Scoped[tuple[Cassette, int | None] | None]:
    """Requests sent by this thread (or task) inside the block are answered from, or recorded into, ``cassette``,
    as those of ``sample`` (see ``harness.record._transport``)."""
    return Scoped(_PLAYING, (cassette, sample))


def current() -> tuple[Cassette, int | None]:
    """The cassette this thread plays, and for which sample."""
    now = _PLAYING.get()
    if now is None:
        raise RuntimeError("a request was sent outside any cassette (harness.record._cassettes.playing)")
    return now
