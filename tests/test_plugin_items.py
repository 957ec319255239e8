"""What the plugin does per item and per session to stay fast (harness.plugin._state) changes nothing pytest users
see: a conftest's autouse fixtures still wrap every eval item, and the cycle collector is only tuned while nothing
but evals runs, and put back as it was."""

from __future__ import annotations

import gc
import json

import pytest

import harness.checks._builtins  # noqa: F401  # the built-in checks registered before the first inner session
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI

# Records, while each item runs, whether collection's objects were frozen and the collection thresholds; and
# what an autouse fixture saw; and whether pytest's last collections came while objects were frozen.
OBSERVER = """
import gc, json, pathlib
import pytest

pytest_plugins = ["harness.plugin"]
SEEN = pathlib.Path(__file__).with_name("seen.jsonl")


@pytest.fixture(autouse=True)
def watched(request):
    with SEEN.open("a") as out:
        out.write(json.dumps({"item": request.node.name, "frozen": gc.get_freeze_count() > 0,
                              "young_every": gc.get_threshold()[0], "middle_every": gc.get_threshold()[1],
                              "full_every": gc.get_threshold()[2]}) + "\\n")
    yield


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # after pytest's own (its last full collection but one), before the cleanups
    with SEEN.open("a") as out:
        out.write(json.dumps({"item": "<unconfigure>", "frozen": gc.get_freeze_count() > 0}) + "\\n")
"""


def _project(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ep.init_project(pytester.path)
    cases = ep.write_cases(pytester.path, "c", [ep.json_case("alpha"), ep.json_case("beta")])
    ep.write_eval(pytester.path, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    pytester.runpytest("evals", "--record-mode", "once").assert_outcomes(passed=2)
    (pytester.path / "conftest.py").write_text(OBSERVER, encoding="utf-8")


def _seen(pytester: pytest.Pytester) -> list[dict[str, object]]:
    path = pytester.path / "seen.jsonl"
    seen = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.unlink()
    return seen


def test_only_evals_run_collection_is_frozen_while_they_run_and_thawed_after(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester, fake_openai)
    before = gc.get_threshold()
    pytester.runpytest("evals").assert_outcomes(passed=2)
    *seen, unconfigured = _seen(pytester)
    # the autouse fixture wrapped every eval item (the items share their file's fixture lookup)
    assert sorted(s["item"] for s in seen) == ["alpha[v]", "beta[v]"]
    # pytest's last full collections skip what the session left (thawed by the plugin's last cleanup, below)
    assert unconfigured == {"item": "<unconfigure>", "frozen": True}
    assert all(s["frozen"] and s["full_every"] == max(before[2], 100) for s in seen)
    assert all(s["young_every"] == max(before[0], 50_000) for s in seen)
    assert all(s["middle_every"] == max(before[1], 1000) for s in seen)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before  # as it was, after the session


def test_with_other_tests_nothing_is_frozen(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester, fake_openai)
    pytester.makepyfile(test_unit="import gc\n\ndef test_unit():\n    assert gc.get_freeze_count() == 0\n")
    before = gc.get_threshold()
    pytester.runpytest("evals", "test_unit.py").assert_outcomes(passed=3)
    *seen, unconfigured = _seen(pytester)
    assert sorted(s["item"] for s in seen) == ["alpha[v]", "beta[v]", "test_unit"]
    assert unconfigured == {"item": "<unconfigure>", "frozen": False}
    assert not any(s["frozen"] for s in seen) and all(s["full_every"] == before[2] for s in seen)
    assert all(s["young_every"] == before[0] and s["middle_every"] == before[1] for s in seen)
