"""Builders for throw-away promptvcr projects (cases/, evals/, conftest.py) used by the end-to-end tests."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fakeserver import Reply, completion

CONFTEST = 'pytest_plugins = ["harness.plugin"]\n'
# An ini file pins the rootdir to the project (cassettes/ and reports/ are relative to it) and keeps the
# inner runs as strict about warnings as the outer one.
INI = "[pytest]\nfilterwarnings =\n    error\n"


def init_project(root: Path) -> Path:
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (root / "pytest.ini").write_text(INI, encoding="utf-8")
    (root / "cases").mkdir(exist_ok=True)
    (root / "evals").mkdir(exist_ok=True)
    return root


def json_case(case_id: str, *, min_pass_rate: float | None = 0, topic: str | None = None) -> dict[str, Any]:
    """A case asking for JSON; its user message names the case so the fake server can tell cases apart."""
    case: dict[str, Any] = {
        "id": case_id,
        "messages": [
            {"role": "system", "content": 'Answer only with JSON: {"n": <number>}.'},
            {"role": "user", "content": f"case {case_id}: {topic or 'a number'}"},
        ],
        "expect": [{"json_valid": True}],
    }
    if min_pass_rate is not None:
        case["min_pass_rate"] = min_pass_rate
    return case


def write_cases(root: Path, stem: str, cases: list[dict[str, Any]], defaults: dict[str, Any] | None = None) -> str:
    """Write ``cases/<stem>.yaml``; returns its path relative to the project root (as an eval names it)."""
    doc: dict[str, Any] = {"defaults": defaults or {"response_format": "json_object", "max_tokens": 50}}
    doc["cases"] = cases
    (root / "cases" / f"{stem}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return f"cases/{stem}.yaml"


def write_eval(
    root: Path,
    name: str,
    *,
    base_url: str,
    cases: list[str],
    variants: dict[str, dict[str, Any]],
    samples: int | None = None,
    gates: list[dict[str, Any]] | None = None,
    endpoint: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    doc: dict[str, Any] = {
        "name": name,
        "cases": cases,
        "endpoint": {"base_url": base_url, **(endpoint or {})},
        "variants": variants,
    }
    if samples is not None:
        doc["samples"] = samples
    if gates is not None:
        doc["gates"] = gates
    doc.update(extra)
    path = root / "evals" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def chaos_project(root: Path, name: str, base_url: str, cases: int, samples: int, **eval_extra: Any) -> None:
    """``cases`` JSON cases c0, c1, … in one variant against the chaos server (harness.testing.chaos) at
    ``base_url``."""
    init_project(root)
    case_file = write_cases(root, name, [json_case(f"c{i}") for i in range(cases)])
    variants = {"v": {"model": "chaos-model"}}
    write_eval(root, name, base_url=base_url, cases=[case_file], variants=variants, samples=samples, **eval_extra)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def latest(root: Path) -> Path:
    return (root / "reports" / "latest").resolve()


def results(root: Path) -> list[dict[str, str]]:
    return read_csv(root / "reports" / "latest" / "results.csv")


def summary(root: Path) -> list[dict[str, str]]:
    return read_csv(root / "reports" / "latest" / "summary.csv")


def without(rows: Iterable[dict[str, str]], *columns: str) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


def cassettes(root: Path, eval_name: str) -> list[Path]:
    return sorted((root / "cassettes" / eval_name).rglob("*.yaml"))


def interactions(path: Path) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    return loaded


def texts_under(folder: Path) -> dict[Path, str]:
    """Every file below ``folder`` (each run's directory, besides the ``latest`` link to one of them), as text."""
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.rglob("*")) if p.is_file()}


def case_of(body: dict[str, Any]) -> str:
    """The case id the request is for (see ``json_case``)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return str(user).split(":", 1)[0].removeprefix("case ")


@dataclass
class Numbered:
    """A fake-server script: answer i is valid JSON for even i and invalid for odd i, each one unique.

    ``sent`` keeps, per (case, model), the contents answered, in order.
    """

    sent: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            i = self.count
            self.count += 1
            content = json.dumps({"n": i}) if i % 2 == 0 else f"not json #{i}"
            self.sent.setdefault((case_of(body), str(body.get("model"))), []).append(content)
        return Reply(body=completion(content, model=str(body.get("model", "fake-model"))))
