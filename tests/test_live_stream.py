"""The real local model, streamed: record a `stream: true` case against llama.cpp + SmolLM2-135M-Instruct, then
replay it with no server — the same rows, the time to first token from the recording.

Marked ``live``: `make test-live` runs it (`.ci/run` starts the server first and passes PROMPTVCR_LOCAL_URL;
without it the plugin starts one itself).
"""

from __future__ import annotations

import json
import textwrap

import pytest

from tests import evalproject as ep

pytestmark = pytest.mark.live

SAMPLES = 2
CASES = """\
defaults:
  model: smollm2-135m-instruct
  max_tokens: 24
  temperature: 0.7
  stream: true
  stream_options: {include_usage: true}
cases:
  - id: greet
    messages:
      - {role: user, content: Say hello to Ada in one short sentence.}
    expect:
      - max_chars: 400
"""


def test_a_streamed_case_records_and_replays_identically(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep.init_project(pytester.path)
    (pytester.path / "cases" / "stream.yaml").write_text(CASES, encoding="utf-8")
    (pytester.path / "evals" / "live.yaml").write_text(
        textwrap.dedent(f"""
            name: live-stream
            cases: [cases/stream.yaml]
            endpoint: local
            samples: {SAMPLES}
            variants:
              streamed: {{}}
            gates:
              - {{metric: ttft_p95_ms, op: "<=", value: 600000}}
        """),
        encoding="utf-8",
    )
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    first = ep.results(pytester.path)
    assert len(first) == SAMPLES
    [cassette] = ep.cassettes(pytester.path, "live-stream")
    for interaction in ep.interactions(cassette):
        sse = interaction["response"]["body"]["string"]
        chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
        assert len(chunks) > 2 and sse.rstrip().endswith("data: [DONE]")  # llama.cpp streamed for real
        row = next(r for r in first if r["sample"] == interaction["response"]["headers"]["x-promptvcr-sample"][0])
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert row["output"] == text
        assert int(row["completion_tokens"]) == chunks[-1]["usage"]["completion_tokens"]  # the usage chunk
        assert 0 < float(row["ttft_ms"]) < float(row["latency_ms"])
        assert float(row["ttft_ms"]) == float(interaction["response"]["headers"]["x-promptvcr-ttft-ms"][0])
    assert all(row["replayed"] == "False" and row["outcome"] == "passed" for row in first)
    assert "PASS ttft_p95_ms" in recorded.stdout.str()

    # Replay with nothing listening: a port no server uses. Any attempt to reach it would error the samples.
    monkeypatch.setenv("PROMPTVCR_LOCAL_URL", "http://127.0.0.1:9/v1")
    replay = pytester.runpytest("evals", "-p", "no:cacheprovider")
    assert replay.ret == pytest.ExitCode.OK, replay.stdout.str()
    second = ep.results(pytester.path)
    assert all(row["replayed"] == "True" for row in second)
    assert ep.without(first, "replayed") == ep.without(second, "replayed")
