"""harness.run._limits with a fake clock (the pace, the headers it learns from, 429 pauses, retry limits, slots), and
two runs against the chaos server that check concurrency and pace from the server's own counts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from harness.load._limits import Limits, Rate
from harness.run import _limits as limits
from harness.run._limits import Pace, Pacer
from harness.run._row import ErrorKind
from harness.testing import chaos
from tests import evalproject as ep


class FakeTime:
    """A clock that only moves when slept on; shared by threads, it records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def gate(fake: FakeTime, concurrency: int = 4, **limit: Any) -> Pacer:
    return Pacer(Limits(**limit), concurrency, clock=fake.clock, sleep=fake.sleep)


def past_the_first_request(g: Pacer) -> Pacer:
    """The first request to an endpoint goes alone (see the probe test); tests of many threads start after it."""
    with g.slot("first", 0):
        pass
    return g


def send_times(g: Pacer, fake: FakeTime, n: int, model: str = "m", tokens: float = 1.0) -> list[float]:
    """When each of ``n`` requests, sent one after the other, left (in fake seconds)."""
    times = []
    for _ in range(n):
        with g.slot(model, tokens):
            times.append(fake.now)
    return times


# ---------------------------------------------------------------------------------------------------- pace


def test_rpm_pace_allows_one_second_of_burst_then_one_interval_apart() -> None:
    fake = FakeTime()
    times = send_times(gate(fake, rate=Rate(rpm=60)), fake, 6)
    assert times == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]


def test_pace_books_ahead_for_requests_that_arrive_together() -> None:
    pace = Pace(120)  # one every 0.5 s
    assert [pace.book(1, now=0.0) for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]
    assert pace.book(1, now=10.0) == 0.0  # idle time is not saved up beyond the burst


def test_tpm_pace_counts_tokens_and_a_big_request_waits_its_turn() -> None:
    fake = FakeTime()
    # 6,000 tokens/min = 100 a second: a 250-token request is worth 2.5 s, more than the one-second burst
    times = send_times(gate(fake, rate=Rate(tpm=6000)), fake, 4, tokens=250)
    assert times == [0.0, 1.5, 4.0, 6.5]


def test_the_slower_of_rpm_and_tpm_sets_the_wait() -> None:
    fake = FakeTime()
    times = send_times(gate(fake, rate=Rate(rpm=600, tpm=600)), fake, 3, tokens=20)  # tpm: 2 s a request
    assert times == [0.0, 1.0, 3.0]


def test_each_model_has_its_own_pace() -> None:
    fake = FakeTime()
    g = gate(fake, rate=Rate(rpm=60), models=(("fast", Rate(rpm=6000)),))
    assert send_times(g, fake, 4, model="fast") == [0.0] * 4  # 100/s: within the burst
    assert send_times(g, fake, 3, model="slow") == [0.0, 0.0, 1.0]  # the eval-wide rpm


def test_no_limits_no_waiting() -> None:
    fake = FakeTime()
    assert send_times(gate(fake), fake, 50) == [0.0] * 50
    assert fake.sleeps == []


# ---------------------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1.5", 1.5), ("1h2m3s", 3723.0), ("0.5s", 0.5), ("-3", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert limits.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s", "1s garbage", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_parse_duration_refuses_what_is_not_one(text: str) -> None:
    assert limits.parse_duration(text) is None


def test_retry_after_prefers_milliseconds() -> None:
    assert limits.retry_after({"retry-after-ms": "20", "retry-after": "1"}) == pytest.approx(0.02)
    assert limits.retry_after({"retry-after": "3"}) == 3.0
    assert limits.retry_after({"retry-after-ms": "bad", "retry-after": "2"}) == 2.0
    assert limits.retry_after({}) is None


# ---------------------------------------------------------------------------------------------------- learning


def test_learn_lowers_the_pace_to_the_announced_limit_never_raises_it() -> None:
    fake = FakeTime()
    g = gate(fake, rate=Rate(rpm=120))
    assert send_times(g, fake, 1) == [0.0]
    g.learn("m", {"x-ratelimit-limit-requests": "60"})
    assert send_times(g, fake, 3) == [0.0, 0.5, 1.5]  # at 120/min they would have left at 0, 0 and 0.5
    g.learn("m", {"x-ratelimit-limit-requests": "6000"})
    assert send_times(g, fake, 2) == [2.5, 3.5]


def test_learn_sets_a_pace_where_the_eval_has_none() -> None:
    fake = FakeTime()
    g = gate(fake)
    g.learn("m", {"x-ratelimit-limit-tokens": "600"})  # 10 tokens a second
    assert send_times(g, fake, 3, tokens=20) == [0.0, 1.0, 3.0]
    assert send_times(g, fake, 2, model="other", tokens=20) == [3.0, 3.0]  # learned for "m" only


