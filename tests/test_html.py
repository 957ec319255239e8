"""report.html: self-contained, and it renders with its charts in a real browser (headless Chromium).

The browser tests need Debian's ``chromium`` package (``apt-get install -y chromium``) and are skipped, saying so,
without it. Each keeps its screenshot in the test's tmp directory and prints the path.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report import _charts as charts
from tests.fakeserver import FakeOpenAI
from tests.test_reports import MIX, VARIANTS, small_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _chromium(tmp_path: Path, *action: str, page: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # runs as root in CI containers
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,2000",
        *action,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_report_html_is_self_contained(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    html = (small_run(pytester, fake_openai) / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "@import" not in html and "url(" not in html and " src=" not in html
    # the only URL is the SVG namespace; links stay inside the page
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))
    # outputs are escaped text, never markup
    assert "not json" in html


def test_charts_of_empty_or_missing_data_are_valid_svg_saying_so() -> None:
    nan = math.nan
    drawn = [
        charts.rate_bars("r", []),
        charts.rate_bars("r", [("v", nan, nan, nan)], target=0.99),
        charts.scatter("s", [], "x", "y"),
        charts.scatter("s", [("v", nan, 0.5), ("w", 0.0, 1.0)], "x", "y"),
        charts.distributions("d", [("v", [])], "ms"),
        charts.distributions("d", [("v", [nan, 5.0])], "ms"),
    ]
    for svg in drawn:
        root = ET.fromstring(str(svg))
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "no data" in str(drawn[1]) and "no data" in str(drawn[4])
    assert "not plotted (unpriced or no data)" in str(drawn[3])
    assert "&lt;b&gt;" in str(charts.rate_bars("<b>", [("<b>", 0.5, 0.4, 0.6)]))  # labels are escaped


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
@needs_chromium
def test_report_renders_in_chromium_with_its_charts(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    page = small_run(pytester, fake_openai) / "report.html"
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", page=page)
    print(f"screenshot: {shot}")
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000  # a real picture, not an empty page

    dom = _chromium(tmp_path, "--dump-dom", page=page).stdout
    for kind in ("rates", "scatter", "distribution"):
        assert len(re.findall(rf'<svg [^>]*class="chart chart-{kind}"', dom)) == 1, kind
    assert len(re.findall(r'<rect class="bar"', dom)) == len(VARIANTS)  # JSON validity, one bar per variant
    assert len(re.findall(r'<path class="interval"', dom)) == len(VARIANTS)  # ... each with its Wilson interval
    assert len(re.findall(r'<circle class="point"', dom)) == len(VARIANTS)  # cost against quality
    assert len(re.findall(r'<rect class="box"', dom)) == len(VARIANTS)  # latency distribution
    # the outcome grid: one row per case, shaky's cells link to its failing outputs, which the page holds
    assert len(re.findall(r'<td class="cell"', dom)) == len(MIX) * len(VARIANTS)
    for case in MIX:
        assert f'href="#fail-{case}-shaky"' in dom and f'<details id="fail-{case}-shaky">' in dom
    assert "small: shaky vs steady" in dom


def test_a_failure_without_a_message_reads_as_it_always_did() -> None:
    from harness.report._html import _failures
    from harness.run._row import ErrorKind, Outcome, Row

    rows = [
        Row("e", "c", "v", "m", 0, Outcome.ERRORED, error=ErrorKind.TIMEOUT),
        Row("e", "c", "v", "m", 1, Outcome.ERRORED, error=ErrorKind.TIMEOUT, error_message="HTTP 408"),
        Row("e", "c", "v", "m", 2, Outcome.PASSED),
    ]
    (failure,) = _failures(rows)
    # the report once read these rows back from results.csv, where a missing message was an empty cell: nan
    assert "<strong>sample 0</strong>: timeout: nan</p>" in failure
    assert "<strong>sample 1</strong>: timeout: HTTP 408</p>" in failure
    assert "<summary>c [v]: 2 of 3 samples failed or errored</summary>" in failure


def test_values_are_escaped_as_jinja2_autoescape_escaped_them() -> None:
    """The page was a jinja2 template with autoescape: markupsafe's entities, for every character it replaces."""
    import random

    from markupsafe import escape

    from harness.report._html import _e

    alphabet = "&<>\"'ab é\n\t;#"
    draw = random.Random(14)
    for text in ["", "&amp;", "<script>", *("".join(draw.choices(alphabet, k=12)) for _ in range(500))]:
        assert _e(text) == str(escape(text)), text
    assert _e(3) == "3" and _e(None) == "None"  # numbers and a missing value as jinja2 printed them


class _Page(HTMLParser):
    """What a browser makes of the page: its elements and its texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.texts: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids += [value or "" for name, value in attrs if name in ("id", "href")]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def test_hostile_names_outputs_and_notes_stay_text() -> None:
    from harness.report._html import render
    from harness.run._row import Outcome, Row

    hostile = '<script>alert("x")</script>'
    rows = [
        Row("e<b>", 'c"&<', "v'", "m", 0, Outcome.FAILED, reasons=hostile, output=f"{hostile} & '{hostile}'"),
        Row("e<b>", 'c"&<', "v'", "m", 1, Outcome.PASSED, output="{}"),
    ]
    table = ("<i>title</i>", ["<th>"], [[hostile]])
    rates = {"json_valid_rate": 0.5, "json_valid_low": 0.1, "json_valid_high": 0.9, "pass_rate": 0.5}
    metric = {"eval": "e<b>", "variant": "v'", "answered": 2, "cost_usd": None, **rates}
    page = _Page()
    page.feed(render(rows, [metric], [], [table], note=hostile))
    page.close()
    assert "script" not in page.tags and "i" not in page.tags and page.tags.count("th") == 3  # <th>, case, v'
    text = "".join(page.texts)
    assert text.count(hostile) == 5  # note, table cell, reasons, twice in the output
    assert "<i>title</i>" in text and f"{hostile} & '{hostile}'" in text
    assert "fail-c\"&<-v'" in page.ids and "#fail-c\"&<-v'" in page.ids  # the grid links to its failure
