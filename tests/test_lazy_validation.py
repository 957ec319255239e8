"""jsonschema and jinja2 are imported only when a run needs them (bench/startup.py): jsonschema for a file that must
be validated (not one the cache of validated files holds) or an answer a json_schema check must explain, jinja2 for a
message that is a template. Checked in fresh processes, as this one has them imported already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import evalproject as ep

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 0}}}
LOAD_AND_CHECK = """
import json, sys
from pathlib import Path
from harness.checks import _builtins as checks
from harness.load import _evals as evals
root = Path(sys.argv[1])
ev = evals.load(root / "evals" / "e.yaml", root)
(run,) = ev.runs
response = {"choices": [{"message": {"content": sys.argv[2]}, "finish_reason": "stop"}]}
results = checks.run_checks(run.case.checks, run.body, response)
print(json.dumps({
    "passed": [r.passed for r in results],
    "imported": sorted(m for m in ("jinja2", "jsonschema") if m in sys.modules),
}))
"""


def _project(root: Path, content: str) -> None:
    ep.init_project(root)
    case = {
        "id": "only",
        "messages": [
            {"role": "system", "content": 'Answer with JSON: {"n": <number>}.'},
            {"role": "user", "content": content},
        ],
        "vars": {"topic": "numbers"},
        "expect": [{"json_valid": True}, {"json_schema": SCHEMA}],
    }
    path = ep.write_cases(root, "e", [case])
    ep.write_eval(root, "e", base_url="http://127.0.0.1:9/v1", cases=[path], variants={"v": {"model": "m"}})


def _run(root: Path, answer: str) -> dict[str, list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_CHECK, str(root), answer], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, list[object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow  # fresh interpreters (~1 s each)
def test_a_validated_file_and_a_valid_answer_need_neither(tmp_path: Path) -> None:
    _project(tmp_path, "Give me a number.")
    assert _run(tmp_path, '{"n": 3}') == {"passed": [True, True], "imported": ["jsonschema"]}  # validated
    assert _run(tmp_path, '{"n": 3}') == {"passed": [True, True], "imported": []}  # from the cache
    assert _run(tmp_path, '{"n": -1}') == {"passed": [True, False], "imported": ["jsonschema"]}  # explained


@pytest.mark.slow
def test_a_template_imports_jinja2(tmp_path: Path) -> None:
    _project(tmp_path, "Give me a number about {{ topic }}.")
    _run(tmp_path, '{"n": 3}')
    assert _run(tmp_path, '{"n": 3}') == {"passed": [True, True], "imported": ["jinja2"]}
