"""The table registry (exp_dagster/warehouse/tables.py) is the warehouse's schema: every table and
view schema.sql creates is registered, each with the partition columns it names, its step is an
asset of the definitions, and docs/pipeline.md lists every table a user can query."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.warehouse import queries
from exp_dagster.warehouse.tables import (
    SCHEMA_TABLE,
    SMALL_TABLES,
    TABLES,
    VIEWS,
    WRITTEN_FROM_PYTHON,
    table,
    written_by,
)


@pytest.fixture(scope="module")
def conn() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    queries.ensure_schema(connection)
    return connection


def test_every_table_of_the_schema_is_registered_and_no_other(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    created = {
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    views = {
        name
        for (name,) in conn.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    }
    assert created == {t.name for t in TABLES} | {SCHEMA_TABLE}
    assert views == set(VIEWS)


@pytest.mark.parametrize("entry", TABLES, ids=lambda t: t.name)
def test_a_table_has_the_partition_columns_it_is_registered_with(
    conn: duckdb.DuckDBPyConnection, entry
) -> None:
    columns = {row[0] for row in conn.execute(f"DESCRIBE {entry.name}").fetchall()}
    for column in (entry.date_column, entry.experiment_column):
        if column is not None:
            assert column in columns, (entry.name, column, sorted(columns))
    if entry.partitioning == "date":
        assert "experiment_id" not in columns, f"{entry.name}: shared by every experiment"


def test_steps_are_assets_of_the_definitions() -> None:
    from exp_dagster.definitions import defs

    assets = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {t.step for t in TABLES} <= assets
    assert [t.name for t in written_by("exposures")][:2] == ["exposures", "exposure_quarantine"]


def test_docs_list_every_table_users_query() -> None:
    text = (PROJECT_ROOT / "docs" / "pipeline.md").read_text()
    listed = set(re.findall(r"`([a-z_]+)`", text))
    public = {t.name for t in TABLES if t.partitioning != "lineage"} - {"novelty_sums"}
    missing = sorted(public - listed)
    assert not missing, f"docs/pipeline.md does not list the tables {missing}"


def test_the_allow_lists_come_from_the_registry(conn: duckdb.DuckDBPyConnection) -> None:
    assert {"results", "decision"} <= WRITTEN_FROM_PYTHON <= SMALL_TABLES
    assert "unit_metric_rows" not in SMALL_TABLES
    with pytest.raises(ValueError, match="not a small per-partition table"):
        queries.read_partition(conn, "unit_metric_rows", "x", dt.date(2026, 1, 1))
    with pytest.raises(ValueError, match="not written from Python"):
        queries.replace_partition(conn, "metric_statistics", "x", dt.date(2026, 1, 1), [])
    with pytest.raises(KeyError, match="known: exposures"):
        table("exposure")
