"""Scale-out: `--shard I/N` splits the items, `promptvcr merge` joins the shards' reports into the unsplit run's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.cli import _main as cli
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply

EVAL = "sharded"
CASES = ("alpha", "beta", "gamma", "delta", "epsilon")
VARIANTS = {"mini": {"model": "m-mini"}, "maxi": {"model": "m-maxi"}}
SAMPLES = 4
QUIET = ("-p", "no:cacheprovider")


def _project(root: Path, base_url: str) -> None:
    ep.init_project(root)
    case_file = ep.write_cases(root, EVAL, [ep.json_case(c, min_pass_rate=0) for c in CASES])
    gates = [{"metric": "json_valid_rate", "op": ">=", "value": 0.2}]
    # one request at a time: which variant gets the invalid answers (and so its gate) depends on arrival order
    limits = {"concurrency": 1}
    ep.write_eval(
        root, EVAL, base_url=base_url, cases=[case_file], variants=VARIANTS, samples=SAMPLES, gates=gates, limits=limits
    )


def _key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row.values())


def _merge(root: Path, *runs: Path) -> int:
    cwd = Path.cwd()
    os.chdir(root)
    try:
        return cli.main(["merge", *map(str, runs)])
    finally:
        os.chdir(cwd)


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_shards_recorded_apart_and_merged_equal_the_unsplit_run(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    root = pytester.path
    _project(root, fake_openai.base_url)
    fake_openai.respond = ep.Numbered()
    shards: list[Path] = []
    items: set[str] = set()
    for index in (1, 2, 3):  # 10 items over 3 shards: 4, 3, 3
        result = pytester.runpytest("evals", *QUIET, "--record-mode", "once", "--shard", f"{index}/3", "-v")
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        ran = {line.split("::")[1].split(" ")[0] for line in result.outlines if "::" in line and "PASSED" in line}
        assert ran and not ran & items  # every shard runs items no other shard ran
        items |= ran
        shards.append(ep.latest(root))
    assert len(items) == len(CASES) * len(VARIANTS)
    # each sample was sent by exactly one shard
    assert len(fake_openai.chat_requests) == len(CASES) * len(VARIANTS) * SAMPLES

    unsplit = pytester.runpytest("evals", *QUIET)  # the whole eval, replayed from what the shards recorded
    assert unsplit.ret == pytest.ExitCode.OK, unsplit.stdout.str()
    whole_rows, whole_summary = ep.results(root), ep.summary(root)
    whole_md = (ep.latest(root) / "summary.md").read_text(encoding="utf-8")

    capsys.readouterr()
    assert _merge(root, *shards) == 0
    assert "merged" in capsys.readouterr().out
    merged = ep.latest(root)
    assert merged not in shards
    assert sorted(ep.without(ep.results(root), "replayed"), key=_key) == sorted(
        ep.without(whole_rows, "replayed"), key=_key
    )
    assert ep.summary(root) == whole_summary
    # the A/B verdicts are the same; only the run's one-line note differs
    assert (merged / "summary.md").read_text(encoding="utf-8").split("\n")[3:] == whole_md.split("\n")[3:]


def test_replayed_shards_merge_to_the_same_rows_and_a_failing_gate_fails_the_merge(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    root = pytester.path
    _project(root, fake_openai.base_url)
    numbered = ep.Numbered()

    def respond(body: dict[str, Any]) -> Reply:  # one case refused: rows with empty cells, as real runs have
        if ep.case_of(body) == "epsilon":
            return Reply(400, {"error": {"message": "refused"}})
        return numbered(body)

    fake_openai.respond = respond
    failed = pytest.ExitCode.TESTS_FAILED  # the refused case's items fail; the gates pass
    assert pytester.runpytest("evals", *QUIET, "--record-mode", "once").ret == failed
    assert pytester.runpytest("evals", *QUIET).ret == failed
    whole, whole_summary = ep.results(root), ep.summary(root)
    assert {r["error"] for r in whole} == {"", "refused_by_endpoint"}
    shards = []
    for index in (1, 2):
        assert pytester.runpytest("evals", *QUIET, "--shard", f"{index}/2").ret == failed
        shards.append(ep.latest(root))
    assert _merge(root, *shards) == 0
    assert sorted(ep.results(root), key=_key) == sorted(whole, key=_key)
    assert ep.summary(root) == whole_summary

    # the same shard twice, or a part missing, is not the unsplit run: refused, saying which part is which
    capsys.readouterr()
    assert _merge(root, shards[0], shards[0]) == 2
    assert "not the parts 1..N of one --shard I/N split" in capsys.readouterr().err
    loose = root / "loose"  # results.csv files without their run folders: no split to check, the rows overlap
    loose.mkdir()
    copies = [loose / "a.csv", loose / "b.csv"]
    for copy in copies:
        copy.write_bytes((shards[0] / "results.csv").read_bytes())
    assert _merge(root, *copies) == 2
    assert "both have sample" in capsys.readouterr().err
    assert pytester.runpytest("evals", *QUIET, "--shard", "1/3").ret == failed
    assert _merge(root, ep.latest(root), shards[1]) == 2
    assert "--shard 1/3" in capsys.readouterr().err

    # a gate the merged rows fail fails the merge, as it fails the unsplit run
    ep.write_eval(
        root,
        EVAL,
        base_url=fake_openai.base_url,
        cases=[f"cases/{EVAL}.yaml"],
        variants=VARIANTS,
        samples=SAMPLES,
        gates=[{"metric": "json_valid_rate", "op": ">=", "value": 0.99}],
    )
    assert _merge(root, *shards) == 1
    assert "gates FAILED" in capsys.readouterr().out
    # …while each shard, seeing part of the rows, leaves the verdict to the merge
    shard = pytester.runpytest("evals", *QUIET, "--shard", "1/2")
    assert shard.ret == failed  # its refused items, not the gate: that is the merge's
    assert "gates FAILED" not in shard.stdout.str()
    assert "its gates are not final" in shard.stdout.str()


def test_a_bad_shard_option_is_a_usage_error(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester.path, fake_openai.base_url)
    for bad in ("3/2", "0/2", "1", "a/b"):
        result = pytester.runpytest("evals", *QUIET, "--shard", bad)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "use I/N" in result.stderr.str()
