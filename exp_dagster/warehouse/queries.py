"""The warehouse's public names, from the modules they moved to (issue 18); kept for one release.

Import from the modules instead: :mod:`.statements` (running ``sql/*.sql``, transactions),
:mod:`.schema` (``ensure_schema``), :mod:`.ingest` (exposures, event facts, covariates,
quarantine), :mod:`.unit_state` (``unit_metrics``, lineage), :mod:`.statistics`
(``metric_statistics``, novelty, outliers, winsorisation), :mod:`.quantiles` (histograms and
quantile moments) and :mod:`.partitions` (partitions read back, replaced, and their write ids).
"""

from __future__ import annotations

from exp_dagster.warehouse.ingest import (
    MAX_ABS_VALUE,
    CovariateCounts,
    EventCounts,
    ExposureCounts,
    build_event_facts,
    build_exposures,
    build_pre_period_covariates,
)
from exp_dagster.warehouse.landing import InputError, LogSource
from exp_dagster.warehouse.partitions import (
    read_event_names,
    read_history,
    read_latest_decisions,
    read_partition,
    record_write,
    replace_partition,
)
from exp_dagster.warehouse.quantiles import (
    LOG_GAMMA,
    NONPOSITIVE_BUCKET,
    QUANTILE_BYTES_PER_UNIT,
    QUANTILE_GAMMA,
    memory_limit_bytes,
)
from exp_dagster.warehouse.schema import ensure_schema
from exp_dagster.warehouse.statements import fetch_dicts, query, run_sql, transaction
from exp_dagster.warehouse.statistics import build_metric_statistics, read_outliers
from exp_dagster.warehouse.unit_state import (
    UNIT_METRICS_LINEAGE_VERSION,
    UnitMetricCounts,
    build_unit_metrics,
    metric_windows,
)

__all__ = [
    "LOG_GAMMA",
    "MAX_ABS_VALUE",
    "NONPOSITIVE_BUCKET",
    "QUANTILE_BYTES_PER_UNIT",
    "QUANTILE_GAMMA",
    "UNIT_METRICS_LINEAGE_VERSION",
    "CovariateCounts",
    "EventCounts",
    "ExposureCounts",
    "InputError",
    "LogSource",
    "UnitMetricCounts",
    "build_event_facts",
    "build_exposures",
    "build_metric_statistics",
    "build_pre_period_covariates",
    "build_unit_metrics",
    "ensure_schema",
    "fetch_dicts",
    "memory_limit_bytes",
    "metric_windows",
    "query",
    "read_event_names",
    "read_history",
    "read_latest_decisions",
    "read_outliers",
    "read_partition",
    "record_write",
    "replace_partition",
    "run_sql",
    "transaction",
]
