"""The cache of validated files (``.promptvcr-cache/validated/``, harness.load._validated) is only ever a faster read:
a hit loads what a miss loads, an edited file or schema is read and validated again, a corrupt or unwritable cache
is ignored, and a file with a problem is never kept — its errors are found, and cited, every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import InputError
from harness.load import _cases as cases
from harness.load import _evals as evals
from harness.load import _validated as validated
from harness.load import schemas
from tests import evalproject as ep

CASES = """\
defaults:
  model: m
  expect:
    - json_valid: true
cases:
  - id: first
    messages:
      - {role: system, content: 'Answer with JSON: {"n": <number>}.'}
      - {role: user, content: "{{ greeting }}, one"}
    vars: {greeting: Hello}
    expect:
      - json_schema: {type: object, required: [n], properties: {n: {type: integer}}}
  - id: second
    messages: [{role: user, content: two}]
"""


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The schema names each real validation was for (a hit validates nothing)."""
    seen: list[str] = []
    validate = schemas.validate

    def counted(doc: Any, name: str) -> Any:
        seen.append(name)
        return validate(doc, name)

    monkeypatch.setattr(schemas, "validate", counted)
    return seen


def _entries(root: Path) -> list[Path]:
    folder = root / ".promptvcr-cache" / "validated"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _case_file(root: Path, text: str = CASES) -> Path:
    path = root / "cases" / "c.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_hit_loads_what_a_miss_loads_without_validating(tmp_path: Path, validations: list[str]) -> None:
    path = _case_file(tmp_path)
    missed = cases.load(path, tmp_path)
    assert validations == ["case.schema.json"] and len(_entries(tmp_path)) == 1
    hit = cases.load(path, tmp_path)
    assert validations == ["case.schema.json"]  # not validated again
    assert hit == missed
    assert [c.messages for c in hit] == [c.messages for c in missed]  # rendered from the cached data alike
    assert [(c.line, c.pointer, c.origins) for c in hit] == [(c.line, c.pointer, c.origins) for c in missed]
    read = validated.load(path, "case.schema.json", tmp_path)
    assert read.entry is None and read.problems == []  # from the cache
    other = validated.load(path, "eval.schema.json", tmp_path)  # another schema is another entry: validated
    assert other.entry is not None and other.problems != []


def test_an_eval_and_its_case_files_are_kept_and_load_alike(tmp_path: Path, validations: list[str]) -> None:
    ep.init_project(tmp_path)
    case_file = ep.write_cases(tmp_path, "e", [ep.json_case("only")])
    path = ep.write_eval(
        tmp_path, "e", base_url="http://127.0.0.1:9/v1", cases=[case_file], variants={"v": {"model": "m"}}
    )
    first = evals.load(path, tmp_path)
    assert sorted(validations) == ["case.schema.json", "eval.schema.json"] and len(_entries(tmp_path)) == 2
    again = evals.load(path, tmp_path)
    assert len(validations) == 2
    assert again.runs == first.runs and again.variants == first.variants and again.gates == first.gates


def test_an_edited_file_is_read_again(tmp_path: Path, validations: list[str]) -> None:
    path = _case_file(tmp_path)
    cases.load(path, tmp_path)
    _case_file(tmp_path, CASES.replace("content: two", "content: three"))
    (_, second) = cases.load(path, tmp_path)
    assert second.messages == ({"role": "user", "content": "three"},)
    assert len(validations) == 2 and len(_entries(tmp_path)) == 2


def test_an_edited_schema_is_a_new_entry(
    tmp_path: Path, validations: list[str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    path = _case_file(tmp_path)
    cases.load(path, tmp_path)
    shipped = schemas.schema_bytes()
    monkeypatch.setattr(schemas, "schema_bytes", lambda: shipped.replace(b'"type"', b'"type" '))
    validated._rules.cache_clear()  # the rules' digest is computed once a process
    request.addfinalizer(validated._rules.cache_clear)
    cases.load(path, tmp_path)
    assert len(validations) == 2 and len(_entries(tmp_path)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut short
        lambda text: text.replace("second", "secund"),  # still JSON, but not what was written
        lambda text: "not a digest\n" + text.partition("\n")[2],
        lambda text: "",
    ],
)
def test_a_corrupt_entry_is_ignored_and_written_again(tmp_path: Path, validations: list[str], damage: Any) -> None:
    path = _case_file(tmp_path)
    expected = cases.load(path, tmp_path)
    (entry,) = _entries(tmp_path)
    good = entry.read_text(encoding="utf-8")
    entry.write_text(damage(good), encoding="utf-8")
    assert cases.load(path, tmp_path) == expected
    assert [c.id for c in cases.load(path, tmp_path)] == ["first", "second"]
    assert len(validations) == 2  # the damaged one read the file again, the rewritten one was a hit
    assert entry.read_text(encoding="utf-8") == good


def test_an_unwritable_cache_is_no_error(tmp_path: Path, validations: list[str]) -> None:
    path = _case_file(tmp_path)
    (tmp_path / ".promptvcr-cache").write_text("a file where the folder would be", encoding="utf-8")
    assert [c.id for c in cases.load(path, tmp_path)] == ["first", "second"]
    assert [c.id for c in cases.load(path, tmp_path)] == ["first", "second"]
    assert len(validations) == 2


def test_nothing_but_entries_is_left_in_the_folder(tmp_path: Path) -> None:
    path = _case_file(tmp_path)
    cases.load(path, tmp_path)
    (entry,) = _entries(tmp_path)
    assert entry.name.endswith(".json") and not entry.name.startswith(".")  # no temporary file left beside it


def _line(text: str, needle: str) -> int:
    """The last line holding ``needle`` (a duplicate id is cited at its second place)."""
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][-1]


@pytest.mark.parametrize(
    ("text", "at", "cited"),
    [
        (CASES.replace("id: second", "id: second\n    samples: many"), "samples: many", "/cases/1/samples"),
        (CASES.replace("json_valid: true", "json_valid: true\n    - nosuch: 1"), "nosuch", "/defaults/expect/1/nosuch"),
        (CASES.replace("{{ greeting }}", "{{ nobody }}"), "nobody", "/cases/0/messages/1/content"),
        (CASES.replace("id: second", "id: first"), "id: first", "/cases/1/id duplicate case id 'first'"),
    ],
)
def test_a_file_with_a_problem_is_never_kept_and_cited_every_time(
    tmp_path: Path, validations: list[str], text: str, at: str, cited: str
) -> None:
    path = _case_file(tmp_path, text)
    cited = f"c.yaml:{_line(text, at)}: at {cited}"
    said = []
    for _ in range(2):
        with pytest.raises(InputError) as info:
            cases.load(path, tmp_path)
        said.append(str(info.value))
    assert said[0] == said[1] and cited in said[0], said[0]
    assert len(validations) == 2 and _entries(tmp_path) == []
