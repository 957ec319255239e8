"""The one registry of checks: every name a case file may use, the built-ins' and the user's alike.

A check is a function ``(answer, request, args)`` registered under a name; ``args`` is the check's value in the case
file (``- word_count: {max: 20}`` gives ``{"max": 20}``), ``request`` the request body sent. It returns ``True``
(passed), ``False``, a reason string (failed, with that reason) or a ``CheckResult`` (with a score). Names come from
``@harness.check("name")`` (in a module, a conftest.py), from packages' entry points in the ``promptvcr.checks`` group
(loaded once, when the first check is looked up), and from a conftest's ``pytest_promptvcr_checks(register)`` hook.

Registering never raises: a name defined twice, a function of the wrong shape or a package that fails to import makes
the name unusable, and a case file that uses it gets a ``file:line`` problem saying why (nothing is sent).
"""

from __future__ import annotations

import contextvars
import inspect
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from ..errors import unknown_name
from ._answer import Answer, CheckArgError, CheckResult

CheckFn = Callable[[Answer, Mapping[str, Any], Any], Any]  # returns bool | str | CheckResult
Prepare = Callable[[Any, Path], Any]  # (the case file's value, the project root) → the args the function gets
F = TypeVar("F", bound=Callable[..., Any])

ENTRY_POINT_GROUP = "promptvcr.checks"
BUILT_IN = "built-in"


@dataclass(frozen=True)
class Registered:
    name: str
    fn: CheckFn | None  # None: graded by a judge model (harness.run._runner), not called here
    origin: str  # where it was defined: said when two definitions clash
    prepare: Prepare | None = None  # at load time: an unusable value raises CheckArgError, nothing is sent
    label: Callable[[Any], str] | None = None  # the name results carry, from the case file's value (default: name)
    inline: bool = False  # keeps to the sample's time limit itself (harness.checks._matching); else run in a thread


_checks: dict[str, Registered | str] = {}  # a str: why the name cannot be used
_loaded_entry_points = False
# The built-ins, registered once, when harness.checks._builtins is first imported: a session's ``restore`` keeps
# them, though that may have been after its snapshot (the first session of a process that runs several)
_built_ins: dict[str, Registered] = {}


def register(name: str, fn: CheckFn, *, origin: str | None = None) -> None:
    """Make ``fn`` the check ``name`` (what a conftest's ``pytest_promptvcr_checks(register)`` hook is given)."""
    add(Registered(name, fn, origin or origin_of(fn)))


def check(name: str) -> Callable[[F], F]:
    """``@harness.check("name")``: register the decorated ``(answer, request, args)`` function as the check ``name``."""

    def decorate(fn: F) -> F:
        register(name, fn)
        return fn

    return decorate


def add(entry: Registered) -> None:
    if not isinstance(entry.name, str) or not entry.name:
        raise TypeError(f"a check's name is a non-empty string, not {entry.name!r}")
    problem = signature_problem(entry.fn) if entry.fn is not None else None
    existing = _checks.get(entry.name)
    if problem:
        _checks[entry.name] = f"check {entry.name!r} ({entry.origin}) {problem}"
    elif isinstance(existing, Registered) and existing.origin != entry.origin and existing.fn is not entry.fn:
        _checks[entry.name] = f"check {entry.name!r} is defined twice: {existing.origin} and {entry.origin}: rename one"
    elif not isinstance(existing, str):  # a name already unusable stays so: which definition wins is not a guess
        _checks[entry.name] = entry
    if entry.origin == BUILT_IN:
        _built_ins.setdefault(entry.name, entry)


def signature_problem(fn: Any) -> str | None:
    """Why ``fn`` cannot be called as ``fn(answer, request, args)``, or None."""
    if not callable(fn):
        return f"is not a function: {fn!r}"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trusted
        return None
    try:
        signature.bind(None, None, None)
    except TypeError:
        return f"must take three arguments (answer, request, args); it takes ({', '.join(signature.parameters)})"
    return None


