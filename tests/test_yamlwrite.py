"""A cassette written by harness.record._yamlwrite is the very text vcrpy's serializer writes — on random cassettes,
on the repository's recorded ones, and on data it leaves to vcrpy (floats, tuples, bytes, str subclasses, an object
met twice) — and vcrpy reads it back as the same data."""

from __future__ import annotations

import enum
import random
import string
from pathlib import Path
from typing import Any

import pytest
from vcr.serializers import yamlserializer

from harness.record import _cassettes as cassettes
from harness.record import _yamlwrite as yamlwrite
from tests.test_yamlread import TRICKY

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"


def _text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(TRICKY)
    alphabet = string.ascii_letters + string.digits + " :#-'\"{}[],&*!|>%@`\\\n\tü✓\u2028\x85\x07"
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 5, 40, 120, 300])))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth >= 4 or kind < 0.55:
        return rng.choice([_text(rng), 0, 200, -7, 10**30, True, False, None])
    if kind < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(6))
def test_random_data_is_written_as_vcrpy_writes_it(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        data = {"version": 1, "interactions": [_value(rng) for _ in range(rng.randint(0, 3))]}
        assert yamlwrite.dumped(data) == yamlserializer.serialize(data), data


def test_what_a_plain_scalar_reads_as_is_remembered_for_short_values_only_and_bounded() -> None:
    # a value that would read back as another type (an int, a bool, a date) stays quoted when its answer comes from
    # the memo; enough distinct values empty it rather than growing it
    data = {"interactions": [{"k": v, v: [v, "x" * 65]} for v in TRICKY if v]}
    first = yamlwrite.dumped(data)
    assert yamlwrite.dumped(data) == first == yamlserializer.serialize(data)
    assert "x" * 65 not in yamlwrite._Dumper._plain and "200" in yamlwrite._Dumper._plain
    many = {"interactions": [f"v{i}" for i in range(yamlwrite._PLAIN_MEMO_MAX + 10)] + TRICKY}
    assert yamlwrite.dumped(many) == yamlserializer.serialize(many)
    assert len(yamlwrite._Dumper._plain) <= yamlwrite._PLAIN_MEMO_MAX
    assert yamlwrite.dumped(data) == first


def test_a_recorded_cassette_is_written_back_byte_for_byte() -> None:
    paths = sorted(CASSETTES.rglob("*.yaml"))
    assert paths, "the repository's committed cassettes"
    for path in paths:
        text = path.read_text(encoding="utf-8")
        data = yamlserializer.deserialize(text)
        assert yamlwrite.dumped(data) == yamlserializer.serialize(data), path


class Colour(enum.StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "unusual",
    [1.5, float("nan"), (1, 2), b"bytes", Colour.RED, {1: "int key"}, {"nested": {"x": 1.0}}],
    ids=["float", "nan", "tuple", "bytes", "str-enum", "int-key", "nested-float"],
)
def test_what_it_does_not_know_is_left_to_vcrpy(unusual: Any) -> None:
    data = {"interactions": [{"request": {"body": unusual}}], "version": 1}
    try:
        expected = yamlserializer.serialize(data)
    except Exception as refused:  # vcrpy refuses what its loader would not read back: so must this
        with pytest.raises(type(refused)):
            yamlwrite.dumped(data)
    else:
        assert yamlwrite.dumped(data) == expected


def test_an_object_met_twice_is_an_anchor_and_an_alias_as_vcrpy_writes_it() -> None:
    shared = {"accept": ["application/json"]}
    data = {"interactions": [{"request": {"headers": shared}}, {"request": {"headers": shared}}], "version": 1}
    written = yamlwrite.dumped(data)
    assert written == yamlserializer.serialize(data) and "&id001" in written and "*id001" in written


def test_deep_nesting_is_written_as_vcrpy_writes_it_and_too_deep_fails_as_it_fails() -> None:
    def nested(depth: int) -> dict[str, Any]:
        deep: list[Any] = []
        for _ in range(depth):
            deep = [deep]
        return {"interactions": deep, "version": 1}

    assert yamlwrite.dumped(nested(150)) == yamlserializer.serialize(nested(150))
    with pytest.raises(RecursionError):
        yamlserializer.serialize(nested(3000))
    with pytest.raises(RecursionError):
        yamlwrite.dumped(nested(3000))


def test_a_saved_cassette_reads_back_through_vcrpy(tmp_path: Path) -> None:
    rng = random.Random(14)
    interactions = [{"request": {"body": _text(rng)}, "response": {"status": {"code": 200}}} for _ in range(20)]
    path = tmp_path / "c.yaml"
    cassettes.save(path, interactions)
    loaded = yamlserializer.deserialize(path.read_text(encoding="utf-8"))
    assert loaded == {"version": cassettes.FORMAT_VERSION, "interactions": interactions}
