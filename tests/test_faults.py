"""A 1,000-sample eval recorded live against the chaos server with 20% injected faults of every kind.

Every planned sample must end as passed, failed or errored with a known class; errors must stay out of the prompt's
quality numbers (they have their own ``error_rate``); and the server's own counts must show each fault was injected.

The runner sends non-streaming requests, so the "stall" fault is the chaos server's non-streamed stall: the headers
and half of the body, then nothing (the client's read timeout ends it, as it ends "timeout").
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from harness.testing import chaos
from tests import evalproject as ep

pytestmark = pytest.mark.slow  # subprocesses and real kills: `make test-slow`

EVAL = "storm"
CASES = 10
SAMPLES = 100
FAULT_RATE = 0.20
KNOWN = {"rate_limited", "timeout", "server_error", "connection", "bad_response", "refused_by_endpoint"}
ACCOUNTING = "without a result"  # the line the plugin prints when results != planned


def storm_project(root: Path, base_url: str) -> None:
    ep.chaos_project(
        root,
        EVAL,
        base_url,
        CASES,
        SAMPLES,
        endpoint={"timeout_s": 1.0, "max_retries": 2},
        limits={"concurrency": 32},
        gates=[
            {"metric": "json_valid_rate", "op": ">=", "value": 0.99},
            {"metric": "error_rate", "op": "<=", "value": 0.5},
        ],
    )


def test_a_thousand_samples_through_every_kind_of_fault(pytester: pytest.Pytester) -> None:
    rates = {fault: FAULT_RATE / len(chaos.FAULTS) for fault in chaos.FAULTS}
    # hold_s outlasts the 1 s client timeout: "timeout" and "stall" end on the client's side, as against a real API
    config = chaos.ChaosConfig(
        seed=4, latency=chaos.Latency.parse("uniform:1:10"), rates=rates, retry_after_ms=20, hold_s=1.5
    )
    with chaos.running(config) as server:
        storm_project(pytester.path, server.base_url)
        result = pytester.runpytest("evals", "-p", "no:cacheprovider", "--record-mode", "once")
        received = server.stats()

    out = result.stdout.str() + result.stderr.str()
    assert ACCOUNTING not in out, out
    assert "Traceback" not in out
    rows = ep.results(pytester.path)
    planned = {(f"c{i}", str(s)) for i in range(CASES) for s in range(SAMPLES)}
    assert len(rows) == CASES * SAMPLES
    assert {(r["case"], r["sample"]) for r in rows} == planned
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) <= {"passed", "failed", "errored"}
    errored = [r for r in rows if r["outcome"] == "errored"]
    assert all(r["error"] in KNOWN and r["error_message"] for r in errored), Counter(r["error"] for r in errored)

    # every kind reached the client, and what the server did is what the rows say
    injected = received["outcomes"]
    assert all(injected[fault] > 0 for fault in chaos.FAULTS), injected
    assert received["chat_requests"] > CASES * SAMPLES  # faults were retried
    classes = Counter(r["error"] for r in errored)
    # a broken body is final (retrying would pay again for an answer that came): one row per one served
    assert classes["bad_response"] == injected["truncated"] + injected["malformed"]
    # each answer served went to exactly one sample, and only answers make passed or failed rows
    assert outcomes["passed"] + outcomes["failed"] == injected["ok"]

    # errors are not prompt failures: every answer is valid JSON, so quality is perfect and errors have their rate
    (summary,) = ep.summary(pytester.path)
    assert int(summary["errors"]) == len(errored) > 0
    assert int(summary["answered"]) == outcomes["passed"] + outcomes["failed"]
    assert float(summary["json_valid_rate"]) == 1.0 and float(summary["pass_rate"]) == 1.0
    assert math.isclose(float(summary["error_rate"]), len(errored) / (CASES * SAMPLES))
    assert "PASS json_valid_rate >= 0.99" in summary["gates"] and "PASS error_rate <= 0.5" in summary["gates"]
    # errored items fail as errors, not as prompt failures
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "samples errored" in out and "samples passed (min_pass_rate" not in out
