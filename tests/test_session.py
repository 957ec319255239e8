"""harness.evaluate: a run of evals from a script, without pytest — the same rows, reports and plan as the plugin's."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, cycling


def _project(root: Path, base_url: str) -> Path:
    ep.init_project(root)
    cases = ep.write_cases(root, "c", [ep.json_case("alpha", min_pass_rate=1), ep.json_case("beta")])
    variants = {"v": {"model": "m"}, "w": {"model": "m2"}}
    gates = [{"metric": "json_valid_rate", "op": ">=", "value": 0.99, "min_n": 1}]
    return ep.write_eval(root, "e", base_url=base_url, cases=[cases], variants=variants, samples=3, gates=gates)


SCRIPT = """\
import sys
import harness

done = harness.evaluate(["evals/e.yaml"], record_mode=sys.argv[1], reports_dir="script-reports")
print("pytest" in sys.modules, done.run_dir is not None, done.failed, done.problem)
print(sorted((r.variant, r.case, r.sample, r.outcome.value) for r in done.rows))
"""


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_script_records_and_replays_with_evaluate_without_pytest(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = cycling(['{"n": 1}', "not json"])
    _project(tmp_path, fake_openai.base_url)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")

    def run(mode: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, str(script), mode], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    recorded = run("once")
    assert recorded[0] == "False True True None"  # no pytest; a report; the gate fails on the invalid answers
    assert len(fake_openai.chat_requests) == 12
    replayed = run("none")
    assert replayed == recorded
    assert len(fake_openai.chat_requests) == 12  # nothing sent in replay
    # the plugin's replay of the same recordings writes the same rows
    plugin = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "e",
        "--",
        "--reports-dir",
        "plugin-reports",
        "-p",
        "no:cacheprovider",
    ]
    done = subprocess.run(plugin, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout[-2000:]  # the failing gate
    script_rows = ep.read_csv(tmp_path / "script-reports" / "latest" / "results.csv")
    assert script_rows == ep.read_csv(tmp_path / "plugin-reports" / "latest" / "results.csv")


def test_evaluate_refuses_an_invalid_file_before_sending(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    import harness

    path = _project(tmp_path, fake_openai.base_url)
    path.write_text(path.read_text(encoding="utf-8") + "unknown_key: 1\n", encoding="utf-8")
    with pytest.raises(harness.InputError, match="unknown_key"):
        harness.evaluate([path], root=tmp_path, record_mode="once")
    assert fake_openai.chat_requests == []
