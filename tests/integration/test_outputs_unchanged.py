"""The session pipeline's sufficient statistics, outlier report, results and decisions are those
main computed at 0b86a52 (issue 18): a faster computation, or a new column, must leave every number
as it was. The reference was written by main's code (tests/integration/golden.py); columns added
since are checked by their own tests, every column of the reference here.

The sufficient statistics (exact sums in the engine) and every key, count, flag and text compare
bit for bit. Floats the statistics layer derives from them (intervals, boundaries from numerical
integration, variance reductions) compare to 1e-12 relative: numpy's and scipy's SIMD kernels round
differently in the last bits on CPUs with and without AVX-512 (seen: 5e-15 relative, 10 values of
results), and a change of method moves far more than that."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from tests.conftest import Pipeline
from tests.integration.golden import TABLES, snapshot

EXACT = {"metric_statistics", "novelty_statistics"}
RELATIVE = 1e-12


def _key(row: list[object]) -> str:
    """Rows sort by their exact values (keys, counts, texts), then by the rest."""
    exact = [value for value in row if not isinstance(value, float)]
    return json.dumps(exact) + json.dumps(row)


def _same(table: str, got: object, expected: object) -> bool:
    if isinstance(got, float) and isinstance(expected, float) and table not in EXACT:
        if math.isnan(got) or math.isnan(expected):
            return math.isnan(got) and math.isnan(expected)
        return math.isclose(got, expected, rel_tol=RELATIVE, abs_tol=1e-300)
    # compared as JSON text: floats by repr (exact), NaN equal to NaN
    return json.dumps(got) == json.dumps(expected)


GOLDEN = Path(__file__).parent / "golden" / "pipeline_outputs.json"


@pytest.mark.parametrize("table", TABLES)
def test_every_row_is_the_one_main_computed(pipeline: Pipeline, table: str) -> None:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        now = snapshot(conn, pipeline.experiment.spec.id)[table]
    golden = json.loads(GOLDEN.read_text())[table]
    missing = [c for c in golden["columns"] if c not in now["columns"]]
    assert not missing, f"{table} lost columns {missing}"
    keep = [now["columns"].index(c) for c in golden["columns"]]
    rows = sorted(([row[i] for i in keep] for row in now["rows"]), key=_key)
    want = sorted(golden["rows"], key=_key)
    assert len(rows) == len(want) > 0
    for got, expected in zip(rows, want, strict=True):
        differ = [
            (column, a, b)
            for column, a, b in zip(golden["columns"], got, expected, strict=True)
            if not _same(table, a, b)
        ]
        assert not differ, (table, got[:6], differ)
