"""The OpenAI client: endpoint, key, timeouts; one call, classified.

The official SDK builds the requests and classifies what fails, through ``harness.record._transport.Transport`` so that
the cassette the sending thread plays answers or records. A live client's chat requests after its first go past the
SDK, straight to that transport with the method, URL and headers the SDK sent the first one with (its
``Template``): the SDK's request and response handling is two thirds of a live call's CPU under 50 threads (issue 14).
What such a request gets back is classified by the SDK's own rules all the same — a status that is not 2xx becomes
the SDK's error for it (``_make_status_error_from_response``), a network failure its ``APITimeoutError`` or
``APIConnectionError`` — so rows, messages and cassettes are the same either way (``tests/test_direct.py``).

The SDK's own retries are off: the runner retries, paced by the endpoint's ``limits.Pacer``, so a 429 slows every
thread and retry time is capped. This module knows nothing about YAML: it gets a request body and returns the
response JSON, or an error class with the server's own message.
"""

from __future__ import annotations

import functools
import json
import math
import os
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from .._lazy import httpx2, openai  # imported when a request first needs the SDK: most replays never do
from .._slotted import filled_by_slot
from ..errors import ConfigError
from ..load._evals import Endpoint
from ..record._cassettes import BATCH_HEADER, LATENCY_HEADER, REPLAYED_HEADER, TTFT_HEADER, Cassette, NoRecording, sent
from ..record._secrets import redact
from . import _stream as stream
from ._limits import Pacer
from ._remedy import Remedy
from ._row import ErrorKind

if TYPE_CHECKING:
    from ..record._transport import Transport

# Placeholder used in replay: recordings never contain a key, so none is needed to replay them.
REPLAY_KEY = "replay-needs-no-key"
SPARE_THREADS = 0.25  # spare threads for each concurrency slot (see ``Connections.workers``)
# A live client's transport, which its requests past the SDK go to (see the module doc)
_TRANSPORTS: weakref.WeakKeyDictionary[Any, Transport] = weakref.WeakKeyDictionary()


@filled_by_slot  # made for every sample: each slot filled directly (harness._slotted)
@dataclass(frozen=True, slots=True)
class CallResult:
    response: dict[str, Any] | None
    latency_ms: float | None
    error: ErrorKind | None = None
    message: str = ""
    unreachable: bool = False  # nothing listens there (refused, DNS): no point sending it anything else
    headers: Mapping[str, str] = field(default_factory=dict)  # the answer's rate-limit and retry-after headers
    replayed: bool = False  # answered from the cassette, not by the endpoint
    remedy: Remedy | None = None  # a missing recording's: what records it
    ttft_ms: float | None = None  # a streamed answer's time to first token
    usage_estimated: bool | None = None  # a streamed answer's: its usage counted here (no usage chunk); else None
    batch: bool = False  # answered through the Batch API (recorded by `--batch`): priced at its batch price


def make_client(
    endpoint: Endpoint, *, replay: bool, base_url: str | None = None, connections: int = 8
) -> openai.OpenAI:
    """A client for ``endpoint`` whose requests go through the calling thread's cassette. In replay nothing else
    answers: a request without a recording raises ``NoRecording`` (see ``call``), no connection is ever opened."""
    if replay:
        key: str | None = REPLAY_KEY
    else:
        key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else "local-needs-no-key"
    if not key:
        raise ConfigError(
            f"{endpoint.api_key_env} is not set: export it or put it in .env to record against {endpoint.base_url}"
        )
    from ..record._transport import Network, Transport  # httpx2's: with the SDK, not before

    transport = Transport(None if replay else Network(connections), endpoint.timeout_s, stream.first_token_ms)
    api = openai.OpenAI(
        api_key=key,
        base_url=base_url or endpoint.base_url,
        timeout=endpoint.timeout_s,
        max_retries=0,
        # trust_env off: a proxy from the environment would get a transport of its own, past the cassette
        http_client=httpx2.Client(transport=transport, timeout=endpoint.timeout_s, trust_env=False),
    )
    if not replay:  # a replay's requests are answered from the cassette (``replayed``), or need the SDK's errors
        _TRANSPORTS[api] = transport
    return api


def call(client: openai.OpenAI, body: dict[str, Any]) -> CallResult:
    """Send one Chat Completions request; never raises for what the endpoint answers."""
    start = time.perf_counter()
    try:
        if body.get("stream"):
            return _streamed(client, body)
        headers, text = _posted(client, body)
    except NoRecording:  # not an httpx2 error: the SDK lets it through unwrapped
        return CallResult(None, None, ErrorKind.MISSING_RECORDING, "")
    except openai.APITimeoutError as exc:
        return _failed(ErrorKind.TIMEOUT, exc, start)
    except openai.APIConnectionError as exc:
        failed = _failed(ErrorKind.CONNECTION, exc, start)
        return replace(failed, unreachable=isinstance(exc.__cause__, httpx2.ConnectError))
    except openai.RateLimitError as exc:
        return _failed(ErrorKind.RATE_LIMITED, exc, start)
    except openai.InternalServerError as exc:
        return _failed(ErrorKind.SERVER_ERROR, exc, start)
    except openai.APIStatusError as exc:
        return _failed(ErrorKind.REFUSED_BY_ENDPOINT, exc, start)
    recorded = headers.get(LATENCY_HEADER)
    latency = float(recorded) if recorded else _ms_since(start)
    replayed = bool(headers.get(REPLAYED_HEADER))
    return _parsed(text, latency, _pacing_headers(headers), replayed, batch=BATCH_HEADER in headers)


