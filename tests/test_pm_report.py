"""The PM's report of a two-model A/B: verdict first, disagreements side by side, colours that mean the verdict.

A synthetic run of 6 cases × 10 samples: ``new`` answers valid JSON every time, ``old`` in half the cases only
(all of their samples alike), both at $0. Every figure asserted is derived here from those counts. The browser test
renders the page in headless Chromium (skipped, saying so, without it) and keeps its screenshot in the tmp dir.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.load import _evals as evals
from harness.report import _summary as report
from harness.report._html import GATE_COLOURS
from harness.run._row import COLUMNS, Outcome, Row
from tests.test_html import PNG_MAGIC, _chromium, needs_chromium

CASES = 6
SAMPLES = 10
LONG = "x" * 400  # an answer longer than the report shows


def project(root: Path) -> dict[str, evals.Eval]:
    case = "  - id: c{i}\n    model: m\n    messages: [{{role: user, content: q{i}}}]\n"
    case += "    expect: [{{json_valid: true}}]\n"
    cases = "cases:\n" + "".join(case.format(i=i) for i in range(CASES))
    (root / "c.yaml").write_text(cases, encoding="utf-8")
    (root / "e.yaml").write_text(
        textwrap.dedent("""\
            name: ab
            cases: [c.yaml]
            variants: {old: {}, new: {}, other: {}}
            compare: [[old, new]]
            gates: [{metric: json_valid_rate, op: ">=", value: 0.99, min_n: 50}]
        """),
        encoding="utf-8",
    )
    return {"ab": evals.load(root / "e.yaml", root)}


def rows() -> list[Row]:
    out: list[dict[str, Any]] = []
    for variant in ("old", "new"):
        for i in range(CASES):
            ok = variant == "new" or i % 2 == 0  # old fails every sample of c1, c3, c5
            for sample in range(SAMPLES):
                row: dict[str, Any] = dict.fromkeys(COLUMNS)
                row |= {"eval": "ab", "case": f"c{i}", "variant": variant, "model": variant, "sample": sample}
                row |= {"outcome": "passed" if ok else "failed", "json_valid": ok, "replayed": True}
                row |= {"output": '{"ok": 1}' if ok else LONG, "reasons": "" if ok else "json_valid: not JSON"}
                row |= {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0, "latency_ms": 100.0 + sample}
                out.append(row)
    return [Row.from_dict(row) for row in out]


def write(tmp_path: Path) -> Path:
    loaded = project(tmp_path)
    ran = rows()
    run = tmp_path / "run"
    run.mkdir()
    report.write(run, ran, report.summarize(ran, loaded), report.run_note(ran, "replay only"), loaded)
    return run


def test_summary_opens_with_one_verdict_per_gated_metric(tmp_path: Path) -> None:
    md = (write(tmp_path) / "summary.md").read_text(encoding="utf-8")
    opening = md.split("## Verdict")[1].split("###")[0]
    assert md.index("## Verdict") < md.index("## Where they disagree") < md.index("## Per variant")
    # only the named pair is compared, not `other` (which did not run) nor every variant against the first
    assert opening.count("**ab: ") == 1 and "**ab: new vs old**" in opening
    verdict, rest = (line for line in opening.splitlines() if line.startswith("- "))  # one gated metric, then the rest
    # old is valid in 3 of 6 cases, new in all: +50 points, from 6 cases × 10 samples
    assert verdict.startswith("- new is better than old on json_valid_rate by +50.0 pts [95% CI")
    assert verdict.endswith("(6 cases × 10 samples).")
    assert rest.startswith("- same cost (all local, $0); ")
    assert "new meets its gates" in rest and "old doesn't meet its gates (FAIL json_valid_rate >= 0.99" in rest
    # where they disagree: the three cases old fails, its failing answer cut short, new's beside it
    section = md.split("## Where they disagree")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if re.match(r"\| c\d", line)]
    assert "| case | old | new | an answer of old | an answer of new |" in section
    assert [line.split("|")[1].strip() for line in table] == ["c1", "c3", "c5"]
    assert "| 0/10 passed | 10/10 passed | " + "x" * 240 + '… | {"ok": 1} |' in table[0]


def test_run_note_never_counts_skipped_samples_as_replayed() -> None:
    outcomes = zip(["passed", "failed", "skipped", "skipped", "passed"], [True, True, False, False, False], strict=True)
    ran = [Row("e", "c", "v", "m", i, Outcome(o), replayed=r) for i, (o, r) in enumerate(outcomes)]
    assert report.run_note(ran, "record mode once") == (
        "5 samples: 2 replayed from cassettes, 1 sent live, 2 skipped (no recording); record mode once."
    )


def test_json_bars_are_coloured_by_gate_verdict_and_free_runs_show_no_scatter(tmp_path: Path) -> None:
    html = (write(tmp_path) / "report.html").read_text(encoding="utf-8")
    bars = dict(
        re.findall(
            r'<text x="[\d.]+" y="[\d.]+" text-anchor="end">(\w+)</text><rect class="bar" [^>]*fill="([^"]+)"', html
        )
    )
    assert bars == {"new": GATE_COLOURS["pass"], "old": GATE_COLOURS["fail"]}
    assert 'class="chart chart-scatter"' not in html and "All local, $0" in html


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
@needs_chromium
def test_pm_report_renders_verdict_first_in_chromium(tmp_path: Path) -> None:
    page = write(tmp_path) / "report.html"
    shot = tmp_path / "pm-report.png"
    _chromium(tmp_path, f"--screenshot={shot}", page=page)
    print(f"screenshot: {shot}")
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 10_000
    dom = _chromium(tmp_path, "--dump-dom", page=page).stdout
    assert dom.index("<h2>Verdict</h2>") < dom.index("Where they disagree") < dom.index("<h2>Per variant</h2>")
    assert "new is better than old on json_valid_rate by +50.0 pts" in dom
    assert len(re.findall(r'<svg [^>]*class="chart chart-notice"', dom)) == 1
