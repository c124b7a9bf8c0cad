"""Incremental days: unit_metrics(D) built from unit_metrics(D - 1) and day D's facts equals the
same partition recomputed from every day, and the lineage check falls back when an input changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from exp_dagster.resources import Warehouse
from exp_dagster.warehouse import quantiles, queries, statistics, unit_state
from exp_dagster.warehouse.queries import build_event_facts, build_unit_metrics
from tests.conftest import Pipeline

COLUMNS = "unit_id, variant, first_exposure_date, segments, metric, y, x, covariate, covariate_x"


def _rows(conn: duckdb.DuckDBPyConnection, experiment_id: str) -> list[tuple[object, ...]]:
    return conn.execute(
        f"SELECT as_of_date, {COLUMNS} FROM unit_metrics WHERE experiment_id = ? ORDER BY ALL",
        [experiment_id],
    ).fetchall()


@pytest.fixture()
def warehouse_copy(pipeline: Pipeline, tmp_path: Path) -> Warehouse:
    target = tmp_path / "warehouse.duckdb"
    shutil.copyfile(pipeline.database, target)
    return Warehouse(database=str(target))


def test_every_day_after_the_first_was_built_incrementally(
    pipeline: Pipeline, warehouse_copy: Warehouse
) -> None:
    # Days materialised in order, as a daily schedule does (on a copy: another test re-runs the
    # shared pipeline's days in reverse order, which rebuilds them).
    with warehouse_copy.connect() as conn:
        for day in pipeline.days:
            build_unit_metrics(conn, pipeline.experiment, day)
        lineage = dict(
            conn.execute(
                "SELECT as_of_date, incremental FROM unit_metrics_lineage WHERE experiment_id = ?",
                [pipeline.experiment.spec.id],
            ).fetchall()
        )
    assert lineage == {day: index > 0 for index, day in enumerate(pipeline.days)}


def test_incremental_rows_equal_a_rebuild_from_every_day(
    pipeline: Pipeline, warehouse_copy: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = pipeline.experiment
    with warehouse_copy.connect() as conn:
        incremental = _rows(conn, experiment.spec.id)
        monkeypatch.setattr(unit_state, "_extends_previous_day", lambda *_: False)
        for day in pipeline.days:
            assert not build_unit_metrics(conn, experiment, day).incremental
        rebuilt = _rows(conn, experiment.spec.id)
    assert len(incremental) == len(rebuilt) > 0
    # The same rows, values equal to 1e-9 relative (in practice bit for bit: sums are exact).
    for got, want in zip(incremental, rebuilt, strict=True):
        assert got[:6] == want[:6]
        for value, expected in zip(got[6:], want[6:], strict=True):
            assert (value is None) == (expected is None)
            if expected is not None:
                assert value == pytest.approx(expected, rel=1e-9, abs=0.0)
    assert incremental == rebuilt


def test_a_changed_input_day_makes_the_next_day_rebuild(
    pipeline: Pipeline, warehouse_copy: Warehouse
) -> None:
    experiment = pipeline.experiment
    days = pipeline.days
    events = pipeline.resources["landing"].events()  # type: ignore[attr-defined]
    with warehouse_copy.connect() as conn:
        before = _rows(conn, experiment.spec.id)
        # A late file re-ingests day 2: day 2's rows no longer match their recorded lineage,
        # so day 2 itself and then day 3 are rebuilt from every day; day 4 extends day 3 again.
        build_event_facts(conn, events, days[1], pipeline.resources["catalog"].quantile_events())  # type: ignore[attr-defined]
        assert build_unit_metrics(conn, experiment, days[2]).incremental is False
        assert build_unit_metrics(conn, experiment, days[3]).incremental is True
        # day 1's lineage is untouched (its inputs did not change): day 2 extends it
        assert build_unit_metrics(conn, experiment, days[1]).incremental is True
        assert _rows(conn, experiment.spec.id) == before


def test_novelty_sums_extended_day_by_day_equal_a_full_resum(
    pipeline: Pipeline, warehouse_copy: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Novelty sums and quantile histograms (and so the quantile statistics) extended day by day
    equal the same sums taken again over every day."""
    experiment = pipeline.experiment
    assert any(m.type == "quantile" for m in experiment.metrics.values())

    def query(c: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
        return [
            row
            for table in ("novelty_statistics", "quantile_histograms", "metric_statistics")
            for row in c.execute(
                f"SELECT '{table}', COLUMNS(lambda c: c <> 'spec_version') FROM {table} "
                "WHERE experiment_id = ? ORDER BY ALL",
                [experiment.spec.id],
            ).fetchall()
        ]

    with warehouse_copy.connect() as conn:
        for day in pipeline.days:  # in order, as a daily schedule runs them
            build_unit_metrics(conn, experiment, day)
            queries.build_metric_statistics(conn, experiment, day)
        extended = query(conn)
        # the last day extended its predecessor's sums (lineage current, no new crossover)
        last = pipeline.days[-1]
        crossovers = _crossovers(conn, experiment.spec.id)
        assert statistics._daily_sums_extend(conn, experiment, last, crossovers)
        monkeypatch.setattr(statistics, "_daily_sums_extend", lambda *_: False)
        for day in pipeline.days:
            queries.build_metric_statistics(conn, experiment, day)
        resummed = query(conn)
    assert {row[0] for row in resummed} == {
        "novelty_statistics",
        "quantile_histograms",
        "metric_statistics",
    }
    assert len(extended) == len(resummed) > 0
    assert extended == resummed


def test_novelty_counts_are_the_units_whose_kth_day_has_come(pipeline: Pipeline) -> None:
    """novelty_statistics.n (counted by cohort of first exposure day) is, per metric, variant
    and day index k, the number of analysed units whose k-th day is on or before the day."""
    spec = pipeline.experiment.spec
    day = pipeline.days[-1]
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        units = conn.execute(
            "SELECT variant, first_exposure_date FROM unit_metric_rows "
            "WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        ).df()
        reported = conn.execute(
            "SELECT metric, variant, day_index, n FROM novelty_statistics "
            "WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        ).fetchall()
    last = pd.Timestamp(min(day, spec.end))
    assert len(reported) > 0 and {k for _, _, k, _ in reported} == set(range(len(pipeline.days)))
    for _metric, variant, k, n in reported:
        first = pd.to_datetime(units.loc[units["variant"] == variant, "first_exposure_date"])
        assert n == int((first + pd.Timedelta(days=k) <= last).sum()), (variant, k)


def _crossovers(conn: duckdb.DuckDBPyConnection, experiment_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM (SELECT unit_id FROM exposures WHERE experiment_id = ? "
        "GROUP BY unit_id HAVING count(DISTINCT variant) > 1)",
        [experiment_id],
    ).fetchone()
    return int(row[0]) if row else 0


def test_metric_statistics_reads_the_crossovers_unit_metrics_recorded(
    pipeline: Pipeline, warehouse_copy: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """metric_statistics takes its units from unit_metrics and the crossover count from the
    lineage (no second pass over every exposure); a partition written before the count was
    recorded falls back to counting, with the same statistics."""
    experiment = pipeline.experiment
    experiment_id = experiment.spec.id
    query = (
        "SELECT * EXCLUDE (spec_version) FROM novelty_statistics WHERE experiment_id = ? "
        "ORDER BY ALL"
    )
    days = pipeline.days
    with warehouse_copy.connect() as conn:
        # Two units exposed on day 1 show up under another variant on day 3 (crossovers).
        conn.execute(
            """
            INSERT INTO exposures
            SELECT experiment_id, ?, unit_id,
                CASE WHEN variant = 'control' THEN 'treatment' ELSE 'control' END,
                first_exposed_at + INTERVAL 2 DAY, exposure_rows, segments, spec_version
            FROM exposures WHERE experiment_id = ? AND exposure_date = ?
            ORDER BY unit_id LIMIT 2
            """,
            [days[2], experiment_id, days[0]],
        )
        queries.record_write(conn, "exposures", experiment_id, days[2])
        for day in days:
            counts = build_unit_metrics(conn, experiment, day)
            # Extending a day, the assigned units come from the previous day's units and
            # crossovers plus the day's exposures: the same table as from every exposure.
            assert counts.incremental == (day > days[0])
            assigned = "SELECT * FROM assigned_units ORDER BY ALL"
            extended = conn.execute(assigned).fetchall()
            unit_state.register_assigned_units(conn, experiment_id, experiment.spec.start, day)
            assert conn.execute(assigned).fetchall() == extended
            queries.build_metric_statistics(conn, experiment, day)
        recorded = dict(
            conn.execute(
                "SELECT as_of_date, crossover_units FROM unit_metrics_lineage "
                "WHERE experiment_id = ?",
                [experiment_id],
            ).fetchall()
        )
        for day in days:
            independent = conn.execute(
                "SELECT count(*) FROM (SELECT unit_id FROM exposures WHERE experiment_id = ? "
                "AND exposure_date <= ? GROUP BY unit_id HAVING count(DISTINCT variant) > 1)",
                [experiment_id, day],
            ).fetchone()
            assert independent is not None
            assert recorded[day] == independent[0]
        assert recorded[days[1]] == 0 and recorded[days[-1]] == 2
        # A partition whose crossovers were counted but not recorded (written by an earlier
        # release) is not extended: the next day takes its units from every exposure.
        kept = conn.execute("SELECT * FROM unit_crossovers WHERE as_of_date = ?", [days[2]])
        saved = kept.fetchall()
        assert len(saved) == 2
        conn.execute("DELETE FROM unit_crossovers WHERE as_of_date = ?", [days[2]])
        assert unit_state._extends_previous_day(conn, experiment, days[3]) is False
        conn.executemany("INSERT INTO unit_crossovers VALUES (?, ?, ?, ?, ?, ?)", saved)
        assert unit_state._extends_previous_day(conn, experiment, days[3]) is True
        before = conn.execute(query, [experiment_id]).fetchall()
        conn.execute("UPDATE unit_metrics_lineage SET crossover_units = NULL")
        for day in days:
            queries.build_metric_statistics(conn, experiment, day)
        assert conn.execute(query, [experiment_id]).fetchall() == before
        # The day-by-day rows (the crossed units' rows dropped on day 3, the others' extended
        # or copied) equal a rebuild of every day from all the facts.
        extended = _rows(conn, experiment_id)
        incremental = conn.execute(
            "SELECT list(incremental ORDER BY as_of_date) FROM unit_metrics_lineage "
            "WHERE experiment_id = ?",
            [experiment_id],
        ).fetchone()
        assert incremental is not None and incremental[0][2] is True
        monkeypatch.setattr(unit_state, "_extends_previous_day", lambda *_: False)
        for day in days:
            build_unit_metrics(conn, experiment, day)
        assert _rows(conn, experiment_id) == extended


def test_quantile_moments_summed_in_slices_equal_one_pass(
    pipeline: Pipeline, warehouse_copy: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a small memory limit the per-unit quantile moments are summed over slices of the
    units; the statistics are the same, exactly, as one pass over every unit."""
    experiment = pipeline.experiment
    quantile_metrics = sorted(n for n, m in experiment.metrics.items() if m.type == "quantile")
    assert quantile_metrics, "the pipeline's experiment should have a quantile metric"
    query = (
        "SELECT * FROM metric_statistics WHERE experiment_id = ? AND metric IN "
        "(SELECT unnest(?::VARCHAR[])) ORDER BY ALL"
    )
    day = pipeline.days[-1]
    with warehouse_copy.connect() as conn:
        queries.build_metric_statistics(conn, experiment, day)
        whole = conn.execute(query, [experiment.spec.id, quantile_metrics]).fetchall()
        slices: list[int] = []

        def seven_slices(_conn: duckdb.DuckDBPyConnection, units: int) -> int:
            slices.append(units)
            return 7

        monkeypatch.setattr(quantiles, "_unit_chunks", seven_slices)
        queries.build_metric_statistics(conn, experiment, day)
        sliced = conn.execute(query, [experiment.spec.id, quantile_metrics]).fetchall()
    assert len(slices) == len(quantile_metrics) and min(slices) > 7
    assert len(whole) > 0 and sliced == whole


@pytest.mark.parametrize(
    ("limit", "units", "slices"),
    [("100MB", 1_000_000, 11), ("1GB", 10_000_000, 11), ("1GB", 900_000, 1), ("20MB", 10, 1)],
)
def test_quantile_slices_follow_the_memory_limit(
    limit: str, units: int, slices: int, tmp_path: Path
) -> None:
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"), memory_limit=limit)
    with warehouse.connect() as conn:
        # DuckDB reports the limit to one decimal of its unit (19.07 MiB as "19.0 MiB")
        assert queries.memory_limit_bytes(conn) == pytest.approx(
            float(limit[:-2]) * {"MB": 1e6, "GB": 1e9}[limit[-2:]], rel=1e-2
        )
        assert quantiles._unit_chunks(conn, units) == slices
