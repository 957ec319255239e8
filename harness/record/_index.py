"""The parsed index of a project's cassettes (``.promptvcr-cache/cassettes/``, ``harness.record._cache``): each
file's interactions as JSON, named by the file's sha256, so that a replay reads JSON (in C) instead of making YAML's
data in Python. Only ever a faster read of the file: an entry that is missing, unreadable or of another layout
costs the parse it saves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import _cache as cache
from . import _yamlread as yamlread

Interaction = dict[str, Any]  # {"request": {...}, "response": {...}}, as in vcrpy's YAML

# An index entry: every distinct recorded request once (the samples of a case send the same one: 40% of the JSON
# to parse), then each interaction as [its request's number, its response]. Another layout is parsed anew.
INDEX_LAYOUT = 2


def index_dir(cassettes_dir: Path) -> Path:
    """Where the parsed cassettes of a project are kept (beside ``cassettes/``: ``harness.record._cache``)."""
    return cache.folder(cassettes_dir.parent, "cassettes")


def read(path: Path, raw: bytes, digest: str, index: Path | None) -> list[Interaction]:
    """The file's interactions: from the index when it holds this very file (by its sha256), else parsed and put
    in the index. Making YAML's data is Python (~1 ms a 10-answer cassette, harness.record._yamlread); the same
    data as JSON loads in a quarter of that. Interactions read from the index share their request when it is the
    same (``unshared`` gives each its own, to be saved)."""
    cached = index / f"{digest}.json" if index is not None else None
    if cached is not None:
        try:
            entry = json.loads(cache.read(cached) or b"null")
        except ValueError:
            entry = None  # not indexed yet (or not readable): parsed below
        found = _entry_interactions(entry)
        if found is not None:
            return found
    data = yamlread.parsed(raw.decode("utf-8")) or {}
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list):
        raise ValueError(f"{path} is not a cassette (no `interactions` list)")
    if cached is not None:
        _keep(cached, interactions)
    return interactions


def _keep(cached: Path, interactions: list[Interaction]) -> None:
    """Keep the parsed interactions as JSON, when JSON gives back the very same data (a YAML date, a tuple or a
    number as a key would come back changed: such a file is parsed each time instead). Best effort: an index that
    cannot be written costs time, not answers."""
    numbers: dict[str, int] = {}  # a request's JSON → its number (a dict keeps the order they came in)
    try:
        texts = [json.dumps(interaction["request"], ensure_ascii=False) for interaction in interactions]
        pairs = [[numbers.setdefault(t, len(numbers)), i["response"]] for t, i in zip(texts, interactions, strict=True)]
        entry = f'"layout":{INDEX_LAYOUT},"requests":[{",".join(numbers)}],"interactions":'
        text = f"{{{entry}{json.dumps(pairs, ensure_ascii=False)}}}"
    except (TypeError, ValueError, KeyError):  # KeyError: an interaction without a request (a hand-made file)
        return
    if _entry_interactions(json.loads(text)) == interactions:
        cache.write(cached, text)


def _entry_interactions(entry: Any) -> list[Interaction] | None:
    """The interactions of an index entry; None when it is not an entry of this layout."""
    if not isinstance(entry, dict) or entry.get("layout") != INDEX_LAYOUT:
        return None
    requests, pairs = entry.get("requests"), entry.get("interactions")
    if not isinstance(requests, list) or not isinstance(pairs, list):
        return None
    try:
        return [{"request": requests[number], "response": response} for number, response in pairs]
    except (TypeError, ValueError, IndexError):  # an entry not made by ``_keep``: the file is parsed instead
        return None


def unshared(interactions: list[Interaction]) -> list[Interaction]:
    """``interactions`` with no request that two of them share (``read`` gives the same request once), as YAML must
    be given them: it writes an object met twice as an anchor and its aliases, not as vcrpy writes what it reads."""
    seen: set[int] = set()
    out = []
    for interaction in interactions:
        request = interaction.get("request")
        if isinstance(request, dict | list):  # what YAML would anchor (an interaction without one is kept as it is)
            if id(request) in seen:
                interaction = {**interaction, "request": _copied(request)}
            seen.add(id(interaction["request"]))
        out.append(interaction)
    return out


def _copied(value: Any) -> Any:
    """A JSON value's own copy: its dicts and lists anew (strings, numbers and None are immutable)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value
