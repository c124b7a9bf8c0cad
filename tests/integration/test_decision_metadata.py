"""The decision's metadata: the verdict and its reasons as entries the asset page shows in place
(text and a table), not only as Markdown behind a click."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from assets.results import REASONS_SCHEMA, decision_metadata
from exp_dagster.decision import Decision, Verdict
from exp_dagster.partitions import experiment_day_key
from tests.conftest import Pipeline

REASONS = (
    "watch_time rose +4.12% (95% CI [+1.10%, +7.20%]), crossing the sequential boundary.",
    "No guardrail fell below its margin.",
)


def test_the_verdict_and_reasons_are_text_and_a_table() -> None:
    verdict = Decision(Verdict.SHIP, "treatment", REASONS, 0.41)
    metadata = decision_metadata(verdict, "ranker_v2", dt.date(2026, 10, 14))

    assert isinstance(metadata["decision"], dg.TextMetadataValue)
    assert metadata["decision"].value == "SHIP"
    assert metadata["verdict"].value == "ranker_v2 as of 2026-10-14: SHIP treatment"
    assert isinstance(metadata["reasons"], dg.TextMetadataValue)
    assert metadata["reasons"].value == f"1. {REASONS[0]}\n2. {REASONS[1]}"
    table = metadata["reasons_table"]
    assert isinstance(table, dg.TableMetadataValue)
    assert table.schema == REASONS_SCHEMA
    assert [record.data for record in table.records] == [
        {"rank": 1, "reason": REASONS[0]},
        {"rank": 2, "reason": REASONS[1]},
    ]
    # The Markdown summary stays, for the run's event log, after the entries shown in place.
    assert list(metadata).index("summary") > list(metadata).index("reasons_table")
    assert all(reason in str(metadata["summary"].value) for reason in REASONS)


def test_a_verdict_without_variant_or_srm_test_still_reads() -> None:
    verdict = Decision(Verdict.KEEP_RUNNING, None, ("Only 3 of 14 days observed.",), None)
    metadata = decision_metadata(verdict, "exp", dt.date(2026, 10, 3))
    assert metadata["verdict"].value == "exp as of 2026-10-03: KEEP_RUNNING"
    assert metadata["variant"].value == ""
    assert str(metadata["srm_p_value"].value) == "nan"


def test_the_materialised_decision_carries_the_warehouse_reasons(pipeline: Pipeline) -> None:
    day = pipeline.days[-1]
    experiment_id = pipeline.experiment.spec.id
    record = pipeline.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("decision"),
            asset_partitions=[str(experiment_day_key(experiment_id, day))],
        ),
        limit=1,
    ).records[0]
    metadata = record.asset_materialization.metadata  # type: ignore[union-attr]
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        row = conn.execute(
            "SELECT decision, reasons FROM decision WHERE experiment_id = ? AND as_of_date = ?",
            [experiment_id, day],
        ).fetchone()
    assert row is not None
    verdict, reasons = row
    assert metadata["decision"].value == verdict
    assert str(metadata["verdict"].value).startswith(f"{experiment_id} as of {day}: {verdict}")
    assert [r.data["reason"] for r in metadata["reasons_table"].value.records] == reasons
    assert reasons and all(reason in str(metadata["reasons"].value) for reason in reasons)
