"""The model registry (``data/models.yaml``): encoding, prompt format, context window, prices and retirement dates.

A request may name a model by its alias (``gpt-4o``) or a dated snapshot (``gpt-4o-2024-08-06``); both resolve to the
same entry. An alias's ``history`` says which snapshot it served from which date (``resolve``: ``gpt-4o`` was
gpt-4o-2024-05-13 until 2024-10-02), so a request can be counted for the snapshot that answered it when it was made.
Models missing from the registry are unknown: pricing treats them as unpriced, token counting refuses them (see
``harness.tokens._count``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

REGISTRY_FILE = "harness/tokens/data/models.yaml"


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
    history: tuple[tuple[dt.date, str], ...] = ()  # (from, snapshot) for an alias, oldest first
    local: LocalFile | None = None  # served by `promptvcr serve-local` (harness.testing.local), not by OpenAI
    batch_price: Price | None = None  # through the Batch API (`promptvcr run --batch`); None: ``price`` applies

    def price_for(self, batch: bool) -> Price | None:
        """What a call costs: through the Batch API its dated batch price, where the registry has one; else (and
        without one: an upper bound, never unpriced) the standard price."""
        return self.batch_price if batch and self.batch_price is not None else self.price


def _date(value: Any) -> dt.date | None:
    # YAML reads an unquoted 2026-10-23 as a date already; a quoted one arrives as text.
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _price(name: str, p: dict[str, Any] | None) -> Price | None:
    if p is None:
        return None
    cached = p.get("cached_input")
    return Price(name, float(p["input"]), float(p["output"]), None if cached is None else float(cached), str(p["date"]))


def _model(name: str, raw: dict[str, Any]) -> Model:
    price = _price(name, raw.get("price"))
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
        history=_history(name, raw.get("history") or []),
        local=_local(raw.get("local")),
        batch_price=_price(name, raw.get("batch_price")),
    )


def _history(name: str, raw: Any) -> tuple[tuple[dt.date, str], ...]:
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        try:
            when = _date(item["from"])
            snapshot = item["snapshot"]
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(
                f"{REGISTRY_FILE}: {name}: history[{i}] must be {{from: YYYY-MM-DD, snapshot: <model id>}} ({exc!r})"
            ) from None
        if when is None or not isinstance(snapshot, str):
            raise ValueError(f"{REGISTRY_FILE}: {name}: history[{i}] needs a `from` date and a `snapshot` id")
        out.append((when, snapshot))
    return tuple(out)


def _local(raw: dict[str, Any] | None) -> LocalFile | None:
    return None if raw is None else LocalFile(str(raw["module"]), raw.get("file"), str(raw["install"]))


@cache
def _shipped() -> dict[str, dict[str, Any]]:
    text = files(__package__).joinpath("data/models.yaml").read_text(encoding="utf-8")
    # libyaml's parser, PyYAML's safe constructor: safe_load's data, a fifth of its time (paid by every run)
    raw: dict[str, dict[str, Any]] = yaml.load(text, Loader=yaml.CSafeLoader)["models"]
    return raw


@cache
def registry() -> dict[str, Model]:
    """Every id the shipped registry answers to (names and snapshots) → its entry."""
    return _index(_shipped())


def _index(raw: Mapping[str, dict[str, Any]]) -> dict[str, Model]:
    out: dict[str, Model] = {}
    for name, entry in raw.items():
        model = _model(name, entry)
        for key in (name, *model.snapshots):
            if key in out:
                raise ValueError(f"{REGISTRY_FILE}: {key!r} is listed twice")
            out[key] = model
    for name in raw:
        _check_history(out[name], out)
    return out


# The registry in force: the shipped one, or a project's models.yaml merged over it (harness.load._project_models,
# at the run's edge). None: the shipped one, not built yet.
_active: dict[str, Model] | None = None


def use_project(entries: Mapping[str, dict[str, Any]]) -> None:
    """Merge these entries (a project's models.yaml) over the shipped registry: a field given replaces the shipped
    one; none: the shipped registry as it is. Raises ValueError when the merged registry names an id twice."""
    global _active
    if not entries:
        _active = None
        return
    merged = {name: dict(entry) for name, entry in _shipped().items()}
    for name, entry in entries.items():
        merged[name] = merged.get(name, {}) | dict(entry)
    _active = _index(merged)


def _check_history(model: Model, known: Mapping[str, Model]) -> None:
    dates = [when for when, _ in model.history]
    if dates != sorted(set(dates)):
        raise ValueError(f"{REGISTRY_FILE}: {model.name}: history dates must be distinct and oldest first")
    unknown = [snapshot for _, snapshot in model.history if snapshot not in known]
    if unknown:
        raise ValueError(f"{REGISTRY_FILE}: {model.name}: history names snapshots not in the registry: {unknown}")


def lookup(model: str | None) -> Model | None:
    """The registry entry for a model id or snapshot id; None when unknown."""
    if not model:
        return None
    return (registry() if _active is None else _active).get(model)


def resolve(model: str, at: dt.date) -> str:
    """The id that answered for ``model`` on ``at``: an alias's snapshot then, else the id itself.

    Before the first recorded move the alias's first snapshot is taken (the alias did not exist, or its date is not
    known); a dated snapshot or a model without history is returned as it is.
    """
    entry = lookup(model)
    if entry is None or entry.name != model or not entry.history:
        return model
    if isinstance(at, dt.datetime):  # a datetime is a date, but does not compare with one
        at = at.date()
    served = [snapshot for when, snapshot in entry.history if when <= at]
    return served[-1] if served else entry.history[0][1]


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
