"""A context variable set for the length of a ``with`` block, reset after it.

What ``contextlib.contextmanager`` around ``var.set`` / ``var.reset`` does, without a generator to start and finish:
a replay enters two such blocks for each of its rows (the cassette a sample plays, its checks' deadline).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Generic, TypeVar

T = TypeVar("T")


class Scoped(Generic[T]):
    __slots__ = ("_token", "_value", "_var")

    def __init__(self, var: ContextVar[T], value: T) -> None:
        self._var = var
        self._value = value
        self._token: Token[T] | None = None

    def __enter__(self) -> None:
        self._token = self._var.set(self._value)

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None  # entered first
        self._var.reset(self._token)
