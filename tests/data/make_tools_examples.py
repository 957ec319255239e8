"""Make the committed function-calling example: cases/tools.yaml and its cassettes in cassettes/tools/recorded/,
from real recorded OpenAI traffic in the shared corpus (../shared/corpus, see its README) — no local model here can
call tools (see the README's "Tool calls" section), so the answers are OpenAI's own, recorded by the public
repositories each case names.

Each case is its line's request as a case file holds it (model, messages, tools, tool_choice, parallel_tool_calls,
response_format; the recorded ``stream: false`` left out, as promptvcr does not send it), with the checks written
here; its cassette holds that request and the line's response body verbatim, labelled with its source in an
``x-promptvcr-source`` header.

    python tests/data/make_tools_examples.py [CORPUS_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SOURCE_HEADER = "x-promptvcr-source"
HEADER = """\
# yaml-language-server: $schema=../harness/load/schemas/case.schema.json
# Function calling, reasoning and a refusal, on RECORDED OPENAI TRAFFIC: each case is a request that a public
# repository recorded against api.openai.com (named in its description: repository, cassette path, commit), and its
# cassette (cassettes/tools/recorded/) holds OpenAI's real answer. Made by tests/data/make_tools_examples.py from
# ../shared/corpus; re-recording them needs an OpenAI key (`make record EVAL=tools`).
"""
KEYS = ("model", "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "verbosity")

# (case id, the line's interaction_sha256 prefix, what the case shows, its checks)
CASES: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    (
        "weather-paris",
        "913fd3e282d2",
        "a tool with a required argument: get_weather must be called with city Paris",
        [
            {"tool_call": {"name": "get_weather", "arguments": {"path": "/city", "equals": "Paris"}}},
            {"tool_calls": {"count": 1}},
            {"finish_reason": "tool_calls"},
        ],
    ),
    (
        "no-tool-needed",
        "0b65a49f99e0",
        "a tool is offered but not needed: the model answers in text",
        [
            {"no_tool_call": True},
            {"contains": "4"},
        ],
    ),
    (
        "parallel-math",
        "e77e9c38d9b3",
        "parallel calls: multiply(3, 12) and add(11, 49) in one answer",
        [
            {"tool_calls": {"count": 2}},
            {
                "tool_call": {
                    "name": "multiply",
                    "arguments": {
                        "json_schema": {"properties": {"a": {"const": 3}, "b": {"const": 12}}, "required": ["a", "b"]}
                    },
                }
            },
            {"tool_call": {"name": "add", "arguments": {"path": "/b", "equals": 49}}},
            {"tool_call_f1": {"expected": ["add", "multiply"]}},
        ],
    ),
    (
        "after-the-tool-result",
        "9da7777de19b",
        "an agent transcript: the tool answered, the model now replies",
        [
            {"no_tool_call": True},
            {"contains": {"value": "sunny", "ignore_case": True}},
        ],
    ),
    (
        "reasoning-arithmetic",
        "0f8011591808",
        "a reasoning model: 64 of its 74 completion tokens are reasoning",
        [
            {"equals": "4"},
        ],
    ),
    (
        "refuses-harmful-request",
        "8ea4dd3dd488",
        "a refusal under structured outputs: message.refusal, no JSON",
        [
            {"refusal": True},
        ],
    ),
]


def _case(case_id: str, line: dict[str, Any], what: str, expect: list[dict[str, Any]]) -> dict[str, Any]:
    request = line["request"]["body"]
    where = f"{line['source_repo']} {line['source_path']} @ {line['source_commit']}"
    case: dict[str, Any] = {"id": case_id, "description": f"{what}. Recorded OpenAI traffic: {where}"}
    case.update({k: request[k] for k in KEYS if k in request})
    case["messages"] = request["messages"]
    assert all("{{" not in str(m.get("content")) and "{%" not in str(m.get("content")) for m in case["messages"])
    case["expect"] = expect
    return case


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "corpus"
    sys.path.insert(0, str(REPO))
    from harness.load import _evals as evals
    from harness.record import _cassettes as cassettes
    from tests import corpus_tools as ct

    wanted = {prefix for _, prefix, _, _ in CASES}
    lines = {
        x["interaction_sha256"][:12]: x
        for x in ct.read(corpus / "openai_real_traffic.jsonl.gz")
        if x["interaction_sha256"][:12] in wanted
    }
    cases = [_case(case_id, lines[prefix], what, expect) for case_id, prefix, what, expect in CASES]
    text = HEADER + yaml.safe_dump({"cases": cases}, sort_keys=False, allow_unicode=True, width=120)
    (REPO / "cases" / "tools.yaml").write_text(text, encoding="utf-8")
    ev = evals.load(REPO / "evals" / "tools.yaml", REPO)
    for run in ev.runs:
        prefix = next(p for c, p, _, _ in CASES if c == run.case.id)
        line = lines[prefix]
        recorded = ct.interaction(run.body, line)
        recorded["request"]["uri"] = "https://api.openai.com/v1/chat/completions"
        where = f"{line['source_path']} @ {line['source_commit']}"
        source = f"recorded OpenAI traffic from github.com/{line['source_repo']} ({where})"
        recorded["response"]["headers"][SOURCE_HEADER] = [source]
        cassettes.save(cassettes.cassette_path(REPO / "cassettes", ev.name, run.variant.name, run.case.id), [recorded])
    print(f"cases/tools.yaml: {len(cases)} cases; cassettes in cassettes/{ev.name}/")


if __name__ == "__main__":
    main()
