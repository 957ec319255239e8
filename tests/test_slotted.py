"""harness._slotted: a frozen, slotted dataclass whose __init__ fills its slots directly; the same class to users."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from harness._slotted import filled_by_slot
from harness.run._row import COLUMNS, Row


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str = "b"
    c: tuple[int, ...] = ()
    d: Any = field(default=None, compare=False)
    e: list[int] = field(default_factory=list)


@filled_by_slot
@dataclass(frozen=True, slots=True)
class Filled:
    a: int
    b: str = "b"
    c: tuple[int, ...] = ()
    d: Any = field(default=None, compare=False)
    e: list[int] = field(default_factory=list)


def _parameters(cls: type) -> list[tuple[str, Any, str]]:
    return [(p.name, p.kind, repr(p.default)) for p in inspect.signature(cls).parameters.values()]


def test_the_init_takes_what_the_dataclass_init_takes_and_fills_the_same_fields() -> None:
    assert _parameters(Filled) == _parameters(Plain)
    assert Filled.__init__.__qualname__ == "Filled.__init__" and "_set_a" in Filled.__init__.__code__.co_names
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [((1,), {}), ((1, "x"), {"d": 4}), ((), {"a": 2, "b": "y"})]
    for args, kwargs in calls:
        made, plain = Filled(*args, **kwargs), Plain(*args, **kwargs)
        assert dataclasses.astuple(made) == dataclasses.astuple(plain)
        assert repr(made) == repr(plain).replace("Plain", "Filled")
    assert Filled(1, d=1) == Filled(1, d=2)  # eq as declared
    assert Filled(1).e == [] and Filled(1).e is not Filled(1).e  # a default factory's value: a new one each time
    given = [1]
    assert Filled(1, e=given).e is given


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, "x", (), None, [], "extra"), {}), ((1,), {"a": 1}), ((1,), {"bogus": 1})],
)
def test_wrong_arguments_raise_the_type_error_the_dataclass_raises(args: tuple[Any, ...], kwargs: Any) -> None:
    with pytest.raises(TypeError) as plain:
        Plain(*args, **kwargs)
    with pytest.raises(TypeError) as made:
        Filled(*args, **kwargs)
    assert str(made.value) == str(plain.value).replace("Plain", "Filled")


def test_it_stays_frozen_and_slotted() -> None:
    made = Filled(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = 2  # type: ignore[misc]  # the point: it is refused
    with pytest.raises((AttributeError, TypeError)):
        made.other = 1  # type: ignore[attr-defined]  # no __dict__ to put it in
    assert not hasattr(made, "__dict__")
    assert dataclasses.replace(made, b="z") == Filled(1, "z")
    assert dataclasses.replace(made, b="z").e == [] and dataclasses.replace(made, b="z").e is made.e  # as dataclasses'
    assert pickle.loads(pickle.dumps(made)) == made


def test_a_result_row_is_made_this_way_and_round_trips_as_before() -> None:
    assert Row.__init__.__qualname__ == "Row.__init__" and "_set_eval" in Row.__init__.__code__.co_names
    row = Row("e", "c", "v", "m", 3, Row.from_dict({"eval": "e", "case": "c", "variant": "v", "sample": 0,
                                                       "outcome": "passed"}).outcome, cost_usd=0.5)  # fmt: skip
    assert Row.from_dict(row.to_dict()) == row and tuple(row.to_dict()) == COLUMNS
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.cost_usd = 1.0  # type: ignore[misc]  # the point: it is refused


def _not_made(cls: type) -> None:
    with pytest.raises(TypeError):
        filled_by_slot(cls)


def test_a_class_it_cannot_make_the_same_is_refused() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        a: int

    @dataclass(frozen=True, slots=True)
    class NotInInit:
        a: int = field(default=0, init=False)

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: dataclasses.InitVar[int] = 0

    @dataclass(frozen=True, slots=True)
    class WithClassVar:
        a: int
        b: ClassVar[int] = 0

    for cls in (NoSlots, NotFrozen, PostInit, KeywordOnly, NotInInit, WithInitVar, WithClassVar):
        _not_made(cls)
