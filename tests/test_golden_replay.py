"""The committed cassettes replay to the results.csv rows and summary.csv saved before the package was cut into
subpackages (tests/data/golden/): moving the code changed no result. Evals added later are not in the saved files,
but for tables-and-turns (a data table and multi-turn conversations: its rows appended when it was recorded, so that
every turn's request keeps matching); a column added later is not compared; every saved row and cell must come back
as it was.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "data" / "golden"


def _rows(path: Path, key: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, str]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    # messages name cassettes by absolute path: the checkout's own folder (here, or where the saved run was made)
    # is not part of the result
    text = re.sub(r"/\S*?/(?=cassettes/)", "", raw.decode("utf-8"))
    return {tuple(row[k] for k in key): row for row in csv.DictReader(io.StringIO(text, newline=""))}


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_the_committed_cassettes_replay_to_the_saved_results(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "harness", "run", "--", "--reports-dir", str(tmp_path), "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name, key in (("results.csv", ("eval", "variant", "case", "sample")), ("summary.csv", ("eval", "variant"))):
        saved = _rows(GOLDEN / (name + ".gz" if name == "results.csv" else name), key)
        now = _rows(tmp_path / "latest" / name, key)
        evals = {k[0] for k in saved}
        assert {k for k in now if k[0] in evals} == saved.keys(), name
        for k, row in saved.items():
            assert {c: now[k].get(c) for c in row} == row, (name, k)
