"""Data tables (`vars_from:`): one case per row of a .csv, .jsonl or .yaml file, end to end through the plugin.

The good tables become pytest items named by the id template (and `-k` picks a row's case); every bad table is a
`file:line` problem in the data file itself — or, for the entry that names it, in the case file — and nothing reaches
the fake server on 127.0.0.1. Expected lines are found in the text written, never typed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.load import _datatables as datatables
from harness.load import _evals as evals
from harness.load import _yamlsrc as yamlsrc
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, Reply, completion

QUIET = ("-p", "no:cacheprovider")
PEOPLE = [{"id": "ada", "name": "Ada", "born": "1815"}, {"id": "alan", "name": "Alan", "born": "1912"}]
TABLES = {
    "csv": "id,name,born\n" + "".join(f"{p['id']},{p['name']},{p['born']}\n" for p in PEOPLE),
    "jsonl": "".join(json.dumps(p) + "\n" for p in PEOPLE),
    "yaml": "".join(f"- {{id: {p['id']}, name: {p['name']}, born: '{p['born']}'}}\n" for p in PEOPLE),
}
CASE = """\
cases:
  - id: "person-{{{{ id }}}}"
    vars_from: {table}
    model: fake-model
    vars: {{greeting: Hello, name: nobody}}
    messages:
      - {{role: user, content: "{{{{ greeting }}}}, when was {{{{ name }}}} born?"}}
    expect:
      - contains: "{{{{ born }}}}"
