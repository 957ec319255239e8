"""Streamed answers (`stream: true`): recorded as the raw SSE stream, replayed chunk by chunk through the SDK, assembled
for the checks; time to first token and tokens/s per sample; the `ttft_p95_ms` gate; malformed streams classified.

The end-to-end tests record against the fake server's streaming mode (``tests.fakeserver.streamed``), which waits
``GAP_S`` before each event, so the time to first token has a floor known here. Expected values come from what the
server was told to send and from the cassette's own text, never from the harness's assembly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import _main as cli
from harness.run import _stream as stream
from harness.testing import chaos
from harness.tokens._encoding import encoding
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, chunk, completion, streamed
from tests.test_inputs import (
    NOWHERE,
    assert_cited,
    assert_problem,
    assert_stopped,
    eval_yaml,
    line_of,
    load_problems,
    run,
)

EVAL = "streams"
PIECES = ["Hel", "lo", " wor", "ld"]
USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
GAP_S = 0.03
QUIET = ("-p", "no:cacheprovider")
TTFT_HEADER = "x-promptvcr-ttft-ms"  # the header name is the cassette format: spelled out, not imported
LATENCY_HEADER = "x-promptvcr-latency-ms"


def _case(case_id: str, **params: Any) -> dict[str, Any]:
    return {
        "id": case_id,
        "messages": [{"role": "user", "content": f"case {case_id}: say hello"}],
        "expect": [{"contains": "Hello"}],
        **params,
    }


def _project(root: Path, base_url: str, cases: list[dict[str, Any]], **eval_extra: Any) -> None:
    ep.init_project(root)
    defaults = {"model": "gpt-4o-mini", "max_tokens": 20, "stream": True, "stream_options": {"include_usage": True}}
    case_file = ep.write_cases(root, EVAL, cases, defaults=defaults)
    ep.write_eval(root, EVAL, base_url=base_url, cases=[case_file], variants={"v": {}}, **eval_extra)


def _headers(path: Path) -> list[dict[str, list[str]]]:
    return [i["response"]["headers"] for i in ep.interactions(path)]


# ---------------------------------------------------------------------------------------------------- assembly


def test_tool_call_deltas_assemble_into_the_message_a_non_streamed_answer_has() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    chunks = [
        chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "time"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    response, estimated = stream.assembled(chunks, True, {"model": "fake-model", "messages": []})
    assert response["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "time"}},
                ],
            },
            "finish_reason": "tool_calls",
        }
    ]
    assert response["object"] == "chat.completion"
    assert estimated  # no usage chunk: the model's tokens can't be counted offline, so no usage either
    assert "usage" not in response


def test_a_refusal_is_assembled_and_the_usage_chunk_kept() -> None:
    usage_chunk = {**chunk({}), "choices": [], "usage": USAGE}
    chunks = [chunk({"role": "assistant", "refusal": ""}), chunk({"refusal": "I can't"}), chunk({"refusal": " help."})]
    chunks += [chunk({}, "stop"), usage_chunk]
    response, estimated = stream.assembled(chunks, True, {"stream_options": {"include_usage": True}})
    assert response["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": "I can't help."}
    assert (response["usage"], estimated) == (USAGE, False)


@pytest.mark.parametrize(
    ("chunks", "done", "request_body", "message"),
    [
        ([], True, {}, "no `data:` chunks"),
        ([chunk({"content": "a"})], False, {}, "ended without `data: [DONE]` after 1 chunk(s)"),
        ([chunk({"content": "a"})], True, {"stream_options": {"include_usage": True}}, "had none"),
        ([[1, 2]], True, {}, "chunk 1 is not a chat.completion.chunk"),
        ([{"choices": [{"index": 0, "delta": "x"}]}], True, {}, "chunk 1: a choice without a `delta` object"),
        ([chunk({"content": 3})], True, {}, "chunk 1: delta.content is int, not a string"),
        ([{**chunk({}), "choices": []}], True, {}, "no choices in the stream's 1 chunk(s)"),
    ],
)
def test_an_incomplete_stream_is_refused_with_the_reason(
    chunks: list[Any], done: bool, request_body: dict[str, Any], message: str
) -> None:
    with pytest.raises(stream.StreamError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        stream.assembled(chunks, done, request_body)


def test_first_token_is_the_first_event_with_output_whatever_the_pieces() -> None:
    role = f"data: {json.dumps(chunk({'role': 'assistant', 'content': ''}))}\n\n".encode()
    token = f"data: {json.dumps(chunk({'content': 'Hi'}))}\r\n\r\n".encode()
    # the token's event is completed by the third piece (split mid-line), which arrived at 30 ms
    arrivals = [(10.0, role), (20.0, token[:15]), (30.0, token[15:]), (40.0, b"data: [DONE]\n\n")]
    assert stream.first_token_ms(arrivals) == 30.0
    assert stream.first_token_ms([(5.0, role), (9.0, b"data: [DONE]\n\n")]) is None  # no output at all


def test_tokens_per_s_counts_the_tokens_after_the_first() -> None:
    assert stream.tokens_per_s(11, 1200.0, 200.0) == 10.0  # 10 more tokens in one second
    assert stream.tokens_per_s(1, 1200.0, 200.0) is None
    assert stream.tokens_per_s(5, 200.0, 200.0) is None
    assert stream.tokens_per_s(None, 1200.0, 200.0) is None


# ---------------------------------------------------------------------------------------------------- end to end


def test_a_streamed_case_records_and_replays_identically(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda body: streamed(PIECES, usage=USAGE, gap_s=GAP_S)
    gates = [{"metric": "ttft_p95_ms", "op": "<=", "value": 60000}]
    _project(pytester.path, fake_openai.base_url, [_case("hello", samples=3)], gates=gates)
    recorded = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    assert [r.body["stream"] for r in fake_openai.chat_requests] == [True] * 3
    assert all(r.body["stream_options"] == {"include_usage": True} for r in fake_openai.chat_requests)

    # the cassette keeps the raw stream (vcrpy's format: the body's text) and the measured time to first token
    [path] = ep.cassettes(pytester.path, EVAL)
    texts = [i["response"]["body"]["string"] for i in ep.interactions(path)]
    assert all(t.startswith("data: {") and t.rstrip().endswith("data: [DONE]") for t in texts)
    first = ep.results(pytester.path)
    by_sample = {int(row["sample"]): row for row in first}
    for headers in _headers(path):
        row = by_sample[int(headers["x-promptvcr-sample"][0])]
        ttft, latency = float(headers[TTFT_HEADER][0]), float(headers[LATENCY_HEADER][0])
        # the first token is the second event: the server waited GAP_S before each of the two
        assert 2 * GAP_S * 1000 * 0.9 <= ttft < latency
        assert float(row["ttft_ms"]) == ttft and float(row["latency_ms"]) == latency
        expected_speed = round((USAGE["completion_tokens"] - 1) / ((latency - ttft) / 1000), 1)
        assert float(row["tokens_per_s"]) == expected_speed
    for row in first:
        assert (row["output"], row["finish_reason"], row["outcome"]) == ("".join(PIECES), "stop", "passed")
        assert (row["prompt_tokens"], row["completion_tokens"]) == ("11", "4")
        assert row["usage_estimated"] == "False"
        assert float(row["cost_usd"]) > 0  # priced from the usage chunk (gpt-4o-mini has a price)

    summary = ep.summary(pytester.path)[0]
    ttfts = sorted(float(row["ttft_ms"]) for row in first)
    assert float(summary["ttft_p95_ms"]) == pytest.approx(ttfts[1] + (ttfts[2] - ttfts[1]) * 0.9)  # p95 of 3
    assert (int(summary["ttft_n"]), summary["cost_estimated"]) == (3, "False")
    assert "ttft p95 ms" in recorded.stdout.str()
    assert "PASS ttft_p95_ms <= 60000" in recorded.stdout.str()

    sent = len(fake_openai.chat_requests)
    replay = pytester.runpytest("evals", *QUIET)
    assert replay.ret == pytest.ExitCode.OK, replay.stdout.str()
    assert len(fake_openai.chat_requests) == sent  # nothing sent
    second = ep.results(pytester.path)
    assert all(row["replayed"] == "True" for row in second)
    assert ep.without(first, "replayed") == ep.without(second, "replayed")


def test_a_ttft_gate_fails_on_the_recorded_times(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda body: streamed(PIECES, usage=USAGE, gap_s=GAP_S)
    gates = [{"metric": "ttft_p95_ms", "op": "<=", "value": 1}]  # 1 ms: below the server's own waits
    _project(pytester.path, fake_openai.base_url, [_case("hello", samples=2)], gates=gates)
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "FAIL ttft_p95_ms <= 1" in result.stdout.str()


def test_a_stream_without_a_usage_chunk_is_counted_and_marked_estimated(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    fake_openai.respond = lambda body: streamed(PIECES)
    case = _case("counted")
    case["stream_options"] = {"include_usage": False}
    _project(pytester.path, fake_openai.base_url, [case])
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    [row] = ep.results(pytester.path)
    o200k = encoding("o200k_base")  # gpt-4o-mini's tokenizer (its shipped offline data)
    assert row["usage_estimated"] == "True"
    assert int(row["completion_tokens"]) == len(o200k.encode_ordinary("".join(PIECES)))
    assert int(row["prompt_tokens"]) > len(o200k.encode_ordinary("case counted: say hello"))
    assert float(row["cost_usd"]) > 0
    assert ep.summary(pytester.path)[0]["cost_estimated"] == "True"
    assert f"≈${float(row['cost_usd']):.4f}" in result.stdout.str()  # the table says the cost is counted, not billed


def _garbage(body: dict[str, Any]) -> Reply:
    """Per case (its id is in the user message), a stream broken in one way."""
    case = ep.case_of(body)
    if case == "not-sse":
        return Reply(events=["hello\n\n", "this is not a stream\n\n"])
    if case == "bad-json":
        return Reply(events=['data: {"choices": [\n\n', "data: [DONE]\n\n"])
    if case == "no-done":
        return streamed(PIECES, usage=USAGE, done=False)
    if case == "no-usage":
        return streamed(PIECES)
    if case == "error-event":
        error = {"error": {"message": "The model produced invalid content.", "type": "model_error"}}
        ok = streamed(PIECES[:1]).events or []
        return Reply(events=[*ok[:2], f"data: {json.dumps(error)}\n\n", "data: [DONE]\n\n"])
    if case == "json-body":
        return Reply(body=completion("Hello"))  # the server ignored `stream: true`
    return Reply(events=(streamed(PIECES).events or [])[:3], cut=True)  # "cut": the connection ends mid-body


MALFORMED = {
    "not-sse": ("bad_response", "the stream has no `data:` chunks"),
    "bad-json": ("bad_response", "a chunk is not JSON"),
    "no-done": ("bad_response", "the stream ended without `data: [DONE]`"),
    "no-usage": ("bad_response", "stream_options.include_usage asked for a final usage chunk; the stream had none"),
    "error-event": ("bad_response", "the stream sent an error: The model produced invalid content."),
    "json-body": ("bad_response", "the stream has no `data:` chunks"),
    "cut": ("connection", "Connection error"),
}


def test_malformed_streams_are_classified_rows(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = _garbage
    _project(pytester.path, fake_openai.base_url, [_case(c) for c in MALFORMED], endpoint={"max_retries": 0})
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    rows = {row["case"]: row for row in ep.results(pytester.path)}
    assert {case: (row["outcome"], row["error"]) for case, row in rows.items()} == {
        case: ("errored", kind) for case, (kind, _) in MALFORMED.items()
    }
    for case, (_, message) in MALFORMED.items():
        assert message in rows[case]["error_message"], rows[case]["error_message"]
    # what came with a 200 was recorded and replays as the same row; the cut stream was not (it never completed)
    replay = pytester.runpytest("evals", *QUIET)
    assert "Traceback" not in replay.stdout.str()
    again = {row["case"]: row for row in ep.results(pytester.path)}
    assert again["cut"]["error"] == "missing_recording"
    recorded = [c for c in MALFORMED if c != "cut"]
    assert ep.without([again[c] for c in recorded], "replayed") == ep.without([rows[c] for c in recorded], "replayed")


def test_a_stalled_stream_times_out_instead_of_hanging(pytester: pytest.Pytester) -> None:
    config = chaos.ChaosConfig(rates={"stall": 1.0}, hold_s=10.0, stall_chunks=2)
    with chaos.running(config) as server:
        endpoint = {"timeout_s": 1, "max_retries": 0}
        _project(pytester.path, server.base_url, [_case("stalled")], endpoint=endpoint)
        result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert "Traceback" not in result.stdout.str()
    [row] = ep.results(pytester.path)
    assert (row["outcome"], row["error"]) == ("errored", "timeout")
    assert float(row["latency_ms"]) < 5000  # the endpoint's timeout_s bounded the whole stream


def test_the_chaos_servers_stream_is_assembled(pytester: pytest.Pytester) -> None:
    with chaos.running(chaos.ChaosConfig()) as server:
        _project(pytester.path, server.base_url, [_case("chaos", expect=[{"json_valid": True}])])
        result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    [row] = ep.results(pytester.path)
    [interaction] = ep.interactions(ep.cassettes(pytester.path, EVAL)[0])
    sse = interaction["response"]["body"]["string"]
    datas = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in datas if c["choices"])
    assert row["output"] == text and json.loads(text)  # the chaos answer is a JSON joke
    assert int(row["completion_tokens"]) == datas[-1]["usage"]["completion_tokens"]
    assert float(row["ttft_ms"]) > 0


# ---------------------------------------------------------------------------------------------------- bad input

STREAM_CASE = """\
cases:
  - id: greet
    model: fake-model
    stream: true
    messages:
      - role: user
        content: Say hello.
