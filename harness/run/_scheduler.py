"""Live runs send samples concurrently: a pool of threads, and one ``Job`` per case × variant.

Threads, not asyncio: the checks and the cassettes are plain functions, and a call spends its time waiting on the
network with the GIL released. Measured here (1,000 calls of 200 ms at concurrency 50, the client alone, CPU for
the 1,000): 50 threads on the SDK's sync client 4.2–4.3 s and 1.0–1.4 s, asyncio on ``AsyncOpenAI`` 4.8–5.1 s and
1.8–2.2 s, raw httpx2 in 50 threads 0.8 s, on ``AsyncClient`` 1.1 s, and ``http.client`` in 50 threads 0.25 s —
which is what a live call goes over now, past the SDK (``_client``, ``harness.record._network``). The whole live
run, collection, cassettes, checks, journal and reports included, costs 1.8–2.3 ms of CPU a call and 4.9–5.3 s
(`make bench-runner`; before issue 14: 3.1–4.2 ms and 5.3–5.5 s).

How many requests are in flight per endpoint, and how fast, is the endpoint's ``limits.Pacer``'s business; the pool
has spare threads beyond the slots (``_client.Connections.workers``), so that a sample being checked and journaled,
or waiting to retry a 429, does not leave a slot idle.

Without pytest-xdist the plugin starts every case's job as the run starts, in item order, so samples of
later cases fill the slots the earlier ones leave; each pytest item then waits for its own job. Under pytest-xdist
a worker only knows the item it was handed, so each item starts its own job and the workers run side by side.
The threads are daemons: Ctrl-C ends the run without waiting for calls in flight (an answer that arrives before
the process ends is logged to its cassette all the same).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from . import _client as client
from ._row import ErrorKind, Row
from ._runner import RunningCase, finish
from ._scoring import errored

Task = Callable[[], None]
POLL_S = 0.2  # how often a waiting item wakes up: Ctrl-C is only seen by the main thread between waits


class Pool:
    def __init__(self, workers: Callable[[], int]) -> None:
        self._workers = workers  # asked when a task is submitted: endpoints (and their pacers) appear as cases open
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def submit(self, task: Task) -> None:
        with self._lock:
            while len(self._threads) < self._workers():
                thread = threading.Thread(target=self._work, name=f"promptvcr-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._tasks.put(task)

    def _work(self) -> None:
        while not self.stopped.is_set():
            task = self._tasks.get()
            if task is None or self.stopped.is_set():
                return
            task()

    def stop(self) -> None:
        """No task starts after this; those running finish (their calls are already paid for)."""
        self.stopped.set()
        with self._lock:
            for _ in self._threads:
                self._tasks.put(None)


class Job:
    """The pending samples of one case, run by the pool; ``rows`` waits for them (in the main thread)."""

    def __init__(self, case: RunningCase, pool: Pool) -> None:
        self.case = case
        self._pool = pool
        self._on_row = case.options.on_row
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        self._left = len(case.pending)
        self._opened = False
        self._failed: list[Row] | None = None
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.started = False

    def start(self) -> None:
        self.started = True
        if self.case.refusal is not None or not self.case.pending:
            for row in self.case.refusal or ():
                if self._on_row is not None:
                    self._on_row(row)
            try:
                self.case.settle()
            except Exception as exc:  # e.g. the cassette could not be written: raised in the item, as below
                self._error = exc
            self._done.set()
            return
        for sample in self.case.pending:
            self._pool.submit(lambda sample=sample: self._one(sample))  # type: ignore[misc]  # bind per sample

    def _one(self, sample: int) -> None:
        try:
            try:
                row = self._sample(sample)
            except Exception as exc:  # a bug of ours: the sample still ends, with a row that says so
                message = f"{type(exc).__name__}: {exc}"
                row = errored(self.case.run, sample, client.CallResult(None, None, ErrorKind.INTERNAL, message))
            if self._on_row is not None:  # before it counts as done: the item may end the moment the last one does
                self._on_row(row)
            with self._lock:
                self._rows.append(row)
                self._left -= 1
                last = self._left == 0
            if last:
                self.case.close()
        except BaseException as exc:  # e.g. the cassette could not be written: raised again in the main thread
            self._error = exc
            self._done.set()
        else:
            if last:
                self._done.set()

    def _sample(self, sample: int) -> Row:
        with self._lock:
            if not self._opened:
                self._opened = True
                self._failed = self.case.open()
        if self._failed is not None:
            return next(row for row in self._failed if row.sample == sample)
        return self.case.sample(sample)

    def rows(self, tick: Callable[[], None] | None = None) -> list[Row]:
        """Every sample's row, in order (judged when the case asks); ``tick`` runs while waiting (progress)."""
        if not self.started:
            self.start()
        if self.case.refusal is not None:
            return self.case.refusal
        while not self._done.wait(POLL_S):
            if tick is not None:
                tick()
        if self._error is not None:
            raise self._error
        with self._lock:
            rows = list(self._rows)
        return finish(self.case, rows)
