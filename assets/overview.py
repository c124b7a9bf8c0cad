"""experiments_overview: every experiment, where it stands and its latest decision, on one page."""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import datetime as dt

import dagster as dg
from dagster import AssetExecutionContext

from assets._common import writer_asset
from assets.results import decision
from exp_dagster.report.overview import OverviewRow, overview_markdown, overview_rows
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.triggers import scan_registry
from exp_dagster.warehouse.partitions import read_latest_decisions

OVERVIEW_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("experiment", "string"),
        dg.TableColumn("window", "string", description="start … end (UTC days, inclusive)"),
        dg.TableColumn("status", "string", description="scheduled, running or ended, by today"),
        dg.TableColumn("latest_decision", "string", description="with the variant to ship"),
        dg.TableColumn("as_of", "string", description="the day of the latest decision"),
        dg.TableColumn("days_decided", "int"),
    ]
)


def overview_table(rows: list[OverviewRow]) -> dg.TableMetadataValue:
    """The rows as a table the asset page shows in place (the reasons, long sentences that would
    stretch every row, are in the Markdown entry)."""
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "experiment": row.experiment,
                    "window": row.window,
                    "status": row.status,
                    "latest_decision": row.decision,
                    "as_of": row.as_of.isoformat() if row.as_of else "",
                    "days_decided": row.days_decided,
                }
            )
            for row in rows
        ],
        schema=OVERVIEW_SCHEMA,
    )


@writer_asset(partitions_def=None, deps=[decision], kinds=("duckdb", "python"))
def experiments_overview(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """Every experiment of the catalog (and any the warehouse still has decisions for): its
    window, whether it is scheduled, running or ended, and its latest decision with its day (a
    table), and that decision's first reason (Markdown). Refreshed by every analysis run, after
    the decision."""
    registry = scan_registry(catalog)
    with warehouse.connect() as conn:
        latest = read_latest_decisions(conn)
    rows = overview_rows(
        {experiment_id: e.spec for experiment_id, e in registry.experiments.items()},
        latest,
        dt.datetime.now(dt.UTC).date(),
        invalid=registry.invalid_ids - {"*"},
    )
    context.log.info(f"{len(rows)} experiment(s) in the overview")
    return dg.MaterializeResult(
        metadata={
            "experiments": overview_table(rows),
            "overview": dg.MetadataValue.md(overview_markdown(rows)),
            "dagster/row_count": len(rows),
        }
    )
