"""Make tests/data/corpus_excerpt_tools.jsonl.gz: real recorded OpenAI answers for tests/test_corpus_tools.py where
the shared corpus (../shared/corpus, see its README) isn't: answers with tool calls, every refusal, and answers with
reasoning tokens (including every one whose whole output was reasoning).

Every line is copied whole, with the public repository, path and commit it was recorded in (``source_repo``,
``source_path``, ``source_commit``). Chosen deterministically, by ``interaction_sha256``, among lines under MAX_BYTES:
per source repository the first TOOLS_PER_REPO tool-call answers, plus every parallel-call answer and every answer
with a call that does not fit its tool's parameters (up to EXTRA each), every refusal, and REASONING lines with
reasoning tokens.

    python tests/data/make_corpus_excerpt_tools.py [CORPUS_DIR]
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOOLS_PER_REPO = 6
EXTRA = 8
REASONING = 12
MAX_BYTES = 12_000


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "corpus"
    sys.path.insert(0, str(REPO))
    from tests import corpus_tools as ct

    lines = sorted(ct.read(corpus / "openai_real_traffic.jsonl.gz"), key=lambda x: x["interaction_sha256"])
    small = [x for x in lines if len(json.dumps(x)) <= MAX_BYTES]
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for x in small:
        if ct.has_tool_calls(x) and not ct.is_refusal(x):
            by_repo[x["source_repo"]].append(x)
    chosen = [x for group in by_repo.values() for x in group[:TOOLS_PER_REPO]]
    tools = [x for group in by_repo.values() for x in group]
    chosen += [x for x in tools if len(ct.calls(x)) > 1][:EXTRA]
    chosen += [x for x in tools if not all(ct.call_valid(x, n, a) for n, a in ct.calls(x))][:EXTRA]
    chosen += [x for x in lines if ct.is_refusal(x)]

    def reasoning(x: dict) -> int:
        return ((x.get("usage") or {}).get("completion_tokens_details") or {}).get("reasoning_tokens") or 0

    thinking = [x for x in small if reasoning(x)]
    chosen += [x for x in thinking if reasoning(x) == x["usage"]["completion_tokens"]]
    chosen += thinking[:REASONING]
    unique = {x["interaction_sha256"]: x for x in chosen}
    text = "".join(json.dumps(unique[k], ensure_ascii=False) + "\n" for k in sorted(unique))
    with gzip.GzipFile(HERE / "corpus_excerpt_tools.jsonl.gz", "wb", mtime=0) as out:
        out.write(text.encode("utf-8"))
    print(f"corpus_excerpt_tools.jsonl.gz: {len(unique)} lines")


if __name__ == "__main__":
    main()
