"""offline_evaluation and offline_online_parity: model evaluation beside the A/B test.

Both are optional in effect: without ranking, prediction or interleaving logs in the landing zone
they write nothing and say so in their metadata.
"""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import datetime as dt
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets._common import GATE_ROW_LIMIT, run_gate, timed, writer_asset
from exp_dagster.evaluation import MODERATE_SHIFT
from exp_dagster.offline import (
    OPTIONAL_EVALUATION_COLUMNS,
    classifier_comparison_rows,
    classifier_rows,
    drift_rows,
    interleaving_rows,
    off_policy_rows,
    parity_rows,
    ranking_rows,
)
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.resources import Catalog, LandingZone, Warehouse
from exp_dagster.warehouse import evaluation as sql
from exp_dagster.warehouse.partitions import read_partition

raw_ranking_logs = dg.AssetSpec(
    key="raw_ranking_logs",
    description=(
        "Optional ranking logs: request_id, unit_id, variant (the model that ranked), item_id, "
        "position, score, propensity (logging policy's rows), label, event_time."
    ),
    group_name="landing",
    kinds={"parquet", "csv", "json"},
)
raw_prediction_logs = dg.AssetSpec(
    key="raw_prediction_logs",
    description="Optional prediction logs: unit_id, model, score (a probability), label (0/1).",
    group_name="landing",
    kinds={"parquet", "csv", "json"},
)
raw_interleaving_logs = dg.AssetSpec(
    key="raw_interleaving_logs",
    description=(
        "Optional team-draft interleaving logs: request_id, unit_id, item_id, position, team "
        "(the variant that contributed the item), click, event_time."
    ),
    group_name="landing",
    kinds={"parquet", "csv", "json"},
)

_GATE = "check_model_logs_schema"
_DRIFT = "check_score_drift"
_LOG_COLUMNS = {
    "ranking": ("request_id", "unit_id", "variant", "item_id", "position", "score", "label"),
    "predictions": ("unit_id", "model", "score", "label"),
    "interleaving": ("request_id", "unit_id", "item_id", "position", "team", "click"),
}


