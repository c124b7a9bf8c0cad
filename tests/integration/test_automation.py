"""Sensors, schedules and automation conditions, evaluated in process (no daemon, no runs)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from exp_dagster.definitions import build_definitions
from exp_dagster.partitions import experiment_day_key
from exp_dagster.resources import Catalog, LandingZone, Warehouse
from exp_dagster.simulate import SimulationConfig
from exp_dagster.triggers import (
    daily_analysis,
    daily_event_facts,
    experiment_registry,
    landing_files,
    scan_registry,
)
from tests.conftest import write_spec

CONFIG = SimulationConfig(experiment_id="ranker_auto", days=4, pre_days=2)
START = CONFIG.start  # 2026-10-01; the window is 10-01 … 10-04, the pre-period 09-29 and 09-30
DAY = dt.timedelta(days=1)
# Dagster's own test helpers warn about their beta parameters and multi-partition tag keys.
pytestmark = [
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore:Non-compliant tag keys:DeprecationWarning"),
]


def touch_day(source: Path, day: dt.date, name: str = "part-0.parquet") -> Path:
    folder = source / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(16))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A catalog with one experiment, and landing folders for the pre-period and three days."""
    write_spec(tmp_path / "catalog", CONFIG)
    for offset in range(-2, 3):
        touch_day(tmp_path / "landing" / "events", START + offset * DAY)
    for offset in range(3):
        touch_day(tmp_path / "landing" / "exposures", START + offset * DAY)
    return tmp_path


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def resources(home: Path) -> dict[str, dg.ConfigurableResource]:
    return {
        "catalog": Catalog(catalog_dir=str(home / "catalog")),
        "landing": LandingZone(
            exposures_path=str(home / "landing" / "exposures"),
            events_path=str(home / "landing" / "events"),
        ),
        "warehouse": Warehouse(database=str(home / "warehouse.duckdb")),
    }


def tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, home: Path, cursor: str | None
) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources(home)
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    # What the daemon does with the result: apply the partition requests.
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [(r.job_name or "", r.partition_key or "") for r in result.run_requests or []]


def analysis(day: dt.date, experiment: str = "ranker_auto") -> tuple[str, str]:
    return ("analyze_experiment_day", str(experiment_day_key(experiment, day)))


def ingest(day: dt.date) -> tuple[str, str]:
    return ("ingest_events", day.isoformat())


def test_registry_adds_a_new_spec_and_requests_its_days_with_data_in_order(
    home: Path, instance: dg.DagsterInstance
) -> None:
    result = tick(experiment_registry, instance, home, None)
    assert instance.get_dynamic_partitions("experiment") == ["ranker_auto"]
    # Event facts for the pre-period and the window first, then each analysed day in date order;
    # the window's fourth day has no logs yet, so it is not requested.
    assert requested(result) == [
        *(ingest(START + offset * DAY) for offset in range(-2, 3)),
        *(analysis(START + offset * DAY) for offset in range(3)),
    ]
    assert all(r.tags["exp_dagster/writer"] == "duckdb" for r in result.run_requests or [])
    # The same catalog on the next tick asks for nothing.
    again = tick(experiment_registry, instance, home, result.cursor)
    assert requested(again) == []


def test_registry_reruns_a_changed_spec_and_forgets_a_removed_one(
    home: Path, instance: dg.DagsterInstance
) -> None:
    first = tick(experiment_registry, instance, home, None)
    write_spec(home / "catalog", CONFIG, alpha=0.01)
    changed = tick(experiment_registry, instance, home, first.cursor)
    # No run executed here, so the event facts are still missing and asked for again.
    analyses = [r for r in requested(changed) if r[0] == "analyze_experiment_day"]
    assert analyses == [analysis(START + offset * DAY) for offset in range(3)]
    old_version = json.loads(first.cursor or "{}")["ranker_auto"]
    new_version = json.loads(changed.cursor or "{}")["ranker_auto"]
    assert old_version != new_version
    assert {
        r.tags["exp_dagster/spec_version"]
        for r in changed.run_requests or []
        if r.job_name == "analyze_experiment_day"
    } == {new_version}

    (home / "catalog" / "experiments" / "ranker_auto.yaml").unlink()
    removed = tick(experiment_registry, instance, home, changed.cursor)
    assert requested(removed) == []
    assert instance.get_dynamic_partitions("experiment") == []
    assert json.loads(removed.cursor or "{}") == {}