"""


@pytest.mark.parametrize(
    ("old", "new", "pointer", "message"),
    [
        ("    stream: true\n", '    stream: "yes"\n', "/cases/0/stream", 'expected boolean, got "yes"'),
        (
            "    stream: true\n",
            "    stream: true\n    stream_options: {include_usage: 1}\n",
            "/cases/0/stream_options/include_usage",
            "expected boolean, got 1",
        ),
        (
            "    stream: true\n",
            "    stream: true\n    stream_options: {include_usage: true, usage: true}\n",
            "/cases/0/stream_options/usage",
            "unknown key 'usage'",
        ),
    ],
)
def test_bad_stream_keys_in_a_case_stop_the_run(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, old: str, new: str, pointer: str, message: str
) -> None:
    case = STREAM_CASE.replace(old, new)
    needle = new.strip().splitlines()[-1]
    files = {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])}
    result = run(pytester, files)
    assert_problem(result, fake_openai, f"cases/a.yaml:{line_of(case, needle)}", pointer, message)


def test_stream_options_without_stream_in_defaults_cites_the_defaults(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    case = "defaults:\n  stream_options: {include_usage: true}\n" + STREAM_CASE.replace("    stream: true\n", "")
    files = {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])}
    result = run(pytester, files)
    where = f"cases/a.yaml:{line_of(case, 'stream_options')}"
    assert_problem(result, fake_openai, where, "/defaults/stream_options", "stream_options needs `stream: true`")


def test_a_variant_turning_stream_off_under_stream_options_cites_the_variant(tmp_path: Path) -> None:
    case = STREAM_CASE.replace("    stream: true\n", "    stream: true\n    stream_options: {include_usage: true}\n")
    ev = eval_yaml(NOWHERE, ["cases/a.yaml"]).replace("  v: {max_tokens: 50}\n", "  v:\n    stream: false\n")
    out = load_problems(tmp_path, {"cases/a.yaml": case, "evals/e.yaml": ev})
    where = f"cases/a.yaml:{line_of(case, 'stream_options')}"
    assert_cited(out, where, "/cases/0/stream_options", "stream_options needs `stream: true`")


def test_bad_stream_keys_in_a_variant_cite_the_eval(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ev = eval_yaml(fake_openai.base_url, ["cases/a.yaml"]).replace(
        "  v: {max_tokens: 50}\n", "  v:\n    stream: 1\n    stream_options: {include_usage: true, x: 1}\n"
    )
    result = run(pytester, {"cases/a.yaml": STREAM_CASE, "evals/e.yaml": ev})
    out = result.stdout.str() + "\n" + result.stderr.str()
    assert_cited(out, f"evals/e.yaml:{line_of(ev, 'stream: 1')}", "/variants/v/stream", "expected boolean, got 1")
    assert_cited(out, f"evals/e.yaml:{line_of(ev, 'x: 1')}", "/variants/v/stream_options/x", "unknown key 'x'")
    assert_stopped(result, fake_openai, out)


def test_a_ttft_gate_takes_milliseconds_with_at_most(tmp_path: Path) -> None:
    ev = eval_yaml(NOWHERE, ["cases/a.yaml"]).replace(
        "{metric: pass_rate, op: '>=', value: 0.5}", "{metric: ttft_p95_ms, op: '>=', value: 500}"
    )
    out = load_problems(tmp_path, {"cases/a.yaml": STREAM_CASE, "evals/e.yaml": ev})
    assert_cited(out, f"evals/e.yaml:{line_of(ev, 'ttft_p95_ms')}", "/gates/0/op", "'<=' was expected")


def test_the_stream_column_block_is_in_results_csv() -> None:
    from harness.run._row import COLUMNS

    at = COLUMNS.index("ttft_ms")
    assert COLUMNS[at : at + 3] == ("ttft_ms", "tokens_per_s", "usage_estimated")


@pytest.mark.parametrize("opening", ["", ": OPENROUTER PROCESSING\n\n"], ids=["data-first", "comment-first"])
def test_a_redacted_stream_stays_a_stream_in_the_cassette(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, opening: str
) -> None:
    pieces = ["Write to ", "ada@example.com", " today"]
    events = streamed(pieces, usage=USAGE).events or []
    fake_openai.respond = lambda body: Reply(events=[opening, *events] if opening else events)
    # a rule that would also match the chunks' `created` numbers, were the stream masked as plain text
    rules = ["email", {"name": "stamp", "pattern": "[0-9]{10}"}]
    _project(pytester.path, fake_openai.base_url, [_case("masked", expect=[{"contains": "Write"}])], redact=rules)
    recorded = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    [path] = ep.cassettes(pytester.path, EVAL)
    assert "ada@example.com" not in path.read_text(encoding="utf-8")
    [interaction] = ep.interactions(path)
    datas = [line for line in interaction["response"]["body"]["string"].splitlines() if line.startswith("data: {")]
    assert [json.loads(line[6:])["created"] for line in datas] == [1_790_000_000] * len(datas)
    first = ep.results(pytester.path)
    assert [row["output"] for row in first] == ["Write to [REDACTED:email] today"]
    pytester.runpytest("evals", *QUIET)
    assert ep.without(ep.results(pytester.path), "replayed") == ep.without(first, "replayed")


def test_status_judges_streamed_answers_as_the_run_did(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = Reply(body=completion('{"score": 1, "reason": "says hello"}'))
    answer = streamed(PIECES, usage=USAGE)
    fake_openai.respond = lambda body: verdict if "<rubric>" in body["messages"][-1]["content"] else answer
    case = _case("judged", expect=[{"judge": {"rubric": "Says hello.", "threshold": 0.5}}])
    _project(pytester.path, fake_openai.base_url, [case], judge={"model": "gpt-4o-mini"})
    recorded = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    assert cli.main(["status"]) == 0, capsys.readouterr().out
    capsys.readouterr()
    # another rubric: the judge request status builds from the recorded stream's answer no longer matches
    case["expect"][0]["judge"]["rubric"] = "Says hello, briefly."
    _project(pytester.path, fake_openai.base_url, [case], judge={"model": "gpt-4o-mini"})
    assert cli.main(["status"]) == 1
    assert "changed    judged[v] judge  prompt" in capsys.readouterr().out
