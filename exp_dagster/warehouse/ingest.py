"""Raw logs into validated tables: exposures, event facts, pre-period covariates, and the
quarantine of every row that could not be used, with its reason (docs/architecture.md,
decisions 5 and 6).

Each ``build_*`` function materialises exactly one partition inside a transaction (delete the
partition, insert it again), so re-running any partition, in any order, gives the same table.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from exp_dagster.assignment import bucket_upper_bounds
from exp_dagster.spec import IDENTIFIER_PATTERN, ExperimentSpec, MetricSpec, ResolvedExperiment
from exp_dagster.warehouse.landing import InputError, LogSource, raise_unreadable, stage_raw
from exp_dagster.warehouse.partitions import record_write
from exp_dagster.warehouse.quantiles import LOG_GAMMA, NONPOSITIVE_BUCKET
from exp_dagster.warehouse.statements import (
    execute,
    fill_markers,
    run_sql,
    scalar,
    sql_statements,
    transaction,
)

# Event values at or beyond this magnitude are quarantined: no latency, amount or duration is
# that large, and exact sums (DECIMAL(38, 6) in schema.sql) of their squares would overflow.
MAX_ABS_VALUE = 1e12

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def _reasons(
    conn: duckdb.DuckDBPyConnection, table: str, where: str, params: Sequence[Any]
) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT reason, count(*) FROM {table} WHERE {where} GROUP BY reason ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    return {str(reason): int(count) for reason, count in rows}


# ── exposures ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ExposureCounts:
    """Row accounting of one exposures partition: rows_in = rows_validated + rows_quarantined.

    Attributes:
        rows_in: raw rows of the experiment that belong to the day.
        rows_validated: rows kept (collapsed into one row per unit: repeats and duplicates).
        units: units exposed that day.
        rows_quarantined: rows set aside, by reason in ``reasons``.
        hash_checked: whether variants were checked against the deterministic hash.
    """

    rows_in: int
    rows_validated: int
    units: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    hash_checked: bool = False


def _segment_columns(segments: Sequence[str]) -> tuple[str, str]:
    """A spec's segment columns in typed_exposures (``segment_<i>``, as text), and the MAP of
    each unit's segments that exposures.sql's ``@segments@`` keeps: the values of its earliest
    exposure row, as ``arg_min(segments, exposed_ts)`` of a MAP per row would give them.

    The MAP is built per unit, after grouping: building one per raw row and carrying it through
    two temp tables cost more than the rest of the step. ``arg_min_null`` keeps a NULL value (a
    MAP is never NULL, so arg_min of the MAP kept the earliest row's NULLs too), and every
    column's ``arg_min_null`` picks the same row, the first of ties, as arg_min of the MAP did.
    """
    for name in segments:
        if not _IDENTIFIER.match(name):  # the spec already enforces this; never trust callers
            raise ValueError(f"invalid segment column name {name!r}")
    if not segments:
        return "", "MAP {}::MAP(VARCHAR, VARCHAR)"
    columns = "".join(
        f'CAST("{name}" AS VARCHAR) AS segment_{i}, ' for i, name in enumerate(segments)
    )
    entries = ", ".join(
        f"'{name}': arg_min_null(segment_{i}, exposed_ts)" for i, name in enumerate(segments)
    )
    return columns, f"MAP {{{entries}}}"


def _assignment_bounds(spec: ExperimentSpec, day: dt.date) -> dict[str, Any]:
    """exposures.sql's bucket bounds on ``day``: the split in force (the ramp phase's, else the
    variants' weights), the earlier phases' (accepted for units first exposed then), and the
    words that name the phase in a quarantine reason."""
    phase = spec.phase_index(day)
    if phase is None or spec.ramp is None:
        return {
            "upper_bounds": bucket_upper_bounds([v.weight for v in spec.variants]),
            "earlier_bounds": [],
            "phase_note": "",
        }
    names = [v.name for v in spec.variants]
    phases = [[p.weights[name] for name in names] for p in spec.ramp[: phase + 1]]
    note = f" in the ramp phase from {spec.ramp[phase].start}"
    if phase > 0:
        note += ", or an earlier phase's variant of its bucket"
    return {
        "upper_bounds": bucket_upper_bounds(phases[-1]),
        "earlier_bounds": [bucket_upper_bounds(weights) for weights in phases[:-1]],
        "phase_note": note,
    }


def build_exposures(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    source: LogSource,
    day: dt.date,
) -> ExposureCounts:
    """Validate one experiment-day of exposure logs into ``exposures`` and its quarantine."""
    spec = experiment.spec
    if source.is_hive and not (source.path / f"date={day.isoformat()}").is_dir():
        raise InputError(
            f"{source.path}: no date={day.isoformat()} folder, so experiment '{spec.id}' has no "
            f"exposure logs for {day}, a day of its window; re-export that day's logs (an "
            f"empty folder says the day truly had no traffic)."
        )
    # A view: the files are read once, into typed_exposures, which keeps only the rows that may
    # be this experiment's (a copy would also hold every other experiment's rows of the day).
    is_hive = stage_raw(
        conn, source, day, "raw_exposures", extra_columns=spec.segments, as_view=True
    )
    segment_columns, segment_map = _segment_columns(spec.segments)
    # Rows of other experiments are not this partition's; rows that may be its own (no
    # experiment_id, or one of only spaces and invisible characters, the id in another case or
    # with spaces, a repeated CSV header) are, and are quarantined, so nothing that could belong
    # to the experiment disappears unseen.
    try:
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE typed_exposures AS
            SELECT
                CAST(experiment_id AS VARCHAR) AS experiment_id_raw,
                CAST(unit_id AS VARCHAR) AS unit_id,
                CAST(variant AS VARCHAR) AS variant,
                exposed_at AS exposed_at_read,  -- as read: text only for quarantined rows
                {segment_columns}
                source_file,
                source_row,
                duplicate_of,
                copy_elsewhere
            FROM raw_exposures
            WHERE is_blank(CAST(experiment_id AS VARCHAR))
               OR lower(trim(CAST(experiment_id AS VARCHAR)))
                  IN (lower($experiment_id), 'experiment_id')
            """,
            {"experiment_id": spec.id},
        )
    except duckdb.Error as exc:  # the files are read here (raw_exposures is a view)
        raise_unreadable(conn, source, day, exc)
    params = {
        "experiment_id": spec.id,
        "day": day,
        "start": spec.start,
        "end": spec.end,
        "salt": spec.hash_salt or "",
        "check_hash": spec.hash_salt is not None,
        "is_hive": is_hive,
        "variant_names": [v.name for v in spec.variants],
        **_assignment_bounds(spec, day),
        "spec_version": experiment.version,
    }
    with transaction(conn):
        for statement in sql_statements("exposures"):
            execute(conn, fill_markers(statement, {"segments": segment_map}), params)
        record_write(conn, "exposures", spec.id, day)
    rows_in = scalar(conn, "SELECT count(*) FROM classified_exposures")
    validated = conn.execute(
        "SELECT count(*), coalesce(sum(exposure_rows), 0) FROM exposures "
        "WHERE experiment_id = ? AND exposure_date = ?",
        [spec.id, day],
    ).fetchone()
    assert validated is not None
    reasons = _reasons(
        conn, "exposure_quarantine", "experiment_id = ? AND exposure_date = ?", [spec.id, day]
    )
    return ExposureCounts(
        rows_in=int(rows_in),
        rows_validated=int(validated[1]),
        units=int(validated[0]),
        rows_quarantined=sum(reasons.values()),
        reasons=reasons,
        hash_checked=spec.hash_salt is not None,
    )


