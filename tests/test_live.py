"""The real local model: record a small eval against llama.cpp + Gemma-3-270M, then replay it with no server.

Marked ``live``: `make test-live` runs it (`.ci/run` starts the server first and passes PROMPTVCR_LOCAL_URL;
without it the plugin starts one itself).
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parent.parent
SAMPLES = 3


def _results(project: Path) -> list[dict[str, str]]:
    with (project / "reports" / "latest" / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_record_then_replay_identically(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "live.yaml").write_text(
        textwrap.dedent(f"""
            name: live
            cases: ["{REPO / "cases" / "dad_jokes.yaml"}"]
            endpoint: local
            samples: {SAMPLES}
            variants:
              json_object: {{response_format: json_object, max_tokens: 60}}
              json_schema: {{response_format: from_expectation, max_tokens: 60}}
        """),
        encoding="utf-8",
    )
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert "promptvcr summary" in recorded.stdout.str()
    first = _results(pytester.path)
    cassettes = sorted((pytester.path / "cassettes" / "live").rglob("*.yaml"))
    assert len(cassettes) == 2 * 4  # variants × cases in dad_jokes.yaml
    for path in cassettes:
        interactions = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        assert len(interactions) == SAMPLES
        assert all(i["response"]["status"]["code"] == 200 for i in interactions)
        assert all("127.0.0.1" in i["request"]["uri"] for i in interactions)
    assert len(first) == 2 * 4 * SAMPLES
    assert all(row["replayed"] == "False" and row["outcome"] != "errored" for row in first)
    assert {row["model"] for row in first} == {"gemma-3-270m"}

    # Replay with nothing listening: a port no server uses. Any attempt to reach it would error the samples.
    monkeypatch.setenv("PROMPTVCR_LOCAL_URL", "http://127.0.0.1:9/v1")
    pytester.runpytest("evals", "-p", "no:cacheprovider")
    second = _results(pytester.path)
    assert all(row["replayed"] == "True" for row in second)
    strip = [{k: v for k, v in row.items() if k != "replayed"} for row in first]
    assert strip == [{k: v for k, v in row.items() if k != "replayed"} for row in second]
