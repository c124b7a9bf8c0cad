"""results and decision: effects with intervals, then a verdict with reasons."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext

from assets._common import gate_spec, run_gate, table_spec, timed, writer_asset, writer_tables
from exp_dagster.analysis import DayStatistics, compute_results, history_by_day
from exp_dagster.decision import Decision, decide, launch_periods
from exp_dagster.did_results import did_rows
from exp_dagster.oec_results import tree_rows
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.report import decision_markdown, results_markdown
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.warehouse.cross_statistics import read_cross_history
from exp_dagster.warehouse.did_panel import read_did_panel
from exp_dagster.warehouse.evaluation import read_rows
from exp_dagster.warehouse.partitions import (
    read_bandit_splits,
    read_event_names,
    read_history,
    read_partition,
    replace_partition,
    replace_partitions,
)
from exp_dagster.warehouse.statistics import read_outliers


@writer_tables(
    partitions_def=experiment_days,
    deps=[
        "metric_statistics",
        "quantile_histograms",
        "novelty_statistics",
        "metric_cross_statistics",
        "did_cluster_days",
    ],
    tables=[
        table_spec("metric_trees", deps=["metric_cross_statistics"]),
        table_spec("did_effects", deps=["did_cluster_days"]),
    ],
    kinds=("duckdb", "python"),
    check_specs=[
        gate_spec(
            "check_results_schema",
            "results",
            "Results: p-values in [0, 1], effects inside their intervals, two units per arm.",
        )
    ],
)
def results(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> tuple[dg.MaterializeResult, dg.MaterializeResult, dg.MaterializeResult]:
    """Per metric × treatment × segment value: control and treatment means, the absolute effect
    with its CI, the relative lift with a delta-method CI, the p-value, and CUPED's variance
    reduction; guardrails also get their one-sided non-inferiority bound. Overall rows carry the
    sequential boundary, p-value and interval (each earlier day is a look), adjusted p-values,
    the Bayesian summary and power; segment rows the heterogeneity test. A spec's ``oec`` adds its
    row per treatment; its ``metric_tree`` is written beside, in ``metric_trees``, and its ``did``
    block's difference-in-differences effects and event study in ``did_effects``. Conventions
    are in each row's ``method`` and in :mod:`exp_dagster.analysis`."""
    # Here, not at the top: pandas and pandera load with a run, not with the code location.
    import pandas as pd

    from exp_dagster.schemas import RESULTS_SCHEMA

    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        statistics = read_partition(conn, "metric_statistics", experiment_id, day)
        histograms = read_partition(conn, "quantile_histograms", experiment_id, day)
        history = history_by_day(
            *read_history(conn, experiment_id, day), spec_version=experiment.version
        )
        novelty = read_partition(conn, "novelty_statistics", experiment_id, day)
        cross = read_partition(conn, "metric_cross_statistics", experiment_id, day)
        cross_history = read_cross_history(conn, experiment, day)
        rows = compute_results(
            experiment,
            day,
            statistics,
            histograms,
            history,
            novelty,
            event_names=lambda: read_event_names(conn, day),
            cross_statistics=cross,
            cross_history=cross_history,
        )
        trees = tree_rows(experiment, day, cross)
        # The did panel is every day's cells from the start: a few rows per cluster and day.
        effects = did_rows(experiment, day, read_did_panel(conn, experiment, day))
        replace_partitions(
            conn,
            experiment_id,
            day,
            {"results": rows, "metric_trees": trees, "did_effects": effects},
        )
    # The gate checks the effects; a metric that is not estimable has none, only its reason.
    estimated = [row for row in rows if row.get("not_estimable") is None]
    not_estimable = {
        f"{row['metric']} ({row['variant']})": row["not_estimable"]
        for row in rows
        if row.get("not_estimable") is not None
    }
    if not_estimable:
        metadata["not_estimable"] = not_estimable
    gate = (
        run_gate(
            "check_results_schema",
            "results",
            pd.DataFrame(estimated),
            RESULTS_SCHEMA,
            len(estimated),
        )
        if estimated
        else dg.AssetCheckResult(
            check_name="check_results_schema",
            asset_key="results",
            passed=True,
            description="no effect estimable yet: every metric's row says why",
        )
    )
    return (
        dg.MaterializeResult(
            asset_key="results",
            metadata={
                **metadata,
                "dagster/row_count": len(rows),
                "preview": dg.MetadataValue.md(
                    results_markdown(rows) if rows else "_no results yet_"
                ),
            },
            check_results=[gate],
        ),
        dg.MaterializeResult(
            asset_key="metric_trees",
            metadata={"spec_version": experiment.version, "dagster/row_count": len(trees)},
        ),
        dg.MaterializeResult(
            asset_key="did_effects",
            metadata={"spec_version": experiment.version, "dagster/row_count": len(effects)},
        ),
    )


