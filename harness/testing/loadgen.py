"""Open-loop load generation against an OpenAI-compatible endpoint: ``promptvcr load``.

(Named ``loadgen``, not ``load``: ``harness.load`` is the package façade's ``evals.load``, which a submodule of that
name would shadow.)

Request i is scheduled at start + i / rps whatever the answers do (open loop: a slow server does not slow the
offered load), up to a concurrency cap. The report gives the achieved rate, latency p50/p95/p99 (from the moment a
request was sent), final status counts, the 429 share of attempts, retries, and the generator's own scheduling lag:
how late each request was sent against its scheduled time — when that lag is large, the figures describe the load
generator (or the cap), not the server. With retries, a request keeps its concurrency slot while it waits to retry,
and its latency runs from its first attempt to its last answer.

Only loopback targets unless ``allow_remote``; bounded by MAX_DURATION_S and MAX_REQUESTS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import json
import math
import os
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from .. import _cliargs as cliargs
from ..errors import ConfigError
from ..load import _evals as evals

MAX_DURATION_S = 600.0
MAX_REQUESTS = 200_000
MAX_CONCURRENCY = 2_000
RETRYABLE = {429, 500, 502, 503, 504}
MAX_BACKOFF_S = 10.0
POOL_SIZE = 8  # connections per httpx2 client (see _Clients)


@dataclass(frozen=True)
class LoadConfig:
    base_url: str  # …/v1: requests go to base_url + /chat/completions
    body: dict[str, Any]
    rps: float
    duration_s: float
    concurrency: int = 100
    timeout_s: float = 30.0
    max_retries: int = 0
    allow_remote: bool = False
    api_key: str = "load-test"

    @property
    def requests(self) -> int:
        return math.ceil(self.rps * self.duration_s - 1e-6)  # --requests N sets duration N / rps: no float spill


@dataclass
class LoadReport:
    target_rps: float
    requests: int
    duration_s: float  # from the first scheduled send to the last answer
    send_window_s: float  # from the first scheduled send to the last actual send
    achieved_rps: float
    latency_ms: dict[str, float]
    lag_ms: dict[str, float]
    statuses: dict[str, int]
    attempts: int
    retries: int
    share_429: float
    concurrency: int
    max_in_flight: int
    cpu_ms_per_attempt: (
        float  # this process's CPU time over attempts: when it nears 1000 / rps, the client is the limit
    )
    planned: int = 0  # more than ``requests`` when Ctrl-C stopped the run early

    @property
    def stopped(self) -> bool:
        return self.planned > self.requests

    def text(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        lat, lag = self.latency_ms, self.lag_ms
        stopped = f" — stopped by Ctrl-C, {self.planned} planned" if self.stopped else ""
        sent = f"{self.requests} in {self.duration_s:.2f}s (sent over {self.send_window_s:.2f}s)"
        return "\n".join(
            [
                f"requests      {sent}{stopped}",
                f"achieved RPS  {self.achieved_rps:.1f} of {self.target_rps:g} "
                f"({self.achieved_rps / self.target_rps:.1%})",
                f"latency ms    p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}",
                f"sched. lag ms p50 {lag['p50']:.2f}  p99 {lag['p99']:.2f}  max {lag['max']:.2f}",
                f"statuses      {statuses}",
                f"attempts      {self.attempts} ({self.retries} retries), 429 share {self.share_429:.1%}",
                f"in flight     max {self.max_in_flight} (cap {self.concurrency}); "
                f"client CPU {self.cpu_ms_per_attempt:.2f} ms per attempt",
            ]
        )


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank) and max; zeros for no values."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


def check_target(base_url: str, allow_remote: bool) -> None:
    """Refuse a non-loopback host unless allowed; by the literal host only: no name is resolved here."""
    url = httpx2.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"not an http(s) URL: {base_url!r}")
    if allow_remote or url.host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(url.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"refusing to load {url.host}: only loopback (127.0.0.0/8, ::1, localhost) unless --allow-remote"
        )


def check_bounds(config: LoadConfig) -> None:
    if not 0 < config.duration_s <= MAX_DURATION_S:
        raise ConfigError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds, not {config.duration_s:g}")
    if config.rps <= 0:
        raise ConfigError(f"rps must be above 0, not {config.rps:g}")
    if config.requests > MAX_REQUESTS:
        raise ConfigError(f"{config.requests} requests (rps × duration) is over the cap of {MAX_REQUESTS}")
    if not 1 <= config.concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"concurrency must be in [1, {MAX_CONCURRENCY}], not {config.concurrency}")
    if config.max_retries < 0:
        raise ConfigError("max retries must be ≥ 0")


def body_from_eval(eval_target: Path, case_id: str, variant: str | None, root: Path) -> dict[str, Any]:
    """The request body of one case of an eval (its first variant unless one is named), as a run would send it."""
    ev = evals.load(eval_target, root)
    runs = [r for r in ev.runs if r.case.id == case_id and (variant is None or r.variant.name == variant)]
    if not runs:
        known = ", ".join(sorted({f"{r.case.id}[{r.variant.name}]" for r in ev.runs}))
        raise ConfigError(f"no case {case_id!r}{f' in variant {variant!r}' if variant else ''} in {ev.name}: {known}")
    return dict(runs[0].body)


@dataclass
class _State:
    started: int = 0
    done: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    attempts: int = 0
    retries: int = 0
    count_429: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    last_send: float = 0.0


def _retry_delay(response: httpx2.Response | None, attempt: int) -> float:
    header = response.headers.get("retry-after") if response is not None else None
    try:
        wait = float(header) if header else 0.1 * 2**attempt
    except ValueError:
        wait = 0.1 * 2**attempt
    return min(MAX_BACKOFF_S, wait)


class _Clients:
    """Connections split over several clients: httpcore's pool scans every connection for each queued request, so
    one pool of 100 costs ~3.5 ms CPU per request on this machine, pools of 25 ~1.9 ms, pools of 8 ~1.6 ms."""

    def __init__(self, clients: list[httpx2.AsyncClient]) -> None:
        self.clients = clients
        self.busy = [0] * len(clients)

    @contextlib.contextmanager
    def least_busy(self) -> Iterator[httpx2.AsyncClient]:
        # under the global cap, the least busy client always has a free connection: nothing queues in a pool
        index = self.busy.index(min(self.busy))
        self.busy[index] += 1
        try:
            yield self.clients[index]
        finally:
            self.busy[index] -= 1


async def _one(
    pool: _Clients, config: LoadConfig, payload: bytes, due: float, slots: asyncio.Semaphore, state: _State
) -> None:
    async with slots:
        sent = time.perf_counter()
        state.lags.append((sent - due) * 1000)
        state.started += 1
        state.last_send = sent
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        outcome = "cancelled"  # stays so only when the run is stopped while this request is in flight
        try:
            for attempt in range(config.max_retries + 1):
                state.attempts += 1
                response: httpx2.Response | None = None
                try:
                    with pool.least_busy() as client:
                        response = await client.post("/chat/completions", content=payload)
                    outcome = str(response.status_code)
                    if response.status_code == 200 and not config.body.get("stream"):
                        try:
                            json.loads(response.content)
                        except ValueError:
                            outcome = "bad_json"
                except httpx2.TimeoutException:
                    outcome = "timeout"
                except httpx2.TransportError:
                    outcome = "connection"
                except httpx2.HTTPError as exc:  # e.g. an undecodable body: counted, never a lost request
                    outcome = type(exc).__name__
                state.count_429 += outcome == "429"
                retryable = outcome in ("timeout", "connection") or (outcome.isdigit() and int(outcome) in RETRYABLE)
                if not retryable or attempt == config.max_retries:
                    break
                state.retries += 1
                await asyncio.sleep(_retry_delay(response, attempt))
        finally:
            state.latencies.append((time.perf_counter() - sent) * 1000)
            state.statuses[outcome] += 1
            state.in_flight -= 1
            state.done += 1


async def run_async(
    config: LoadConfig, progress: Callable[[str, bool], None] | None = None, partial: list[LoadReport] | None = None
) -> LoadReport:
    """The load run; ``partial`` receives the report as well, so that Ctrl-C (which asyncio turns into a cancel of
    this task, then a KeyboardInterrupt) still has one to print for what was sent."""
    check_target(config.base_url, config.allow_remote)
    check_bounds(config)
    payload = json.dumps(config.body).encode()
    cpu = time.process_time()
    total = config.requests
    state = _State()
    slots = asyncio.Semaphore(config.concurrency)
    shards = math.ceil(config.concurrency / POOL_SIZE)
    per_client = math.ceil(config.concurrency / shards)
    limits = httpx2.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    headers = {"content-type": "application/json", "authorization": f"Bearer {config.api_key}"}
    tls = ssl.create_default_context()  # one for all clients: loading the CA bundle costs ~45 ms each
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx2.AsyncClient(
                    base_url=config.base_url.rstrip("/"),
                    limits=limits,
                    verify=tls,
                    timeout=httpx2.Timeout(config.timeout_s),
                    headers=headers,
                    trust_env=False,  # a proxy from the environment would put a hop between the load and the target
                )
            )
            for _ in range(shards)
        ]
        pool = _Clients(clients)
        tasks: set[asyncio.Task[None]] = set()
        # what is alive now (imports, pandas…) leaves the collector's view: a full collection over it takes ~50 ms
        # here, which would be a 50 ms scheduling stall
        gc.freeze()
        start = time.perf_counter() + 0.05  # a head start so request 0 is not late by the setup
        ticker = asyncio.create_task(_report_progress(state, total, start, config, progress)) if progress else None
        try:
            for i in range(total):
                due = start + i / config.rps
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(_one(pool, config, payload, due, slots, state))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:  # Ctrl-C: what was sent so far is reported; answers in flight are dropped
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            gc.unfreeze()
        end = time.perf_counter()
    if progress:
        progress(_progress_line(state, total, start, end, config), True)
    window = max(state.last_send - start, 0.0) + 1 / config.rps  # n sends on schedule span exactly n / rps
    report = LoadReport(
        target_rps=config.rps,
        requests=state.started,
        duration_s=end - start,
        send_window_s=window,
        achieved_rps=state.started / window,
        latency_ms=percentiles(state.latencies),
        lag_ms=percentiles(state.lags),
        statuses=dict(state.statuses),
        attempts=state.attempts,
        retries=state.retries,
        share_429=state.count_429 / state.attempts if state.attempts else 0.0,
        concurrency=config.concurrency,
        max_in_flight=state.max_in_flight,
        cpu_ms_per_attempt=(time.process_time() - cpu) * 1000 / max(1, state.attempts),
        planned=total,
    )
    if partial is not None:
        partial.append(report)
    return report


def _progress_line(state: _State, total: int, start: float, now: float, config: LoadConfig) -> str:
    elapsed = max(1e-9, now - start)
    errors = sum(v for k, v in state.statuses.items() if k != "200")
    lag = percentiles(state.lags[-2000:])["p99"]  # recent: a lag spike shows while it happens
    return (
        f"load: {elapsed:5.1f}s/{config.duration_s:g}s  sent {state.started}/{total}  done {state.done}  "
        f"in flight {state.in_flight}  {state.started / elapsed:6.1f} rps  errors {errors}  lag p99 {lag:.1f} ms"
    )


async def _report_progress(
    state: _State, total: int, start: float, config: LoadConfig, progress: Callable[[str, bool], None]
) -> None:
    while True:
        await asyncio.sleep(0.5)
        progress(_progress_line(state, total, start, time.perf_counter(), config), False)


def run(config: LoadConfig, progress: Callable[[str, bool], None] | None = None) -> LoadReport:
    """The load run's report; after Ctrl-C, the report of what was sent until then."""
    partial: list[LoadReport] = []
    try:
        return asyncio.run(run_async(config, progress, partial))
    except KeyboardInterrupt:
        if partial:
            return partial[0]
        raise


