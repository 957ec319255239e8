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
from tests.fakeserver import FakeOpenAI, cycling

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


# A package of checks, as a team would publish one: its check is found through the promptvcr.checks entry point.
CHECKS_PACKAGE = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "politeness-checks"\nversion = "1.0"\n\n'
        '[project.entry-points."promptvcr.checks"]\npolite = "politeness_checks:polite"\n'
    ),
    "politeness_checks.py": (
        "def polite(answer, request, args):\n"
        "    return any(word in answer.content.lower() for word in args) or 'says none of ' + ', '.join(args)\n"
    ),
}

# no `pytest_plugins` line: the plugin comes from the installed package's pytest11 entry point
CONFTEST = """\
import harness


@harness.check("brief")
def brief(answer, request, args):
    words = len(answer.content.split())
    return harness.CheckResult("brief", words <= args, f"{words} words", score=min(1.0, args / words))
"""

ONE_OFF = """\
def names_topic(answer, request, args):
    return args["topic"] in answer.content or f"does not mention {args['topic']}"
"""


def test_an_installed_promptvcr_uses_checks_registered_three_ways(
    installed: Path, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    package = tmp_path / "politeness"
    package.mkdir()
    for name, text in CHECKS_PACKAGE.items():
        (package / name).write_text(text, encoding="utf-8")
    site = installed.parents[1] / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(package)]
    subprocess.run(pip, capture_output=True, check=True, timeout=300)
    root = tmp_path / "repo"
    assert _run(installed, tmp_path, "init", str(root)).returncode == 0
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n", encoding="utf-8")
    (root / "checks").mkdir()
    (root / "checks" / "topic.py").write_text(ONE_OFF, encoding="utf-8")
    case = ep.json_case("alpha", min_pass_rate=None)
    case["samples"] = 2
    case["expect"] = [
        {"polite": ["please", "thanks"]},
        {"brief": 3},
        {"python": {"function": "checks/topic.py:names_topic", "args": {"topic": "tea"}}},
    ]
    cases = ep.write_cases(root, "mine", [case], defaults={"max_tokens": 50})
    ep.write_eval(root, "mine", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    fake_openai.respond = cycling(["tea please", "no coffee for you today"])
    recorded = _run(installed, root, "run", "mine", "--record-mode", "once")
    assert len(fake_openai.chat_requests) == 2, recorded.stdout + recorded.stderr
    expected = [
        (
            "failed",
            "polite;brief;python:checks/topic.py:names_topic",
            "polite: says none of please, thanks | brief: score 0.6: 5 words | "
            "python:checks/topic.py:names_topic: does not mention tea",
        ),
        ("passed", "", ""),
    ]
    assert _verdicts(root) == expected, recorded.stdout + recorded.stderr
    replayed = _run(installed, root, "run", "mine")
    assert len(fake_openai.chat_requests) == 2  # replayed offline
    assert "1 failed" in replayed.stdout, replayed.stdout + replayed.stderr  # the case needs every sample to pass
    assert _verdicts(root) == expected


def _verdicts(root: Path) -> list[tuple[str, str, str]]:
    """(outcome, failed checks, reasons) per sample, sorted: the two concurrent requests may be answered either way."""
    return sorted((r["outcome"], r["failed_checks"], r["reasons"]) for r in ep.results(root))
