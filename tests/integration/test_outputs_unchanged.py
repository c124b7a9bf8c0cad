"""The session pipeline's sufficient statistics, outlier report, results and decisions are, bit for
bit, those main computed at 0b86a52 (issue 18): a faster computation, or a new column, must leave
every number as it was. The reference was written by main's code (tests/integration/golden.py);
columns added since are checked by their own tests, every column of the reference here."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import Pipeline
from tests.integration.golden import TABLES, snapshot

GOLDEN = Path(__file__).parent / "golden" / "pipeline_outputs.json"


@pytest.mark.parametrize("table", TABLES)
def test_every_row_is_the_one_main_computed(pipeline: Pipeline, table: str) -> None:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        now = snapshot(conn, pipeline.experiment.spec.id)[table]
    golden = json.loads(GOLDEN.read_text())[table]
    missing = [c for c in golden["columns"] if c not in now["columns"]]
    assert not missing, f"{table} lost columns {missing}"
    keep = [now["columns"].index(c) for c in golden["columns"]]
    rows = sorted(
        ([row[i] for i in keep] for row in now["rows"]),
        key=lambda row: json.dumps(row),
    )
    want = sorted(golden["rows"], key=lambda row: json.dumps(row))
    assert len(rows) == len(want) > 0
    # compared as JSON text: floats by repr (exact), NaN equal to NaN
    for got, expected in zip(rows, want, strict=True):
        assert json.dumps(got) == json.dumps(expected), (table, got[:6])
