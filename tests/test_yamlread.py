"""A cassette's YAML read by harness.record._yamlread gives what ``yaml.load`` (libyaml's safe loader) gives — the
same values of the same types, aliases still one object — on random cassettes written as the harness writes them
and on YAML that only PyYAML's own constructor (or vcrpy's loader) makes."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
import yaml
from vcr.serializers import yamlserializer

from harness.record import _yamlread as yamlread

TRICKY = [
    "", " ", "200", "1e3", "0x1F", "0o17", "1_000", "+1", "-0", ".5", "1:20", "true", "True", "no", "off", "null",
    "~", "NULL", "2024-01-01", "2024-01-01 10:00:00", ".nan", ".inf", "<<", "=", "- x", "a: b", "#c", "'q'", '"dq"',
    "{x}", "[1]", "line\nbreak", "tab\there", "trailing ", "ünïcødé ✓", "\u2028", "sk-REDACTED", "*alias", "&anchor",
]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth >= 3 or kind < 0.5:
        return rng.choice([*TRICKY, 0, 200, -7, 1.5, 1e300, True, False, None, 10**30])
    if kind < 0.7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = rng.sample([*TRICKY[:12], "body", "headers"], rng.randint(0, 4))
    return {key: _value(rng, depth + 1) for key in keys}


def _cassette(rng: random.Random) -> dict[str, Any]:
    interactions = [
        {
            "request": {"body": str(_value(rng)), "headers": _value(rng), "method": "POST", "uri": "http://x/v1"},
            "response": {
                "body": {"string": rng.choice(TRICKY)},
                "headers": {"x-promptvcr-sample": [str(n)], "extra": _value(rng)},
                "status": {"code": rng.choice([200, 400, 500]), "message": rng.choice(["OK", "Bad Request"])},
            },
        }
        for n in range(rng.randint(1, 4))
    ]
    return {"version": 1, "interactions": interactions}


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type beside it: 1, 1.0 and True are told apart."""
    if isinstance(value, dict):
        return {_typed(k): _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


@pytest.mark.parametrize("seed", range(5))
def test_random_cassettes_read_as_yaml_load_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        data = _cassette(rng)
        for text in (yamlserializer.serialize(data), yaml.safe_dump(data, default_flow_style=True)):
            assert _typed(yamlread.parsed(text)) == _typed(yaml.load(text, Loader=yaml.CSafeLoader))


@pytest.mark.parametrize(
    "text",
    [
        "a: &x {b: [1, 2]}\nc: *x\n",  # an alias: one object twice
        "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\n",  # a merge key
        "s: !!set {a: null, b: null}\n",
        "o: !!omap [{a: 1}, {b: 2}]\n",
        "d: 2024-01-01\nt: 2024-01-01 10:00:00\nb: !!binary aGVsbG8=\n",
        "1: int key\n2.5: float key\ntrue: bool key\n~: null key\n",
        "",
        "just a string\n",
        "[1, two, 3.0]\n",
    ],
)
def test_what_only_pyyaml_makes_is_made_by_it(text: str) -> None:
    got, expected = yamlread.parsed(text), yaml.load(text, Loader=yaml.CSafeLoader)
    assert _typed(got) == _typed(expected)
    if isinstance(expected, dict) and "c" in expected:
        assert got["a"] is got["c"]  # still one object, as PyYAML makes it


def test_a_loop_is_made_by_pyyaml() -> None:
    got = yamlread.parsed("&a [*a, 1]\n")
    assert got[0] is got and got[1] == 1


def test_an_old_vcrpy_tag_goes_to_vcrpys_loader() -> None:
    text = "interactions:\n- request: {body: !!python/unicode 'hi'}\n"
    assert yamlread.parsed(text) == yamlserializer.deserialize(text) == {"interactions": [{"request": {"body": "hi"}}]}


def test_dates_stay_dates() -> None:
    assert yamlread.parsed("when: 2024-01-01\n") == {"when": datetime.date(2024, 1, 1)}
