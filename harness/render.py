"""Rendering: jinja2 message templates and the request body for one case in one variant.

Templates run in jinja2's sandbox with StrictUndefined, so an undefined variable is an error at load time rather
than an empty string sent to the model.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

PARAM_KEYS = (
    "model",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "response_format",
)

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(ValueError):
    """A template could not be rendered; ``line`` is 1-based within the template, when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def render(template: str, variables: dict[str, Any]) -> str:
    try:
        return _ENV.from_string(template).render(variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from None
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(variables)) or "none"
        raise TemplateProblem(f"undefined template variable: {exc.message} (vars: {known})", None) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}", None) from None


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
    messages: list[dict[str, str]], params: dict[str, Any], schema: dict[str, Any] | None, case_id: str
) -> dict[str, Any]:
    """The Chat Completions request body: rendered messages plus parameters, in a stable key order."""
    body: dict[str, Any] = {"model": params["model"], "messages": messages}
    for key in PARAM_KEYS[1:]:
        if key in params:
            value = params[key]
            body[key] = response_format(value, schema, case_id) if key == "response_format" else value
    return body
