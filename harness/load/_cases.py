"""Case files: load, validate against the shipped schema, compile checks and render templates.

Everything that can be wrong in a case file is found here, before any request exists: all problems of a file are
collected and raised together as one InputError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from ..checks import _builtins as checks
from ..checks._builtins import Check, JudgeSpec
from ..errors import InputError, Problem, reading
from . import _datatables as datatables
from . import _render as render
from . import _tool_params as tool_params
from . import _validated as validated
from . import _yamlsrc as yamlsrc


@dataclass(frozen=True)
class Case:
    id: str
    path: Path
    line: int
    pointer: str  # of the case in its file, e.g. /cases/3
    origins: dict[str, Problem]  # where each request parameter was set, as a place to report a problem at
    messages: tuple[dict[str, Any], ...]  # of the first request: with `turns`, the first turn is the last message
    params: dict[str, Any]
    samples: int | None
    min_pass_rate: float
    checks: tuple[checks.Check, ...]
    judges: tuple[tuple[JudgeSpec, Problem], ...]  # each judge check with where it is, to report a problem at
    turns: tuple[str, ...] = ()  # a conversation's user turns, rendered (none: one request, one answer)
    each_checks: tuple[Check, ...] = ()  # `expect_each`: checked on every turn's answer
    id_at: Problem | None = None  # where the id comes from, to report a duplicate at: a data table's row, or None

    @property
    def schema(self) -> dict[str, Any] | None:
        return checks.json_schema_of(self.checks)

    @cached_property
    def json_checked(self) -> bool:
        """Whether a check of `expect` or `expect_each` asks for JSON (asked once per case: read for every row)."""
        return checks.wants_json(self.checks + self.each_checks)

    @property
    def followups(self) -> tuple[str, ...]:
        """The user turns sent after the first answer, each after the answer before it."""
        return self.turns[1:]

    @property
    def calls(self) -> int:
        """Requests one sample sends: one, or one per turn of a conversation."""
        return len(self.followups) + 1

    def where_id(self) -> Problem:
        return self.id_at or Problem(self.path, self.line, f"{self.pointer}/id", "")


def load(path: Path, root: Path) -> list[Case]:
    """All cases of one file (``root``: the project's, which a python check's path is relative to); raises InputError
    listing every problem found."""
    with reading(path):
        return _load(path, root)


def _load(path: Path, root: Path) -> list[Case]:
    checked = validated.load(path, "case.schema.json", root)
    doc, problems = checked.doc, checked.problems
    if problems:
        raise InputError(problems + _unknown_names(doc))
    expansion = _Expansion(doc, root, problems)
    cases = [case for index, raw in enumerate(doc.data["cases"]) for case in expansion.cases(index, raw)]
    problems.extend(_once(problem, ids, len(cases)) for problem, ids in expansion.shared.items())
    if problems:
        raise InputError(list(dict.fromkeys(problems)))  # a table entry's checks are each row's: said once
    checked.keep()
    return cases


class _Expansion:
    """The cases of one file's entries, a data table's entry making one per row; every problem goes to
    ``problems``, a template's problem met by several cases (a default's, a table entry's) once to ``shared``."""

    def __init__(self, doc: yamlsrc.Located, root: Path, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems
        self.defaults: dict[str, Any] = doc.data.get("defaults") or {}
        self.compile = partial(_compile_checks, doc, root, problems)
        self.default_checks = self.compile(self.defaults.get("expect", []), "/defaults/expect")
        self.default_each = self.compile(self.defaults.get("expect_each", []), "/defaults/expect_each")
        self.seen: dict[str, Problem] = {}  # case id → where it was first
        self.shared: dict[Problem, list[str]] = {}  # a problem of a `defaults` or table template → its cases

    def cases(self, index: int, raw: dict[str, Any]) -> list[Case]:
        doc, defaults, ptr = self.doc, self.defaults, f"/cases/{index}"
        fixed = None if "vars_from" in raw else self._checks(raw, ptr, None, raw["id"])
        params = {k: raw.get(k, defaults.get(k)) for k in render.PARAM_KEYS if k in raw or k in defaults}
        origins = {k: doc.problem(f"{ptr}/{k}" if k in raw else f"/defaults/{k}", "") for k in params}
        _tool_problems(doc, params, {k: o.pointer for k, o in origins.items()}, self.problems)
        self._transcript(raw, ptr)
        out: list[Case] = []
        for case_id, row_vars, id_at in self._entries(raw, ptr):
            if not self._first(case_id, id_at or doc.problem(f"{ptr}/id", "")):
                continue
            variables = {**(defaults.get("vars") or {}), **(raw.get("vars") or {}), **row_vars}
            located, each = fixed or self._checks(raw, ptr, variables, case_id)
            render_in = partial(self._render, raw, ptr, variables, case_id, "vars_from" in raw)
            turns: tuple[str, ...] = tuple(render_in("turns", lambda item: item))
            prefix: list[dict[str, Any]] = render_in("messages", lambda item: item.get("content"))
            messages = tuple(prefix) + tuple({"role": "user", "content": turns[0]} for _ in turns[:1])
            if not any(raw.get(k) or defaults.get(k) for k in ("messages", "turns")):
                message = f"case {case_id!r} has no messages (give it `messages:` or `turns:`, here or in `defaults:`)"
                self.problems.append(doc.problem(ptr, message))
            out.append(
                Case(
                    id=case_id,
                    path=doc.path,
                    line=doc.line(f"{ptr}/id"),
                    pointer=ptr,
                    origins=origins,
                    messages=messages,
                    params=params,
                    samples=raw.get("samples", defaults.get("samples")),
                    min_pass_rate=float(raw.get("min_pass_rate", defaults.get("min_pass_rate", 1.0))),
                    checks=tuple(check for check, _ in located),
                    judges=tuple((c.args, at) for c, at in located if isinstance(c.args, JudgeSpec)),
                    turns=turns,
                    each_checks=tuple(check for check, _ in each),
                    id_at=id_at,
                )
            )
        return out

    def _checks(
        self, raw: dict[str, Any], ptr: str, variables: dict[str, Any] | None, case_id: str
    ) -> tuple[tuple[tuple[Check, Problem], ...], tuple[tuple[Check, Problem], ...]]:
        """The case's `expect` and `expect_each` checks, each after the defaults'; a table row's (``variables``)
        with the row's values filled into their string templates, so that each row can expect its own answer."""
        items = {key: raw.get(key, []) for key in ("expect", "expect_each")}
        if variables is not None:
            items = {
                key: [self._filled(item, variables, f"{ptr}/{key}/{i}", case_id) for i, item in enumerate(listed)]
                for key, listed in items.items()
            }
        located = self.default_checks + self.compile(items["expect"], f"{ptr}/expect")
        each = self.default_each + self.compile(items["expect_each"], f"{ptr}/expect_each")
        self._check_turns(raw, ptr, located, each)
        return located, each

    def _filled(self, value: Any, variables: dict[str, Any], ptr: str, case_id: str) -> Any:
        """``value`` with every string holding a template rendered (a problem at its pointer, said once)."""
        if isinstance(value, dict):
            return {k: self._filled(v, variables, f"{ptr}/{yamlsrc.escape(k)}", case_id) for k, v in value.items()}
        if isinstance(value, list):
            return [self._filled(v, variables, f"{ptr}/{i}", case_id) for i, v in enumerate(value)]
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            return value
        try:
            return render.render(value, variables)
        except render.TemplateProblem as exc:
            self._report(self.doc.problem(ptr, str(exc)), case_id, True)
            return value

    def _first(self, case_id: str, at: Problem) -> bool:
        """Whether ``case_id`` is new in the file; a duplicate is a problem where its id comes from (``at``)."""
        if case_id in self.seen:
            first = self.seen[case_id]
            message = f"duplicate case id {case_id!r} (first at {_place(first, at)})"
            self.problems.append(replace(at, message=message))
            return False
        self.seen[case_id] = at
        return True

    def _check_turns(
        self, raw: dict[str, Any], ptr: str, located: tuple[tuple[Check, Problem], ...],
        each: tuple[tuple[Check, Problem], ...],
    ) -> None:  # fmt: skip
        """`expect_each` needs turns to check; a judge grades one answer to one request, not a conversation."""
        conversation = "turns" in raw or "turns" in self.defaults
        if each and not conversation:
            at = f"{ptr}/expect_each" if "expect_each" in raw else "/defaults/expect_each"
            message = "expect_each checks each turn's answer, and this case has no `turns` (use `expect`)"
            self._report(self.doc.problem(at, message), raw.get("id", ""), at.startswith("/defaults"))
        judged = [*each, *(located if conversation else ())]
        for check, origin in judged:
            problem = replace(origin, message="a judge check grades one request's answer: not a case with `turns`")
            if isinstance(check.args, JudgeSpec) and problem not in self.problems:  # a default's: said once
                self.problems.append(problem)

    def _entries(self, raw: dict[str, Any], ptr: str) -> list[tuple[str, dict[str, Any], Problem | None]]:
        """(id, the row's vars, where the id comes from) of each case the entry makes: itself, or one per row."""
        if "vars_from" not in raw:
            return [(raw["id"], {}, None)]
        table = self.doc.path.parent / raw["vars_from"]
        if not table.is_file():
            what = "a directory, not a data file" if table.is_dir() else "not found"
            self.problems.append(self.doc.problem(f"{ptr}/vars_from", f"data table {what}: {table}"))
            return []
        try:
            rows = datatables.load(table)
        except InputError as exc:
            self.problems.extend(exc.problems)
            return []
        out: list[tuple[str, dict[str, Any], Problem | None]] = []
        base = {**(self.defaults.get("vars") or {}), **(raw.get("vars") or {})}
        for row in rows:
            try:
                case_id = render.render(raw["id"], {**base, **row.values}).strip()
            except render.TemplateProblem as exc:
                self._report(self.doc.problem(f"{ptr}/id", str(exc)), f"row at {table.name}:{row.line}", True)
                continue
            if not _ID.fullmatch(case_id):
                message = f"the id template makes {case_id[:120]!r} of this row: {_ID_RULE}"
                self.problems.append(row.problem(message))
                continue
            out.append((case_id, row.values, row.problem("")))
        return out

    def _render(
        self, raw: dict[str, Any], ptr: str, variables: dict[str, Any], case_id: str, table: bool, key: str,
        content: Callable[[Any], str | None],
    ) -> list[Any]:  # fmt: skip
        """The case's ``key`` (``messages`` or ``turns``, its own or the defaults'), each item's template rendered;
        ``content``: an item's template. A message keeps its other fields (role, name)."""
        source, base = (raw[key], f"{ptr}/{key}") if key in raw else (self.defaults.get(key) or [], f"/defaults/{key}")
        rendered: list[Any] = []
        for index, item in enumerate(source):
            template = content(item)
            if template is None:  # an assistant's tool calls without text
                rendered.append(dict(item))
                continue
            where = f"{base}/{index}/content" if key == "messages" else f"{base}/{index}"
            try:
                text = render.render(template, variables)
            except render.TemplateProblem as exc:
                several = "\n" in template.strip()  # a one-line template's line is the value's own
                at = f" (template line {exc.line})" if exc.line and several else ""
                self._report(self.doc.problem(where, f"{exc}{at}"), case_id, table or base.startswith("/defaults"))
                continue
            rendered.append({**item, "content": text} if key == "messages" else text)
        return rendered

    def _transcript(self, raw: dict[str, Any], ptr: str) -> None:
        """The messages' tool calls and tool results (``harness.load._tool_params``): a `defaults` one said once."""
        key = "messages"
        source, base = (raw[key], f"{ptr}/{key}") if key in raw else (self.defaults.get(key) or [], f"/defaults/{key}")
        for index, at, message in tool_params.message_problems(source):
            problem = self.doc.problem(f"{base}/{index}{at}", message)
            if problem not in self.problems:
                self.problems.append(problem)

    def _report(self, problem: Problem, case_id: str, shared: bool) -> None:
        if shared:
            ids = self.shared.setdefault(problem, [])
            if case_id not in ids:
                ids.append(case_id)
        else:
            self.problems.append(problem)


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_ID_RULE = "an id is a letter or digit, then letters, digits, '.', '_' or '-', 100 characters at most"


def _place(first: Problem, now: Problem) -> str:
    return f"line {first.line}" if first.path == now.path else f"{first.path}:{first.line}"


def _once(problem: Problem, ids: list[str], total: int) -> Problem:
    """A `defaults` template's problem, said once for every case it fails in."""
    named = ", ".join(map(repr, ids[:3])) + (", …" if len(ids) > 3 else "")
    which = f"case {named}" if len(ids) == 1 else f"{len(ids)} of {total} cases: {named}"
    return Problem(problem.path, problem.line, problem.pointer, f"{problem.message} [{which}]")


def _compile_checks(
    doc: yamlsrc.Located, root: Path, problems: list[Problem], raw: list[dict[str, Any]], ptr: str
) -> tuple[tuple[checks.Check, Problem], ...]:
    """Each check with where it is in the file (a Problem without a message yet); an unknown name, an unusable value
    is a problem at the check."""
    compiled: list[tuple[checks.Check, Problem]] = []
    for index, item in enumerate(raw):
        ((name, arg),) = item.items()
        at = f"{ptr}/{index}/{name}"
        try:
            compiled.append((checks.compile_check(name, arg, root), doc.problem(at, "")))
        except checks.CheckArgError as exc:
            problems.append(doc.problem(f"{at}{exc.pointer}", str(exc)))
    return tuple(compiled)


def _unknown_names(doc: yamlsrc.Located) -> list[Problem]:
    """The checks named in a file that is wrong otherwise too, but no check has the name: said in the same pass."""
    data = doc.data if isinstance(doc.data, dict) else {}
    defaults = data.get("defaults")
    lists = [("/defaults/expect", defaults.get("expect") if isinstance(defaults, dict) else None)]
    cases = data.get("cases")
    lists += [("/defaults/expect_each", defaults.get("expect_each") if isinstance(defaults, dict) else None)]
    for i, case in enumerate(cases if isinstance(cases, list) else []):
        if isinstance(case, dict):
            lists += [(f"/cases/{i}/{key}", case.get(key)) for key in ("expect", "expect_each")]
    problems = []
    for ptr, items in lists:
        for index, item in enumerate(items if isinstance(items, list) else []):
            for name in item if isinstance(item, dict) and len(item) == 1 else ():
                try:
                    checks.lookup(str(name))
                except checks.CheckArgError as exc:
                    problems.append(doc.problem(f"{ptr}/{index}/{name}", str(exc)))
    return problems


def _tool_problems(doc: yamlsrc.Located, params: dict[str, Any], at: dict[str, str], problems: list[Problem]) -> None:
    """The request's tools and tool_choice, checked where each was written (`defaults`' once for every case)."""
    for key, inner, message in tool_params.tool_problems(params):
        problem = doc.problem(f"{at[key]}{inner}", message)
        if problem not in problems:
            problems.append(problem)
