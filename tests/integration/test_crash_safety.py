"""Crash safety and idempotency: a write killed half-way leaves the partition as it was, re-runs
give byte-identical tables, and two processes writing one DuckDB file wait for each other."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from exp_dagster.definitions import build_definitions
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.resources import Catalog, LandingZone, Warehouse, WarehouseBusyError
from exp_dagster.runner import materialize, plan
from exp_dagster.simulate import SimulationConfig, simulate
from exp_dagster.warehouse import ingest, queries
from tests.conftest import write_spec
from tests.faults.corpus import DAY, events, experiment, exposures, hive, unit_ids
from tests.integration.test_pipeline import table_digest

PARTITION_TABLES = ("exposures", "exposure_quarantine", "event_facts", "event_quarantine")

# Rebuilds one partition in a child process and stops it inside the transaction: the child says
# when it has run the statement ``kill_point`` (the partition's old rows deleted, new ones half
# written) and waits there to be killed.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import duckdb
    from exp_dagster.warehouse import ingest, queries
    from exp_dagster.warehouse.landing import LogSource
    from tests.faults.corpus import DAY, experiment

    database, landing, step, kill_point = sys.argv[1:5]
    run = ingest.execute

    def execute(conn, statement, params):
        cursor = run(conn, statement, params)
        if statement.startswith(kill_point):
            print("IN TRANSACTION", flush=True)
            time.sleep(120)
        return cursor

    ingest.execute = execute
    conn = duckdb.connect(database)
    queries.ensure_schema(conn)
    if step == "exposures":
        source = LogSource("exposures", Path(landing) / "exposures")
        queries.build_exposures(conn, experiment(), source, DAY)
    else:
        queries.build_event_facts(conn, LogSource("events", Path(landing) / "events"), DAY, [])
    """
)
# Holds the DuckDB file's lock (a plain connection) for a few seconds, as another run would.
HOLDER = textwrap.dedent(
    """
    import sys, time
    import duckdb
    conn = duckdb.connect(sys.argv[1])
    print("LOCKED", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.close()
    """
)


