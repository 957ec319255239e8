"""Killed runs continued with ``--resume``: SIGKILL at random points, and Ctrl-C.

The recording runs are ``promptvcr run`` subprocesses against a chaos server (no faults, 20–50 ms of latency) that
lives in this test's process, so every request that reaches it is counted whatever happens to the run.

The invariant, checked at every stop. Call D the answers the project holds durably for the next run: the
interactions of each cassette plus the complete lines of its ``.wal`` log when the log extends that very file (what
``harness.record._cassettes`` adopts). A run that starts with D answers for P planned samples may send at most P − D
requests — one per sample with no answer anywhere — and, when it runs to the end, exactly P − D: a request more
would be an answer paid twice. A kill may lose only the answers in flight when it landed: D never goes down, and the
requests sent beyond what became durable are at most the concurrency. There are no faults, so no request is a retry.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.run._journal import UNFINISHED
from harness.testing import chaos
from tests import evalproject as ep

pytestmark = pytest.mark.slow  # subprocesses and real kills: `make test-slow`

EVAL = "resumable"
CASES = 4
SAMPLES = 30
PLANNED = CASES * SAMPLES
CONCURRENCY = 4
KILLS = 4
LATENCY = chaos.Latency.parse("uniform:20:50")


def project(root: Path, base_url: str) -> None:
    ep.chaos_project(root, EVAL, base_url, CASES, SAMPLES, limits={"concurrency": CONCURRENCY})


def promptvcr(root: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "harness", "run", EVAL, *args, "--", "-p", "no:cacheprovider"]
    return subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def sent(server: chaos.ChaosServer) -> int:
    return int(server.stats()["chat_requests"])


# ---------------------------------------------------------------------------------------------------- files


def wal_lines(path: Path) -> tuple[str | None, int]:
    """What a cassette's log extends, and how many answers its complete lines hold."""
    text = path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.split("\n")[:-1] if _parses(line)]
    if not lines or "extends" not in lines[0]:
        return None, 0
    return str(lines[0]["extends"]), sum("response" in line for line in lines[1:])


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def durable(root: Path, fresh_since: dict[Path, str] | None = None) -> int:
    """D (see the module doc). ``fresh_since``: a re-recording (--record-mode all) started when the cassettes had
    these digests; a cassette still as it was holds nothing of the re-recording, whose answers are in its log until
    it is rewritten (then the log, if a kill left it, holds nothing the cassette lacks)."""
    total = 0
    folder = root / "cassettes"
    for cassette in {*folder.rglob("*.yaml"), *(wal.with_suffix("") for wal in folder.rglob("*.yaml.wal"))}:
        digest = hashlib.sha256(cassette.read_bytes()).hexdigest() if cassette.is_file() else "none"
        rewritten = fresh_since is None or (cassette.is_file() and fresh_since.get(cassette) != digest)
        wal = cassette.with_name(cassette.name + ".wal")
        extends, logged = wal_lines(wal) if wal.is_file() else (None, 0)
        if fresh_since is None:
            total += logged if extends == digest else 0
        elif not rewritten:
            total += logged if extends == "fresh" else 0
        total += len(ep.interactions(cassette)) if cassette.is_file() and rewritten else 0
    return total


def assert_nothing_corrupt(root: Path) -> None:
    for cassette in (root / "cassettes").rglob("*.yaml"):
        loaded = yaml.safe_load(cassette.read_text(encoding="utf-8"))
        assert isinstance(loaded["interactions"], list), cassette
    for journal in (root / "reports").glob("*/results*.jsonl"):
        for line in journal.read_text(encoding="utf-8").split("\n")[:-1]:  # after the last newline: a torn write
            assert isinstance(json.loads(line), dict), (journal, line)
    for state in (root / "reports").glob("*/run.json"):
        assert json.loads(state.read_text(encoding="utf-8"))["status"]


def ended(root: Path) -> bool:
    """Whether every run had ended (as its run.json says) when the last was stopped: none for --resume to continue."""
    states = [json.loads(p.read_text(encoding="utf-8"))["status"] for p in (root / "reports").glob("*/run.json")]
    return all(status not in UNFINISHED for status in states)


