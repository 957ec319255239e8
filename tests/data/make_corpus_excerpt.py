"""Make tests/data/corpus_excerpt*.jsonl.gz: a small, fixed excerpt of the shared corpus of real recorded OpenAI
traffic (../shared/corpus, see its README), so the token-count floors and the stream-cost test run where the corpus
isn't (the project's own GitHub workflow, a contributor's laptop).

Every line is copied whole, with the public repository, path and commit it was recorded in (``source_repo``,
``source_path``, ``source_commit``). Chosen deterministically: per category × source repository, the first lines by
``interaction_sha256`` under 16 KB, up to PER_CELL of them.

    python tests/data/make_corpus_excerpt.py [CORPUS_DIR]
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PER_CELL = 12
STREAMS = 60
MAX_BYTES = 16_000


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "corpus"
    sys.path.insert(0, str(REPO / "bench"))
    import tokens as bench  # the bench script: its category rule, and the registry it uses

    cells: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    with gzip.open(corpus / "openai_real_traffic.jsonl.gz", "rt", encoding="utf-8") as handle:
        for raw in handle:
            if len(raw) > MAX_BYTES:
                continue
            row = json.loads(raw)
            if not (row.get("usage") or {}).get("prompt_tokens"):
                continue
            model = row["response_model"] if bench.models.lookup(row.get("response_model")) else row["model"]
            kind = bench.category(row["request"]["body"], model)
            cells[(kind, row["source_repo"])].append((row["interaction_sha256"], raw))
    chosen = sorted(raw for cell in cells.values() for _, raw in sorted(cell)[:PER_CELL])
    streams = []
    with gzip.open(corpus / "openai_real_traffic_streaming.jsonl.gz", "rt", encoding="utf-8") as handle:
        for raw in handle:
            row = json.loads(raw)
            if row.get("usage") and len(raw) <= MAX_BYTES:
                streams.append((row["interaction_sha256"], raw))
    chosen_streams = [raw for _, raw in sorted(streams)[:STREAMS]]
    for name, lines in (("corpus_excerpt.jsonl.gz", chosen), ("corpus_excerpt_streams.jsonl.gz", chosen_streams)):
        with gzip.GzipFile(HERE / name, "wb", mtime=0) as out:
            out.write("".join(lines).encode("utf-8"))
        print(f"{name}: {len(lines)} lines")


if __name__ == "__main__":
    main()
