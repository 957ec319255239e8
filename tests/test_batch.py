"""`--batch`: a recording run through the local Batch API server (harness.testing.batchserver) over the fake server.

Each test builds a tiny project whose endpoint is the batch server, records it with ``--batch`` (the server runs
every line against ``fake_openai``), and checks what the servers were asked, the cassettes, batch.json and the
reports — then replays offline and compares the rows. The key is a planted fake one, looked for everywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.cli import _main as cli
from harness.cli import _scaffold as scaffold
from harness.load import _evals as evals
from harness.run import _batch as batch
from harness.run._batch_record import Request
from harness.testing import batchserver
from harness.tokens import _cost as cost
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI

EVAL = "tiny"
CASES = ("alpha", "beta")
SAMPLES = 3
KEY_ENV = "PROMPTVCR_BATCH_TEST_KEY"
FAKE_KEY = "sk-proj-BATCHfakeKEY0123456789abcdef"  # promptvcr: allow-secret
QUIET = ("-p", "no:cacheprovider")
PRICED = "gpt-4o-mini"  # a model with a batch price in the shipped registry


@pytest.fixture
def batch_api(fake_openai: FakeOpenAI) -> Iterator[batchserver.BatchServer]:
    # the planted key must reach the Batch API (else every request is refused): its absence elsewhere means something
    with batchserver.serve(fake_openai.base_url, batchserver.Faults(require_key=FAKE_KEY)) as server:
        yield server


def _project(
    root: Path,
    base_url: str,
    batch: Any = None,
    samples: int = SAMPLES,
    cases: tuple[str, ...] = CASES,
    **extra: Any,
) -> Path:
    ep.init_project(root)
    case_file = ep.write_cases(root, EVAL, [ep.json_case(c) for c in cases])
    extra |= {"batch": batch} if batch is not None else {}
    ep.write_eval(
        root,
        EVAL,
        base_url=base_url,
        endpoint={"api_key_env": KEY_ENV},
        cases=[case_file],
        variants={"mini": {"model": PRICED}},
        samples=samples,
        **extra,
    )
    return root


def _numbered(fake: FakeOpenAI) -> ep.Numbered:
    script = ep.Numbered()
    fake.respond = script
    return script


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("evals", *QUIET, *args)


def _batch_json(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((ep.latest(root) / "batch.json").read_text(encoding="utf-8"))
    return found


def _no_key_anywhere(root: Path, result: pytest.RunResult) -> None:
    for path, text in ep.texts_under(root).items():
        assert FAKE_KEY not in text, path
    assert FAKE_KEY not in result.stdout.str() + result.stderr.str()


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)


def test_batch_records_then_replays_the_same_rows(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    script = _numbered(fake_openai)
    recorded = _run(pytester, "--record-mode", "once")
    assert recorded.ret in (0, 1), recorded.stdout.str()
    out = recorded.stdout.str()
    assert "promptvcr: batch 1/1 batch_000001 (tiny):" in out and "answered" in out
    assert batch_api.created == 1 and batch_api.uploads == 1
    assert len(fake_openai.chat_requests) == len(CASES) * SAMPLES  # every request once, by the batch server
    first = ep.results(root)
    assert len(first) == len(CASES) * SAMPLES
    # each sample's row says what the fake server answered for it (odd answers are not JSON: failed)
    for row in first:
        sent = script.sent[(row["case"], PRICED)]
        assert row["output"] in sent
        assert row["outcome"] == ("passed" if row["output"].startswith("{") else "failed")
    # priced at the batch price: the fake's usage (12 in, 7 out) at gpt-4o-mini's batch rates
    price = cost.price_for(PRICED, batch=True)
    assert price is not None and price.input == 0.075 and price.output == 0.3
    assert [float(row["cost_usd"]) for row in first] == pytest.approx([(12 * 0.075 + 7 * 0.3) / 1e6] * len(first))
    for path in ep.cassettes(root, EVAL):
        interactions = ep.interactions(path)
        assert len(interactions) == SAMPLES
        assert all(i["response"]["headers"]["x-promptvcr-batch"] == ["batch_000001"] for i in interactions)
    state = _batch_json(root)["batches"]
    assert [(b["id"], b["status"], b["recorded"], b["failed"]) for b in state] == [
        ("batch_000001", "completed", True, {})
    ]
    assert sorted(state[0]["custom_ids"]) == sorted(f"tiny/mini/{c}/{s}" for c in CASES for s in range(SAMPLES))
    jsonl = (ep.latest(root) / "batch-1.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["url"] for line in jsonl} == {"/v1/chat/completions"}
    _no_key_anywhere(root, recorded)

    fake_openai.received.clear()
    replayed = _run(pytester)
    assert replayed.ret == recorded.ret
    assert fake_openai.received == [] and batch_api.created == 1
    second = ep.results(root)
    assert ep.without(second, "run_id") == ep.without(first, "run_id")


def test_cli_flag_batches_an_eval_without_the_key(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    root = _project(pytester.path, batch_api.base_url)
    result = _run(pytester, "--batch")  # record mode once, by default
    assert batch_api.created == 1, result.stdout.str()
    assert "record mode once, through the Batch API" in (ep.latest(root) / "summary.md").read_text(encoding="utf-8")
    assert len(ep.results(root)) == len(CASES) * SAMPLES
    again = _run(pytester, "--batch")  # every cassette answers: nothing to batch
    assert batch_api.created == 1, again.stdout.str()
    assert _batch_json(root)["batches"] == []


def test_split_over_the_request_limit(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    root = _project(pytester.path, batch_api.base_url, batch={"max_requests": 4, "poll_s": 0.05})
    _run(pytester, "--record-mode", "all")
    assert batch_api.created == 2 and batch_api.uploads == 2  # 6 requests, 4 a batch
    assert [len(b["custom_ids"]) for b in _batch_json(root)["batches"]] == [4, 2]
    # a case split over the two batches has all its samples in its cassette (the second continued it)
    assert sorted(len(ep.interactions(p)) for p in ep.cassettes(root, EVAL)) == [SAMPLES, SAMPLES]
    rows = ep.results(root)
    assert len(rows) == len(CASES) * SAMPLES and all(r["outcome"] != "errored" for r in rows)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [({"expire_after": 2}, "batch_expired"), ({"cancel_after": 2}, "batch_cancelled")],
)
def test_an_ended_batch_keeps_its_answers_and_classifies_the_rest(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    batch_api: batchserver.BatchServer,
    fault: dict[str, int],
    kind: str,
) -> None:
    for name, value in fault.items():
        setattr(batch_api.faults, name, value)
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    result = _run(pytester, "--record-mode", "once")
    assert result.ret == 1  # errored samples fail their items
    rows = ep.results(root)
    assert len(rows) == len(CASES) * SAMPLES  # a row for every sample: a partial report, not a crash
    answered = [r for r in rows if r["outcome"] != "errored"]
    errored = [r for r in rows if r["outcome"] == "errored"]
    assert len(answered) == 2 == len(fake_openai.chat_requests)
    assert {r["error"] for r in errored} == {kind} and len(errored) == len(rows) - 2
    assert all("batch_000001" in r["error_message"] for r in errored)
    state = _batch_json(root)["batches"][0]
    assert state["status"] == kind.removeprefix("batch_") and len(state["failed"]) == len(errored)
    assert sum(len(ep.interactions(p)) for p in ep.cassettes(root, EVAL)) == 2  # its answers kept


def test_line_errors_refusals_are_recorded_transients_classified(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    batch_api.faults.fail = {"tiny/mini/alpha/0": 400, "tiny/mini/beta/1": 500}
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    _run(pytester, "--record-mode", "once")
    rows = {(r["case"], r["sample"]): r for r in ep.results(root)}
    assert rows[("alpha", "0")]["error"] == "refused_by_endpoint"  # as live: a 400 is recorded, and replays so
    assert rows[("beta", "1")]["error"] == "server_error"  # a transient failure is not recorded
    assert "HTTP 500" in rows[("beta", "1")]["error_message"]
    assert sum(r["outcome"] == "errored" for r in rows.values()) == 2
    statuses = sorted(i["response"]["status"]["code"] for p in ep.cassettes(root, EVAL) for i in ep.interactions(p))
    assert statuses == [200] * 4 + [400]


def test_a_batch_that_fails_validation_fails_every_row(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    batch_api.faults.fail_validation = "line 1: model not allowed"
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    _run(pytester, "--record-mode", "once")
    rows = ep.results(root)
    assert len(rows) == len(CASES) * SAMPLES and {r["error"] for r in rows} == {"batch_failed"}
    assert all("model not allowed" in r["error_message"] for r in rows)
    assert fake_openai.chat_requests == [] and ep.cassettes(root, EVAL) == []


def test_two_replays_of_a_batched_refusal_give_the_same_row(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    batch_api.faults.fail = {"tiny/mini/alpha/0": 400}
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    _run(pytester, "--record-mode", "once")
    refused = [
        i for p in ep.cassettes(root, EVAL) for i in ep.interactions(p) if i["response"]["status"]["code"] == 400
    ]
    assert len(refused) == 1 and "x-promptvcr-latency-ms" not in refused[0]["response"]["headers"]
    replays = []
    for _ in range(2):
        _run(pytester)
        replays.append({(r["case"], r["sample"]): ep.without([r], "run_id")[0] for r in ep.results(root)})
    first, second = (rows[("alpha", "0")] for rows in replays)
    assert first["error"] == "refused_by_endpoint" and first["latency_ms"] == ""  # no latency was recorded
    assert first == second and replays[0] == replays[1]


@pytest.mark.parametrize(
    ("fault", "errors", "answered"),
    [
        ("content_errors", [500], True),  # asked again at the next poll: every paid answer recorded
        ("content_errors", [404], False),  # the output file is gone: given up on at once
        ("retrieve_errors", [500], True),
        ("retrieve_errors", [403], False),  # the key may not read the batch: given up on at once
        ("retrieve_errors", [500, 502], False),  # MAX_FAILURES (2 here) in a row
    ],
)
def test_a_failed_read_of_a_batch_is_asked_again_then_given_up_on(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    batch_api: batchserver.BatchServer,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    errors: list[int],
    answered: bool,
) -> None:
    monkeypatch.setattr(batch, "MAX_FAILURES", 2)
    setattr(batch_api.faults, fault, list(errors))
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    result = _run(pytester, "--record-mode", "once")
    out = result.stdout.str()
    what = "files not downloaded" if fault == "content_errors" else "status not read"
    assert f"promptvcr: batch batch_000001: {what}" in out
    assert getattr(batch_api.faults, fault) == []  # every injected failure was met
    rows = ep.results(root)
    assert len(rows) == len(CASES) * SAMPLES
    state = _batch_json(root)["batches"][0]
    assert state["recorded"] is True
    if answered:
        assert "asking again" in out and "giving up" not in out
        assert all(r["error"] == "" for r in rows) and state["failed"] == {} and state["failures"] == 0
        assert sum(len(ep.interactions(p)) for p in ep.cassettes(root, EVAL)) == len(rows)
    else:
        assert "giving up" in out
        assert {r["error"] for r in rows} == {"batch_failed"} and len(state["failed"]) == len(rows)
        assert all(what in r["error_message"] for r in rows)
        assert ep.cassettes(root, EVAL) == []
    _no_key_anywhere(root, result)


def test_the_local_endpoint_is_refused_before_anything_is_sent(pytester: pytest.Pytester) -> None:
    ep.init_project(pytester.path)
    case_file = ep.write_cases(pytester.path, EVAL, [ep.json_case("alpha")])
    doc = {"name": EVAL, "cases": [case_file], "endpoint": "local", "variants": {"v": {"model": "gemma-3-270m"}}}
    (pytester.path / "evals" / f"{EVAL}.yaml").write_text(json.dumps(doc), encoding="utf-8")
    result = _run(pytester, "--batch")
    assert "the local llama.cpp server has no Batch API" in result.stdout.str()
    assert not (pytester.path / "reports" / "latest" / "results.csv").exists()


def test_the_key_is_needed_before_anything_is_sent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, batch_api: batchserver.BatchServer
) -> None:
    monkeypatch.delenv(KEY_ENV)
    _project(pytester.path, batch_api.base_url)
    result = _run(pytester, "--batch")
    assert f"--batch: {KEY_ENV} is not set" in result.stdout.str()
    assert batch_api.uploads == 0 and batch_api.created == 0


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        ({"max_requests": 0}, "/batch/max_requests"),
        ({"max_requests": 50_001}, "/batch/max_requests"),
        ({"poll_s": 0}, "/batch/poll_s"),
        ({"every": 3}, "/batch/every"),
        ("yes", "/batch"),
        (False, "/batch"),
    ],
)
def test_bad_batch_keys_are_file_line_problems_and_nothing_is_sent(
    pytester: pytest.Pytester, batch_api: batchserver.BatchServer, value: Any, pointer: str
) -> None:
    root = _project(pytester.path, batch_api.base_url, batch=value)
    result = _run(pytester, "--record-mode", "once", "--batch")
    out = result.stdout.str()
    key = pointer.rsplit("/", 1)[1] + ":"
    lines = (root / "evals" / f"{EVAL}.yaml").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.lstrip().startswith(key))
    assert f"evals/{EVAL}.yaml:{line}: at {pointer} " in out, out
    assert "no request was sent" in out
    assert batch_api.uploads == 0 and batch_api.created == 0


def test_split_by_file_size() -> None:

    run: Any = type("Run", (), {})()  # only what Request.line reads
    run.eval_name, run.body = "e", {"model": "m", "messages": [{"role": "user", "content": "x" * 50}]}
    run.variant, run.case = type("V", (), {"name": "v"})(), type("C", (), {"id": "c"})()
    requests = [Request(run, s) for s in range(5)]
    size = len(requests[0].line)
    assert [len(c) for c in batch.split(requests, 10, 2 * size)] == [2, 2, 1]
    assert [len(c) for c in batch.split(requests, 3, 100 * size)] == [3, 2]
    assert evals.BatchOptions.parse(True) == evals.BatchOptions(50_000, 30.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "lost_id"),
    [(signal.SIGKILL, False), (signal.SIGKILL, True), (signal.SIGTERM, False)],
    ids=["killed", "killed-before-its-id-was-journaled", "sigterm"],
)
def test_stopped_while_polling_resume_reattaches_and_submits_nothing_new(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    batch_api: batchserver.BatchServer,
    stop: signal.Signals,
    lost_id: bool,
) -> None:
    batch_api.faults.hold = threading.Event()  # the batch stays in progress until the run is killed
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    command = [sys.executable, "-m", "harness", "run", EVAL, "--batch", "--", *QUIET]
    env = {**os.environ, KEY_ENV: FAKE_KEY}
    run = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _submitted(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _submitted(root), "the batch's id was journaled"
        time.sleep(0.3)  # polling now
        run.send_signal(stop)
    finally:
        output = run.communicate(timeout=30)[0]
    assert FAKE_KEY not in output
    run_dir = next(p.parent for p in (root / "reports").glob("*/batch.json"))
    status = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"]
    assert status == ("running" if stop == signal.SIGKILL else "interrupted"), output
    assert batch_api.created == 1 and fake_openai.chat_requests == []
    if lost_id:  # as if killed after the batch was created, before its id was written: found by its input file
        journaled = json.loads((run_dir / "batch.json").read_text(encoding="utf-8"))
        journaled["batches"][0] |= {"id": None, "status": "uploaded"}
        (run_dir / "batch.json").write_text(json.dumps(journaled), encoding="utf-8")

    batch_api.faults.hold.set()
    resumed = _run(pytester, "--resume")
    assert batch_api.created == 1 and batch_api.uploads == 1, resumed.stdout.str()  # re-attached, not resubmitted
    assert len(fake_openai.chat_requests) == len(CASES) * SAMPLES
    assert ep.latest(root) == run_dir.resolve()
    rows = ep.results(root)
    assert len(rows) == len(CASES) * SAMPLES and all(r["outcome"] != "errored" for r in rows)
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] == "complete"
    _no_key_anywhere(root, resumed)


def _submitted(root: Path) -> bool:
    for path in (root / "reports").glob("*/batch.json"):
        try:
            batches = json.loads(path.read_text(encoding="utf-8"))["batches"]
        except ValueError:
            continue
        if batches and batches[0]["id"]:
            return True
    return False


def test_scaffolded_workflow_shards_a_replay_and_merges_it(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The scale-out beside --batch: the workflow's shard jobs' commands, then its merge job's, on one machine."""

    root = _project(pytester.path, fake_openai.base_url, cases=tuple(f"c{i}" for i in range(8)))
    _run(pytester, "--record-mode", "once")
    recorded = ep.results(root)
    workflow = yaml.safe_load(scaffold.WORKFLOW.replace("{source}", "x"))
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    assert merge["needs"] == "shard"
    runs = [step["run"] for step in shard["steps"] if "run" in step and "promptvcr" in step["run"]]
    assert runs[-1].startswith("promptvcr run --shard ${{ matrix.shard }}/")
    monkeypatch.chdir(root)
    fake_openai.received.clear()
    for index in shard["strategy"]["matrix"]["shard"]:
        command = runs[-1].split(" || ")[0].replace("${{ matrix.shard }}", str(index))
        cli.main([*command.split()[1:], "--", *QUIET])  # a shard's gates are not final: its exit code is not checked
        copied = next(step["run"] for step in shard["steps"] if str(step.get("run", "")).startswith("cp "))
        subprocess.run(copied, shell=True, check=True, cwd=root)  # the workflow's own line
        (root / "shard-report").rename(root / f"shard-{index}")
    joined = next(step["run"] for step in merge["steps"] if str(step.get("run", "")).startswith("promptvcr merge"))
    capsys.readouterr()
    code = cli.main(["merge", *(str(p) for p in sorted(root.glob(joined.split()[-1])))])
    assert code == 0 and "merged" in capsys.readouterr().out
    assert fake_openai.received == []  # the shards replayed
    merged = ep.results(root)
    key = ("case", "sample", "outcome", "output")
    assert sorted(tuple(r[k] for k in key) for r in merged) == sorted(tuple(r[k] for k in key) for r in recorded)


