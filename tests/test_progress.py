from __future__ import annotations

import pytest

from harness.run._progress import Progress
from harness.run._row import Outcome, Row
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI


def test_progress_line_every_interval_and_at_the_end() -> None:
    now = [0.0]
    lines: list[str] = []
    progress = Progress(lines.append, every_s=5.0, clock=lambda: now[0])
    progress.plan(4)
    for step, row in enumerate([_row(Outcome.PASSED, 0.01), _row(Outcome.ERRORED), _row(Outcome.FAILED)]):
        now[0] = 3.0 * (step + 1)  # 3 s, 6 s, 9 s
        progress.sample(row)
        progress.tick()
    assert lines == ["promptvcr: 2/4 samples, 1 errored, $0.0100 spent, 6s elapsed, ETA 6s"]
    now[0] = 12.0
    progress.sample(_row(Outcome.PASSED, 0.02))
    progress.tick()
    progress.tick()  # the final line once
    assert len(lines) == 2
    assert lines[-1] == "promptvcr: 4/4 samples, 1 errored, $0.0300 spent, 12s elapsed"


def _row(outcome: Outcome, cost_usd: float | None = None) -> Row:
    return Row("e", "c", "v", "m", 0, outcome, cost_usd=cost_usd)


def test_a_recording_run_reports_progress(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ep.init_project(pytester.path)
    cases = ep.write_cases(pytester.path, "c", [ep.json_case("alpha"), ep.json_case("beta")])
    ep.write_eval(
        pytester.path, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=3
    )
    out = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider").stdout.str()
    assert "promptvcr: 6/6 samples, 0 errored" in out
    replay = pytester.runpytest("evals", "-p", "no:cacheprovider").stdout.str()
    assert "promptvcr: 6/6" not in replay  # a replay is quick and says nothing extra
