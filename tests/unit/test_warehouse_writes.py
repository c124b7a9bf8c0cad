"""Rows written from Python have exactly their table's columns: no value is dropped or filled
silently on the way to the warehouse."""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from exp_dagster.offline import OPTIONAL_EVALUATION_COLUMNS
from exp_dagster.result_row import RESULT_COLUMNS, ResultRow
from exp_dagster.warehouse.queries import ensure_schema, replace_partition

DAY = dt.date(2026, 10, 2)
SQL_TYPES = {
    "VARCHAR": str,
    "DATE": dt.date,
    "BIGINT": int,
    "INTEGER": int,
    "DOUBLE": float,
    "BOOLEAN": bool,
}


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        ensure_schema(connection)
        yield connection


def decision_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "experiment_id": "ranker_v2",
        "as_of_date": DAY,
        "decision": "KEEP_RUNNING",
        "variant": None,
        "reasons": ["too early"],
        "srm_p_value": 0.5,
        "spec_version": "v1",
    }
    return {**row, **changes}


def written(conn: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT decision, srm_p_value FROM decision").fetchall()


def test_a_row_with_exactly_the_columns_is_written(conn: duckdb.DuckDBPyConnection) -> None:
    replace_partition(conn, "decision", "ranker_v2", DAY, [decision_row()])
    assert written(conn) == [("KEEP_RUNNING", 0.5)]


def test_a_key_the_table_lacks_is_refused_and_nothing_is_written(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    replace_partition(conn, "decision", "ranker_v2", DAY, [decision_row()])
    rows = [decision_row(decision="SHIP"), decision_row(decision="SHIP", significant=True)]
    refused = r"Row 1 written to decision for ranker_v2 2026-10-02 has keys that are not columns"
    with pytest.raises(ValueError, match=refused + r" of decision \(significant\);") as error:
        replace_partition(conn, "decision", "ranker_v2", DAY, rows)
    assert "\n" not in str(error.value) and "no value" not in str(error.value)
    assert written(conn) == [("KEEP_RUNNING", 0.5)]  # the partition as it was


def test_a_missing_column_is_refused_not_written_null(conn: duckdb.DuckDBPyConnection) -> None:
    row = decision_row()
    del row["srm_p_value"]
    with pytest.raises(
        ValueError,
        match=r"decision for ranker_v2 2026-10-02 has no value for the columns srm_p_value;",
    ):
        replace_partition(conn, "decision", "ranker_v2", DAY, [row])
    assert written(conn) == []


def test_the_results_contract_is_the_results_table(conn: duckdb.DuckDBPyConnection) -> None:
    """ResultRow has the columns of ``results``, in order, with their types and nullability."""
    described = conn.execute("DESCRIBE results").fetchall()
    assert tuple(name for name, *_ in described) == RESULT_COLUMNS
    hints = typing.get_type_hints(ResultRow)
    for name, sql_type, null, *_ in described:
        expected = SQL_TYPES[sql_type] | None if null == "YES" else SQL_TYPES[sql_type]
        assert hints[name] == expected, name


def test_optional_evaluation_columns_are_nullable(conn: duckdb.DuckDBPyConnection) -> None:
    nullable = {
        name
        for name, _, null, *_ in conn.execute("DESCRIBE offline_evaluation").fetchall()
        if null == "YES"
    }
    assert set(OPTIONAL_EVALUATION_COLUMNS) <= nullable