@writer_asset(
    partitions_def=experiment_days,
    deps=[
        "results",
        "unit_metrics",
        "metric_statistics",
        "metric_outliers",
        "offline_online_parity",
        "did_effects",
    ],
    kinds=("duckdb", "python"),
)
def decision(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """SHIP / ROLLBACK / KEEP_RUNNING / INCONCLUSIVE / INVALID for the experiment as of the day,
    with the reasons in plain words (policy: :mod:`exp_dagster.decision`)."""
    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    with warehouse.connect() as conn:
        result_rows = read_partition(conn, "results", experiment_id, day)
        statistics = read_partition(conn, "metric_statistics", experiment_id, day)
        history = history_by_day(
            read_history(conn, experiment_id, day)[0], spec_version=experiment.version
        )
        today = DayStatistics(statistics)
        verdict = decide(
            experiment,
            day,
            result_rows,
            today.units(experiment),
            units_history={d: stats.units(experiment) for d, stats in history.items()},
            units_by_segment=today.segment_units(experiment),
            units_by_phase=today.phase_units(experiment),
            planned_by_day=(
                read_bandit_splits(conn, experiment_id, day)
                if experiment.spec.bandit is not None
                else None
            ),
            outliers=read_outliers(conn, experiment_id, day),
            offline_evidence=read_rows(conn, "offline_online_parity", experiment_id, day),
            # A holdout's reasons name the effect at the last look of each earlier launch
            # period: one small results partition per launch, never the whole history; a look
            # computed under another spec version is left out, not quoted.
            earlier_results={
                period.last: [
                    row
                    for row in read_partition(conn, "results", experiment_id, period.last)
                    if row.get("spec_version") == experiment.version
                ]
                for period in launch_periods(experiment, day)[:-1]
            },
            did_effects=read_partition(conn, "did_effects", experiment_id, day),
        )
        replace_partition(
            conn,
            "decision",
            experiment_id,
            day,
            [
                {
                    "experiment_id": experiment_id,
                    "as_of_date": day,
                    "decision": verdict.decision.value,
                    "variant": verdict.variant,
                    "reasons": list(verdict.reasons),
                    "srm_p_value": verdict.srm_p_value,
                    "spec_version": experiment.version,
                    "ramp_action": verdict.ramp_action and verdict.ramp_action.value,
                }
            ],
        )
    context.log.info(f"{experiment_id} {day}: {verdict.decision.value}")
    return dg.MaterializeResult(
        metadata={
            **decision_metadata(verdict, experiment_id, day),
            "spec_version": experiment.version,
            "dagster/row_count": 1,
        }
    )


# The reasons as a table: the asset page shows a table metadata entry in place, with no click.
REASONS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("rank", "int", description="1 is the reason that weighs most"),
        dg.TableColumn("reason", "string", description="one plain sentence"),
    ]
)


def decision_metadata(
    verdict: Decision, experiment_id: str, day: dt.date
) -> dict[str, dg.MetadataValue]:
    """The verdict and its reasons as the asset page shows them without a click.

    Dagster's UI (1.13) renders text and table entries in place; a Markdown entry only behind a
    "[Show Markdown]" link wherever it does not expand small values (or past 1,000 characters).
    So the verdict and the reasons are text and a table, and the Markdown summary (the same
    words, for the run's event log) follows them.
    """
    called = verdict.decision.value + (f" {verdict.variant}" if verdict.variant else "")
    return {
        "decision": dg.MetadataValue.text(verdict.decision.value),
        "variant": dg.MetadataValue.text(verdict.variant or ""),
        "verdict": dg.MetadataValue.text(f"{experiment_id} as of {day.isoformat()}: {called}"),
        "reasons": dg.MetadataValue.text(
            "\n".join(f"{rank}. {reason}" for rank, reason in enumerate(verdict.reasons, 1))
        ),
        "reasons_table": dg.MetadataValue.table(
            records=[
                dg.TableRecord({"rank": rank, "reason": reason})
                for rank, reason in enumerate(verdict.reasons, 1)
            ],
            schema=REASONS_SCHEMA,
        ),
        "srm_p_value": dg.MetadataValue.float(
            float(verdict.srm_p_value) if verdict.srm_p_value is not None else float("nan")
        ),
        **(
            {"ramp_action": dg.MetadataValue.text(verdict.ramp_action.value)}
            if verdict.ramp_action is not None
            else {}
        ),
        "summary": dg.MetadataValue.md(decision_markdown(verdict, experiment_id, day.isoformat())),
    }
