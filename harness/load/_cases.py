"""Case files: load, validate against the shipped schema, compile checks and render templates.

Everything that can be wrong in a case file is found here, before any request exists: all problems of a file are
collected and raised together as one InputError.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..checks import _builtins as checks
from ..checks._builtins import JudgeSpec
from ..errors import InputError, Problem, reading
from . import _render as render
from . import _tool_params as tool_params
from . import _yamlsrc as yamlsrc
from . import schemas


@dataclass(frozen=True)
class Case:
    id: str
    path: Path
    line: int
    pointer: str  # of the case in its file, e.g. /cases/3
    origins: dict[str, Problem]  # where each request parameter was set, as a place to report a problem at
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    samples: int | None
    min_pass_rate: float
    checks: tuple[checks.Check, ...]
    judges: tuple[tuple[JudgeSpec, Problem], ...]  # each judge check with where it is, to report a problem at

    @property
    def schema(self) -> dict[str, Any] | None:
        return checks.json_schema_of(self.checks)


def load(path: Path, root: Path) -> list[Case]:
    """All cases of one file (``root``: the project's, which a python check's path is relative to); raises InputError
    listing every problem found."""
    with reading(path):
        return _load(path, root)


def _load(path: Path, root: Path) -> list[Case]:
    doc = yamlsrc.load(path)
    problems = schemas.validate(doc, "case.schema.json")
    if problems:
        raise InputError(problems + _unknown_names(doc))
    defaults: dict[str, Any] = doc.data.get("defaults") or {}
    compile_checks = partial(_compile_checks, doc, root, problems)
    default_checks = compile_checks(defaults.get("expect", []), "/defaults/expect")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    shared: dict[Problem, list[str]] = {}  # a problem of a `defaults` template → the cases that met it
    for index, raw in enumerate(doc.data["cases"]):
        ptr = f"/cases/{index}"
        case_id = raw["id"]
        line = doc.line(f"{ptr}/id")
        if case_id in seen:
            problems.append(doc.problem(f"{ptr}/id", f"duplicate case id {case_id!r} (first at line {seen[case_id]})"))
            continue
        seen[case_id] = line
        located = default_checks + compile_checks(raw.get("expect", []), f"{ptr}/expect")
        messages = _render_messages(doc, defaults, raw, ptr, problems, shared)
        params = {k: raw.get(k, defaults.get(k)) for k in render.PARAM_KEYS if k in raw or k in defaults}
        origins = {k: doc.problem(f"{ptr}/{k}" if k in raw else f"/defaults/{k}", "") for k in params}
        _tool_problems(doc, params, {k: o.pointer for k, o in origins.items()}, problems)
        cases.append(
            Case(
                id=case_id,
                path=path,
                line=line,
                pointer=ptr,
                origins=origins,
                messages=messages,
                params=params,
                samples=raw.get("samples", defaults.get("samples")),
                min_pass_rate=float(raw.get("min_pass_rate", defaults.get("min_pass_rate", 1.0))),
                checks=tuple(check for check, _ in located),
                judges=tuple((check.args, origin) for check, origin in located if isinstance(check.args, JudgeSpec)),
            )
        )
    problems.extend(_once(problem, ids, len(doc.data["cases"])) for problem, ids in shared.items())
    if problems:
        raise InputError(problems)
    return cases


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
    lists += [(f"/cases/{i}/expect", c.get("expect")) for i, c in enumerate(cases or []) if isinstance(c, dict)]
    problems = []
    for ptr, items in lists:
        for index, item in enumerate(items if isinstance(items, list) else []):
            for name in item if isinstance(item, dict) and len(item) == 1 else ():
                try:
                    checks.lookup(str(name))
                except checks.CheckArgError as exc:
                    problems.append(doc.problem(f"{ptr}/{index}/{name}", str(exc)))
    return problems


def _render_messages(
    doc: yamlsrc.Located,
    defaults: dict[str, Any],
    raw: dict[str, Any],
    ptr: str,
    problems: list[Problem],
    shared: dict[Problem, list[str]],
) -> tuple[dict[str, Any], ...]:
    variables = {**(defaults.get("vars") or {}), **(raw.get("vars") or {})}
    source, base = (
        (raw["messages"], f"{ptr}/messages") if "messages" in raw else (defaults.get("messages"), "/defaults/messages")
    )
    if not source:
        problems.append(
            doc.problem(ptr, f"case {raw['id']!r} has no messages (give it `messages:` or set them in `defaults:`)")
        )
        return ()
    for index, at, message in tool_params.message_problems(source):
        problem = doc.problem(f"{base}/{index}{at}", message)
        if problem not in problems:  # a `defaults` transcript is every case's: said once
            problems.append(problem)
    rendered: list[dict[str, Any]] = []
    for index, message in enumerate(source):
        where = f"{base}/{index}/content"
        if not isinstance(message.get("content"), str):  # an assistant's tool calls without text
            rendered.append(dict(message))
            continue
        try:
            content = render.render(message["content"], variables)
        except render.TemplateProblem as exc:
            several = "\n" in message["content"].strip()  # a one-line template's line is the value's own
            at = f" (template line {exc.line})" if exc.line and several else ""
            problem = doc.problem(where, f"{exc}{at}")
            if base.startswith("/defaults"):
                shared.setdefault(problem, []).append(raw["id"])
            else:
                problems.append(problem)
            continue
        rendered.append({**message, "content": content})
    return tuple(rendered)


def _tool_problems(doc: yamlsrc.Located, params: dict[str, Any], at: dict[str, str], problems: list[Problem]) -> None:
    """The request's tools and tool_choice, checked where each was written (`defaults`' once for every case)."""
    for key, inner, message in tool_params.tool_problems(params):
        problem = doc.problem(f"{at[key]}{inner}", message)
        if problem not in problems:
            problems.append(problem)