def start(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(child: subprocess.Popen[str], line: str, timeout: float = 120.0) -> None:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = child.stdout.readline()
        if got.strip() == line:
            return
        if not got and child.poll() is not None:
            break
    child.kill()
    raise AssertionError(f"child never printed {line!r}: {child.communicate()[1][-2000:]}")


def landing_zone(root: Path, units: int) -> Path:
    ids = unit_ids(units)
    hive(root, "exposures", exposures(units=ids))
    hive(root, "events", events(units=ids))
    return root


def build(database: Path, landing: Path) -> dict[str, str]:
    """Build the day's exposures and event facts; return the digests of their tables."""
    with duckdb.connect(str(database)) as conn:
        queries.ensure_schema(conn)
        source = queries.LogSource("exposures", landing / "exposures")
        queries.build_exposures(conn, experiment(), source, DAY)
        queries.build_event_facts(conn, queries.LogSource("events", landing / "events"), DAY, [])
    return partition_digests(database)


def partition_digests(database: Path) -> dict[str, str]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return {table: table_digest(conn, table) for table in PARTITION_TABLES}


@pytest.mark.parametrize(
    ("step", "kill_point"),
    [("exposures", "INSERT INTO exposure_quarantine"), ("events", "INSERT INTO event_facts")],
)
def test_a_write_killed_mid_transaction_leaves_the_partition_intact(
    tmp_path: Path, step: str, kill_point: str
) -> None:
    database = tmp_path / "warehouse.duckdb"
    original = landing_zone(tmp_path / "original", units=120)
    before = build(database, original)
    # New logs for the same day: a completed re-run would change the partition.
    changed = landing_zone(tmp_path / "changed", units=60)
    child = start(CHILD, database, changed, step, kill_point)
    wait_for(child, "IN TRANSACTION")
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert partition_digests(database) == before
    # Re-running on the original logs gives the same tables, byte for byte.
    assert build(database, original) == before
    assert build(database, changed) != before  # (the kill, not the data, kept them equal)


def test_an_error_inside_the_transaction_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = landing_zone(tmp_path, units=80)
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    queries.ensure_schema(conn)
    source = queries.LogSource("exposures", landing / "exposures")
    queries.build_exposures(conn, experiment(), source, DAY)
    before = table_digest(conn, "exposures")
    run = ingest.execute

    def failing(conn: duckdb.DuckDBPyConnection, statement: str, params: dict) -> object:
        if statement.startswith("INSERT INTO exposure_quarantine"):
            raise OSError("disk full")
        return run(conn, statement, params)

    monkeypatch.setattr(ingest, "execute", failing)
    with pytest.raises(OSError, match="disk full"):
        queries.build_exposures(conn, experiment(), source, DAY)
    assert table_digest(conn, "exposures") == before


def test_a_spec_change_rewrites_the_partition_with_the_new_version(tmp_path: Path) -> None:
    landing = landing_zone(tmp_path, units=50)
    conn = duckdb.connect()
    queries.ensure_schema(conn)
    source = queries.LogSource("exposures", landing / "exposures")
    old, new = experiment(), experiment(mde=0.05)
    assert old.version != new.version
    queries.build_exposures(conn, old, source, DAY)
    queries.build_exposures(conn, new, source, DAY)
    versions = conn.execute("SELECT DISTINCT spec_version FROM exposures").fetchall()
    assert versions == [(new.version,)]


def test_a_writer_waits_for_another_process_holding_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "warehouse.duckdb"
    landing = landing_zone(tmp_path / "landing", units=60)
    holder = start(HOLDER, database, 2.0)
    wait_for(holder, "LOCKED")
    started = time.monotonic()
    with caplog.at_level("WARNING"), Warehouse(database=str(database)).connect() as conn:
        waited = time.monotonic() - started
        source = queries.LogSource("exposures", landing / "exposures")
        counts = queries.build_exposures(conn, experiment(), source, DAY)
    assert holder.wait(timeout=60) == 0
    assert waited > 0.5 and counts.units == 60
    assert "is in use by another process; waiting up to 900 s" in caplog.text


def test_a_writer_that_waits_too_long_says_so(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    holder = start(HOLDER, database, 3.0)
    wait_for(holder, "LOCKED")
    busy = Warehouse(database=str(database), lock_wait_seconds=0.5)
    with pytest.raises(WarehouseBusyError) as error, busy.connect():
        pass
    assert str(database) in str(error.value) and "let that run finish" in str(error.value)
    assert holder.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    root = tmp_path_factory.mktemp("rerun")
    config = SimulationConfig(n_units=300, days=2, pre_days=1, seed=3)
    truth = simulate(root / "landing", config)
    write_spec(root / "catalog", config)
    database = root / "warehouse.duckdb"
    resources: dict[str, dg.ConfigurableResource] = {
        "warehouse": Warehouse(database=str(database)),
        "landing": LandingZone(
            exposures_path=str(root / "landing" / "exposures"),
            events_path=str(root / "landing" / "events"),
        ),
        "catalog": Catalog(catalog_dir=str(root / "catalog")),
    }
    defs = build_definitions(resources)
    resolved = resources["catalog"].experiment(config.experiment_id)  # type: ignore[attr-defined]
    the_plan = plan(resolved, resources["landing"].events(), truth.end)  # type: ignore[attr-defined]
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(defs, instance, resolved, the_plan)
        yield defs, instance, resolved, the_plan, database


ALL_TABLES = (
    "exposures",
    "exposure_quarantine",
    "event_facts",
    "quantile_facts",
    "event_times",
    "event_quarantine",
    "pre_period_covariates",
    "pre_exposure_facts",
    "pre_exposure_quantile_facts",
    "unit_metrics",
    "metric_statistics",
    "quantile_histograms",
    "novelty_statistics",
    "results",
    "decision",
)


def test_rerunning_every_partition_gives_byte_identical_tables(tiny_pipeline: tuple) -> None:
    """Every partition is materialised twice (the fixture, then here); test_pipeline.py re-runs
    a larger experiment's plan in reverse order."""
    defs, instance, resolved, the_plan, database = tiny_pipeline

    def snapshot() -> dict[str, str]:
        with duckdb.connect(str(database), read_only=True) as conn:
            return {table: table_digest(conn, table) for table in ALL_TABLES}

    first = snapshot()
    with duckdb.connect(str(database), read_only=True) as conn:
        decided = conn.execute("SELECT count(*) FROM decision").fetchall()
    assert decided == [(len(the_plan.experiment_days),)]
    materialize(defs, instance, resolved, the_plan)
    assert snapshot() == first
    assert the_plan.experiment_days[-1] - the_plan.experiment_days[0] == dt.timedelta(days=1)


def test_runs_never_log_the_hash_salt(tiny_pipeline: tuple) -> None:
    """The salt lets anyone predict assignments: no event, log line or metadata may carry it."""
    _, instance, resolved, _, _ = tiny_pipeline
    salt = str(resolved.spec.hash_salt)
    runs = instance.get_runs()
    assert runs
    for run in runs:
        for entry in instance.all_logs(run.run_id):
            assert salt not in repr(entry), entry
