"""Gates: data (``json_valid_rate >= 0.99, min_n: 100``) evaluated against one variant's metrics.

A gate with fewer samples than ``min_n`` is "insufficient data": shown as such, never as passed.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Literal

from ..load import _metrics as metrics
from ..load._evals import Gate

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

Verdict = Literal["pass", "fail", "insufficient"]


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    verdict: Verdict
    observed: float
    n: int
    interval: tuple[float, float] = (math.nan, math.nan)  # the rate's 95% interval, when it has one
    error: str = ""  # the metric could not be measured (harness.load._metrics.measure): a failed gate

    @property
    def uncertain(self) -> bool:
        """A pass on the observed value whose 95% interval reaches past the threshold: more samples may fail it."""
        low, high = self.interval
        if self.verdict != "pass" or self.gate.basis != "observed" or math.isnan(low):
            return False
        if (self.gate.op, self.gate.value) in (("<=", 0.0), (">=", 1.0)):
            return False  # "never" / "always": no finite sample can narrow the interval to it, so no news in a flag
        return not (_OPS[self.gate.op](low, self.gate.value) and _OPS[self.gate.op](high, self.gate.value))

    def describe(self) -> str:
        digits = 4 if metrics.lookup(self.gate.metric).unit == "rate" else 0  # a rate, or e.g. milliseconds
        seen = "n/a" if math.isnan(self.observed) else f"{self.observed:.{digits}f}"
        if self.error:
            return f"FAIL {self.gate.metric} {self.gate.op} {self.gate.value:g}: {self.error}"
        if self.verdict == "insufficient":
            return f"INSUFFICIENT DATA {self.gate.metric} (n={self.n} < min_n={self.gate.min_n})"
        rule = f"{self.gate.metric} {self.gate.op} {self.gate.value:g}"
        low, high = self.interval
        ci = "" if math.isnan(low) else f" [95% CI {low:.4f}, {high:.4f}]"
        on = "" if self.gate.basis == "observed" else f" on the {self.gate.basis.replace('_', ' ')}"
        flag = f" UNCERTAIN: the interval crosses {self.gate.value:g}" if self.uncertain else ""
        return f"{self.verdict.upper()} {rule}{on} (observed {seen}, n={self.n}){ci}{flag}"


def applies(gate: Gate, variant: str) -> bool:
    return gate.variants is None or variant in gate.variants


def evaluate(gate: Gate, measured: metrics.Measure) -> GateResult:
    """The gate's verdict on its metric as measured on one variant (``harness.load._metrics.measure``)."""
    n, observed, interval = measured.n, float(measured.value), measured.interval
    if measured.error:
        return GateResult(gate, "fail", observed, n, interval, measured.error)
    if n < gate.min_n or math.isnan(observed):
        return GateResult(gate, "insufficient", observed, n, interval)
    judged = {"observed": observed, "lower_bound": interval[0], "upper_bound": interval[1]}[gate.basis]
    verdict: Verdict = "pass" if _OPS[gate.op](judged, gate.value) else "fail"
    return GateResult(gate, verdict, observed, n, interval)
