"""promptvcr: evaluate and regression-test prompts for the OpenAI Chat Completions API.

The pytest plugin (``harness.plugin``, registered with pytest by the package's ``pytest11`` entry point) is the main
entry point; this façade is for scripts and other tools.

``evaluate`` runs eval files without pytest, as ``promptvcr run`` does (``harness._session``); it and its types are
imported on first use, so that ``import harness`` does not pull in the openai SDK (pytest, started after it by
``promptvcr run``, would warn that the SDK's pytest plugin was imported before it could rewrite it).

PYTEST_DONT_REWRITE: pytest marks the packages of its plugins for assertion rewriting, and would warn (an error under
``filterwarnings = error``) that this one was imported before it could, as ``promptvcr run`` does.
"""

from typing import Any

from .checks._answer import Answer, CheckResult, ToolCall
from .checks._builtins import compile_check, run_checks
from .checks._registry import check
from .errors import ConfigError, InputError, LocalServerError, Problem, PromptVCRError
from .load._cases import Case
from .load._evals import CaseRun, Eval, load
from .load._metrics import Measure, Metric, metric
from .record._cassettes import RecordMode
from .report import _metric_builtins  # noqa: F401  (registers the built-in gate metrics)
from .report._stats import wilson
from .run._row import AnsweredBy, ErrorKind, Outcome, Row
from .tokens._cost import cost_usd, price_for
from .tokens._count import TokenCountError, UnknownModelError, count_text, estimate_prompt_tokens, prompt_tokens

_SESSION = ("Finished", "Session", "Settings", "evaluate")


def __getattr__(name: str) -> Any:
    if name in _SESSION:
        from . import _session

        return getattr(_session, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = [
    "Answer",
    "AnsweredBy",
    "Case",
    "CaseRun",
    "CheckResult",
    "ConfigError",
    "ErrorKind",
    "Eval",
    "Finished",
    "InputError",
    "LocalServerError",
    "Measure",
    "Metric",
    "Outcome",
    "Problem",
    "PromptVCRError",
    "RecordMode",
    "Row",
    "Session",
    "Settings",
    "TokenCountError",
    "ToolCall",
    "UnknownModelError",
    "check",
    "compile_check",
    "cost_usd",
    "count_text",
    "estimate_prompt_tokens",
    "evaluate",
    "load",
    "metric",
    "price_for",
    "prompt_tokens",
    "run_checks",
    "wilson",
]