"""


def _project(root: Path, base_url: str, table: str, text: str, case: str = CASE) -> None:
    ep.init_project(root)
    (root / "cases" / "data").mkdir(parents=True, exist_ok=True)
    (root / "cases" / "data" / table).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    (root / "cases" / "people.yaml").write_text(case.format(table=f"data/{table}"), encoding="utf-8")
    ep.write_eval(root, "people", base_url=base_url, cases=["cases/people.yaml"], variants={"v": {}})


def _answer_born(body: dict[str, object]) -> Reply:
    """Answers 'born in 1815' for Ada, anything else for the others: one row passes, one fails."""
    question = str(body["messages"][-1]["content"])  # type: ignore[index]
    return Reply(body=completion("born in 1815" if "Ada" in question else "no idea"))


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_a_table_makes_one_case_per_row_with_its_id_vars_and_checks(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, kind: str
) -> None:
    _project(pytester.path, fake_openai.base_url, f"people.{kind}", TABLES[kind])
    collected = pytester.runpytest("evals", "--collect-only", "-q", *QUIET)
    items = [line for line in collected.stdout.lines if "::" in line]
    assert items == [f"evals/people.yaml::person-{p['id']}[v]" for p in PEOPLE]

    fake_openai.respond = _answer_born
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # a row's values win over the entry's vars (name), which the rows share otherwise (greeting)
    questions = sorted(r.body["messages"][0]["content"] for r in fake_openai.chat_requests)
    assert questions == sorted(f"Hello, when was {p['name']} born?" for p in PEOPLE)
    rows = {r["case"]: r for r in ep.results(pytester.path)}
    # each row's check expects its own year: Ada's answer has it, Alan's does not
    assert rows["person-ada"]["outcome"] == "passed"
    assert rows["person-alan"]["outcome"] == "failed" and "1912" in rows["person-alan"]["reasons"]
    assert sorted(p.name for p in (pytester.path / "cassettes" / "people" / "v").iterdir()) == [
        "person-ada.yaml",
        "person-alan.yaml",
    ]


def test_k_selects_one_rows_case(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    _project(pytester.path, fake_openai.base_url, "people.csv", TABLES["csv"])
    result = pytester.runpytest("evals", "--record-mode", "once", "-k", "alan", *QUIET)
    result.assert_outcomes(passed=0, failed=1, deselected=1)
    assert [r.body["messages"][0]["content"] for r in fake_openai.chat_requests] == ["Hello, when was Alan born?"]
    assert [r["case"] for r in ep.results(pytester.path)] == ["person-alan"]


def test_csv_rows_keep_the_line_they_start_at(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,text\n\na,"two\nlines"\nb,plain\n', encoding="utf-8")
    rows = datatables.load(path)
    assert [(r.line, r.values) for r in rows] == [
        (3, {"id": "a", "text": "two\nlines"}),
        (5, {"id": "b", "text": "plain"}),
    ]


# ---------------------------------------------------------------------------------------------------- bad input

BAD: dict[str, tuple[str, str | bytes, str, str]] = {
    # name: (table file, its text, the needle of the line cited, words of the message)
    "csv-wrong-count": (
        "t.csv",
        "id,name,born\nada,Ada,1815\nalan,Alan\n",
        "alan,Alan",
        "2 value(s) for the header's 3",
    ),
    "csv-too-many": ("t.csv", "id,name,born\nada,Ada,1815,x\n", "ada,Ada", "4 value(s)"),
    "csv-duplicate-column": ("t.csv", "id,name,name\nada,Ada,A\n", "id,name", "named twice"),
    "csv-nameless-column": ("t.csv", "id,,born\nada,Ada,1815\n", "id,,born", "has no name"),
    "csv-stray-quote": ("t.csv", 'id,name,born\nada,"Ada"x,1815\n', "ada,", "CSV error"),
    "csv-control-character": ("t.csv", "id,name,born\nada,A\x01da,1815\n", "ada,", "control character U+0001"),
    "csv-header-only": ("t.csv", "id,name,born\n", "id,name", "no rows"),
    "not-utf8": ("t.csv", b"id,name,born\nada,Ada,1815\nalan,Al\xe9n,1912\n", "alan", "not UTF-8"),
    "jsonl-bad-line": (
        "t.jsonl",
        '{"id": "ada", "name": "Ada", "born": "1815"}\n{"id": "alan",\n',
        '"alan"',
        "not a JSON",
    ),
    "jsonl-not-an-object": (
        "t.jsonl",
        '{"id": "ada", "name": "Ada", "born": "1815"}\n["alan"]\n',
        '["alan"]',
        "not a list",
    ),
    "jsonl-nan": ("t.jsonl", '{"id": "ada", "name": "Ada", "born": NaN}\n', "ada", "NaN is not a JSON value"),
    "jsonl-duplicate-key": ("t.jsonl", '{"id": "ada", "id": "x", "name": "A", "born": "1"}\n', "ada", "duplicate key"),
    "jsonl-surrogate": ("t.jsonl", '{"id": "ada", "name": "\\ud800", "born": "1"}\n', "ada", "half of a UTF-16 pair"),
    "yaml-not-a-mapping": (
        "t.yaml",
        "- {id: ada, name: Ada, born: '1815'}\n- just text\n",
        "just text",
        "not a string",
    ),
    "yaml-not-a-list": ("t.yaml", "id: ada\n", "id: ada", "a list of mappings"),
    "yaml-strict-rules": ("t.yaml", "- {id: ada, name: Ada, born: 1815-12-10, born: x}\n", "ada", "duplicate key"),
    "duplicate-id": (
        "t.csv",
        "id,name,born\nada,Ada,1815\nada,Ada L.,1815\n",
        "Ada L.",
        "duplicate case id 'person-ada'",
    ),
    "id-not-an-id": ("t.csv", "id,name,born\nada lovelace,Ada,1815\n", "ada lovelace", "the id template makes"),
}


def _line(text: str | bytes, needle: str) -> int:
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return next(i for i, line in enumerate(raw.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_row_is_a_problem_at_its_line_in_the_data_file_and_nothing_is_sent(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, name: str
) -> None:
    table, text, needle, words = BAD[name]
    _project(pytester.path, fake_openai.base_url, table, text)  # type: ignore[arg-type]
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    assert f"cases/data/{table}:{_line(text, needle)}:" in out, out
    assert words in out, out
    assert fake_openai.chat_requests == []


CASE_BAD = {
    "missing-table": ("data/nowhere.csv", "vars_from", "data table not found"),
    "wrong-suffix": ("data/people.txt", "vars_from", "is not valid here: a .csv, .jsonl, .yaml or .yml file"),
    "vars_from-not-a-string": ("[a.csv]", "vars_from", "expected string"),
}


@pytest.mark.parametrize("name", sorted(CASE_BAD))
def test_a_bad_vars_from_is_a_problem_at_its_line_in_the_case_file(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, name: str
) -> None:
    value, key, words = CASE_BAD[name]
    case = CASE.replace("{table}", value)
    _project(pytester.path, fake_openai.base_url, "people.csv", TABLES["csv"], case)
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    line = _line(case.format(), f"{key}:")
    assert f"cases/people.yaml:{line}: at /cases/0/{key} " in out, out
    assert words in out, out
    assert fake_openai.chat_requests == []


def test_a_vars_from_naming_a_directory_says_so(tmp_path: Path) -> None:
    _project(tmp_path, "http://127.0.0.1:9/v1", "people.csv", TABLES["csv"], CASE.replace("{table}", "data/more.csv"))
    (tmp_path / "cases" / "data" / "more.csv").mkdir()
    with pytest.raises(InputError) as info:
        evals.load(tmp_path / "evals" / "people.yaml", tmp_path)
    line = _line(CASE.format(table="x"), "vars_from:")
    assert f"cases/people.yaml:{line}: at /cases/0/vars_from data table a directory, not a data file" in str(info.value)


def test_a_template_a_row_cannot_fill_is_said_once_at_the_template_naming_the_rows(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    case = CASE.replace("{{{{ born }}}}", "{{{{ birthday }}}}")
    _project(pytester.path, fake_openai.base_url, "people.csv", TABLES["csv"], case)
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    line = _line(case.format(table="x"), "contains:")
    assert out.count(f"cases/people.yaml:{line}: at /cases/0/expect/0/contains ") == 1, out
    assert "'birthday' is undefined" in out and "2 of 2 cases: 'person-ada', 'person-alan'" in out
    assert fake_openai.chat_requests == []


def test_a_duplicate_of_a_written_case_is_cited_at_the_row(tmp_path: Path) -> None:
    case = CASE + "  - id: person-alan\n    model: fake-model\n    messages: [{{role: user, content: hi}}]\n"
    _project(tmp_path, "http://127.0.0.1:9/v1", "people.csv", TABLES["csv"], case)
    with pytest.raises(InputError) as info:
        evals.load(tmp_path / "evals" / "people.yaml", tmp_path)
    written = _line(case.format(table="x"), "id: person-alan")
    assert f"cases/people.yaml:{written}: at /cases/1/id duplicate case id 'person-alan' (first at " in str(info.value)
    assert f"data/people.csv:{_line(TABLES['csv'], 'alan')})" in str(info.value)


def test_a_table_larger_than_an_input_file_may_be_is_refused_unread(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    big = "id,name,born\n" + "x,y,1\n" * (yamlsrc.MAX_BYTES // 6 + 1)
    _project(pytester.path, fake_openai.base_url, "people.csv", big)
    result = pytester.runpytest("evals", "--record-mode", "once", *QUIET)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "cases/data/people.csv:1: larger than 10 MiB" in result.stdout.str()
    assert fake_openai.chat_requests == []


def test_a_table_of_more_rows_than_cases_may_come_from_is_refused_at_the_first_too_many(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"id": str(i)}) + "\n" for i in range(datatables.MAX_ROWS + 1)), "utf-8")
    with pytest.raises(InputError) as info:
        datatables.load(path)
    assert f"t.jsonl:{datatables.MAX_ROWS + 1}: at /{datatables.MAX_ROWS} more than" in str(info.value)


def test_jsonl_lines_are_split_at_newlines_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "text": "one\u2028two"}\r\n\n{"id": "b"}\n', encoding="utf-8")
    assert [(r.line, r.values) for r in datatables.load(path)] == [
        (1, {"id": "a", "text": "one\u2028two"}),
        (3, {"id": "b"}),
    ]
