"""unit_metrics and metric_statistics: from facts to per-unit values to sufficient statistics."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

from typing import Any

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult

from assets._common import (
    gate_frame,
    gate_spec,
    run_gate,
    table_rows,
    table_spec,
    timed,
    writer_tables,
)
from exp_dagster.decision import allocation_periods, p_text, sample_ratio
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.warehouse.did_panel import units_without_cluster
from exp_dagster.warehouse.partitions import read_bandit_splits
from exp_dagster.warehouse.statistics import build_metric_statistics, read_outliers
from exp_dagster.warehouse.unit_state import build_unit_metrics


@writer_tables(
    partitions_def=experiment_days,
    deps=["exposures", "pre_period_covariates", "event_facts", "pre_exposure_facts"],
    tables=[table_spec("unit_crossovers", deps=["exposures"])],
    check_specs=[
        gate_spec(
            "check_unit_metrics_schema",
            "unit_metrics",
            "Unit metrics: one row per unit and metric, finite values, known variants.",
        ),
        dg.AssetCheckSpec(
            "check_sample_ratio",
            asset="unit_metrics",
            description="Sample-ratio-mismatch chi-square against the planned weights (with a "
            "ramp, per phase of first exposure against its weights; with a bandit, per day of "
            "first exposure against the split the bandit set for it).",
        ),
    ],
)
def unit_metrics(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> tuple[MaterializeResult, MaterializeResult]:
    """Per unit and metric, the value cumulated from the unit's first exposure (its timestamp, or
    with ``metric_window_start: exposure_day`` that day's midnight) through the day, with its
    pre-period covariate; a windowed metric (``window_days``) counts only its window's events,
    and is NULL until the unit's window has elapsed. Units exposed to different variants on
    different days are left out (counted in ``crossover_units``)."""
    # Here, not at the top: pandera loads with a run, not with the code location.
    from exp_dagster.schemas import unit_metrics_schema

    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metrics = experiment.metrics
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        counts = build_unit_metrics(conn, experiment, day)
        planned_by_day = (
            read_bandit_splits(conn, experiment_id, day)
            if experiment.spec.bandit is not None
            else None
        )
        schema = unit_metrics_schema(
            list(experiment.spec.weights),
            list(metrics),
            [name for name, m in metrics.items() if m.kind.binary_unit_values],
            [name for name, m in metrics.items() if m.window_days is not None],
        )
        frame, total = gate_frame(
            conn,
            "unit_metrics",
            "experiment_id = ? AND as_of_date = ?",
            [experiment_id, day],
            schema,
            total=counts.rows,
            by_unit=("unit_metric_rows", len(metrics)),
        )
    gate = run_gate("check_unit_metrics_schema", "unit_metrics", frame, schema, total)
    # A rollout by cluster (a did block) planned no split: there is nothing to test it against.
    not_randomised = experiment.spec.did is not None
    srm = (
        sample_ratio(experiment, counts.units_by_variant, counts.units_by_phase, planned_by_day)
        if counts.units and not not_randomised
        else None
    )
    periods = (
        allocation_periods(experiment, counts.units_by_phase, planned_by_day)
        if experiment.spec.allocation_segment is not None
        else None
    )
    srm_check = dg.AssetCheckResult(
        check_name="check_sample_ratio",
        asset_key="unit_metrics",
        # Not a blocking gate: the decision itself turns a mismatch into INVALID, with reasons.
        passed=not_randomised or (srm is not None and srm.p_value >= experiment.spec.srm_alpha),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{srm.method} {p_text(srm.p_value)} (threshold {experiment.spec.srm_alpha:g})"
            if srm
            else "not tested: a rollout by cluster (did) is not randomised and planned no split"
            if not_randomised
            else "no exposed units yet"
        ),
        metadata={
            "units_by_variant": dg.MetadataValue.json(counts.units_by_variant),
            "planned_weights": dg.MetadataValue.json(experiment.spec.weights),
            # with a ramp (a bandit), the split of each phase (day) of first exposure and its plan
            **(
                {
                    "units_by_phase": dg.MetadataValue.json(counts.units_by_phase),
                    "planned_weights_by_phase": dg.MetadataValue.json(dict(periods)),
                }
                if periods is not None
                else {}
            ),
            "p_value": float(srm.p_value) if srm else float("nan"),
            "threshold": experiment.spec.srm_alpha,
        },
    )
    unit_rows = dg.MaterializeResult(
        asset_key="unit_metrics",
        metadata={
            **metadata,
            "dagster/row_count": counts.rows,
            "units": counts.units,
            "units_by_variant": dg.MetadataValue.json(counts.units_by_variant),
            "crossover_units": counts.crossover_units,
            # Built from the previous day's rows and this day's facts (else from every day).
            "incremental": counts.incremental,
            # units first exposed today whose events earlier today, before their exposure
            # timestamp, their metrics leave out (analysis.metric_window_start: exposure)
            "pre_exposure_units": counts.pre_exposure_units,
            "pre_exposure_events": counts.pre_exposure_events,
        },
        check_results=[gate, srm_check],
    )
    crossovers = dg.MaterializeResult(
        asset_key="unit_crossovers",
        metadata={"spec_version": experiment.version, "dagster/row_count": counts.crossover_units},
    )
    return unit_rows, crossovers


def _label(row: dict[str, Any]) -> str:
    return row["metric"] if row["quantity"] == "value" else f"{row['metric']} ({row['quantity']})"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _tamed(row: dict[str, Any]) -> bool:
    """Whether winsorisation caps every value at or below the outlier fence."""
    return row["cap"] is not None and row["fence"] is not None and row["cap"] <= row["fence"]


def outliers_markdown(rows: list[dict[str, Any]]) -> str:
    """The outlier report as a Markdown table for the asset page."""
    lines = [
        "| metric | units | median | fence | beyond | largest | winsorised at |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        fence = _number(row["fence"]) if row["fence"] is not None else "(too few units)"
        largest = ", ".join(_number(v) for v in row["top_values"]) or "–"
        cap = f"{_number(row['cap'])} ({row['winsorize']:g})" if row["cap"] is not None else "–"
        lines.append(
            f"| {_label(row)} | {row['units']:,} | {_number(row['median'] or 0)} | {fence} | "
            f"{row['outlier_units']:,} | {largest} | {cap} |"
        )
    return "\n".join(lines)


def check_outliers_result(rows: list[dict[str, Any]]) -> dg.AssetCheckResult:
    """WARN when a metric has units beyond its fence that no winsorisation cap tames."""
    flagged = [r for r in rows if r["outlier_units"] > 0]
    untamed = [r for r in flagged if not _tamed(r)]
    if not flagged:
        description = "no unit beyond 10 × the robust 99.9th percentile of any metric"
    else:
        description = "; ".join(
            f"{_label(r)}: {r['outlier_units']:,} unit(s) beyond {_number(r['fence'])} "
            f"(largest {_number(r['top_values'][0])}, median {_number(r['median'] or 0)})"
            + (f", capped at {_number(r['cap'])}" if _tamed(r) else "")
            for r in flagged
        )
        if untamed:
            description += (
                ". Look the units up in the metric_outliers table (bots, a unit logged in the "
                "wrong unit?); for a mean metric, 'winsorize: 0.999' in metrics.yaml caps them."
            )
    return dg.AssetCheckResult(
        check_name="check_outliers",
        asset_key="metric_outliers",
        passed=not untamed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "outlier_units": dg.MetadataValue.json({_label(r): r["outlier_units"] for r in rows}),
            "fences": dg.MetadataValue.json({_label(r): r["fence"] for r in rows}),
            "top_values": dg.MetadataValue.json({_label(r): r["top_values"] for r in flagged}),
            "winsorized_at": dg.MetadataValue.json(
                {_label(r): r["cap"] for r in rows if r["cap"] is not None}
            ),
            "untamed": dg.MetadataValue.json([_label(r) for r in untamed]),
        },
    )


@writer_tables(
    partitions_def=experiment_days,
    deps=["unit_metrics", "quantile_facts", "pre_exposure_quantile_facts"],
    tables=[
        table_spec("metric_outliers", deps=["unit_metrics"]),
        table_spec(
            "quantile_histograms",
            deps=["unit_metrics", "quantile_facts", "pre_exposure_quantile_facts"],
        ),
        table_spec(
            "novelty_statistics", deps=["unit_metrics", "event_facts", "pre_exposure_facts"]
        ),
        table_spec("metric_cross_statistics", deps=["unit_metrics"]),
        table_spec("did_cluster_days", deps=["exposures", "event_facts"]),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "check_outliers",
            asset="metric_outliers",
            description="Units beyond 10 × a robust 99.9th percentile of a metric, and caps.",
        )
    ],
)
def metric_statistics(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> tuple[
    MaterializeResult,
    MaterializeResult,
    MaterializeResult,
    MaterializeResult,
    MaterializeResult,
    MaterializeResult,
]:
    """Sufficient statistics per metric × variant × segment value: n, Σy, Σy², Σx, Σx², Σxy and
    the covariate sums Σc, Σc², Σyc (a winsorised metric's values capped first at its pooled
    quantile); for quantile metrics the arm's histogram and the clustered moments at its
    estimated quantile. Everything after this step is a few numbers. Written in the same
    transaction: ``metric_outliers``, ``quantile_histograms``, ``novelty_statistics`` and, for a
    spec with an ``oec`` or a ``metric_tree``, ``metric_cross_statistics``; for a spec with a
    ``did`` block, ``did_cluster_days`` (the day's cells of its panel; its metadata counts the
    day's units without a cluster value, in a cell of their own and not in the panel)."""
    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        rows = build_metric_statistics(conn, experiment, day)
        outliers = read_outliers(conn, experiment_id, day)
        written = {
            table: table_rows(
                conn, table, "experiment_id = ? AND as_of_date = ?", [experiment_id, day]
            )
            for table in (
                "quantile_histograms",
                "novelty_statistics",
                "metric_cross_statistics",
                "did_cluster_days",
            )
        }
        without_cluster = units_without_cluster(conn, experiment, day)
    flagged = {_label(r): r["outlier_units"] for r in outliers if r["outlier_units"] > 0}
    if flagged:
        context.log.warning(f"{experiment_id} {day}: units beyond the outlier fence: {flagged}")
    return (
        dg.MaterializeResult(
            asset_key="metric_statistics", metadata={**metadata, "dagster/row_count": rows}
        ),
        dg.MaterializeResult(
            asset_key="metric_outliers",
            metadata={
                "spec_version": experiment.version,
                "dagster/row_count": len(outliers),
                "outlier_units": dg.MetadataValue.json(flagged),
                "outliers": dg.MetadataValue.md(
                    outliers_markdown(outliers) if outliers else "_no mean or ratio metric_"
                ),
            },
            check_results=[check_outliers_result(outliers)],
        ),
        *(
            dg.MaterializeResult(
                asset_key=table,
                metadata={
                    "spec_version": experiment.version,
                    "dagster/row_count": count,
                    # a did panel: the day's units with no cluster value, not in the panel
                    **(
                        {"units_without_cluster": without_cluster}
                        if table == "did_cluster_days" and experiment.spec.did is not None
                        else {}
                    ),
                },
            )
            for table, count in written.items()
        ),
    )
