"""promptvcr as a user gets it: built and installed with pip (not the editable checkout), in a repository that
`promptvcr init` made, with no conftest line. The dependencies come from this test run's environment; promptvcr
itself only from the wheel pip builds, so what it lacks (package data, the pytest11 entry point) shows here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI

pytestmark = pytest.mark.slow  # subprocesses and real kills: `make test-slow`

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv's python with promptvcr pip-installed from this checkout and this run's packages beside it."""
    home = tmp_path_factory.mktemp("installed")
    venv.create(home / "venv", with_pip=False)
    python = home / "venv" / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # this run's site-packages as a plain path: its .pth files (the editable checkout's finder) are not processed
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(REPO)]
    subprocess.run(pip, capture_output=True, check=True, timeout=300)
    return python


def _run(python: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [str(python), "-m", "harness", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120, check=False, env=env)


def test_an_installed_promptvcr_runs_a_scaffolded_repository_without_a_conftest_line(
    installed: Path, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    where = subprocess.run(
        [installed, "-c", "import harness; print(harness.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(REPO) not in where.stdout  # the wheel's copy, not this checkout
    root = tmp_path / "repo"
    assert _run(installed, tmp_path, "init", str(root)).returncode == 0
    (root / "conftest.py").unlink()
    # strict about warnings, as a careful user is: pytest would warn that it could not rewrite the plugin's package
    (root / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n", encoding="utf-8")
    cases = ep.write_cases(root, "mine", [ep.json_case("alpha")])
    ep.write_eval(root, "mine", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    recorded = _run(installed, root, "run", "mine", "--record-mode", "once")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert len(fake_openai.chat_requests) == 1
    replayed = _run(installed, root, "run", "mine")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 passed" in replayed.stdout
