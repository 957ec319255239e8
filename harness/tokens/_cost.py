"""Cost of a call: the response's ``usage`` × the dated prices of the model registry (``data/models.yaml``).

A model without a price is unpriced (None), never $0; cached prompt tokens use the cached price when the registry has
one; reasoning tokens are part of ``completion_tokens`` and so billed as output. A streamed answer without a usage
chunk gets its usage counted here (``counted_usage``) and is priced like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._models import Price, lookup

__all__ = ["PER", "Price", "cost_usd", "counted_usage", "price_for"]

PER = 1_000_000


def price_for(*models: str | None, batch: bool = False) -> Price | None:
    """The first model named that has a price (request model first, then the model the response reports); ``batch``:
    the price of an answer of the Batch API (``Model.price_for``).

    Snapshot ids resolve to their model (``gpt-4o-2024-08-06`` → ``gpt-4o``).
    """
    for name in models:
        entry = lookup(name)
        if entry is not None and entry.price is not None:
            return entry.price_for(batch)
    return None


def cost_usd(usage: Mapping[str, Any] | None, price: Price | None) -> float | None:
    if price is None or not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return ((prompt - cached) * price.input + cached * cached_rate + completion * price.output) / PER


def counted_usage(messages: Sequence[Mapping[str, Any]], request_body: Mapping[str, Any]) -> dict[str, Any]:
    """The usage of a streamed answer that came without a usage chunk (no ``stream_options.include_usage``): the
    prompt, and the output of the assembled ``messages`` — content, refusal, each tool call's (and a legacy
    ``function_call``'s) name and arguments — counted with the model's encoding. Empty when the model's tokens can't
    be counted offline (then it is unpriced, never a guess).
    """
    from . import _count as tokens  # tiktoken only when a stream lacks usage
    from ._encoding import TokenCountError

    model = str(request_body.get("model"))
    try:
        prompt = tokens.estimate_prompt_tokens(request_body)[0]
        completion = sum(tokens.count_text(text, model) for m in messages for text in _output_texts(m))
    except TokenCountError:  # e.g. a local model, whose tokenizer is not an OpenAI encoding
        return {}
    return {"prompt_tokens": prompt, "completion_tokens": completion}


def _output_texts(message: Mapping[str, Any]) -> list[str]:
    calls = [c.get("function") or {} for c in message.get("tool_calls") or [] if isinstance(c, Mapping)]
    calls += [message["function_call"]] if isinstance(message.get("function_call"), Mapping) else []
    texts = [message.get("content"), message.get("refusal")]
    texts += [part for call in calls for part in (call.get("name"), call.get("arguments"))]
    return [text for text in texts if isinstance(text, str)]
