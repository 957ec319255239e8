"""Case × variant items are ones pytest's own machinery understands: the cache (--lf, --ff), --deselect, -k."""

from __future__ import annotations

import pytest

from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion


def _project(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    """Cases alpha and beta in variants good (valid JSON) and bad (not JSON): the bad items fail."""
    fake_openai.respond = lambda body: Reply(
        body=completion('{"n": 1}' if body["model"] == "good-model" else "not json", model=body["model"])
    )
    ep.init_project(pytester.path)
    cases = ep.write_cases(pytester.path, "c", [ep.json_case("alpha", min_pass_rate=1), ep.json_case("beta")])
    variants = {"good": {"model": "good-model"}, "bad": {"model": "bad-model"}}
    ep.write_eval(pytester.path, "e", base_url=fake_openai.base_url, cases=[cases], variants=variants, samples=2)
    recorded = pytester.runpytest("evals", "--record-mode", "once")
    recorded.assert_outcomes(passed=3, failed=1)


def test_last_failed_reruns_only_the_failed_items(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester, fake_openai)
    rerun = pytester.runpytest("evals", "--lf", "-v")
    rerun.assert_outcomes(failed=1)  # the other three are not even collected
    assert "run-last-failure: rerun previous 1 failure" in rerun.stdout.str()
    rerun.stdout.fnmatch_lines(["*evals/e.yaml::alpha?bad? FAILED*"])
    first = pytester.runpytest("evals", "--ff", "-v")  # failed first, then the rest
    lines = [line for line in first.stdout.lines if line.startswith("evals/e.yaml::")]
    assert "alpha[bad]" in lines[0]
    assert len(lines) == 4


def test_deselect_and_keyword_select_items_by_case_and_variant(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester, fake_openai)
    deselected = pytester.runpytest("evals", "--deselect", "evals/e.yaml::alpha[bad]")
    deselected.assert_outcomes(passed=3, deselected=1)
    by_keyword = pytester.runpytest("evals", "-k", "beta and bad")
    by_keyword.assert_outcomes(passed=1, deselected=3)
    by_id = pytester.runpytest("evals/e.yaml::beta[good]")
    by_id.assert_outcomes(passed=1)


def test_the_installed_package_is_a_pytest_plugin_without_a_conftest_line(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    """`pip install promptvcr` registers the plugin (entry point `pytest11`); the conftest line is optional."""
    ep.init_project(pytester.path)
    (pytester.path / "conftest.py").unlink()
    cases = ep.write_cases(pytester.path, "c", [ep.json_case("alpha")])
    ep.write_eval(pytester.path, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    result = pytester.runpytest("evals", "--record-mode", "once")
    result.assert_outcomes(passed=1)
    assert len(fake_openai.chat_requests) == 1
    listed = pytester.runpytest("--trace-config", "--co", "-q", "evals")
    assert "harness.plugin" in listed.stdout.str()
