"""The project's dagster.yaml loads, and says what docs/architecture.md promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from exp_dagster.home import PROJECT_ROOT


def test_dagster_yaml_loads_with_one_writer_at_a_time(tmp_path: Path) -> None:
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        settings = instance.get_settings("concurrency")
        assert settings["runs"]["tag_concurrency_limits"] == [
            {"key": "exp_dagster/writer", "limit": 1}
        ]
        assert settings["pools"]["default_limit"] == 1
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert not instance.nux_enabled  # no first-visit dialog in the UI
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"


@dg.asset(pool="duckdb_writer")
def first_writer() -> None: ...


@dg.asset(pool="duckdb_writer", deps=[first_writer])
def second_writer() -> None: ...


def test_a_run_with_a_writer_step_in_progress_holds_the_pool_until_it_ends(tmp_path: Path) -> None:
    """A run keeps its DuckDB connection between steps (exp_dagster.resources.Warehouse), so the
    writer pool counts runs, not ops: the queue (here its counter, as the daemon builds it) holds
    a second run back while the first is in progress, even between the first's steps."""
    from dagster._core.op_concurrency_limits_counter import GlobalOpConcurrencyLimitsCounter

    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    job = dg.Definitions(
        assets=[first_writer, second_writer]
    ).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        running = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        waiting = instance.create_run_for_job(job, status=dg.DagsterRunStatus.NOT_STARTED)
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("duckdb_writer")
        counter = GlobalOpConcurrencyLimitsCounter(
            instance,
            [waiting],
            instance.get_run_records(dg.RunsFilter(run_ids=[running.run_id])),
            concurrency_keys=storage.get_concurrency_keys(),
            pool_limits=storage.get_pool_limits(),
            pool_granularity=instance.get_concurrency_config().pool_config.pool_granularity,
        )
        assert counter.is_blocked(waiting)
