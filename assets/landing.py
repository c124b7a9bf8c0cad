"""The raw logs in the landing zone, as external assets: the graph starts here in the UI."""

from __future__ import annotations

import dagster as dg

raw_exposure_logs = dg.AssetSpec(
    key="raw_exposure_logs",
    description=(
        "Exposure logs as your SDK writes them: experiment_id, unit_id, variant, exposed_at (UTC) "
        "and segment columns; Parquet, CSV or JSONL, one file or date=YYYY-MM-DD/ folders."
    ),
    group_name="landing",
    kinds={"parquet", "csv", "json"},
)
raw_event_logs = dg.AssetSpec(
    key="raw_event_logs",
    description=(
        "Event logs: unit_id, event_time (UTC), event, value (1.0 for countable events); "
        "Parquet, CSV or JSONL, one file or date=YYYY-MM-DD/ folders."
    ),
    group_name="landing",
    kinds={"parquet", "csv", "json"},
)
