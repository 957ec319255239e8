"""The one check registry: checks of a user's own (``@harness.check``, a conftest's hook, ``python:``, packages' entry
points) are looked up, called and reported as the built-ins are; every way one can be wrong is a ``file:line`` problem
before anything is sent.

Expected reasons and verdicts are written from the check functions' own text here, never read back from the code.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.checks import _builtins as checks
from harness.checks import _matching as matching
from harness.checks import _registry as registry
from harness.cli import _main as cli
from harness.errors import InputError
from harness.load import _evals as evals
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI, completion, cycling
from tests.test_inputs import GOOD_CASE, NOWHERE, assert_problem, eval_yaml, line_of, run, write_project


@pytest.fixture(autouse=True)
def _registry_kept() -> Iterator[None]:
    """Each test's registrations are its own."""
    before = registry.snapshot()
    yield
    registry.restore(before)


def results_of(name: str, content: str, arg: Any = None) -> harness.CheckResult:
    (result,) = harness.run_checks([harness.compile_check(name, arg)], {"model": "m"}, completion(content))
    return result


# --- what a check may return ---------------------------------------------------------------------------------------


def test_a_check_returns_a_bool_a_reason_or_a_result_with_a_score() -> None:
    @harness.check("is_upper")
    def is_upper(answer: harness.Answer, request: Any, args: Any) -> bool:
        return answer.content.isupper()

    @harness.check("short")
    def short(answer: harness.Answer, request: Any, args: Any) -> str | bool:
        return True if len(answer.content) <= args["max"] else f"{len(answer.content)} characters"

    @harness.check("graded")
    def graded(answer: harness.Answer, request: Any, args: Any) -> harness.CheckResult:
        score = answer.content.count("!") / 4
        return harness.CheckResult("whatever", score >= 0.5, "few exclamations" if score < 0.5 else "", score)

    assert results_of("is_upper", "HEY") == harness.CheckResult("is_upper", True, "")
    assert results_of("is_upper", "hey") == harness.CheckResult("is_upper", False, "the check returned False")
    assert results_of("short", "hello", {"max": 5}).passed
    assert results_of("short", "hello!", {"max": 5}) == harness.CheckResult("short", False, "6 characters")
    low = results_of("graded", "hi!")
    assert (low.name, low.passed, low.reason, low.score) == ("graded", False, "score 0.25: few exclamations", 0.25)
    high = results_of("graded", "hi!!!")
    assert (high.passed, high.reason) == (True, "score 0.75")


def test_a_check_that_raises_or_returns_nonsense_fails_that_answer_only() -> None:
    @harness.check("raises")
    def raises(answer: harness.Answer, request: Any, args: Any) -> bool:
        raise KeyError("no such field")

    @harness.check("nonsense")
    def nonsense(answer: harness.Answer, request: Any, args: Any) -> Any:
        return 1

    @harness.check("bad_score")
    def bad_score(answer: harness.Answer, request: Any, args: Any) -> harness.CheckResult:
        return harness.CheckResult("bad_score", True, "", args)

    compiled = [harness.compile_check(n, None) for n in ("raises", "nonsense")] + [
        harness.compile_check("bad_score", score) for score in ("high", float("nan"), 2)
    ]
    results = harness.run_checks([*compiled, harness.compile_check("contains", "ok")], {}, completion('{"ok": 1}'))
    assert [(r.name, r.passed, r.reason) for r in results] == [
        ("raises", False, "the check raised KeyError: 'no such field'"),
        ("nonsense", False, "the check returned int: a bool, a reason or a CheckResult"),
        ("bad_score", False, "the check's score is not a number from 0 to 1: 'high'"),
        ("bad_score", False, "the check's score is not a number from 0 to 1: nan"),
        ("bad_score", False, "the check's score is not a number from 0 to 1: 2"),
        ("contains", True, ""),
    ]