def _printer(stream: Any) -> Callable[[str, bool], None]:
    """In place on a TTY (every 0.5 s); otherwise a plain line every 5 s, so logs stay readable."""
    tty = stream.isatty()
    last = [0.0]

    def show(line: str, final: bool) -> None:
        if tty:
            stream.write(f"\r\x1b[K{line}" + ("\n" if final else ""))
        elif final or time.monotonic() - last[0] >= 5.0:
            last[0] = time.monotonic()
            stream.write(line + "\n")
        stream.flush()

    return show


def parser(prog: str = "promptvcr load") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Open-loop load against an OpenAI-compatible endpoint: requests are sent on a fixed schedule "
            "(target RPS) whatever the answers do, up to a concurrency cap. Loopback targets only unless "
            f"--allow-remote; at most {MAX_DURATION_S:g} s and {MAX_REQUESTS} requests."
        ),
    )
    p.add_argument("base_url", metavar="BASE_URL", help="e.g. http://127.0.0.1:8765/v1 (the chaos server prints it)")
    p.add_argument("--rps", type=float, required=True, help="target requests per second")
    p.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds of load (default 10)")
    p.add_argument("--requests", type=int, metavar="N", help="send N requests (duration becomes N / rps)")
    p.add_argument("--concurrency", type=int, default=100, help="max requests in flight (default 100)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-attempt timeout (default 30)")
    p.add_argument("--max-retries", type=int, default=0, help="retries of 429/5xx/timeout/connection (default 0)")
    p.add_argument("--body", type=Path, metavar="FILE", help="the request body (JSON) to send")
    p.add_argument("--eval", metavar="NAME", help="take the body from a case of this eval (with --case)")
    p.add_argument("--case", metavar="ID")
    p.add_argument("--variant", metavar="NAME", help="the eval's variant (default: its first)")
    p.add_argument("--model", help="override the body's model")
    p.add_argument("--api-key-env", metavar="VAR", help="send $VAR as the bearer key (default: a dummy key)")
    p.add_argument("--allow-remote", action="store_true", help="allow a target that is not this machine")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    return p


