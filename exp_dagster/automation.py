"""Jobs (and, as the orchestration work lands, sensors and schedules) over the asset graph.

Selections name asset keys rather than importing the asset modules, so this layer stays below
``assets/`` (docs/architecture.md, layers). Each names the asset a step is named after; the
tables the same step writes beside it (``exposure_quarantine`` with ``exposures``,
``metric_outliers`` with ``metric_statistics``, ...) are in the same non-subsettable
multi-asset, and ``required_multi_asset_neighbors`` adds them, so a new table needs no change
here.
"""

from __future__ import annotations

import dagster as dg

# Runs that write the warehouse carry this tag; dagster.yaml's run queue admits one at a time.
WRITER_TAG = {"exp_dagster/writer": "duckdb"}
# Runs of the whole experiment-day chain carry this tag: their upstream updates need no
# downstream refresh by automation (see exp_dagster.triggers.refresh_condition).
WHOLE_DAY_TAG = {"exp_dagster/scope": "experiment_day"}

EXPERIMENT_DAY_ASSETS = (
    "exposures",
    "pre_period_covariates",
    "unit_metrics",
    "metric_statistics",
    "results",
    "bandit_allocations",
    "offline_evaluation",
    "offline_online_parity",
    "decision",
    "report",
)
# Unpartitioned, refreshed by every analysis run after its decision (a run of one partition may
# also materialise an unpartitioned asset).
OVERVIEW_ASSETS = ("experiments_overview",)

ingest_events_job = dg.define_asset_job(
    name="ingest_events",
    selection=dg.AssetSelection.assets("event_facts").required_multi_asset_neighbors(),
    tags=WRITER_TAG,
    description="Reduce one day of raw events to per-unit facts, shared by every experiment.",
)

analyze_experiment_day_job = dg.define_asset_job(
    name="analyze_experiment_day",
    selection=dg.AssetSelection.assets(
        *EXPERIMENT_DAY_ASSETS, *OVERVIEW_ASSETS
    ).required_multi_asset_neighbors(),
    tags={**WRITER_TAG, **WHOLE_DAY_TAG},
    description=(
        "The main job: exposures → covariates → unit metrics → statistics → results (and a "
        "bandit's next-day allocation) → decision → report for one experiment and day, then the "
        "experiments overview."
    ),
)

jobs = [ingest_events_job, analyze_experiment_day_job]