def origin_of(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    name = getattr(fn, "__qualname__", repr(fn))
    return f"{code.co_filename}:{code.co_firstlineno} ({name})" if code is not None else name


def names() -> list[str]:
    """The usable names, in the order they were registered (the built-ins first)."""
    return [name for name, entry in _checks.items() if isinstance(entry, Registered)]


def lookup(name: str) -> Registered:
    """The check ``name``; CheckArgError when no check has the name (with the closest one) or it is unusable."""
    _load_entry_points()
    entry = _checks.get(name)
    if isinstance(entry, Registered):
        return entry
    if isinstance(entry, str):
        raise CheckArgError(entry)
    raise CheckArgError(
        f"{unknown_name('check', name, names())}; a check of your own is registered with @harness.check, a"
        f" conftest.py's pytest_promptvcr_checks hook or a package's {ENTRY_POINT_GROUP} entry point"
    )


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = f" of {point.dist.name}" if point.dist is not None else ""
        origin = f"the {ENTRY_POINT_GROUP} entry point {point.name} = {point.value}{package}"
        try:
            fn = point.load()
        except Exception as exc:  # a broken package must not stop the cases that don't use its check
            _checks[point.name] = f"check {point.name!r} comes from {origin}, which fails to load: {_said(exc)}"
            continue
        add(Registered(point.name, fn, origin))


def snapshot() -> tuple[dict[str, Registered | str], bool]:
    """What is registered now; ``restore`` returns to it (pytest sessions in one process keep their checks apart)."""
    return dict(_checks), _loaded_entry_points


def restore(state: tuple[dict[str, Registered | str], bool]) -> None:
    global _loaded_entry_points
    _checks.clear()
    _checks.update({name: entry for name, entry in _built_ins.items() if name not in state[0]})
    _checks.update(state[0])
    _loaded_entry_points = state[1]


def verdict(entry: Registered, label: str, answer: Answer, request: Mapping[str, Any], args: Any) -> CheckResult:
    """One check of one answer. An exception fails the check with its reason, never the run; a check that is not
    ``inline`` runs in a thread of its own, waited for until the sample's time is up."""
    assert entry.fn is not None  # judge checks are graded by the runner
    try:
        out = entry.fn(answer, request, args) if entry.inline else _in_time(entry.fn, answer, request, args)
    except TimeoutError:
        from . import _matching as matching  # here: the registry is imported by every pytest run (harness.plugin)

        return CheckResult(label, False, matching.TIMED_OUT)
    except RecursionError:  # e.g. a recursive schema on an answer nested deeper than the stack
        return CheckResult(label, False, "check could not finish: the answer nests too deep")
    except (Exception, SystemExit) as exc:
        return CheckResult(label, False, f"the check raised {_said(exc)}")
    return _result(label, out)


def _said(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _in_time(fn: CheckFn, answer: Answer, request: Mapping[str, Any], args: Any) -> Any:
    from . import _matching as matching  # see verdict

    left = matching.remaining()
    if math.isinf(left):  # outside a sample's checks (a direct call): no time limit to keep
        return fn(answer, request, args)
    if left <= 0:
        raise TimeoutError(matching.TIMED_OUT)
    outcome: list[tuple[bool, Any]] = []
    context = contextvars.copy_context()  # the sample's deadline, for the harness's own matching inside

    def call() -> None:
        try:
            outcome.append((True, context.run(fn, answer, request, args)))
        except BaseException as exc:  # said by the caller, not by the thread's excepthook (a warning under pytest)
            outcome.append((False, exc))

    # Python cannot stop a thread: one that overruns is left to finish (a daemon, so it never holds up the exit)
    worker = threading.Thread(target=call, name="promptvcr-check", daemon=True)
    worker.start()
    worker.join(left)
    if not outcome:
        raise TimeoutError(matching.TIMED_OUT)
    returned, value = outcome[0]
    if not returned:
        raise value
    return value


def _result(label: str, out: Any) -> CheckResult:
    if isinstance(out, bool):
        return CheckResult(label, out, "" if out else "the check returned False")
    if isinstance(out, str):
        return CheckResult(label, False, out or "the check failed without a reason")
    if isinstance(out, CheckResult):
        score = out.score
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1):
            return CheckResult(label, False, f"the check's score is not a number from 0 to 1: {score!r}")
        passed = bool(out.passed)
        reason = str(out.reason or ("" if passed else "the check failed without a reason"))
        if score is not None:
            reason = f"score {score:g}: {reason}" if reason else f"score {score:g}"
        if out.name == label and out.passed is passed and out.reason == reason:
            return out  # a built-in's result, as it stands (frozen): no copy for every check of every sample
        return replace(out, name=label, passed=passed, reason=reason)
    return CheckResult(label, False, f"the check returned {type(out).__name__}: a bool, a reason or a CheckResult")
