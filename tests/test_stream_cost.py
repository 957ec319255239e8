"""Streamed answers: priced from the final usage chunk when present, else from counted tokens, marked estimated."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from harness.tokens import _cost as cost
from harness.tokens import _count as tokens

# ../shared beside the repository (as CI lays it out), or this workplace's own copy
_NAME = "corpus/openai_real_traffic_streaming.jsonl.gz"
_ROOTS = (Path(__file__).resolve().parents[1].parent / "shared", Path("/work/shared"))
CORPUS = next((root / _NAME for root in _ROOTS if (root / _NAME).is_file()), _ROOTS[0] / _NAME)


def _chunk(content: str | None = None, usage: dict[str, int] | None = None) -> str:
    chunk: dict[str, Any] = {"model": "gpt-4o-mini-2024-07-18", "choices": []}
    if content is not None:
        chunk["choices"] = [{"index": 0, "delta": {"content": content}}]
    if usage is not None:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n"


BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}


def test_a_stream_with_a_usage_chunk_is_priced_from_it() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    sse = _chunk("Hel") + _chunk("lo") + _chunk(usage=usage) + "data: [DONE]\n\n"
    result = cost.stream_cost(sse, BODY)
    price = cost.price_for("gpt-4o-mini")
    assert price is not None
    assert (result.usage, result.estimated) == (usage, False)
    assert result.cost_usd == pytest.approx((9 * price.input + 2 * price.output) / 1e6)


def test_a_stream_without_usage_is_counted_and_marked_estimated() -> None:
    sse = _chunk("Hello") + _chunk(" there, friend") + "data: [DONE]\n\n"
    result = cost.stream_cost(sse, BODY)
    assert result.estimated
    assert result.usage == {
        "prompt_tokens": tokens.prompt_tokens(BODY),
        "completion_tokens": tokens.count_text("Hello there, friend", "gpt-4o-mini"),
    }
    assert result.cost_usd is not None and result.cost_usd > 0


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
            result = cost.stream_cost(row["response"]["body"], row["request"]["body"])
            assert (result.usage, result.estimated) == (row["usage"], False)
            with_usage += 1
    assert with_usage >= at_least
