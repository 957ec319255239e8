"""A conversation and a data table recorded against the real local SmolLM2-135M-Instruct, then replayed offline.

Marked ``live``: `make test-live` runs it (`.ci/run` starts `promptvcr serve-local` and passes PROMPTVCR_LOCAL_URL;
without it the plugin starts one itself). Small for CI's two cores: two rows × one sample × two turns, 24 tokens.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.live

MODEL = "smollm2-135m-instruct"


def _rows(project: Path) -> list[dict[str, str]]:
    with (project / "reports" / "latest" / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_table_of_conversations_records_against_the_local_model_and_replays_identically(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "people.csv").write_text("name,city\nAda,Lisbon\nOmar,Cairo\n", encoding="utf-8")
    (pytester.path / "talk.yaml").write_text(
        textwrap.dedent(f"""\
            defaults: {{model: {MODEL}, temperature: 0.7, max_tokens: 24}}
            cases:
              - id: "hello-{{{{ name | lower }}}}"
                vars_from: data/people.csv
                messages: [{{role: system, content: Answer in one short sentence.}}]
                turns: ["I am {{{{ name }}}} from {{{{ city }}}}.", "Where am I from?"]
                expect_each: [{{max_chars: 400}}]
        """),
        encoding="utf-8",
    )
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "talk.yaml").write_text(
        f"name: talk\ncases: [talk.yaml]\nendpoint: local\nvariants: {{v: {{model: {MODEL}}}}}\n", encoding="utf-8"
    )
    recorded = pytester.runpytest("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    assert "promptvcr summary" in recorded.stdout.str(), recorded.stdout.str()
    first = _rows(pytester.path)
    assert [r["case"] for r in first] == ["hello-ada", "hello-omar"]
    assert all(r["outcome"] != "errored" and r["replayed"] == "False" for r in first)
    for row in first:
        path = pytester.path / "cassettes" / "talk" / "v" / f"{row['case']}.yaml"
        interactions = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        assert len(interactions) == 2
        requests = [json.loads(i["request"]["body"]) for i in interactions]
        answers = [json.loads(i["response"]["body"]["string"]) for i in interactions]
        turn_one = next(i for i, r in enumerate(requests) if len(r["messages"]) == 2)
        turn_two = 1 - turn_one
        # the second request carries the model's own first answer, as the local server gave it
        said = answers[turn_one]["choices"][0]["message"]["content"]
        assert requests[turn_two]["messages"][2] == {"role": "assistant", "content": said}
        assert row["output"] == answers[turn_two]["choices"][0]["message"]["content"]
        assert int(row["completion_tokens"]) == sum(a["usage"]["completion_tokens"] for a in answers)
    replayed = pytester.runpytest("evals", "-p", "no:cacheprovider")
    assert "promptvcr summary" in replayed.stdout.str()
    again = _rows(pytester.path)
    assert {r["replayed"] for r in again} == {"True"}
    assert [{k: v for k, v in r.items() if k != "replayed"} for r in again] == [
        {k: v for k, v in r.items() if k != "replayed"} for r in first
    ]
