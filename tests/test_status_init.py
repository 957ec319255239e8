"""`promptvcr init`, `status` and `doctor` in a project scaffolded into a temp dir, recorded against the fake server.

Everything runs in process through ``harness.cli.main`` with the temp dir as the working directory, as a user would
run the commands in their repository.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import _doctor as doctor
from harness.cli import _main as cli
from harness.cli import _scaffold as scaffold
from harness.record import _cache as cache
from tests.fakeserver import FakeOpenAI, cycling

QUIET = ["-p", "no:cacheprovider"]
SECOND_CASE = {
    "id": "capital-of-peru",
    "vars": {"country": "Peru"},
    "messages": [
        {"role": "system", "content": 'Answer only with JSON: {"capital": "<the city>"}.'},
        {"role": "user", "content": "What is the capital of {{ country }}?"},
    ],
}


def _edit_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def project(pytester: pytest.Pytester, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> Path:
    """`promptvcr init` here (pytester's temp dir is the cwd), pointed at the fake server, with a second case."""
    root = pytester.path
    code, out = _cli(capsys, "init")
    assert code == 0, out
    _edit_yaml(root / "evals" / "example.yaml", lambda d: d.update(endpoint={"base_url": fake_openai.base_url}))
    _edit_yaml(root / "cases" / "example.yaml", lambda d: d["cases"].append(SECOND_CASE))
    fake_openai.respond = cycling(['{"capital": "Paris"}'])
    return root


def _record(capsys: pytest.CaptureFixture[str], *argv: str) -> None:
    code, out = _cli(capsys, "run", "example", "--record-mode", "once", "--", *QUIET, *argv)
    assert code == 0, out


def test_init_writes_the_files_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    monkeypatch.chdir(tmp_path)
    code, out = _cli(capsys, "init", "repo")
    assert code == 0, out
    written = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert written == sorted(scaffold.FILES)
    monkeypatch.chdir(repo)
    assert _cli(capsys, "validate")[0] == 0
    steps = yaml.safe_load((repo / ".github/workflows/eval.yml").read_text())["jobs"]["eval"]["steps"]
    assert [s["run"] for s in steps if s.get("run", "").startswith("make")] == ["make test", "make scan", "make eval"]
    assert {s["uses"] for s in steps if "uses" in s} == {
        "actions/checkout@v4",
        "actions/setup-python@v5",
        "actions/cache@v4",
        "actions/upload-artifact@v4",
    }
    # the replay's index of parsed cassettes is kept between runs, a new entry whenever a cassette changes
    (cached,) = (s["with"] for s in steps if s.get("uses") == "actions/cache@v4")
    assert cached["path"].rstrip("/") == cache.DIR and "hashFiles('cassettes/**')" in cached["key"]
    assert cached["key"].startswith(cached["restore-keys"])


def test_init_in_an_existing_repository_overwrites_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Makefile").write_text("mine\n", encoding="utf-8")
    (tmp_path / ".gitignore").write_text("mine\n", encoding="utf-8")
    code, out = _cli(capsys, "init")
    assert code == 2
    assert "not overwriting Makefile, .gitignore in . (--force overwrites them)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "Makefile"]  # nothing written
    assert (tmp_path / "Makefile").read_text() == "mine\n"
    assert _cli(capsys, "init", "--force")[0] == 0
    assert (tmp_path / "Makefile").read_text() == scaffold.MAKEFILE
    assert (tmp_path / ".gitignore").read_text() == scaffold.GITIGNORE


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_scaffolded_makefile_runs_the_installed_command(tmp_path: Path) -> None:
    scaffold.init(tmp_path, force=False)
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "eval", "test", "record", "status", "scan", "EVAL=example"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry.stdout.splitlines() == [
        "promptvcr run example",
        "promptvcr validate example",
        "promptvcr run example --record-mode once",
        "promptvcr status example",
        "promptvcr scan",
    ]


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_status_flags_an_edited_prompt_and_replay_fails_with_the_fix(
    project: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(capsys)
    assert len(fake_openai.chat_requests) == 2 * 3  # two cases × samples: 3
    code, out = _cli(capsys, "status")
    assert (code, out) == (0, "eval example: all 2 recordings match\nstatus: ok\n")

    case_file = project / "cases" / "example.yaml"
    case_file.write_text(case_file.read_text().replace("Answer only with JSON", "Reply only in JSON", 1))
    code, out = _cli(capsys, "status", "example")
    assert code == 1
    assert "changed    capital[json_object]  prompt (cassettes/example/json_object/capital.yaml)" in out
    assert "capital-of-peru" not in out
    assert "to re-record: 3 call(s), worst case $0.0000" in out  # the local model is priced 0
    command = "promptvcr run example --record-mode all -- -k 'capital[json_object]'"
    assert f"run: {command}" in out

    sent = len(fake_openai.chat_requests)
    code, out = _cli(capsys, "run", "example", "--", *QUIET)
    assert code == 1
    assert "the request differs from the recording" in out
    assert command in out  # the same command `promptvcr status` gives
    assert len(fake_openai.chat_requests) == sent  # replay sends nothing
    if shutil.which("make"):  # the scaffolded `make eval` itself, in a fresh process, as CI runs it
        done = subprocess.run(
            ["make", "eval", f"PROMPTVCR={sys.executable} -m harness"], cwd=project, capture_output=True, text=True
        )
        assert done.returncode != 0 and command in done.stdout, done.stdout + done.stderr
        assert len(fake_openai.chat_requests) == sent

    # the printed command re-records exactly the changed case
    code, out = _cli(capsys, *shlex.split(command)[1:], *QUIET)
    assert code == 0, out
    assert len(fake_openai.chat_requests) == sent + 3
    assert _cli(capsys, "status") == (0, "eval example: all 2 recordings match\nstatus: ok\n")
    assert _cli(capsys, "run", "example", "--", *QUIET)[0] == 0


def test_status_lists_model_and_parameter_changes_missing_and_orphaned(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(capsys)
    cassettes = project / "cassettes"
    _edit_yaml(
        project / "evals" / "example.yaml",
        lambda d: d["variants"].update(json_object={"response_format": "json_object", "temperature": 0.2}),
    )
    _edit_yaml(project / "cases" / "example.yaml", lambda d: d["cases"][1].update(model="other-model"))
    orphan = cassettes / "example" / "json_object" / "renamed-case.yaml"
    shutil.copy(cassettes / "example" / "json_object" / "capital.yaml", orphan)
    stray = cassettes / "deleted-eval" / "v" / "c.yaml"
    stray.parent.mkdir(parents=True)
    shutil.copy(orphan, stray)

    code, out = _cli(capsys, "status")
    assert code == 1
    assert "changed    capital[json_object]  temperature (" in out
    assert "changed    capital-of-peru[json_object]  model gemma-3-270m → other-model, temperature (" in out
    assert "orphaned   cassettes/example/json_object/renamed-case.yaml  no case × variant uses it" in out
    assert "orphaned   cassettes/deleted-eval/v/c.yaml  no eval is named 'deleted-eval'" in out
    assert "unpriced (other-model)" in out
    assert "run: promptvcr run example --record-mode all\n" in out  # every item is stale: no -k
    assert out.endswith("status: 4 to fix\n")

    # named evals: only their own folders are looked at
    assert "deleted-eval" not in _cli(capsys, "status", "example")[1]

    for path in (orphan, stray, *cassettes.rglob("capital*.yaml")):
        path.unlink()
    code, out = _cli(capsys, "status")
    assert code == 1
    assert "missing    every case × variant (nothing under cassettes/example)" in out
    assert "run: make record EVAL=example" in out


KEY = "sk-proj-FAKEdoctor0123456789abcdefghijklmnopqrstWXYZ"  # promptvcr: allow-secret


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_doctor_shows_endpoints_keys_servers_and_retired_models(
    project: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PVCR_DOCTOR_KEY", KEY)
    for proxy in ("http_proxy", "HTTP_PROXY"):  # a proxy must not see requests to this machine (nor the key)
        monkeypatch.setenv(proxy, f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("PVCR_DOCTOR_UNSET", raising=False)
    down = f"http://127.0.0.1:{_closed_port()}/v1"

    def variants(d: dict[str, Any]) -> None:
        d["endpoint"] = {"base_url": fake_openai.base_url, "api_key_env": "PVCR_DOCTOR_KEY"}
        d["variants"] = {
            "json_object": {"response_format": "json_object"},
            "retired": {"model": "gpt-4", "endpoint": {"base_url": "https://api.example.invalid/v1"}},
            "down": {"endpoint": {"base_url": down, "api_key_env": "PVCR_DOCTOR_UNSET"}},
            "wrong-path": {"endpoint": {"base_url": fake_openai.base_url.replace("/v1", "/nowhere")}},
        }

    _edit_yaml(project / "evals" / "example.yaml", variants)
    code, out = _cli(capsys, "doctor")
    assert code == 1, out  # a key not set, a server down, a wrong path: each is something to fix
    assert KEY not in out
    assert KEY[:-4] not in out
    assert f"PVCR_DOCTOR_KEY: set (…{KEY[-4:]})" in out
    assert f"endpoint custom {fake_openai.base_url} [variants json_object]" in out
    assert "server: answers (HTTP 200)" in out
    assert "endpoint custom https://api.example.invalid/v1 [variants retired]" in out
    assert "server: not checked (remote; --online checks it)" in out
    assert f"endpoint custom {down} [variants down]" in out
    assert "PVCR_DOCTOR_UNSET: NOT SET" in out
    assert "server: NO ANSWER (" in out
    assert "server: answers (HTTP 404: no /models here; check base_url)" in out
    assert "model: gpt-4 was shut down by OpenAI on 2026-10-23" in out
    assert "gemma-3-270m" not in out  # the local model has no retirement date


def test_status_checks_the_judge_cassette_against_the_recorded_answers(
    project: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = cycling(['{"capital": "Paris"}'])
    verdict = cycling(['{"score": 1, "reason": "right city"}'])
    fake_openai.respond = lambda body: verdict(body) if "<rubric>" in body["messages"][-1]["content"] else answers(body)
    case_file = project / "cases" / "example.yaml"
    rubric = {"judge": {"rubric": "Names the capital city.", "threshold": 0.5}}
    _edit_yaml(case_file, lambda d: d["cases"][0].update(expect=[rubric]))
    _edit_yaml(project / "evals" / "example.yaml", lambda d: d.update(judge={"model": "gpt-4o-mini"}))
    _record(capsys)
    judge_cassette = "cassettes/example/json_object/capital.judge.yaml"
    assert (project / judge_cassette).is_file()
    assert _cli(capsys, "status") == (0, "eval example: all 3 recordings match\nstatus: ok\n")

    _edit_yaml(case_file, lambda d: d["cases"][0]["expect"][0]["judge"].update(rubric="Names the capital, briefly."))
    code, out = _cli(capsys, "status")
    assert code == 1
    assert f"changed    capital[json_object] judge  prompt ({judge_cassette})" in out
    assert "to re-record: 3 call(s), worst case $0.0000 + 3 judge call(s), not estimated" in out
    assert "run: promptvcr run example --record-mode all -- -k 'capital[json_object]'" in out

    (project / judge_cassette).unlink()
    code, out = _cli(capsys, "status")
    assert f"missing    capital[json_object] judge  the answers were never judged ({judge_cassette})" in out
    assert "to re-record: 3 judge call(s), not estimated\n" in out
    assert "run: make record EVAL=example" in out

    _record(capsys)
    _edit_yaml(case_file, lambda d: d["cases"][0].pop("expect"))
    code, out = _cli(capsys, "status")
    assert code == 1
    assert f"orphaned   {judge_cassette}  no case × variant uses it" in out


def test_status_counts_samples_recorded_short(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(capsys)
    _edit_yaml(project / "evals" / "example.yaml", lambda d: d.update(samples=5))
    code, out = _cli(capsys, "status")
    assert code == 1
    assert "incomplete capital[json_object]  3 answer(s) recorded for 5 sample(s)" in out
    assert "incomplete capital-of-peru[json_object]  3 answer(s) recorded for 5 sample(s)" in out
    assert "to re-record: 10 call(s), worst case $0.0000" in out
    assert "run: promptvcr run example --record-mode all\n" in out


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8765/v1", True),
        ("http://127.3.2.1/v1", True),
        ("http://localhost:8080/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://10.0.0.7:8000/v1", False),
        ("https://api.openai.com/v1", False),
        ("https://127.0.0.1.example.com/v1", False),
    ],
)
def test_only_loopback_endpoints_are_probed_by_default(url: str, loopback: bool) -> None:
    assert doctor.is_loopback(url) is loopback


def test_status_flags_answers_left_in_a_log_by_a_killed_recording(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(capsys)
    assert _cli(capsys, "status")[0] == 0
    cassette = next((project / "cassettes").rglob("capital.yaml"))
    log = cassette.with_name(cassette.name + ".wal")  # what a SIGKILL between an answer and the cassette leaves
    log.write_text('{"promptvcr_wal": 1, "extends": "fresh"}\n', encoding="utf-8")
    code, out = _cli(capsys, "status")
    assert code == 1
    assert "unsaved" in out and "capital.yaml.wal" in out and "promptvcr run --resume" in out
