"""experiments_overview: the experiments, where each stands and its latest decision."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from exp_dagster.report.overview import overview_markdown, overview_rows
from exp_dagster.spec import ExperimentSpec
from tests.conftest import Pipeline


def spec(experiment_id: str, start: str, end: str) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "id": experiment_id,
            "start": start,
            "end": end,
            "variants": [
                {"name": "control", "weight": 0.5, "control": True},
                {"name": "treatment", "weight": 0.5},
            ],
            "metrics": {"primary": "ctr"},
        }
    )


def test_each_experiment_gets_its_status_and_latest_decision() -> None:
    specs = {
        "ended_one": spec("ended_one", "2026-10-01", "2026-10-14"),
        "running_one": spec("running_one", "2026-11-01", "2026-11-30"),
        "later_one": spec("later_one", "2026-12-10", "2026-12-20"),
    }
    latest = [
        {
            "experiment_id": "ended_one",
            "as_of_date": dt.date(2026, 10, 14),
            "decision": "SHIP",
            "variant": "treatment",
            "reasons": ["ctr rose +4.00% | significant.", "No guardrail fell."],
            "days_decided": 14,
        },
        {
            "experiment_id": "gone_one",
            "as_of_date": dt.date(2026, 9, 3),
            "decision": "KEEP_RUNNING",
            "variant": None,
            "reasons": [],
            "days_decided": 3,
        },
    ]
    rows = overview_rows(specs, latest, dt.date(2026, 11, 3), invalid={"broken_one"})
    assert [r.cells() for r in rows] == [
        ("broken_one", "", "invalid spec", "not analysed yet", "", "0"),
        ("ended_one", "2026-10-01 … 2026-10-14", "ended", "SHIP treatment", "2026-10-14", "14"),
        ("gone_one", "", "spec removed", "KEEP_RUNNING", "2026-09-03", "3"),
        ("later_one", "2026-12-10 … 2026-12-20", "scheduled", "not analysed yet", "", "0"),
        (
            "running_one",
            "2026-11-01 … 2026-11-30",
            "running (day 3 of 30)",
            "not analysed yet",
            "",
            "0",
        ),
    ]
    assert rows[1].first_reason == "ctr rose +4.00% | significant."
    markdown = overview_markdown(rows)
    assert markdown.count("\n|") == len(rows) + 1  # the header rule and one line per row
    assert "- **ended_one**: ctr rose +4.00% | significant." in markdown
    assert overview_markdown([]).startswith("_no experiment")


def test_the_analysis_runs_materialise_the_overview_after_the_decision(pipeline: Pipeline) -> None:
    experiment_id = pipeline.experiment.spec.id
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("experiments_overview"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    (record,) = [
        r.data
        for r in metadata["experiments"].value.records  # type: ignore[attr-defined]
        if r.data["experiment"] == experiment_id
    ]
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        row = conn.execute(
            "SELECT decision, variant, reasons[1] FROM decision "
            "WHERE experiment_id = ? AND as_of_date = ?",
            [experiment_id, pipeline.days[-1]],
        ).fetchone()
    assert row is not None
    verdict, variant, first_reason = row
    assert record["latest_decision"] == verdict + (f" {variant}" if variant else "")
    assert record["as_of"] == pipeline.days[-1].isoformat()
    assert record["days_decided"] == len(pipeline.days)
    assert record["window"].startswith(pipeline.experiment.spec.start.isoformat())
    assert f"- **{experiment_id}**: {first_reason}" in str(metadata["overview"].value)
