"""Libraries imported when they are first used, not when a module naming them is: a replay answered from its
cassettes never needs the openai SDK (half a second to import), and pandas and numpy only an A/B comparison or a
metric of the user's. A module takes them from here, typed as the modules themselves:

    from .._lazy import pandas as pd

Each attribute read goes through ``importlib.import_module`` until the first one has imported the module (it holds
the import lock, so threads that get there together import it once); the module is then kept.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _Lazy:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{'' if self._module is None else ' (imported)'}>"


def lazy(name: str) -> Any:
    """The module ``name``, imported on first use."""
    return _Lazy(name)


if TYPE_CHECKING:
    import httpx2 as httpx2
    import jinja2 as jinja2
    import numpy as numpy
    import openai as openai
    import pandas as pandas
else:
    httpx2, jinja2, numpy, openai, pandas = map(lazy, ("httpx2", "jinja2", "numpy", "openai", "pandas"))
