"""The ``python`` check, for one-offs: ``- python: {function: "checks/mine.py:fn", args: {...}}``.

The file (relative to the project root) is imported when the case file is validated, so a missing file or function,
an import error or a function of the wrong shape is a ``file:line`` problem of the case file and nothing is sent. The
function is called as any registered check is: ``fn(answer, request, args)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import InputError, Problem
from . import _registry as registry
from ._answer import Answer, CheckArgError

NAME = "python"


@dataclass(frozen=True)
class Function:
    fn: registry.CheckFn
    args: Any


def register() -> None:
    registry.add(registry.Registered(NAME, _call, registry.BUILT_IN, _prepare, lambda arg: f"{NAME}:{arg['function']}"))


def _call(answer: Answer, request: Mapping[str, Any], function: Function) -> Any:
    return function.fn(answer, request, function.args)


def _prepare(arg: Any, root: Path) -> Function:
    where, _, name = arg["function"].rpartition(":")  # the case schema has checked the form `<file>.py:<name>`
    path = root / where
    if not path.is_file():
        where_from = f"a python check's path is relative to the project root {root}"
        raise CheckArgError(f"no file {where} ({where_from})", "/function")
    module = _imported(path.resolve(), where)
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        has = f" (it has: {', '.join(defined)})" if defined else ""
        raise CheckArgError(f"{where} has no function {name!r}{has}", "/function")
    problem = registry.signature_problem(fn)
    if problem:
        raise CheckArgError(f"{where}:{name} {problem}", "/function")
    return Function(fn, arg.get("args", {}))


def conftest_checks(root: Path) -> None:
    """Outside pytest (``promptvcr validate``, ``status``…): the checks the project's conftest.py registers, by
    ``@harness.check`` or its ``pytest_promptvcr_checks`` hook, as pytest would register them; InputError when it
    cannot be imported."""
    path = root / "conftest.py"
    if not path.is_file():
        return
    sys.path.insert(0, str(root))  # as pytest imports a rootdir's conftest.py: its own modules beside it importable
    try:
        module = _imported(path.resolve(), "conftest.py")
    except CheckArgError as exc:
        raise InputError([Problem(path, _line(str(exc)), "", str(exc))]) from None
    finally:
        sys.path.remove(str(root))
    hook = getattr(module, "pytest_promptvcr_checks", None)
    if callable(hook):
        hook(register=registry.register)


def _line(message: str) -> int:
    found = re.search(r"\(line (\d+)\)$", message)
    return int(found.group(1)) if found else 1


_MODULES: dict[tuple[Path, int], ModuleType] = {}  # imported once per version of the file


def _imported(path: Path, where: str) -> ModuleType:
    key = (path, path.stat().st_mtime_ns)
    if key in _MODULES:
        return _MODULES[key]
    # a name of its own in sys.modules (dataclasses and pickling look a module up there), the file's folder not on
    # sys.path: a one-off check is a file, not a package
    name = f"promptvcr_check_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise CheckArgError(f"cannot import {where}: SyntaxError: {exc.msg} (line {exc.lineno})", "/function") from None
    except Exception as exc:  # whatever the file raises while it is imported is the file's problem
        del sys.modules[name]
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        at = f" (line {frames[-1].lineno})" if frames else ""
        raise CheckArgError(f"cannot import {where}: {type(exc).__name__}: {exc}{at}", "/function") from None
    _MODULES[key] = module
    return module
