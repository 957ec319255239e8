"""The chaos server (harness.testing.chaos) and the open-loop load tool (harness.testing.loadgen, ``promptvcr
load``)."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness.cli import _main as cli
from harness.errors import ConfigError
from harness.testing import chaos, loadgen

REPO = Path(__file__).resolve().parent.parent
BODY = {"model": "chaos-model", "messages": [{"role": "user", "content": "hi"}]}


def only(fault: str, **kw: Any) -> chaos.ChaosConfig:
    return chaos.ChaosConfig(rates={fault: 1.0}, **kw)


def post(client: httpx2.Client, server: chaos.ChaosServer, body: dict[str, Any] = BODY) -> httpx2.Response:
    return client.post(server.base_url + "/chat/completions", json=body)


def stats(client: httpx2.Client, server: chaos.ChaosServer) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"http://127.0.0.1:{server.port}/stats").json()
    return data


def test_decide_is_a_pure_function_of_seed_and_n() -> None:
    config = chaos.ChaosConfig(
        seed=7, latency=chaos.Latency.parse("lognormal:50:500"), rates={f: 0.1 for f in chaos.FAULTS}
    )
    forward = [chaos.decide(config, n) for n in range(300)]
    assert [chaos.decide(config, n) for n in reversed(range(300))][::-1] == forward
    assert {d.outcome for d in forward} == set(chaos.OUTCOMES)
    other = [chaos.decide(chaos.ChaosConfig(seed=8, latency=config.latency, rates=config.rates), n) for n in range(300)]
    assert other != forward
    latencies = sorted(d.latency_ms for d in forward)
    assert 35 < latencies[150] < 70  # median 50 ms, drawn: roughly there


def test_same_seed_same_sequence_of_outcomes_from_the_server() -> None:
    config = chaos.ChaosConfig(seed=3, rates={"429": 0.2, "500": 0.2, "503": 0.2})
    runs = []
    for _ in range(2):
        with chaos.running(config) as server, httpx2.Client() as client:
            runs.append(
                [(r.status_code, r.headers["x-chaos-outcome"]) for r in (post(client, server) for _ in range(60))]
            )
    assert runs[0] == runs[1]
    assert [outcome for _, outcome in runs[0]] == [chaos.decide(config, n).outcome for n in range(60)]


def test_answers_are_chat_completions_with_usage_and_the_server_counts_them() -> None:
    with chaos.running(chaos.ChaosConfig()) as server, httpx2.Client() as client:
        answers = [post(client, server).json() for _ in range(25)]
        assert client.get(server.base_url + "/models").json()["data"][0]["id"] == "chaos-model"
        assert client.get(f"http://127.0.0.1:{server.port}/health").status_code == 200
        counts = stats(client, server)
    assert all(a["object"] == "chat.completion" and a["usage"]["total_tokens"] == 38 for a in answers)
    assert json.loads(answers[0]["choices"][0]["message"]["content"])["joke"]
    assert counts["chat_requests"] == 25 and counts["outcomes"]["ok"] == 25


@pytest.mark.parametrize("fault", ["429", "500", "503"])
def test_status_faults(fault: str) -> None:
    with chaos.running(only(fault, retry_after_s=3)) as server, httpx2.Client() as client:
        response = post(client, server)
        assert stats(client, server)["outcomes"][fault] == 1
    assert response.status_code == int(fault)
    assert response.json()["error"]["message"]
    assert response.headers.get("retry-after") == ("3" if fault == "429" else None)


def test_reset_is_a_connection_error() -> None:
    with chaos.running(only("reset")) as server, httpx2.Client() as client:
        with pytest.raises(httpx2.TransportError) as raised:
            post(client, server)
        assert not isinstance(raised.value, httpx2.TimeoutException)
        assert stats(client, server)["outcomes"]["reset"] == 1


def test_timeout_outlasts_the_client_timeout() -> None:
    with (
        chaos.running(only("timeout", hold_s=5.0)) as server,
        httpx2.Client(timeout=0.2) as client,
        pytest.raises(httpx2.ReadTimeout),
    ):
        post(client, server)


@pytest.mark.parametrize("fault", ["truncated", "malformed"])
def test_broken_bodies_fail_to_parse(fault: str) -> None:
    with chaos.running(only(fault)) as server, httpx2.Client() as client:
        response = post(client, server)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_stalled_stream_sends_some_chunks_then_nothing() -> None:
    received: list[str] = []
    with (
        chaos.running(only("stall", hold_s=5.0, stall_chunks=2)) as server,
        httpx2.Client(timeout=0.3) as client,
        pytest.raises(httpx2.ReadTimeout),
        client.stream("POST", server.base_url + "/chat/completions", json=BODY | {"stream": True}) as r,
    ):
        received.extend(line for line in r.iter_lines() if line.startswith("data:"))
    assert len(received) == 2


def test_a_stream_that_completes() -> None:
    with (
        chaos.running(chaos.ChaosConfig()) as server,
        httpx2.Client() as client,
        client.stream("POST", server.base_url + "/chat/completions", json=BODY | {"stream": True}) as r,
    ):
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert json.loads(text)["joke"] and chunks[-1]["usage"]["total_tokens"] == 38


def test_server_counts_every_request_of_a_faulty_mix() -> None:
    config = chaos.ChaosConfig(seed=11, rates={f: 0.1 for f in chaos.FAULTS}, hold_s=5.0)
    with chaos.running(config) as server, httpx2.Client(timeout=0.15) as client:
        for _ in range(30):
            with contextlib.suppress(httpx2.TransportError):  # reset, timeout, stall: counted below
                post(client, server)
        counts = stats(client, server)
    assert counts["chat_requests"] == 30
    assert counts["outcomes"] == {
        o: Counter(chaos.decide(config, n).outcome for n in range(30))[o] for o in chaos.OUTCOMES
    }


def test_chaos_server_binds_to_loopback_only() -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1 only"):
        chaos.ChaosServer(chaos.ChaosConfig(), host="0.0.0.0")
    assert cli.main(["chaos-server", "--host", "0.0.0.0"]) == 2


@pytest.mark.parametrize(
    "spec", ["fixed", "fixed:-1", "uniform:5", "uniform:9:3", "lognormal:0:10", "gauss:1:2", "fixed:x"]
)
def test_bad_latency_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        chaos.Latency.parse(spec)


def test_fault_rates_must_fit_in_one() -> None:
    with pytest.raises(ConfigError):
        chaos.ChaosConfig(rates={"429": 0.6, "500": 0.6})
    with pytest.raises(ConfigError):
        chaos.ChaosConfig(rates={"teapot": 0.1})


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_load_command_against_the_chaos_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps(BODY))
    out = tmp_path / "report.json"
    config = chaos.ChaosConfig(seed=5, latency=chaos.Latency.parse("uniform:5:30"), rates={"429": 0.1, "500": 0.1})
    with chaos.running(config) as server:
        code = cli.main(
            ["load", server.base_url, "--rps", "50", "--duration", "2", "--body", str(body), "--json", str(out)]
        )
        received = server.stats()
    assert code == 0
    report = json.loads(out.read_text())
    assert report["requests"] == 100 == sum(report["statuses"].values()) == received["chat_requests"]
    assert abs(report["achieved_rps"] - 50) <= 5
    expected = Counter(chaos.decide(config, n).outcome for n in range(100))
    assert report["statuses"].get("429", 0) == expected["429"] and report["statuses"].get("500", 0) == expected["500"]
    assert report["share_429"] == expected["429"] / 100
    assert "achieved RPS" in capsys.readouterr().out


def test_load_retries_honour_the_count() -> None:
    with chaos.running(only("503")) as server:
        report = loadgen.run(loadgen.LoadConfig(server.base_url, BODY, 50, 0.2, max_retries=2))
        received = server.stats()["chat_requests"]
    assert report.requests == 10 and report.attempts == 30 == received and report.retries == 20
    assert report.statuses == {"503": 10}


def test_load_body_from_an_eval_case() -> None:
    body = loadgen.body_from_eval(REPO / "evals" / "json_modes.yaml", "programmers-joke", None, REPO)
    assert body["model"] and body["messages"]
    with pytest.raises(ConfigError, match="no case"):
        loadgen.body_from_eval(REPO / "evals" / "json_modes.yaml", "no-such-case", None, REPO)


@pytest.mark.parametrize("url", ["http://192.0.2.1:8080/v1", "https://api.openai.com/v1", "http://10.0.0.1/v1"])
def test_load_refuses_remote_targets_without_connecting(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_client(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a client was created for a refused target")

    monkeypatch.setattr(httpx2, "AsyncClient", no_client)
    with pytest.raises(ConfigError, match="--allow-remote"):
        loadgen.run(loadgen.LoadConfig(url, BODY, 10, 1))
    assert cli.main(["load", url, "--rps", "10", "--duration", "1", "--eval", "json-modes", "--case", "x"]) == 2
    assert "refusing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/v1", "http://127.1.2.3/v1", "http://[::1]:9/v1", "http://localhost/v1"]
)
def test_loopback_targets_are_allowed(url: str) -> None:
    loadgen.check_target(url, allow_remote=False)


def test_remote_is_allowed_only_when_asked() -> None:
    loadgen.check_target("http://192.0.2.1/v1", allow_remote=True)  # checked, never contacted


@pytest.mark.parametrize(
    ("rps", "duration", "concurrency", "match"),
    [
        (10, 601, 10, "duration"),
        (10, 0, 10, "duration"),
        (1000, 201, 10, "over the cap"),
        (0, 10, 10, "rps"),
        (10, 10, 0, "concurrency"),
    ],
)
def test_hard_caps(rps: float, duration: float, concurrency: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        loadgen.check_bounds(loadgen.LoadConfig("http://127.0.0.1:1/v1", BODY, rps, duration, concurrency))


def test_hard_caps_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps(BODY))
    assert (
        cli.main(["load", "http://127.0.0.1:1/v1", "--rps", "1000", "--requests", "200001", "--body", str(body)]) == 2
    )
    assert "over the cap of 200000" in capsys.readouterr().err


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert loadgen.percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert loadgen.percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_in_place_on_a_tty_periodic_lines_otherwise() -> None:
    tty, log = _Stream(True), _Stream(False)
    for stream in (tty, log):
        show = loadgen._printer(stream)
        show("a", False)
        show("b", False)
        show("c", True)
    assert tty.getvalue() == "\r\x1b[Ka\r\x1b[Kb\r\x1b[Kc\n"
    assert log.getvalue() == "a\nc\n"  # "b" came within 5 s of "a"


def test_a_body_that_is_not_json_is_a_400_and_takes_no_turn() -> None:
    with chaos.running(chaos.ChaosConfig()) as server, httpx2.Client() as client:
        assert client.post(server.base_url + "/chat/completions", content=b"nope").status_code == 400
        assert client.get(server.base_url + "/chat/completions").status_code == 405
        assert client.get(f"http://127.0.0.1:{server.port}/nowhere").status_code == 404
        assert post(client, server).json()["id"] == "chatcmpl-chaos-0"
        assert stats(client, server)["chat_requests"] == 1


def test_load_sends_an_eval_case(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)  # `--eval NAME` is looked up under ./evals, as every subcommand does
    out = tmp_path / "report.json"
    with chaos.running(chaos.ChaosConfig()) as server:
        argv = ["load", server.base_url, "--rps", "20", "--requests", "10", "--eval", "json-modes"]
        assert cli.main([*argv, "--case", "programmers-joke", "--json", str(out)]) == 0
        received = server.stats()
    assert json.loads(out.read_text())["statuses"] == {"200": 10} and received["chat_requests"] == 10


def test_load_of_streamed_requests() -> None:
    with chaos.running(chaos.ChaosConfig()) as server:
        report = loadgen.run(loadgen.LoadConfig(server.base_url, BODY | {"stream": True}, 50, 0.2))
    assert report.statuses == {"200": 10}


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_ctrl_c_stops_the_load_with_a_report_of_what_was_sent(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    body = tmp_path / "body.json"
    body.write_text(json.dumps(BODY), encoding="utf-8")
    with chaos.running(chaos.ChaosConfig()) as server:
        argv = [sys.executable, "-m", "harness.cli", "load", server.base_url, "--rps", "20", "--duration", "60"]
        load = subprocess.Popen([*argv, "--body", str(body)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while server.outcomes["ok"] < 10 and time.monotonic() < deadline:  # it is sending
            time.sleep(0.05)
        load.send_signal(signal.SIGINT)
        out, err = load.communicate(timeout=30)
    assert load.returncode == 130, err.decode()
    text = out.decode()
    assert "stopped by Ctrl-C, 1200 planned" in text
    sent = int(text.split("requests", 1)[1].split()[0])
    assert 10 <= sent < 1200
    assert "Traceback" not in err.decode()
