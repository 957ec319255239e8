"""How exactly harness.tokens._count predicts billed prompt tokens, measured per source on recorded real OpenAI
traffic.

    .venv/bin/python bench/tokens.py [--misses N]

Reads the shared corpus (``/work/shared/corpus/openai_real_traffic.jsonl.gz``, or ``../shared/corpus/…`` next to the
repository) and prints the exact-match rate per source repository and category with the macro-average over sources
(each source weighs the same, so one large repository cannot carry a rule), then:

- the layout rules (``harness.tokens._rules``): per source, how many lines each one makes exact or breaks; a
  rule is justified when it raises the figure of two sources or more and the macro-average over sources;
- leave one source out: each source counted with only the rules justified without it — the cross-validated figure;
- body only: each line counted from its request body alone, the alias resolved by the line's ``created`` date (what
  a pre-flight knows), next to the count for the snapshot that answered (the response's model);
- the exact-match rate per category and per model family over all lines, with the misses (actual − predicted).

Lines with image/audio/file inputs, lines whose recorder rewrote the prompt's timestamp, and lines without usage are
left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
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

from harness.tokens import _count as tokens  # noqa: E402
from harness.tokens import _models as models  # noqa: E402
from harness.tokens import _rules as tokens_rules  # noqa: E402

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
    created: dt.date | None = None  # when the completion was made (resolves the request's alias, body only)


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
            created = dt.datetime.fromtimestamp(row["created"], dt.UTC).date() if row.get("created") else None
            yield Line(body, model, usage, category(body, model), family(model), row["source_repo"], created)


@dataclass(frozen=True)
class Result:
    line: Line
    delta: int | None  # actual − predicted; None when not counted
    skipped: str = ""  # why it was not counted
    consulted: frozenset[str] = frozenset()  # the rules the count asked for (only they can change it)
    exact: bool = True  # False: estimate_prompt_tokens said the count is an estimate


def evaluate(
    lines: list[Line], off: frozenset[str] = frozenset(), body_only: bool = False, dated: bool = True
) -> list[Result]:
    """Each line with actual − predicted prompt tokens, or why it could not be counted.

    ``off``: rules switched off. ``body_only``: count from the body alone, its alias resolved by the line's date
    (``dated``) or as of today.
    """
    out: list[Result] = []
    for line in lines:
        rules = tokens_rules.Rules(off)
        # The line's date resolves the alias (body only) and the server's changes over time (both).
        model, at = (None, line.created if dated else None) if body_only else (line.model, line.created)
        try:
            predicted, exact = tokens.estimate_prompt_tokens(line.body, model=model, at=at, rules=rules)
        except tokens.UnknownModelError as exc:
            out.append(Result(line, None, f"model {exc.model} not in the registry"))
            continue
        except tokens.NotCountableError as exc:
            out.append(Result(line, None, str(exc)))
            continue
        delta = int(line.usage["prompt_tokens"]) - predicted
        out.append(Result(line, delta, consulted=frozenset(rules.consulted), exact=exact))
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


# --- per source ------------------------------------------------------------------------------------------------------

Cells = dict[tuple[str, str], tuple[int, int]]  # (source, category or "all") → (exact, counted)


def cells(results: list[Result]) -> Cells:
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        if r.delta is None:
            continue
        for key in ((r.line.source, r.line.category), (r.line.source, "all")):
            out[key][0] += r.delta == 0
            out[key][1] += 1
    return {key: (exact, n) for key, (exact, n) in out.items()}


def macro(table: Cells, column: str) -> float | None:
    """The mean over sources of each source's rate in ``column`` (sources without such lines left out)."""
    shares = [exact / n for (_, col), (exact, n) in table.items() if col == column and n]
    return sum(shares) / len(shares) if shares else None


@dataclass(frozen=True)
class RuleEffect:
    name: str
    gains: dict[str, int]  # source → exact lines the rule adds there (negative: lines it breaks)
    counted: dict[str, int]  # source → lines counted there

    def justified(self, without: str | None = None) -> bool:
        """Raises two sources' figures or more, and the macro-average, ``without`` one source's lines."""
        kept = {s: g for s, g in self.gains.items() if s != without}
        helped = sum(1 for g in kept.values() if g > 0)
        others = [s for s in self.counted if s != without]
        return helped >= 2 and sum(g / self.counted[s] for s, g in kept.items()) > 0 and bool(others)

    def sources(self) -> list[str]:
        return sorted((s for s, g in self.gains.items() if g > 0), key=lambda s: -self.gains[s])


