"""Servers and stops that must not hang a run or lose it: a body dripped a byte at a time, SIGTERM, resumes that
would cross evals, progress on a pipe, a doctor that finds nothing answering, junit times of a replay.

Every subprocess here is bounded by a timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.testing import chaos
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

pytestmark = pytest.mark.slow  # subprocesses and real kills: `make test-slow`

# ---------------------------------------------------------------------------------------------------- a dripping server


class Dripper:
    """Reads a request, sends 200 headers announcing a long body, then one byte every ``every_s`` — never enough."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.every_s = every_s
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{")
            try:
                while not self._stop.wait(self.every_s):
                    conn.sendall(b" ")
            except OSError:  # the client gave up: what we want
                return

    def __enter__(self) -> Dripper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def promptvcr(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False)


def test_a_dripping_body_ends_as_a_timeout_within_timeout_s(pytester: pytest.Pytester) -> None:
    timeout_s = 1.5
    with Dripper() as server:
        ep.init_project(pytester.path)
        cases = ep.write_cases(pytester.path, "c", [ep.json_case("drip")])
        endpoint = {"timeout_s": timeout_s, "max_retries": 0}
        variants = {"v": {"model": "m"}}
        ep.write_eval(pytester.path, "e", base_url=server.base_url, cases=[cases], variants=variants, endpoint=endpoint)
        start = time.monotonic()
        result = promptvcr(pytester.path, "run", "e", "--record-mode", "once", "--", "-p", "no:cacheprovider")
        took = time.monotonic() - start
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    (row,) = ep.results(pytester.path)
    assert (row["outcome"], row["error"]) == ("errored", "timeout"), row
    assert float(row["latency_ms"]) <= (timeout_s + 1) * 1000  # the call, headers to last byte, within timeout_s + 1 s
    assert server.requests == 1
    assert took < 30  # the whole process, start-up and reports included: it ended, it did not hang


# ---------------------------------------------------------------------------------------------------- stops


def _slow_project(root: Path, name: str, base_url: str, cases: int = 2, samples: int = 20, **extra: object) -> None:
    case_file = ep.write_cases(root, name, [ep.json_case(f"{name}{i}") for i in range(cases)])
    variants = {"v": {"model": "chaos-model"}}
    ep.write_eval(root, name, base_url=base_url, cases=[case_file], variants=variants, samples=samples, **extra)


def _run(root: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "harness", "run", *args, "--", "-p", "no:cacheprovider"]
    return subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(server: chaos.ChaosServer, requests: int) -> None:
    deadline = time.monotonic() + 60
    while server.stats()["chat_requests"] < requests and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_stops_like_ctrl_c(pytester: pytest.Pytester, stop: signal.Signals) -> None:
    with chaos.running(chaos.ChaosConfig(seed=2, latency=chaos.Latency.parse("fixed:250"))) as server:
        ep.init_project(pytester.path)
        _slow_project(pytester.path, "alpha", server.base_url, samples=40)
        run = _run(pytester.path, "alpha", "--record-mode", "once")
        _wait_for(server, 6)
        run.send_signal(stop)
        output, _ = run.communicate(timeout=60)
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output
    assert "--resume" in output
    state = json.loads((ep.latest(pytester.path) / "run.json").read_text(encoding="utf-8"))
    assert state["status"] == "interrupted"
    assert 0 < len(ep.results(pytester.path)) < 80


def _killed_run(root: Path, server: chaos.ChaosServer, name: str) -> Path:
    """A run of ``name`` killed with SIGKILL part way: its folder says `running`."""
    before = server.stats()["chat_requests"]
    run = _run(root, name, "--record-mode", "once")
    _wait_for(server, before + 6)
    run.kill()
    run.communicate(timeout=30)
    run_dir = max((p for p in (root / "reports").iterdir() if not p.is_symlink()), key=lambda p: p.name)
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] == "running"
    return run_dir


