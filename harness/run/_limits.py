"""How fast an endpoint may be called: requests in flight, requests and tokens per minute, and when to retry.

One ``Pacer`` per endpoint (base URL) for the whole session, shared by every thread that sends to it:

- at most ``concurrency`` requests in flight;
- per model, a pace in requests/min and tokens/min (configured in the eval's ``limits``, and lowered to what the
  endpoint announces in ``x-ratelimit-limit-*``; ``x-ratelimit-remaining-* == 0`` pauses the model until the
  matching ``x-ratelimit-reset-*``);
- a 429 pauses the model for every thread (``Retry-After`` / ``retry-after-ms`` honoured, else exponential backoff
  with jitter) once per window (``PAUSE_WINDOW_S``, the minute OpenAI counts its limits in): a later 429 of the same
  window waits for itself only (its own ``Retry-After``, or what is left of the window's pause if longer), so
  scattered 429s do not idle the endpoint a pause at a time (46 of them at Retry-After 1 s cost 19 s of a 4 s
  run); the wall-clock time the endpoint spends waiting to retry is capped (``max_retry_time_s``): past it,
  failures are final instead of retried, so a run in a rate-limit storm ends instead of hanging.

The pace is the generic cell rate algorithm: each request books the interval it is worth after the previous
booking, with one second of burst allowed; a request bigger than a second's worth of tokens waits its turn rather
than never fitting.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from ..load._limits import Limits
from ._row import ErrorKind

MAX_RATE_LIMITED_ATTEMPTS = 10  # beyond max_retries: a 429 says "later", not "broken"
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
BURST_S = 1.0
PAUSE_WINDOW_S = 60.0  # a 429 pauses every thread at most once in this long (see the module doc)


class Pace:
    """``per_minute`` units a minute, booked ahead (generic cell rate algorithm)."""

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self._booked = 0.0  # when the capacity booked so far is used up

    def book(self, amount: float, now: float) -> float:
        """Book ``amount`` units; the seconds to wait before using them."""
        start = max(now, self._booked - BURST_S)
        self._booked = max(self._booked, now) + amount * 60.0 / self.per_minute
        return start - now


def parse_duration(text: str) -> float | None:
    """``1s``, ``6m0s``, ``20ms``, ``1.5`` (seconds) → seconds; None when it isn't one."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """What the endpoint asks to wait, from ``retry-after-ms`` or ``retry-after`` (seconds)."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    return parse_duration(headers["retry-after"]) if "retry-after" in headers else None


