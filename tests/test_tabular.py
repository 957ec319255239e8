"""The report files pandas used to write, now written without it (harness.report._tabular, harness.report._stats):
cell for cell and digit for digit what pandas writes for the same records — checked against pandas itself on random
tables (every column type, missing values, hostile strings) and against numpy's sums."""

from __future__ import annotations

import io
import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.report import _tabular as tabular
from harness.report._stats import pairwise_sum, sorted_group_mean

CHARS = [chr(c) for c in range(0x80)] + ["é", "€", "日", "😀", "\u2028", "\ufeff", "\x80", '"', ",", "/", "\\"]
SPECIAL = [
    0.0,
    -0.0,
    float("inf"),
    float("-inf"),
    1.0,
    0.5,
    0.1 + 0.2,
    1e16,
    1e-16,
    1e-15,
    2.5e-15,
    9999999999999998.0,
    6e-06,
    5e-324,
    math.nan,  # missing, as None is: written empty / null
]


def _float(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.15:
        return rng.choice(SPECIAL)
    if pick < 0.5:
        return rng.random() * 10 ** rng.randint(-20, 20) * rng.choice([1, -1])
    return round(rng.uniform(0, 5000), rng.randint(0, 6))


def _value(kind: str, rng: random.Random) -> Any:
    if kind == "int":
        return rng.randint(-(10**9), 10**12)
    if kind == "float":
        return _float(rng)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "str":
        return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))
    if kind == "mixed":
        return rng.choice([rng.randint(0, 99), _float(rng)])  # whole and fractional numbers in one column
    # True == 1 == 1.0: told apart; nan is missing
    return rng.choice([True, False, 1, 0, 1.0, 0.0, "1", "x", rng.randint(0, 3), math.nan])


def _table(rng: random.Random) -> tuple[list[str], list[list[Any]]]:
    kinds = [rng.choice(["int", "float", "bool", "str", "mixed", "any"]) for _ in range(6)]
    missing = [rng.choice([0.0, 0.0, 0.3, 1.0]) for _ in kinds]
    n = rng.randint(1, 30)
    columns = [f"c{i}" for i in range(len(kinds))]
    lines = [
        [None if rng.random() < m else _value(k, rng) for k, m in zip(kinds, missing, strict=True)] for _ in range(n)
    ]
    return columns, lines


@pytest.mark.parametrize("seed", range(20))
def test_csv_and_json_lines_are_what_pandas_writes(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        columns, lines = _table(rng)
        df = pd.DataFrame([dict(zip(columns, line, strict=True)) for line in lines], columns=columns)
        assert tabular.csv_text(columns, lines) == df.to_csv(index=False)
        out = io.StringIO()
        tabular.write_jsonl(out, columns, lines)
        assert out.getvalue() == df.to_json(orient="records", lines=True)


def test_sums_and_sorted_group_means_are_numpys_and_pandas_to_the_last_bit() -> None:
    rng = random.Random(7)
    for n in [*range(40), 127, 128, 129, 255, 256, 257, 1000, 4099, 70_001]:
        values = [rng.random() * 10 ** rng.randint(-8, 3) for _ in range(n)]
        assert pairwise_sum(values) == float(pd.Series(values, dtype=float).sum()) == float(np.array(values).sum())
        if n:
            grouped = pd.DataFrame({"k": ["a"] * n, "v": values}).groupby("k")["v"].mean()
            assert sorted_group_mean(values) == float(grouped["a"])
    assert math.isnan(sorted_group_mean([]))
