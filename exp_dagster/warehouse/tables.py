"""The warehouse's tables in one registry: which step (asset) writes each, how it is partitioned,
whether Python writes or reads its partitions whole, and what it holds.

``schema.sql`` creates the tables; this module says what they are for. A test holds the two
together (every table created is registered, with the partition columns it names) and checks
that docs/pipeline.md lists every table a user can query. ``partitions.read_partition`` and
``partitions.replace_partition`` take their allow-lists from here.

Partitioning:

* ``experiment × date``: rows of one experiment as of, or exposed on, one day
  (``experiment_id`` and ``date_column``); ``replace``-d whole by the step's run.
* ``date``: rows of one day of logs shared by every experiment (``date_column``).
* ``lineage``: bookkeeping the incremental days read (which writes a partition was built from);
  not for users.

Every table a step writes is an asset of that step's multi-asset (``assets/_common.py``,
``writer_tables``), described by its ``holds``, except the ``internal`` ones: the lineage
bookkeeping, and the storage behind another table (``novelty_sums`` behind
``novelty_statistics``; ``unit_metric_rows`` and ``unit_metric_names`` behind the view
``unit_metrics``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Partitioning = Literal["experiment × date", "date", "lineage"]


@dataclass(frozen=True)
class Table:
    """One warehouse table.

    Attributes:
        name: the table's name in schema.sql.
        step: the Dagster asset whose materialisation writes it.
        partitioning: ``experiment × date``, ``date`` or ``lineage`` (see the module docstring).
        date_column: the column holding the partition's day (``None`` for lineage tables).
        written_from: ``sql`` (a statement reduces other tables in the engine) or ``python``
            (a few rows per partition computed in Python, written by ``replace_partition``).
        small: whether a partition is a few rows per metric and arm, read whole into Python
            (``read_partition``); big tables (per unit or per event) stay in the engine.
        holds: what one row is, in a few words (the description of its asset).
        internal: bookkeeping or the storage behind another table, written in the step's
            transaction but not an asset of its own (every lineage table is internal).
    """

    name: str
    step: str
    partitioning: Partitioning
    date_column: str | None
    written_from: Literal["sql", "python"]
    small: bool
    holds: str
    internal: bool = False

    @property
    def experiment_column(self) -> str | None:
        """``experiment_id`` for tables partitioned by experiment, else ``None``."""
        return "experiment_id" if self.partitioning == "experiment × date" else None


def _experiment_day(
    name: str,
    step: str,
    holds: str,
    *,
    date_column: str = "as_of_date",
    small: bool = False,
    internal: bool = False,
) -> Table:
    return Table(name, step, "experiment × date", date_column, "sql", small, holds, internal)


def _day(name: str, holds: str) -> Table:
    return Table(name, "event_facts", "date", "event_date", "sql", False, holds)


def _lineage(name: str, step: str, holds: str) -> Table:
    return Table(name, step, "lineage", None, "sql", False, holds, internal=True)


def _python(name: str, step: str, holds: str) -> Table:
    return Table(name, step, "experiment × date", "as_of_date", "python", True, holds)


TABLES: tuple[Table, ...] = (
    _experiment_day(
        "exposures", "exposures", "a unit's first exposure that day", date_column="exposure_date"
    ),
    _experiment_day(
        "exposure_quarantine",
        "exposures",
        "an exposure row set aside, with its file, row and reason",
        date_column="exposure_date",
    ),
    _day("event_facts", "per unit and event: count, sum, sum of squares"),
    _day("quantile_facts", "per unit and event: counts per log bucket, for quantile metrics"),
    _day("event_times", "a valid event row with its timestamp, for the exposure day's split"),
    _day("event_quarantine", "an event row set aside, with its file, row and reason"),
    _experiment_day(
        "pre_period_covariates",
        "pre_period_covariates",
        "a unit exposed that day: its events in the pre-period (CUPED covariates)",
        date_column="exposure_date",
    ),
    _experiment_day(
        "pre_exposure_facts",
        "pre_period_covariates",
        "a unit's events of its exposure day before its exposure (left out of its metrics)",
        date_column="exposure_date",
    ),
    _experiment_day(
        "pre_exposure_quantile_facts",
        "pre_period_covariates",
        "the same, as quantile buckets",
        date_column="exposure_date",
    ),
    _lineage(
        "partition_writes",
        "exposures",
        "one write of an input partition (exposures, covariates, event facts) and its id",
    ),
    _lineage(
        "unit_metrics_lineage",
        "unit_metrics",
        "the digest of the input writes a unit_metrics partition was built from",
    ),
    _experiment_day(
        "unit_metric_rows",
        "unit_metrics",
        "a unit's metric values and covariates as lists (read through the view unit_metrics)",
        internal=True,
    ),
    _experiment_day(
        "unit_crossovers",
        "unit_metrics",
        "a unit left out because it was exposed to two variants",
    ),
    _experiment_day(
        "unit_metric_names",
        "unit_metrics",
        "the metric names of unit_metric_rows' lists",
        internal=True,
    ),
    _experiment_day(
        "metric_statistics",
        "metric_statistics",
        "sufficient statistics per metric × variant × segment value",
        small=True,
    ),
    _experiment_day(
        "novelty_sums",
        "metric_statistics",
        "the exact running sums behind novelty_statistics, with their lineage digest",
        internal=True,
    ),
    _experiment_day(
        "novelty_statistics",
        "metric_statistics",
        "sufficient statistics per metric × variant × day since first exposure",
        small=True,
    ),
    _experiment_day(
        "quantile_histograms",
        "metric_statistics",
        "per quantile metric and variant, one bucket of the observations' histogram",
        small=True,
    ),
    _experiment_day(
        "metric_outliers",
        "metric_statistics",
        "per mean metric (or part of a ratio): median, fence, outlying units, cap",
        small=True,
    ),
    _experiment_day(
        "metric_cross_statistics",
        "metric_statistics",
        "per variant, a pair of the OEC's and metric tree's per-unit quantities: n, sums, "
        "sum of products",
        small=True,
    ),
    _experiment_day(
        "did_cluster_days",
        "metric_statistics",
        "a did metric's cell of the panel on the day: a cluster's units exposed, sum and sum of "
        "squares of their daily values",
        small=True,
    ),
    _python("results", "results", "one metric × treatment × segment value: effects and tests"),
    _python(
        "metric_trees",
        "results",
        "a metric tree's total or factor per treatment: lift, CI, share of the log lift",
    ),
    _python(
        "did_effects",
        "results",
        "a did metric's difference-in-differences effect and pre-trend check, or one day's "
        "event-study effect",
    ),
    _python(
        "decision", "decision", "the verdict and its reasons; a ramp in progress: its next step"
    ),
    _python(
        "offline_evaluation", "offline_evaluation", "an offline metric of a model, with its CI"
    ),
    _python(
        "offline_online_parity",
        "offline_online_parity",
        "whether an offline estimate agrees with the online effect",
    ),
    _python(
        "bandit_allocations",
        "bandit_allocations",
        "a bandit experiment's variant: its traffic weight for the next day, P(best)",
    ),
)

VIEWS: tuple[str, ...] = ("unit_metrics",)
# Not written by a step: the digest of the schema.sql that created the tables (ensure_schema).
SCHEMA_TABLE = "warehouse_schema"

_BY_NAME = {table.name: table for table in TABLES}


def table(name: str) -> Table:
    """The registered table ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a warehouse table; known: {', '.join(_BY_NAME)}") from None


def written_by(step: str) -> Iterator[Table]:
    """The tables the asset ``step`` writes, in schema order."""
    return (t for t in TABLES if t.step == step)


def assets_of(step: str) -> tuple[str, ...]:
    """The tables the step ``step`` writes that are assets of its multi-asset (not internal),
    in schema order; the step's own table, when it has one, among them."""
    return tuple(t.name for t in written_by(step) if not t.internal)


SMALL_TABLES = frozenset(t.name for t in TABLES if t.small)
WRITTEN_FROM_PYTHON = frozenset(t.name for t in TABLES if t.written_from == "python")
