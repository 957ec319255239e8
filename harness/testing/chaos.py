"""The chaos server: an OpenAI-compatible endpoint on 127.0.0.1 that is slow and fails on purpose, for tests and load.

    promptvcr chaos-server [--port 0] [--seed 0] [--latency lognormal:50:500] [--rate-429 0.05] …

It answers ``POST /v1/chat/completions`` (a valid ``chat.completion`` with a ``usage`` object, or an SSE stream when
``stream: true``), ``GET /v1/models``, ``GET /health`` and ``GET /stats`` (requests received, counted by outcome, so a
test can assert exactly how many calls reached it). Each chat request's latency and fault are a pure function of the
seed and the request's arrival index N (``decide``), so a run is reproducible.

The HTTP framing and the canned answer (JSON or SSE) are in ``_chaos_wire``; this module decides each request's fate
and serves it.

It is test tooling: its answers are canned text and its latencies are drawn from a distribution. It is never a source
of quality, cost or latency numbers about any model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import _cliargs as cliargs
from ..errors import ConfigError
from ._chaos_wire import ANSWER as ANSWER
from ._chaos_wire import REASONS as REASONS
from ._chaos_wire import Request, read_request, response, stream_events
from ._chaos_wire import completion as completion

HOST = "127.0.0.1"
# In the order the fault is drawn; "ok" is what is left of the unit interval.
FAULTS = ("429", "500", "503", "reset", "timeout", "truncated", "malformed", "stall")
OUTCOMES = ("ok", *FAULTS)
# z of the 99th percentile of the standard normal: a lognormal's p99 is median × exp(sigma × z99).
Z99 = 2.3263478740408408
TICK_S = 0.1  # /stats counts chat requests per tick since the start, so a test can check a pace by counts
DISCLAIMER = "Test tooling: canned answers, synthetic latencies and faults; never a source of quality numbers."


@dataclass(frozen=True)
class Latency:
    """fixed:MS, uniform:LOW:HIGH or lognormal:MEDIAN:P99 (milliseconds)."""

    kind: str = "fixed"
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Latency:
        kind, _, rest = spec.partition(":")
        try:
            values = [float(v) for v in rest.split(":")] if rest else []
        except ValueError:
            values = []
        arity = {"fixed": 1, "uniform": 2, "lognormal": 2}
        if kind not in arity or len(values) != arity[kind] or any(v < 0 for v in values):
            raise ConfigError(f"bad latency {spec!r}: use fixed:MS, uniform:LOW:HIGH or lognormal:MEDIAN:P99 (ms)")
        latency = cls(kind, values[0], values[1] if len(values) > 1 else 0.0)
        if kind != "fixed" and latency.b < latency.a:
            raise ConfigError(f"bad latency {spec!r}: the second value must not be below the first")
        if kind == "lognormal" and latency.a <= 0:
            raise ConfigError(f"bad latency {spec!r}: a lognormal median must be above 0")
        return latency

    def draw(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.a), (math.log(self.b) - math.log(self.a)) / Z99)
        return self.a


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 0
    latency: Latency = field(default_factory=Latency)
    rates: dict[str, float] = field(default_factory=dict)  # fault (one of FAULTS) → probability per chat request
    retry_after_s: int = 1
    retry_after_ms: int | None = None  # also sent as retry-after-ms (as OpenAI does), for waits under a second
    hold_s: float = 30.0  # how long "timeout" and "stall" hold a connection before closing it
    stall_chunks: int = 3

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULTS)
        if unknown:
            raise ConfigError(f"unknown fault(s) {sorted(unknown)}: known are {', '.join(FAULTS)}")
        if any(r < 0 for r in self.rates.values()) or sum(self.rates.values()) > 1 + 1e-9:
            raise ConfigError(f"fault rates must be ≥ 0 and add up to at most 1 (got {self.rates})")


@dataclass(frozen=True)
class Decision:
    n: int
    outcome: str
    latency_ms: float


def decide(config: ChaosConfig, n: int) -> Decision:
    """The fate of the Nth chat request (0-based): a pure function of the seed and N, whatever came before."""
    rng = random.Random(f"{config.seed}:{n}")  # str seeds hash with sha512: stable across runs and platforms
    draw = rng.random()
    latency = config.latency.draw(rng)
    edge = 0.0
    for fault in FAULTS:
        edge += config.rates.get(fault, 0.0)
        if draw < edge:
            return Decision(n, fault, latency)
    return Decision(n, "ok", latency)


class ChaosServer:
    """The server on its own event loop (``start``/``close``), or in a background thread (``running``)."""

    def __init__(self, config: ChaosConfig, port: int = 0, host: str = HOST) -> None:
        if host not in (HOST, "localhost"):
            raise ConfigError(f"the chaos server binds to {HOST} only, not {host!r}")
        self.config = config
        self.port = port
        self.outcomes: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._next = 0
        self._started = time.monotonic()
        self._per_tick: Counter[int] = Counter()  # sparse: an idle server keeps nothing
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return {
            "chat_requests": self._next,
            "outcomes": {o: self.outcomes[o] for o in OUTCOMES},
            "paths": dict(self.paths),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "tick_s": TICK_S,
            "per_tick": {str(tick): count for tick, count in sorted(self._per_tick.items())},
            "seed": self.config.seed,
        }

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, HOST, self.port, backlog=1024)
        self._started = time.monotonic()
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            # 3.11's wait_closed does not wait for open connections: held ones ("timeout", "stall") are ended here
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            # one more loop pass: the closed transports' connection_lost callbacks release sockets
            await asyncio.sleep(0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while (request := await read_request(reader)) is not None:
                if not await self._serve(request, writer) or not request.keep_alive:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server is closing: nothing to answer
        finally:
            self._tasks.discard(task)
            writer.close()  # after a "reset", SO_LINGER 0 turns this close into an RST

    async def _serve(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end (a fault that breaks or holds it)."""
        self.paths[f"{request.method} {request.path}"] += 1
        if request.method == "GET" and request.path in ("/health", "/v1/health"):
            writer.write(response(200, b'{"status": "ok"}'))
        elif request.method == "GET" and request.path == "/v1/models":
            models = {"object": "list", "data": [{"id": "chaos-model", "object": "model", "owned_by": "promptvcr"}]}
            writer.write(response(200, json.dumps(models).encode()))
        elif request.method == "GET" and request.path == "/stats":
            writer.write(response(200, json.dumps(self.stats()).encode()))
        elif request.path == "/v1/chat/completions":
            if request.method != "POST":
                writer.write(response(405, b'{"error": {"message": "POST only"}}'))
            else:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    return await self._chat(request, writer)
                finally:
                    self.in_flight -= 1
        else:
            writer.write(response(404, json.dumps({"error": {"message": f"no route {request.path}"}}).encode()))
        await writer.drain()
        return True

    async def _chat(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):  # the client's bug, not a drawn fault: it takes no N (counted in "paths")
            writer.write(response(400, b'{"error": {"message": "the body is not a JSON object"}}'))
            await writer.drain()
            return True
        decision = decide(self.config, self._next)
        self._next += 1
        self.outcomes[decision.outcome] += 1
        self._per_tick[int((time.monotonic() - self._started) / TICK_S)] += 1
        model, outcome, n = str(body.get("model") or "chaos-model"), decision.outcome, decision.n
        tags = {"x-chaos-request": str(n), "x-chaos-outcome": outcome}
        await asyncio.sleep(decision.latency_ms / 1000)
        if outcome == "reset":
            sock = writer.get_extra_info("socket")
            # SO_LINGER 0: closing sends RST instead of FIN, so the client sees "connection reset by peer"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if outcome == "timeout":
            await asyncio.sleep(self.config.hold_s)
            return False
        if outcome in ("429", "500", "503"):
            headers = tags | (self._retry_after() if outcome == "429" else {})
            kind = {"429": "rate_limit_exceeded", "500": "server_error", "503": "service_unavailable"}[outcome]
            error = {"error": {"message": f"chaos: injected {outcome}", "type": kind, "code": kind}}
            writer.write(response(int(outcome), json.dumps(error).encode(), headers))
        elif body.get("stream"):
            return await self._stream(writer, n, model, tags, stall=outcome == "stall")
        else:
            data = json.dumps(completion(n, model)).encode()
            if outcome == "truncated":
                data = data[: len(data) // 2]  # framed correctly: the body itself is cut, as by a broken proxy
            elif outcome == "malformed":
                data = data.replace(b'"choices": [', b"'choices': [{", 1)
            elif outcome == "stall":
                # the headers promise the whole body; half of it comes, then nothing
                writer.write(response(200, data[: len(data) // 2], tags, length=len(data)))
                await writer.drain()
                await asyncio.sleep(self.config.hold_s)
                return False
            writer.write(response(200, data, tags))
        await writer.drain()
        return True

    def _retry_after(self) -> dict[str, str]:
        headers = {"retry-after": str(self.config.retry_after_s)}
        if self.config.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.config.retry_after_ms)
        return headers

    async def _stream(
        self, writer: asyncio.StreamWriter, n: int, model: str, tags: dict[str, str], stall: bool
    ) -> bool:
        head = ["HTTP/1.1 200 OK", "content-type: text/event-stream", "transfer-encoding: chunked"]
        head += [f"{k}: {v}" for k, v in tags.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        events = stream_events(n, model)
        for event in events[: self.config.stall_chunks] if stall else events:
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
        if stall:
            await asyncio.sleep(self.config.hold_s)
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


@contextlib.contextmanager
def running(config: ChaosConfig, port: int = 0) -> Iterator[ChaosServer]:
    """The server on its own event loop in a daemon thread, for tests; closed (every connection too) on exit."""
    server = ChaosServer(config, port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except OSError as exc:
            failure.append(exc)
        ready.set()
        if not failure:
            loop.run_forever()
            loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=serve, name="chaos-server", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        thread.join()
        raise ConfigError(f"the chaos server could not listen on {HOST}:{port}: {failure[0]}")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptvcr chaos-server",
        description=(
            "An OpenAI-compatible test server on 127.0.0.1 with injected latency and faults, deterministic under a "
            f"seed. GET /stats counts the requests it received by outcome. {DISCLAIMER}"
        ),
    )
    parser.add_argument("--host", default=HOST, help=f"only {HOST} (or localhost) is accepted")
    parser.add_argument("--port", type=int, default=0, help="default: a free port, printed at start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latency",
        default="fixed:0",
        type=Latency.parse,
        help="fixed:MS, uniform:LOW:HIGH or lognormal:MEDIAN:P99, in milliseconds (default: fixed:0)",
    )
    for fault in FAULTS:
        parser.add_argument(f"--rate-{fault}", type=float, default=0.0, metavar="P", help=f"share of {fault} answers")
    parser.add_argument("--retry-after", type=int, default=1, metavar="S", help="Retry-After of a 429 (seconds)")
    parser.add_argument(
        "--retry-after-ms", type=int, default=None, metavar="MS", help="also send retry-after-ms with a 429"
    )
    parser.add_argument(
        "--hold", type=float, default=30.0, metavar="S", help="how long timeout and stall hold a connection"
    )
    parser.add_argument("--stall-chunks", type=int, default=3, metavar="N", help="SSE chunks sent before a stall")
    return parser


def main(argv: list[str]) -> int:
    args = cliargs.parse(_parser(), argv)
    rates = {fault: getattr(args, f"rate_{fault}") for fault in FAULTS if getattr(args, f"rate_{fault}")}
    config = ChaosConfig(
        args.seed, args.latency, rates, args.retry_after, args.retry_after_ms, args.hold, args.stall_chunks
    )
    server = ChaosServer(config, args.port, args.host)

    async def serve() -> None:
        await server.start()
        # the first line is machine-read (bench/load.py): the base_url alone
        print(server.base_url, flush=True)
        print(f"chaos-server: seed {config.seed}, {DISCLAIMER} Ctrl-C stops it.", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    started = time.monotonic()
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        print(f"chaos-server: stopped after {time.monotonic() - started:.0f}s: {json.dumps(server.stats())}")
    return 0
