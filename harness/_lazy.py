"""A library imported when it is first used, not when the module naming it is: a replay answered from its cassettes
never needs the openai SDK (half a second to import) or the report's pandas stack until it writes the report.

    if TYPE_CHECKING:
        import pandas as pd
    else:
        pd = lazy("pandas")

Each attribute read goes through ``importlib.import_module`` the first time only (it holds the import lock, so
threads that get there together import it once); the module is then kept.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


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
