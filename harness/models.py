"""The model registry (``data/models.yaml``): encoding, prompt format, context window, prices and retirement dates.

A request may name a model by its alias (``gpt-4o``) or a dated snapshot (``gpt-4o-2024-08-06``); both resolve to the
same entry. Models missing from the registry are unknown: pricing treats them as unpriced, token counting refuses
them (see ``harness.tokens``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

REGISTRY_FILE = "harness/data/models.yaml"


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; ``cached_input`` None means cached prompt tokens are billed at the input price."""

    model: str
    input: float
    output: float
    cached_input: float | None
    date: str


@dataclass(frozen=True)
class LocalFile:
    """Where a local model's GGUF file comes from: an installed package (``module``), and in it ``file``; no file:
    the package assembles it (``assemble``, split across packages). ``install`` is the command that installs it."""

    module: str
    file: str | None
    install: str


@dataclass(frozen=True)
class Model:
    name: str
    encoding: str | None
    chat_format: str
    format_overrides: Mapping[str, int]  # per-model adjustments of the chat format's fixed token counts
    context_window: int | None
    max_output_tokens: int | None
    price: Price | None
    snapshots: tuple[str, ...]
    deprecated: dt.date | None
    shutdown: dt.date | None
    local: LocalFile | None = None  # served by `promptvcr serve-local` (harness.local), not by OpenAI


def _date(value: Any) -> dt.date | None:
    # YAML reads an unquoted 2026-10-23 as a date already; a quoted one arrives as text.
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _model(name: str, raw: dict[str, Any]) -> Model:
    p = raw.get("price")
    price = None
    if p is not None:
        cached = p.get("cached_input")
        price = Price(
            name, float(p["input"]), float(p["output"]), None if cached is None else float(cached), str(p["date"])
        )
    return Model(
        name=name,
        encoding=raw.get("encoding"),
        chat_format=raw.get("chat_format", "chatml"),
        format_overrides=dict(raw.get("format_overrides") or {}),
        context_window=raw.get("context_window"),
        max_output_tokens=raw.get("max_output_tokens"),
        price=price,
        snapshots=tuple(raw.get("snapshots") or ()),
        deprecated=_date(raw.get("deprecated")),
        shutdown=_date(raw.get("shutdown")),
        local=_local(raw.get("local")),
    )


def _local(raw: dict[str, Any] | None) -> LocalFile | None:
    return None if raw is None else LocalFile(str(raw["module"]), raw.get("file"), str(raw["install"]))


@cache
def registry() -> dict[str, Model]:
    """Every id the registry answers to (names and snapshots) → its entry."""
    raw = yaml.safe_load(files(__package__).joinpath("data/models.yaml").read_text(encoding="utf-8"))
    out: dict[str, Model] = {}
    for name, entry in raw["models"].items():
        model = _model(name, entry)
        for key in (name, *model.snapshots):
            if key in out:
                raise ValueError(f"{REGISTRY_FILE}: {key!r} is listed twice")
            out[key] = model
    return out


def lookup(model: str | None) -> Model | None:
    """The registry entry for a model id or snapshot id; None when unknown."""
    return registry().get(model) if model else None


def context_window(model: str) -> int | None:
    entry = lookup(model)
    return entry.context_window if entry else None


def shutdown_warning(model: str, today: dt.date) -> str | None:
    """A warning when the model is shut down (or announced to be), None when it has no announced shutdown."""
    entry = lookup(model)
    if entry is None or entry.shutdown is None:
        return None
    if today >= entry.shutdown:
        return (
            f"{model} was shut down by OpenAI on {entry.shutdown.isoformat()}: live calls fail, recordings still replay"
        )
    days = (entry.shutdown - today).days
    return f"{model} will be shut down by OpenAI on {entry.shutdown.isoformat()} (in {days} days)"
