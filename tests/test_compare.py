"""Paired A/B comparisons (harness.report._compare), their statistics (harness.report._stats) and
`promptvcr compare`.

Synthetic runs are built row by row, so every difference a test expects is put there by the test itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli import _main as cli
from harness.report import _compare as compare
from harness.report import _compare_text as compare_text
from harness.report import _stats as stats
from harness.run._row import COLUMNS

CASES = 10
SAMPLES = 10  # 10 cases × 10 samples = 100 pairs


def run_rows(
    variant: str,
    passed: Sequence[int],
    *,
    eval_name: str = "ev",
    cost: float | None = 0.001,
    latency: Sequence[float] | None = None,
    errored: Sequence[int] = (),
) -> pd.DataFrame:
    """Result rows, one per (case, sample) in order: passed[i] is 1/0; indices in ``errored`` are errors instead."""
    rows: list[dict[str, Any]] = []
    for i, ok in enumerate(passed):
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row |= {"eval": eval_name, "case": f"c{i // SAMPLES}", "variant": variant, "model": "m", "sample": i % SAMPLES}
        if i in errored:
            row |= {"outcome": "errored", "error": "http_500", "error_message": "boom"}
        else:
            row |= {
                "outcome": "passed" if ok else "failed",
                "reasons": "" if ok else "json_valid: not valid JSON",
                "json_valid": bool(ok),
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "cost_usd": cost,
                "latency_ms": latency[i] if latency is not None else 100.0 + i % 7,
                "output": '{"ok": 1}' if ok else "nope",
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def pattern(both: int, baseline_only: int, candidate_only: int, neither: int) -> tuple[list[int], list[int]]:
    """Baseline and candidate outcomes with exactly these paired counts (interleaved over the cases)."""
    pairs = [(1, 1)] * both + [(1, 0)] * baseline_only + [(0, 1)] * candidate_only + [(0, 0)] * neither
    order = sorted(range(len(pairs)), key=lambda i: (i % 7, i))  # spread each kind over several cases
    ordered = [pairs[i] for i in order]
    return [a for a, _ in ordered], [b for _, b in ordered]


# --- statistics by hand --------------------------------------------------------------------------------------------


def test_mcnemar_exact_against_hand_calculation() -> None:
    # b=1, c=9: 10 discordant pairs; P(X <= 1) for X ~ Bin(10, 1/2) = (C(10,0) + C(10,1)) / 2^10 = 11/1024,
    # two-sided 22/1024
    assert stats.mcnemar_exact(1, 9) == 22 / 1024
    assert stats.mcnemar_exact(9, 1) == 22 / 1024
    # b=2, c=8: (1 + 10 + 45) / 1024 · 2 = 112/1024
    assert stats.mcnemar_exact(2, 8) == 112 / 1024
    # b=c: the two tails overlap, capped at 1; no discordant pair is no evidence at all
    assert stats.mcnemar_exact(5, 5) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0
    # b=0, c=5: 2/32 = 0.0625, not significant at 0.05 — five flips in a row can still be chance
    assert stats.mcnemar_exact(0, 5) == 0.0625
    assert stats.mcnemar_exact(0, 6) == 2 / 64
    # large counts stay exact integers until the one division (no overflow, no NaN)
    assert 0.0 <= stats.mcnemar_exact(1000, 1100) < 0.05


def test_newcombe_paired_matches_a_published_example() -> None:
    # Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables (2017), ch. 8: Cavo et al. (2012),
    # paired table [[59, 6], [16, 80]], Newcombe square-and-add interval -0.0621 (-0.1186 to -0.0046)
    low, high = stats.newcombe_paired(59, 6, 16, 80)
    assert (low, high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    assert stats.mcnemar_exact(6, 16) == pytest.approx(0.0525, abs=5e-5)  # the book's exact McNemar p = 0.052


@pytest.mark.parametrize(
    "table", [(50, 0, 0, 50), (0, 0, 0, 10), (10, 0, 0, 0), (40, 10, 2, 48), (0, 10, 0, 0), (3, 1, 4, 1), (1, 0, 0, 0)]
)
def test_newcombe_paired_interval_sanity(table: tuple[int, int, int, int]) -> None:
    both, first_only, second_only, neither = table
    n = sum(table)
    d = (first_only - second_only) / n
    low, high = stats.newcombe_paired(*table)
    assert -1.0 <= low <= d <= high <= 1.0
    assert low < high  # never a zero-width interval, even at 0% or 100%
    # swapping the two sides mirrors the interval
    mirrored = stats.newcombe_paired(both, second_only, first_only, neither)
    assert mirrored == pytest.approx((-high, -low))


def test_newcombe_paired_narrows_with_more_pairs_and_is_nan_without() -> None:
    widths = [stats.newcombe_paired(8 * k, 2 * k, k, 9 * k) for k in (1, 4, 16)]
    assert widths[0][1] - widths[0][0] > widths[1][1] - widths[1][0] > widths[2][1] - widths[2][0]
    assert all(math.isnan(x) for x in stats.newcombe_paired(0, 0, 0, 0))


def test_paired_sample_size_against_hand_calculation() -> None:
    # Connor (1987): n = (z_.975 √ψ + z_.80 √(ψ − δ²))² / δ², ψ = 0.2, δ = 0.05
    # = (1.959964 · 0.447214 + 0.841621 · 0.444410)² / 0.0025 = (0.876530 + 0.374025)² / 0.0025 = 625.56 → 626
    assert stats.paired_sample_size(0.2, 0.05) == 626
    assert stats.paired_sample_size(0.2, -0.05) == 626  # a drop needs as many pairs as a rise
    # ψ below |δ| is impossible; it is raised to δ:
    # (1.959964 · √.05 + 0.841621 · √.0475)² / .0025 = (0.438262 + 0.183428)² / .0025 = 154.6 → 155
    assert stats.paired_sample_size(0.0, 0.05) == stats.paired_sample_size(0.05, 0.05) == 155
    assert stats.paired_sample_size(0.4, 0.05) > stats.paired_sample_size(0.2, 0.05)  # more noise, more pairs
    with pytest.raises(ValueError, match="must not be 0"):
        stats.paired_sample_size(0.2, 0)


# --- comparisons -----------------------------------------------------------------------------------------------------


def test_a_known_drop_is_worse_and_the_reverse_is_better() -> None:
    base, cand = pattern(both=60, baseline_only=25, candidate_only=3, neither=12)
    result = compare.compare(run_rows("a", base), run_rows("b", cand), "a", "b")
    pass_rate = result.get("pass_rate")
    assert (pass_rate.n, pass_rate.discordant) == (100, (25, 3))
    assert pass_rate.baseline == 0.85 and pass_rate.candidate == 0.63
    assert pass_rate.delta == pytest.approx(-0.22)
    assert pass_rate.cases == 10 and pass_rate.per_case == 10
    assert pass_rate.p_value is not None and pass_rate.p_value < 0.05
    assert pass_rate.low < pass_rate.delta < pass_rate.high < 0
    assert pass_rate.verdict == "worse"
    assert result.get("json_valid_rate").verdict == "worse"  # json_valid follows the outcome in these rows
    assert result.regressions(10) and "pass_rate" in result.regressions(10)[0]

    reverse = compare.compare(run_rows("b", cand), run_rows("a", base), "b", "a")
    assert reverse.get("pass_rate").verdict == "better"
    assert reverse.get("pass_rate").discordant == (3, 25)
    assert reverse.regressions(10) == []


def test_no_difference_is_not_called_a_difference() -> None:
    # the same pass rate, with as many pairs going each way
    base, cand = pattern(both=70, baseline_only=6, candidate_only=6, neither=18)
    result = compare.compare(run_rows("a", base), run_rows("b", cand), "a", "b")
    for metric in result.metrics:
        expected = "insufficient data" if metric.metric.name == "schema_valid_rate" else "no significant difference"
        assert metric.verdict == expected, metric  # these rows have no schema check
    assert result.get("pass_rate").p_value == 1.0
    assert result.get("pass_rate").low < 0 < result.get("pass_rate").high
    assert result.regressions(10) == []


def test_a_small_drop_is_not_significant_but_says_how_many_pairs_would_tell() -> None:
    base, cand = pattern(both=80, baseline_only=4, candidate_only=1, neither=15)
    pass_rate = compare.compare(run_rows("a", base), run_rows("b", cand), "a", "b").get("pass_rate")
    assert pass_rate.delta == pytest.approx(-0.03)
    assert pass_rate.verdict == "no significant difference"
    assert pass_rate.p_value is not None and pass_rate.p_value > 0.05
    assert pass_rate.low < 0 < pass_rate.high and pass_rate.high - pass_rate.low <= 2 * compare.DETECT
    assert pass_rate.needed_pairs == stats.paired_sample_size(0.05, compare.DETECT)
    # the discordant pairs sit in different cases and nowhere alike within one: no intra-case correlation, so the
    # advice is the independent pairs spread over cases of 10 samples
    assert pass_rate.icc == 0.0
    assert pass_rate.needed_cases == math.ceil(stats.paired_sample_size(0.05, compare.DETECT) / SAMPLES)


def test_errors_are_left_out_of_quality_rates_and_counted_in_the_error_rate() -> None:
    passed = [1] * 100
    spread = range(0, 100, 4)  # 25 errors, two or three in every case
    result = compare.compare(run_rows("a", passed), run_rows("b", passed, errored=spread), "a", "b")
    assert result.get("pass_rate").n == 75
    assert result.get("pass_rate").verdict == "no significant difference"
    errors = result.get("error_rate")
    assert (errors.n, errors.discordant, errors.verdict) == (100, (0, 25), "worse")
    assert any("error_rate" in r for r in result.regressions(10))


def test_latency_and_cost_differences_by_paired_bootstrap() -> None:
    passed = [1] * 100
    slow = [200.0 + i % 13 for i in range(100)]
    fast = [100.0 + i % 11 for i in range(100)]
    result = compare.compare(run_rows("a", passed, latency=fast), run_rows("b", passed, latency=slow), "a", "b")
    p95 = result.get("latency_p95_ms")
    assert p95.verdict == "worse" and 0 < p95.low <= p95.delta <= p95.high
    assert result.get("latency_p50_ms").verdict == "worse"
    # bootstrap intervals are reproducible: the same rows give the same report
    again = compare.compare(run_rows("a", passed, latency=fast), run_rows("b", passed, latency=slow), "a", "b")
    assert again.get("latency_p95_ms") == p95

    pricier = compare.compare(run_rows("a", passed, cost=0.001), run_rows("b", passed, cost=0.00115), "a", "b")
    cost = pricier.get("cost_per_1k_calls")
    assert (cost.baseline, cost.candidate) == pytest.approx((1.0, 1.15))
    assert cost.verdict == "worse"
    assert any("+15.0%, more than 10%" in r for r in pricier.regressions(10))
    assert pricier.regressions(20) == []


def test_unpriced_and_free_costs() -> None:
    passed = [1] * 20
    unpriced = compare.compare(run_rows("a", passed, cost=None), run_rows("b", passed, cost=None), "a", "b")
    assert unpriced.get("cost_per_1k_calls").verdict == "insufficient data"
    assert unpriced.regressions(10) == []
    from_free = compare.compare(run_rows("a", passed, cost=0.0), run_rows("b", passed, cost=0.001), "a", "b")
    assert any("+inf%" in r for r in from_free.regressions(10))


def test_empty_and_tiny_input_is_insufficient_data_not_a_crash() -> None:
    empty = run_rows("a", [])
    result = compare.compare(empty, empty, "a", "b")
    assert {m.verdict for m in result.metrics} == {"insufficient data"}
    assert result.regressions(10) == []
    assert result.cases.empty
    assert compare_text.text_report([result])  # renders
    assert compare.compare_variants(empty, {"ev": [("a", "b")]}) == []
    assert compare.compare_runs(empty, empty, "A", "B") == []
    few = compare.compare(run_rows("a", [1] * 5), run_rows("b", [1] * 5), "a", "b")
    assert few.get("latency_p95_ms").verdict == "insufficient data"  # too few pairs to resample


def test_pairing_is_by_case_and_sample_and_unpaired_rows_are_counted() -> None:
    base = run_rows("a", [1] * 100)
    cand = run_rows("b", [0] * 100)
    cand = cand[cand["case"] != "c9"]  # the candidate never ran one case
    result = compare.compare(base, cand.iloc[::-1], "a", "b")  # row order is irrelevant
    assert result.unpaired == 10
    assert result.get("pass_rate").n == 90
    assert result.get("pass_rate").discordant == (90, 0)
    side_by_side = result.cases.set_index("case")
    assert side_by_side.loc["c0", ["baseline_passed", "candidate_passed"]].tolist() == [10, 0]
    assert side_by_side.loc["c9", ["baseline_answered", "candidate_answered"]].tolist() == [10, 0]


def test_more_than_two_variants_each_against_the_named_baseline() -> None:
    base, worse = pattern(both=60, baseline_only=30, candidate_only=0, neither=10)
    df = pd.concat([run_rows("ref", base), run_rows("new", worse), run_rows("same", base)])
    comparisons = compare.compare_variants(df, {"ev": [("ref", "new"), ("ref", "same")]})
    assert [(c.baseline, c.candidate) for c in comparisons] == [("ref", "new"), ("ref", "same")]
    assert [c.get("pass_rate").verdict for c in comparisons] == ["worse", "no significant difference"]
    named = compare.compare_variants(df, {"ev": [("same", "new")]})  # the pairs an eval names, not just the first
    assert [(c.baseline, c.candidate, c.get("pass_rate").verdict) for c in named] == [("same", "new", "worse")]
    assert compare.compare_variants(df, {"ev": [("missing", "new")]}) == []


# --- promptvcr compare --------------------------------------------------------------------------------------------


def write_run(folder: Path, *frames: pd.DataFrame) -> Path:
    folder.mkdir(parents=True)
    pd.concat(frames).to_csv(folder / "results.csv", index=False)
    return folder


def test_cli_compare_prints_the_verdict_table_and_fails_on_a_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cand = pattern(both=60, baseline_only=25, candidate_only=3, neither=12)
    run_a = write_run(tmp_path / "reports" / "20260101-000000-aaaa", run_rows("v", base))
    run_b = write_run(tmp_path / "reports" / "20260102-000000-bbbb", run_rows("v", cand))

    assert cli.main(["compare", str(run_a), str(run_b)]) == 1
    out = capsys.readouterr().out
    assert "ev: v @ B vs v @ A" in out
    table = {line.split()[0]: line for line in out.splitlines() if line.startswith(("pass_rate", "json_valid_rate"))}
    assert table["pass_rate"].endswith("worse") and "85.0%  " in table["pass_rate"] and "63.0%" in table["pass_rate"]
    assert "discordant 25/3" in table["pass_rate"]
    assert "REGRESSION ev: v @ B vs v @ A: pass_rate 85.0% → 63.0%" in out
    assert out.rstrip().endswith("compare: FAILED")

    # the other way round B improved: no regression; results.csv paths work as well as directories
    assert cli.main(["compare", str(run_b / "results.csv"), str(run_a / "results.csv")]) == 0
    assert capsys.readouterr().out.rstrip().endswith("compare: no regression")


def test_cli_compare_same_quality_passes_and_cost_rise_fails_past_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = pattern(both=70, baseline_only=0, candidate_only=0, neither=30)
    run_a = write_run(tmp_path / "a", run_rows("v", base, cost=0.001))
    run_b = write_run(tmp_path / "b", run_rows("v", base, cost=0.00112))
    assert cli.main(["compare", str(run_a), str(run_b)]) == 1
    out = capsys.readouterr().out
    assert "cost per 1k calls $1.0000 → $1.1200 (+12.0%, more than 10%)" in out
    assert "pass_rate (gated)" in out and "no significant difference" in out
    assert cli.main(["compare", str(run_a), str(run_b), "--max-cost-increase", "15"]) == 0
    capsys.readouterr()


def test_cli_compare_defaults_to_the_two_newest_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    base, cand = pattern(both=60, baseline_only=25, candidate_only=3, neither=12)
    write_run(reports / "20260101-000000-aaaa", run_rows("v", cand))  # oldest: not compared
    write_run(reports / "20260102-000000-bbbb", run_rows("v", base))
    write_run(reports / "20260103-000000-cccc", run_rows("v", base))
    (reports / "latest").symlink_to("20260103-000000-cccc")
    assert cli.main(["compare", "--reports-dir", str(reports)]) == 0
    out = capsys.readouterr().out
    assert "20260102-000000-bbbb" in out and "20260103-000000-cccc" in out and "aaaa" not in out


def test_cli_compare_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_a = write_run(tmp_path / "a", run_rows("v", [1] * 10))
    assert cli.main(["compare", str(run_a)]) == 2
    assert "both RUN_A and RUN_B" in capsys.readouterr().err
    assert cli.main(["compare", str(run_a), str(tmp_path / "nope")]) == 2
    assert "no results.csv" in capsys.readouterr().err
    other = write_run(tmp_path / "other", run_rows("w", [1] * 10))
    assert cli.main(["compare", str(run_a), str(other)]) == 2
    captured = capsys.readouterr()
    assert "nothing to compare" in captured.err and "ev/v only in A" in captured.out
    assert cli.main(["compare", "--reports-dir", str(tmp_path / "empty")]) == 2
    assert "has 0" in capsys.readouterr().err


BASELINES = Path(__file__).resolve().parent.parent / "baselines"


def test_cli_compare_on_the_two_committed_prompt_versions(capsys: pytest.CaptureFixture[str]) -> None:
    """v1 (unbounded schema strings) against v2 (maxLength bounds): real recordings of two prompt versions."""
    a, b = BASELINES / "json-modes-v1-unbounded", BASELINES / "json-modes-v2-bounded"
    old, new = (pd.read_csv(run / "results.csv") for run in (a, b))
    key = ["case", "sample"]
    pairs = old[old["variant"] == "json_schema"].merge(new[new["variant"] == "json_schema"], on=key)
    only_new = int(((pairs["json_valid_x"] == False) & (pairs["json_valid_y"] == True)).sum())  # noqa: E712  # pandas
    only_old = int(((pairs["json_valid_x"] == True) & (pairs["json_valid_y"] == False)).sum())  # noqa: E712
    k, n = min(only_old, only_new), only_old + only_new
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    assert p < 0.05 and only_new > only_old  # what the committed data says, computed here independently

    code = cli.main(["compare", str(a), str(b)])
    out = capsys.readouterr().out
    assert "json-modes: json_schema @ B vs json_schema @ A" in out
    line = next(
        row
        for row in out.splitlines()
        if row.startswith("json_valid_rate") and f"discordant {only_old}/{only_new}" in row
    )
    assert line.rstrip().endswith("better")
    assert code == (1 if "REGRESSION" in out else 0)