def test_an_invalid_spec_is_reported_without_stopping_the_others(
    home: Path, instance: dg.DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = home / "catalog" / "experiments" / "broken.yaml"
    broken.write_text("id: broken\nvariants: not-a-list\n")
    registry = scan_registry(Catalog(catalog_dir=str(home / "catalog")))
    assert list(registry.experiments) == ["ranker_auto"]
    (error,) = registry.errors
    assert str(broken) in error and "field 'variants'" in error

    result = tick(experiment_registry, instance, home, None)
    assert instance.get_dynamic_partitions("experiment") == ["ranker_auto"]
    assert analysis(START) in requested(result)
    assert "field 'variants'" in capfd.readouterr().err  # the tick's log, as the UI shows it


def test_landing_sensor_sees_each_file_once_and_reruns_late_dates_downstream(
    home: Path, instance: dg.DagsterInstance
) -> None:
    # Unregistered experiments get nothing: the registry sensor owns new specs.
    first = tick(landing_files, instance, home, None)
    assert requested(first) == []
    instance.add_dynamic_partitions("experiment", ["ranker_auto"])
    touch_day(home / "landing" / "exposures", START + 3 * DAY)
    touch_day(home / "landing" / "events", START + 3 * DAY)
    new_day = tick(landing_files, instance, home, first.cursor)
    assert requested(new_day) == [ingest(START + 3 * DAY), analysis(START + 3 * DAY)]
    assert requested(tick(landing_files, instance, home, new_day.cursor)) == []

    # A late event file for the first day re-runs that day's facts and every later analysis.
    touch_day(home / "landing" / "events", START, name="late.parquet")
    late = tick(landing_files, instance, home, new_day.cursor)
    assert requested(late) == [
        ingest(START),
        *(analysis(START + offset * DAY) for offset in range(4)),
    ]
    # A late pre-period event file re-runs the whole window, a late exposure file its day on.
    touch_day(home / "landing" / "exposures", START + 2 * DAY, name="late.parquet")
    late_exposures = tick(landing_files, instance, home, late.cursor)
    assert requested(late_exposures) == [analysis(START + 2 * DAY), analysis(START + 3 * DAY)]
    # Events of a day no experiment needs are left alone (the grid is sparse).
    touch_day(home / "landing" / "events", START + 30 * DAY)
    assert requested(tick(landing_files, instance, home, late_exposures.cursor)) == []


@pytest.mark.parametrize(
    ("yesterday", "ingests", "analyses"),
    [
        (START - 2 * DAY, True, False),  # pre-period: events only
        (START + DAY, True, True),
        (START + 10 * DAY, False, False),  # after the end
    ],
)
def test_daily_schedules_cover_only_experiments_whose_window_covers_yesterday(
    home: Path, instance: dg.DagsterInstance, yesterday: dt.date, ingests: bool, analyses: bool
) -> None:
    write_spec(home / "catalog", CONFIG, id="unregistered")
    instance.add_dynamic_partitions("experiment", ["ranker_auto"])
    when = dt.datetime.combine(yesterday + DAY, dt.time(1), tzinfo=dt.UTC)
    for schedule, expected in ((daily_event_facts, ingests), (daily_analysis, analyses)):
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources=resources(home)
        ) as context:
            data = schedule(context)
        if not expected:
            assert isinstance(data, dg.SkipReason) and data.skip_message
            continue
        assert isinstance(data, list)
        keys = [r.partition_key for r in data]
        if schedule is daily_event_facts:
            assert keys == [yesterday.isoformat()]
        else:
            assert keys == [str(experiment_day_key("ranker_auto", yesterday))]


def key(day: dt.date) -> str:
    return str(experiment_day_key("ranker_auto", day))


def test_automation_refreshes_downstream_of_a_changed_partition_only(
    home: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(resources(home))
    instance.add_dynamic_partitions("experiment", ["ranker_auto"])
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing is requested just because it is missing

    # A run of the metric_statistics step writes every table of the step.
    statistics_step = step_tables(defs, "metric_statistics")
    assert {"metric_outliers", "quantile_histograms", "novelty_statistics"} < statistics_step
    for table in statistics_step:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=table, partition=key(START + DAY))
        )
    # A day of event facts maps to that day of every experiment, in or out of its window:
    # automation ignores it, and the tables written with it (the landing sensor routes changed
    # events).
    facts_step = step_tables(defs, "event_facts")
    assert {"quantile_facts", "event_times", "event_quarantine"} < facts_step
    for table in facts_step:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=table, partition=(START + 40 * DAY).isoformat())
        )
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_requested_partitions(dg.AssetKey("results")) == {key(START + DAY)}
    # decision's other parent, unit_metrics, is missing: it waits rather than fails.
    assert second.get_num_requested(dg.AssetKey("decision")) == 0
    assert second.get_num_requested(dg.AssetKey("unit_metrics")) == 0
    # the other child of metric_statistics: the next day's bandit split (a no-op without a bandit)
    assert second.get_requested_partitions(dg.AssetKey("bandit_allocations")) == {key(START + DAY)}
    assert second.total_requested == 2


def step_tables(defs: dg.Definitions, step: str) -> set[str]:
    """The tables (asset keys) the step ``step`` writes: its multi-asset's keys."""
    node = defs.resolve_asset_graph().get(dg.AssetKey(step))
    return {key.to_user_string() for key in node.execution_set_asset_keys}


