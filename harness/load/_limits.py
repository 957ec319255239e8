"""The eval's ``limits`` as loaded: requests in flight, requests and tokens per minute (overall and per model), and
the wall-clock time a run may spend waiting to retry. ``harness.run._limits`` enforces them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_RETRY_TIME_S = 300.0


@dataclass(frozen=True)
class Rate:
    rpm: float | None = None
    tpm: float | None = None


@dataclass(frozen=True)
class Limits:
    """The eval file's ``limits`` (see eval.schema.json); ``concurrency`` None = the endpoint kind's default."""

    concurrency: int | None = None
    rate: Rate = Rate()
    models: tuple[tuple[str, Rate], ...] = ()
    max_retry_time_s: float = DEFAULT_MAX_RETRY_TIME_S

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Limits:
        if not raw:
            return cls()
        models = tuple((str(m), Rate(r.get("rpm"), r.get("tpm"))) for m, r in (raw.get("models") or {}).items())
        return cls(
            raw.get("concurrency"),
            Rate(raw.get("rpm"), raw.get("tpm")),
            models,
            float(raw.get("max_retry_time_s", DEFAULT_MAX_RETRY_TIME_S)),
        )

    def rate_for(self, model: str) -> Rate:
        return dict(self.models).get(model, self.rate)
