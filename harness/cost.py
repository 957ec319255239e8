"""Cost of a call: the response's ``usage`` × a dated price table kept as data (``data/prices.yaml``).

A model without a price is unpriced (None), never $0; cached prompt tokens use the cached price when the table has
one; reasoning tokens are part of ``completion_tokens`` and so billed as output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

PER = 1_000_000


@dataclass(frozen=True)
class Price:
    model: str
    input: float
    output: float
    cached_input: float | None
    date: str


@cache
def price_table() -> dict[str, Price]:
    raw = yaml.safe_load(files(__package__).joinpath("data/prices.yaml").read_text(encoding="utf-8"))
    return {
        name: Price(name, float(p["input"]), float(p["output"]), p.get("cached_input"), str(p["date"]))
        for name, p in raw["models"].items()
    }


def price_for(*models: str | None) -> Price | None:
    """The first model named that has a price (request model first, then the model the response reports)."""
    table = price_table()
    return next((table[m] for m in models if m and m in table), None)


def cost_usd(usage: Mapping[str, Any] | None, price: Price | None) -> float | None:
    if price is None or not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    cached_rate = price.input if price.cached_input is None else float(price.cached_input)
    return ((prompt - cached) * price.input + cached * cached_rate + completion * price.output) / PER
