from __future__ import annotations

from collections.abc import Iterator

import httpcore2  # noqa: F401  # see below
import pytest

from tests.fakeserver import FakeOpenAI

pytest_plugins = ["pytester"]

# pytester's in-process runs drop modules first imported inside them. httpx2 maps httpcore2's exceptions through a
# table it builds once; a re-imported httpcore2 would raise classes that table doesn't know, and a refused
# connection would escape unmapped. Importing it here keeps one httpcore2 for the whole session.


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh OpenAI-compatible test server on 127.0.0.1 answering '{"ok": true}' unless told otherwise."""
    with FakeOpenAI() as server:
        yield server