def _finished(run: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = run.communicate(timeout=120)
    assert "Traceback" not in output
    return run.returncode, output


def _alpha_and_beta(root: Path, base_url: str) -> None:
    ep.init_project(root)
    _slow_project(root, "alpha", base_url)
    _slow_project(root, "beta", base_url)


def test_resume_continues_the_killed_runs_evals_only(pytester: pytest.Pytester) -> None:
    root = pytester.path
    with chaos.running(chaos.ChaosConfig(seed=3, latency=chaos.Latency.parse("fixed:100"))) as server:
        _alpha_and_beta(root, server.base_url)
        killed = _killed_run(root, server, "alpha")
        at_kill = server.stats()["chat_requests"]

        # naming another eval: nothing of alpha's run is touched, nothing is sent, the unfinished run is listed
        code, output = _finished(_run(root, "beta", "--resume"))
        assert code == pytest.ExitCode.USAGE_ERROR, output
        assert killed.name in output and "alpha" in output, output
        assert server.stats()["chat_requests"] == at_kill

        # no eval named: the killed run's plan — alpha's 40 samples — and nothing of beta
        code, output = _finished(_run(root, "--resume"))
        assert code == 0, output
        sent = server.stats()["chat_requests"]
    rows = ep.results(root)
    assert {r["eval"] for r in rows} == {"alpha"}
    assert len(rows) == 40
    assert sent - at_kill <= 40
    assert not (root / "cassettes" / "beta").exists()
    assert json.loads((killed / "run.json").read_text(encoding="utf-8"))["status"] == "complete"


def test_resume_keeps_the_killed_runs_samples_and_variants(pytester: pytest.Pytester) -> None:
    """`run alpha --samples 3 --variant v` killed, then a bare `--resume`: still 3 samples of variant v only."""
    root = pytester.path
    config = chaos.ChaosConfig(seed=4, latency=chaos.Latency.parse("fixed:150"))
    with chaos.running(config) as server:
        ep.init_project(root)
        case_file = ep.write_cases(root, "alpha", [ep.json_case(f"a{i}") for i in range(8)])
        variants = {"v": {"model": "chaos-model"}, "w": {"model": "chaos-model-2"}}
        ep.write_eval(root, "alpha", base_url=server.base_url, cases=[case_file], variants=variants, samples=20)
        run = _run(root, "alpha", "--record-mode", "once", "--samples", "3", "--variant", "v")
        _wait_for(server, 4)
        run.kill()
        run.communicate(timeout=30)
        code, output = _finished(_run(root, "--resume"))
        assert code == 0, output
    rows = ep.results(root)
    assert {(r["variant"], r["sample"]) for r in rows} == {("v", str(s)) for s in range(3)}
    assert len(rows) == 8 * 3


def test_resume_with_several_unfinished_runs_of_different_evals_is_refused(pytester: pytest.Pytester) -> None:
    root = pytester.path
    with chaos.running(chaos.ChaosConfig(seed=5, latency=chaos.Latency.parse("fixed:100"))) as server:
        _alpha_and_beta(root, server.base_url)
        first = _killed_run(root, server, "alpha")
        time.sleep(1.1)  # run ids are by the second
        second = _killed_run(root, server, "beta")
        at_kill = server.stats()["chat_requests"]
        code, output = _finished(_run(root, "--resume"))
        assert code == pytest.ExitCode.USAGE_ERROR, output
        assert first.name in output and second.name in output, output
        code, output = _finished(_run(root, "alpha", "--resume"))
        assert code == 0, output
        assert server.stats()["chat_requests"] - at_kill <= 40
    assert json.loads((first / "run.json").read_text(encoding="utf-8"))["status"] == "complete"
    assert json.loads((second / "run.json").read_text(encoding="utf-8"))["status"] == "running"


# ------------------------------------------------------------------------------------------ progress, doctor, junit


def test_progress_lines_reach_a_pipe_while_the_run_goes_on(pytester: pytest.Pytester) -> None:
    """On a pipe (a CI log), progress lines come between pytest's own lines as the run goes, not afterwards inside
    a failed item's captured output."""
    with chaos.running(chaos.ChaosConfig(seed=6, latency=chaos.Latency.parse("fixed:300"))) as server:
        ep.init_project(pytester.path)
        _slow_project(pytester.path, "alpha", server.base_url, cases=1, samples=30, limits={"concurrency": 2})
        run = _run(pytester.path, "alpha", "--record-mode", "once", "--progress-every", "0.5")
        assert run.stdout is not None
        seen_while_running: list[str] = []
        with run.stdout:
            for line in run.stdout:
                if line.startswith("promptvcr: ") and "samples" in line and server.stats()["chat_requests"] < 30:
                    seen_while_running.append(line)
        run.wait(timeout=60)
    assert run.returncode == 0
    assert seen_while_running, "no progress line arrived on the pipe before the run ended"
    assert not any("Captured" in line for line in seen_while_running)


@contextmanager
def _refusing_port() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


def test_doctor_fails_when_an_endpoint_does_not_answer(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ep.init_project(pytester.path)
    cases = ep.write_cases(pytester.path, "c", [ep.json_case("a")])
    ep.write_eval(pytester.path, "up", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    ok = promptvcr(pytester.path, "doctor", "up")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "answers (HTTP 200)" in ok.stdout
    with _refusing_port() as dead:
        ep.write_eval(pytester.path, "down", base_url=dead, cases=[cases], variants={"v": {"model": "m"}})
        down = promptvcr(pytester.path, "doctor", "down")
    assert down.returncode == 1, down.stdout + down.stderr
    assert "NO ANSWER" in down.stdout
    assert "Traceback" not in down.stdout + down.stderr


def test_junit_time_of_a_replay_is_the_replays_own(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    slow = 900  # ms the recording says each answer took
    fake_openai.respond = lambda body: Reply(body=completion('{"n": 1}'))
    ep.init_project(pytester.path)
    cases = ep.write_cases(pytester.path, "c", [ep.json_case("a")])
    ep.write_eval(
        pytester.path, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=5
    )
    assert pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider").ret == 0
    (cassette,) = ep.cassettes(pytester.path, "e")
    text = cassette.read_text(encoding="utf-8")
    slowed = re.sub(r"(x-promptvcr-latency-ms:\n\s*- ')[0-9.]+'", rf"\g<1>{slow}.0'", text)
    assert slowed.count(f"'{slow}.0'") == 5
    cassette.write_text(slowed, encoding="utf-8")
    assert pytester.runpytest("evals", "-p", "no:cacheprovider").ret == 0
    case = ET.parse(ep.latest(pytester.path) / "junit.xml").getroot().find(".//testcase")
    assert case is not None
    assert float(case.get("time", "nan")) < 2.0  # the replay's own time, not 5 × 0.9 s
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert float(properties["recorded_latency_s"]) == pytest.approx(5 * slow / 1000)