def test_a_check_gets_the_request_sent() -> None:
    seen: list[Any] = []

    @harness.check("sees_request")
    def sees_request(answer: harness.Answer, request: Any, args: Any) -> bool:
        seen.append(request)
        return True

    harness.run_checks([harness.compile_check("sees_request", 1)], {"model": "m", "seed": 3}, completion("x"))
    assert seen == [{"model": "m", "seed": 3}]


def test_a_slow_check_keeps_to_the_samples_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching.limit, "__defaults__", (0.3,))  # the sample's time: 0.3 s, not 2

    @harness.check("sleepy")
    def sleepy(answer: harness.Answer, request: Any, args: Any) -> bool:
        time.sleep(30)  # a daemon thread: left to sleep, it holds nothing up
        return True

    started = time.monotonic()
    result = results_of("sleepy", "x")
    assert 0.3 <= time.monotonic() - started < 1.5
    assert (result.passed, result.reason) == (False, matching.TIMED_OUT)


# --- names ---------------------------------------------------------------------------------------------------------


def test_an_unknown_name_says_the_closest_and_the_registered_ones() -> None:
    @harness.check("word_count")
    def word_count(answer: harness.Answer, request: Any, args: Any) -> bool:
        return True

    with pytest.raises(checks.CheckArgError) as info:
        harness.compile_check("word_cout", 3)
    message = str(info.value)
    assert message.startswith("unknown check 'word_cout' — did you mean 'word_count'? (known: json_valid, ")
    assert "judge, python, tool_call, no_tool_call, tool_calls, tool_call_f1, word_count)" in message


def test_a_name_defined_twice_or_a_function_of_the_wrong_shape_is_unusable_and_says_why() -> None:
    def mine(answer: Any, request: Any, args: Any) -> bool:
        return True

    def theirs(answer: Any, request: Any, args: Any) -> bool:
        return False

    def two(answer: Any, request: Any) -> bool:
        return True

    harness.check("contains")(mine)  # a built-in's name
    harness.check("twice")(mine)
    harness.check("twice")(theirs)
    harness.check("again")(mine)
    harness.check("again")(mine)  # the same function again (a module imported twice): one definition
    harness.check("two")(two)
    for name, said in [
        ("contains", "check 'contains' is defined twice: built-in and "),
        ("twice", "check 'twice' is defined twice: "),
        ("two", "must take three arguments (answer, request, args); it takes (answer, request)"),
    ]:
        with pytest.raises(checks.CheckArgError) as info:
            harness.compile_check(name, None)
        assert said in str(info.value)
        assert "test_check_registry.py:" in str(info.value)  # where each definition is
        assert name not in registry.names()
    assert "again" in registry.names()


# --- entry points ----------------------------------------------------------------------------------------------------


def _dist(site: Path, package: str, entry_points: str, module: str) -> None:
    """A package installed as pip would: its module and a dist-info naming its ``promptvcr.checks`` entry points."""
    info = site / f"{package}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[promptvcr.checks]\n{entry_points}\n", encoding="utf-8")
    (site / f"{package}.py").write_text(module, encoding="utf-8")