# ── event facts ───────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class EventCounts:
    """Row accounting of one event_facts partition: rows_in = rows_validated + rows_quarantined.

    Attributes:
        rows_in: raw event rows of the day.
        rows_validated: rows summed into ``event_facts``.
        fact_rows: rows of ``event_facts`` written (one per unit and event).
        units: distinct units with events.
        rows_quarantined: rows set aside, by reason in ``reasons``.
    """

    rows_in: int
    rows_validated: int
    fact_rows: int
    units: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)


def build_event_facts(
    conn: duckdb.DuckDBPyConnection,
    source: LogSource,
    day: dt.date,
    quantile_events: Sequence[str],
    timed_events: Sequence[str] | None = None,
    analysable_days: tuple[dt.date, dt.date] | None = None,
) -> EventCounts:
    """Reduce one day of raw events to per-unit, per-event facts and quantile histograms.

    The valid rows of ``timed_events`` (every event when None) are also kept with their
    timestamps (``event_times``), from which each unit's events before its exposure on its
    exposure day are left out of its metrics (``pre_exposure_facts``).

    Args:
        conn: an open DuckDB connection with the schema.
        source: the event logs.
        day: the UTC day to reduce.
        quantile_events: the events quantile metrics read (histograms are kept for them).
        timed_events: the events whose valid rows keep their timestamps (None: every event).
        analysable_days: the first and last day that can ever be materialised (the daily
            partitions). In a source that is not hive-style, a row dated outside them, or
            without a usable timestamp, belongs to the file's first day inside them, where it is
            quarantined, instead of to a day no run reads. None: every date is analysable.
    """
    is_hive = stage_raw(conn, source, day, "raw_events", as_view=True)
    first, last = analysable_days or (dt.date.min, dt.date.max)
    # A single file's rows without a usable or plausible timestamp belong to its first plausible
    # day (counted once, there); an absurd first row (1900-01-01) must not take them with it.
    first_day = None
    if not is_hive:
        first_day = scalar(
            conn,
            "SELECT coalesce(min(day) FILTER (WHERE day BETWEEN $first AND $last), $first) "
            "FROM (SELECT utc_timestamp(TRY_CAST(event_time AS TIMESTAMPTZ))::DATE AS day "
            "FROM raw_events)",
            {"first": first, "last": last},
        )
    params = {
        "day": day,
        "is_hive": is_hive,
        "first_day": first_day,
        "first_analysable": first,
        "last_analysable": last,
        "quantile_events": sorted(set(quantile_events)),
        "timed_events": None if timed_events is None else sorted(set(timed_events)),
        "log_gamma": LOG_GAMMA,
        "nonpositive_bucket": NONPOSITIVE_BUCKET,
        "max_abs_value": MAX_ABS_VALUE,
    }
    *statements, quarantine = sql_statements("event_facts")
    try:
        with transaction(conn):
            for statement in statements:
                execute(conn, statement, params)
            counted = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE NOT valid) FROM checked_events"
            ).fetchone()
            assert counted is not None
            rows_in, invalid = counted
            if invalid:  # only then are the files read again, for the raw values
                execute(conn, quarantine, params)
            record_write(conn, "event_facts", "", day)
    except duckdb.Error as exc:  # the files are read here (raw_events is a view)
        raise_unreadable(conn, source, day, exc)
    facts = conn.execute(
        "SELECT count(*), coalesce(sum(n), 0), count(DISTINCT unit_id) FROM event_facts "
        "WHERE event_date = ?",
        [day],
    ).fetchone()
    assert facts is not None
    reasons = _reasons(conn, "event_quarantine", "event_date = ?", [day])
    return EventCounts(
        rows_in=int(rows_in),
        rows_validated=int(facts[1]),
        fact_rows=int(facts[0]),
        units=int(facts[2]),
        rows_quarantined=sum(reasons.values()),
        reasons=reasons,
    )


