"""Libraries imported when they are first used, not when a module naming them is: a replay answered from its
cassettes never needs the openai SDK (half a second to import), pandas and numpy only an A/B comparison or a
metric of the user's, jinja2 only a message that is a template, and jsonschema only a file that must be validated
or an answer its schema check must explain. A module takes them from here, typed as the modules themselves:

    from .._lazy import pandas as pd

Each attribute read goes through ``importlib.import_module`` until the first one has imported the module (it holds
the import lock, so threads that get there together import it once); the module is then kept. Modules used
together are imported together at the first use of any (jinja2 with its sandbox; jsonschema with the parts of
referencing whose registries its validators take), so that ``jinja2.sandbox`` or ``referencing.jsonschema`` is
there whichever is read first, and each is the very module the other was imported with.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

Loader = Callable[[str], ModuleType]


class _Lazy:
    def __init__(self, name: str, loader: Loader = importlib.import_module) -> None:
        self._name = name
        self._loader = loader
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = self._loader(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{'' if self._module is None else ' (imported)'}>"


def lazy(name: str) -> Any:
    """The module ``name``, imported on first use."""
    return _Lazy(name)


def _together(*names: str) -> Loader:
    """A loader of the modules ``names``, all imported at the first use of any of them."""
    modules: dict[str, ModuleType] = {}
    lock = threading.Lock()

    def load(name: str) -> ModuleType:
        with lock:
            if not modules:
                modules.update({each: importlib.import_module(each) for each in names})
        return modules[name]

    return load


if TYPE_CHECKING:
    import httpx2 as httpx2
    import jinja2 as jinja2
    import jinja2.sandbox
    import jsonschema as jsonschema
    import numpy as numpy
    import openai as openai
    import pandas as pandas
    import referencing as referencing
    import referencing.exceptions
    import referencing.jsonschema
else:
    httpx2, numpy, openai, pandas = map(lazy, ("httpx2", "numpy", "openai", "pandas"))
    jinja2 = _Lazy("jinja2", _together("jinja2", "jinja2.sandbox"))
    _schemas = _together("jsonschema", "referencing", "referencing.exceptions", "referencing.jsonschema")
    jsonschema, referencing = _Lazy("jsonschema", _schemas), _Lazy("referencing", _schemas)
