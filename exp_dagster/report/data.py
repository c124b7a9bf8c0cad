"""What a report shows, read from the warehouse in one place: a few small rows per day.

The report never recomputes a statistic: every number comes from the ``results``, ``decision``,
``metric_statistics``, ``metric_trees``, quarantine and model-evaluation (``offline_evaluation``,
``offline_online_parity``) tables that the pipeline wrote, so the HTML file, the terminal and
the Dagster UI agree to the digit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.warehouse.evaluation import read_rows
from exp_dagster.warehouse.partitions import read_partition
from exp_dagster.warehouse.statements import fetch_dicts

Row = Mapping[str, Any]

# The blocking pandera gates upstream of a report, in pipeline order, with the asset each
# guards and the partition dimension that asset is keyed by.
GATES: tuple[tuple[str, str, str], ...] = (
    ("check_exposures_schema", "exposures", "experiment_day"),
    ("check_event_facts_schema", "event_facts", "date"),
    ("check_unit_metrics_schema", "unit_metrics", "experiment_day"),
    ("check_results_schema", "results", "experiment_day"),
)


class ReportDataError(LookupError):
    """The warehouse has nothing to report for this experiment and day."""


@dataclass(frozen=True)
class GateResult:
    """The latest evaluation of one data gate for the report's day.

    Attributes:
        name: the check's name, e.g. ``check_results_schema``.
        asset: the asset it guards.
        status: ``passed``, ``failed`` or ``not recorded`` (no evaluation in the instance).
        detail: the gate's own words (rows validated, or why it failed).
    """

    name: str
    asset: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class DataQuality:
    """Row accounting through the report's day: every input row validated or quarantined.

    Attributes:
        exposure_rows: exposure log rows validated (repeats included) from the start to the day.
        exposure_units: first exposures per unit and day kept in ``exposures``.
        exposure_quarantine: quarantined exposure rows by reason.
        event_rows: event log rows validated over the pre-period and the window to the day.
        event_quarantine: quarantined event rows by reason, same days.
        first_event_day: the first day of events the analysis reads (start minus pre-period).
    """

    exposure_rows: int
    exposure_units: int
    exposure_quarantine: dict[str, int]
    event_rows: int
    event_quarantine: dict[str, int]
    first_event_day: dt.date


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows, for one experiment and day.

    Attributes:
        experiment: the resolved spec (variants, weights, dates, metrics, policy, version).
        as_of: the report's day.
        decision: the ``decision`` row (``decision``, ``variant``, ``reasons``, ``srm_p_value``).
        results: the day's ``results`` rows, overall and per segment value.
        history: overall ``results`` rows of the primary metric on every day up to the day.
        decisions_by_day: the verdict on each day up to the day.
        units_by_day: cumulative units per variant on each day up to the day.
        quality: row accounting and quarantine reasons.
        gates: the latest evaluation of each upstream gate for the day.
        model_evaluation: the day's ``offline_evaluation`` rows (overall and per segment);
            empty without model logs.
        parity: the day's ``offline_online_parity`` rows.
        metric_trees: the day's ``metric_trees`` rows (a spec's ``metric_tree``); empty without.
        did_effects: the day's ``did_effects`` rows (a spec's ``did`` block); empty without.
        bandit_allocations: the ``bandit_allocations`` rows set on or before the day (a spec's
            ``bandit``), by day and variant; empty without.
    """

    experiment: ResolvedExperiment
    as_of: dt.date
    decision: Row
    results: Sequence[Row]
    history: Sequence[Row] = ()
    decisions_by_day: Mapping[dt.date, str] = field(default_factory=dict)
    units_by_day: Mapping[dt.date, Mapping[str, int]] = field(default_factory=dict)
    quality: DataQuality | None = None
    gates: Sequence[GateResult] = ()
    model_evaluation: Sequence[Row] = ()
    parity: Sequence[Row] = ()
    metric_trees: Sequence[Row] = ()
    did_effects: Sequence[Row] = ()
    bandit_allocations: Sequence[Row] = ()

    @property
    def verdict(self) -> str:
        return str(self.decision.get("decision") or "INVALID")

    @property
    def units(self) -> Mapping[str, int]:
        """Units per variant on the report's day."""
        return self.units_by_day.get(self.as_of, {})


