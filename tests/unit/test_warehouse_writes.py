"""Rows written from Python have exactly their table's columns: no value is dropped or filled
silently on the way to the warehouse."""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from exp_dagster.analysis import DayStatistics
from exp_dagster.decision import decide
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.offline import OPTIONAL_EVALUATION_COLUMNS
from exp_dagster.result_row import RESULT_COLUMNS, ResultRow
from exp_dagster.spec import load_metric_catalog
from exp_dagster.warehouse.queries import ensure_schema, read_partition, replace_partition
from tests.unit.test_analysis import START, analyse, experiment, simulate_days

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
        "ramp_action": None,
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


SIGNIFICANCE_COLUMNS = ("significant", "significance_test", "significance_basis")
REVIEWER_COLUMNS = (
    "statistic",
    "df",
    "rel_std_error",
    "sd_control",
    "sd_treatment",
    "cuped_theta",
    "test_options",
    "control_ci_low",
    "control_ci_high",
    "treatment_ci_low",
    "treatment_ci_high",
)


def older_warehouse(
    path: Path, experiment_id: str, rows: list[ResultRow], lacking: tuple[str, ...]
) -> None:
    """A warehouse as a release whose results had no ``lacking`` columns (the last ones) left
    it, holding ``rows`` without them; its schema digest is that of an older schema.sql."""
    assert RESULT_COLUMNS[-len(lacking) :] == lacking  # a release lacked the newest columns
    with duckdb.connect(str(path)) as conn:
        ensure_schema(conn)
        for column in lacking:
            conn.execute(f"ALTER TABLE results DROP COLUMN {column}")
        conn.execute("UPDATE warehouse_schema SET digest = 'an older schema.sql'")
        old_rows = [{k: v for k, v in r.items() if k not in lacking} for r in rows]
        replace_partition(conn, "results", experiment_id, START, old_rows)


def test_an_older_results_table_gains_the_significance_columns(tmp_path: Path) -> None:
    """A warehouse written before results carried ``significant`` gains the columns in place on
    its next connection (NULL in the old rows, in ResultRow's order) and takes new rows; the
    decision refuses an old row instead of judging it again, and says what to re-run."""
    spec = experiment(load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml"))
    statistics = simulate_days(np.random.default_rng(5), {"control": 0.05, "treatment": 0.06})
    rows = analyse(spec, statistics, START)
    units = DayStatistics(statistics[START]).units(spec)
    path = tmp_path / "warehouse.duckdb"
    older_warehouse(path, spec.spec.id, rows, SIGNIFICANCE_COLUMNS + REVIEWER_COLUMNS)
    with duckdb.connect(str(path)) as conn:
        ensure_schema(conn)
        described = conn.execute("DESCRIBE results").fetchall()
        assert tuple(name for name, *_ in described) == RESULT_COLUMNS
        old = read_partition(conn, "results", spec.spec.id, START)
        assert [(r["significant"], r["significance_basis"]) for r in old] == [(None, None)]
        with pytest.raises(
            ValueError,
            match=r"results row of ctr \(treatment\) for experiment 'ctr_test' as of 2026-10-01 "
            r"has no 'significant' value: .* Materialise that day's results partition again",
        ):
            decide(spec, START, old, units)
        replace_partition(conn, "results", spec.spec.id, START, rows)
        (new,) = read_partition(conn, "results", spec.spec.id, START)
    assert new == dict(rows[0]) and new["significance_test"] == "group_sequential"
    assert decide(spec, START, [new], units) == decide(spec, START, rows, units)


def test_an_older_results_table_gains_the_reviewer_columns(tmp_path: Path) -> None:
    """A warehouse written before results carried the statistic, df, standard deviations, θ
    and options gains them in place (NULL in the old rows, which the decision still reads) and
    takes new rows that carry them."""
    spec = experiment(load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml"))
    statistics = simulate_days(np.random.default_rng(5), {"control": 0.05, "treatment": 0.06})
    rows = analyse(spec, statistics, START)
    units = DayStatistics(statistics[START]).units(spec)
    path = tmp_path / "warehouse.duckdb"
    older_warehouse(path, spec.spec.id, rows, REVIEWER_COLUMNS)
    with duckdb.connect(str(path)) as conn:
        before = {name for name, *_ in conn.execute("DESCRIBE results").fetchall()}
        assert before.isdisjoint(REVIEWER_COLUMNS)
        ensure_schema(conn)
        described = conn.execute("DESCRIBE results").fetchall()
        assert tuple(name for name, *_ in described) == RESULT_COLUMNS
        (old,) = read_partition(conn, "results", spec.spec.id, START)
        assert [old[column] for column in REVIEWER_COLUMNS] == [None] * len(REVIEWER_COLUMNS)
        assert {k: v for k, v in old.items() if k not in REVIEWER_COLUMNS} == {
            k: v for k, v in rows[0].items() if k not in REVIEWER_COLUMNS
        }
        assert decide(spec, START, [old], units) == decide(spec, START, rows, units)
        replace_partition(conn, "results", spec.spec.id, START, rows)
        (new,) = read_partition(conn, "results", spec.spec.id, START)
    assert new == dict(rows[0])
    assert new["statistic"] is not None and new["test_options"] is not None


def test_optional_evaluation_columns_are_nullable(conn: duckdb.DuckDBPyConnection) -> None:
    nullable = {
        name
        for name, _, null, *_ in conn.execute("DESCRIBE offline_evaluation").fetchall()
        if null == "YES"
    }
    assert set(OPTIONAL_EVALUATION_COLUMNS) <= nullable


def test_an_older_decision_table_gains_ramp_action(tmp_path: Path) -> None:
    """A warehouse whose decision table predates ``ramp_action`` gains the column in place on its
    next connection, NULL in the rows it holds, and takes new rows that carry it."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_schema(conn)
        conn.execute("ALTER TABLE decision DROP COLUMN ramp_action")
        conn.execute("UPDATE warehouse_schema SET digest = 'an older schema.sql'")
        old = {k: v for k, v in decision_row().items() if k != "ramp_action"}
        replace_partition(conn, "decision", "ranker_v2", DAY, [old])
    with duckdb.connect(str(path)) as conn:
        ensure_schema(conn)
        assert conn.execute("SELECT decision, ramp_action FROM decision").fetchall() == [
            ("KEEP_RUNNING", None)
        ]
        replace_partition(conn, "decision", "ranker_v2", DAY, [decision_row(ramp_action="hold")])
        assert conn.execute("SELECT ramp_action FROM decision").fetchall() == [("hold",)]