def test_a_refused_submission_fails_every_row_without_the_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, batch_api: batchserver.BatchServer
) -> None:
    wrong = "sk-proj-WRONGbatchKEY9876543210fedcba"  # promptvcr: allow-secret
    monkeypatch.setenv(KEY_ENV, wrong)
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    result = _run(pytester, "--record-mode", "once")
    rows = ep.results(root)
    assert len(rows) == len(CASES) * SAMPLES and {r["error"] for r in rows} == {"batch_failed"}
    assert all("not submitted" in r["error_message"] and "401" in r["error_message"] for r in rows)
    assert batch_api.uploads == 0 and batch_api.created == 0
    for path, text in ep.texts_under(root).items():
        assert wrong not in text, path
    assert wrong not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(("flag", "refused"), [((), True), (("--batch",), False)])
def test_the_budget_is_held_at_batch_prices(
    pytester: pytest.Pytester, batch_api: batchserver.BatchServer, flag: tuple[str, ...], refused: bool
) -> None:
    """gpt-4o-mini, 6 calls of up to 10,000 output tokens: $0.036 worst case at $0.60/M, $0.018 at the batch's
    $0.30/M (the prompts add ~$0.00003); a budget of $0.025 lets only the batched recording start."""
    root = _project(pytester.path, batch_api.base_url, budget_usd=0.025)
    doc = yaml.safe_load((root / "evals" / f"{EVAL}.yaml").read_text(encoding="utf-8"))
    doc["variants"]["mini"]["max_tokens"] = 10_000
    (root / "evals" / f"{EVAL}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = _run(pytester, "--record-mode", "once", *flag)
    assert ("exceeds budget_usd" in result.stdout.str()) is refused, result.stdout.str()
    assert batch_api.created == (0 if refused else 1)


@pytest.mark.slow  # starts pytest-xdist workers
def test_pytest_xdist_workers_refuse_to_batch(pytester: pytest.Pytester, batch_api: batchserver.BatchServer) -> None:
    root = _project(pytester.path, batch_api.base_url)
    result = _run(pytester, "--batch", "-n", "2")
    assert "(--batch, or the eval's `batch` key) runs in one process" in result.stdout.str() + result.stderr.str()
    assert batch_api.uploads == 0 and batch_api.created == 0
    assert not (root / "cassettes").exists()


def test_evaluate_from_a_script_batches_too(
    tmp_path: Path, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    root = _project(tmp_path, batch_api.base_url, batch={"poll_s": 0.05})
    lines: list[str] = []
    done = harness.evaluate([root / "evals" / f"{EVAL}.yaml"], root=root, batch=True, say=lines.append)
    assert batch_api.created == 1 and len(fake_openai.chat_requests) == len(CASES) * SAMPLES
    assert any(line.startswith("promptvcr: batch 1/1 batch_000001") for line in lines)
    assert done.problem is None and len(done.rows) == len(CASES) * SAMPLES
    again = harness.evaluate([root / "evals" / f"{EVAL}.yaml"], root=root)  # a replay
    assert sorted((r.key, r.output) for r in again.rows) == sorted((r.key, r.output) for r in done.rows)
    assert all(r.replayed for r in again.rows) and len(fake_openai.chat_requests) == len(CASES) * SAMPLES


def test_estimate_at_batch_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the budget test: $0.036 worst case at standard prices, $0.018 (+ the prompts' ~$0.00003) batched."""

    root = _project(tmp_path, "http://127.0.0.1:9/v1", budget_usd=0.025)
    doc = yaml.safe_load((root / "evals" / f"{EVAL}.yaml").read_text(encoding="utf-8"))
    doc["variants"]["mini"]["max_tokens"] = 10_000
    (root / "evals" / f"{EVAL}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.chdir(root)
    assert cli.main(["estimate", EVAL]) == 1
    assert "$0.036" in capsys.readouterr().out
    assert cli.main(["estimate", EVAL, "--batch"]) == 0
    out = capsys.readouterr().out
    assert "at Batch API prices" in out and "$0.018" in out
    assert cli.main(["status", EVAL]) == 1  # nothing recorded: its re-recording's cost, at standard prices
    assert "to re-record: 6 call(s), worst case $0.036" in capsys.readouterr().out
    doc["batch"] = True  # the eval's own key: its recordings are batched, so is its estimate
    (root / "evals" / f"{EVAL}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert cli.main(["estimate", EVAL]) == 0
    capsys.readouterr()
    assert cli.main(["status", EVAL]) == 1
    assert "to re-record: 6 call(s), worst case $0.018" in capsys.readouterr().out


def test_a_key_in_a_prompt_is_sent_but_not_kept_in_the_jsonl_on_disk(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, batch_api: batchserver.BatchServer
) -> None:
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    case_file = root / "cases" / f"{EVAL}.yaml"
    case_file.write_text(case_file.read_text(encoding="utf-8").replace("a number", f"my key {FAKE_KEY}"), "utf-8")
    result = _run(pytester, "--record-mode", "once")
    sent = [json.dumps(r.body) for r in fake_openai.chat_requests]
    assert len(sent) == len(CASES) * SAMPLES and all(FAKE_KEY in body for body in sent)  # the request as written
    jsonl = (ep.latest(root) / "batch-1.jsonl").read_text(encoding="utf-8")
    assert "my key REDACTED" in jsonl
    for path in [*ep.cassettes(root, EVAL), *ep.latest(root).iterdir()]:
        assert FAKE_KEY not in path.read_text(encoding="utf-8", errors="replace"), path
    assert FAKE_KEY not in result.stdout.str()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"stream": True}, "streams: the Batch API answers whole"),
        ({"turns": ["hi", "and again?"]}, "is a conversation"),
    ],
)
def test_streams_and_conversations_are_not_batched_and_nothing_is_sent(
    pytester: pytest.Pytester, batch_api: batchserver.BatchServer, change: dict[str, Any], says: str
) -> None:
    root = _project(pytester.path, batch_api.base_url)
    case_file = root / "cases" / f"{EVAL}.yaml"
    doc = yaml.safe_load(case_file.read_text(encoding="utf-8"))
    doc["cases"][0] |= change
    if "turns" in change:
        del doc["cases"][0]["messages"][-1]  # the conversation's first user turn is its first turn
    case_file.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = _run(pytester, "--batch")
    assert says in result.stdout.str(), result.stdout.str()
    assert batch_api.uploads == 0 and batch_api.created == 0


def test_split_over_the_file_size_limit(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    batch_api: batchserver.BatchServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = _project(pytester.path, batch_api.base_url, batch={"poll_s": 0.05})
    line = {"custom_id": "tiny/mini/alpha/0", "method": "POST", "url": "/v1/chat/completions"}
    # the request as rendered: the case's messages and the case file's defaults (tests.evalproject.write_cases)
    body = {
        "model": PRICED,
        "messages": ep.json_case("alpha")["messages"],
        "max_tokens": 50,
        "response_format": {"type": "json_object"},
    }
    monkeypatch.setattr(batch, "MAX_FILE_BYTES", 2 * len(json.dumps({**line, "body": body})) + 50)
    _run(pytester, "--record-mode", "once")
    sizes = [len(b["custom_ids"]) for b in _batch_json(root)["batches"]]
    assert sizes == [2, 2, 2] and batch_api.created == 3
    assert all(len(p.read_bytes()) <= batch.MAX_FILE_BYTES for p in ep.latest(root).glob("batch-*.jsonl"))
    assert len(ep.results(root)) == len(CASES) * SAMPLES


def test_the_batch_server_walks_the_documented_states_and_cancels(fake_openai: FakeOpenAI) -> None:
    faults = batchserver.Faults(step_s=0.15, hold=threading.Event())
    with batchserver.serve(fake_openai.base_url, faults) as server:
        api = batch.api_client(evals.Endpoint("custom", server.base_url, None, 10.0, 0))
        lines = b"".join(
            json.dumps(
                {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}
            ).encode()
            + b"\n"
            for i in range(3)
        )
        uploaded = api.files.create(file=("in.jsonl", lines, "application/jsonl"), purpose="batch")
        created = api.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        seen = [created.status]
        faults.hold.set()
        while seen[-1] not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.02)
            status = api.batches.retrieve(created.id).status
            if status != seen[-1]:
                seen.append(status)
        assert seen == ["validating", "in_progress", "finalizing", "completed"]
        done = api.batches.retrieve(created.id)
        assert done.request_counts is not None and done.request_counts.completed == 3 and done.output_file_id
        out = [json.loads(t) for t in api.files.content(done.output_file_id).content.splitlines()]
        assert [(o["custom_id"], o["response"]["status_code"]) for o in out] == [("c0", 200), ("c1", 200), ("c2", 200)]

        faults.hold = threading.Event()  # the next batch waits before its first line: cancelled by its owner
        second = api.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        while api.batches.retrieve(second.id).status != "in_progress":
            time.sleep(0.02)
        assert api.batches.cancel(second.id).status == "cancelling"
        faults.hold.set()
        while api.batches.retrieve(second.id).status == "cancelling":
            time.sleep(0.02)
        ended = api.batches.retrieve(second.id)
        assert ended.status == "cancelled" and ended.output_file_id is None
        assert [b.id for b in api.batches.list(limit=10).data] == [second.id, created.id]
        assert server.created == 2 and server.uploads == 1 and server.executed == 3
        api.close()
