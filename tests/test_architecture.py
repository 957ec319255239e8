"""The package's shape, checked: one folder per concern, imports only downwards, no cycle, modules and functions small.

Layers, lowest first. A module may import its own folder and any lower one, never a higher one. ``harness``'s own
modules stand at the ends: ``errors``, ``_cliargs`` (the number rules of every command line), ``_lazy`` (imports
on first use), ``_scoped`` (a context variable set for a block) and ``_slotted`` (a frozen dataclass made faster)
below everything; ``_session`` (a run without pytest) above the folders it drives, the pytest plugin and the façade
above all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"
LAYERS = [
    "errors",
    "tokens",
    "checks",
    "record",
    "load",
    "run",
    "report",
    "testing",
    "_session",
    "cli",
    "plugin",
    "__init__",
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for path in HARNESS.rglob("*.py"):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


# harness's own modules that stand with a folder's layer rather than name one
_BESIDE = {"__main__": "cli", "_cliargs": "errors", "_lazy": "errors", "_scoped": "errors", "_slotted": "errors"}


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # harness itself: the façade
        return LAYERS.index("__init__")
    return LAYERS.index(_BESIDE.get(parts[1], parts[1]))


def _imports(module: str, path: Path, top_only: bool) -> Iterator[tuple[str, int]]:
    """The harness modules ``module`` imports (relative imports resolved), with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("harness"):
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                yield (full if full in MODULES else target), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("harness"):
                    yield alias.name, node.lineno


def test_imports_only_go_down() -> None:
    upward = [
        f"{MODULES[m].relative_to(HARNESS.parent)}:{line} imports {target}"
        for m in MODULES
        for target, line in _imports(m, MODULES[m], top_only=False)
        if _layer(target) > _layer(m)
    ]
    assert upward == []


def test_no_import_cycle() -> None:
    graph = {m: {t for t, _ in _imports(m, MODULES[m], top_only=True) if t != m} for m in MODULES}
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for t in sorted(graph.get(m, ())):
            if seen.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(t) :], t]))
            if t not in seen:
                visit(t, [*path, t])
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [m])


def test_internals_are_private_and_every_folder_is_a_concern_with_a_docstring() -> None:
    for folder in sorted(p for p in HARNESS.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        init = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
        assert ast.get_docstring(init), f"{folder.name}/__init__.py says what the folder is for"
        public = [p.name for p in folder.glob("*.py") if not p.name.startswith("_")]
        if folder.name not in ("testing",):  # test tooling is used by name from tests (harness.testing.chaos)
            assert public == [], f"{folder.name}: internals are private (_name.py): {public}"


def test_modules_and_functions_are_small() -> None:
    big = []
    for path in sorted(MODULES.values()):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            big.append(f"{path.relative_to(HARNESS.parent)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big.append(f"{path.relative_to(HARNESS.parent)}:{node.lineno} {node.name}: {length} lines")
    assert big == []