@pytest.mark.parametrize("gate_passed", [False, True])
def test_a_step_that_writes_several_tables_waits_for_its_gates_and_runs_whole(
    home: Path, instance: dg.DagsterInstance, gate_passed: bool
) -> None:
    """After a run that updated exposures alone, the pre_period_covariates step (which also
    writes pre_exposure_facts and pre_exposure_quantile_facts) is requested whole, and only once
    the event facts it reads passed their gate: pre_exposure_facts, which reads event_times
    rather than event_facts, must not request the step on its own."""
    defs = build_definitions(resources(home))
    instance.add_dynamic_partitions("experiment", ["ranker_auto"])
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    day = key(START)
    for table in step_tables(defs, "event_facts"):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=table, partition=START.isoformat())
        )
    for table in step_tables(defs, "exposures"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=table, partition=day))
    for asset, check, partition, passed in (
        ("exposures", "check_exposures_schema", str(day), True),
        ("event_facts", "check_event_facts_schema", START.isoformat(), gate_passed),
    ):
        # Linked to the partition's materialization, as a run links it (partitioned checks).
        (latest,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
            limit=1,
        ).records
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset),
                check_name=check,
                passed=passed,
                partition=partition,
                target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                    storage_id=latest.storage_id, run_id=latest.run_id, timestamp=latest.timestamp
                ),
            )
        )
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    step = step_tables(defs, "pre_period_covariates")
    assert {"pre_exposure_facts", "pre_exposure_quantile_facts"} < step
    for table in step:
        expected = {day} if gate_passed else set()
        assert result.get_requested_partitions(dg.AssetKey(table)) == expected, table


@pytest.mark.parametrize("gate_passed", [False, True])
def test_automation_waits_for_blocking_checks(
    home: Path, instance: dg.DagsterInstance, gate_passed: bool
) -> None:
    defs = build_definitions(resources(home))
    instance.add_dynamic_partitions("experiment", ["ranker_auto"])
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    day = key(START)
    # Every parent of the decision is updated and passes its gates, except the results gate.
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey("decision")).parent_keys
    assert {dg.AssetKey("unit_metrics"), dg.AssetKey("results")} <= parents
    for parent in parents:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=parent, partition=day)
        )
    gates = [check for check in graph.asset_check_keys if check.asset_key in parents]
    assert dg.AssetCheckKey(dg.AssetKey("results"), "check_results_schema") in gates
    for gate in gates:
        # A run links its check result to the partition's materialization it checked; the
        # checks are partitioned like their assets, so automation looks for that link.
        (latest,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=gate.asset_key, asset_partitions=[str(day)]), limit=1
        ).records
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=gate.asset_key,
                check_name=gate.name,
                passed=gate_passed or gate.name != "check_results_schema",
                partition=day,
                target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                    storage_id=latest.storage_id,
                    run_id=latest.run_id,
                    timestamp=latest.timestamp,
                ),
            )
        )
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    expected = {day} if gate_passed else set()
    assert result.get_requested_partitions(dg.AssetKey("decision")) == expected


def add_run(
    instance: dg.DagsterInstance, request: tuple[str, str], status: dg.DagsterRunStatus
) -> None:
    """A run of ``request`` (job, partition) as the daemon records it, created now."""
    job_name, partition = request
    instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            run_id=str(uuid.uuid4()),
            tags={"dagster/partition": partition, "exp_dagster/writer": "duckdb"},
            status=status,
        )
    )


def test_landing_sensor_skips_partitions_with_a_run_created_after_the_file_landed(
    home: Path, instance: dg.DagsterInstance
) -> None:
    # The files are in place, then the registry sensor asks first and the daemon creates its
    # runs; the landing sensor's first look at the same files must not ask again.
    landed = time.time() - 60
    for path in (home / "landing").rglob("*.parquet"):
        os.utime(path, (landed, landed))
    registry = tick(experiment_registry, instance, home, None)
    for request in requested(registry):
        add_run(instance, request, dg.DagsterRunStatus.STARTED)
    assert requested(tick(landing_files, instance, home, None)) == []

    # A run that failed does not count: its partition is asked again, the others are not.
    instance.wipe()
    instance.add_dynamic_partitions("experiment", ["ranker_auto"])
    for request in requested(registry):
        failed = request in (ingest(START), analysis(START + DAY))
        add_run(
            instance,
            request,
            dg.DagsterRunStatus.FAILURE if failed else dg.DagsterRunStatus.SUCCESS,
        )
    first = tick(landing_files, instance, home, None)
    assert requested(first) == [ingest(START), analysis(START + DAY)]

    # A file that lands after those runs were created is read by none of them: a late exposure
    # file for the second day re-runs that day and the next, successful runs or not.
    late = touch_day(home / "landing" / "exposures", START + DAY, name="late.parquet")
    after_the_runs = time.time() + 5
    os.utime(late, (after_the_runs, after_the_runs))
    assert requested(tick(landing_files, instance, home, first.cursor)) == [
        analysis(START + DAY),
        analysis(START + 2 * DAY),
    ]
