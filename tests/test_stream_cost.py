"""Streamed answers: usage from the final usage chunk when present, else counted from the assembled message (its
text, refusal and tool calls), marked estimated; priced as any answer is (``harness.run._scoring.price_of``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from harness.run import _scoring as scoring
from harness.run import _stream as stream
from harness.tokens import _cost as cost
from harness.tokens import _count as tokens
from harness.tokens._encoding import encoding

# ../shared beside the repository (as CI lays it out), or this workplace's own copy
_NAME = "corpus/openai_real_traffic_streaming.jsonl.gz"
_ROOTS = (Path(__file__).resolve().parents[1].parent / "shared", Path("/work/shared"))
CORPUS = next((root / _NAME for root in _ROOTS if (root / _NAME).is_file()), _ROOTS[0] / _NAME)


def _chunk(delta: dict[str, Any] | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"model": "gpt-4o-mini-2024-07-18", "choices": []}
    if delta is not None:
        chunk["choices"] = [{"index": 0, "delta": delta}]
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
O200K = encoding("o200k_base")  # gpt-4o-mini's tokenizer (its shipped offline data)


def test_a_stream_with_a_usage_chunk_is_priced_from_it() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    chunks = [_chunk({"content": "Hel"}), _chunk({"content": "lo"}), _chunk(usage=usage)]
    response, estimated = stream.assembled(chunks, True, BODY)
    price = cost.price_for("gpt-4o-mini")
    assert price is not None
    assert (response["usage"], estimated) == (usage, False)
    assert stream.from_text(_sse(*chunks), BODY) == response  # a recording read without the SDK says the same
    assert scoring.price_of("gpt-4o-mini", response) == pytest.approx((9 * price.input + 2 * price.output) / 1e6)


def test_a_stream_without_usage_is_counted_and_marked_estimated() -> None:
    response, estimated = stream.assembled(
        [_chunk({"content": "Hello"}), _chunk({"content": " there, friend"})], True, BODY
    )
    assert estimated
    assert response["usage"] == {
        "prompt_tokens": tokens.prompt_tokens(BODY),
        "completion_tokens": len(O200K.encode_ordinary("Hello there, friend")),
    }
    price = scoring.price_of("gpt-4o-mini", response)
    assert price is not None and price > 0


def test_a_streamed_tool_call_without_usage_counts_its_name_and_arguments() -> None:
    name, arguments = "get_weather", '{"city": "Paris", "unit": "celsius"}'
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}
    chunks = [_chunk({"role": "assistant", "content": None, "tool_calls": [first]})]
    chunks += [_chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:9]}}]})]
    chunks += [_chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[9:]}}]})]
    chunks += [_chunk({"refusal": "Only the weather."})]
    response, estimated = stream.assembled(chunks, True, BODY)
    want = sum(len(O200K.encode_ordinary(text)) for text in (name, arguments, "Only the weather."))
    assert estimated
    assert response["usage"]["completion_tokens"] == want > 0
    assert stream.from_text(_sse(*chunks), BODY) == response


# real streams of the corpus shipped in tests/data (tests/data/make_corpus_excerpt.py), for where the corpus isn't
EXCERPT = Path(__file__).resolve().parent / "data" / "corpus_excerpt_streams.jsonl.gz"


@pytest.mark.parametrize(
    ("path", "at_least"),
    [
        pytest.param(EXCERPT, 60, id="excerpt"),
        pytest.param(
            CORPUS,
            100,  # the corpus README counts 627
            id="corpus",
            marks=pytest.mark.skipif(
                not CORPUS.exists(), reason=f"the shared corpus is not beside the repository ({CORPUS})"
            ),
        ),
    ],
)
def test_recorded_streams_give_their_own_usage_back(path: Path, at_least: int) -> None:
    with_usage = 0
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["usage"] is None:
                continue
            body = row["response"]["body"]
            response = stream.from_text(body, row["request"]["body"])
            if _error_event(body):  # an errored sample, as a replay makes it (the SDK raises the error event)
                assert response is None
                continue
            assert response is not None and response["usage"] == row["usage"]
            assert scoring.price_of(row["model"], response) == pytest.approx(_priced(row))
            with_usage += 1
    assert with_usage >= at_least


def _error_event(sse: str) -> bool:
    datas = [line[5:].strip() for line in sse.splitlines() if line.startswith("data:")]
    return any("error" in json.loads(data) for data in datas if data.startswith("{"))


def _priced(row: dict[str, Any]) -> float | None:
    """The recorded usage × the registry's price, computed here from the price's fields."""
    price = cost.price_for(row["model"], row["response_model"])
    if price is None:
        return None
    usage = row["usage"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    cached_rate = price.input if price.cached_input is None else price.cached_input
    fresh = usage["prompt_tokens"] - cached
    return (fresh * price.input + cached * cached_rate + usage["completion_tokens"] * price.output) / 1e6
