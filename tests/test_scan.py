"""`promptvcr scan` on throw-away git repositories with planted fake secrets, and on this repository itself.

The fakes below carry the allow marker on their own lines so that this file passes the scan; the files the tests
write them into don't, so there they must be found.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.cli import _main as cli
from harness.cli import _scan as scan
from harness.record._secrets import redact

LEGACY_KEY = "sk-FAKElegacy0123456789abcdefghijklmnopqrstuvwxyzAB"  # promptvcr: allow-secret
PROJECT_KEY = "sk-proj-FAKEproject0123456789abcdefghijklmnopqrstuv"  # promptvcr: allow-secret
SERVICE_KEY = "sk-svcacct-FAKEservice0123456789abcdefghijklmnopq"  # promptvcr: allow-secret
ADMIN_KEY = "sk-admin-FAKEadmin0123456789abcdefghijklmnopqrstu"  # promptvcr: allow-secret
TOKEN = "eyJhbGciOiJIUzI1NiJ9.FAKEpayload0123456789.signature42"  # promptvcr: allow-secret
ORG = "org-FAKEorg0123456789abcdefgh"  # promptvcr: allow-secret
PROJECT = "proj_FAKEproj0123456789abcdef"  # promptvcr: allow-secret
SECRETS = (LEGACY_KEY, PROJECT_KEY, SERVICE_KEY, ADMIN_KEY, TOKEN, ORG, PROJECT)
REPO = Path(__file__).resolve().parents[1]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository (cwd) that ignores reports/ and cassettes/, as a promptvcr user's might."""
    _git(tmp_path, "init", "-q")
    _write(tmp_path, ".gitignore", "reports/\ncassettes/\n.venv/\n")
    _write(tmp_path, "README.md", "Put OPENAI_API_KEY=sk-… in .env; bearer tokens are dropped from cassettes.\n")
    _git(tmp_path, "add", ".")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _scan(capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, set[tuple[str, int, str]], str]:
    """Exit code, the (file, line, kind) findings printed, and the whole output."""
    code = cli.main(["scan", *paths])
    out = capsys.readouterr().out
    found = set()
    for line in out.splitlines():
        if not line.startswith("scan:"):
            where, number, rest = line.split(":", 2)
            found.add((where, int(number), rest.split()[0]))
    return code, found, out


def test_each_planted_kind_is_found_with_file_and_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a cassette and a report are found although git ignores them; the source file and .env are tracked
    _write(
        repo,
        "cassettes/ev/v1/case.yaml",
        f"interactions:\n- request:\n    headers:\n      authorization:\n      - Bearer {TOKEN}\n"
        f"      x-key:\n      - Bearer {PROJECT_KEY}\n",
    )
    _write(repo, "reports/20261125-1/results.csv", f"case,error_message\nalpha,Incorrect API key: {SERVICE_KEY}.\n")
    _write(repo, "app/settings.py", f'# settings\nADMIN = "{ADMIN_KEY}"\nORG = "{ORG}"\n\nPROJECT = "{PROJECT}"\n')
    _write(repo, ".env", f"# local only\nOPENAI_API_KEY={LEGACY_KEY}\n")
    _git(repo, "add", "app/settings.py", ".env")

    code, found, out = _scan(capsys)

    assert code == 1
    assert found == {
        ("cassettes/ev/v1/case.yaml", 5, "bearer-token"),
        ("cassettes/ev/v1/case.yaml", 7, "openai-key"),  # "Bearer sk-…" is reported once, as the key
        ("reports/20261125-1/results.csv", 2, "openai-key"),
        ("app/settings.py", 2, "openai-key"),
        ("app/settings.py", 3, "org-id"),
        ("app/settings.py", 5, "project-id"),
        (".env", 1, "env-file"),
        (".env", 2, "openai-key"),
    }, out
    assert "git rm --cached .env" in out
    for secret in SECRETS:
        assert secret not in out
        assert secret[4:-2] not in out  # at most the first 4 and last 2 characters are shown
    assert f"cassettes/ev/v1/case.yaml:7: openai-key ({PROJECT_KEY[:4]}…{PROJECT_KEY[-2:]})" in out
    assert f"cassettes/ev/v1/case.yaml:5: bearer-token ({TOKEN[:4]}…{TOKEN[-2:]})" in out


