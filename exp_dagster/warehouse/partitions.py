"""Whole partitions: the small tables read back into Python, the rows Python writes, and the
write id each materialised partition gets (the lineage incremental days check).

Which tables may be read or written whole comes from the table registry (:mod:`.tables`).
Writing replaces exactly one partition in one transaction (docs/architecture.md, decision 2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from exp_dagster.spec import ALLOCATION_SEGMENTS
from exp_dagster.warehouse.statements import fetch_dicts, query, transaction
from exp_dagster.warehouse.tables import SMALL_TABLES, WRITTEN_FROM_PYTHON


def record_write(
    conn: duckdb.DuckDBPyConnection, table: str, experiment_id: str, day: dt.date
) -> None:
    """Give the partition just written a fresh write id (inside the writer's transaction).

    ``experiment_id`` is ``''`` for tables partitioned by day alone. The ids are the lineage
    that lets unit_metrics build a day on the previous one (:func:`build_unit_metrics`).
    """
    conn.execute(
        "DELETE FROM partition_writes "
        "WHERE table_name = ? AND experiment_id = ? AND partition_date = ?",
        [table, experiment_id, day],
    )
    conn.execute(
        "INSERT INTO partition_writes VALUES (?, ?, ?, gen_random_uuid())",
        [table, experiment_id, day],
    )


def read_latest_decisions(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per experiment with a decision: the latest one (``as_of_date``, ``decision``, ``variant``,
    ``reasons``) and ``days_decided`` (``sql/latest_decisions.sql``)."""
    return query(conn, "latest_decisions", {})


def read_partition(
    conn: duckdb.DuckDBPyConnection, table: str, experiment_id: str, day: dt.date
) -> list[dict[str, Any]]:
    """All rows of a small experiment × day table (statistics, histograms, results, decision)."""
    if table not in SMALL_TABLES:
        raise ValueError(
            f"{table} is not a small per-partition table (exp_dagster/warehouse/tables.py)"
        )
    return fetch_dicts(
        conn,
        f"SELECT * FROM {table} WHERE experiment_id = ? AND as_of_date = ? ORDER BY ALL",
        [experiment_id, day],
    )


def read_bandit_splits(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date
) -> dict[str, dict[str, float]]:
    """The split the bandit set for each day through ``day``, by day (ISO) → variant → weight:
    the ``bandit_allocations`` rows whose ``applies_to`` is on or before ``day`` (each written
    the day before). Empty for an experiment without a bandit."""
    splits: dict[str, dict[str, float]] = {}
    for row in fetch_dicts(
        conn,
        "SELECT applies_to, variant, weight FROM bandit_allocations "
        "WHERE experiment_id = ? AND applies_to <= ? ORDER BY ALL",
        [experiment_id, day],
    ):
        splits.setdefault(row["applies_to"].isoformat(), {})[row["variant"]] = row["weight"]
    return splits


def read_history(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The overall (``segment = 'all'``) statistics and the histograms of the days before ``day``,
    with allocation periods those of each period too (a ramp's phases, a bandit's days: the
    overall effect of a look is stratified by them).

    Sequential tests treat every earlier day as a look; these rows are a few per metric, variant
    and day, so reading the whole history costs nothing next to the day's own work.
    """
    statistics = fetch_dicts(
        conn,
        "SELECT * FROM metric_statistics WHERE experiment_id = ? AND as_of_date < ? "
        "AND segment IN ('all', ?, ?) ORDER BY ALL",
        [experiment_id, day, *ALLOCATION_SEGMENTS],
    )
    histograms = fetch_dicts(
        conn,
        "SELECT * FROM quantile_histograms WHERE experiment_id = ? AND as_of_date < ? ORDER BY ALL",
        [experiment_id, day],
    )
    return statistics, histograms


def read_event_names(
    conn: duckdb.DuckDBPyConnection, day: dt.date
) -> tuple[set[str], dict[str, int]]:
    """The event names of the validated event rows through ``day``, and the quarantined rows by
    event name: what a metric whose event has no row is checked against (a typo in the metric
    catalog, or every row quarantined). A scan of ``event_facts``' event column, so it runs only
    when some metric lacks its events."""
    logged = {
        str(name)
        for (name,) in conn.execute(
            "SELECT DISTINCT event FROM event_facts WHERE event_date <= ?", [day]
        ).fetchall()
    }
    quarantined = {
        str(name): int(count)
        for name, count in conn.execute(
            "SELECT event, count(*) FROM event_quarantine "
            "WHERE event_date <= ? AND event IS NOT NULL GROUP BY event",
            [day],
        ).fetchall()
    }
    return logged, quarantined


def _check_row_keys(
    table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], where: str
) -> None:
    """Raise ``ValueError`` unless every row's keys are exactly ``columns``, naming the first
    row that differs, its extra keys (values the write would drop) and its missing keys."""
    expected = set(columns)
    for index, row in enumerate(rows):
        if row.keys() == expected:
            continue
        extra, missing = sorted(set(row) - expected), sorted(expected - set(row))
        problems = [f"keys that are not columns of {table} ({', '.join(extra)})"] if extra else []
        problems += [f"no value for the columns {', '.join(missing)}"] if missing else []
        raise ValueError(
            f"Row {index} written to {table} for {where} has {' and '.join(problems)}; give "
            f"each row exactly the columns of {table} in schema.sql, None for a NULL."
        )


def replace_partition(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    experiment_id: str,
    day: dt.date,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Replace the rows of one partition of a table written from Python, in one transaction.

    Each row must have exactly the table's columns as keys (a NULL is an explicit ``None``):
    a key the table lacks would be dropped and a column the row lacks written NULL, both
    silently, so either is a programming error and nothing is written.
    """
    replace_partitions(conn, experiment_id, day, {table: rows})


def replace_partitions(
    conn: duckdb.DuckDBPyConnection,
    experiment_id: str,
    day: dt.date,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
) -> None:
    """:func:`replace_partition` of several tables in one transaction (a step that writes them
    together: all or none)."""
    import pandas as pd  # here: importing the code location stays light

    frames = {}
    for table, rows in tables.items():
        if table not in WRITTEN_FROM_PYTHON:
            raise ValueError(f"{table} is not written from Python")
        columns = [r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()]
        _check_row_keys(table, columns, rows, f"{experiment_id} {day}")
        frames[table] = pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns)
    with transaction(conn):
        for table, frame in frames.items():
            conn.execute(
                f"DELETE FROM {table} WHERE experiment_id = ? AND as_of_date = ?",
                [experiment_id, day],
            )
            if len(frame):
                conn.register("partition_rows", frame)
                try:
                    conn.execute(f"INSERT INTO {table} SELECT * FROM partition_rows")
                finally:
                    conn.unregister("partition_rows")
