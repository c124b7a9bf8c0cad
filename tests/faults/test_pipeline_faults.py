"""Faults that only show across tables or days, and one analysis of an A/A test riddled with
faults: every row accounted for, no traceback, and no SHIP from a test with no effect."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from assets._common import run_gate
from exp_dagster.cli import _print_quarantine, main
from exp_dagster.report.data import DataQuality
from exp_dagster.runner import PipelineInputError, plan
from exp_dagster.schemas import unit_metrics_schema
from exp_dagster.warehouse.landing import LogSource
from exp_dagster.warehouse.queries import (
    build_event_facts,
    build_exposures,
    build_unit_metrics,
    ensure_schema,
)
from tests.faults.corpus import (
    DAY,
    END,
    EXPERIMENT_ID,
    START,
    _flip_variants,
    _with,
    events,
    experiment,
    exposures,
    hive,
    unit_ids,
    write,
    write_catalog,
)


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    ensure_schema(connection)
    return connection


def test_events_of_never_exposed_units_are_kept_but_not_analysed(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    resolved = experiment()
    exposed, strangers = unit_ids(80), unit_ids(20, "never-")
    build_exposures(conn, resolved, hive(tmp_path, "exposures", exposures(units=exposed)), DAY)
    frame = events(units=exposed + strangers)
    counts = build_event_facts(conn, hive(tmp_path, "events", frame), DAY, [])
    # Event facts are shared by every experiment: the strangers' rows are valid events.
    assert counts.rows_in == len(frame) == counts.rows_validated and counts.rows_quarantined == 0
    units = build_unit_metrics(conn, resolved, DAY)
    assert units.units == len(exposed)
    analysed = {u for (u,) in conn.execute("SELECT DISTINCT unit_id FROM unit_metrics").fetchall()}
    assert analysed == set(exposed)


def test_a_unit_that_crosses_over_between_days_is_left_out(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    resolved = experiment(hash_salt=None)
    units = unit_ids(40)
    source = hive(tmp_path, "exposures", exposures(START, units), day=START)
    hive(tmp_path, "exposures", _flip_variants(exposures(DAY, units[:1]), slice(0, 1)), day=DAY)
    for day in (START, DAY):
        build_exposures(conn, resolved, source, day)
    counts = build_unit_metrics(conn, resolved, DAY)
    assert counts.crossover_units == 1 and counts.units == len(units) - 1
    left = conn.execute("SELECT count(*) FROM unit_metrics WHERE unit_id = ?", [units[0]])
    assert left.fetchone() == (0,)


def test_negative_denominators_fail_the_unit_metrics_gate(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    resolved = experiment()
    build_exposures(conn, resolved, hive(tmp_path, "exposures", exposures()), DAY)
    frame = events()
    frame.loc[frame["event"] == "impression", "value"] = -1.0
    build_event_facts(conn, hive(tmp_path, "events", frame), DAY, [])
    build_unit_metrics(conn, resolved, DAY)
    schema = unit_metrics_schema(
        list(resolved.spec.weights), list(resolved.metrics), ["conversion"]
    )
    table = conn.execute(f"SELECT {', '.join(schema.columns)} FROM unit_metrics").fetchdf()
    gate = run_gate("check_unit_metrics_schema", "unit_metrics", table, schema, len(table))
    assert not gate.passed
    assert "x: greater_than_or_equal_to(0)" in str(gate.metadata["summary"].value)


def test_a_window_day_without_event_logs_stops_the_plan(tmp_path: Path) -> None:
    for day in (START, END):
        hive(tmp_path, "events", events(day), day=day)
    with pytest.raises(PipelineInputError) as error:
        plan(experiment(), LogSource("events", tmp_path / "events"), END)
    message = str(error.value)
    assert f"no date= folder for {START + dt.timedelta(1)}, {DAY + dt.timedelta(1)}" in message
    assert EXPERIMENT_ID in message and "re-export" in message


def _faulty_logs(root: Path) -> tuple[int, int]:
    """Three days of an A/A test with row-level faults on every day; returns (exposure rows of
    the experiment, event rows of the window) as written."""
    exposure_rows = event_rows = 0
    population = unit_ids(300)
    for index in range(3):
        day = START + dt.timedelta(days=index)
        units = population[index * 100 : (index + 1) * 100]
        frame = exposures(day, units)
        frame = _with(frame, slice(0, 2), experiment_id=None)
        frame = _with(frame, slice(2, 4), variant="variant_c")
        frame = _flip_variants(frame, slice(4, 6))
        frame = _with(frame, slice(6, 7), exposed_at="not a time")
        frame = pd.concat([frame, frame.iloc[10:20]], ignore_index=True)  # duplicates
        other = exposures(day, unit_ids(5, "other-")).assign(experiment_id="another_test")
        write(pd.concat([frame, other]), root / "exposures" / f"date={day}" / "part-0.csv")
        exposure_rows += len(frame)
        active = population[: (index + 1) * 100] + unit_ids(10, "never-")
        logged = events(day, active)
        logged = _with(logged, slice(0, 2), value=float("nan"))
        logged = _with(logged, slice(2, 3), value=1e40)
        logged = _with(logged, slice(3, 5), unit_id=None)
        logged = _with(logged, slice(5, 6), event_time="2031-01-01T00:00:00Z")
        write(logged, root / "events" / f"date={day}" / "part-0.parquet")
        event_rows += len(logged)
    return exposure_rows, event_rows


def test_an_aa_test_full_of_faults_is_accounted_for_and_never_ships(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exposure_rows, event_rows = _faulty_logs(tmp_path)
    # The first day's events delivered twice, under the next part number: they count once.
    first = tmp_path / "events" / f"date={START}" / "part-0.parquet"
    shutil.copyfile(first, first.with_name("part-1.parquet"))
    copied = len(pd.read_parquet(first))
    spec = write_catalog(tmp_path / "catalog", end=(START + dt.timedelta(days=2)).isoformat())
    code = main(
        [
            "analyze",
            "--experiment",
            str(spec),
            "--exposures",
            str(tmp_path / "exposures"),
            "--events",
            str(tmp_path / "events"),
            "--json",
            str(tmp_path / "out.json"),
            "--home",
            str(tmp_path / "home"),
        ]
    )
    output = capsys.readouterr()
    assert code == 0 and "Traceback" not in output.err
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["decision"] != "SHIP"
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as conn:
        ((validated, quarantined),) = conn.execute(
            "SELECT (SELECT sum(exposure_rows) FROM exposures), "
            "(SELECT count(*) FROM exposure_quarantine)"
        ).fetchall()
        ((facts, bad_events),) = conn.execute(
            "SELECT (SELECT sum(n) FROM event_facts), (SELECT count(*) FROM event_quarantine)"
        ).fetchall()
        exposure_sql = "SELECT DISTINCT reason FROM exposure_quarantine"
        reasons = {r for (r,) in conn.execute(exposure_sql).fetchall()}
        event_sql = "SELECT DISTINCT reason FROM event_quarantine"
        event_reasons = {r for (r,) in conn.execute(event_sql).fetchall()}
    assert validated + quarantined == exposure_rows
    assert quarantined == 3 * 7
    assert facts + bad_events == event_rows + copied and bad_events == 3 * 6 + copied
    # The run says what it set aside, each reason with its count.
    assert f"Quarantined exposure rows: 21 of {exposure_rows:,}, by reason" in output.out
    assert f"Quarantined event rows: {18 + copied:,} of {event_rows + copied:,}" in output.out
    assert f"{copied:>9,}  the file is a byte-identical copy of {first}" in output.out
    assert {"experiment_id is missing", "exposed_at is missing or not a timestamp"} <= reasons
    assert any(r.startswith("unknown variant 'variant_c'") for r in reasons)
    assert any("disagrees with the deterministic hash" in r for r in reasons)
    assert "unit_id is missing" in event_reasons
    assert any(r.startswith("value 1e+40 is beyond") for r in event_reasons), event_reasons


def test_quarantine_reasons_reach_the_terminal_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """Reasons quote the logs' values (a variant label): control characters are escaped."""
    quality = DataQuality(
        exposure_rows=10,
        exposure_units=10,
        exposure_quarantine={"unknown variant '\x1b[2Jtreatment' (the spec has …)": 2},
        event_rows=5,
        event_quarantine={},
        first_event_day=START,
    )
    _print_quarantine(quality)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jtreatment" in out
    assert "Quarantined exposure rows: 2 of 12, by reason" in out and "event rows" not in out
