"""Execution of one case in one variant: every sample sent (or replayed), checked, and turned into a result row.

Rows are plain dicts of JSON scalars so they travel unchanged from pytest-xdist workers to the controller, where
they are aggregated once (``harness.report``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cassettes, checks, client, cost
from .errors import ConfigError, LocalServerError
from .evals import CaseRun

Row = dict[str, Any]

COLUMNS = (
    "eval", "case", "variant", "model", "sample", "outcome", "failed_checks", "reasons", "error", "error_message",
    "json_valid", "schema_valid", "finish_reason", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms",
    "replayed", "output",
)  # fmt: skip


@dataclass(frozen=True)
class RunOptions:
    record_mode: str
    cassettes_dir: Path
    local_url: Callable[[], str]  # base_url of a running local server, started on first use

    @property
    def replay(self) -> bool:
        return self.record_mode == "none"


def record_command(eval_name: str) -> str:
    return f"make record EVAL={eval_name}"


def cassette_for(run: CaseRun, options: RunOptions) -> Path:
    return cassettes.cassette_path(options.cassettes_dir, run.eval_name, run.variant.name, run.case.id)


def run_case(run: CaseRun, options: RunOptions) -> list[Row]:
    """One row per sample, in sample order; never raises for what an endpoint or a cassette does."""
    path = cassette_for(run, options)
    if options.replay and not path.is_file():
        what = f"case {run.case.id!r} in variant {run.variant.name!r}"
        message = f"no recording for {what} ({path}): run `{record_command(run.eval_name)}`"
        return [
            _errored(run, i, client.CallResult(None, None, "missing_recording", message)) for i in range(run.samples)
        ]
    endpoint = run.variant.endpoint
    try:
        base_url = options.local_url() if endpoint.kind == "local" and not options.replay else None
        api = client.make_client(endpoint, replay=options.replay, base_url=base_url)
    except (ConfigError, LocalServerError) as exc:  # no key, no local server: nothing can be sent
        kind = "config" if isinstance(exc, ConfigError) else "connection"
        return [_errored(run, i, client.CallResult(None, None, kind, str(exc))) for i in range(run.samples)]
    rows: list[Row] = []
    with api, cassettes.use(path, options.record_mode) as cassette:
        for sample in range(run.samples):
            before, plays = len(cassette.data), cassette.play_count
            result = client.call(api, run.body)
            if result.error == "missing_recording":
                why = cassettes.describe_miss(cassette, run.samples)
                fix = (
                    f"run `{record_command(run.eval_name)}`"
                    if options.replay
                    else "`once` keeps existing cassettes: use --record-mode new_episodes (add) or all (redo)"
                )
                message = (
                    f"no recording for case {run.case.id!r} in variant {run.variant.name!r} matches sample {sample + 1}"
                    f" ({why}): {fix}"
                )
                result = client.CallResult(None, None, "missing_recording", message)
            elif result.latency_ms is not None and not options.replay:
                cassettes.stamp_latency(cassette, before, client.LATENCY_HEADER, result.latency_ms)
            rows.append(_row(run, sample, result, replayed=cassette.play_count > plays))
    return rows


def _base(run: CaseRun, sample: int) -> Row:
    return {c: None for c in COLUMNS} | {
        "eval": run.eval_name,
        "case": run.case.id,
        "variant": run.variant.name,
        "model": run.model,
        "sample": sample,
    }


def _errored(run: CaseRun, sample: int, result: client.CallResult, replayed: bool = False) -> Row:
    return _base(run, sample) | {
        "replayed": replayed,
        "outcome": "errored",
        "error": result.error,
        "error_message": result.message,
        "latency_ms": result.latency_ms,
        "failed_checks": "",
        "reasons": "",
    }


def _row(run: CaseRun, sample: int, result: client.CallResult, replayed: bool) -> Row:
    if result.response is None:
        return _errored(run, sample, result, replayed)
    response = result.response
    outcomes = checks.run_checks(run.case.checks, run.body, response)
    failed = [o for o in outcomes if not o.passed]
    answer = checks.Answer.from_response(response)
    schema = [o.passed for o in outcomes if o.name == "json_schema"]
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else None
    price = cost.price_for(run.model, response.get("model"))
    return _base(run, sample) | {
        "outcome": "failed" if failed else "passed",
        "failed_checks": ";".join(o.name for o in failed),
        "reasons": " | ".join(f"{o.name}: {o.reason}" for o in failed),
        "json_valid": answer.is_json if checks.expects_json(run.case.checks, run.body) else None,
        "schema_valid": schema[0] if schema else None,
        "finish_reason": answer.finish_reason,
        "prompt_tokens": (usage or {}).get("prompt_tokens"),
        "completion_tokens": (usage or {}).get("completion_tokens"),
        "cost_usd": cost.cost_usd(usage, price),
        "latency_ms": result.latency_ms,
        "replayed": replayed,
        "output": answer.content,
    }
