"""Cost of a call: the response's ``usage`` × the dated prices of the model registry (``data/models.yaml``).

A model without a price is unpriced (None), never $0; cached prompt tokens use the cached price when the registry has
one; reasoning tokens are part of ``completion_tokens`` and so billed as output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .models import Price, lookup

__all__ = ["PER", "Price", "cost_usd", "price_for"]

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
