"""YAML loading that remembers where every value came from.

Validation errors must cite ``file:line`` and a JSON pointer, so the loader returns, beside the data, a map from
each JSON pointer to the 1-based line of its value. Duplicate mapping keys, which PyYAML silently collapses, are
reported as problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem


def escape(token: str | int) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(parts: Any) -> str:
    return "".join("/" + escape(p) for p in parts)


class Located:
    """Parsed YAML data plus the line of each JSON pointer inside it."""

    def __init__(self, path: Path, data: Any, lines: dict[str, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line(self, ptr: str) -> int:
        """The line of ``ptr``, or of its nearest ancestor that has one."""
        while ptr not in self.lines and ptr:
            ptr = ptr.rsplit("/", 1)[0]
        return self.lines.get(ptr, 1)

    def problem(self, ptr: str, message: str) -> Problem:
        return Problem(self.path, self.line(ptr), ptr, message)


# libyaml's loader when PyYAML has it (its nodes carry line marks too): collection parses every case file
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str, loader_class: Any) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def load(path: Path) -> Located:
    """Parse ``path``; raise InputError with the line of any syntax error or duplicate key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(path, 1, "", f"cannot read the file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise InputError([Problem(path, 1, "", f"not UTF-8 text ({exc.reason})")]) from None
    try:
        node, data = _parse(text, _FAST_LOADER)
    except yaml.YAMLError:  # parsed again by PyYAML's own loader, whose messages say more than libyaml's
        try:
            node, data = _parse(text, yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            raise InputError([_syntax_problem(path, text, exc)]) from None
        except yaml.YAMLError as exc:
            raise InputError([Problem(path, 1, "", f"YAML error: {exc}")]) from None
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, "", lines, problems, path)
    if problems:
        raise InputError(problems)
    return Located(path, data, lines)


def _syntax_problem(path: Path, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """Cite where the problem is; when PyYAML only notices it at the end of the file, where it started."""
    last = max(1, len(text.splitlines()))
    problem = exc.problem_mark.line + 1 if exc.problem_mark else None
    context = exc.context_mark.line + 1 if exc.context_mark else None
    line = problem if problem is not None and problem <= last else (context or last)
    message = f"YAML syntax error: {exc.problem or 'unreadable YAML'}"
    if exc.context and context is not None:
        message += f" ({exc.context} that starts at line {context})" if context != line else f" ({exc.context})"
    return Problem(path, min(line, last), "", message)


def _walk(node: yaml.Node, ptr: str, lines: dict[str, int], problems: list[Problem], path: Path) -> None:
    lines.setdefault(ptr, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            child = ptr + "/" + escape(key)
            if key in seen and key != "<<":
                problems.append(Problem(path, line, child, f"duplicate key {key!r} (first at line {seen[key]})"))
            seen.setdefault(key, line)
            lines[child] = line
            _walk(value_node, child, lines, problems, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{ptr}/{index}", lines, problems, path)
