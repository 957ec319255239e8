"""Open-loop load generation against an OpenAI-compatible endpoint: ``promptvcr load``.

(Named ``loadgen``, not ``load``: ``harness.load`` is the package façade's ``evals.load``, which a submodule of that
name would shadow.)

Request i is scheduled at start + i / rps whatever the answers do (open loop: a slow server does not slow the
offered load), up to a concurrency cap. The report gives the achieved rate, latency p50/p95/p99 (from the moment a
request was sent), final status counts, the 429 share of attempts, retries, and the generator's own scheduling lag:
how late each request was sent against its scheduled time — when that lag is large, the figures describe the load
generator (or the cap), not the server. With retries, a request keeps its concurrency slot while it waits to retry,
and its latency runs from its first attempt to its last answer.

Only loopback targets unless ``allow_remote``; bounded by MAX_DURATION_S and MAX_REQUESTS. This module sends; what
is counted and how the report's figures are made from it is in ``_loadgen_report``.
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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from .. import _cliargs as cliargs
from ..errors import ConfigError
from ..load import _evals as evals
from ._loadgen_report import LoadReport as LoadReport
from ._loadgen_report import Tally, progress_line, report_of
from ._loadgen_report import percentiles as percentiles

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
    pool: _Clients, config: LoadConfig, payload: bytes, due: float, slots: asyncio.Semaphore, tally: Tally
) -> None:
    async with slots:
        sent = time.perf_counter()
        tally.lags.append((sent - due) * 1000)
        tally.started += 1
        tally.last_send = sent
        tally.in_flight += 1
        tally.max_in_flight = max(tally.max_in_flight, tally.in_flight)
        outcome = "cancelled"  # stays so only when the run is stopped while this request is in flight
        try:
            for attempt in range(config.max_retries + 1):
                tally.attempts += 1
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
                tally.count_429 += outcome == "429"
                retryable = outcome in ("timeout", "connection") or (outcome.isdigit() and int(outcome) in RETRYABLE)
                if not retryable or attempt == config.max_retries:
                    break
                tally.retries += 1
                await asyncio.sleep(_retry_delay(response, attempt))
        finally:
            tally.latencies.append((time.perf_counter() - sent) * 1000)
            tally.statuses[outcome] += 1
            tally.in_flight -= 1
            tally.done += 1


def _clients(config: LoadConfig) -> Iterator[httpx2.AsyncClient]:
    """The clients the connections are split over (see ``_Clients``), made one by one as the caller opens them."""
    shards = math.ceil(config.concurrency / POOL_SIZE)
    per_client = math.ceil(config.concurrency / shards)
    limits = httpx2.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    headers = {"content-type": "application/json", "authorization": f"Bearer {config.api_key}"}
    tls = ssl.create_default_context()  # one for all clients: loading the CA bundle costs ~45 ms each
    for _ in range(shards):
        yield httpx2.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            limits=limits,
            verify=tls,
            timeout=httpx2.Timeout(config.timeout_s),
            headers=headers,
            trust_env=False,  # a proxy from the environment would put a hop between the load and the target
        )


async def _send_all(
    pool: _Clients, config: LoadConfig, payload: bytes, tally: Tally, progress: Callable[[str, bool], None] | None
) -> tuple[float, float]:
    """Request i sent at start + i / rps, whatever the answers do (open loop); the run's ``(start, end)``."""
    total = config.requests
    slots = asyncio.Semaphore(config.concurrency)
    tasks: set[asyncio.Task[None]] = set()
    # what is alive now (imports, pandas…) leaves the collector's view: a full collection over it takes ~50 ms
    # here, which would be a 50 ms scheduling stall
    gc.freeze()
    start = time.perf_counter() + 0.05  # a head start so request 0 is not late by the setup
    ticker = asyncio.create_task(_report_progress(tally, total, start, config, progress)) if progress else None
    try:
        for i in range(total):
            due = start + i / config.rps
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_one(pool, config, payload, due, slots, tally))
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
    return start, time.perf_counter()


async def run_async(
    config: LoadConfig, progress: Callable[[str, bool], None] | None = None, partial: list[LoadReport] | None = None
) -> LoadReport:
    """The load run; ``partial`` receives the report as well, so that Ctrl-C (which asyncio turns into a cancel of
    this task, then a KeyboardInterrupt) still has one to print for what was sent."""
    check_target(config.base_url, config.allow_remote)
    check_bounds(config)
    payload = json.dumps(config.body).encode()
    cpu = time.process_time()
    tally = Tally()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client) for client in _clients(config)]
        start, end = await _send_all(_Clients(clients), config, payload, tally, progress)
    if progress:
        progress(progress_line(tally, config.requests, start, end, config.duration_s), True)
    report = report_of(tally, config.rps, config.concurrency, start, end, time.process_time() - cpu, config.requests)
    if partial is not None:
        partial.append(report)
    return report


async def _report_progress(
    tally: Tally, total: int, start: float, config: LoadConfig, progress: Callable[[str, bool], None]
) -> None:
    while True:
        await asyncio.sleep(0.5)
        progress(progress_line(tally, total, start, time.perf_counter(), config.duration_s), False)


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
