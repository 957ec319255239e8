"""The metrics a gate can hold a variant to (``gates[].metric`` in an eval file; eval.schema.json lists the same)."""

from __future__ import annotations

from enum import StrEnum


class Metric(StrEnum):
    JSON_VALID_RATE = "json_valid_rate"
    SCHEMA_VALID_RATE = "schema_valid_rate"
    PASS_RATE = "pass_rate"
    ERROR_RATE = "error_rate"
    LATENCY_P95_MS = "latency_p95_ms"
