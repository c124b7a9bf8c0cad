"""event_facts: one pass over a day's events for every experiment and metric."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult

from assets._common import (
    gate_frame,
    gate_spec,
    reasons_table,
    run_gate,
    table_rows,
    table_spec,
    timed,
    writer_tables,
)
from assets.landing import raw_event_logs
from exp_dagster.partitions import analysable_days, days
from exp_dagster.resources import Catalog, LandingZone, Warehouse
from exp_dagster.warehouse.ingest import build_event_facts


@writer_tables(
    partitions_def=days,
    deps=[raw_event_logs],
    tables=[
        table_spec("quantile_facts", deps=[raw_event_logs]),
        table_spec("event_times", deps=[raw_event_logs]),
        table_spec("event_quarantine", deps=[raw_event_logs]),
    ],
    check_specs=[
        gate_spec(
            "check_event_facts_schema",
            "event_facts",
            "Event facts: one row per unit and event, finite sums, positive counts.",
        )
    ],
)
def event_facts(
    context: AssetExecutionContext, warehouse: Warehouse, landing: LandingZone, catalog: Catalog
) -> tuple[MaterializeResult, MaterializeResult, MaterializeResult, MaterializeResult]:
    """Per unit and event, the day's count, sum and sum of squares (and, for events that quantile
    metrics read, a log-bucketed histogram; for events any metric reads, the rows' timestamps,
    so that metrics count from each unit's exposure timestamp). Shared by every experiment: a
    day's raw events are scanned once. Rows without a unit, event, timestamp or finite value go
    to ``event_quarantine`` with a reason."""
    # Here, not at the top: pandera loads with a run, not with the code location.
    from exp_dagster.schemas import EVENT_FACTS_SCHEMA

    day = dt.date.fromisoformat(context.partition_key)
    metadata: dict[str, object] = {}
    with warehouse.connect() as conn, timed(metadata):
        counts = build_event_facts(
            conn,
            landing.events(),
            day,
            catalog.quantile_events(),
            catalog.metric_events(),
            analysable_days=analysable_days(),
        )
        frame, total = gate_frame(conn, "event_facts", "event_date = ?", [day], EVENT_FACTS_SCHEMA)
        written = {
            table: table_rows(conn, table, "event_date = ?", [day])
            for table in ("quantile_facts", "event_times")
        }
    gate = run_gate("check_event_facts_schema", "event_facts", frame, EVENT_FACTS_SCHEMA, total)
    context.log.info(
        f"{day}: {counts.rows_in:,} event rows → {counts.fact_rows:,} facts, "
        f"{counts.rows_quarantined:,} quarantined"
    )
    return (
        dg.MaterializeResult(
            asset_key="event_facts",
            metadata={
                **metadata,
                "dagster/row_count": counts.fact_rows,
                "rows_in": counts.rows_in,
                "rows_validated": counts.rows_validated,
                "rows_quarantined": counts.rows_quarantined,
                "units": counts.units,
                "quarantine_reasons": reasons_table(counts.reasons),
            },
            check_results=[gate],
        ),
        *(
            dg.MaterializeResult(asset_key=table, metadata={"dagster/row_count": rows})
            for table, rows in written.items()
        ),
        dg.MaterializeResult(
            asset_key="event_quarantine",
            metadata={
                "dagster/row_count": counts.rows_quarantined,
                "quarantine_reasons": reasons_table(counts.reasons),
            },
        ),
    )