def test_entry_points_are_loaded_once_at_load_time_and_a_broken_one_is_said_where_it_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    good = (
        "from harness import CheckResult\ndef polite(answer, request, args):\n    return 'please' in answer.content\n"
    )
    _dist(site, "politeness", "polite = politeness:polite", good)
    _dist(site, "brokenpkg", "broken = brokenpkg:nope", "import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(site))
    registry.restore(({k: v for k, v in registry.snapshot()[0].items()}, False))  # as a new process: not loaded yet
    assert results_of("polite", "yes please").passed
    assert not results_of("polite", "no").passed
    with pytest.raises(checks.CheckArgError) as info:
        harness.compile_check("broken", None)
    assert str(info.value) == (
        "check 'broken' comes from the promptvcr.checks entry point broken = brokenpkg:nope of brokenpkg, which fails"
        " to load: ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    )
    sys.modules.pop("politeness", None)


# --- end to end: a project's own checks, recorded and replayed -------------------------------------------------------

CONFTEST = """\
import harness

pytest_plugins = ["harness.plugin"]


@harness.check("shouts")
def shouts(answer, request, args):
    return answer.content.isupper() or "not in capitals"


def pytest_promptvcr_checks(register):
    def words(answer, request, args):
        n = len(answer.content.split())
        return harness.CheckResult("words", n <= args["max"], f"{n} words", score=min(1.0, args["max"] / n))

    register("words", words)
"""

MINE = """\
def mentions_model(answer, request, args):
    return True if request["model"] in answer.content.lower() else f"does not name {request['model']} ({args['why']})"
"""

OWN_CASES = """\
cases:
  - id: loud
    model: fake-model
    messages: [{role: user, content: "case loud"}]
    expect:
      - shouts: true
      - words: {max: 3}
      - python: {function: "checks/mine.py:mentions_model", args: {why: "say who you are"}}
"""


def verdicts(root: Path) -> list[tuple[str, str, str]]:
    """(outcome, failed checks, reasons) of each sample in results.csv, sorted: which sample got which answer is the
    order the concurrent requests reached the server."""
    return sorted((r["outcome"], r["failed_checks"], r["reasons"]) for r in ep.results(root))


def test_a_projects_own_checks_grade_recorded_and_replayed_answers_alike(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    fake_openai.respond = cycling(["I AM FAKE-MODEL", "quiet words from nobody"])
    files = {
        "cases/a.yaml": OWN_CASES.replace("- id: loud", "- id: loud\n    samples: 2"),
        "checks/mine.py": MINE,
        "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"]),
    }
    write_project(pytester.path, files)
    (pytester.path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    recorded = pytester.runpytest("--record-mode", "once", "-p", "no:cacheprovider")
    assert len(fake_openai.chat_requests) == 2, recorded.stdout.str()
    expected = [
        (
            "failed",
            "shouts;words;python:checks/mine.py:mentions_model",
            "shouts: not in capitals | words: score 0.75: 4 words | "
            "python:checks/mine.py:mentions_model: does not name fake-model (say who you are)",
        ),
        ("passed", "", ""),
    ]
    assert verdicts(pytester.path) == expected
    replayed = pytester.runpytest("-p", "no:cacheprovider")
    assert len(fake_openai.chat_requests) == 2  # offline
    assert replayed.ret == pytest.ExitCode.TESTS_FAILED  # the case's min_pass_rate is 1
    assert verdicts(pytester.path) == expected
    assert "shouts" not in registry.names()  # the session's checks went with it


# --- bad input: a file:line problem, nothing sent --------------------------------------------------------------------


def _python_case(function: str) -> str:
    return GOOD_CASE.replace("      - contains: ok\n", f'      - python: {{function: "{function}"}}\n')


# each way a python check can be unusable: (its `function`, the file's text or None for no file, what is said)
UNUSABLE = {
    "no file": ("checks/none.py:fn", None, "no file checks/none.py (a python check's path is relative to the project "),
    "no function": ("checks/mine.py:nope", "def fn(answer, request, args): ...\n", "no function 'nope' (it has: fn)"),
    "import error": ("checks/mine.py:fn", "import no_such_mod\n", "cannot import checks/mine.py: ModuleNotFoundError"),
    "raises": ("checks/mine.py:fn", "x = 1\nraise ValueError('half done')\n", "ValueError: half done (line 2)"),
    "syntax": ("checks/mine.py:fn", "def fn(answer:\n", "cannot import checks/mine.py: SyntaxError: "),
    "shape": ("checks/mine.py:fn", "def fn(answer):\n    return True\n", "checks/mine.py:fn must take three arguments"),
    "not callable": ("checks/mine.py:fn", "fn = 3\n", "checks/mine.py:fn is not a function: 3"),
    "not a .py": ("mine.txt:fn", None, "is not valid here: `<path>.py:<function>`"),
}


@pytest.mark.parametrize(("function", "mine", "said"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_a_python_check_that_cannot_be_used_stops_the_run(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, function: str, mine: str | None, said: str
) -> None:
    case = _python_case(function)
    files = {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])}
    if mine is not None:
        files["checks/mine.py"] = mine
    result = run(pytester, files)
    assert_problem(
        result, fake_openai, f"cases/a.yaml:{line_of(case, 'python:')}", "/cases/0/expect/1/python/function", said
    )


@pytest.mark.parametrize(
    ("conftest", "needle", "pointer", "said"),
    [
        (
            "import harness\n@harness.check('contains')\ndef contains(answer, request, args):\n    return True\n",
            "contains: ok",
            "/cases/0/expect/2/contains",
            ("check 'contains' is defined twice: built-in and ", "conftest.py:3 (contains): rename one"),
        ),
        (
            "def pytest_promptvcr_checks(register):\n    register('loud', lambda answer: True)\n",
            "loud: true",
            "/cases/0/expect/1/loud",
            (
                "check 'loud' (",
                "conftest.py:3 ",
                "must take three arguments (answer, request, args); it takes (answer)",
            ),
        ),
    ],
)
def test_a_conftest_check_that_cannot_be_used_stops_the_run(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, conftest: str, needle: str, pointer: str, said: tuple[str, ...]
) -> None:
    case = GOOD_CASE.replace("      - contains: ok\n", "      - loud: true\n      - contains: ok\n")
    write_project(
        pytester.path, {"cases/a.yaml": case, "evals/e.yaml": eval_yaml(fake_openai.base_url, ["cases/a.yaml"])}
    )
    (pytester.path / "conftest.py").write_text('pytest_plugins = ["harness.plugin"]\n' + conftest, encoding="utf-8")
    result = pytester.runpytest("--record-mode", "once", "-p", "no:cacheprovider")
    assert_problem(result, fake_openai, f"cases/a.yaml:{line_of(case, needle)}", pointer, *said)


def test_an_unknown_name_beside_other_problems_is_said_in_the_same_pass(tmp_path: Path) -> None:
    case = GOOD_CASE.replace("    temperature: 0.2\n", "    temperature: hot\n").replace("contains: ok", "contians: ok")
    ep.init_project(tmp_path)
    (tmp_path / "cases" / "a.yaml").write_text(case, encoding="utf-8")
    (tmp_path / "evals" / "e.yaml").write_text(eval_yaml(NOWHERE, ["cases/a.yaml"]), encoding="utf-8")
    with pytest.raises(InputError) as info:
        evals.load(tmp_path / "evals" / "e.yaml", tmp_path)
    said = {(p.line, p.pointer): p.message for p in info.value.problems}
    assert said[(line_of(case, "temperature"), "/cases/0/temperature")] == 'expected number, got "hot"'
    unknown = said[(line_of(case, "contians"), "/cases/0/expect/1/contians")]
    assert unknown.startswith("unknown check 'contians' — did you mean 'contains'?")


# --- outside pytest: `promptvcr validate` knows the conftest's checks too --------------------------------------------


def test_validate_registers_the_conftests_checks_as_pytest_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"cases/a.yaml": OWN_CASES, "checks/mine.py": MINE, "evals/e.yaml": eval_yaml(NOWHERE, ["cases/a.yaml"])}
    write_project(tmp_path, files)
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate"]) == 0, capsys.readouterr().err
    assert "evals/e.yaml: ok" in capsys.readouterr().out
    (tmp_path / "conftest.py").write_text(CONFTEST.replace("import harness\n", "import harness\nimport nowhere_mod\n"))
    assert cli.main(["validate"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'conftest.py'}:2: cannot import conftest.py: ModuleNotFoundError: " in err, err
    assert "Traceback" not in err
