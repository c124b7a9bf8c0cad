"""The asset graph end to end, in process, on a small simulated experiment."""

from __future__ import annotations

import datetime as dt
import hashlib

import dagster as dg
import duckdb

from exp_dagster.partitions import experiment_day_key
from exp_dagster.runner import materialize, plan
from tests.conftest import Pipeline

TABLES_BY_EXPERIMENT_DAY = {
    "exposures": "exposure_date",
    "exposure_quarantine": "exposure_date",
    "pre_period_covariates": "exposure_date",
    "pre_exposure_facts": "exposure_date",
    "pre_exposure_quantile_facts": "exposure_date",
    "unit_metrics": "as_of_date",
    "metric_statistics": "as_of_date",
    "quantile_histograms": "as_of_date",
    "novelty_statistics": "as_of_date",
    "results": "as_of_date",
    "decision": "as_of_date",
}


def table_digest(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    rows = conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def digests(pipeline: Pipeline) -> dict[str, str]:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        tables = [
            *TABLES_BY_EXPERIMENT_DAY,
            "event_facts",
            "quantile_facts",
            "event_times",
            "event_quarantine",
        ]
        return {table: table_digest(conn, table) for table in tables}


def test_every_partition_has_a_decision(pipeline: Pipeline) -> None:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        decisions = conn.execute(
            "SELECT as_of_date, decision FROM decision ORDER BY as_of_date"
        ).fetchall()
        early_evidence = dict(
            conn.execute(
                "SELECT as_of_date, bool_and(sequential_significant) FROM results "
                "WHERE role = 'primary' AND segment = 'all' GROUP BY as_of_date"
            ).fetchall()
        )
    assert [d for d, _ in decisions] == pipeline.days
    # Before the end date only a crossed group-sequential boundary may ship (no peeking).
    assert all(early_evidence.get(day) for day, verdict in decisions[:-1] if verdict == "SHIP")
    assert {verdict for _, verdict in decisions} <= {
        "SHIP",
        "ROLLBACK",
        "KEEP_RUNNING",
        "INCONCLUSIVE",
        "INVALID",
    }


def test_rows_in_equal_rows_validated_plus_quarantined(pipeline: Pipeline) -> None:
    with duckdb.connect() as conn:
        raw_exposures = conn.execute(
            "SELECT count(*) FROM read_parquet($f)",
            {"f": str(pipeline.landing / "exposures" / "*" / "*.parquet")},
        ).fetchone()
        raw_events = conn.execute(
            "SELECT count(*), min(event_time)::DATE FROM read_parquet($f)",
            {"f": str(pipeline.landing / "events" / "*" / "*.parquet")},
        ).fetchone()
    assert raw_exposures and raw_events
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        validated = conn.execute("SELECT sum(exposure_rows) FROM exposures").fetchone()
        quarantined = conn.execute("SELECT count(*) FROM exposure_quarantine").fetchone()
        facts = conn.execute("SELECT sum(n) FROM event_facts").fetchone()
        bad_events = conn.execute("SELECT count(*) FROM event_quarantine").fetchone()
        last_event_day = conn.execute("SELECT max(event_date) FROM event_facts").fetchone()
    assert validated and quarantined and facts and bad_events and last_event_day
    assert validated[0] + quarantined[0] == raw_exposures[0]
    # The landing zone also holds a day after the window (late activity) that no analysis reads.
    with duckdb.connect() as conn:
        in_window = conn.execute(
            "SELECT count(*) FROM read_parquet($f) WHERE event_time::DATE <= $last",
            {"f": str(pipeline.landing / "events" / "*" / "*.parquet"), "last": last_event_day[0]},
        ).fetchone()
    assert in_window and facts[0] + bad_events[0] == in_window[0]


def test_results_cover_every_metric_with_sane_numbers(pipeline: Pipeline) -> None:
    last = pipeline.days[-1]
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT metric, n_control, n_treatment, abs_ci_low, abs_effect, abs_ci_high, p_value, "
            "cuped, variance_reduction FROM results WHERE as_of_date = ? AND segment = 'all'",
            [last],
        ).fetchall()
        segments = conn.execute(
            "SELECT DISTINCT segment FROM results WHERE as_of_date = ? ORDER BY 1", [last]
        ).fetchall()
    by_metric = {row[0]: row for row in rows}
    assert set(by_metric) == set(pipeline.experiment.metrics)
    for metric, n_c, n_t, low, effect, high, p_value, cuped, reduction in rows:
        assert n_c > 1000 and n_t > 1000, metric
        assert low <= effect <= high and 0 <= p_value <= 1, metric
        if cuped:
            assert 0 < reduction < 1, metric
    assert by_metric["watch_time"][7] is True and by_metric["watch_time"][8] > 0.1
    # CTR is CUPED-adjusted by the same ratio in the pre-period (CUPED for ratio metrics).
    assert by_metric["ctr"][7] is True and by_metric["ctr"][8] > 0.0
    assert [s for (s,) in segments] == ["all", "country", "is_new_user", "platform"]


