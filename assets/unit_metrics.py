"""unit_metrics and metric_statistics: from facts to per-unit values to sufficient statistics."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import dagster as dg
from dagster import AssetExecutionContext

from assets._common import gate_frame, gate_spec, run_gate, timed, writer_asset
from assets.covariates import pre_period_covariates
from assets.event_facts import event_facts
from assets.exposures import exposures
from exp_dagster.decision import p_text, sample_ratio
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.schemas import unit_metrics_schema
from exp_dagster.warehouse.queries import build_metric_statistics, build_unit_metrics


@writer_asset(
    partitions_def=experiment_days,
    deps=[exposures, pre_period_covariates, event_facts],
    check_specs=[
        gate_spec(
            "check_unit_metrics_schema",
            "unit_metrics",
            "Unit metrics: one row per unit and metric, finite values, known variants.",
        ),
        dg.AssetCheckSpec(
            "check_sample_ratio",
            asset="unit_metrics",
            description="Sample-ratio-mismatch chi-square against the planned weights.",
        ),
    ],
)
def unit_metrics(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """Per unit and metric, the value cumulated from the unit's first exposure day through the
    day, with its pre-period covariate. Units exposed to different variants on different days are
    left out (counted in ``crossover_units``)."""
    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metrics = experiment.metrics
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        counts = build_unit_metrics(conn, experiment, day)
        schema = unit_metrics_schema(
            list(experiment.spec.weights),
            list(metrics),
            [name for name, m in metrics.items() if m.type == "proportion"],
        )
        frame, total = gate_frame(
            conn,
            "unit_metrics",
            "experiment_id = ? AND as_of_date = ?",
            [experiment_id, day],
            schema,
        )
    gate = run_gate("check_unit_metrics_schema", "unit_metrics", frame, schema, total)
    srm = sample_ratio(experiment, counts.units_by_variant) if counts.units else None
    srm_check = dg.AssetCheckResult(
        check_name="check_sample_ratio",
        asset_key="unit_metrics",
        # Not a blocking gate: the decision itself turns a mismatch into INVALID, with reasons.
        passed=srm is not None and srm.p_value >= experiment.spec.srm_alpha,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"chi-square {p_text(srm.p_value)} (threshold {experiment.spec.srm_alpha:g})"
            if srm
            else "no exposed units yet"
        ),
        metadata={
            "units_by_variant": dg.MetadataValue.json(counts.units_by_variant),
            "planned_weights": dg.MetadataValue.json(experiment.spec.weights),
            "p_value": float(srm.p_value) if srm else float("nan"),
            "threshold": experiment.spec.srm_alpha,
        },
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "dagster/row_count": counts.rows,
            "units": counts.units,
            "units_by_variant": dg.MetadataValue.json(counts.units_by_variant),
            "crossover_units": counts.crossover_units,
        },
        check_results=[gate, srm_check],
    )


@writer_asset(
    partitions_def=experiment_days,
    deps=[unit_metrics],
)
def metric_statistics(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """Sufficient statistics per metric × variant × segment value: n, Σy, Σy², Σx, Σx², Σxy and
    the covariate sums Σc, Σc², Σyc; for quantile metrics the arm's histogram and the clustered
    moments at its estimated quantile. Everything after this step is a few numbers."""
    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        rows = build_metric_statistics(conn, experiment, day)
    return dg.MaterializeResult(metadata={**metadata, "dagster/row_count": rows})