# ── pre-period covariates ─────────────────────────────────────────────────────────────────────────


def _covariate_events(metrics: Mapping[str, MetricSpec]) -> list[str]:
    """Events whose pre-period totals serve as covariates (of the kinds that have one)."""
    return sorted({e for m in metrics.values() for e in m.kind.covariate_events(m)})


def _metric_events(metrics: Mapping[str, MetricSpec]) -> list[str]:
    """Every event a metric reads (numerators, denominators, quantile events), sorted."""
    return sorted({e for m in metrics.values() for e in m.events})


def _histogram_events(metrics: Mapping[str, MetricSpec]) -> list[str]:
    """The events whose values are kept as histograms (of the kinds that keep them)."""
    return sorted({e for m in metrics.values() for e in m.kind.histogram_events(m)})


@dataclass(frozen=True)
class CovariateCounts:
    """What one pre_period_covariates partition wrote.

    Attributes:
        rows: covariate rows (units exposed on the day × events in their pre-period).
        untimed_events: metric events with facts on the day but no timestamps in
            ``event_times`` (event facts written by an earlier release, or before the metric was
            in the catalog): their events before exposure could not be left out.
    """

    rows: int
    untimed_events: tuple[str, ...] = ()


def _has_row(conn: duckdb.DuckDBPyConnection, table: str, day: dt.date, event: str) -> bool:
    """Whether ``table`` (event_facts or event_times) has a row of ``event`` on ``day``: a scan
    that stops at the first one, where a DISTINCT over the day's rows read them all."""
    if table not in {"event_facts", "event_times"}:
        raise ValueError(f"{table} is not a table of events by day")
    found = conn.execute(
        f"SELECT 1 FROM {table} WHERE event_date = ? AND event = ? LIMIT 1", [day, event]
    ).fetchall()
    return bool(found)


