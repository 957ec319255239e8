"""Truth on real traffic: real recorded OpenAI streams made into cassettes and replayed through the SDK's Stream,
the transport and the assembly, compared with what this test reads from the raw SSE text on its own.

The streams are ``../shared/corpus/openai_real_traffic_streaming.jsonl.gz`` (skipped, with the reason, where the
corpus is not beside the repository) and the excerpt shipped in ``tests/data`` (60 streams with a usage chunk, so the
main assertions run everywhere). Expected values come from a plain reading of the ``data:`` lines written here: the
content and refusal joined, tool calls' names and arguments joined per index, the last finish_reason, the usage chunk;
a stream with an error event must be refused with the server's message.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.checks._answer import Answer
from harness.load._evals import Endpoint
from harness.record import _cassettes as cassettes
from harness.run import _client as client
from harness.run import _stream as stream
from harness.run._row import ErrorKind

HERE = Path(__file__).resolve().parent
EXCERPT = HERE / "data" / "corpus_excerpt_streams.jsonl.gz"
_NAME = "corpus/openai_real_traffic_streaming.jsonl.gz"
_ROOTS = (HERE.parents[0].parent / "shared", Path("/work/shared"))  # ../shared beside the repository, or this host's
CORPUS = next((root / _NAME for root in _ROOTS if (root / _NAME).is_file()), _ROOTS[0] / _NAME)
CORPUS_STREAMS = 300  # a deterministic sample (by interaction_sha256) of the corpus's 1,425


def _lines(path: Path, limit: int | None) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return sorted(rows, key=lambda r: r["interaction_sha256"])[:limit]


def _chunks(sse: str) -> Iterator[dict[str, Any]]:
    for line in sse.splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            yield json.loads(line[5:])


def _done(sse: str) -> bool:
    """Whether the stream sent ``data: [DONE]``: an SSE event is one only once a blank line ends it, so the text
    after the last blank line was never sent as an event (the spec discards it at the end of the stream)."""
    events = sse.replace("\r\n", "\n").split("\n\n")[:-1]
    return any(event.strip() == "data: [DONE]" for event in events)


def _expected(sse: str) -> dict[str, Any]:
    """What the first choice of the stream says, read from its text alone."""
    content: list[str] = []
    refusal: list[str] = []
    tools: dict[int, dict[str, str]] = {}
    out: dict[str, Any] = {"finish_reason": None, "usage": None, "error": None}
    if not _done(sse):
        return out | {"error": "the stream ended without `data: [DONE]`"}
    for data in _chunks(sse):
        if data.get("error"):
            out["error"] = data["error"]["message"]
            break
        if data.get("usage"):
            out["usage"] = data["usage"]
        for choice in data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice["delta"]
            content.append(delta.get("content") or "")
            refusal.append(delta.get("refusal") or "")
            for call in delta.get("tool_calls") or []:
                tool = tools.setdefault(call["index"], {"name": "", "arguments": ""})
                tool["name"] += (call.get("function") or {}).get("name") or ""
                tool["arguments"] += (call.get("function") or {}).get("arguments") or ""
            out["finish_reason"] = choice.get("finish_reason") or out["finish_reason"]
    out |= {
        "content": "".join(content),
        "refusal": "".join(refusal) or None,
        "tools": [tools[i] for i in sorted(tools)],
    }
    return out


def _cassette(path: Path, rows: list[dict[str, Any]]) -> None:
    """One cassette of the lines' interactions, as the transport records them (vcrpy's format), one sample each."""
    interactions = []
    for sample, row in enumerate(rows):
        headers = {k: [str(v)] for k, v in row["response"]["headers"].items()}
        headers[cassettes.SAMPLE_HEADER] = [str(sample)]
        request = {"body": json.dumps(row["request"]["body"]), "headers": {}, "method": "POST", "uri": "https://x/v1"}
        response = {"body": {"string": row["response"]["body"]}, "headers": headers, "status": {"code": 200}}
        interactions.append({"request": request, "response": response})
    cassettes.save(path, interactions)


def _replay(tmp_path: Path, rows: list[dict[str, Any]]) -> list[client.CallResult]:
    path = tmp_path / "streams.yaml"
    _cassette(path, rows)
    cassette = cassettes.Cassette(path, cassettes.RecordMode.NONE)
    api = client.make_client(Endpoint.parse({"base_url": "https://api.openai.com/v1"}), replay=True)
    results = []
    for sample, row in enumerate(rows):
        with cassettes.playing(cassette, sample):
            body = row["request"]["body"]
            assert client.replayed(cassette, sample, body) is None  # a stream is never read from the text directly
            results.append(client.call(api, body))
    assert cassette.play_count == len(rows)  # every stream came from the cassette, through the SDK
    return results


def _check(row: dict[str, Any], result: client.CallResult) -> None:
    expected = _expected(row["response"]["body"])
    where = f"{row['source_repo']} {row['source_path']} {row['interaction_sha256'][:12]}"
    if expected["error"] is not None:
        assert (result.response, result.error) == (None, ErrorKind.BAD_RESPONSE), where
        assert expected["error"] in result.message, where
        return
    assert result.error is None and result.response is not None, f"{where}: {result.message}"
    answer = Answer.from_response(result.response)
    assert answer.content == expected["content"], where
    assert answer.refusal == expected["refusal"], where
    assert answer.finish_reason == expected["finish_reason"], where
    message = result.response["choices"][0]["message"]
    names = [
        {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
        for c in message.get("tool_calls") or []
    ]
    assert names == expected["tools"], where
    if expected["usage"] is not None:
        assert (result.response["usage"], result.usage_estimated) == (expected["usage"], False), where
        assert expected["usage"] == row["usage"], where  # the corpus line's own reading agrees
    else:
        assert result.usage_estimated, where


SOURCES = [
    pytest.param(EXCERPT, None, 60, id="excerpt"),
    pytest.param(
        CORPUS,
        CORPUS_STREAMS,
        CORPUS_STREAMS,
        id="corpus",
        marks=pytest.mark.skipif(
            not CORPUS.exists(), reason=f"the shared corpus is not beside the repository ({CORPUS})"
        ),
    ),
]


@pytest.mark.parametrize(("path", "limit", "at_least"), SOURCES)
def test_real_streams_replay_into_their_own_answers(
    tmp_path: Path, path: Path, limit: int | None, at_least: int
) -> None:
    rows = _lines(path, limit)
    assert len(rows) >= at_least
    results = _replay(tmp_path, rows)
    for row, result in zip(rows, results, strict=True):
        _check(row, result)
    with_tools = sum(bool(_expected(r["response"]["body"])["tools"]) for r in rows)
    assert with_tools >= 10  # the sample has tool-call streams to assemble (the excerpt has 23)


@pytest.mark.skipif(not CORPUS.exists(), reason=f"the shared corpus is not beside the repository ({CORPUS})")
def test_every_error_and_refusal_stream_of_the_corpus(tmp_path: Path) -> None:
    rows = [
        r for r in _lines(CORPUS, None) if '"error"' in r["response"]["body"] or '"refusal":"' in r["response"]["body"]
    ]
    assert len(rows) >= 5
    for row, result in zip(rows, _replay(tmp_path, rows), strict=True):
        _check(row, result)


def test_a_recorded_streams_text_assembles_as_its_replay_does(tmp_path: Path) -> None:
    """`promptvcr status` reads recordings without playing them: the same answers as the SDK's replay."""
    rows = _lines(EXCERPT, None)
    for row, result in zip(rows, _replay(tmp_path, rows), strict=True):
        assert stream.from_text(row["response"]["body"], row["request"]["body"]) == result.response
    cut = rows[0]["response"]["body"].replace("data: [DONE]", "")
    assert stream.from_text(cut, rows[0]["request"]["body"]) is None
