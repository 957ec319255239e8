"""The pytest side of the check registry: the ``pytest_promptvcr_checks(register)`` hook a conftest.py implements.

A plugin of its own, which ``harness.plugin`` loads (its ``pytest_plugins``). The checks registered in a session (by a
conftest's hook or its ``@harness.check``) are dropped when the session ends, so that pytest sessions in one process
(pytester's) keep theirs apart.

PYTEST_DONT_REWRITE: pytest marks the plugins it loads by name for assertion rewriting, and would warn (an error under
``filterwarnings = error``) that this one was imported before it could.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from . import _registry as registry

_BEFORE = pytest.StashKey[tuple[dict[str, Any], bool]]()


class HookSpecs:
    @pytest.hookspec(historic=True)
    def pytest_promptvcr_checks(self, register: Callable[[str, registry.CheckFn], None]) -> None:
        """Register checks a case file may name: ``register("name", fn)``, ``fn(answer, request, args)`` returning a
        bool, a reason string (failed) or a ``harness.CheckResult``. Called for every conftest.py, at startup."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(HookSpecs)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    early_config.stash[_BEFORE] = registry.snapshot()  # before any conftest.py registers its own


def pytest_configure(config: pytest.Config) -> None:
    config.hook.pytest_promptvcr_checks.call_historic(kwargs={"register": registry.register})


def pytest_unconfigure(config: pytest.Config) -> None:
    if _BEFORE in config.stash:
        registry.restore(config.stash[_BEFORE])
