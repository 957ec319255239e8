"""promptvcr: evaluate and regression-test prompts for the OpenAI Chat Completions API.

The pytest plugin (``harness.plugin``, registered with pytest by the package's ``pytest11`` entry point) is the main
entry point; this façade is for scripts and other tools.

``evaluate`` runs eval files without pytest, as ``promptvcr run`` does (``harness._session``); it and its types are
imported on first use, so that ``import harness`` does not pull in the openai SDK (pytest, started after it by
``promptvcr run``, would warn that the SDK's pytest plugin was imported before it could rewrite it).

PYTEST_DONT_REWRITE: pytest marks the packages of its plugins for assertion rewriting, and would warn (an error under
``filterwarnings = error``) that this one was imported before it could, as ``promptvcr run`` does.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .report import _metric_builtins  # noqa: F401  (registers the built-in gate metrics; cheap: no pandas)

# that import bound the folder harness.load to the name; the name is the function (harness.load._evals.load)
globals().pop("load")

if TYPE_CHECKING:  # what the names below are, for type checkers; at run time each is imported on first use
    from ._session import Finished, Session, Settings, evaluate
    from .checks._answer import Answer, CheckResult, ToolCall
    from .checks._builtins import compile_check, run_checks
    from .checks._registry import check
    from .errors import ConfigError, InputError, LocalServerError, Problem, PromptVCRError
    from .load._cases import Case
    from .load._evals import CaseRun, Eval, load
    from .load._metrics import Measure, Metric, metric
    from .record._cassettes import RecordMode
    from .report._stats import wilson
    from .run._row import AnsweredBy, ErrorKind, Outcome, Row
    from .tokens._cost import cost_usd, price_for
    from .tokens._count import TokenCountError, UnknownModelError, count_text, estimate_prompt_tokens, prompt_tokens

# Each public name's module: `import harness` (which the pytest plugin's import entails, in every pytest run) loads
# none of them; `harness.X` or `from harness import X` imports X's module then.
_HOMES = {
    "._session": ("Finished", "Session", "Settings", "evaluate"),
    ".checks._answer": ("Answer", "CheckResult", "ToolCall"),
    ".checks._builtins": ("compile_check", "run_checks"),
    ".checks._registry": ("check",),
    ".errors": ("ConfigError", "InputError", "LocalServerError", "Problem", "PromptVCRError"),
    ".load._cases": ("Case",),
    ".load._evals": ("CaseRun", "Eval", "load"),
    ".load._metrics": ("Measure", "Metric", "metric"),
    ".record._cassettes": ("RecordMode",),
    ".report._stats": ("wilson",),
    ".run._row": ("AnsweredBy", "ErrorKind", "Outcome", "Row"),
    ".tokens._cost": ("cost_usd", "price_for"),
    ".tokens._count": ("TokenCountError", "UnknownModelError", "count_text", "estimate_prompt_tokens", "prompt_tokens"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