def _posted(client: openai.OpenAI, body: dict[str, Any]) -> tuple[dict[str, str], str]:
    """A 2xx answer's headers (lowercased names, repeats joined as httpx2 joins them) and text; raises the SDK's
    errors. Through the SDK until its first request taught the transport how the SDK sends (see the module doc)."""
    transport = _TRANSPORTS.get(client)
    template = transport.template if transport is not None else None
    if transport is None or template is None:
        # the SDK's request path (auth, headers, timeouts, errors) without `create`'s typed-parameter transform,
        # which only re-checks a body that is plain JSON already
        raw = client.post("/chat/completions", cast_to=httpx2.Response, body=body)
        return dict(raw.headers.items()), raw.text
    from ..record._network import charset  # with httpx2, which a replay may never import

    data = sent(body, allow_nan=False)
    try:
        status, _, headers, content = transport.exchange(template.method, template.url, template.headers, data)
    except httpx2.TimeoutException as exc:
        raise openai.APITimeoutError(request=template.request(data)) from exc
    except (httpx2.RequestError, ssl.SSLError) as exc:  # the SDK's request_exceptions
        raise openai.APIConnectionError(request=template.request(data)) from exc
    if not 200 <= status < 300:  # httpx2's raise_for_status, then the SDK's error for the status
        response = httpx2.Response(status, headers=headers, content=content, request=template.request(data))
        raise client._make_status_error_from_response(response) from None
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined, content.decode(charset(joined.get("content-type")), "replace")


def replayed(cassette: Cassette, sample: int | None, body: dict[str, Any]) -> CallResult | None:
    """The recorded 200 answer to ``body`` for ``sample``, read straight from the cassette: the SDK would only
    serialize the body and hand back the same text (half a replay's time). None for anything else — an error
    status, or no recording — which ``call`` then handles as it would live."""
    if body.get("stream"):
        return None  # a stream is played through the SDK's Stream, chunk by chunk, as it was live (``_streamed``)
    key = cassette.key(body)
    answer = cassette.play(key, sample, status=200)  # another status is left to ``call``, as live
    if answer is None or answer["status"]["code"] != 200:
        return None
    headers = {k.lower(): values[-1] for k, values in answer["headers"].items() if values}
    text = answer["body"].get("string") or ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    latency = float(headers[LATENCY_HEADER]) if LATENCY_HEADER in headers else None
    pacing = {k: v for k, v in headers.items() if k.startswith(("x-ratelimit-", "retry-after"))}
    return _parsed(text, latency, pacing, replayed=True, batch=BATCH_HEADER in headers)


# ---------------------------------------------------------------------------------------------------- streamed


@functools.cache
def _events() -> Any:
    """The stream class below, made when a stream is first read: it subclasses the SDK's, which a replay answered
    from its cassettes never imports."""

    class _Events(openai.Stream[Any]):
        """The SDK's stream of chunks, noting whether the server ended it with ``data: [DONE]`` (the SDK stops there
        without a word, and just as silently at a stream cut short)."""

        done = False

        def _iter_events(self) -> Iterator[Any]:
            for event in super()._iter_events():
                self.done = self.done or event.data.startswith(stream.DONE)
                yield event

    return _Events


def _streamed(client: openai.OpenAI, body: dict[str, Any]) -> CallResult:
    """A ``stream: true`` request, read chunk by chunk through the SDK (live or replayed alike) and assembled into
    the ``chat.completion`` checks read. The SDK's errors of the request itself are ``call``'s to classify."""
    events = client.post("/chat/completions", cast_to=object, body=body, stream=True, stream_cls=_events())
    headers = events.response.headers
    latency, ttft = (float(headers[h]) if headers.get(h) else None for h in (LATENCY_HEADER, TTFT_HEADER))
    seen: dict[str, Any] = {"latency_ms": latency, "ttft_ms": ttft, "headers": _pacing_headers(headers)}
    seen["replayed"] = bool(headers.get(REPLAYED_HEADER))
    try:
        chunks = list(events)
        response, estimated = stream.assembled(chunks, events.done, body)
    except openai.APIConnectionError:  # timeouts too: ``call`` classifies them as it does a request's
        raise
    except openai.APIError as exc:  # an error event in the stream, after its 200
        message = redact(f"the stream sent an error: {exc.message}")
        return CallResult(None, error=ErrorKind.BAD_RESPONSE, message=message, **seen)
    except ValueError as exc:  # a chunk that is not JSON (the SDK's), or an incomplete stream (StreamError)
        why = str(exc) if isinstance(exc, stream.StreamError) else f"a chunk is not JSON: {exc}"
        return CallResult(None, error=ErrorKind.BAD_RESPONSE, message=redact(why), **seen)
    return CallResult(response, usage_estimated=estimated, **seen)