def test_rows_written_from_python_passed_the_column_check_with_their_nulls(
    pipeline: Pipeline,
) -> None:
    """replace_partition refuses a row whose keys are not its table's columns (a run would have
    failed): the real rows, sparse ones too (segment results without the overall-only fields,
    model-evaluation rows of kinds without intervals), reached every table with those NULLs."""
    sparse = {
        "results": "segment <> 'all' AND sequential_method IS NULL AND power IS NULL",
        "offline_evaluation": "baseline IS NULL AND effective_sample_size IS NULL",
        "offline_online_parity": "TRUE",
        "decision": "TRUE",
    }
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        for table, condition in sparse.items():
            days = conn.execute(
                f"SELECT count(DISTINCT as_of_date) FROM {table} WHERE {condition}"
            ).fetchone()
            assert days is not None and days[0] > 0, table


def test_rematerialising_gives_identical_tables(pipeline: Pipeline) -> None:
    before = digests(pipeline)
    experiment = pipeline.experiment
    # Re-run a middle day, then the whole plan in reverse order: nothing may change.
    middle = pipeline.days[2]
    analyze = pipeline.defs.resolve_job_def("analyze_experiment_day")
    result = analyze.execute_in_process(
        partition_key=str(experiment_day_key(experiment.spec.id, middle)),
        instance=pipeline.instance,
    )
    assert result.success
    assert digests(pipeline) == before
    the_plan = plan(experiment, pipeline.resources["landing"].events(), pipeline.days[-1])  # type: ignore[attr-defined]
    reversed_plan = type(the_plan)(
        event_days=tuple(reversed(the_plan.event_days)),
        experiment_days=tuple(reversed(the_plan.experiment_days)),
    )
    materialize(pipeline.defs, pipeline.instance, experiment, reversed_plan)
    assert digests(pipeline) == before


def test_materialisations_carry_metadata_and_checks(pipeline: Pipeline) -> None:
    day = pipeline.days[-1]
    key = str(experiment_day_key(pipeline.experiment.spec.id, day))
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("exposures"))
    assert event is not None and event.asset_materialization is not None
    decision = pipeline.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("decision"), asset_partitions=[key]), limit=1
    ).records[0]
    metadata = decision.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["decision"].value in {"SHIP", "KEEP_RUNNING", "INCONCLUSIVE", "ROLLBACK"}
    assert "as of" in str(metadata["summary"].value)
    exposures = (
        pipeline.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("exposures"), asset_partitions=[key]),
            limit=1,
        )
        .records[0]
        .asset_materialization
    )
    assert exposures is not None
    rows = exposures.metadata
    assert rows["rows_in"].value == rows["rows_validated"].value + rows["rows_quarantined"].value
    checks = pipeline.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("unit_metrics"), "check_sample_ratio"), limit=1
    )
    assert checks, "the sample-ratio check ran"


def test_plan_only_requests_days_with_data(pipeline: Pipeline) -> None:
    the_plan = plan(
        pipeline.experiment, pipeline.resources["landing"].events(), dt.date(2030, 1, 1)
    )  # type: ignore[attr-defined]
    assert the_plan.experiment_days[-1] == pipeline.experiment.spec.end
    assert the_plan.event_days[0] == pipeline.experiment.spec.start - dt.timedelta(days=3)


def test_true_effects_lie_in_their_intervals_and_cuped_reduces_variance(pipeline: Pipeline) -> None:
    """The simulation's known relative effects against the pipeline's 95% intervals.

    One seeded draw: each interval covers with probability 0.95, and the stats tests check that
    calibration by simulation; this checks the pipeline feeds the estimators the right numbers.
    """
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT metric, rel_ci_low, rel_ci_high, variance_reduction FROM results "
            "WHERE as_of_date = ? AND segment = 'all'",
            [pipeline.days[-1]],
        ).fetchall()
    intervals = {metric: (low, high, reduction) for metric, low, high, reduction in rows}
    for metric, effect in pipeline.truth.relative_effects.items():
        low, high, _ = intervals[metric]
        assert low <= effect <= high, (
            f"{metric}: true {effect:+.4f} outside [{low:+.4f}, {high:+.4f}]"
        )
    assert intervals["watch_time"][2] > 0.1  # a 3-day pre-period: rho² is modest


def test_check_results_are_kept_per_partition(pipeline: Pipeline) -> None:
    """Every check is partitioned like its asset, so the UI shows each partition's result and
    history rather than one stream of every experiment and day mixed: each day's SRM check has
    its own record, under that experiment × day."""
    from exp_dagster.partitions import experiment_day_key

    check = dg.AssetCheckKey(dg.AssetKey("unit_metrics"), "check_sample_ratio")
    history = pipeline.instance.event_log_storage.get_asset_check_execution_history(
        check, limit=1000
    )
    assert {record.partition for record in history} == {
        str(experiment_day_key(pipeline.experiment.spec.id, day)) for day in pipeline.days
    }
    specs = [spec for a in pipeline.defs.assets or [] for spec in getattr(a, "check_specs", [])]
    assert specs and all(spec.partitions_def is not None for spec in specs)
