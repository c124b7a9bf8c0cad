"""report: one self-contained HTML file per experiment and day, and its summary in the UI."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from assets._common import timed, writer_asset
from assets.results import decision
from exp_dagster import home
from exp_dagster.partitions import experiment_day_key, experiment_days, parse_experiment_day
from exp_dagster.report.data import GATES, GateResult, read_report_data
from exp_dagster.report.html import write_report
from exp_dagster.resources import Catalog, Warehouse


def gate_results(
    instance: dg.DagsterInstance, experiment_id: str, day: dt.date
) -> Sequence[GateResult]:
    """Each upstream gate's evaluation in the run that wrote the data the report reads: the run
    of the guarded asset's latest materialisation of the day (checks are recorded per run, not
    per partition). ``not recorded`` when the instance has none (e.g. another instance wrote
    the warehouse)."""
    found: list[GateResult] = []
    for name, asset, keyed_by in GATES:
        partition = (
            day.isoformat() if keyed_by == "date" else str(experiment_day_key(experiment_id, day))
        )
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
            limit=1,
        ).records
        evaluations = [
            entry.dagster_event.event_specific_data
            for entry in (
                instance.all_logs(
                    records[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                )
                if records
                else []
            )
            if entry.dagster_event is not None
            and getattr(entry.dagster_event.event_specific_data, "check_name", None) == name
        ]
        if not evaluations:
            found.append(GateResult(name, asset, "not recorded"))
            continue
        evaluation = evaluations[-1]
        metadata = evaluation.metadata or {}
        if evaluation.passed:
            validated = metadata.get("rows_validated")
            detail = f"{validated.value:,} rows validated" if validated is not None else ""
        else:
            summary = metadata.get("summary")
            detail = str(summary.value) if summary is not None else evaluation.description or ""
        found.append(
            GateResult(name, asset, "passed" if evaluation.passed else "failed", str(detail))
        )
    return found


@writer_asset(
    partitions_def=experiment_days,
    # offline_online_parity (and through it offline_evaluation): the model-evaluation section.
    deps=[decision, "results", "metric_trees", "offline_online_parity"],
    kinds=("duckdb", "python", "html"),
)
def report(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """The experiment's report as of the day: the decision and its reasons first, then the
    primary metric over time with its sequential boundary, every metric by role, a forest plot,
    segments, model evaluation (offline, counterfactual and interleaving evidence beside the
    online lift), CUPED, data quality and the spec version, in one self-contained HTML file under
    the reports folder (``EXP_DAGSTER_REPORTS``, default ``reports/`` beside the warehouse)."""
    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {"spec_version": experiment.version}
    gates = gate_results(context.instance, experiment_id, day)
    with timed(metadata):
        with warehouse.connect() as conn:
            data = read_report_data(conn, experiment, day, gates)
        path, rendered = write_report(data, home.reports_dir(warehouse.database))
    context.log.info(f"{experiment_id} {day}: report written to {path}")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "decision": data.verdict,
            "summary": dg.MetadataValue.md(rendered.markdown),
            "path": dg.MetadataValue.path(str(Path(path).resolve())),
            "size_bytes": len(rendered.html.encode("utf-8")),
            "charts": len(rendered.charts),
        }
    )
