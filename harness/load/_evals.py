"""Eval definitions: which cases, which endpoint, which variants, how many samples, which gates.

``load`` validates an eval file and every case file it names, then plans the run: one ``CaseRun`` per
case × variant, each with its final request body, so nothing about YAML is left for the runner to interpret.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..checks import _builtins as checks
from ..errors import InputError, Problem, reading
from ..record._redaction import Redactor, compile_rules
from . import _cases as cases
from . import _metrics as metrics
from . import _profiles as profiles
from . import _render as render
from . import _tool_params as tool_params
from . import _validated as validated
from . import _yamlsrc as yamlsrc
from ._limits import Limits
from ._profiles import Profile

DEFAULT_LOCAL_URL = "http://127.0.0.1:8765/v1"
OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Endpoint:
    kind: Literal["local", "openai", "custom"]
    base_url: str
    api_key_env: str | None
    timeout_s: float
    max_retries: int
    profile: str | None = None  # the key profile that chose api_key_env and base_url (see harness.load._profiles)
    limits: Limits = field(
        default_factory=Limits
    )  # the eval's `limits`: concurrency, requests and tokens per minute, retry time

    @property
    def concurrency(self) -> int:
        """Requests in flight at once: the eval's ``limits.concurrency``, else 2 for the local server (its two
        slots; more would only queue there) and 8 elsewhere."""
        return self.limits.concurrency or (2 if self.kind == "local" else 8)

    @classmethod
    def parse(cls, raw: Any, profile: Profile | None = None) -> Endpoint:
        if raw == "local":
            return cls("local", DEFAULT_LOCAL_URL, None, 300.0, 1)
        if raw in (None, "openai"):
            if profile is not None:
                return cls("openai", profile.base_url or OPENAI_URL, profile.api_key_env, 60.0, 2, profile.name)
            return cls("openai", OPENAI_URL, "OPENAI_API_KEY", 60.0, 2)
        return cls(
            "custom",
            str(raw["base_url"]).rstrip("/"),
            raw.get("api_key_env"),
            float(raw.get("timeout_s", 60.0)),
            int(raw.get("max_retries", 2)),
        )


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]
    endpoint: Endpoint
    xfail: str | None
    fallback: tuple[str, ...] = ()  # model names, or `cached` (harness.run._row.CACHED): see eval.schema.json


@dataclass(frozen=True)
class Gate:
    """A quality threshold an eval holds its variants to (how fast an endpoint is sent to: harness.run._limits)."""

    metric: str  # a registered metric (harness.load._metrics)
    op: str
    value: float
    min_n: int
    variants: tuple[str, ...] | None
    # "observed": the measured value decides; "lower_bound"/"upper_bound": that end of the rate's 95% interval
    basis: Literal["observed", "lower_bound", "upper_bound"] = "observed"

    def describe(self) -> str:
        on = "" if self.basis == "observed" else f", on the {self.basis.replace('_', ' ')}"
        return f"{self.metric} {self.op} {self.value:g} (min_n {self.min_n}{on})"


@dataclass(frozen=True)
class Traffic:
    """Expected production traffic, for the monthly cost projection: calls per day and the share of each case."""

    requests_per_day: float
    mix: dict[str, float]  # case id → weight (not normalised); every case equally when the file names none


@dataclass(frozen=True)
class JudgeCall:
    """A judge check as it runs: the model that grades it (the check's, else the eval's judge) and where."""

    spec: checks.JudgeSpec
    model: str
    endpoint: Endpoint


@dataclass(frozen=True)
class CaseRun:
    """One case in one variant: the unit of a pytest item and of a cassette file (plus one for its judge calls)."""

    eval_name: str
    case: cases.Case
    variant: Variant
    body: dict[str, Any]
    samples: int
    judges: tuple[JudgeCall, ...] = ()
    redactor: Redactor | None = None  # the eval's personal-data rules, applied to everything written

    @property
    def model(self) -> str:
        return str(self.body["model"])


@dataclass(frozen=True)
class BatchOptions:
    """The eval's ``batch`` (see eval.schema.json), or `--batch`'s defaults."""

    max_requests: int = 50_000  # the Batch API's own limit per batch
    poll_s: float = 30.0

    @classmethod
    def parse(cls, raw: Any) -> BatchOptions | None:
        if raw is None:  # the schema allows `true` or an object
            return None
        given = raw if isinstance(raw, dict) else {}
        return cls(int(given.get("max_requests", cls.max_requests)), float(given.get("poll_s", cls.poll_s)))


@dataclass(frozen=True)
class Eval:
    name: str
    path: Path
    runs: tuple[CaseRun, ...]
    variants: tuple[Variant, ...]
    gates: tuple[Gate, ...]
    budget_usd: float | None
    missing_recordings: Literal["fail", "skip"]
    traffic: Traffic | None
    monthly_budget_usd: float | None
    compare: tuple[tuple[str, str], ...] = ()  # (baseline, candidate) variant pairs the reports compare
    batch: BatchOptions | None = None  # the eval's `batch`: recorded through the Batch API (None: unless --batch)


def load(path: Path, root: Path, samples_override: int | None = None, profile: str | None = None) -> Eval:
    """Validate ``path`` and the case files it names; raise InputError listing every problem. ``profile``: the key
    profile of profiles.yaml to use (None: the file's default)."""
    with reading(path):
        return _load(path, root, samples_override, profile)


def _load(path: Path, root: Path, samples_override: int | None, profile_name: str | None) -> Eval:
    checked = validated.load(path, "eval.schema.json", root)
    doc, problems = checked.doc, checked.problems
    if problems:
        raise InputError(problems)
    data = doc.data
    profile = profiles.selected(root, profile_name)
    limits = Limits.parse(data.get("limits"))
    redactor = _redactor(doc, problems)
    all_cases = _load_cases(doc, root, problems)
    judges = {case.id: _judges(doc, case, problems, profile, limits) for case in all_cases}
    variants = tuple(
        Variant(
            name,
            {k: v for k, v in raw.items() if k in render.PARAM_KEYS},
            replace(Endpoint.parse(raw.get("endpoint", data.get("endpoint")), profile), limits=limits),
            raw.get("xfail"),
            tuple(raw.get("fallback", ())),
        )
        for name, raw in data["variants"].items()
    )
    runs = [
        run
        for variant in variants
        for case in all_cases
        if (run := _case_run(doc, variant, case, samples_override, judges[case.id], redactor, problems)) is not None
    ]
    gates = tuple(_gates(doc, {v.name for v in variants}, problems))
    pairs = _pairs(doc, [v.name for v in variants], problems)
    traffic = _traffic(doc, [c.id for c in all_cases], problems)
    if problems:
        raise InputError(problems)
    checked.keep()
    return Eval(
        data["name"],
        path,
        tuple(runs),
        variants,
        gates,
        data.get("budget_usd"),
        data.get("missing_recordings", "fail"),
        traffic,
        data.get("monthly_budget_usd"),
        pairs,
        BatchOptions.parse(data.get("batch")),
    )


def _case_run(
    doc: yamlsrc.Located,
    variant: Variant,
    case: cases.Case,
    samples_override: int | None,
    judges: tuple[JudgeCall, ...],
    redactor: Redactor | None,
    problems: list[Problem],
) -> CaseRun | None:
    """The case in the variant: its request rendered, or None with its problems."""
    data = doc.data
    params = {**case.params, **variant.overrides}
    if "model" not in params:
        where = f"/variants/{variant.name}"
        problems.append(doc.problem(where, f"no model for case {case.id!r}: set `model` in the variant or the case"))
        return None
    _variant_tool_problems(doc, variant, case, params, problems)
    if "stream_options" in params and params.get("stream") is not True:
        problems.append(_param_problem(doc, case, variant, "stream_options", STREAM_OPTIONS_ALONE))
        return None
    try:
        body = render.request_body(list(case.messages), params, case.schema, case.id)
    except ValueError as exc:
        problems.append(_param_problem(doc, case, variant, "response_format", str(exc)))
        return None
    samples = samples_override or data.get("samples") or case.samples or 1
    return CaseRun(data["name"], case, variant, body, samples, judges, redactor)


def _variant_tool_problems(
    doc: yamlsrc.Located, variant: Variant, case: cases.Case, params: dict[str, Any], problems: list[Problem]
) -> None:
    """A variant's tools, tool_choice or parallel_tool_calls, checked with the case's (each case alone: at load)."""
    if not any(key in variant.overrides for key in tool_params.TOOL_KEYS):
        return
    for key, inner, message in tool_params.tool_problems(params):
        if key in variant.overrides:
            problem = doc.problem(f"/variants/{variant.name}/{key}{inner}", message)
        else:
            problem = replace(case.origins[key], message=f"{message} (in variant {variant.name!r})")
        if problem not in problems:
            problems.append(problem)


STREAM_OPTIONS_ALONE = "stream_options needs `stream: true` (the API refuses it on a request that does not stream)"


def _param_problem(doc: yamlsrc.Located, case: cases.Case, variant: Variant, key: str, message: str) -> Problem:
    """A problem with a request parameter, at the place it came from: the variant, else the case or its defaults."""
    if key in variant.overrides:
        return doc.problem(f"/variants/{variant.name}/{key}", message)
    return replace(case.origins[key], message=message)


def _pairs(doc: yamlsrc.Located, names: list[str], problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    """The eval's ``compare`` pairs, checked; by default every variant against the first."""
    if "compare" not in doc.data:
        return tuple((names[0], name) for name in names[1:])
    pairs: list[tuple[str, str]] = []
    for index, (baseline, candidate) in enumerate(doc.data["compare"]):
        for position, name in enumerate((baseline, candidate)):
            if name not in names:
                known = ", ".join(names)
                message = f"compare names variant {name!r}, which this eval does not have (it has: {known})"
                problems.append(doc.problem(f"/compare/{index}/{position}", message))
        if baseline == candidate:
            problems.append(doc.problem(f"/compare/{index}", f"compare pairs {baseline!r} with itself"))
        elif (baseline, candidate) in pairs:
            problems.append(doc.problem(f"/compare/{index}", f"the pair [{baseline}, {candidate}] is listed twice"))
        pairs.append((baseline, candidate))
    return tuple(pairs)


def _redactor(doc: yamlsrc.Located, problems: list[Problem]) -> Redactor | None:
    if "redact" not in doc.data:
        return None
    try:
        return compile_rules(doc.data["redact"])
    except ValueError as exc:
        message, index = exc.args
        problems.append(doc.problem(f"/redact/{index}", message))
        return None


def _judges(
    doc: yamlsrc.Located, case: cases.Case, problems: list[Problem], profile: Profile | None, limits: Limits
) -> tuple[JudgeCall, ...]:
    """The case's judge checks with their model and endpoint; a check that has no model is a problem in its file."""
    config = doc.data.get("judge") or {}
    endpoint = replace(Endpoint.parse(config.get("endpoint", doc.data.get("endpoint")), profile), limits=limits)
    calls: list[JudgeCall] = []
    for spec, origin in case.judges:
        model = spec.model or config.get("model")
        if model is None:
            message = f"judge check without a model: set `model` here or `judge: {{model: …}}` in {doc.path}"
            problem = replace(origin, message=message)
            if problem not in problems:  # a check in `defaults` is every case's: report it once
                problems.append(problem)
            continue
        calls.append(JudgeCall(spec, model, endpoint))
    return tuple(calls)


def _traffic(doc: yamlsrc.Located, case_ids: list[str], problems: list[Problem]) -> Traffic | None:
    raw = doc.data.get("traffic")
    if raw is None:
        return None
    mix = {str(k): float(v) for k, v in (raw.get("mix") or dict.fromkeys(case_ids, 1.0)).items()}
    for name in mix:
        if name not in case_ids:
            problems.append(
                doc.problem(f"/traffic/mix/{name}", f"traffic mix names case {name!r}, which this eval does not have")
            )
    if "mix" in raw and not any(mix.values()):
        problems.append(doc.problem("/traffic/mix", "traffic mix weights are all 0"))
    return Traffic(float(raw["requests_per_day"]), mix)


def _load_cases(doc: yamlsrc.Located, root: Path, problems: list[Problem]) -> list[cases.Case]:
    loaded: list[cases.Case] = []
    first_seen: dict[str, cases.Case] = {}
    listed: dict[Path, int] = {}
    for index, name in enumerate(doc.data["cases"]):
        candidates = [root / name, doc.path.parent / name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
            problems.append(doc.problem(f"/cases/{index}", f"case file not found: {tried}"))
            continue
        if found.resolve() in listed:
            first = listed[found.resolve()]
            problems.append(doc.problem(f"/cases/{index}", f"{name} is listed twice (also at /cases/{first})"))
            continue
        listed[found.resolve()] = index
        try:
            file_cases = cases.load(found, root)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        for case in file_cases:
            if case.id in first_seen:
                other = first_seen[case.id]
                earlier = other.where_id()
                message = f"duplicate case id {case.id!r} in eval (also {earlier.path}:{earlier.line})"
                problems.append(replace(case.where_id(), message=message))
                continue
            first_seen[case.id] = case
            loaded.append(case)
    return loaded


def _gates(doc: yamlsrc.Located, names: set[str], problems: list[Problem]) -> list[Gate]:
    gates: list[Gate] = []
    for index, raw in enumerate(doc.data.get("gates", [])):
        chosen = raw.get("variants") or ([raw["variant"]] if "variant" in raw else None)
        _check_metric(doc, index, raw, problems)
        for position, name in enumerate(chosen or []):
            if name not in names:
                at = f"/gates/{index}/variants/{position}" if "variants" in raw else f"/gates/{index}/variant"
                problems.append(doc.problem(at, f"gate names variant {name!r}, which this eval does not have"))
        gates.append(
            Gate(
                raw["metric"],
                raw["op"],
                float(raw["value"]),
                int(raw.get("min_n", 1)),
                tuple(chosen) if chosen else None,
                raw.get("basis", "observed"),
            )
        )
    return gates


def _check_metric(doc: yamlsrc.Located, index: int, raw: dict[str, Any], problems: list[Problem]) -> None:
    """The gate's metric is registered, and its value and basis fit it."""
    try:
        entry = metrics.lookup(raw["metric"])
    except metrics.MetricError as exc:
        problems.append(doc.problem(f"/gates/{index}/metric", str(exc)))
        return
    if raw.get("basis", "observed") != "observed" and not entry.interval:
        message = f"basis {raw['basis']!r} needs a rate's interval; {entry.name} has none: leave basis out"
        problems.append(doc.problem(f"/gates/{index}/basis", message))
    if entry.unit == "rate" and raw["value"] > 1:  # the schema says so of the built-in rates, for editors
        problems.append(doc.problem(f"/gates/{index}/value", f"{entry.name} is a rate: value {raw['value']} is over 1"))
