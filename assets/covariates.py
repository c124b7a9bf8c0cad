"""pre_period_covariates: what each unit did before its exposure, for variance reduction."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult

from assets._common import table_rows, table_spec, timed, writer_tables
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.warehouse.ingest import build_pre_period_covariates


@writer_tables(
    partitions_def=experiment_days,
    deps=["exposures", "event_facts"],
    tables=[
        table_spec("pre_exposure_facts", deps=["exposures", "event_times"]),
        table_spec("pre_exposure_quantile_facts", deps=["exposures", "event_times"]),
    ],
)
def pre_period_covariates(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> tuple[MaterializeResult, MaterializeResult, MaterializeResult]:
    """For every unit exposed on the day, its event totals over the spec's ``pre_period_days``
    whole days before that day: the CUPED covariates; and its events of the day before its
    exposure timestamp, which its metrics leave out (``pre_exposure_facts``).

    Partitioned by experiment × day rather than by experiment because each unit's pre-period ends
    where its own first exposure begins, which is only known day by day: a per-experiment
    partition would be recomputed whole every day. It reads the event facts of the earlier days."""
    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {
        "spec_version": experiment.version,
        "pre_period_days": experiment.spec.pre_period_days,
    }
    where = "experiment_id = ? AND exposure_date = ?"
    with warehouse.connect() as conn, timed(metadata):
        counts = build_pre_period_covariates(conn, experiment, day)
        written = {
            table: table_rows(conn, table, where, [experiment_id, day])
            for table in ("pre_exposure_facts", "pre_exposure_quantile_facts")
        }
    metadata["metric_window_start"] = experiment.spec.analysis.metric_window_start
    if counts.untimed_events:
        metadata["untimed_events"] = ", ".join(counts.untimed_events)
        context.log.warning(
            f"The event facts of {day} have no timestamps for {metadata['untimed_events']} "
            f"(written by an earlier release, or before the metric was in the catalog), so their "
            f"events before each unit's exposure are counted; materialise event_facts for {day} "
            f"again."
        )
    return (
        dg.MaterializeResult(
            asset_key="pre_period_covariates",
            metadata={**metadata, "dagster/row_count": counts.rows},
        ),
        *(
            dg.MaterializeResult(
                asset_key=table,
                metadata={"spec_version": experiment.version, "dagster/row_count": rows},
            )
            for table, rows in written.items()
        ),
    )
