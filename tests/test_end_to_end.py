"""End to end: temp projects run through the promptvcr pytest plugin against the fake OpenAI server on 127.0.0.1.

Each test builds a project (cases/, evals/, conftest.py) with ``tests.evalproject``, records it against
``fake_openai`` and/or replays it, then checks what the server received, the cassettes, the reports and the
terminal output.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import _main as cli
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

EVAL = "tiny"
CASES = ("alpha", "beta")
VARIANTS: dict[str, dict[str, Any]] = {"mini": {"model": "m-mini"}, "maxi": {"model": "m-maxi"}}
MODEL_OF = {name: str(spec["model"]) for name, spec in VARIANTS.items()}
SAMPLES = 3
RECORD = ("--record-mode", "once")
QUIET = ("-p", "no:cacheprovider")


# ---------------------------------------------------------------------------------------------------- helpers


def _project(
    root: Path,
    base_url: str,
    *,
    min_pass_rate: float | None = 0,
    cases: tuple[str, ...] = CASES,
    variants: dict[str, dict[str, Any]] | None = None,
    samples: int = SAMPLES,
    **eval_extra: Any,
) -> Path:
    """The tiny eval: ``cases`` × ``variants``, each asking for JSON and checked with json_valid."""
    ep.init_project(root)
    case_file = ep.write_cases(root, EVAL, [ep.json_case(c, min_pass_rate=min_pass_rate) for c in cases])
    ep.write_eval(
        root,
        EVAL,
        base_url=base_url,
        cases=[case_file],
        variants=variants if variants is not None else VARIANTS,
        samples=samples,
        **eval_extra,
    )
    return root


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("evals", *QUIET, *args)


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def _reports_by_item(rec: pytest.HookRecorder) -> dict[str, pytest.TestReport]:
    """The call-phase (or skip) report of every item, keyed by the item's name ``case[variant]``."""
    out: dict[str, pytest.TestReport] = {}
    for rep in rec.getreports("pytest_runtest_logreport"):
        if rep.when == "call" or (rep.when == "setup" and rep.skipped):
            out[rep.nodeid.rsplit("::", 1)[1]] = rep
    return out


def _items(cases: tuple[str, ...] = CASES, variants: tuple[str, ...] = tuple(VARIANTS)) -> set[str]:
    return {f"{c}[{v}]" for c in cases for v in variants}


def _group_outputs(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[str]]:
    """Outputs per (case, model), in sample order."""
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for row in rows:
        groups.setdefault((row["case"], row["model"]), []).append((int(row["sample"]), row["output"]))
    return {key: [out for _, out in sorted(values)] for key, values in groups.items()}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _sequence(replies: list[Reply]) -> Callable[[dict[str, Any]], Reply]:
    """A fake-server script answering ``replies`` in order, then repeating the last one."""
    lock = threading.Lock()
    state = {"i": 0}

    def respond(body: dict[str, Any]) -> Reply:
        with lock:
            reply = replies[min(state["i"], len(replies) - 1)]
            state["i"] += 1
        return reply

    return respond


# ---------------------------------------------------------------------------------------------------- 1. record/replay


def test_record_then_replay_sends_nothing_and_reproduces_every_row(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    script = ep.Numbered()
    fake_openai.respond = script

    recorded = _run(pytester, *RECORD)
    assert recorded.ret == pytest.ExitCode.OK, _output(recorded)
    recorded.assert_outcomes(passed=len(CASES) * len(VARIANTS))
    sent = len(fake_openai.chat_requests)
    assert sent == len(CASES) * len(VARIANTS) * SAMPLES
    # every request the server got is one of the planned (case, model) pairs, each exactly SAMPLES times
    assert {key: len(v) for key, v in script.sent.items()} == {
        (c, MODEL_OF[v]): SAMPLES for c in CASES for v in VARIANTS
    }

    files = ep.cassettes(root, EVAL)
    assert [p.relative_to(root / "cassettes" / EVAL).as_posix() for p in files] == sorted(
        f"{v}/{c}.yaml" for c in CASES for v in VARIANTS
    )
    for path in files:
        assert len(ep.interactions(path)) == SAMPLES

    first = ep.results(root)
    first_run = ep.latest(root)
    assert len(first) == len(CASES) * len(VARIANTS) * SAMPLES
    assert {r["replayed"] for r in first} == {"False"}
    # samples run concurrently: each got one of the answers the server sent for its request, each answer once
    assert {k: sorted(v) for k, v in _group_outputs(first).items()} == {k: sorted(v) for k, v in script.sent.items()}
    # the cycle really mixed valid and invalid JSON, and json_valid says which is which
    assert {r["json_valid"] for r in first} == {"True", "False"}
    assert all(r["json_valid"] == str(_is_json(r["output"])) for r in first)

    replayed = _run(pytester)
    assert replayed.ret == pytest.ExitCode.OK, _output(replayed)
    replayed.assert_outcomes(passed=len(CASES) * len(VARIANTS))
    assert len(fake_openai.chat_requests) == sent, "replay reached the server"
    assert ep.latest(root) != first_run, "replay wrote no new report"
    second = ep.results(root)
    assert {r["replayed"] for r in second} == {"True"}
    assert ep.without(second, "replayed") == ep.without(first, "replayed")
    # identical requests (same case, same variant) replay their distinct answers, each to the sample that got it
    replay_order = _group_outputs(second)
    assert replay_order == _group_outputs(first)
    assert all(len(set(outputs)) == SAMPLES for outputs in replay_order.values())


# ---------------------------------------------------------------------------------------------------- 2. gates


def _recorded(pytester: pytest.Pytester, fake_openai: FakeOpenAI, **project: Any) -> tuple[Path, dict[str, float]]:
    """Record the tiny eval (about half the answers invalid JSON); returns the root and json_valid_rate per variant."""
    # one request at a time: which answer (valid or not) each variant gets depends on the order they arrive in
    root = _project(pytester.path, fake_openai.base_url, limits={"concurrency": 1}, **project)
    fake_openai.respond = ep.Numbered()
    recorded = _run(pytester, *RECORD)
    assert recorded.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), _output(recorded)
    rows = ep.results(root)
    rates: dict[str, float] = {}
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        rates[variant] = sum(r["json_valid"] == "True" for r in mine) / len(mine)
    assert all(0.25 < rate < 0.99 for rate in rates.values()), rates  # the gates below rely on a mixed recording
    return root, rates