def _preview(rows: list[dict[str, Any]], alpha: float) -> str:
    shown = [
        r
        for r in rows
        if r["kind"] not in {"reliability", "ranking"} and r.get("segment", "all") == "all"
    ]
    if not shown:
        return "_no model logs for this day_"
    lines = [
        f"| kind | model | metric | value | {1 - alpha:.0%} CI |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for r in shown:
        ci = (
            f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
            if r.get("ci_low") is not None and r.get("ci_high") is not None
            else ""
        )
        lines.append(f"| {r['kind']} | {r['model']} | {r['metric']} | {r['value']:.4f} | {ci} |")
    return "\n".join(lines)


@writer_asset(
    partitions_def=experiment_days,
    # exposures: each unit's segments (at first exposure, up to the day) for the per-segment rows.
    deps=[raw_ranking_logs, raw_prediction_logs, raw_interleaving_logs, "exposures"],
    kinds=("duckdb", "python"),
    check_specs=[
        # Not blocking, unlike the other gates: the online decision depends on this asset
        # (through the parity table), and broken model logs must not stop the A/B verdict.
        # A failed gate still stops the offline numbers: the asset then writes no rows.
        dg.AssetCheckSpec(
            name=_GATE,
            asset="offline_evaluation",
            blocking=False,
            description=(
                "Model logs as read: known variants, positions from 1, finite scores and labels, "
                "propensities in (0, 1], probabilities in [0, 1], 0/1 labels."
            ),
        ),
        dg.AssetCheckSpec(
            name=_DRIFT,
            asset="offline_evaluation",
            blocking=False,
            description=(
                f"Drift of prediction scores and feature_* columns against the pre-period: "
                f"warns at a PSI of {MODERATE_SHIFT:g} (moderate) or more."
            ),
        ),
    ],
)
def offline_evaluation(
    context: AssetExecutionContext, warehouse: Warehouse, landing: LandingZone, catalog: Catalog
) -> dg.MaterializeResult:
    """Offline ranking metrics per model and segment with the paired comparison against the
    control, off-policy estimates of each candidate's first-slot click rate from the control's
    logs, classifier metrics with calibration per model and segment and DeLong's paired AUC test,
    the team-draft interleaving preference and drift of scores and features, for the day's model
    logs (conventions: :mod:`exp_dagster.offline`)."""
    # Here, not at the top: pandera loads with a run, not with the code location.
    from exp_dagster.schemas import model_logs_schema

    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    spec = experiment.spec
    control, candidates = spec.control, list(spec.treatments)
    variants = list(spec.weights)
    alpha = spec.alpha  # one level for the A/B and the model-evaluation intervals
    metadata: dict[str, Any] = {"spec_version": experiment.version}
    rows: list[dict[str, Any]] = []
    gates: list[dg.AssetCheckResult] = []
    drift: list[dict[str, Any]] = []
    with warehouse.connect() as conn, timed(metadata):
        staged: dict[str, int] = {}
        for kind in _LOG_COLUMNS:
            source = landing.model_logs(kind)  # type: ignore[arg-type]
            if source is None:
                metadata[f"{kind}_rows"] = "no logs"
                continue
            table, count = sql.stage_model_logs(conn, source, day)
            staged[kind] = count
            metadata[f"{kind}_rows"] = count
            if count == 0:
                continue
            schema = model_logs_schema(kind, variants)
            frame = sql.typed_sample(conn, table, list(schema.columns), GATE_ROW_LIMIT)
            gate = run_gate(_GATE, "offline_evaluation", frame, schema, count)
            if not gate.passed:
                gate = dg.AssetCheckResult(
                    check_name=_GATE,
                    asset_key="offline_evaluation",
                    passed=False,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=f"{kind} logs of {day} ({source.path}): {gate.description}",
                    metadata={**gate.metadata, "summary": f"{kind} logs: {gate.description}"},
                )
            gates.append(gate)
        failed = [g for g in gates if not g.passed]
        if not failed and staged:
            sql.stage_unit_segments(conn, experiment_id, day)
        if not failed:
            if staged.get("ranking"):
                requests = sql.ranking_requests(conn, len(variants))
                rows += ranking_rows(requests, control, candidates, spec.segments, alpha=alpha)
                for candidate in candidates:
                    rows += off_policy_rows(
                        sql.off_policy_rows(conn, control, candidate),
                        control,
                        candidate,
                        alpha=alpha,
                    )
            if staged.get("interleaving") and candidates:
                for candidate in candidates:
                    rows += interleaving_rows(
                        sql.interleaving_requests(conn, control, candidate),
                        control,
                        candidate,
                        alpha=alpha,
                    )
            if staged.get("predictions"):
                rows += classifier_rows(sql.prediction_scores(conn), spec.segments, alpha=alpha)
                for candidate in candidates:
                    rows += classifier_comparison_rows(
                        sql.paired_predictions(conn, control, candidate),
                        control,
                        candidate,
                        spec.segments,
                        alpha=alpha,
                    )
                # Read before the pre-period days are staged over the day's logs.
                current = sql.distributions(conn)
                source = landing.model_logs("predictions")
                pre_period = [
                    spec.start - dt.timedelta(days=d)
                    for d in range(spec.pre_period_days, 0, -1)
                    if spec.start - dt.timedelta(days=d) != day
                ]
                if source is not None and day >= spec.start and pre_period:
                    drift = drift_rows(
                        sql.reference_distributions(conn, source, pre_period), current
                    )
                    rows += drift
        optional = dict.fromkeys(OPTIONAL_EVALUATION_COLUMNS)
        stamp = {
            "experiment_id": experiment_id,
            "as_of_date": day,
            "spec_version": experiment.version,
            "segment": "all",
            "segment_value": "all",
        }
        sql.replace_rows(
            conn,
            "offline_evaluation",
            experiment_id,
            day,
            [] if failed else [{**optional, **stamp, **r} for r in rows],
        )
    if not gates:
        gates.append(
            dg.AssetCheckResult(
                check_name=_GATE,
                asset_key="offline_evaluation",
                passed=True,
                description="no model logs for this day: nothing to validate",
            )
        )
    gate = failed[0] if failed else gates[0]
    shifted = [r for r in drift if r["value"] >= MODERATE_SHIFT]
    drift_check = dg.AssetCheckResult(
        check_name=_DRIFT,
        asset_key="offline_evaluation",
        passed=not shifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "; ".join(
                f"{r['model']} {r['metric'].removeprefix('psi of ')} shifted: "
                f"PSI {r['value']:.3f} ({r['detail']})"
                for r in shifted
            )
            if shifted
            else (
                "prediction scores and features stable against the pre-period"
                if drift
                else "no drift computed: no prediction logs for the day or the pre-period"
            )
        ),
        metadata={
            "threshold": MODERATE_SHIFT,
            "psi": dg.MetadataValue.json(
                {
                    f"{r['model']}: {r['metric'].removeprefix('psi of ')}": round(r["value"], 5)
                    for r in drift
                }
            ),
        },
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "dagster/row_count": 0 if failed else len(rows),
            "preview": dg.MetadataValue.md(_preview(rows, alpha)),
        },
        check_results=[gate, drift_check],
    )


@writer_asset(
    partitions_def=experiment_days,
    deps=[offline_evaluation, "results"],
    kinds=("duckdb", "python"),
)
def offline_online_parity(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """Per candidate: the offline NDCG@10 lift, the counterfactual first-slot click-rate lift, the
    interleaving preference and the online A/B lift of the primary metric, side by side with their
    CIs: did the offline evidence predict the online result?"""
    # Here, not at the top: pandas loads with a run, not with the code location.
    import pandas as pd

    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    spec = experiment.spec
    with warehouse.connect() as conn:
        evaluation = sql.read_rows(conn, "offline_evaluation", experiment_id, day)
        online = read_partition(conn, "results", experiment_id, day)
        rows = (
            parity_rows(evaluation, online, spec.metrics.primary, spec.control, spec.treatments)
            if evaluation
            else []
        )
        stamp = {
            "experiment_id": experiment_id,
            "as_of_date": day,
            "spec_version": experiment.version,
        }
        sql.replace_rows(
            conn, "offline_online_parity", experiment_id, day, [{**stamp, **r} for r in rows]
        )
    preview = (
        pd.DataFrame(rows)[["variant", "evidence", "metric", "lift", "ci_low", "ci_high"]]
        .round(4)
        .to_markdown(index=False)
        if rows
        else "_no offline evidence for this day_"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "preview": dg.MetadataValue.md(preview),
            "spec_version": experiment.version,
        }
    )
