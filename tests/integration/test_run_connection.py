"""One DuckDB connection per run: the steps of a run share the warehouse connection, each starts
as on a fresh one, a failed step rolls back and loses the connection, and the file is free (and
checkpointed) when the run ends, however it ends."""

# No `from __future__ import annotations` here: Dagster reads the resource annotations of the
# test assets as objects to find their resources.

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

import exp_dagster.resources
from exp_dagster.definitions import build_definitions
from exp_dagster.resources import Catalog, LandingZone, Warehouse
from exp_dagster.runner import materialize, plan
from exp_dagster.simulate import SimulationConfig, simulate
from tests.conftest import write_spec

# the connections themselves, not their ids: a closed connection's id may be reused
seen: list[duckdb.DuckDBPyConnection] = []


@dg.asset
def writes_and_stages(warehouse: Warehouse) -> None:
    with warehouse.connect() as conn:
        seen.append(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS kept (step VARCHAR)")
        conn.execute("INSERT INTO kept VALUES ('first')")
        conn.execute("CREATE TEMP TABLE staged AS SELECT 1 AS x")
        conn.execute("CREATE TEMP VIEW staged_view AS SELECT x FROM staged")


@dg.asset(deps=[writes_and_stages])
def reads_after(warehouse: Warehouse) -> None:
    with warehouse.connect() as conn:
        seen.append(conn)
        temporary = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
        views = conn.execute(
            "SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal"
        ).fetchone()
        assert temporary == (0,) and views == (0,), "a step saw the previous step's temp objects"
        conn.execute("INSERT INTO kept VALUES ('second')")


@dg.asset(deps=[writes_and_stages])
def fails_mid_transaction(warehouse: Warehouse) -> None:
    with warehouse.connect() as conn:
        seen.append(conn)
        conn.execute("BEGIN TRANSACTION")
        conn.execute("INSERT INTO kept VALUES ('rolled back')")
        raise RuntimeError("the step fails with its transaction open")


@dg.asset(deps=[fails_mid_transaction, writes_and_stages])
def never_runs(warehouse: Warehouse) -> None:
    with warehouse.connect() as conn:
        conn.execute("INSERT INTO kept VALUES ('downstream of a failure')")


def run(database: Path, assets: list[dg.AssetsDefinition]) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=assets,
        resources={"warehouse": Warehouse(database=str(database))},
        executor=dg.in_process_executor,
    )
    with dg.DagsterInstance.ephemeral() as instance:
        return defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )


def kept(database: Path) -> list[str]:
    # read_only fails while another connection in this process holds the file read-write
    with duckdb.connect(str(database), read_only=True) as conn:
        return [step for (step,) in conn.execute("SELECT step FROM kept ORDER BY ALL").fetchall()]


@pytest.fixture(autouse=True)
def _forget_connections() -> Iterator[None]:
    seen.clear()
    yield
    seen.clear()


def test_the_steps_of_a_run_share_one_connection_and_none_of_its_temp_objects(
    tmp_path: Path,
) -> None:
    database = tmp_path / "warehouse.duckdb"
    result = run(database, [writes_and_stages, reads_after])
    assert result.success
    assert len(seen) == 2 and seen[0] is seen[1]
    assert kept(database) == ["first", "second"]
    assert not Path(f"{database}.wal").exists()  # closed, so checkpointed, at the end of the run


def test_a_failed_step_rolls_back_and_the_run_still_closes_the_file(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    result = run(database, [writes_and_stages, fails_mid_transaction, reads_after, never_runs])
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed == {"fails_mid_transaction"}
    # reads_after ran on a fresh connection after the failure or before it: either way it wrote
    assert sorted(kept(database)) == ["first", "second"]
    assert "rolled back" not in kept(database)


def test_direct_invocation_closes_its_connection(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(database=str(database))
    writes_and_stages(warehouse=warehouse)
    assert kept(database) == ["first"]
    with warehouse.connect() as first, warehouse.connect() as second:  # outside a run
        assert first is not second


def test_a_run_of_the_pipeline_opens_the_warehouse_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimulationConfig(n_units=300, days=2, pre_days=1, seed=3)
    truth = simulate(tmp_path / "landing", config)
    write_spec(tmp_path / "catalog", config)
    database = tmp_path / "warehouse.duckdb"
    resources: dict[str, dg.ConfigurableResource] = {
        "warehouse": Warehouse(database=str(database)),
        "landing": LandingZone(
            exposures_path=str(tmp_path / "landing" / "exposures"),
            events_path=str(tmp_path / "landing" / "events"),
        ),
        "catalog": Catalog(catalog_dir=str(tmp_path / "catalog")),
    }
    opened: list[str] = []
    connect = exp_dagster.resources.connect_when_free

    def counted(database: str, **kwargs: object) -> duckdb.DuckDBPyConnection:
        opened.append(database)
        return connect(database, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(exp_dagster.resources, "connect_when_free", counted)
    defs = build_definitions(resources)
    experiment = resources["catalog"].experiment(config.experiment_id)  # type: ignore[attr-defined]
    the_plan = plan(experiment, resources["landing"].events(), truth.end)  # type: ignore[attr-defined]
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(defs, instance, experiment, the_plan)
        runs = instance.get_runs()
        steps = {
            run.run_id: len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS))
            for run in runs
        }
    assert len(runs) == len(the_plan.event_days) + len(the_plan.experiment_days) == 5
    assert max(steps.values()) >= 9  # the analysis runs have a step per asset
    assert len(opened) == len(runs)  # one connection per run, not per step
    assert not Path(f"{database}.wal").exists()
