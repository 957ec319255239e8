"""Bad inputs, end to end: every kind of broken case or eval file stops the pytest run before any request.

Each test writes a small project (``evals/``, ``cases/``, a conftest loading ``harness.plugin``) whose endpoint is
the ``fake_openai`` server on 127.0.0.1, and runs pytest in it with ``--record-mode once``: had validation let the
run through, the requests would reach the fake server and be counted. ``test_valid_project_reaches_the_server`` is
the control that shows they would. Expected line numbers are computed from the YAML text written, never typed in.

Tests marked ``xfail(strict=True)`` assert the correct behaviour where the product is wrong today (see their
reasons). Those about the exact location of a problem call ``harness.load._evals.load`` directly: the plugin prints that
InputError's text unchanged (the end-to-end tests show it), and each pytest run in-process costs about half a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import _main as cli
from harness.errors import InputError
from harness.load import _evals as evals
from tests.fakeserver import FakeOpenAI, cycling

# An endpoint nothing listens on, for tests that are about a message rather than about what is sent.
NOWHERE = "http://127.0.0.1:9/v1"

# A valid case file; each bad-input test changes one thing in it (or writes its own).
GOOD_CASE = """\
cases:
  - id: greet
    model: fake-model
    temperature: 0.2
    vars: {name: Ada}
    messages:
      - role: user
        content: Say hello to {{ name }} in JSON.
    expect:
      - json_valid: true
      - contains: ok
