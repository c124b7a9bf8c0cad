"""gate_frame: small partitions whole, large ones as a seeded sample; sampled by unit, every row
of each sampled unit (the view unit_metrics unnests only the sampled units' rows)."""

from __future__ import annotations

import duckdb
import pandera.pandas as pa
import pytest

from assets import _common
from assets._common import gate_frame

SCHEMA = pa.DataFrameSchema({"unit_id": pa.Column(str), "metric": pa.Column(str)})


@pytest.fixture()
def conn() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(
        "CREATE TABLE units AS SELECT 'u' || i AS unit_id, i % 2 AS day FROM range(5000) t(i)"
    )
    conn.execute(
        "CREATE VIEW unit_rows AS SELECT unit_id, day, unnest(['a', 'b', 'c', 'd']) AS metric "
        "FROM units"
    )
    return conn


def test_small_partitions_are_read_whole(conn: duckdb.DuckDBPyConnection) -> None:
    frame, total = gate_frame(conn, "unit_rows", "day = ?", [1], SCHEMA)
    assert total == len(frame) == 10_000


def test_large_partitions_are_sampled_by_unit(
    conn: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "GATE_ROW_LIMIT", 400)
    frame, total = gate_frame(
        conn, "unit_rows", "day = ?", [1], SCHEMA, total=10_000, by_unit=("units", 4)
    )
    assert total == 10_000
    per_unit = frame.groupby("unit_id")["metric"].apply(sorted)
    assert len(per_unit) == 100 and all(m == ["a", "b", "c", "d"] for m in per_unit)
    assert all(int(u[1:]) % 2 == 1 for u in per_unit.index)  # the partition's units only
    again, _ = gate_frame(
        conn, "unit_rows", "day = ?", [1], SCHEMA, total=10_000, by_unit=("units", 4)
    )
    assert sorted(again["unit_id"]) == sorted(frame["unit_id"])  # seeded
    rows, counted = gate_frame(conn, "unit_rows", "day = ?", [1], SCHEMA)
    assert counted == 10_000 and len(rows) == 400