@pytest.mark.parametrize("unit", ["requests", "tokens"])
def test_nothing_remaining_pauses_the_model_until_the_reset(unit: str) -> None:
    fake = FakeTime()
    g = gate(fake)
    g.learn("m", {f"x-ratelimit-remaining-{unit}": "0", f"x-ratelimit-reset-{unit}": "6m0s"})
    assert send_times(g, fake, 1) == [360.0]
    assert send_times(g, fake, 1, model="other") == [360.0]  # only the clock moved: "other" did not wait
    assert fake.sleeps == [360.0]


def test_remaining_above_zero_does_not_pause() -> None:
    fake = FakeTime()
    g = gate(fake)
    g.learn("m", {"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "1s"})
    assert send_times(g, fake, 1) == [0.0]


# ---------------------------------------------------------------------------------------------------- 429 and retries


class _Slots:
    """The gate's semaphore, telling when a thread has booked its pace and starts waiting for a slot."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self.acquiring = threading.Event()

    def acquire(self) -> bool:
        self.acquiring.set()
        return self._slots.acquire()

    def release(self) -> None:
        self._slots.release()


def test_a_429_pauses_the_model_for_every_thread_even_one_already_waiting_for_a_slot() -> None:
    fake = FakeTime()
    g = past_the_first_request(gate(fake, concurrency=1))
    slots = g._slots = _Slots(g._slots)  # type: ignore[assignment]
    sent_at: list[float] = []

    def other_thread() -> None:
        with g.slot("m", 1):  # booked with no pause, then blocked on the one slot the first thread holds
            sent_at.append(fake.now)

    thread = threading.Thread(target=other_thread)
    with g.slot("m", 1):
        slots.acquiring.clear()
        thread.start()
        assert slots.acquiring.wait(5)
        assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 2.0, attempt=0, max_retries=2) == 2.0
    thread.join(5)
    assert sent_at == [2.0]  # it looked at the pause again once it had the slot
    assert send_times(g, fake, 1, model="other") == [2.0]  # another model was never paused


def test_a_429_pauses_every_thread_once_per_window_later_ones_wait_for_themselves() -> None:
    fake = FakeTime()
    g = past_the_first_request(gate(fake))
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 1.0, attempt=0, max_retries=2) == 1.0
    fake.sleep(0.25)
    # one more while the pause runs (its request was in flight): it waits its own Retry-After, not the pause's rest
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 1.0, attempt=0, max_retries=2) == 1.0
    # one asking for less than is left of the pause waits for the pause: nobody goes before it ends
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 0.25, attempt=0, max_retries=2) == 0.75
    assert send_times(g, fake, 1) == [1.0]  # the first 429: everyone waited its Retry-After
    # another one in the same window: its own sender is told to wait, the others are not paused again
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 1.0, attempt=0, max_retries=2) == 1.0
    assert send_times(g, fake, 1) == [1.0]
    fake.sleep(limits.PAUSE_WINDOW_S)  # a new window: the next 429 pauses everyone again
    start = fake.now
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 2.0, attempt=0, max_retries=2) == 2.0
    assert send_times(g, fake, 1) == [start + 2.0]


def test_retry_wait_without_retry_after_backs_off_exponentially_with_jitter() -> None:
    g = gate(FakeTime())
    for attempt in range(6):
        wait = g.retry_wait("m", ErrorKind.SERVER_ERROR, None, attempt, max_retries=10)
        full = min(limits.BACKOFF_MAX_S, limits.BACKOFF_BASE_S * 2**attempt)
        assert wait is not None and full / 2 <= wait <= full


@pytest.mark.parametrize(
    "error", [ErrorKind.BAD_RESPONSE, ErrorKind.REFUSED_BY_ENDPOINT, ErrorKind.MISSING_RECORDING, None]
)
def test_what_retrying_cannot_fix_is_not_retried(error: ErrorKind | None) -> None:
    assert gate(FakeTime()).retry_wait("m", error, 0.0, 0, max_retries=5) is None


def test_retry_wait_gives_up_past_max_retries() -> None:
    g = gate(FakeTime())
    assert g.retry_wait("m", ErrorKind.TIMEOUT, 0.0, 1, max_retries=2) == 0.0
    assert g.retry_wait("m", ErrorKind.TIMEOUT, 0.0, 2, max_retries=2) is None
    # a 429 says "later", not "broken": it has attempts of its own, beyond max_retries
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 0.0, 2, max_retries=2) == 0.0
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 0.0, limits.MAX_RATE_LIMITED_ATTEMPTS, max_retries=2) is None


def test_retry_wait_gives_up_past_the_retry_time_cap() -> None:
    fake = FakeTime()
    g = gate(fake, max_retry_time_s=1.0)
    g.wait_to_retry(0.75)
    assert g.retry_time_s() == 0.75
    assert g.retry_wait("m", ErrorKind.SERVER_ERROR, 0.25, 0, max_retries=5) == 0.25
    assert g.retry_wait("m", ErrorKind.SERVER_ERROR, 0.5, 0, max_retries=5) is None
    assert g.retry_wait("m", ErrorKind.RATE_LIMITED, 0.5, 0, max_retries=5) is None
    assert send_times(g, fake, 1) == [0.75]  # a 429 that is not retried does not pause the model


def test_threads_waiting_together_count_their_retry_time_once() -> None:
    fake = FakeTime()
    g = gate(fake)
    with g.retrying(), g.retrying():  # two threads waiting at the same time
        fake.sleep(3.0)
    assert g.retry_time_s() == 3.0 and g.retries == 2


# ---------------------------------------------------------------------------------------------------- slots


def test_the_first_request_to_an_endpoint_goes_alone() -> None:
    g = Pacer(Limits(), 8)
    first_in = threading.Event()
    let_go = threading.Event()
    inside: list[str] = []

    def sender(name: str) -> None:
        with g.slot("m", 1):
            inside.append(name)
            if name == "first":
                first_in.set()
                let_go.wait(10)

    first = threading.Thread(target=sender, args=("first",))
    first.start()
    assert first_in.wait(5)
    others = [threading.Thread(target=sender, args=(f"o{n}",)) for n in range(5)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(0.2)
    assert inside == ["first"]  # nobody else went while the first request had no answer
    let_go.set()
    for thread in [first, *others]:
        thread.join(5)
    assert sorted(inside) == ["first", "o0", "o1", "o2", "o3", "o4"]


def test_concurrency_slots_never_exceed_the_limit() -> None:
    g = past_the_first_request(Pacer(Limits(), 3))
    full = threading.Barrier(3, timeout=10)  # a slot is held until three are held at once: the limit is reached
    lock = threading.Lock()
    inside = [0]
    most: list[int] = []

    def worker() -> None:
        with g.slot("m", 1):
            with lock:
                inside[0] += 1
                most.append(inside[0])
            full.wait()
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(most) == 21 and max(most) == 3 and not full.broken


# ---------------------------------------------------------------------------------------------------- end to end


def _project(root: Path, base_url: str, cases: int, samples: int, **limit: Any) -> None:
    ep.init_project(root)
    case_file = ep.write_cases(root, "paced", [ep.json_case(f"c{i}") for i in range(cases)])
    ep.write_eval(
        root,
        "paced",
        base_url=base_url,
        cases=[case_file],
        variants={"v": {"model": "chaos-model"}},
        samples=samples,
        limits=limit,
    )


def _record(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest("evals", "-p", "no:cacheprovider", "--record-mode", "once")


def test_a_run_never_has_more_requests_in_flight_than_its_concurrency(pytester: pytest.Pytester) -> None:
    with chaos.running(chaos.ChaosConfig(latency=chaos.Latency.parse("fixed:20"))) as server:
        _project(pytester.path, server.base_url, cases=4, samples=10, concurrency=3)
        result = _record(pytester)
        stats = server.stats()
    assert result.ret == pytest.ExitCode.OK
    assert stats["chat_requests"] == 40
    assert stats["max_in_flight"] == 3  # never more, and the samples of different cases did share the slots


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_run_keeps_to_its_rpm_by_the_servers_count(pytester: pytest.Pytester) -> None:
    rpm, requests = 600, 60  # 10 a second, one second of burst
    with chaos.running(chaos.ChaosConfig(latency=chaos.Latency.parse("fixed:2"))) as server:
        _project(pytester.path, server.base_url, cases=3, samples=requests // 3, concurrency=16, rpm=rpm)
        result = _record(pytester)
        stats = server.stats()
    assert result.ret == pytest.ExitCode.OK
    assert stats["chat_requests"] == requests
    ticks = {int(t): n for t, n in stats["per_tick"].items()}
    window = round(1.0 / stats["tick_s"])  # a second's worth of ticks
    busiest = max(sum(ticks.get(t + i, 0) for i in range(window)) for t in ticks)
    # any second holds at most its own share plus the burst (and the first request): 21; sent unpaced, all 60 of
    # these tiny requests arrive within one second. Slack of 3 for threads that wake late and arrive together.
    allowed = (1 + limits.BURST_S) * rpm / 60 + 1
    assert busiest <= allowed + 3, ticks


# ---------------------------------------------------------------------------------------------------- threads, sockets


def test_the_pool_has_spare_threads_beyond_the_slots_but_one_slot_keeps_one_thread() -> None:
    from harness.run import _client as client

    connections = client.Connections(replay=False, local_url=lambda: "")
    assert connections.workers() == 1
    connections._pacers["one"] = Pacer(Limits(), 1)
    assert connections.workers() == 1  # one at a time, in order
    connections._pacers["many"] = Pacer(Limits(), 50)
    assert connections.workers() == 1 + 50 + 13
    assert connections.workers(spare=False) == 1 + 50  # a budgeted run: a waiting thread would hold budget