def leftovers(root: Path) -> list[Path]:
    """Temporary files and logs that a finished run must not leave behind."""
    return [
        p
        for folder in (root / "cassettes", root / "reports")
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".wal")) or p.name.startswith(".")
    ]


# ---------------------------------------------------------------------------------------------------- kills


def kill_and_resume(root: Path, server: chaos.ChaosServer, first: tuple[str, ...], rng: random.Random) -> list[str]:
    """Start with ``first``, SIGKILL at a random point KILLS times (resuming each time), then resume to the end.

    Checks the invariant at every stop; returns the stops, for the failure messages."""
    fresh_since = (
        {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "cassettes").rglob("*.yaml")}
        if "all" in first
        else None
    )
    stops: list[str] = []
    for attempt in range(KILLS + 1):
        before, held = sent(server), durable(root, fresh_since)
        run = promptvcr(root, *(first if attempt == 0 else ("--resume",)))
        killed = False
        if attempt < KILLS:
            # a random point: after a random number of this run's requests reached the server, and a bit more
            target = before + rng.randint(1, max(1, (PLANNED - held) * 3 // 4))
            deadline = time.monotonic() + 60
            while sent(server) < target and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.15))
            if run.poll() is None:
                run.send_signal(signal.SIGKILL)
                killed = True
        output, _ = run.communicate(timeout=120)
        after, now_held = sent(server), durable(root, fresh_since)
        late = killed and ended(root)  # the kill came after the run had ended: nothing is left to resume
        stops.append(f"attempt {attempt}: held {held}, sent {after - before}, then held {now_held}, killed {killed}")
        assert_nothing_corrupt(root)
        assert after - before <= PLANNED - held, stops  # nothing with an answer was sent again
        assert now_held >= held, stops  # a kill loses nothing that was durable
        assert (after - before) - (now_held - held) <= CONCURRENCY, stops  # only what was in flight is lost
        if not killed or late:
            assert late or run.returncode == 0, output
            assert after - before == PLANNED - held, stops
            assert now_held == PLANNED, stops
            return stops
    pytest.fail(f"the last --resume was killed: {stops}")