def rule_effects(lines: list[Line], base: list[Result]) -> list[RuleEffect]:
    """Each rule the counts consulted, switched off alone: what it changes per source (only where it was asked)."""
    counted = Counter(r.line.source for r in base if r.delta is not None)
    names = sorted(set().union(*(r.consulted for r in base)))
    effects = []
    for name in names:
        asked = [r for r in base if name in r.consulted]
        without = evaluate([r.line for r in asked], frozenset({name}))
        gains: Counter[str] = Counter()
        for before, after in zip(asked, without, strict=True):
            gains[before.line.source] += (before.delta == 0) - (after.delta == 0)
        effects.append(RuleEffect(name, {s: g for s, g in gains.items() if g}, dict(counted)))
    return effects


def leave_one_out(lines: list[Line], effects: list[RuleEffect], body_only: bool = False) -> list[Result]:
    """Each source's lines counted with only the rules justified without that source's lines."""
    out: list[Result] = []
    for source in sorted({line.source for line in lines}):
        off = frozenset(e.name for e in effects if not e.justified(without=source))
        out += evaluate([line for line in lines if line.source == source], off, body_only)
    return out


# --- printing --------------------------------------------------------------------------------------------------------


def _short(source: str) -> str:
    return source.rsplit("/", 1)[-1][:24]


def _rate(exact: int, n: int) -> str:
    return f"{exact / n:>7.1%} {n:>4}" if n else f"{'':>12}"


def print_sources(title: str, table: Cells) -> None:
    columns = (*CATEGORIES, "all")
    print(f"\n{title}: exact rate and lines per source (macro = mean over the sources with such lines)")
    print(f"{'source':<24} " + " ".join(f"{c[:12]:>12}" for c in columns))
    sources = sorted({s for s, _ in table}, key=lambda s: -table[(s, "all")][1])
    for source in sources:
        print(f"{_short(source):<24} " + " ".join(_rate(*table.get((source, c), (0, 0))) for c in columns))
    figures = [macro(table, c) for c in columns]
    print(f"{'macro':<24} " + " ".join(f"{f:>7.1%}{'':>5}" if f is not None else f"{'':>12}" for f in figures))


def print_estimates(results: list[Result]) -> None:
    """The lines counted as estimates (exact False): they stay in every rate; how far off they were."""
    estimated = [r for r in results if r.delta is not None and not r.exact]
    if not estimated:
        return
    hit = sum(1 for r in estimated if r.delta == 0)
    worst = max(abs(r.delta or 0) / max(1, int(r.line.usage["prompt_tokens"])) for r in estimated)
    print(f"estimates (exact False, kept in every rate): {len(estimated)} lines, {hit} exact; worst miss {worst:.1%}")


def print_rules(effects: list[RuleEffect]) -> None:
    print("\nrules: exact lines each adds (+) or breaks (−) per source, switched off alone; kept = justified")
    for e in sorted(effects, key=lambda e: (not e.justified(), e.name)):
        changes = ", ".join(f"{_short(s)} {e.gains[s]:+d}" for s in sorted(e.gains, key=lambda s: -e.gains[s]))
        recorded = tokens_rules.RULES.get(e.name)
        stale = recorded is not None and set(recorded.sources) != set(e.sources())
        note = "  (recorded sources differ: update harness/tokens/_rules.py)" if stale else ""
        verdict = "kept" if e.justified() else "estimate only" if recorded and not recorded.exact else "NOT JUSTIFIED"
        print(f"{verdict:<14} {e.name:<30} {changes or 'no line changes'}{note}")


def print_summary(figures: dict[str, Cells]) -> None:
    print("\nmacro-average over sources per category")
    print(f"{'category':<14} " + " ".join(f"{name:>16}" for name in figures))
    for column in (*CATEGORIES, "all"):
        values = [macro(table, column) for table in figures.values()]
        print(f"{column:<14} " + " ".join(f"{v:>16.2%}" if v is not None else f"{'':>16}" for v in values))


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
    lines = list(read_lines(path))
    results = evaluate(lines)
    skipped = Counter(r.skipped for r in results if r.delta is None)
    print(f"{path}: {len(results) - sum(skipped.values())} lines counted")
    for reason, n in skipped.most_common():
        print(f"left out ({n}): {reason}")
    print_estimates(results)
    effects = rule_effects(lines, results)
    body = evaluate(lines, body_only=True)
    figures = {
        "snapshot": cells(results),
        "snapshot, LOSO": cells(leave_one_out(lines, effects)),
        "body only": cells(body),
        "body only, LOSO": cells(leave_one_out(lines, effects, body_only=True)),
        "body, alias today": cells(evaluate(lines, body_only=True, dated=False)),
    }
    print_sources("per source (snapshot, every rule)", figures["snapshot"])
    print_sources("leave one source out (snapshot)", figures["snapshot, LOSO"])
    print_sources("body only (alias by date, every rule)", figures["body only"])
    print_rules(effects)
    print_summary(figures)
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
