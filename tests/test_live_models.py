"""Both real local models in one eval: record a small two-model A/B through one serve-local URL, replay it offline.

Marked ``live``: `make test-live` runs it (`.ci/run` starts `promptvcr serve-local`, which serves every local model
of the registry, and passes PROMPTVCR_LOCAL_URL; without it the plugin starts one itself). Kept small for CI's two
cores: 2 models × 2 cases × 2 samples, 40 tokens at most per answer.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from harness.testing import local

pytestmark = pytest.mark.live

CASES = """\
defaults:
  temperature: 0.7
  max_tokens: 40
  response_format: json_object
  expect: [{json_valid: true}]
cases:
  - id: capital
    messages:
      - {role: system, content: 'Answer only with JSON: {"capital": "<the city>"}.'}
      - {role: user, content: What is the capital of France?}
  - id: colour
    messages:
      - {role: system, content: 'Answer only with JSON: {"colour": "<a colour>"}.'}
      - {role: user, content: What colour is the sky on a clear day?}
"""
MODELS = local.aliases()  # every local model of the registry: gemma-3-270m and smollm2-135m-instruct
SAMPLES = 2


def _rows(project: Path) -> list[dict[str, str]]:
    with (project / "reports" / "latest" / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_two_local_models_record_through_one_url_and_replay_identically(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    pytester.makefile(".yaml", pair=CASES)
    variants = "".join(f"  {alias}: {{model: {alias}}}\n" for alias in MODELS)
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "pair.yaml").write_text(
        textwrap.dedent(f"""\
            name: pair
            cases: [pair.yaml]
            endpoint: local
            samples: {SAMPLES}
            compare: [[{MODELS[0]}, {MODELS[1]}]]
            variants:
        """)
        + variants,
        encoding="utf-8",
    )
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert "promptvcr summary" in recorded.stdout.str()
    first = _rows(pytester.path)
    assert len(first) == len(MODELS) * 2 * SAMPLES
    assert all(row["replayed"] == "False" and row["outcome"] != "errored" for row in first)
    for alias in MODELS:
        for path in sorted((pytester.path / "cassettes" / "pair" / alias).glob("*.yaml")):
            interactions = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
            assert len(interactions) == SAMPLES
            for interaction in interactions:
                assert json.loads(interaction["request"]["body"])["model"] == alias
                # the answer came from that model's own llama.cpp server, which names itself by its alias
                assert json.loads(interaction["response"]["body"]["string"])["model"] == alias
    summary = (pytester.path / "reports" / "latest" / "summary.md").read_text(encoding="utf-8")
    assert f"**pair: {MODELS[1]} vs {MODELS[0]}**" in summary and "- same cost (all local, $0)" in summary

    # Replay with nothing listening: any attempt to reach a server would error the samples.
    monkeypatch.setenv("PROMPTVCR_LOCAL_URL", "http://127.0.0.1:9/v1")
    pytester.runpytest("evals", "-p", "no:cacheprovider")
    second = _rows(pytester.path)
    assert all(row["replayed"] == "True" for row in second)
    assert [{**row, "replayed": ""} for row in first] == [{**row, "replayed": ""} for row in second]
