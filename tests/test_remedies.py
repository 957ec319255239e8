"""The runner says what a missing recording lacks and which record mode fixes it (``Remedy``), in no command's words;
the CLI's phraser (``harness.cli._remedies``) turns it into the command a user runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import _remedies as remedies
from harness.load import _evals as evals
from harness.record._cassettes import RecordMode
from harness.run import _client as client
from harness.run import _runner as runner
from harness.run._remedy import Advise, Missing, Remedy
from harness.run._row import ErrorKind, Row
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

CLI_WORDS = ("make record", "promptvcr", "--record-mode", "-k ", "`")


def _project(root: Path, base_url: str, prompt: str) -> evals.CaseRun:
    ep.init_project(root)
    case = {"id": "c1", "messages": [{"role": "user", "content": prompt}], "min_pass_rate": 0}
    cases = ep.write_cases(root, "rem", [case])
    ep.write_eval(root, "rem", base_url=base_url, cases=[cases], variants={"v": {"model": "gpt-4o-mini"}}, samples=2)
    return evals.load(root / "evals" / "rem.yaml", root).runs[0]


def _run(run: evals.CaseRun, root: Path, mode: RecordMode, advise: Advise | None = None) -> list[Row]:
    connections = client.Connections(replay=mode == RecordMode.NONE, local_url=lambda: "")
    try:
        return runner.run_case(run, runner.RunOptions(mode, root / "cassettes", connections, advise=advise))
    finally:
        connections.close()


def _replayed(run: evals.CaseRun, root: Path) -> tuple[list[Row], list[str | None]]:
    """The rows of a replay without the CLI's phraser (in no command's words), and the messages of one with it."""
    rows = _run(run, root, RecordMode.NONE)
    for row in rows:
        assert row.error_message and not [w for w in CLI_WORDS if w in row.error_message], row.error_message
    return rows, [row.error_message for row in _run(run, root, RecordMode.NONE, remedies.advice)]


def test_no_cassette_carries_a_remedy_and_no_command(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    run = _project(tmp_path, fake_openai.base_url, "hello")
    rows, phrased = _replayed(run, tmp_path)
    assert [r.error for r in rows] == [ErrorKind.MISSING_RECORDING] * 2
    assert {r.remedy for r in rows} == {Remedy(Missing.RECORDING, "rem", RecordMode.ONCE, ("c1[v]",))}
    # the remedy is no column: the files keep the message it was phrased into
    assert "remedy" not in rows[0].to_dict() and Row.from_dict(rows[0].to_dict()).remedy is None
    path = tmp_path / "cassettes" / "rem" / "v" / "c1.yaml"
    expected = f"no recording for case 'c1' in variant 'v' ({path}): run `make record EVAL=rem`"
    assert phrased == [expected, expected]


def test_a_changed_prompt_names_record_mode_all_for_its_item(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda body: Reply(body=completion('{"ok": true}'))
    recorded = _run(_project(tmp_path, fake_openai.base_url, "hello"), tmp_path, RecordMode.ONCE)
    assert [r.error for r in recorded] == [None, None]
    changed = _project(tmp_path, fake_openai.base_url, "hello, edited")
    rows, phrased = _replayed(changed, tmp_path)
    assert {r.remedy for r in rows} == {Remedy(Missing.MATCH, "rem", RecordMode.ALL, ("c1[v]",))}
    fix = ": run `promptvcr run rem --record-mode all -- -k 'c1[v]'` (`promptvcr status` lists all)"
    assert str(phrased[0]).endswith(fix)


def test_an_unreadable_cassette_names_record_mode_all(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    run = _project(tmp_path, fake_openai.base_url, "hello")
    path = tmp_path / "cassettes" / "rem" / "v" / "c1.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("interactions: [\n")
    rows, phrased = _replayed(run, tmp_path)
    assert [r.error for r in rows] == [ErrorKind.CONFIG] * 2
    assert {r.remedy for r in rows} == {Remedy(Missing.READABLE_CASSETTE, "rem", RecordMode.ALL, ("c1[v]",))}
    assert str(phrased[0]).endswith(
        " — fix it, or record it again with `promptvcr run rem --record-mode all -- -k 'c1[v]'`"
    )


@pytest.mark.parametrize(
    ("remedy", "command"),
    [
        (Remedy(Missing.RECORDING, "e", RecordMode.ONCE, ("a[v]",)), "make record EVAL=e"),
        (
            Remedy(Missing.MATCH, "e", RecordMode.NEW_EPISODES, ("a[v]",)),
            "promptvcr run e --record-mode new_episodes -- -k 'a[v]'",
        ),
        (
            Remedy(Missing.MATCH, "e", RecordMode.ALL, ("a[v]", "b[w]")),
            "promptvcr run e --record-mode all -- -k 'a[v] or b[w]'",
        ),
        (Remedy(Missing.MATCH, "e", RecordMode.ALL), "promptvcr run e --record-mode all"),
        (
            Remedy(Missing.MATCH, "e", RecordMode.ALL, ("it's[v]",)),
            "promptvcr run e --record-mode all -- -k 'it'\"'\"'s[v]'",
        ),
    ],
)
def test_the_phraser_builds_the_command(remedy: Remedy, command: str) -> None:
    assert remedies.command(remedy) == command


def test_only_a_match_in_another_mode_points_at_status() -> None:
    once = Remedy(Missing.MATCH, "e", RecordMode.ONCE, ("a[v]",))
    assert remedies.advice(once) == "run `make record EVAL=e`"
    judge = Remedy(Missing.JUDGE_RECORDING, "e", RecordMode.ONCE, ("a[v]",))
    assert remedies.advice(judge) == "run `make record EVAL=e`"
    redo = Remedy(Missing.MATCH, "e", RecordMode.ALL, ("a[v]",))
    assert remedies.advice(redo).endswith("` (`promptvcr status` lists all)")
