"""bench/ideal.py, the floor bench/runner.py holds a live run's span to: timelines worked out by hand."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import pytest

from harness.testing.chaos import ChaosConfig, Latency, decide

LATENCY = Latency.parse("fixed:100")


def _ideal() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ideal", Path(__file__).parent.parent / "bench" / "ideal.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ideal = _ideal()


def config_answering(*outcomes: str) -> ChaosConfig:
    """A chaos config (a seed found by search) whose first chat requests get exactly these outcomes."""
    for seed in itertools.count():
        config = ChaosConfig(seed=seed, latency=LATENCY, rates={"429": 0.1}, retry_after_s=1)
        if all(decide(config, n).outcome == o for n, o in enumerate(outcomes)):
            return config
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("calls", "concurrency", "waves"), [(1000, 50, 20), (7, 3, 3), (1, 5, 1), (0, 4, 0)])
def test_without_faults_the_floor_is_the_bound(calls: int, concurrency: int, waves: int) -> None:
    assert ideal.span(ChaosConfig(latency=LATENCY), calls, concurrency) == pytest.approx(waves * 0.1)


def test_the_first_429_pauses_every_sender() -> None:
    # 0.0: #0 #1 sent; 0.1: #0 a 429 (everyone paused to 1.1), #1 answered; 1.1: the retry #2 and fresh #3 sent;
    # 1.2: the last fresh #4 sent → 1.3. Without the pause, #2 #3 would have gone at 0.1 and the retry #4 at 1.1: 1.2
    assert ideal.span(config_answering("429", "ok", "ok", "ok", "ok"), 4, 2) == pytest.approx(1.3)


def test_a_later_429_waits_for_itself_while_the_others_go_on() -> None:
    # one slot: 0.1 #0 a 429 (pause to 1.1) → 1.1 its retry #1 → 1.2 #2 sent, 1.3 a 429 again: its retry may go at
    # 2.3; the 12 fresh requests left go meanwhile (1.3 … 2.3), then the retry, then the last fresh one: 2.6
    outcomes = ("429", "ok", "429", *["ok"] * 13)
    assert ideal.span(config_answering(*outcomes), 14, 1) == pytest.approx(2.6)
