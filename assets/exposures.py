"""exposures: validated first exposures per unit, per experiment and day."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult

from assets._common import (
    gate_frame,
    gate_spec,
    reasons_table,
    run_gate,
    table_spec,
    timed,
    writer_tables,
)
from assets.landing import raw_exposure_logs
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.resources import Catalog, LandingZone, Warehouse
from exp_dagster.warehouse.ingest import build_exposures


@writer_tables(
    partitions_def=experiment_days,
    deps=[raw_exposure_logs],
    tables=[table_spec("exposure_quarantine", deps=[raw_exposure_logs])],
    check_specs=[
        gate_spec(
            "check_exposures_schema",
            "exposures",
            "Validated exposures: one row per unit, known variants, timestamps on the day.",
        )
    ],
)
def exposures(
    context: AssetExecutionContext, warehouse: Warehouse, landing: LandingZone, catalog: Catalog
) -> tuple[MaterializeResult, MaterializeResult]:
    """First exposure per unit on the day, its variant checked against the spec and the
    deterministic hash; unknown variants, hash mismatches, same-day crossovers and rows outside the
    window go to ``exposure_quarantine`` with a reason. Rows in = rows validated + quarantined."""
    # Here, not at the top: pandera loads with a run, not with the code location.
    from exp_dagster.schemas import exposures_schema

    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        counts = build_exposures(conn, experiment, landing.exposures(), day)
        schema = exposures_schema(list(experiment.spec.weights))
        frame, total = gate_frame(
            conn,
            "exposures",
            "experiment_id = ? AND exposure_date = ?",
            [experiment_id, day],
            schema,
        )
    gate = run_gate("check_exposures_schema", "exposures", frame, schema, total)
    context.log.info(
        f"{experiment_id} {day}: {counts.rows_in:,} exposure rows → {counts.units:,} units, "
        f"{counts.rows_quarantined:,} quarantined"
    )
    return (
        dg.MaterializeResult(
            asset_key="exposures",
            metadata={
                **metadata,
                "dagster/row_count": counts.units,
                "rows_in": counts.rows_in,
                "rows_validated": counts.rows_validated,
                "rows_quarantined": counts.rows_quarantined,
                "quarantine_reasons": reasons_table(counts.reasons),
                "hash_checked": counts.hash_checked,
            },
            check_results=[gate],
        ),
        dg.MaterializeResult(
            asset_key="exposure_quarantine",
            metadata={
                "spec_version": experiment.version,
                "dagster/row_count": counts.rows_quarantined,
                "quarantine_reasons": reasons_table(counts.reasons),
            },
        ),
    )