def _parsed(text: str, latency: float | None, headers: dict[str, str], replayed: bool, batch: bool) -> CallResult:
    """The answer's JSON, or why it is not an answer (built once: a replay makes one for each of its rows)."""
    try:
        response = json.loads(text)
    except ValueError:
        message = redact(f"the body is not JSON: {text[:200]!r}")
        return CallResult(
            None, latency, ErrorKind.BAD_RESPONSE, message, headers=headers, replayed=replayed, batch=batch
        )
    if not isinstance(response, dict) or not isinstance(response.get("choices"), list) or not response["choices"]:
        message = redact(f"no choices in the answer: {text[:200]!r}")
        return CallResult(
            None, latency, ErrorKind.BAD_RESPONSE, message, headers=headers, replayed=replayed, batch=batch
        )
    return CallResult(response, latency, headers=headers, replayed=replayed, batch=batch)


def _pacing_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(("x-ratelimit-", "retry-after"))}


def _ms_since(start: float) -> float:
    # rounded as the cassette stores it, so a replay reports exactly what the recording run did
    return round((time.perf_counter() - start) * 1000, 1)


def _failed(kind: ErrorKind, exc: openai.OpenAIError, start: float) -> CallResult:
    elapsed = _ms_since(start)
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    response = getattr(exc, "response", None)
    raw = response.headers if isinstance(response, httpx2.Response) else httpx2.Headers()
    headers, replayed = _pacing_headers(raw), bool(raw.get(REPLAYED_HEADER))
    # a replayed refusal reports the latency its recording saw, as an answer does: none if it saw none (a batch's)
    recorded = raw.get(LATENCY_HEADER)
    latency = float(recorded) if recorded else None if replayed else elapsed
    return CallResult(
        None,
        latency,
        kind,
        redact(prefix + str(exc)),
        headers=headers,
        replayed=replayed,
    )


class _OnFirstUse:
    """A replay's SDK client, made when a request first needs it (a recorded error status, a missing recording):
    a replay that every cassette answers never imports the SDK."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._api: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._api is None:
                self._api = make_client(self._endpoint, replay=True, connections=self._endpoint.concurrency)
        return getattr(self._api, name)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


class Connections:
    """One SDK client per endpoint and one ``limits.Pacer`` per endpoint URL for a whole session, shared by threads.

    ``local_url`` gives the running local server's URL (starting it on first use), so it is asked once, under a lock.
    """

    def __init__(self, replay: bool, local_url: Callable[[], str]) -> None:
        self.replay = replay
        self._local_url = local_url
        self._lock = threading.Lock()
        self._clients: dict[Endpoint, openai.OpenAI] = {}
        self._pacers: dict[str, Pacer] = {}

    def client(self, endpoint: Endpoint) -> openai.OpenAI:
        """Raises ConfigError (no key) or LocalServerError (no local server)."""
        with self._lock:
            if endpoint not in self._clients:
                if self.replay:  # most replays are answered by ``replayed``: the SDK is for what is not
                    self._clients[endpoint] = cast("openai.OpenAI", _OnFirstUse(endpoint))
                else:
                    base_url = self._local_url() if endpoint.kind == "local" else None
                    self._clients[endpoint] = make_client(
                        endpoint, replay=False, base_url=base_url, connections=endpoint.concurrency
                    )
            return self._clients[endpoint]

    def pacer(self, endpoint: Endpoint) -> Pacer:
        with self._lock:
            pacer = self._pacers.get(endpoint.base_url)
            if pacer is None:  # the first eval to use an endpoint sets its limits
                pacer = self._pacers[endpoint.base_url] = Pacer(endpoint.limits, endpoint.concurrency)
            return pacer

    def workers(self, spare: bool = True) -> int:
        """Threads worth running: every endpoint's concurrency and a quarter more. A sample holds a thread, not a
        slot, while it is checked and journaled, its case's cassette written, or while it waits to retry a 429: the
        spare threads wait at the slots meanwhile, so that no slot idles while samples are queued (4.9 → 4.6 s of
        sending for 1,000 calls at concurrency 50). An endpoint of one slot keeps one thread: its samples go one
        after the other, in order, as they always did. ``spare=False`` (a run with a budget): one thread a slot,
        since a thread waiting at the slots has reserved its sample's worst case, which the others could spend."""
        with self._lock:
            return max(1, sum(_threads(p.concurrency, spare) for p in self._pacers.values()))

    def close(self) -> None:
        with self._lock:
            for api in self._clients.values():
                api.close()
            self._clients.clear()


def _threads(concurrency: int, spare: bool) -> int:
    return concurrency if concurrency == 1 or not spare else concurrency + math.ceil(SPARE_THREADS * concurrency)