def test_clean_repository_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(repo, "app/main.py", 'headers = {"Authorization": f"Bearer {key}"}  # key from the environment\n')
    _write(repo, "notes.md", "Keys look like sk-proj-****abcd when OpenAI masks them; org-level settings.\n")
    _write(repo, "reports/run/summary.md", "| eval | n |\n| --- | --- |\n| tiny | 3 |\n")
    _git(repo, "add", ".")
    code, found, out = _scan(capsys)
    assert (code, found) == (0, set()), out
    assert out == "scan: clean (5 files)\n"  # .gitignore, README.md, app/main.py, notes.md and the ignored report


def test_allow_marker_skips_only_its_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(repo, "tests/test_x.py", f'FAKE = "{ADMIN_KEY}"  # {scan.ALLOW_MARKER}\nREAL = "{ADMIN_KEY}"\n')
    _git(repo, "add", ".")
    code, found, _ = _scan(capsys)
    assert (code, found) == (1, {("tests/test_x.py", 2, "openai-key")})


def test_untracked_env_templates_binaries_and_venv_are_not_findings(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(repo, ".gitignore", "reports/\ncassettes/\n.env\n")
    _write(repo, ".env", f"OPENAI_API_KEY={LEGACY_KEY}\n")  # ignored by git: where a key belongs
    _write(repo, ".env.example", "OPENAI_API_KEY=\n")  # a committed template is fine
    _write(repo, ".venv/lib/site.py", f'KEY = "{LEGACY_KEY}"\n')
    (repo / "blob.bin").write_bytes(b"\0\1\2" + LEGACY_KEY.encode())
    _git(repo, "add", ".gitignore", ".env.example", "blob.bin")
    code, found, out = _scan(capsys)
    assert (code, found) == (0, set()), out


def test_explicit_paths_are_scanned_as_given(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As pre-commit calls it: only the files named (and a tracked .env among them)."""
    _write(repo, "a.py", f'KEY = "{LEGACY_KEY}"\n')
    _write(repo, "b.py", f'ORG = "{ORG}"\n')
    _write(repo, ".env.production", "MODE=prod\n")
    _git(repo, "add", ".")
    code, found, _ = _scan(capsys, "b.py", ".env.production")
    assert (code, found) == (1, {("b.py", 1, "org-id"), (".env.production", 1, "env-file")})
    assert cli.main(["scan", "b.py", "typo.py"]) == 2
    assert "no such file or folder: typo.py" in capsys.readouterr().err


def test_outside_git_the_folder_is_walked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "cassettes/e/v/c.yaml", f"uri: https://x.test/v1?key={PROJECT_KEY}\n")
    _write(tmp_path, "src/app.py", f'ORG = "{ORG}"\n')
    monkeypatch.chdir(tmp_path)
    assert scan.git_root(tmp_path) is None
    code, found, _ = _scan(capsys)
    assert (code, found) == (1, {("cassettes/e/v/c.yaml", 1, "openai-key"), ("src/app.py", 1, "org-id")})


def test_redact_removes_every_kind() -> None:
    text = " | ".join([*SECRETS[:4], f"Bearer {TOKEN}", ORG, PROJECT])
    redacted = redact(text)
    assert all(secret not in redacted for secret in SECRETS), redacted
    assert redacted.count("REDACTED") == 7


def test_this_repository_scans_clean() -> None:
    findings, read = scan.scan(cwd=REPO)
    assert [str(f) for f in findings] == []
    assert read > 50  # the tree was really read (git-tracked files, cassettes, this file)
