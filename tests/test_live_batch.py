"""The real local model through the Batch API: a small eval recorded with ``--batch`` through the local Batch API
server (harness.testing.batchserver) over llama.cpp, then replayed offline with identical rows.

Marked ``live``: `make test-live` runs it (`.ci/run` starts the local server and passes PROMPTVCR_LOCAL_URL;
without it one is started here).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.load._evals import DEFAULT_LOCAL_URL
from harness.testing import batchserver, local

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"
SAMPLES = 2


@pytest.fixture
def llama_url() -> Iterator[str]:
    given = os.environ.get("PROMPTVCR_LOCAL_URL")
    with contextlib.nullcontext(given) if given else local.ensure_running(DEFAULT_LOCAL_URL) as url:
        yield str(url)


def _results(project: Path) -> list[dict[str, str]]:
    with (project / "reports" / "latest" / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_batch_over_llama_cpp_then_replay_identically(pytester: pytest.Pytester, llama_url: str) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    (pytester.path / "evals").mkdir()
    with batchserver.serve(llama_url, batchserver.Faults()) as server:
        doc = {
            "name": "live_batch",
            "cases": [str(REPO / "cases" / "dad_jokes.yaml")],
            "endpoint": {"base_url": server.base_url, "timeout_s": 300},
            "samples": SAMPLES,
            "batch": {"poll_s": 0.5, "max_requests": 5},
            "variants": {"smol": {"model": MODEL, "max_tokens": 40}},
        }
        (pytester.path / "evals" / "live_batch.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        recorded = pytester.runpytest("evals", "--batch", "-p", "no:cacheprovider")
        out = recorded.stdout.str()
        assert "promptvcr: batch 1/" in out and "promptvcr summary" in out, out
        first = _results(pytester.path)
        cases = len(yaml.safe_load((REPO / "cases" / "dad_jokes.yaml").read_text(encoding="utf-8"))["cases"])
        assert len(first) == cases * SAMPLES
        assert server.executed == cases * SAMPLES  # every answer came through the batch server, once
        assert server.created == -(-cases * SAMPLES // 5)  # split at 5 requests a batch
    assert all(row["outcome"] != "errored" and row["model"] == MODEL for row in first), first
    batches = json.loads((pytester.path / "reports" / "latest" / "batch.json").read_text(encoding="utf-8"))
    assert {b["status"] for b in batches["batches"]} == {"completed"}
    for path in sorted((pytester.path / "cassettes" / "live_batch").rglob("*.yaml")):
        interactions = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        assert len(interactions) == SAMPLES
        assert all(i["response"]["headers"]["x-promptvcr-batch"][0].startswith("batch_") for i in interactions)

    # the batch server is gone: a replay that tried to reach it would error its samples
    replayed = pytester.runpytest("evals", "-p", "no:cacheprovider")
    assert replayed.ret == recorded.ret
    second = _results(pytester.path)
    assert [{k: v for k, v in r.items() if k != "run_id"} for r in second] == [
        {k: v for k, v in r.items() if k != "run_id"} for r in first
    ]
