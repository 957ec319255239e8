"""YAML loading that remembers where every value came from.

Validation errors must cite ``file:line`` and a JSON pointer, so the loader returns, beside the data, a map from
each JSON pointer to the 1-based line of its value. The files hold JSON data written as YAML, so what YAML has and
JSON hasn't is a problem at its line: duplicate mapping keys (which PyYAML silently collapses), non-string keys, NaN
and infinity, dates and other typed tags (an unquoted date is read as a string), lone surrogates, bytes that aren't
UTF-8 text, and alias expansion past a budget. The document's nodes are walked, and counted, before any data is
made from them; a file is read only when it is a regular file of a sane size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ..errors import InputError, Problem


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


# Beyond what a file's own nodes hold, at most this many more values may come from YAML aliases (`*name`): a
# "billion laughs" file expands exponentially and would hang the walk, the schema check and every later step.
ALIAS_BUDGET = 100_000
MAX_DEPTH = 100  # deeper nesting is no real case file, and every recursive step after loading would overflow
MAX_BYTES = 10 * 2**20  # no case or eval file is larger; a link to /dev/zero or a log is no case file

_STR, _FLOAT, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:float", "tag:yaml.org,2002:merge"
# Tags whose values JSON has no form for: refused with their line, so nothing fails later as "not JSON serializable".
_NOT_JSON_TAGS = ("timestamp", "binary", "set", "omap", "pairs")


def _strict(base: Any) -> Any:
    """``base`` (a PyYAML safe loader) reading JSON data only: an unquoted date is a string, as in JSON, and a tag
    that makes a date, bytes or a set is an error."""

    class Strict(base):  # type: ignore[misc]  # PyYAML's loaders are untyped classes
        yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, Any]]]] = {
            first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(":timestamp")]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }

    for name in _NOT_JSON_TAGS:
        Strict.add_constructor(f"tag:yaml.org,2002:{name}", _refuse_tag)
    return Strict


def _refuse_tag(loader: Any, node: yaml.Node) -> Any:
    name = node.tag.rsplit(":", 1)[-1]
    raise yaml.constructor.ConstructorError(
        None, None, f"a !!{name} value has no JSON form: write it as a string, a list or a mapping", node.start_mark
    )


# libyaml's loader when PyYAML has it (its nodes carry line marks too): collection parses every case file
_FAST_LOADER = _strict(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_LOADER = _strict(yaml.SafeLoader)
_NUMBERS = yaml.constructor.SafeConstructor()  # reads a float scalar as the loader will


def _parse(text: str, loader_class: Any, path: Path) -> tuple[yaml.Node | None, Any, dict[str, int]]:
    """The document's node, its data and the line of each pointer; the node is walked (and refused when its
    aliases expand too far) before any data is made from it."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if node is not None:
            problems = _Walk(path, lines).run(node)
            if problems:
                raise InputError(problems)
        return node, (loader.construct_document(node) if node is not None else None), lines
    finally:
        loader.dispose()


def read(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_BYTES (a device or a pipe would never end, or block). Data
    tables (harness.load._datatables) are read by it too."""
    try:
        if path.exists() and not path.is_file():
            raise InputError([Problem(path, 1, "", "not a regular file (a device, a pipe or a folder?)")])
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError([Problem(path, 1, "", f"cannot read the file: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise InputError([Problem(path, 1, "", f"larger than {MAX_BYTES // 2**20} MiB: too large for an input file")])
    return raw


def decoded(path: Path, raw: bytes) -> str:
    """``raw`` as UTF-8 text; InputError at the line of the first byte that isn't."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError([Problem(path, line, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None


def load(path: Path) -> Located:
    """Parse ``path``; raise InputError with the line of any syntax error, duplicate key, value JSON has no form
    for (NaN, infinity, a date), or alias expansion past ``ALIAS_BUDGET``."""
    return parse(path, read(path))


def parse(path: Path, raw: bytes) -> Located:
    """``load`` of the bytes ``raw`` read from ``path``."""
    text = decoded(path, raw)
    try:
        try:
            _, data, lines = _parse(text, _FAST_LOADER, path)
        except yaml.YAMLError:  # parsed again by PyYAML's own loader, whose messages say more than libyaml's
            _, data, lines = _parse(text, _LOADER, path)
    except yaml.MarkedYAMLError as exc:
        raise InputError([_syntax_problem(path, text, exc)]) from None
    except yaml.reader.ReaderError as exc:  # a NUL or other control character: cited at its own line
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"the control character U+{code:04X} is not allowed in YAML (a binary file, or a stray byte?)"
        raise InputError([Problem(path, line, "", message)]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(path, 1, "", f"YAML error: {exc}")]) from None
    except RecursionError:  # the composer recurses per level, before the walk can count them
        raise InputError([Problem(path, 1, "", f"nested more than {MAX_DEPTH} levels deep")]) from None
    return Located(path, data, lines)