def _reasons(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> dict[str, int]:
    return {str(r["reason"]): int(r["rows"]) for r in fetch_dicts(conn, sql, params)}


def read_data_quality(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> DataQuality:
    """Rows validated and quarantined, from the experiment's start (events: its pre-period)."""
    spec = experiment.spec
    first_event_day = spec.start - dt.timedelta(days=spec.pre_period_days)
    exposures = fetch_dicts(
        conn,
        "SELECT count(*) AS units, coalesce(sum(exposure_rows), 0) AS rows FROM exposures "
        "WHERE experiment_id = ? AND exposure_date <= ?",
        [spec.id, day],
    )[0]
    events = fetch_dicts(
        conn,
        "SELECT coalesce(sum(n), 0) AS rows FROM event_facts WHERE event_date BETWEEN ? AND ?",
        [first_event_day, day],
    )[0]
    return DataQuality(
        exposure_rows=int(exposures["rows"]),
        exposure_units=int(exposures["units"]),
        exposure_quarantine=_reasons(
            conn,
            "SELECT reason, count(*) AS rows FROM exposure_quarantine "
            "WHERE experiment_id = ? AND exposure_date <= ? GROUP BY reason ORDER BY 2 DESC, 1",
            [spec.id, day],
        ),
        event_rows=int(events["rows"]),
        event_quarantine=_reasons(
            conn,
            "SELECT reason, count(*) AS rows FROM event_quarantine "
            "WHERE event_date BETWEEN ? AND ? GROUP BY reason ORDER BY 2 DESC, 1",
            [first_event_day, day],
        ),
        first_event_day=first_event_day,
    )


def read_report_data(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    gates: Sequence[GateResult] = (),
) -> ReportData:
    """The report's rows for ``experiment`` as of ``day``.

    Raises:
        ReportDataError: when the day has no decision yet (its partitions were not materialised).
    """
    spec = experiment.spec
    decisions = read_partition(conn, "decision", spec.id, day)
    if not decisions:
        known = fetch_dicts(
            conn,
            "SELECT min(as_of_date) AS first, max(as_of_date) AS last FROM decision "
            "WHERE experiment_id = ?",
            [spec.id],
        )[0]
        where = (
            f"decisions exist from {known['first']} to {known['last']}"
            if known["first"] is not None
            else "no day of it has been analysed yet"
        )
        raise ReportDataError(
            f"experiment '{spec.id}' has no decision as of {day} in the warehouse ({where}); "
            f"materialise its partitions through {day} first (exp-dagster demo or analyze, or "
            f"the Dagster UI), or pick another --as-of."
        )
    history = fetch_dicts(
        conn,
        "SELECT * FROM results WHERE experiment_id = ? AND as_of_date <= ? AND segment = 'all' "
        "AND metric = ? ORDER BY as_of_date, variant",
        [spec.id, day, spec.metrics.primary],
    )
    verdicts = fetch_dicts(
        conn,
        "SELECT as_of_date, decision FROM decision WHERE experiment_id = ? AND as_of_date <= ? "
        "ORDER BY as_of_date",
        [spec.id, day],
    )
    units: dict[dt.date, dict[str, int]] = {}
    for row in fetch_dicts(
        conn,
        "SELECT as_of_date, variant, n FROM metric_statistics WHERE experiment_id = ? "
        "AND as_of_date <= ? AND segment = 'all' AND metric = ? ORDER BY as_of_date, variant",
        [spec.id, day, spec.metrics.primary],
    ):
        units.setdefault(row["as_of_date"], {})[str(row["variant"])] = int(row["n"])
    return ReportData(
        experiment=experiment,
        as_of=day,
        decision=decisions[0],
        results=read_partition(conn, "results", spec.id, day),
        history=history,
        decisions_by_day={r["as_of_date"]: str(r["decision"]) for r in verdicts},
        units_by_day=units,
        quality=read_data_quality(conn, experiment, day),
        gates=tuple(gates),
        model_evaluation=read_rows(conn, "offline_evaluation", spec.id, day),
        parity=read_rows(conn, "offline_online_parity", spec.id, day),
        metric_trees=read_partition(conn, "metric_trees", spec.id, day),
        did_effects=read_partition(conn, "did_effects", spec.id, day),
        bandit_allocations=fetch_dicts(
            conn,
            "SELECT * FROM bandit_allocations WHERE experiment_id = ? AND as_of_date <= ? "
            "ORDER BY as_of_date, variant",
            [spec.id, day],
        )
        if spec.bandit is not None
        else (),
    )


def report_path(reports_dir: Path, experiment_id: str, day: dt.date) -> Path:
    """Where the report of ``experiment_id`` as of ``day`` lives: ``<reports>/<id>/<day>.html``."""
    return reports_dir / experiment_id / f"{day.isoformat()}.html"


def latest_decision_day(conn: duckdb.DuckDBPyConnection, experiment_id: str) -> dt.date | None:
    """The last day of the experiment with a decision in the warehouse, or None."""
    row = conn.execute(
        "SELECT max(as_of_date) FROM decision WHERE experiment_id = ?", [experiment_id]
    ).fetchone()
    return row[0] if row else None
