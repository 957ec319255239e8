"""Progress of a live run: a status line every few seconds between pytest's own output.

Replays take a second or two and print nothing extra; a recording run of hundreds of calls says how far it is,
how many samples errored, what it has spent and when it should end. Samples end in worker threads (``sample``);
only the main thread writes (``tick``), between pytest's own lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._row import Outcome, Row


class Progress:
    def __init__(self, write: Callable[[str], None], every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._write = write
        self._every = every_s
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self.planned = 0
        self.done = 0
        self.errors = 0
        self.spent_usd = 0.0
        self._lock = threading.Lock()
        self._shown_done = -1

    def plan(self, samples: int) -> None:
        self.planned += samples

    def sample(self, row: Row) -> None:
        with self._lock:
            self.done += 1
            self.errors += row.outcome == Outcome.ERRORED
            self.spent_usd += row.cost_usd or 0.0

    def tick(self) -> None:
        """Write the status line if it is due: every few seconds, and once when every sample is done."""
        now = self._clock()
        with self._lock:
            finished = self.done == self.planned and self._shown_done != self.done
            if not finished and now - self._last < self._every:
                return
            self._last, self._shown_done = now, self.done
            line = self.line(now)
        self._write(line)

    def line(self, now: float) -> str:
        elapsed = now - self._start
        left = max(0, self.planned - self.done)
        eta = f", ETA {_duration(elapsed / self.done * left)}" if self.done and left else ""
        return (
            f"promptvcr: {self.done}/{self.planned} samples, {self.errors} errored, "
            f"${self.spent_usd:.4f} spent, {_duration(elapsed)} elapsed{eta}"
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