def _syntax_problem(path: Path, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """Cite where the problem is; when PyYAML only notices it at the end of the file, where it started."""
    last = max(1, len(text.splitlines()))
    problem = exc.problem_mark.line + 1 if exc.problem_mark else None
    context = exc.context_mark.line + 1 if exc.context_mark else None
    line = problem if problem is not None and problem <= last else (context or last)
    kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
    message = f"{kind}: {exc.problem or 'unreadable YAML'}"
    if exc.context and context is not None:
        message += f" ({exc.context} that starts at line {context})" if context != line else f" ({exc.context})"
    return Problem(path, min(line, last), "", message)


class _Walk:
    """One pass over a document's nodes: the line of every pointer, and every problem found on the way."""

    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path = path
        self.lines = lines
        self.problems: list[Problem] = []
        self.seen: set[int] = set()  # nodes already walked: visiting one again is an alias expanding
        self.budget = ALIAS_BUDGET

    def run(self, node: yaml.Node) -> list[Problem]:
        self._node(node, "", ())
        return self.problems

    def _problem(self, line: int, ptr: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, ptr, message))

    def _node(self, node: yaml.Node, ptr: str, ancestors: tuple[int, ...], near: int = 1) -> bool:
        """False once the walk must stop (an alias loops or expands past the budget). ``near``: the line of the
        value that holds this one, where an alias to it stands (an aliased node only knows its anchor's line)."""
        again = id(node) in self.seen
        line = near if again else node.start_mark.line + 1
        self.lines.setdefault(ptr, line)
        if id(node) in ancestors:
            self._problem(line, ptr, "a YAML alias refers to a value that contains it (a loop)")
            return False
        if again:
            self.budget -= 1
            if self.budget < 0:
                message = f"YAML aliases expand this file past {ALIAS_BUDGET} extra values; write the values out"
                self._problem(line, ptr, message)
                return False
        self.seen.add(id(node))
        if len(ancestors) >= MAX_DEPTH:
            self._problem(line, ptr, f"nested more than {MAX_DEPTH} levels deep")
            return False
        if isinstance(node, yaml.ScalarNode):
            self._scalar(node, ptr, line)
            return True
        inner = (*ancestors, id(node))
        if isinstance(node, yaml.SequenceNode):
            return all(self._node(item, f"{ptr}/{i}", inner, line) for i, item in enumerate(node.value))
        assert isinstance(node, yaml.MappingNode)  # the third kind of node
        return self._mapping(node, ptr, inner, line if again else None)

    def _mapping(self, node: yaml.MappingNode, ptr: str, inner: tuple[int, ...], alias_line: int | None) -> bool:
        """``alias_line``: where the alias stands when this mapping is an alias's (its keys' lines are the anchor's)."""
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = alias_line or key_node.start_mark.line + 1
            child = ptr + "/" + escape(key.encode("utf-8", "backslashreplace").decode())  # printable, if refused
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (_STR, _MERGE):
                what = key_node.tag.rsplit(":", 1)[-1]
                self._problem(line, child, f"a key must be a string, and {key!r} reads as {what}: quote it")
            if isinstance(key_node, yaml.ScalarNode):
                self._unicode(key_node.value, line, child)
            if key in seen and key != "<<":
                self._problem(line, child, f"duplicate key {key!r} (first at line {seen[key]})")
            seen.setdefault(key, line)
            self.lines[child] = line
            if not self._node(value_node, child, inner, line):
                return False
        return True

    def _unicode(self, value: str, line: int, ptr: str) -> None:
        """A "\\ud800" escape makes a lone surrogate: no UTF-8 request body, cassette or report can hold it."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            self._problem(line, ptr, f"{exc.object[exc.start]!a} is half of a UTF-16 pair, not a character: remove it")

    def _scalar(self, node: yaml.ScalarNode, ptr: str, line: int) -> None:
        self._unicode(node.value, line, ptr)
        if node.tag == _FLOAT:
            try:
                finite = math.isfinite(_NUMBERS.construct_yaml_float(node))
            except ValueError:
                return  # not a number after all: the constructor reports it
            if not finite:
                self._problem(line, ptr, f"{node.value} is not a finite number (JSON has no NaN or infinity)")
