from __future__ import annotations

from collections.abc import Iterator

import httpcore2  # noqa: F401  # see below
import jinja2  # noqa: F401  # see below
import jsonschema  # noqa: F401  # see below
import numpy  # noqa: F401  # see below
import openai  # noqa: F401  # see below
import pandas  # noqa: F401  # see below
import pytest

from tests.fakeserver import FakeOpenAI, cycling

pytest_plugins = ["pytester"]

# pytester's in-process runs drop modules first imported inside them. httpx2 maps httpcore2's exceptions through a
# table it builds once; a re-imported httpcore2 would raise classes that table doesn't know, and a refused
# connection would escape unmapped. Importing it here keeps one httpcore2 for the whole session. The harness imports
# the SDK and the report's pandas on first use (harness._lazy), which may be inside such a run: numpy cannot be
# imported twice in a process, and a second openai would raise classes the first one's callers don't catch. So are
# jinja2 (a compiled template imports jinja2.runtime by name: a second one's `missing` and `Undefined` are not the
# sandbox's) and jsonschema (its errors and referencing's registries must be the ones the validators know).


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(_fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    """An OpenAI-compatible test server on 127.0.0.1, shared by the session and reset for every test: it has received
    nothing and answers '{"ok": true}' unless the test says otherwise."""
    _fake_openai_server.received.clear()
    _fake_openai_server.respond = cycling(['{"ok": true}'])
    return _fake_openai_server