def _regate(root: Path, base_url: str, gates: list[dict[str, Any]], **project: Any) -> None:
    """Rewrite the eval with new gates (and/or variants): nothing in a request changes, so the cassettes still match."""
    _project(root, base_url, gates=gates, **project)


def _gate_cells(root: Path) -> dict[str, str]:
    return {row["variant"]: row["gates"] for row in ep.summary(root)}


def _table_line(out: str, variant: str) -> str:
    """The terminal summary table's line for ``variant`` of the tiny eval."""
    (line,) = [line for line in out.splitlines() if re.match(rf"{EVAL}\s+{re.escape(variant)}\s", line)]
    return line


def test_passing_gate_exits_0(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, rates = _recorded(pytester, fake_openai)
    _regate(root, fake_openai.base_url, [{"metric": "json_valid_rate", "op": ">=", "value": 0.25}])
    before = len(fake_openai.chat_requests)
    result = _run(pytester)
    out = _output(result)
    assert result.ret == pytest.ExitCode.OK, out
    assert "promptvcr summary" in out
    assert "promptvcr gates FAILED" not in out
    for variant, rate in rates.items():
        assert f"PASS json_valid_rate >= 0.25 (observed {rate:.4f}, n={len(CASES) * SAMPLES})" in _table_line(
            out, variant
        )
    assert all(cell.startswith("PASS json_valid_rate") for cell in _gate_cells(root).values())
    assert len(fake_openai.chat_requests) == before


def test_failing_gate_exits_1_with_items_passing(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, rates = _recorded(pytester, fake_openai)
    _regate(root, fake_openai.base_url, [{"metric": "json_valid_rate", "op": ">=", "value": 0.99}])
    result = _run(pytester)
    out = _output(result)
    result.assert_outcomes(passed=len(CASES) * len(VARIANTS))  # min_pass_rate 0: only the gate fails
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "promptvcr gates FAILED" in out
    for variant, rate in rates.items():
        assert f"FAIL json_valid_rate >= 0.99 (observed {rate:.4f}, n={len(CASES) * SAMPLES})" in _table_line(
            out, variant
        )
    assert all(cell.startswith("FAIL json_valid_rate") for cell in _gate_cells(root).values())
    assert "FAIL json_valid_rate" in (ep.latest(root) / "summary.md").read_text(encoding="utf-8")


def test_gate_with_too_few_samples_is_insufficient_never_pass(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root, _ = _recorded(pytester, fake_openai)
    # both would PASS on the data (json_valid_rate > 0.25, pass_rate > 0.1) if min_n were met
    gates = [
        {"metric": "json_valid_rate", "op": ">=", "value": 0.25, "min_n": 1000},
        {"metric": "pass_rate", "op": ">=", "value": 0.1, "min_n": 1000},
    ]
    _regate(root, fake_openai.base_url, gates)
    result = _run(pytester)
    out = _output(result)
    n = len(CASES) * SAMPLES
    assert out.count(f"INSUFFICIENT DATA json_valid_rate (n={n} < min_n=1000)") == len(VARIANTS), out
    assert out.count(f"INSUFFICIENT DATA pass_rate (n={n} < min_n=1000)") == len(VARIANTS), out
    assert "PASS" not in out
    for cell in _gate_cells(root).values():
        assert "INSUFFICIENT DATA" in cell
        assert "PASS" not in cell
    assert "PASS" not in (ep.latest(root) / "summary.md").read_text(encoding="utf-8")


def test_xfail_variant_with_failing_gate_exits_0(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, rates = _recorded(pytester, fake_openai)
    reason = "a weak baseline is expected to fall short"
    variants = {name: {**spec, "xfail": reason} for name, spec in VARIANTS.items()}
    gates = [{"metric": "json_valid_rate", "op": ">=", "value": 0.99}]
    # min_pass_rate 1: every item has invalid answers, so every item falls short
    _regate(root, fake_openai.base_url, gates, variants=variants, min_pass_rate=1)
    result = _run(pytester, "-rx")
    out = _output(result)
    assert result.ret == pytest.ExitCode.OK, out
    result.assert_outcomes(xfailed=len(CASES) * len(VARIANTS))
    assert reason in out
    assert "promptvcr gates FAILED" not in out
    for variant, rate in rates.items():
        line = _table_line(out, variant)
        assert f"FAIL json_valid_rate >= 0.99 (observed {rate:.4f}" in line
        assert f"(expected: {reason})" in line
    assert {row["xfail"] for row in ep.summary(root)} == {reason}


# ---------------------------------------------------------------------------------------------------- 3. missing


def test_missing_recording_fails_naming_case_variant_and_command(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester.path, fake_openai.base_url)
    rec = pytester.inline_run("evals", *QUIET)
    assert rec.ret == pytest.ExitCode.TESTS_FAILED
    reports = _reports_by_item(rec)
    assert set(reports) == _items()
    for name, rep in reports.items():
        case, variant = name[:-1].split("[")
        assert rep.failed, name
        assert f"case {case!r} in variant {variant!r}" in rep.longreprtext
        assert f"make record EVAL={EVAL}" in rep.longreprtext
        assert "missing_recording" in rep.longreprtext
    assert fake_openai.chat_requests == []
    assert {r["error"] for r in ep.results(pytester.path)} == {"missing_recording"}


def test_missing_recording_skipped_when_eval_says_skip(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    gates = [{"metric": "json_valid_rate", "op": ">=", "value": 0.99, "min_n": 1}]
    _project(pytester.path, fake_openai.base_url, missing_recordings="skip", gates=gates)
    rec = pytester.inline_run("evals", *QUIET)
    assert rec.ret == pytest.ExitCode.OK
    reports = _reports_by_item(rec)
    assert set(reports) == _items()
    for name, rep in reports.items():
        case, variant = name[:-1].split("[")
        assert rep.skipped, name
        assert isinstance(rep.longrepr, tuple)
        message = rep.longrepr[2]
        assert f"case {case!r} in variant {variant!r}" in message
        assert f"make record EVAL={EVAL}" in message
    assert fake_openai.chat_requests == []
    assert {r["outcome"] for r in ep.results(pytester.path)} == {"skipped"}


def _change_alpha_prompt(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> tuple[Path, int]:
    """Record the tiny eval, then edit alpha's prompt; returns the root and the requests sent so far."""
    root = _project(pytester.path, fake_openai.base_url)
    assert _run(pytester, *RECORD).ret == pytest.ExitCode.OK
    case_file = root / "cases" / f"{EVAL}.yaml"
    text = case_file.read_text(encoding="utf-8")
    assert text.count("case alpha: a number") == 1
    case_file.write_text(text.replace("case alpha: a number", "case alpha: a different number"), encoding="utf-8")
    return root, len(fake_openai.chat_requests)


def test_prompt_changed_after_recording_fails_in_replay(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _, sent = _change_alpha_prompt(pytester, fake_openai)
    rec = pytester.inline_run("evals", *QUIET)
    assert rec.ret == pytest.ExitCode.TESTS_FAILED
    reports = _reports_by_item(rec)
    for variant in VARIANTS:
        assert reports[f"alpha[{variant}]"].failed
        assert reports[f"beta[{variant}]"].passed
    assert len(fake_openai.chat_requests) == sent


def test_prompt_changed_after_recording_says_it_differs(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, _ = _change_alpha_prompt(pytester, fake_openai)
    rec = pytester.inline_run("evals", *QUIET)
    reports = _reports_by_item(rec)
    for variant in VARIANTS:
        message = reports[f"alpha[{variant}]"].longreprtext
        assert f"case 'alpha' in variant {variant!r}" in message
        assert "differs from the recording" in message
        assert f"promptvcr run {EVAL} --record-mode all -- -k 'alpha[{variant}]'" in message
        assert "Traceback" not in message and "CannotOverwriteExistingCassetteException" not in message
    rows = [r for r in ep.results(root) if r["case"] == "alpha"]
    assert len(rows) == len(VARIANTS) * SAMPLES
    assert {r["error"] for r in rows} == {"missing_recording"}


def test_replaying_more_samples_than_recorded_says_how_many(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url, cases=("alpha",), variants={"mini": VARIANTS["mini"]})
    assert _run(pytester, *RECORD).ret == pytest.ExitCode.OK
    rec = pytester.inline_run("evals", *QUIET, "--samples", str(SAMPLES + 1))
    assert rec.ret == pytest.ExitCode.TESTS_FAILED
    message = _reports_by_item(rec)["alpha[mini]"].longreprtext
    assert f"1 of {SAMPLES + 1} samples errored" in message
    assert f"{SAMPLES} answer(s) recorded for {SAMPLES + 1} sample(s)" in message
    assert f"promptvcr run {EVAL} --record-mode new_episodes -- -k 'alpha[mini]'" in message
    rows = ep.results(root)
    assert [r["outcome"] for r in rows] == ["passed"] * SAMPLES + ["errored"]


# ---------------------------------------------------------------------------------------------------- 4. secrets

KEY = "sk-proj-FAKEkey0123456789abcdefghijABCDEFGHIJklmnop"  # promptvcr: allow-secret
ORG = "org-FAKEorg0123456789abcd"  # promptvcr: allow-secret
PROJECT = "proj_FAKEproj0123456789abcd"  # promptvcr: allow-secret
# response-header values deliberately unlike any pattern secrets.redact knows: only dropping the header hides them
RESPONSE_ORG = "fake-org-name-7f3a9c21"
RESPONSE_PROJECT = "fake-project-name-42b1e0"
COOKIE = "FAKEcookie5ecretValue0042"
REQUEST_ID = "FAKEreqid-0c2f9a7e51d4"
PLANTED = {
    "api key": KEY,
    "org id": ORG,
    "project id": PROJECT,
    "response org": RESPONSE_ORG,
    "response project": RESPONSE_PROJECT,
    "cookie": COOKIE,
    "request id": REQUEST_ID,
}
SECRET_HEADERS = {
    "openai-organization": RESPONSE_ORG,
    "openai-project": RESPONSE_PROJECT,
    "set-cookie": f"__session={COOKIE}; Path=/; HttpOnly",
    "x-request-id": REQUEST_ID,
}


@pytest.fixture
def planted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVCR_TEST_KEY", KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", ORG)
    monkeypatch.setenv("OPENAI_PROJECT_ID", PROJECT)


def _leaks(root: Path, output: str) -> list[str]:
    places = {"pytest output": output}
    for folder in ("cassettes", "reports"):
        places |= {str(p.relative_to(root)): text for p, text in ep.texts_under(root / folder).items()}
    return [f"{what} in {where}" for where, text in places.items() for what, value in PLANTED.items() if value in text]


def _assert_sent_identity(fake_openai: FakeOpenAI) -> None:
    """The SDK really sent the planted key, org and project: otherwise their absence below would prove nothing."""
    assert fake_openai.chat_requests
    for request in fake_openai.chat_requests:
        assert request.headers.get("authorization") == f"Bearer {KEY}"
        assert request.headers.get("openai-organization") == ORG
        assert request.headers.get("openai-project") == PROJECT


@pytest.mark.usefixtures("planted_env")
def test_no_secret_reaches_cassettes_reports_or_output(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    # min_pass_rate 1 makes items fail, so their failure text is part of the output that is searched
    root = _project(pytester.path, fake_openai.base_url, min_pass_rate=1, endpoint={"api_key_env": "PVCR_TEST_KEY"})
    script = ep.Numbered()

    def respond(body: dict[str, Any]) -> Reply:
        reply = script(body)
        return Reply(reply.status, reply.body, {**reply.headers, **SECRET_HEADERS})

    fake_openai.respond = respond
    recorded = _run(pytester, *RECORD, "-rA", "-v")
    assert recorded.ret == pytest.ExitCode.TESTS_FAILED, _output(recorded)
    _assert_sent_identity(fake_openai)
    files = ep.cassettes(root, EVAL)
    assert len(files) == len(CASES) * len(VARIANTS)
    for path in files:
        recorded_interactions = ep.interactions(path)
        assert len(recorded_interactions) == SAMPLES
        for interaction in recorded_interactions:
            assert {h.lower() for h in interaction["request"]["headers"]} <= {"content-type", "accept"}
            assert not {h.lower() for h in interaction["response"]["headers"]} & set(SECRET_HEADERS)
    replayed = _run(pytester, "-rA", "-v")
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    assert _leaks(root, _output(recorded) + _output(replayed)) == []


@pytest.mark.usefixtures("planted_env")
def test_key_echoed_by_a_401_stays_out_of_output_and_reports(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(
        pytester.path, fake_openai.base_url, cases=("alpha",), samples=2, endpoint={"api_key_env": "PVCR_TEST_KEY"}
    )
    error = {
        "message": f"Incorrect API key provided: {KEY}.",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
    fake_openai.respond = _sequence([Reply(401, {"error": error}, dict(SECRET_HEADERS))])
    recorded = _run(pytester, *RECORD, "-rA", "-v")
    assert recorded.ret == pytest.ExitCode.TESTS_FAILED
    _assert_sent_identity(fake_openai)
    out = _output(recorded)
    assert "Incorrect API key provided" in out  # the server's message is shown …
    rows = ep.results(root)
    assert {r["error"] for r in rows} == {"refused_by_endpoint"}
    assert all("HTTP 401" in r["error_message"] and "Incorrect API key provided" in r["error_message"] for r in rows)
    replayed = _run(pytester, "-rA", "-v")
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED
    out += _output(replayed)
    # … but not the key, in neither run's output nor any report
    leaks = [line for line in out.splitlines() if KEY in line]
    assert leaks == []
    for path, text in ep.texts_under(root / "reports").items():
        assert KEY not in text, path


@pytest.mark.usefixtures("planted_env")
def test_key_echoed_by_a_401_stays_out_of_the_cassette(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(
        pytester.path,
        fake_openai.base_url,
        cases=("alpha",),
        variants={"mini": VARIANTS["mini"]},
        samples=1,
        endpoint={"api_key_env": "PVCR_TEST_KEY"},
    )
    error = {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}
    fake_openai.respond = _sequence([Reply(401, {"error": error})])
    assert _run(pytester, *RECORD).ret == pytest.ExitCode.TESTS_FAILED
    (cassette,) = ep.cassettes(root, EVAL)
    assert [i["response"]["status"]["code"] for i in ep.interactions(cassette)] == [401]
    assert KEY not in cassette.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------- 5. errors

REFUSAL = "response_format json_schema is not supported"


def test_endpoint_refusal_is_recorded_and_replays_the_same_error(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root = _project(pytester.path, fake_openai.base_url, cases=("alpha",), variants={"mini": VARIANTS["mini"]})
    fake_openai.respond = _sequence([Reply(400, {"error": {"message": REFUSAL, "type": "invalid_request_error"}})])

    rec = pytester.inline_run("evals", *QUIET, *RECORD)
    assert rec.ret == pytest.ExitCode.TESTS_FAILED
    assert len(fake_openai.chat_requests) == SAMPLES  # a 400 is final: no retries
    failure = _reports_by_item(rec)["alpha[mini]"]
    assert failure.failed
    assert f"{SAMPLES} of {SAMPLES} samples errored" in failure.longreprtext
    assert "refused_by_endpoint" in failure.longreprtext
    assert REFUSAL in failure.longreprtext
    first = ep.results(root)
    assert [r["outcome"] for r in first] == ["errored"] * SAMPLES
    assert {r["error"] for r in first} == {"refused_by_endpoint"}
    assert all(REFUSAL in r["error_message"] and "400" in r["error_message"] for r in first)

    (cassette,) = ep.cassettes(root, EVAL)
    statuses = [i["response"]["status"]["code"] for i in ep.interactions(cassette)]
    assert statuses == [400] * SAMPLES

    rec = pytester.inline_run("evals", *QUIET)
    assert rec.ret == pytest.ExitCode.TESTS_FAILED
    assert len(fake_openai.chat_requests) == SAMPLES
    replay_failure = _reports_by_item(rec)["alpha[mini]"]
    assert REFUSAL in replay_failure.longreprtext
    assert "refused_by_endpoint" in replay_failure.longreprtext
    second = ep.results(root)
    columns = ("outcome", "error", "error_message", "case", "variant", "sample")
    assert [{c: r[c] for c in columns} for r in second] == [{c: r[c] for c in columns} for r in first]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_failure_is_not_recorded(pytester: pytest.Pytester, fake_openai: FakeOpenAI, status: int) -> None:
    root = _project(
        pytester.path,
        fake_openai.base_url,
        cases=("alpha",),
        variants={"mini": VARIANTS["mini"]},
        samples=1,
        endpoint={"max_retries": 1},
    )
    answer = '{"n": 1}'
    fake_openai.respond = _sequence(
        [
            Reply(status, {"error": {"message": f"try again ({status})"}}, {"retry-after-ms": "20"}),
            Reply(200, completion(answer, model="m-mini")),
        ]
    )
    recorded = _run(pytester, *RECORD)
    assert recorded.ret == pytest.ExitCode.OK, _output(recorded)
    assert len(fake_openai.chat_requests) == 2  # the failure, then the retry
    (cassette,) = ep.cassettes(root, EVAL)
    stored = ep.interactions(cassette)
    assert [i["response"]["status"]["code"] for i in stored] == [200]
    assert f"try again ({status})" not in cassette.read_text(encoding="utf-8")
    assert [r["output"] for r in ep.results(root)] == [answer]

    replayed = _run(pytester)
    assert replayed.ret == pytest.ExitCode.OK, _output(replayed)
    assert len(fake_openai.chat_requests) == 2
    assert [(r["outcome"], r["output"], r["replayed"]) for r in ep.results(root)] == [("passed", answer, "True")]


# ---------------------------------------------------------------------------------------------------- 6. pytest


def test_k_selects_by_case_id_and_variant(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, _ = _recorded(pytester, fake_openai)
    for expression, cases, variants in [
        ("alpha", ("alpha",), tuple(VARIANTS)),
        ("maxi", CASES, ("maxi",)),
        ("beta and mini", ("beta",), ("mini",)),
    ]:
        result = _run(pytester, "-k", expression)
        selected = len(cases) * len(variants)
        result.assert_outcomes(passed=selected, deselected=len(CASES) * len(VARIANTS) - selected)
        rows = ep.results(root)
        assert {(r["case"], r["variant"]) for r in rows} == {(c, v) for c in cases for v in variants}, expression


def test_x_stops_after_first_failure(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester.path, fake_openai.base_url)  # nothing recorded: every item would fail
    everything = _run(pytester)
    everything.assert_outcomes(failed=len(CASES) * len(VARIANTS))
    stopped = _run(pytester, "-x")
    stopped.assert_outcomes(failed=1)
    assert stopped.ret == pytest.ExitCode.TESTS_FAILED
    rows = ep.results(pytester.path)
    assert len({(r["case"], r["variant"]) for r in rows}) == 1


def test_junitxml_names_cases_and_carries_failure_reasons(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, _ = _recorded(pytester, fake_openai, min_pass_rate=1)
    rows = ep.results(root)
    failing = {f"{r['case']}[{r['variant']}]" for r in rows if r["outcome"] == "failed"}
    assert failing  # the recording has invalid answers
    junit = root / "junit.xml"
    result = _run(pytester, f"--junitxml={junit}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = ET.parse(junit).getroot().iter("testcase")
    seen: dict[str, ET.Element] = {c.attrib["name"]: c for c in cases}
    assert set(seen) == _items()
    for name, element in seen.items():
        failure = element.find("failure")
        if name not in failing:
            assert failure is None, name
            continue
        assert failure is not None, name
        reasons = f"{failure.attrib.get('message', '')}\n{failure.text or ''}"
        assert "json_valid: not valid JSON" in reasons, name
        assert "samples passed (min_pass_rate 1)" in reasons, name


@pytest.mark.slow
def test_xdist_gives_the_same_rows_and_summary(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root, _ = _recorded(pytester, fake_openai, gates=[{"metric": "json_valid_rate", "op": ">=", "value": 0.25}])
    serial = _run(pytester)
    assert serial.ret == pytest.ExitCode.OK
    serial_rows, serial_summary = ep.results(root), ep.summary(root)
    serial_md = (ep.latest(root) / "summary.md").read_text(encoding="utf-8")

    parallel = _run(pytester, "-n", "2")
    assert parallel.ret == pytest.ExitCode.OK, _output(parallel)
    assert "2 workers" in _output(parallel)
    parallel.assert_outcomes(passed=len(CASES) * len(VARIANTS))

    def key(row: dict[str, str]) -> tuple[str, ...]:
        return tuple(row.values())

    assert sorted(ep.results(root), key=key) == sorted(serial_rows, key=key)
    assert len(serial_rows) == len(CASES) * len(VARIANTS) * SAMPLES
    assert ep.summary(root) == serial_summary
    assert (ep.latest(root) / "summary.md").read_text(encoding="utf-8") == serial_md
    assert "promptvcr summary" in _output(parallel)


def test_eval_and_variant_options_filter(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    # a second eval whose name differs from its file stem: --eval takes either
    (root / "evals" / "second.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "other",
                "cases": [f"cases/{EVAL}.yaml"],
                "endpoint": {"base_url": fake_openai.base_url},
                "samples": 1,
                "variants": {"solo": {"model": "m-solo"}, "mini": {"model": "m-mini2"}},
            }
        ),
        encoding="utf-8",
    )

    def collected(*args: str) -> set[str]:
        result = _run(pytester, "--collect-only", "-q", *args)
        return {line.strip() for line in result.outlines if "::" in line}

    tiny = {f"evals/{EVAL}.yaml::{i}" for i in _items()}
    other = {f"evals/second.yaml::{i}" for i in _items(variants=("solo", "mini"))}
    assert collected() == tiny | other
    assert collected("--eval", EVAL) == tiny
    assert collected("--eval", "other") == other
    assert collected("--eval", "second") == other
    assert collected("--variant", "mini") == {i for i in tiny | other if i.endswith("[mini]")}
    assert collected("--variant", "solo", "--variant", "maxi") == {
        i for i in tiny | other if i.endswith(("[solo]", "[maxi]"))
    }

    fake_openai.respond = ep.Numbered()
    result = _run(pytester, *RECORD, "--eval", "other", "--variant", "solo")
    assert result.ret == pytest.ExitCode.OK, _output(result)
    result.assert_outcomes(passed=len(CASES))
    assert len(fake_openai.chat_requests) == len(CASES)  # samples: 1, one variant
    assert {str(r.body["model"]) for r in fake_openai.chat_requests} == {"m-solo"}
    assert {(r["eval"], r["variant"]) for r in ep.results(root)} == {("other", "solo")}
    assert ep.cassettes(root, EVAL) == []


def test_samples_option_overrides_the_files(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    fake_openai.respond = ep.Numbered()
    samples = SAMPLES + 2
    result = _run(pytester, *RECORD, "--samples", str(samples))
    assert result.ret == pytest.ExitCode.OK, _output(result)
    assert len(fake_openai.chat_requests) == len(CASES) * len(VARIANTS) * samples
    rows = ep.results(root)
    assert sorted({int(r["sample"]) for r in rows}) == list(range(samples))
    assert all(len(ep.interactions(p)) == samples for p in ep.cassettes(root, EVAL))
    # replaying fewer samples than recorded gives the first ones their own answers
    _run(pytester, "--samples", "2")
    assert _group_outputs(ep.results(root)) == {k: v[:2] for k, v in _group_outputs(rows).items()}


# ---------------------------------------------------------------------------------------------------- 7. cli


def test_cli_run_replays_and_returns_the_exit_code(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = _recorded(pytester, fake_openai, gates=[{"metric": "json_valid_rate", "op": ">=", "value": 0.25}])
    monkeypatch.chdir(root)
    sent = len(fake_openai.chat_requests)
    first_run = ep.latest(root)

    assert cli.main(["run", EVAL, "--", *QUIET]) == 0
    assert len(fake_openai.chat_requests) == sent
    assert ep.latest(root) != first_run
    assert {r["replayed"] for r in ep.results(root)} == {"True"}

    _regate(root, fake_openai.base_url, [{"metric": "json_valid_rate", "op": ">=", "value": 0.99}])
    assert cli.main(["run", EVAL, "--", *QUIET]) == 1
    assert len(fake_openai.chat_requests) == sent


def test_cli_run_leaves_out_anyios_plugin_unless_the_user_names_it(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = _recorded(pytester, fake_openai)
    monkeypatch.chdir(root)
    with (root / "conftest.py").open("a", encoding="utf-8") as conftest:  # the run's own word on its plugins
        conftest.write(
            "\n\ndef pytest_configure(config):\n"
            "    (config.rootpath / 'anyio.txt').write_text(str(config.pluginmanager.has_plugin('anyio')))\n"
        )
    assert cli.main(["run", EVAL, "--", *QUIET]) == 0
    assert (root / "anyio.txt").read_text() == "False"
    assert {r["replayed"] for r in ep.results(root)} == {"True"}
    assert cli.main(["run", EVAL, "--", *QUIET, "-p", "anyio"]) == 0
    assert (root / "anyio.txt").read_text() == "True"


def test_cli_run_unknown_eval_returns_2_listing_known_evals(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = _project(pytester.path, fake_openai.base_url)
    ep.write_eval(root, "zeta", base_url=fake_openai.base_url, cases=[f"cases/{EVAL}.yaml"], variants=VARIANTS)
    monkeypatch.chdir(root)
    assert cli.main(["run", "no-such-eval"]) == 2
    err = capsys.readouterr().err
    assert "no eval 'no-such-eval'" in err
    listed = re.search(r"\(([^()]*)\)\s*$", err)
    assert listed is not None, err
    assert set(listed.group(1).split(", ")) == {EVAL, "zeta"}
    assert not (root / "reports").exists()
    assert fake_openai.chat_requests == []


# ---------------------------------------------------------------------------------------------------- 8. gzip


def test_gzip_answer_is_stored_decoded_and_replays(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    # one at a time: sample i gets answers[i], in the order the server sends them
    root = _project(
        pytester.path,
        fake_openai.base_url,
        cases=("alpha",),
        variants={"mini": VARIANTS["mini"]},
        limits={"concurrency": 1},
    )
    answers = [json.dumps({"n": i, "word": f"zebra{i}"}) for i in range(SAMPLES)]
    fake_openai.respond = _sequence(
        [
            Reply(
                200,
                gzip.compress(json.dumps(completion(a, model="m-mini")).encode()),
                {"content-encoding": "gzip"},
            )
            for a in answers
        ]
    )
    recorded = _run(pytester, *RECORD)
    assert recorded.ret == pytest.ExitCode.OK, _output(recorded)
    assert [r["output"] for r in ep.results(root)] == answers

    (cassette,) = ep.cassettes(root, EVAL)
    text = cassette.read_text(encoding="utf-8")
    for i in range(SAMPLES):
        assert f"zebra{i}" in text  # readable in the YAML, not gzip or base64
    assert "!!binary" not in text
    stored = ep.interactions(cassette)
    assert len(stored) == SAMPLES
    for interaction, answer in zip(stored, answers, strict=True):
        response = interaction["response"]
        assert "content-encoding" not in {h.lower() for h in response["headers"]}
        body = json.loads(response["body"]["string"])
        assert body["choices"][0]["message"]["content"] == answer

    sent = len(fake_openai.chat_requests)
    replayed = _run(pytester)
    assert replayed.ret == pytest.ExitCode.OK, _output(replayed)
    assert len(fake_openai.chat_requests) == sent
    rows = ep.results(root)
    assert [(r["output"], r["replayed"]) for r in rows] == [(a, "True") for a in answers]


def test_recording_without_the_key_errors_every_sample_with_the_fix(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PVCR_UNSET_KEY", raising=False)
    root = _project(pytester.path, fake_openai.base_url, endpoint={"api_key_env": "PVCR_UNSET_KEY"})
    result = _run(pytester, *RECORD)
    out = _output(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "PVCR_UNSET_KEY is not set: export it or put it in .env" in out
    assert "Traceback" not in out
    assert fake_openai.chat_requests == []
    rows = ep.read_csv(ep.latest(root) / "results.csv")
    assert len(rows) == len(CASES) * len(VARIANTS) * SAMPLES
    assert {(r["outcome"], r["error"]) for r in rows} == {("errored", "config")}


def test_a_dead_endpoint_fails_the_run_fast_with_one_clear_error(pytester: pytest.Pytester) -> None:
    import socket
    import time

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = _project(pytester.path, f"http://127.0.0.1:{port}/v1", samples=5, endpoint={"max_retries": 2})
    start = time.monotonic()
    result = _run(pytester, *RECORD)
    elapsed = time.monotonic() - start
    rows = ep.read_csv(ep.latest(root) / "results.csv")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert {(r["outcome"], r["error"]) for r in rows} == {("errored", "connection")}
    assert len(rows) == len(CASES) * len(VARIANTS) * 5
    # one sample tried (with the SDK's retries); every other one refused at once, naming the endpoint
    assert sum("is not answering, not sent" in r["error_message"] for r in rows) == len(rows) - 1
    assert elapsed < 15, f"{elapsed:.1f} s for a dead endpoint"


@pytest.mark.usefixtures("planted_env")
def test_a_key_echoed_anywhere_in_an_answer_stays_out_of_cassettes_reports_and_output(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    # beyond the known identity headers: a debug header, the answer text and the body around it
    root = _project(pytester.path, fake_openai.base_url, min_pass_rate=1, endpoint={"api_key_env": "PVCR_TEST_KEY"})

    def respond(body: dict[str, Any]) -> Reply:
        answer = completion(f'{{"n": 1, "echo": "{KEY}"}}', model=body["model"])
        answer["system_fingerprint"] = f"Bearer {KEY}"
        return Reply(body=answer, headers={"x-debug-auth": f"Bearer {KEY}", "x-echo": KEY})

    fake_openai.respond = respond
    recorded = _run(pytester, *RECORD, "-rA", "-v")
    _assert_sent_identity(fake_openai)
    replayed = _run(pytester, "-rA", "-v")
    assert _leaks(root, _output(recorded) + _output(replayed)) == []
    rows = ep.results(root)
    assert rows and all("REDACTED" in r["output"] for r in rows)  # the answer is kept, the key is not


@pytest.mark.slow
def test_the_promptvcr_command_records_and_replays_in_a_fresh_process(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    # a fresh process, as a user's shell runs it: nothing imported before pytest takes over (warnings are errors)
    import subprocess
    import sys

    root = _project(pytester.path, fake_openai.base_url)
    for extra in (["--record-mode", "once"], []):
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", EVAL, *extra, "--", "-p", "no:cacheprovider"],
            cwd=root, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "promptvcr summary" in done.stdout
    assert len(fake_openai.chat_requests) == len(CASES) * len(VARIANTS) * SAMPLES


def test_a_cassette_with_merge_conflict_markers_fails_its_case_with_the_fix(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    root, _ = _recorded(pytester, fake_openai)
    cassette = root / "cassettes" / EVAL / "mini" / "alpha.yaml"
    text = cassette.read_text(encoding="utf-8")
    cassette.write_text(f"<<<<<<< HEAD\n{text}=======\n{text}>>>>>>> theirs\n", encoding="utf-8")
    result = _run(pytester)
    out = _output(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "Traceback" not in out
    assert f"cannot read the cassette {cassette}" in out
    assert f"promptvcr run {EVAL} --record-mode all -- -k 'alpha[mini]'" in out
    rows = [r for r in ep.results(root) if (r["case"], r["variant"]) == ("alpha", "mini")]
    assert {(r["outcome"], r["error"]) for r in rows} == {("errored", "config")}