def build_pre_period_covariates(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> CovariateCounts:
    """Pre-period event totals of the units exposed on ``day``, and their events of ``day``
    before their exposure timestamp (``pre_exposure_facts``, which the metrics leave out)."""
    spec = experiment.spec
    params = {
        "experiment_id": spec.id,
        "day": day,
        "pre_days": spec.pre_period_days,
        "events": _covariate_events(experiment.metrics),
        "spec_version": experiment.version,
    }
    pre_exposure_params = {
        "experiment_id": spec.id,
        "day": day,
        "events": _metric_events(experiment.metrics),
        "quantile_events": _histogram_events(experiment.metrics),
        "log_gamma": LOG_GAMMA,
        "nonpositive_bucket": NONPOSITIVE_BUCKET,
    }
    where = "WHERE experiment_id = ? AND exposure_date = ?"
    with transaction(conn):
        if spec.pre_period_days > 0:
            run_sql(conn, "pre_period_covariates", params)
        else:
            conn.execute(f"DELETE FROM pre_period_covariates {where}", [spec.id, day])
        if spec.analysis.metric_window_start == "exposure":
            run_sql(conn, "pre_exposure_facts", pre_exposure_params)
        else:  # counted from the exposure day's midnight: nothing to leave out
            conn.execute(f"DELETE FROM pre_exposure_facts {where}", [spec.id, day])
            conn.execute(f"DELETE FROM pre_exposure_quantile_facts {where}", [spec.id, day])
        record_write(conn, "pre_period_covariates", spec.id, day)
    rows = scalar(conn, f"SELECT count(*) FROM pre_period_covariates {where}", [spec.id, day])
    untimed: list[str] = []
    if spec.analysis.metric_window_start == "exposure":
        untimed = [
            event
            for event in pre_exposure_params["events"]
            if _has_row(conn, "event_facts", day, event)
            and not _has_row(conn, "event_times", day, event)
        ]
    if untimed:
        logging.getLogger(__name__).warning(
            "%s: the event facts of %s have no timestamps for %s (written by an earlier release, "
            "or before the metric was in the catalog), so their events before each unit's "
            "exposure count in its metrics; materialise event_facts for %s again.",
            spec.id,
            day,
            ", ".join(untimed),
            day,
        )
    return CovariateCounts(rows=int(rows), untimed_events=tuple(untimed))
