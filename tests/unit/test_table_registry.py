"""The table registry (exp_dagster/warehouse/tables.py) is the warehouse's schema: every table and
view schema.sql creates is registered, each with the partition columns it names, its step is an
asset of the definitions, every table that is not internal is an asset of its step's multi-asset
(described by the registry), and docs/pipeline.md lists every table a user can query."""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg
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
    assets_of,
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


def test_every_table_a_step_writes_is_an_asset_of_its_multi_asset() -> None:
    from exp_dagster.definitions import defs

    steps = {
        assets_def.node_def.name: assets_def
        for assets_def in defs.assets or []
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_materializable
    }
    every_asset = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    for entry in TABLES:
        if entry.internal:
            assert entry.name not in every_asset, f"{entry.name} is internal but an asset"
            continue
        step = steps[entry.step]
        assert dg.AssetKey(entry.name) in step.keys, (entry.name, entry.step, step.keys)
        if entry.name != entry.step:  # a table beside the step's own: the registry's words
            assert entry.holds in (step.specs_by_key[dg.AssetKey(entry.name)].description or "")
    # Only bookkeeping and storage are internal; a step's multi-asset holds nothing else.
    assert {t.name for t in TABLES if t.partitioning == "lineage"} <= {
        t.name for t in TABLES if t.internal
    }
    assert {t.name for t in TABLES if t.internal} == {
        "partition_writes",
        "unit_metrics_lineage",
        "unit_metric_rows",
        "unit_metric_names",
        "novelty_sums",
    }
    for step in {t.step for t in TABLES}:
        keys = {key.to_user_string() for key in steps[step].keys}
        assert keys - {step} == set(assets_of(step)) - {step}, step
        assert not steps[step].can_subset, f"{step} writes its tables in one transaction"
    assert set(assets_of("metric_statistics")) == {
        "metric_statistics",
        "novelty_statistics",
        "quantile_histograms",
        "metric_outliers",
        "metric_cross_statistics",
        "did_cluster_days",
    }
    assert set(assets_of("results")) == {"results", "metric_trees", "did_effects"}


def test_a_step_that_declares_other_tables_than_the_registry_does_not_load() -> None:
    from assets._common import table_spec, writer_tables
    from exp_dagster.partitions import experiment_days

    with pytest.raises(ValueError, match=r"registers \['exposure_quarantine'\] for it"):

        @writer_tables(partitions_def=experiment_days, deps=[], tables=[])
        def exposures() -> tuple[dg.MaterializeResult, ...]:
            return ()

    with pytest.raises(KeyError, match="not a warehouse table"):
        table_spec("exposure_quarantines", deps=[])


def test_docs_list_every_table_users_query() -> None:
    text = (PROJECT_ROOT / "docs" / "pipeline.md").read_text()
    listed = set(re.findall(r"`([a-z_]+)`", text))
    public = {t.name for t in TABLES if not t.internal}
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