def _no_constant(name: str) -> Any:
    """JSON has no NaN or Infinity (Python's json reads them): a body that has one is refused, not sent."""
    raise ValueError(f"{name} is not a JSON number")


def config_from_args(args: argparse.Namespace, root: Path, resolve: Callable[[str, Path], Path]) -> LoadConfig:
    check_target(args.base_url, args.allow_remote)  # first: a refused target costs no file reading either
    if bool(args.body) == bool(args.eval) or bool(args.eval) != bool(args.case):
        raise ConfigError("give either --body FILE or --eval NAME --case ID")
    if args.body:
        try:
            body = json.loads(args.body.read_text(encoding="utf-8"), parse_constant=_no_constant)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--body {args.body}: {exc}") from exc
        if not isinstance(body, dict):
            raise ConfigError(f"--body {args.body}: not a JSON object")
    else:
        body = body_from_eval(resolve(args.eval, root), args.case, args.variant, root)
    if args.model:
        body["model"] = args.model
    key = os.environ.get(args.api_key_env, "") if args.api_key_env else "load-test"
    if args.api_key_env and not key:
        raise ConfigError(f"{args.api_key_env} is not set")
    if args.requests is not None and args.requests <= 0:
        raise ConfigError("--requests must be above 0")
    duration = args.requests / args.rps if args.requests and args.rps > 0 else args.duration
    return LoadConfig(
        args.base_url,
        body,
        args.rps,
        duration,
        args.concurrency,
        args.timeout,
        args.max_retries,
        args.allow_remote,
        key,
    )


def main(argv: list[str], root: Path, resolve: Callable[[str, Path], Path]) -> int:
    args = cliargs.parse(parser(), argv)
    config = config_from_args(args, root, resolve)
    report = run(config, _printer(sys.stderr))
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return 130 if report.stopped else 0  # the shell's code for a run ended by Ctrl-C
