"""unit_metrics is stored one row per unit (the metrics' values as lists) and read through a view
of one row per unit and metric; a warehouse written in the long layout is converted in place."""

from __future__ import annotations

import datetime as dt

import duckdb

from exp_dagster.warehouse import queries

LONG_COLUMNS = """
    experiment_id VARCHAR, as_of_date DATE, unit_id VARCHAR, variant VARCHAR,
    first_exposure_date DATE, segments MAP(VARCHAR, VARCHAR), metric VARCHAR, y DOUBLE,
    x DOUBLE, covariate DOUBLE, covariate_x DOUBLE, spec_version VARCHAR
"""
D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
ROWS = [
    # experiment, day, unit, variant, first day, segments, metric, y, x, covariate, covariate_x
    ("e", D1, "u1", "control", D1, {"platform": "ios"}, "ctr", 3.0, 10.0, 2.0, 8.0),
    ("e", D1, "u1", "control", D1, {"platform": "ios"}, "latency_p95", 4.0, 1.0, None, None),
    ("e", D1, "u1", "control", D1, {"platform": "ios"}, "watch_time", 12.5, 1.0, 7.25, None),
    ("e", D1, "u2", "treatment", D1, {}, "ctr", 0.0, 0.0, 0.0, 0.0),
    ("e", D1, "u2", "treatment", D1, {}, "latency_p95", 0.0, 1.0, None, None),
    ("e", D1, "u2", "treatment", D1, {}, "watch_time", 0.1, 1.0, 0.0, None),
    ("e", D2, "u1", "control", D1, {"platform": "ios"}, "ctr", 5.0, 12.0, 2.0, 8.0),
    ("e", D2, "u1", "control", D1, {"platform": "ios"}, "latency_p95", 6.0, 1.0, None, None),
    ("e", D2, "u1", "control", D1, {"platform": "ios"}, "watch_time", 20.0, 1.0, 7.25, None),
    ("f", D2, "u9", "b", D2, None, "conversion", 1.0, 1.0, None, None),
]


def _view_rows(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT * EXCLUDE (spec_version) FROM unit_metrics ORDER BY experiment_id, as_of_date, "
        "unit_id, metric"
    ).fetchall()


def test_a_long_layout_warehouse_is_converted_row_for_row() -> None:
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE unit_metrics ({LONG_COLUMNS})")
    conn.executemany(
        "INSERT INTO unit_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'v1')", ROWS
    )
    conn.execute("CREATE TABLE warehouse_schema (digest VARCHAR NOT NULL)")
    conn.execute("INSERT INTO warehouse_schema VALUES ('an older schema')")
    queries.ensure_schema(conn)
    kind = conn.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'unit_metrics'"
    ).fetchone()
    assert kind == ("VIEW",)
    assert _view_rows(conn) == [tuple(row) for row in ROWS]
    # one stored row per unit and day, the values in the order of the partition's metric names
    stored = conn.execute(
        "SELECT r.unit_id, r.as_of_date, n.metrics, r.y, r.covariate FROM unit_metric_rows AS r "
        "JOIN unit_metric_names AS n USING (experiment_id, as_of_date) ORDER BY ALL"
    ).fetchall()
    assert stored[0] == (
        "u1",
        D1,
        ["ctr", "latency_p95", "watch_time"],
        [3.0, 4.0, 12.5],
        [2.0, None, 7.25],
    )
    assert len(stored) == 4
    # the conversion ran once: the next connection finds the schema current
    queries.ensure_schema(conn)
    assert _view_rows(conn) == [tuple(row) for row in ROWS]


def test_a_new_warehouse_has_the_view_and_no_long_table() -> None:
    conn = duckdb.connect()
    queries.ensure_schema(conn)
    kinds = dict(
        conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_name LIKE 'unit_metric%'"
        ).fetchall()
    )
    assert kinds == {
        "unit_metrics": "VIEW",
        "unit_metric_rows": "BASE TABLE",
        "unit_metric_names": "BASE TABLE",
        "unit_metrics_lineage": "BASE TABLE",
    }
