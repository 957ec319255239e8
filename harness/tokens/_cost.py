"""Cost of a call: the response's ``usage`` × the dated prices of the model registry (``data/models.yaml``).

A model without a price is unpriced (None), never $0; cached prompt tokens use the cached price when the registry has
one; reasoning tokens are part of ``completion_tokens`` and so billed as output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._models import Price, lookup

__all__ = ["PER", "Price", "StreamCost", "chunks_cost", "cost_usd", "price_for", "stream_cost"]

PER = 1_000_000


def price_for(*models: str | None) -> Price | None:
    """The first model named that has a price (request model first, then the model the response reports).

    Snapshot ids resolve to their model (``gpt-4o-2024-08-06`` → ``gpt-4o``).
    """
    for name in models:
        entry = lookup(name)
        if entry is not None and entry.price is not None:
            return entry.price
    return None


def cost_usd(usage: Mapping[str, Any] | None, price: Price | None) -> float | None:
    if price is None or not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return ((prompt - cached) * price.input + cached * cached_rate + completion * price.output) / PER


@dataclass(frozen=True)
class StreamCost:
    usage: dict[str, Any]
    cost_usd: float | None
    estimated: bool  # True when the stream carried no usage chunk and the tokens were counted here


def stream_cost(sse_text: str, request_body: Mapping[str, Any]) -> StreamCost:
    """The cost of a streamed answer given as its SSE text (see ``chunks_cost``)."""
    chunks = [json.loads(line[5:]) for line in sse_text.splitlines() if line.startswith("data:") and "{" in line]
    return chunks_cost(chunks, request_body)


def chunks_cost(chunks: Sequence[Any], request_body: Mapping[str, Any]) -> StreamCost:
    """The cost of a streamed answer: from its final usage chunk when the stream has one (``stream_options.
    include_usage``), else from the prompt and the streamed text counted with the model's encoding, marked estimated
    (no usage and no cost when the model's tokens can't be counted offline: unpriced, never a guess).
    """
    chunks = [c for c in chunks if isinstance(c, Mapping)]
    served = next((c.get("model") for c in chunks if c.get("model")), None)
    price = price_for(request_body.get("model"), served)
    reported = next((c["usage"] for c in reversed(chunks) if isinstance(c.get("usage"), dict)), None)
    if reported is not None:
        return StreamCost(reported, cost_usd(reported, price), estimated=False)
    from . import _count as tokens  # tiktoken only when a stream lacks usage
    from ._encoding import TokenCountError

    model = str(request_body.get("model"))
    text = "".join(
        str((choice.get("delta") or {}).get("content") or "")
        for c in chunks
        for choice in c.get("choices") or []
        if isinstance(choice, Mapping)
    )
    try:
        counted = {
            "prompt_tokens": tokens.estimate_prompt_tokens(request_body)[0],
            "completion_tokens": tokens.count_text(text, model) if text else 0,
        }
    except TokenCountError:  # e.g. a local model, whose tokenizer is not an OpenAI encoding
        return StreamCost({}, None, estimated=True)
    return StreamCost(counted, cost_usd(counted, price), estimated=True)
