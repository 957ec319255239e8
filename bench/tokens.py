"""How exactly harness.tokens predicts billed prompt tokens, measured on recorded real OpenAI traffic.

    .venv/bin/python bench/tokens.py [--misses N]

Reads the shared corpus (``/work/shared/corpus/openai_real_traffic.jsonl.gz``, or ``../shared/corpus/…`` next to the
repository) and prints the exact-match rate per category and per model family, with the distribution of the misses
(actual − predicted). Lines with image/audio/file inputs, lines whose recorder rewrote the prompt's timestamp, and lines
without usage are left out. Each line is counted for the snapshot that answered it (the response's model) when the
registry knows it, else for the requested model: an alias such as gpt-3.5-turbo pointed at different snapshots over
time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import models, tokens  # noqa: E402

CORPUS_NAME = "corpus/openai_real_traffic.jsonl.gz"
CORPUS_ROOTS = (Path("/work/shared"), REPO.parent / "shared")
MEDIA = {"image_input", "audio_input", "file_input"}
NORMALIZED = "request_timestamp_normalized_by_recorder"
CATEGORIES = ("plain", "names", "content_parts", "tools", "json_schema", "reasoning")
FAMILIES = (
    ("gpt-3.5", ("gpt-3.5",)),
    ("gpt-4-turbo", ("gpt-4-turbo", "gpt-4-0125", "gpt-4-1106", "gpt-4-vision")),
    ("gpt-4.1", ("gpt-4.1",)),
    ("gpt-4.5", ("gpt-4.5",)),
    ("gpt-4o", ("gpt-4o", "chatgpt-4o")),
    ("gpt-4", ("gpt-4",)),
    ("gpt-5", ("gpt-5",)),
    ("o1", ("o1",)),
    ("o3", ("o3",)),
    ("o4", ("o4",)),
)


@dataclass(frozen=True)
class Line:
    body: dict[str, Any]
    model: str  # the id counted for: the answering snapshot when known, else the requested model
    usage: dict[str, Any]
    category: str
    family: str
    source: str


def corpus_path() -> Path | None:
    for root in CORPUS_ROOTS:
        if (root / CORPUS_NAME).is_file():
            return root / CORPUS_NAME
    return None


def family(model: str) -> str:
    return next((name for name, prefixes in FAMILIES if model.startswith(prefixes)), "other")


def category(body: dict[str, Any], model: str) -> str:
    """One category per line, the most specific first: what the server adds beyond the messages decides."""
    messages = body.get("messages") or []
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        return "json_schema"
    history_tools = any(
        m.get("tool_calls") or m.get("function_call") or m.get("role") in ("tool", "function") for m in messages
    )
    if body.get("tools") or body.get("functions") or history_tools:
        return "tools"
    if any(m.get("name") for m in messages):
        return "names"
    if any(isinstance(m.get("content"), list) for m in messages):
        return "content_parts"
    if family(model) in ("gpt-5", "o1", "o3", "o4"):
        return "reasoning"
    return "plain"


def read_lines(path: Path) -> Iterator[Line]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for raw in f:
            row = json.loads(raw)
            usage = row.get("usage") or {}
            if MEDIA & set(row.get("features") or []) or NORMALIZED in (row.get("caveats") or []):
                continue
            if usage.get("prompt_tokens") is None:
                continue
            body = row["request"]["body"]
            model = row["response_model"] if models.lookup(row.get("response_model")) else row["model"]
            yield Line(body, model, usage, category(body, model), family(model), row["source_repo"])


@dataclass(frozen=True)
class Result:
    line: Line
    delta: int | None  # actual − predicted; None when not counted
    skipped: str = ""  # why it was not counted


def evaluate(lines: list[Line]) -> list[Result]:
    """Each line with actual − predicted prompt tokens, or why it could not be counted."""
    out: list[Result] = []
    for line in lines:
        try:
            predicted = tokens.prompt_tokens(line.body, model=line.model)
        except tokens.UnknownModelError:
            out.append(Result(line, None, f"model {line.model} not in the registry"))
            continue
        except tokens.NotCountableError as exc:
            out.append(Result(line, None, str(exc)))
            continue
        out.append(Result(line, int(line.usage["prompt_tokens"]) - predicted))
    return out


def rates(results: list[Result], key: str) -> dict[str, tuple[int, int, Counter[int]]]:
    """key value → (exact, counted, histogram of the misses' deltas)."""
    table: dict[str, tuple[int, int, Counter[int]]] = {}
    groups: dict[str, list[int]] = defaultdict(list)
    for result in results:
        if result.delta is not None:
            groups[getattr(result.line, key)].append(result.delta)
    for name, deltas in groups.items():
        misses = Counter(d for d in deltas if d != 0)
        table[name] = (len(deltas) - sum(misses.values()), len(deltas), misses)
    return table


def _print_table(title: str, table: dict[str, tuple[int, int, Counter[int]]], order: tuple[str, ...]) -> None:
    print(f"\n{title:<14} {'lines':>6} {'exact':>6} {'rate':>8}  misses (actual − predicted: lines)")
    names = [n for n in order if n in table] + sorted(n for n in table if n not in order)
    total_exact = total = 0
    for name in names:
        exact, n, misses = table[name]
        total_exact += exact
        total += n
        hist = ", ".join(f"{d:+d}:{c}" for d, c in sorted(misses.items(), key=lambda x: (-x[1], x[0]))[:8])
        more = " …" if len(misses) > 8 else ""
        print(f"{name:<14} {n:>6} {exact:>6} {exact / n:>8.2%}  {hist}{more}")
    print(f"{'all':<14} {total:>6} {total_exact:>6} {total_exact / total:>8.2%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", type=int, default=0, help="print up to N missed lines per category")
    args = parser.parse_args(argv)
    path = corpus_path()
    if path is None:
        print(f"corpus not found (looked for {' and '.join(str(r / CORPUS_NAME) for r in CORPUS_ROOTS)}); skipped")
        return 0
    results = evaluate(list(read_lines(path)))
    skipped = Counter(r.skipped for r in results if r.delta is None)
    print(f"{path}: {len(results) - sum(skipped.values())} lines counted")
    for reason, n in skipped.most_common():
        print(f"left out ({n}): {reason}")
    _print_table("category", rates(results, "category"), CATEGORIES)
    _print_table("family", rates(results, "family"), tuple(name for name, _ in FAMILIES))
    if args.misses:
        for cat in CATEGORIES:
            shown = [r for r in results if r.line.category == cat and r.delta not in (0, None)][: args.misses]
            for r in shown:
                print(f"\n[{cat}] {r.delta:+d} {r.line.model} {r.line.source}\n{json.dumps(r.line.body)[:600]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
