"""Gates: data (``json_valid_rate >= 0.99, min_n: 100``) evaluated against one variant's metrics.

A gate with fewer samples than ``min_n`` is "insufficient data": shown as such, never as passed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..load._evals import Gate

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
# The sample count a metric is measured over: errors are excluded from quality rates, included in error_rate.
_BASIS = {
    "json_valid_rate": "json_checked",
    "schema_valid_rate": "schema_checked",
    "pass_rate": "answered",
    "error_rate": "attempted",
    "latency_p95_ms": "latency_n",  # answered samples with a measured latency
}

Verdict = Literal["pass", "fail", "insufficient"]


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    verdict: Verdict
    observed: float
    n: int

    def describe(self) -> str:
        digits = 0 if self.gate.metric.endswith("_ms") else 4  # milliseconds, or a rate
        seen = "n/a" if math.isnan(self.observed) else f"{self.observed:.{digits}f}"
        if self.verdict == "insufficient":
            return f"INSUFFICIENT DATA {self.gate.metric} (n={self.n} < min_n={self.gate.min_n})"
        rule = f"{self.gate.metric} {self.gate.op} {self.gate.value:g}"
        return f"{self.verdict.upper()} {rule} (observed {seen}, n={self.n})"


def applies(gate: Gate, variant: str) -> bool:
    return gate.variants is None or variant in gate.variants


def evaluate(gate: Gate, metrics: Mapping[str, Any]) -> GateResult:
    n = int(metrics[_BASIS[gate.metric]])
    observed = float(metrics[gate.metric])
    if n < gate.min_n or math.isnan(observed):
        return GateResult(gate, "insufficient", observed, n)
    verdict: Verdict = "pass" if _OPS[gate.op](observed, gate.value) else "fail"
    return GateResult(gate, verdict, observed, n)