def replay_rows(root: Path) -> list[dict[str, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", EVAL, "--", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return ep.results(root)


def assert_complete_and_replayable(root: Path) -> None:
    assert leftovers(root) == []
    recorded = ep.results(root)
    assert sorted((r["case"], int(r["sample"])) for r in recorded) == sorted(
        (f"c{i}", s) for i in range(CASES) for s in range(SAMPLES)
    )
    assert {r["outcome"] for r in recorded} == {"passed"}
    assert sum(len(ep.interactions(p)) for p in ep.cassettes(root, EVAL)) == PLANNED
    replayed = replay_rows(root)
    assert {r["replayed"] for r in replayed} == {"True"}

    def answers(rows: list[dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
        """Per case, the answers used (with the latency each recorded, which tells apart identical texts)."""
        out: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            out.setdefault(row["case"], []).append((row["output"], row["latency_ms"]))
        return {case: sorted(values) for case, values in out.items()}

    # the resumed run used each recorded answer exactly once, as a replay does
    assert answers(recorded) == answers(replayed)


def test_sigkill_at_random_points_then_resume_pays_nothing_twice(pytester: pytest.Pytester) -> None:
    rng = random.Random(20260)
    with chaos.running(chaos.ChaosConfig(seed=1, latency=LATENCY)) as server:
        project(pytester.path, server.base_url)
        stops = kill_and_resume(pytester.path, server, ("--record-mode", "once"), rng)
        assert sent(server) - PLANNED <= KILLS * CONCURRENCY, stops
    assert_complete_and_replayable(pytester.path)


def test_sigkill_while_re_recording_then_resume(pytester: pytest.Pytester) -> None:
    rng = random.Random(77)
    with chaos.running(chaos.ChaosConfig(seed=2, latency=LATENCY)) as server:
        project(pytester.path, server.base_url)
        first = promptvcr(pytester.path, "--record-mode", "once")
        output, _ = first.communicate(timeout=120)
        assert first.returncode == 0, output
        before = sent(server)
        stops = kill_and_resume(pytester.path, server, ("--record-mode", "all"), rng)
        assert sent(server) - before - PLANNED <= KILLS * CONCURRENCY, stops
    assert_complete_and_replayable(pytester.path)


def test_ctrl_c_stops_with_a_partial_report_and_resume_completes_it(pytester: pytest.Pytester) -> None:
    with chaos.running(chaos.ChaosConfig(seed=3, latency=LATENCY)) as server:
        project(pytester.path, server.base_url)
        run = promptvcr(pytester.path, "--record-mode", "once")
        deadline = time.monotonic() + 60
        while sent(server) < PLANNED // 3 and time.monotonic() < deadline:
            time.sleep(0.002)
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
        interrupted_at = sent(server)

        assert run.returncode == pytest.ExitCode.INTERRUPTED, output
        assert "--resume" in output, output
        run_dir = ep.latest(pytester.path)
        assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
        partial = ep.results(pytester.path)
        assert 0 < len(partial) < PLANNED
        assert {r["outcome"] for r in partial} <= {"passed", "errored"}
        assert_nothing_corrupt(pytester.path)

        resumed = promptvcr(pytester.path, "--resume")
        output, _ = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, output
        assert ep.latest(pytester.path) == run_dir  # the same run, continued
        assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
        kept = sum(r["outcome"] == "passed" for r in partial)
        assert sent(server) - interrupted_at <= PLANNED - kept
    assert_complete_and_replayable(pytester.path)


def _stopped_after_its_last_item(root: Path) -> None:
    """What a kill after the last item but before the end of the session leaves: a run not marked finished."""
    state = ep.latest(root) / "run.json"
    state.write_text(json.dumps(json.loads(state.read_text()) | {"status": "running"}), encoding="utf-8")


def _promptvcr(root: Path, *args: str) -> int:
    argv = [sys.executable, "-m", "harness", "run", EVAL, *args, "--", "-p", "no:cacheprovider", "-q"]
    return subprocess.run(argv, cwd=root, capture_output=True, check=False).returncode


@pytest.mark.parametrize("mode", ["once", "all"])
def test_resume_continues_a_cassette_the_run_already_wrote(pytester: pytest.Pytester, mode: str) -> None:
    """A case whose cassette the run finished (with errored samples) is continued by --resume: what it holds stays,
    only the errored samples are sent — `once` may not leave them unsent, `all` may not start the file afresh."""
    root = pytester.path
    if mode == "all":  # an older recording for `all` to replace
        with chaos.running(chaos.ChaosConfig(seed=1)) as server:
            ep.chaos_project(root, EVAL, server.base_url, 1, 4, endpoint={"max_retries": 0})
            assert _promptvcr(root, "--record-mode", "once") == 0
    with chaos.running(chaos.ChaosConfig(seed=5, rates={"500": 0.5})) as flaky:
        ep.chaos_project(root, EVAL, flaky.base_url, 1, 4, endpoint={"max_retries": 0})
        assert _promptvcr(root, "--record-mode", mode) == 1
    first = ep.results(root)
    errored = sum(r["outcome"] == "errored" for r in first)
    assert 0 < errored < 4
    _stopped_after_its_last_item(root)
    with chaos.running(chaos.ChaosConfig(seed=9)) as healthy:
        ep.chaos_project(root, EVAL, healthy.base_url, 1, 4, endpoint={"max_retries": 0})
        assert _promptvcr(root, "--resume") == 0
        assert healthy.stats()["chat_requests"] == errored  # only what had no answer
    rows = ep.results(root)
    assert [r["outcome"] for r in rows] == ["passed"] * 4
    kept = {r["sample"]: r["output"] for r in first if r["outcome"] == "passed"}
    assert {r["sample"]: r["output"] for r in rows if r["sample"] in kept} == kept
    (cassette,) = ep.cassettes(root, EVAL)
    assert len(ep.interactions(cassette)) == 4
    assert _promptvcr(root) == 0  # and it all replays
