"""Rendering: jinja2 message templates and the request body for one case in one variant.

Templates run in jinja2's sandbox with StrictUndefined, so an undefined variable is an error at load time rather
than an empty string sent to the model. A template is the user's code: whatever it raises while rendering (a
division by zero, a type error, the sandbox's own limits, an ``include`` with nothing to include) is a problem of
its file, and so are the limits set here on its time, its output and the size of what its arithmetic makes.
"""

from __future__ import annotations

import functools
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._lazy import jinja2

if TYPE_CHECKING:
    from jinja2.environment import Template

PARAM_KEYS = (
    "model",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "verbosity",
    "stream",
    "stream_options",
)

TIME_LIMIT_S = 2.0  # one template's rendering
MAX_OUTPUT = 1_000_000  # characters one template may render, and items its `*` may repeat
_MAX_BITS = 100_000  # of an integer its `*` or `**` may make


# A printf or format width or precision of 7 digits or more, or one taken from an argument: one C call can fill
# gigabytes with it
_WIDE = re.compile(r"%[-+ #0]*(\*|\d*\.?(\d{7,}|\*))|\{[^{}]*:[^{}]*(\d{7,}|\{)")
# The functions and filters whose number argument is the size of what they make, in one C call or a loop of
# them (`center(10**9)`): the others (`round`, `format`'s values…) take any number
_SIZED = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap", "generate_lorem_ipsum"})


@functools.cache
def _env() -> jinja2.sandbox.SandboxedEnvironment:
    """jinja2's sandbox (made when the first template needs it: a case without one never imports jinja2), refusing
    what would make a huge value in one C call (a memory or time bomb no time limit stops): `*` and `**` past a
    size, a size over MAX_OUTPUT given to a function or filter, 7-digit format widths."""

    class Sandbox(jinja2.sandbox.SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if _huge(operator, left, right):
                raise _refused(f"`{operator}` would make a value too large for a prompt")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # jinja2's argument names
            _refuse_huge(getattr(__obj, "__name__", "the function"), getattr(__obj, "__self__", None), args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value: Any) -> Any:  # `'…'.format`: the sandbox's own formatter runs it
            _refuse_huge("format", getattr(value, "__self__", None), (), {})
            return super().wrap_str_format(value)

    env = Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters = {name: _filter(name, fn) for name, fn in env.filters.items()}
    return env


def _refused(message: str) -> Exception:
    """jinja2's SecurityError, as its sandbox refuses: a problem's message names the error's type."""
    return jinja2.exceptions.SecurityError(message)


def _huge(operator: str, left: Any, right: Any) -> bool:
    ints = all(isinstance(v, int) for v in (left, right))
    if operator == "%":
        return isinstance(left, str) and bool(_WIDE.search(left))
    if operator == "**":
        return ints and abs(left) > 1 and right * left.bit_length() > _MAX_BITS
    if ints:
        return bool(left.bit_length() + right.bit_length() > _MAX_BITS)
    count, sized = (right, left) if isinstance(right, int) else (left, right)
    return isinstance(count, int) and hasattr(sized, "__len__") and len(sized) * count > MAX_OUTPUT


def _refuse_huge(name: str, subject: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if isinstance(subject, str) and _WIDE.search(subject):
        raise _refused(f"{name}: a format width of 7 digits or more, or from an argument, is refused")
    sizes = (*args, *kwargs.values()) if name in _SIZED else ()
    if any(isinstance(v, int) and abs(v) > MAX_OUTPUT for v in sizes):
        raise _refused(f"{name}: a size over {MAX_OUTPUT} is refused")


def _filter(name: str, fn: Any) -> Any:
    """A jinja2 filter held to ``_refuse_huge``: its arguments, and the format string ``format`` filters."""

    @functools.wraps(fn)  # keeps jinja2's pass_context/pass_environment marks
    def checked(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if not isinstance(a, jinja2.runtime.Context | jinja2.Environment)]
        _refuse_huge(name, values[0] if name == "format" and values else None, tuple(values[1:]), kwargs)
        return fn(*args, **kwargs)

    return checked


class TemplateProblem(ValueError):
    """A template could not be rendered; ``line`` is 1-based within the template, when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class _Expired(BaseException):
    """The time limit, raised from a signal handler: a BaseException, so no ``except Exception`` on the way holds it."""


_SYNTAX = ("{{", "{%", "{#")  # what opens each of jinja2's tags; `line_statement_prefix` and the like are unset


def render(template: str, variables: dict[str, Any]) -> str:
    if not any(tag in template for tag in _SYNTAX) and "\r" not in template:
        # no jinja2 tag and no line break it would rewrite: jinja2 gives the text back as it is (after a compile per
        # message that was most of loading a big case file, and an import of jinja2 a replay needs for nothing)
        try:
            return _bounded(iter((template,)))
        except Exception as exc:  # only _bounded's refusals: said as the same text rendered by jinja2 (below)
            raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}", None) from None
    try:
        compiled = _compiled(template)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from None
    try:
        with _time_limit(TIME_LIMIT_S):
            return _bounded(compiled.generate(variables))
    except _Expired:
        raise TemplateProblem(f"template took more than {TIME_LIMIT_S:g} s to render", None) from None
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(variables)) or "none"
        raise TemplateProblem(f"undefined template variable: {exc.message} (vars: {known})", _line(exc)) from None
    except (jinja2.TemplateNotFound, TypeError) as exc:
        if isinstance(exc, jinja2.TemplateNotFound) or "no loader" in str(exc):
            message = "include, import and extends are not available: a message template is self-contained"
            raise TemplateProblem(message, _line(exc)) from None
        raise TemplateProblem(f"template error: TypeError: {exc}", _line(exc)) from None
    except Exception as exc:  # the template's own code failed: its file's problem
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}", _line(exc)) from None


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    """Cases of a file (a data table's rows, above all) share their templates: each compiled once."""
    return _env().from_string(template)


def _bounded(chunks: Iterator[str]) -> str:
    """The rendered text, at most MAX_OUTPUT characters of valid Unicode (a request body is UTF-8)."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _refused(f"the template renders more than {MAX_OUTPUT} characters")
        parts.append(chunk)
    text = "".join(parts)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refused(f"the template renders {exc.object[exc.start]!a}, half of a UTF-16 pair") from None
    return text


def _line(exc: BaseException) -> int | None:
    """The template line the exception was raised at (jinja2 rewrites its traceback to template lines)."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds``: a template's loops are Python bytecode, which a signal interrupts. Only on the main
    thread (where files are loaded) and when no other timer is set, which it must not disturb; else no limit."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def response_format(spec: Any, schema: dict[str, Any] | None, case_id: str) -> dict[str, Any]:
    """The API's response_format object for a case-file spec; ``from_expectation`` uses the case's schema."""
    if spec == "from_expectation":
        if schema is None:
            raise ValueError(f"case {case_id!r} has no json_schema check for response_format: from_expectation")
        name = re.sub(r"[^A-Za-z0-9_-]", "_", case_id)[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if isinstance(spec, str):
        return {"type": spec}
    result: dict[str, Any] = spec
    return result


def request_body(
    messages: list[dict[str, Any]], params: dict[str, Any], schema: dict[str, Any] | None, case_id: str
) -> dict[str, Any]:
    """The Chat Completions request body: rendered messages plus parameters, in a stable key order."""
    body: dict[str, Any] = {"model": params["model"], "messages": messages}
    for key in PARAM_KEYS[1:]:
        if key in params:
            value = params[key]
            body[key] = response_format(value, schema, case_id) if key == "response_format" else value
    return body
