"""A replay answered from its cassettes imports neither the openai SDK, httpx2 nor vcrpy (half a second of start-up,
bench/startup.py): each is imported where a request first needs it (``harness._lazy``); nor pandas and numpy, which
only an A/B comparison or a metric of the user's needs; nor jinja2, which only a message that is a template needs
(report.html is built without it). And the plugin, loaded into every pytest run (a project's
unit tests too), imports none of the eval machinery until the run has evals. Checked in a fresh process, as this one
has them all imported already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("openai", "httpx2", "vcr")
REPORTS = ("pandas", "numpy")
TEMPLATES = ("jinja2", "markupsafe")
MACHINERY = ("harness._session", "harness.plugin._state", "harness.load._evals", "harness.run._runner", "jsonschema")


def _imported(code: str, timeout: float, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    report = f"import json, sys; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_plugin_and_the_session_import_no_sdk() -> None:
    # every module a replay's start-up loads, the batch phase's too (the session builds it for every run)
    code = "import harness, harness.plugin, harness._session, harness.run._batch, harness.run._batch_record"
    assert _imported(code, timeout=60, heavy=HEAVY + REPORTS) == []


def test_the_plugin_imports_no_eval_machinery_until_a_run_has_evals() -> None:
    code = "import pytest, harness.plugin, harness.checks._pytest_hook"  # what every pytest run loads of ours
    assert _imported(code, timeout=60, heavy=HEAVY + REPORTS + MACHINERY) == []


def test_harness_names_are_imported_on_first_use() -> None:
    code = (
        "import harness\nassert callable(harness.load) and harness.Row.__name__ == 'Row'\nfrom harness import evaluate"
    )
    assert _imported(code, timeout=60, heavy=HEAVY + REPORTS) == []


@pytest.mark.slow  # a whole pytest run in a subprocess (~3-5 s)
def test_a_replay_of_a_committed_eval_imports_no_sdk(tmp_path: Path) -> None:
    code = (
        "import pytest\n"
        f"assert pytest.main(['evals/tools.yaml', '-q', '-p', 'no:cacheprovider', '--reports-dir', {str(tmp_path)!r}])"
        " == 0\n"
    )
    # one variant, built-in gates: no comparison; no message of cases/tools.yaml is a template
    assert _imported(code, timeout=300, heavy=HEAVY + REPORTS + TEMPLATES) == []
    assert (tmp_path / "latest" / "results.csv").is_file()  # it did replay and report