class Pacer:
    """The pace one endpoint is sent at, for every thread of the session (an eval's quality gates are
    ``harness.load._evals.Gate``)."""

    def __init__(
        self,
        limits: Limits,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._probe = threading.Lock()
        self._answered = threading.Event()  # the endpoint's first request has ended
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._paces: dict[tuple[str, str], Pace] = {}
        self._paused_until: dict[str, float] = {}
        self._window_start: dict[str, float] = {}  # when a 429 last paused the model for every thread
        self._waiting = 0  # threads now waiting to retry
        self._waiting_since = 0.0
        self._retry_time_s = 0.0  # wall-clock time during which at least one thread waited to retry
        self.retries = 0

    # -- sending ---------------------------------------------------------------------------------------------------

    @contextmanager
    def slot(self, model: str, tokens: float) -> Iterator[None]:
        """Wait for the model's pace (and any pause), then hold one of the endpoint's concurrency slots.

        The first request to an endpoint goes alone (the others wait for its answer): a dead endpoint then costs
        one attempt, not one per slot, and its rate-limit headers are known before the others go.
        """
        probing = False
        if not self._answered.is_set():
            self._probe.acquire()
            probing = not self._answered.is_set()
            if not probing:
                self._probe.release()
        try:
            self._sleep_for(self._book(model, tokens))  # booked after the first answer: its headers may lower the pace
            while True:
                self._slots.acquire()
                pause = self._pause_left(model)  # a 429 may have paused the model while this one waited
                if pause <= 0:
                    break
                self._slots.release()  # a paused model does not keep the endpoint's slots from other models
                self._sleep_for(pause)
            try:
                yield
            finally:
                self._slots.release()
        finally:
            if probing:
                self._answered.set()
                self._probe.release()

    def _book(self, model: str, tokens: float) -> float:
        now = self._clock()
        rate = self.limits.rate_for(model)
        with self._lock:
            wait = max(0.0, self._paused_until.get(model, 0.0) - now)
            for unit, limit, amount in (("requests", rate.rpm, 1.0), ("tokens", rate.tpm, tokens)):
                pace = self._paces.get((model, unit))
                if pace is None and limit:
                    pace = self._paces[(model, unit)] = Pace(limit)
                if pace is not None:
                    wait = max(wait, pace.book(amount, now))
            return wait

    def _pause_left(self, model: str) -> float:
        with self._lock:
            return max(0.0, self._paused_until.get(model, 0.0) - self._clock())

    def _sleep_for(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    def pause(self, model: str, seconds: float) -> None:
        with self._lock:
            self._paused_until[model] = max(self._paused_until.get(model, 0.0), self._clock() + seconds)

    # -- learning from the endpoint's headers ----------------------------------------------------------------------

    def learn(self, model: str, headers: Mapping[str, str]) -> None:
        """Adopt the endpoint's announced limits when lower than ours; pause when it says nothing is left."""
        for unit in ("requests", "tokens"):
            limit = _number(headers.get(f"x-ratelimit-limit-{unit}"))
            if limit:
                with self._lock:
                    pace = self._paces.get((model, unit))
                    if pace is None:
                        self._paces[(model, unit)] = Pace(limit)
                    elif limit < pace.per_minute:
                        pace.per_minute = limit
            if _number(headers.get(f"x-ratelimit-remaining-{unit}")) == 0:
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{unit}", ""))
                if reset:
                    self.pause(model, reset)

    # -- retrying --------------------------------------------------------------------------------------------------

    def retry_wait(
        self, model: str, error: ErrorKind | None, after_s: float | None, attempt: int, max_retries: int
    ) -> float | None:
        """Seconds to wait before sending again, or None: not retryable, out of attempts, or out of retry time."""
        if error is None or not error.retryable:
            return None
        if attempt >= (MAX_RATE_LIMITED_ATTEMPTS if error == ErrorKind.RATE_LIMITED else max_retries):
            return None
        wait = after_s if after_s is not None else _backoff(attempt)
        if error == ErrorKind.RATE_LIMITED:
            return self._wait_for_429(model, wait)
        return None if self.retry_time_s() + wait > self.limits.max_retry_time_s else wait

    def _wait_for_429(self, model: str, wait: float) -> float | None:
        """The first 429 of a window pauses the model for every thread; a later one waits for itself: its own
        ``wait``, or what is left of the window's pause if that is longer (see the module doc). Looked at and set
        under one lock, so that two 429s arriving together open one window, not two."""
        with self._lock:
            now = self._clock()
            start = self._window_start.get(model)
            opens = start is None or now - start >= PAUSE_WINDOW_S
            paused_until = self._paused_until.get(model, 0.0)
            if not opens:
                wait = max(wait, paused_until - now)
            if self._retry_time_locked(now) + wait > self.limits.max_retry_time_s:
                return None
            if opens:
                self._window_start[model] = now
                self._paused_until[model] = max(paused_until, now + wait)
            return wait

    @contextmanager
    def retrying(self) -> Iterator[None]:
        """Count the time spent inside as retry time (once, however many threads wait together)."""
        with self._lock:
            if self._waiting == 0:
                self._waiting_since = self._clock()
            self._waiting += 1
            self.retries += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1
                if self._waiting == 0:
                    self._retry_time_s += self._clock() - self._waiting_since

    def retry_time_s(self) -> float:
        with self._lock:
            return self._retry_time_locked(self._clock())

    def _retry_time_locked(self, now: float) -> float:
        return self._retry_time_s + (now - self._waiting_since if self._waiting else 0.0)

    def wait_to_retry(self, seconds: float) -> None:
        with self.retrying():
            self._sleep_for(seconds)


def _backoff(attempt: int) -> float:
    full = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0**attempt)
    return full * (0.5 + random.random() / 2)  # jitter: threads that failed together don't come back together


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
