"""promptvcr: evaluate and regression-test prompts for the OpenAI Chat Completions API.

The pytest plugin (``harness.plugin``, registered with pytest by the package's ``pytest11`` entry point) is the main
entry point; this façade is for scripts and other tools.

PYTEST_DONT_REWRITE: pytest marks the packages of its plugins for assertion rewriting, and would warn (an error under
``filterwarnings = error``) that this one was imported before it could, as ``promptvcr run`` does.
"""

from .checks._builtins import Answer, CheckResult, compile_check, run_checks
from .errors import ConfigError, InputError, LocalServerError, Problem, PromptVCRError
from .load._cases import Case
from .load._evals import CaseRun, Eval, load
from .load._metrics import Metric
from .record._cassettes import RecordMode
from .report._stats import wilson
from .run._row import AnsweredBy, ErrorKind, Outcome, Row
from .tokens._cost import cost_usd, price_for
from .tokens._count import TokenCountError, UnknownModelError, count_text, estimate_prompt_tokens, prompt_tokens

__all__ = [
    "Answer",
    "AnsweredBy",
    "Case",
    "CaseRun",
    "CheckResult",
    "ConfigError",
    "ErrorKind",
    "Eval",
    "InputError",
    "LocalServerError",
    "Metric",
    "Outcome",
    "Problem",
    "PromptVCRError",
    "RecordMode",
    "Row",
    "TokenCountError",
    "UnknownModelError",
    "compile_check",
    "cost_usd",
    "count_text",
    "estimate_prompt_tokens",
    "load",
    "price_for",
    "prompt_tokens",
    "run_checks",
    "wilson",
]
