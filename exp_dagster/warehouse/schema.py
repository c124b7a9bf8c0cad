"""The warehouse's tables: ``schema.sql`` run once per version of it, and the upgrades of
warehouses written by earlier releases. What each table is for: :mod:`.tables`."""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from typing import Any

import duckdb

from exp_dagster.warehouse.statements import execute, run_sql, sql_statements, transaction


@cache
def _schema_digest() -> str:
    return hashlib.sha256("\n;".join(sql_statements("schema")).encode()).hexdigest()


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create (or upgrade) the warehouse tables, and pin the session to UTC.

    ``schema.sql`` runs once per version of it: the digest of the statements it last ran is kept
    in ``warehouse_schema``, so an up-to-date warehouse costs one lookup per connection, not fifty
    statements.
    """
    conn.execute("SET TimeZone = 'UTC'")
    digest = _schema_digest()
    try:
        row = conn.execute("SELECT digest FROM warehouse_schema").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is not None and row[0] == digest:
        return
    with transaction(conn):
        long_rows = _table_type(conn, "unit_metrics") == "BASE TABLE"
        if long_rows:  # a warehouse of a release that kept a row per unit and metric
            logging.getLogger(__name__).warning(
                "Converting unit_metrics to one row per unit (once; about 2 s per million rows)."
            )
            conn.execute("ALTER TABLE unit_metrics RENAME TO unit_metrics_long_rows")
        run_sql(conn, "schema", {})
        if long_rows:
            _pack_long_unit_metrics(conn, "unit_metrics_long_rows")
            conn.execute("DROP TABLE unit_metrics_long_rows")
        conn.execute("CREATE OR REPLACE TABLE warehouse_schema (digest VARCHAR NOT NULL)")
        conn.execute("INSERT INTO warehouse_schema VALUES (?)", [digest])


def _table_type(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = conn.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = ?",
        [name],
    ).fetchone()
    return str(row[0]) if row else None


def _pack_long_unit_metrics(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Move rows of the long layout (one per unit and metric, unit_metrics' columns) from
    ``table`` into unit_metric_rows and unit_metric_names, the metrics in sorted order.

    One pivot per set of metric names (a value per metric picked with FILTER: an aggregate that
    orders its list would sort every unit's rows, several times slower).
    """
    conn.execute(
        f"""
        INSERT INTO unit_metric_names
        SELECT experiment_id, as_of_date, list_sort(list(DISTINCT metric))
        FROM {table}
        GROUP BY experiment_id, as_of_date
        """
    )
    name_sets = conn.execute("SELECT DISTINCT metrics FROM unit_metric_names").fetchall()
    for (names,) in name_sets:
        params: dict[str, Any] = {f"metric_{i}": name for i, name in enumerate(names)}

        def pick(column: str, names: list[str] = names) -> str:
            return (
                "["
                + ", ".join(
                    f"any_value(l.{column}) FILTER (WHERE l.metric = $metric_{i})"
                    for i in range(len(names))
                )
                + "]::DOUBLE[]"
            )

        execute(
            conn,
            f"""
            INSERT INTO unit_metric_rows
            SELECT
                l.experiment_id, l.as_of_date, l.unit_id, any_value(l.variant),
                any_value(l.first_exposure_date), any_value(l.segments),
                {pick("y")}, {pick("x")}, {pick("covariate")}, {pick("covariate_x")},
                any_value(l.spec_version)
            FROM {table} AS l
            SEMI JOIN unit_metric_names AS n
                ON n.experiment_id = l.experiment_id AND n.as_of_date = l.as_of_date
               AND n.metrics = $names
            GROUP BY l.experiment_id, l.as_of_date, l.unit_id
            """,
            {**params, "names": list(names)},
        )
