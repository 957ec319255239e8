from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeserver import FakeOpenAI

pytest_plugins = ["pytester"]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh OpenAI-compatible test server on 127.0.0.1 answering '{"ok": true}' unless told otherwise."""
    with FakeOpenAI() as server:
        yield server