"""


def eval_yaml(base_url: str, case_files: list[str], *, name: str = "e") -> str:
    """An eval file on ``base_url``, one variant ``v``, one gate, the given case files in block style."""
    listed = "".join(f"  - {f}\n" for f in case_files)
    return (
        f"name: {name}\ncases:\n{listed}"
        f'endpoint: {{base_url: "{base_url}"}}\n'
        "variants:\n  v: {max_tokens: 50}\n"
        "gates:\n  - {metric: pass_rate, op: '>=', value: 0.5}\n"
    )


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of ``text`` containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} is not in the text {nth} time(s)"
    return hits[nth - 1]


def write_project(root: Path, files: dict[str, str]) -> None:
    (root / "conftest.py").write_text('pytest_plugins = ["harness.plugin"]\n', encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # pins the rootdir to the project
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def run(pytester: pytest.Pytester, files: dict[str, str]) -> pytest.RunResult:
    write_project(pytester.path, files)
    return pytester.runpytest("--record-mode", "once", "-p", "no:cacheprovider")


def load_problems(root: Path, files: dict[str, str]) -> str:
    """The InputError text ``evals.load`` raises for ``evals/e.yaml`` of this project (what the plugin prints)."""
    write_project(root, files)
    with pytest.raises(InputError) as info:
        evals.load(root / "evals" / "e.yaml", root)
    return str(info.value)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def problem_line(out: str, where: str) -> str:
    """The one output line that cites ``where`` (``cases/a.yaml:7``)."""
    found = [line for line in out.splitlines() if f"{where}:" in line]
    assert len(found) == 1, f"expected one line citing {where}, got {found!r} in:\n{out}"
    return found[0]


def assert_stopped(result: pytest.RunResult, fake: FakeOpenAI, out: str) -> None:
    """The run stopped at collection with a readable message and sent nothing."""
    assert "Traceback" not in out
    assert "no request was sent" in out
    assert len(fake.chat_requests) == 0
    assert fake.received == []
    assert result.ret == pytest.ExitCode.INTERRUPTED


def assert_cited(out: str, where: str, pointer: str | None, *messages: str) -> str:
    """``where`` (file:line) is cited on one line, with ``pointer`` (None: no pointer) and every message part."""
    line = problem_line(out, where)
    if pointer is None:
        assert " at /" not in line, line
    else:
        assert f" at {pointer} " in line, line
    for message in messages:
        assert message in line, line
    return line


def assert_problem(result: pytest.RunResult, fake: FakeOpenAI, where: str, pointer: str | None, *messages: str) -> str:
    """The run stopped, sent nothing, and cited ``where`` with ``pointer`` and ``messages``."""
    out = output(result)
    line = assert_cited(out, where, pointer, *messages)
    assert_stopped(result, fake, out)
    return line


# --- the control: the same project without the defect sends its request ------------------------------------------


def test_valid_project_reaches_the_server(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    result = run(
        pytester, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])}
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert len(fake_openai.chat_requests) == 1
    body = fake_openai.chat_requests[0].body
    assert body["messages"] == [{"role": "user", "content": "Say hello to Ada in JSON."}]
    assert (pytester.path / "cassettes" / "e" / "v" / "greet.yaml").is_file()


# --- case files ------------------------------------------------------------------------------------------------------


def test_yaml_syntax_error(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    case = GOOD_CASE.replace("content: Say hello to {{ name }} in JSON.", "content: Say: hello")
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    line = line_of(case, "content: Say: hello")
    assert_problem(
        result, fake_openai, f"cases/a.yaml:{line}", None, "YAML syntax error", "mapping values are not allowed here"
    )


def test_yaml_unterminated_quote_cites_where_it_starts(tmp_path: Path) -> None:
    case = GOOD_CASE.replace("content: Say hello to {{ name }} in JSON.", 'content: "Say hello')
    out = load_problems(tmp_path, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])})
    assert "YAML syntax error" in out
    opened = line_of(case, 'content: "Say hello')
    cited = [int(n) for n in re.findall(r"cases/a\.yaml:(\d+):", out)]
    assert cited, out
    assert all(n <= len(case.splitlines()) for n in cited), f"a line past the end of the file is cited: {cited}"
    assert opened in cited or f"line {opened}" in out, out


def test_unknown_key_in_case(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    case = GOOD_CASE.replace("    temperature: 0.2\n", "    temperature: 0.2\n    tempreature: 0.2\n")
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    line = assert_problem(
        result,
        fake_openai,
        f"cases/a.yaml:{line_of(case, 'tempreature')}",
        "/cases/0/tempreature",
        "unknown key 'tempreature' (allowed: ",
    )
    assert "temperature" in line.split("(allowed: ")[1]  # the hint lists the key that was meant


def test_unknown_check_name(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    case = GOOD_CASE.replace("      - contains: ok\n", "      - jsonvalid: true\n")
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    assert_problem(
        result,
        fake_openai,
        f"cases/a.yaml:{line_of(case, 'jsonvalid')}",
        "/cases/0/expect/1/jsonvalid",
        "unknown check 'jsonvalid' — did you mean 'json_valid'?",
        "(known: json_valid, json_schema, contains, not_contains, regex, equals, max_chars, finish_reason, refusal, "
        "judge, python, tool_call, no_tool_call, tool_calls, tool_call_f1)",
    )


def test_check_problems_say_check(tmp_path: Path) -> None:
    bad = ["- jsonvalid: true", "- {}", "- {json_valid: true, contains: ok}"]
    case = GOOD_CASE.replace("      - contains: ok\n", "".join(f"      {b}\n" for b in bad))
    out = load_problems(tmp_path, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])})
    expected = [
        ("/cases/0/expect/1/jsonvalid", "unknown check 'jsonvalid' — did you mean 'json_valid'? (known: json_valid, "),
        ("/cases/0/expect/2", "a check is a mapping with exactly one key"),
        ("/cases/0/expect/3", "a check is a mapping with exactly one key"),
    ]
    for check, (pointer, message) in zip(bad, expected, strict=True):
        assert_cited(out, f"cases/a.yaml:{line_of(case, check)}", pointer, message)


def test_wrong_type(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    case = GOOD_CASE.replace("    temperature: 0.2\n", '    temperature: "hot"\n    samples: "many"\n') + (
        "  - id: second\n"
        "    model: fake-model\n"
        "    temperature: 3\n"
        "    messages: [{role: user, content: Hi.}]\n"
        "    expect:\n"
        "      - max_chars: lots\n"
    )
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    out = output(result)
    assert "4 problems in the input files" in out
    for needle, pointer, message in [
        ('temperature: "hot"', "/cases/0/temperature", 'expected number, got "hot"'),
        ('samples: "many"', "/cases/0/samples", 'expected integer, got "many"'),
        ("temperature: 3", "/cases/1/temperature", "3 is greater than the maximum of 2"),
        ("max_chars: lots", "/cases/1/expect/0/max_chars", '"lots" is not allowed here'),
    ]:
        line = problem_line(out, f"cases/a.yaml:{line_of(case, needle)}")
        assert f" at {pointer} " in line, line
        assert message in line, line
    assert_stopped(result, fake_openai, out)


def test_invalid_json_schema_in_check(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    check = (
        "      - json_schema:\n"
        "          type: object\n"
        "          properties:\n"
        "            joke:\n"
        "              type: 12\n"
    )
    case = GOOD_CASE.replace("      - contains: ok\n", check)
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    assert_problem(
        result,
        fake_openai,
        f"cases/a.yaml:{line_of(case, 'type: 12')}",
        "/cases/0/expect/1/json_schema/properties/joke/type",
        "invalid JSON Schema: 12 is not valid",
    )


def test_json_schema_with_dangling_ref(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    check = (
        "      - json_schema:\n"
        "          $defs: {joke: {type: string}}\n"
        "          properties:\n"
        "            joke: {$ref: '#/$defs/jokes'}\n"
    )
    case = GOOD_CASE.replace("      - contains: ok\n", check)
    fake_openai.respond = cycling(['{"joke": "x"}'])  # an answer that reaches the $ref, as a real one would
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    assert_problem(
        result,
        fake_openai,
        f"cases/a.yaml:{line_of(case, '#/$defs/jokes')}",
        "/cases/0/expect/1/json_schema/properties/joke/$ref",
        "#/$defs/jokes",
    )


DEFAULTS_CASE = (
    "defaults:\n"
    "  model: fake-model\n"
    "  messages:\n"
    "    - role: system\n"
    "      content: You are terse.\n"
    "    - role: user\n"
    "      content: Greet {{ name }}.\n"
    "cases:\n"
    "  - id: with-name\n"
    "    vars: {name: Ada}\n"
    "  - id: without-name\n"
    "    vars: {nom: Ada}\n"
)


def test_undefined_template_variable(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    case = GOOD_CASE.replace("Say hello to {{ name }} in JSON.", "Say hello to {{ nope }} in JSON.")
    files = {
        "cases/a.yaml": case,
        "cases/b.yaml": DEFAULTS_CASE,
        "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml", "cases/b.yaml"]),
    }
    result = run(pytester, files)
    out = output(result)
    line = problem_line(out, f"cases/a.yaml:{line_of(case, '{{ nope }}')}")
    assert " at /cases/0/messages/0/content undefined template variable: 'nope' is undefined (vars: name)" in line
    # a template in `defaults:` is cited where it is written, with the case whose vars lack the name
    line = problem_line(out, f"cases/b.yaml:{line_of(DEFAULTS_CASE, '{{ name }}')}")
    assert " at /defaults/messages/1/content " in line, line
    assert "'name' is undefined (vars: nom) [case 'without-name']" in line
    assert "[case 'with-name']" not in out
    assert_stopped(result, fake_openai, out)


def test_duplicate_case_id_in_one_file(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    case = GOOD_CASE + "  - id: greet\n    model: fake-model\n    messages: [{role: user, content: Hi.}]\n"
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    first, second = line_of(case, "id: greet"), line_of(case, "id: greet", 2)
    assert_problem(
        result,
        fake_openai,
        f"cases/a.yaml:{second}",
        "/cases/1/id",
        f"duplicate case id 'greet' (first at line {first})",
    )


SECOND_FILE = (
    "cases:\n"
    "  - id: other\n"
    "    model: fake-model\n"
    "    messages: [{role: user, content: Hi.}]\n"
    "  - id: greet\n"
    "    model: fake-model\n"
    "    messages: [{role: user, content: Hello.}]\n"
)


def test_duplicate_case_id_across_files(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    files = {
        "cases/a.yaml": GOOD_CASE,
        "cases/b.yaml": SECOND_FILE,
        "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml", "cases/b.yaml"]),
    }
    result = run(pytester, files)
    out = output(result)
    line = problem_line(out, f"cases/b.yaml:{line_of(SECOND_FILE, 'id: greet')}")
    assert "duplicate case id 'greet' in eval" in line
    assert f"cases/a.yaml:{line_of(GOOD_CASE, 'id: greet')})" in line  # where the first one is
    assert_stopped(result, fake_openai, out)


def test_duplicate_case_id_across_files_cites_the_pointer(tmp_path: Path) -> None:
    files = {
        "cases/a.yaml": GOOD_CASE,
        "cases/b.yaml": SECOND_FILE,
        "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml", "cases/b.yaml"]),
    }
    out = load_problems(tmp_path, files)
    where = f"cases/b.yaml:{line_of(SECOND_FILE, 'id: greet')}"
    assert_cited(out, where, "/cases/1/id", "duplicate case id 'greet' in eval")


def test_bad_regex(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    checks = "      - regex: '(short'\n      - regex:\n          path: /joke\n          pattern: '(long'\n"
    case = GOOD_CASE.replace("      - contains: ok\n", checks)
    result = run(pytester, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])})
    out = output(result)
    for needle, pointer in [("(short", "/cases/0/expect/1/regex"), ("(long", "/cases/0/expect/2/regex/pattern")]:
        line = problem_line(out, f"cases/a.yaml:{line_of(case, needle)}")
        assert f" at {pointer} invalid regular expression '{needle}': missing ), unterminated subpattern" in line
    assert_stopped(result, fake_openai, out)


def test_bad_regex_long_form_without_path(tmp_path: Path) -> None:
    check = "      - regex:\n          ignore_case: true\n          pattern: '(unclosed'\n"
    case = GOOD_CASE.replace("      - contains: ok\n", check)
    out = load_problems(tmp_path, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])})
    where = f"cases/a.yaml:{line_of(case, '(unclosed')}"
    assert_cited(out, where, "/cases/0/expect/1/regex/pattern", "invalid regular expression '(unclosed'")


# --- eval files ------------------------------------------------------------------------------------------------------


def test_unknown_variant_key(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ev = eval_yaml(fake_openai.base_url, ["cases/a.yaml"]).replace(
        "  v: {max_tokens: 50}\n", "  v:\n    max_tokens: 50\n    temprature: 0.1\n"
    )
    result = run(pytester, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": ev})
    assert_problem(
        result,
        fake_openai,
        f"evals/e.yaml:{line_of(ev, 'temprature')}",
        "/variants/v/temprature",
        "unknown key 'temprature' (allowed: ",
    )


def test_gate_names_a_missing_variant(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ev = eval_yaml(fake_openai.base_url, ["cases/a.yaml"]).replace("value: 0.5}", "value: 0.5, variant: nope}")
    result = run(pytester, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": ev})
    line = problem_line(output(result), f"evals/e.yaml:{line_of(ev, 'variant: nope')}")
    assert " at /gates/0" in line
    assert "gate names variant 'nope', which this eval does not have" in line
    assert_stopped(result, fake_openai, output(result))


def test_gate_names_a_missing_variant_cites_the_name(tmp_path: Path) -> None:
    gate = "  - metric: pass_rate\n    op: '>='\n    value: 0.5\n    variants: [v, nope]\n"
    ev = eval_yaml(NOWHERE, ["cases/a.yaml"]).replace("  - {metric: pass_rate, op: '>=', value: 0.5}\n", gate)
    out = load_problems(tmp_path, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": ev})
    where = f"evals/e.yaml:{line_of(ev, 'variants: [v, nope]')}"
    assert_cited(out, where, "/gates/0/variants/1", "gate names variant 'nope'")


def test_from_expectation_without_a_schema_cites_the_variant(tmp_path: Path) -> None:
    # the variant asks for the case's schema, and the case has none: the variant's line is the place to fix
    ev = eval_yaml(NOWHERE, ["cases/a.yaml"]).replace(
        "  v: {max_tokens: 50}\n", "  v:\n    max_tokens: 50\n    response_format: from_expectation\n"
    )
    out = load_problems(tmp_path, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": ev})
    where = f"evals/e.yaml:{line_of(ev, 'response_format: from_expectation')}"
    assert_cited(out, where, "/variants/v/response_format", "case 'greet' has no json_schema check")


def test_from_expectation_in_the_case_without_a_schema_cites_the_case(tmp_path: Path) -> None:
    case = GOOD_CASE.replace("    temperature: 0.2\n", "    temperature: 0.2\n    response_format: from_expectation\n")
    out = load_problems(tmp_path, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])})
    where = f"cases/a.yaml:{line_of(case, 'response_format: from_expectation')}"
    assert_cited(out, where, "/cases/0/response_format", "case 'greet' has no json_schema check")


def test_case_file_listed_twice_cites_the_eval_entry(tmp_path: Path) -> None:
    ev = eval_yaml(NOWHERE, ["cases/a.yaml", "cases/a.yaml"])
    out = load_problems(tmp_path, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": ev})
    where = f"evals/e.yaml:{line_of(ev, 'cases/a.yaml', 2)}"
    assert_cited(out, where, "/cases/1", "cases/a.yaml")
    assert "duplicate case id" not in out, out


def test_missing_case_file(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    ev = eval_yaml(fake_openai.base_url, ["cases/a.yaml", "cases/nope.yaml"])
    result = run(pytester, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": ev})
    line = assert_problem(
        result, fake_openai, f"evals/e.yaml:{line_of(ev, 'cases/nope.yaml')}", "/cases/1", "case file not found: "
    )
    assert str(pytester.path / "cases" / "nope.yaml") in line


def test_one_broken_eval_stops_the_valid_one_too(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    # the valid eval is collected first, so its items exist when the broken one fails to collect
    files = {
        "cases/a.yaml": GOOD_CASE,
        "cases/bad.yaml": GOOD_CASE.replace("id: greet", "id: broken").replace("temperature:", "tempreature:"),
        "evals/a_good.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"], name="good"),
        "evals/b_bad.yaml": eval_yaml(fake_openai.base_url, ["cases/bad.yaml"], name="bad"),
    }
    result = run(pytester, files)
    out = output(result)
    assert "/cases/0/tempreature" in problem_line(out, f"cases/bad.yaml:{line_of(files['cases/bad.yaml'], 'tempr')}")
    assert_stopped(result, fake_openai, out)
    assert not (pytester.path / "cassettes").exists()


# --- promptvcr validate --------------------------------------------------------------------------------------------
# `validate` builds no client at all.


def test_validate_reports_problems_and_returns_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = GOOD_CASE.replace("      - contains: ok\n", "      - json_schema: {type: 12}\n")
    write_project(tmp_path, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate", "evals/e.yaml"]) == 2
    captured = capsys.readouterr()
    line = problem_line(captured.err, f"cases/a.yaml:{line_of(case, 'type: 12')}")
    assert " at /cases/0/expect/1/json_schema/type invalid JSON Schema" in line
    assert "Traceback" not in captured.err
    assert ": ok" not in captured.out


def test_validate_says_ok_and_returns_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, {"cases/a.yaml": GOOD_CASE, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate", "evals/e.yaml"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "evals/e.yaml: ok — eval 'e', 1 case × variant items, 1 calls" in captured.out


def test_validate_checks_every_eval_and_fails_if_one_is_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(
        tmp_path,
        {
            "cases/a.yaml": GOOD_CASE,
            "evals/good.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"], name="good"),
            "evals/bad.yaml": eval_yaml(NOWHERE, ["cases/missing.yaml"], name="bad"),
        },
    )
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate"]) == 2
    captured = capsys.readouterr()
    assert "good.yaml: ok" in captured.out
    assert "case file not found" in captured.err
    assert "bad.yaml: ok" not in captured.out


def test_two_evals_with_one_name_stop_the_run(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    # they would write the same cassettes and the same report rows
    files = {
        "cases/a.yaml": GOOD_CASE,
        "evals/first.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"], name="same"),
        "evals/second.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"], name="same"),
    }
    result = run(pytester, files)
    out = output(result)
    assert "eval name 'same' is also the name of" in out and "rename one" in out
    assert "Traceback" not in out
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert fake_openai.received == []
