"""The real local model and tools: a tools case recorded against llama.cpp (xllamacpp) + SmolLM2-135M-Instruct, then
replayed with no server.

What it pins down (README, "Tool calls"): llama.cpp accepts `tools` and `tool_choice`, and with jinja templates on
(xllamacpp's default) it silently drops the tools when the model's chat template has no tool support — SmolLM2's
and Gemma's have none — so the prompt costs the same tokens with or without them and plain text comes back, never
`tool_calls`. Should a llama.cpp update make the local model call tools, this test fails: then record the
function-calling example live instead of from the corpus.

Marked ``live``: `make test-live` runs it (`.ci/run` starts the server first and passes PROMPTVCR_LOCAL_URL;
without it the plugin starts one itself).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.live

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _results(project: Path) -> list[dict[str, str]]:
    with (project / "reports" / "latest" / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_local_model_gets_tools_and_answers_in_text(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    base = {"model": "smollm2-135m-instruct", "temperature": 0, "seed": 1, "max_tokens": 40, "messages": ASK}
    cases = [
        {
            **base,
            "id": "with-tools",
            "tools": [TOOL],
            "tool_choice": "required",
            "expect": [{"tool_call": "get_weather"}],
        },
        {**base, "id": "without-tools", "expect": [{"no_tool_call": True}]},
    ]
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "t.yaml").write_text(yaml.safe_dump({"cases": cases}), encoding="utf-8")
    (pytester.path / "evals").mkdir()
    spec = {"name": "live-tools", "cases": ["cases/t.yaml"], "endpoint": "local", "variants": {"v": {}}}
    (pytester.path / "evals" / "t.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    first = {row["case"]: row for row in _results(pytester.path)}
    assert {row["outcome"] for row in first.values()} <= {"passed", "failed"}, first
    recorded = yaml.safe_load((pytester.path / "cassettes" / "live-tools" / "v" / "with-tools.yaml").read_text())
    (interaction,) = recorded["interactions"]
    assert interaction["response"]["status"]["code"] == 200  # tools and tool_choice are accepted ...
    assert '"tools":' in interaction["request"]["body"]
    with_tools = first["with-tools"]
    assert with_tools["tool_calls"] == "" and with_tools["outcome"] == "failed"  # ... and plain text comes back
    assert "no call to 'get_weather' (the answer calls no tool)" in with_tools["reasons"]
    # the template dropped the tools: the prompt costs the same with and without them
    assert with_tools["prompt_tokens"] == first["without-tools"]["prompt_tokens"]

    monkeypatch.setenv("PROMPTVCR_LOCAL_URL", "http://127.0.0.1:9/v1")  # nothing listens: replay only
    pytester.runpytest("evals", "-p", "no:cacheprovider")
    second = {row["case"]: row for row in _results(pytester.path)}
    assert all(row["replayed"] == "True" for row in second.values())
    for case, row in first.items():
        assert {k: v for k, v in second[case].items() if k != "replayed"} == {
            k: v for k, v in row.items() if k != "replayed"
        }
