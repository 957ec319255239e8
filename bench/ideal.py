"""The span of an ideal runner against the chaos server: the floor a live run's span is compared to (bench/runner.py).

The chaos server decides the fate of its Nth chat request from the seed and N alone (``harness.testing.chaos
.decide``), so the answers a run will get are known before it starts. This replays them through a runner with no
overhead at all (a request is sent the instant a slot is free, an answer takes exactly its drawn latency) that
obeys the same rules as promptvcr's: at most ``concurrency`` in flight; the first 429 pauses every sender for its
Retry-After; a later 429 waits its own Retry-After before its retry, while the others go on; a waiting retry holds
no slot and goes before a fresh request. One rule of ours is left out, so the floor stays below what we can reach:
the endpoint's first request going alone.

Without faults this is the bound, calls × latency / concurrency. With 429s it adds the one pause and the tail no
runner can overlap: a 429 in the last wave of requests still has to wait its Retry-After and be sent again.
"""

from __future__ import annotations

import heapq

from harness.testing.chaos import ChaosConfig, decide


def span(config: ChaosConfig, calls: int, concurrency: int) -> float:
    """Seconds from the first request sent to the last answer received, for ``calls`` samples that all end well."""
    answers: list[tuple[float, int]] = []  # (when, request number) of the requests in flight
    retries: list[float] = []  # when each waiting retry may go
    fresh, sent, now, paused_until, paused = calls, 0, 0.0, 0.0, False
    while fresh or retries or answers:
        while len(answers) < concurrency and now >= paused_until:
            if retries and retries[0] <= now:
                heapq.heappop(retries)
            elif fresh:
                fresh -= 1
            else:
                break
            heapq.heappush(answers, (now + decide(config, sent).latency_ms / 1000, sent))
            sent += 1
        wakes = [answers[0][0]] if answers else []
        if len(answers) < concurrency:
            wakes += [max(paused_until, retries[0])] if retries else [paused_until] if fresh else []
        now = max(now, min(wakes))
        while answers and answers[0][0] <= now:
            _, n = heapq.heappop(answers)
            if decide(config, n).outcome == "429":
                heapq.heappush(retries, now + config.retry_after_s)
                if not paused:  # the first 429 of the window pauses everyone
                    paused, paused_until = True, now + config.retry_after_s
    return now
