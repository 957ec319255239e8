"""`promptvcr merge`: the shards of one eval run (``--shard I/N`` on N machines) joined into one report.

Each shard's results.csv holds the rows of its items; joined, they are the rows the unsplit run would have had, so
the summary, the gates and the A/B verdicts are computed once, here, exactly as a single run computes them. Two
shards with a row for the same sample are refused: that is the same work done twice, or two different runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import PromptVCRError
from ..load import _evals as evals
from ..run import _journal as journal
from ..run._row import Row
from . import _compare as compare
from . import _summary as report


def rows_of(target: Path) -> list[Row]:
    """The result rows of a shard (its reports/<run-id> folder or its results.csv), as the run had them."""
    df = compare.load_run(target, as_text=True)
    return [Row.from_text({str(k): str(v) for k, v in row.items()}) for row in df.to_dict("records")]


def joined(targets: Sequence[Path]) -> list[Row]:
    seen: dict[journal.Key, Path] = {}
    rows: list[Row] = []
    for target in targets:
        for row in rows_of(target):
            key = row.key
            if key in seen:
                eval_name, variant, case, sample = key
                raise PromptVCRError(
                    f"{target} and {seen[key]} both have sample {sample + 1} of case {case!r} in {eval_name}/{variant}:"
                    " merge the shards of one run (each run with its own --shard I/N of the same N)"
                )
            seen[key] = target
            rows.append(row)
    if not rows:
        raise PromptVCRError("nothing to merge: the runs have no result rows")
    return rows


def check_split(targets: Sequence[Path]) -> None:
    """Every part of one `--shard I/N` split, each run to its end: else the merge is not the unsplit run."""
    states = {t: journal.read_state(t if t.is_dir() else t.parent) for t in targets}
    for target, state in states.items():
        if state.get("status") == "interrupted":
            raise PromptVCRError(f"{target} was stopped before its end: finish it (`promptvcr run --resume`) first")
    shards = {t: s.get("shard") for t, s in states.items()}
    if all(shard is None for shard in shards.values()):
        return  # results.csv files, or runs that were not split: nothing says which parts there should be
    counts = {int(s[1]) for s in shards.values() if s}
    indices = sorted(int(s[0]) for s in shards.values() if s)
    if None in shards.values() or len(counts) != 1 or indices != list(range(1, max(counts) + 1)):
        parts = ", ".join(f"{t}: {f'--shard {s[0]}/{s[1]}' if s else 'not a shard'}" for t, s in shards.items())
        raise PromptVCRError(f"these runs are not the parts 1..N of one --shard I/N split ({parts})")


def evals_of(
    rows: Sequence[Row], targets: Sequence[Path], find: Callable[[str], Path], root: Path
) -> dict[str, evals.Eval]:
    """The eval definitions the rows belong to: the paths the runs recorded, else found by name under evals/."""
    paths: dict[str, str] = {}
    for target in targets:
        folder = target if target.is_dir() else target.parent
        paths |= journal.read_state(folder).get("evals") or {}
    loaded = {}
    for name in sorted({r.eval for r in rows}):
        path = Path(paths[name]) if name in paths and Path(paths[name]).is_file() else find(name)
        loaded[name] = evals.load(path, root)
    return loaded


def merge(targets: Sequence[Path], reports_dir: Path, find: Callable[[str], Path], root: Path) -> int:
    """Write the joined report to a new run folder, print its table; 1 when a gate fails, as the run's exit code."""
    if len(targets) < 2:
        raise PromptVCRError("merge needs the result folders (or results.csv files) of at least two shards")
    check_split(targets)
    rows = joined(targets)
    loaded = evals_of(rows, targets, find, root)
    summaries = report.summarize(rows, loaded)
    run_dir = report.new_run_dir(reports_dir)
    note = f"{len(rows)} samples, merged from {len(targets)} runs: {', '.join(str(t) for t in targets)}."
    report.write(run_dir, rows, summaries, note, loaded)
    journal.write_state(
        run_dir,
        {"status": "merged", "from": [str(t) for t in targets]}
        | {"evals": {name: str(ev.path) for name, ev in loaded.items()}},
    )
    failed = any(s.failed for s in summaries)
    print(report.text_table(summaries))
    print(f"promptvcr: {'gates FAILED' if failed else 'merged'}: {run_dir} (latest: {reports_dir / 'latest'})")
    return 1 if failed else 0
