"""SQL that reduces raw logs to unit rows and sufficient statistics (docs/architecture.md,
decision 1).

Each ``build_*`` function materialises exactly one partition of one table inside a transaction
(delete the partition, insert it again), so re-running any partition, in any order, gives the
same table. The statements live in ``sql/*.sql`` with named, bound parameters; the only SQL
assembled here is from validated identifiers (segment column names of a spec) and fixed readers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import duckdb

from exp_dagster.assignment import bucket_upper_bounds
from exp_dagster.metric_kinds import Reduction, UnitTerms
from exp_dagster.spec import IDENTIFIER_PATTERN, MetricSpec, ResolvedExperiment
from exp_dagster.stats import quantile_from_histogram
from exp_dagster.warehouse.landing import InputError, LogSource, raise_unreadable, stage_raw
from exp_dagster.warehouse.tables import SMALL_TABLES, WRITTEN_FROM_PYTHON

# Quantile histograms use buckets of relative width 0.1 %: a value is represented by
# (1 + QUANTILE_GAMMA) ** round(ln(value) / ln(1 + QUANTILE_GAMMA)), within 0.05 % of it.
QUANTILE_GAMMA = 0.001
LOG_GAMMA = math.log1p(QUANTILE_GAMMA)
# The bucket of a quantile event's values at or below 0 (no log bucket holds them). Histograms
# leave them out, as before: a quantile metric is estimated from the positive values. They are
# kept in quantile_facts so that a unit's positive observations are its observation count in
# unit_metrics less these, without summing every bucket of every unit (_quantile_moments).
NONPOSITIVE_BUCKET = -(2**31)
# Event values at or beyond this magnitude are quarantined: no latency, amount or duration is
# that large, and exact sums (DECIMAL(38, 6) in schema.sql) of their squares would overflow.
MAX_ABS_VALUE = 1e12

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


@cache
def _statements(name: str) -> tuple[str, ...]:
    text = resources.files("exp_dagster.warehouse").joinpath("sql", f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in body.split(";\n") if s.strip().rstrip(";").strip())


def _execute(
    conn: duckdb.DuckDBPyConnection, statement: str, params: Mapping[str, Any]
) -> duckdb.DuckDBPyConnection:
    used = set(_PARAMETER.findall(statement))
    return conn.execute(statement, {k: v for k, v in params.items() if k in used})


def run_sql(conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]) -> None:
    """Run every statement of ``sql/<name>.sql`` with the parameters each one uses."""
    for statement in _statements(name):
        _execute(conn, statement, params)


def query(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Run the single ``SELECT`` of ``sql/<name>.sql`` and return its rows as dicts."""
    (statement,) = _statements(name)
    cursor = _execute(conn, statement, params)
    columns = [d[0] for d in cursor.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def fetch_dicts(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@cache
def _schema_digest() -> str:
    return hashlib.sha256("\n;".join(_statements("schema")).encode()).hexdigest()


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create (or upgrade) the warehouse tables, and pin the session to UTC.

    ``schema.sql`` runs once per version of it: the digest of the statements it last ran is kept
    in ``warehouse_schema``, so an up-to-date warehouse costs one lookup per connection, not fifty
    statements.
    """
    conn.execute("SET TimeZone = 'UTC'")
    digest = _schema_digest()
    try:
        row = conn.execute("SELECT digest FROM warehouse_schema").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is not None and row[0] == digest:
        return
    with transaction(conn):
        long_rows = _table_type(conn, "unit_metrics") == "BASE TABLE"
        if long_rows:  # a warehouse of a release that kept a row per unit and metric
            logging.getLogger(__name__).warning(
                "Converting unit_metrics to one row per unit (once; about 2 s per million rows)."
            )
            conn.execute("ALTER TABLE unit_metrics RENAME TO unit_metrics_long_rows")
        run_sql(conn, "schema", {})
        if long_rows:
            _pack_long_unit_metrics(conn, "unit_metrics_long_rows")
            conn.execute("DROP TABLE unit_metrics_long_rows")
        conn.execute("CREATE OR REPLACE TABLE warehouse_schema (digest VARCHAR NOT NULL)")
        conn.execute("INSERT INTO warehouse_schema VALUES (?)", [digest])


def _table_type(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = conn.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = ?",
        [name],
    ).fetchone()
    return str(row[0]) if row else None


def _pack_long_unit_metrics(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Move rows of the long layout (one per unit and metric, unit_metrics' columns) from
    ``table`` into unit_metric_rows and unit_metric_names, the metrics in sorted order.

    One pivot per set of metric names (a value per metric picked with FILTER: an aggregate that
    orders its list would sort every unit's rows, several times slower).
    """
    conn.execute(
        f"""
        INSERT INTO unit_metric_names
        SELECT experiment_id, as_of_date, list_sort(list(DISTINCT metric))
        FROM {table}
        GROUP BY experiment_id, as_of_date
        """
    )
    name_sets = conn.execute("SELECT DISTINCT metrics FROM unit_metric_names").fetchall()
    for (names,) in name_sets:
        params: dict[str, Any] = {f"metric_{i}": name for i, name in enumerate(names)}

        def pick(column: str, names: list[str] = names) -> str:
            return (
                "["
                + ", ".join(
                    f"any_value(l.{column}) FILTER (WHERE l.metric = $metric_{i})"
                    for i in range(len(names))
                )
                + "]::DOUBLE[]"
            )

        _execute(
            conn,
            f"""
            INSERT INTO unit_metric_rows
            SELECT
                l.experiment_id, l.as_of_date, l.unit_id, any_value(l.variant),
                any_value(l.first_exposure_date), any_value(l.segments),
                {pick("y")}, {pick("x")}, {pick("covariate")}, {pick("covariate_x")},
                any_value(l.spec_version)
            FROM {table} AS l
            SEMI JOIN unit_metric_names AS n
                ON n.experiment_id = l.experiment_id AND n.as_of_date = l.as_of_date
               AND n.metrics = $names
            GROUP BY l.experiment_id, l.as_of_date, l.unit_id
            """,
            {**params, "names": list(names)},
        )


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a run killed mid-write leaves the partition as it was."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def record_write(
    conn: duckdb.DuckDBPyConnection, table: str, experiment_id: str, day: dt.date
) -> None:
    """Give the partition just written a fresh write id (inside the writer's transaction).

    ``experiment_id`` is ``''`` for tables partitioned by day alone. The ids are the lineage
    that lets unit_metrics build a day on the previous one (:func:`build_unit_metrics`).
    """
    conn.execute(
        "DELETE FROM partition_writes "
        "WHERE table_name = ? AND experiment_id = ? AND partition_date = ?",
        [table, experiment_id, day],
    )
    conn.execute(
        "INSERT INTO partition_writes VALUES (?, ?, ?, gen_random_uuid())",
        [table, experiment_id, day],
    )


def _scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _reasons(
    conn: duckdb.DuckDBPyConnection, table: str, where: str, params: Sequence[Any]
) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT reason, count(*) FROM {table} WHERE {where} GROUP BY reason ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    return {str(reason): int(count) for reason, count in rows}


# ── exposures ────────────────────────────────────────────────────────────────────────────────


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
        "upper_bounds": bucket_upper_bounds([v.weight for v in spec.variants]),
        "spec_version": experiment.version,
    }
    with transaction(conn):
        for statement in _statements("exposures"):
            _execute(conn, _fill(statement, {"segments": segment_map}), params)
        record_write(conn, "exposures", spec.id, day)
    rows_in = _scalar(conn, "SELECT count(*) FROM classified_exposures")
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


# ── event facts ──────────────────────────────────────────────────────────────────────────────


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
        first_day = _scalar(
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
    *statements, quarantine = _statements("event_facts")
    try:
        with transaction(conn):
            for statement in statements:
                _execute(conn, statement, params)
            counted = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE NOT valid) FROM checked_events"
            ).fetchone()
            assert counted is not None
            rows_in, invalid = counted
            if invalid:  # only then are the files read again, for the raw values
                _execute(conn, quarantine, params)
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


# ── covariates, unit metrics, statistics ─────────────────────────────────────────────────────


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
    rows = _scalar(conn, f"SELECT count(*) FROM pre_period_covariates {where}", [spec.id, day])
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


@dataclass(frozen=True)
class UnitMetricCounts:
    """What one unit_metrics partition holds.

    Attributes:
        units: units analysed (exposed from the start through the day, one variant only).
        units_by_variant: the same, by variant (the input of the sample-ratio-mismatch test).
        crossover_units: units left out because they were exposed to different variants on
            different days.
        rows: rows written (units × metrics).
        incremental: built from the previous day's rows and the day's facts alone.
        pre_exposure_units: units first exposed on the day whose metric events earlier that
            day, before their exposure timestamp, were left out of their metrics.
        pre_exposure_events: those events.
    """

    units: int
    units_by_variant: dict[str, int]
    crossover_units: int
    rows: int
    incremental: bool = False
    pre_exposure_units: int = 0
    pre_exposure_events: int = 0


def _register_metric_definitions(
    conn: duckdb.DuckDBPyConnection, metrics: Mapping[str, MetricSpec]
) -> None:
    """The temp table ``metric_definitions`` of the novelty sums: the per-unit terms
    (:meth:`MetricKind.unit_terms`) of the metrics whose novelty is estimated."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE metric_definitions ("
        "metric VARCHAR, reduction VARCHAR, event VARCHAR, denominator_event VARCHAR)"
    )
    rows = []
    for name, m in sorted(metrics.items()):
        if m.kind.has_novelty:
            terms = _checked_terms(m)
            rows.append((name, terms.reduction, terms.event, terms.denominator))
    if rows:
        conn.executemany("INSERT INTO metric_definitions VALUES (?, ?, ?, ?)", rows)


def _register_metric_windows(
    conn: duckdb.DuckDBPyConnection, metrics: Mapping[str, MetricSpec]
) -> None:
    """The temp table ``metric_windows`` of unit_metrics.sql: window k's first and last day."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE metric_windows ("
        "window_index INTEGER, first_day INTEGER, last_day INTEGER)"
    )
    rows = [(k, first, last) for k, (first, last) in enumerate(metric_windows(metrics))]
    if rows:
        conn.executemany("INSERT INTO metric_windows VALUES (?, ?, ?)", rows)


# The reductions of metric_kinds.UnitTerms the warehouse turns into SQL (_cumulated, ...).
REDUCTIONS = ("any", "count", "sum")


def _checked_terms(metric: MetricSpec) -> UnitTerms:
    terms = metric.kind.unit_terms(metric)
    if terms.reduction not in REDUCTIONS:
        raise ValueError(
            f"metric '{metric.name}': its kind ({metric.kind.name}) reduces a unit's events by "
            f"{terms.reduction!r}, which the warehouse does not compute; the reductions are "
            f"{', '.join(REDUCTIONS)} (exp_dagster/warehouse/ renders them in SQL)"
        )
    return terms


def _cumulated(reduction: Reduction, previous: str, n: str, total: str) -> str:
    """A unit's value through the day: its ``previous`` value and the count ``n`` and DECIMAL
    ``total`` of the event's new facts. ``any``: 1 once the event occurs; ``count``: counts
    added; ``sum``: exact totals added."""
    if reduction == "any":
        return f"greatest(coalesce({previous}, 0), (coalesce({n}, 0) > 0)::DOUBLE)"
    if reduction == "count":
        return f"coalesce({previous}, 0) + coalesce({n}, 0)"
    return f"(CAST(coalesce({previous}, 0) AS DECIMAL(38, 6)) + coalesce({total}, 0))"


def _windowed(reduction: Reduction, n: str, total: str) -> str:
    """A unit's value over a metric window, from its count ``n`` and total of the event."""
    if reduction == "any":
        return f"(coalesce({n}, 0) > 0)::DOUBLE"
    if reduction == "count":
        return f"coalesce({n}, 0)::DOUBLE"
    return f"CAST(coalesce({total}, 0) AS DOUBLE)"


def _pre_period(reduction: Reduction, n: str, total: str) -> str:
    """A unit's covariate: its value over the pre-period, from the count and total there."""
    if reduction == "any":
        return f"(coalesce({n}, 0) > 0)::DOUBLE"
    if reduction == "count":
        return f"coalesce({n}, 0)"
    return f"coalesce({total}, 0)"


def _unit_metric_terms(
    experiment: ResolvedExperiment,
) -> tuple[dict[str, str], dict[str, Any]]:
    """The per-experiment parts of unit_metrics.sql: its @...@ markers and their parameters.

    Events are numbered in sorted order (``$event_j``; ``n_j`` and ``t_j`` are a unit's count
    and DECIMAL total of event j in ``post`` and ``pre``), metrics by their sorted names (list
    item i is metric i). Each metric's terms are its kind's (:meth:`MetricKind.unit_terms`):
    ``y`` reduces its event's facts (``any``: 1 once the event occurs; ``count``: counts added;
    ``sum``: exact totals added), ``x`` adds the exact totals of its denominator (1 without),
    and the covariates are the same over the pre-period. A windowed metric (``window_days``)
    keeps its previous value once set, else takes its window's totals (``wn_k_j``, ``wt_k_j``
    of window k, :func:`metric_windows`) when the window has elapsed, else NULL.
    """
    metrics = experiment.metrics
    has_pre_period = experiment.spec.pre_period_days > 0
    unit_terms = {name: _checked_terms(m) for name, m in metrics.items()}
    events = sorted(
        {t.event for t in unit_terms.values()}
        | {t.denominator for t in unit_terms.values() if t.denominator is not None}
    )
    column = {event: j for j, event in enumerate(events)}
    windows = metric_windows(metrics)
    window_of = {window: k for k, window in enumerate(windows)}
    window_events: dict[int, set[int]] = {k: set() for k in range(len(windows))}
    post = ", ".join(
        f"sum(f.n) FILTER (WHERE f.event = $event_{j}) AS n_{j}, "
        f"sum(CAST(f.total AS DECIMAL(38, 6))) FILTER (WHERE f.event = $event_{j}) AS t_{j}"
        for j in range(len(events))
    )
    pre = ", ".join(
        f"sum(c.n) FILTER (WHERE c.event = $event_{j}) AS n_{j}, "
        f"sum(c.total) FILTER (WHERE c.event = $event_{j}) AS t_{j}"
        for j in range(len(events))
    )
    y, x, covariate, covariate_x = [], [], [], []
    for i, (name, m) in enumerate(sorted(metrics.items()), start=1):
        terms = unit_terms[name]
        e = column[terms.event]
        k = None if m.window_days is None else window_of[m.window_days]
        if k is not None:
            window_events[k].add(e)

        def windowed(value: str, previous: str, k: int | None = k, i: int = i) -> str:
            # set once, when the window has elapsed (a previous value means it had already)
            return (
                f"CASE WHEN p.y[{i}] IS NOT NULL THEN p.{previous}[{i}] "
                f"WHEN w.complete_{k} THEN {value} END"
            )

        if k is None:
            y.append(_cumulated(terms.reduction, f"p.y[{i}]", f"post.n_{e}", f"post.t_{e}"))
        else:
            y.append(windowed(_windowed(terms.reduction, f"w.wn_{k}_{e}", f"w.wt_{k}_{e}"), "y"))
        with_covariate = has_pre_period and terms.covariate
        fresh = _pre_period(terms.reduction, f"pre.n_{e}", f"pre.t_{e}")
        fresh = fresh if with_covariate else "NULL"
        fresh_x = "NULL"
        if terms.denominator is not None:
            d = column[terms.denominator]
            if k is None:
                x.append(_cumulated("sum", f"p.x[{i}]", f"post.n_{d}", f"post.t_{d}"))
            else:
                window_events[k].add(d)
                x.append(windowed(_windowed("sum", f"w.wn_{k}_{d}", f"w.wt_{k}_{d}"), "x"))
            if with_covariate:
                fresh_x = _pre_period("sum", f"pre.n_{d}", f"pre.t_{d}")
        else:
            x.append("1")
        # a unit exposed before the day keeps the covariates of its previous row
        carried = "$extend AND u.first_exposure_date < $day"
        covariate.append(f"CASE WHEN {carried} THEN p.covariate[{i}] ELSE {fresh} END")
        covariate_x.append(f"CASE WHEN {carried} THEN p.covariate_x[{i}] ELSE {fresh_x} END")

    def as_list(items: list[str]) -> str:
        return "[" + ", ".join(f"CAST({item} AS DOUBLE)" for item in items) + "]::DOUBLE[]"

    # a unit's totals per window and event, and whether the window has elapsed (a span row)
    window_columns = ", ".join(
        [f"bool_or(s.window_index = {k}) AS complete_{k}" for k in range(len(windows))]
        + [
            f"sum(f.n) FILTER (WHERE s.window_index = {k} AND f.event = $event_{j}) AS wn_{k}_{j}, "
            f"sum(f.total) FILTER (WHERE s.window_index = {k} AND f.event = $event_{j}) "
            f"AS wt_{k}_{j}"
            for k in range(len(windows))
            for j in sorted(window_events[k])
        ]
    )
    terms = {
        "window_columns": window_columns or "NULL AS no_window",
        "post_columns": post,
        "pre_columns": pre,
        "y": as_list(y),
        "x": as_list(x),
        "covariate": as_list(covariate),
        "covariate_x": as_list(covariate_x),
    }
    params: dict[str, Any] = {f"event_{j}": event for j, event in enumerate(events)}
    params["events"] = events
    params["metric_names"] = sorted(metrics)
    params["window_events"] = sorted({events[j] for js in window_events.values() for j in js})
    return terms, params


def metric_windows(metrics: Mapping[str, MetricSpec]) -> list[tuple[int, int]]:
    """The distinct ``window_days`` of the metrics, sorted: window k of unit_metrics.sql."""
    return sorted({m.window_days for m in metrics.values() if m.window_days is not None})


def _window_parameters(
    experiment: ResolvedExperiment, day: dt.date, *, extend: bool
) -> dict[str, Any]:
    """unit_metrics.sql's parameters that bound the work of metric windows to a day's.

    A window [d0, d1] anchored in day F (the unit's first exposure day) ends in day F + d1 + 1
    (exactly at its start when the anchor is midnight), so it has elapsed by the end of day T
    only if F + d1 <= T. With ``extend``, only windows that may have elapsed since day - 1 are
    computed: their units' F lies in [T - d1 - 1, T - d1] for some window (T the day, capped at
    the end date: after it, no new window elapses); their facts start at F + d0.
    """
    spec = experiment.spec
    windows = metric_windows(experiment.metrics)
    through = min(day, spec.end)
    if not windows:  # an empty range of first exposure days: no unit is looked up
        return {
            "window_units_from": through,
            "window_units_through": through - dt.timedelta(days=1),
            "window_facts_from": through,
        }
    last_days = [last for _, last in windows]
    latest = through - dt.timedelta(days=min(last_days))
    if extend:
        earliest = through - dt.timedelta(days=max(last_days) + 1)
        facts_from = earliest + dt.timedelta(days=min(first for first, _ in windows))
    else:
        earliest = facts_from = spec.start
    return {
        "window_units_from": earliest,
        "window_units_through": latest,
        "window_facts_from": facts_from,
    }


def _fill(statement: str, terms: Mapping[str, str]) -> str:
    for marker, text in terms.items():
        statement = statement.replace(f"@{marker}@", text)
    left = re.search(r"@[a-z_]+@", statement)
    if left:
        raise AssertionError(f"marker {left.group()} was left unfilled in: {statement[:80]}")
    return statement


def build_unit_metrics(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> UnitMetricCounts:
    """Per-unit metric values cumulated from first exposure through ``day``."""
    spec = experiment.spec
    terms, term_params = _unit_metric_terms(experiment)
    params = {
        "experiment_id": spec.id,
        "day": day,
        "through": min(day, spec.end),
        "spec_version": experiment.version,
        "from_timestamp": spec.analysis.metric_window_start == "exposure",
        **term_params,
    }
    with transaction(conn):
        incremental = _extends_previous_day(conn, experiment, day)
        if incremental:
            run_sql(conn, "assigned_units_extended", params)
        else:
            _assigned_units(conn, spec.id, spec.start, day)
        _register_metric_windows(conn, experiment.metrics)
        window_params = _window_parameters(experiment, day, extend=incremental)
        for statement in _statements("unit_metrics")[1:]:  # after assigned_units
            _execute(
                conn,
                _fill(statement, terms),
                {**params, **window_params, "extend": incremental},
            )
        crossovers = _crossover_count(conn)
        conn.execute(
            "DELETE FROM unit_metrics_lineage WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        )
        conn.execute(
            "INSERT INTO unit_metrics_lineage (experiment_id, as_of_date, spec_version, "
            "inputs_digest, incremental, crossover_units) VALUES (?, ?, ?, ?, ?, ?)",
            [
                spec.id,
                day,
                experiment.version,
                _inputs_digest(conn, experiment, day),
                incremental,
                crossovers,
            ],
        )
    counted = conn.execute(
        "SELECT variant, count(*), sum(len(y)) FROM unit_metric_rows "
        "WHERE experiment_id = ? AND as_of_date = ? GROUP BY variant",
        [spec.id, day],
    ).fetchall()
    by_variant = {variant: int(units) for variant, units, _ in counted}
    units_by_variant = {v.name: by_variant.get(v.name, 0) for v in spec.variants}
    left_out = conn.execute(
        "SELECT count(DISTINCT p.unit_id), coalesce(sum(p.n), 0) FROM pre_exposure_facts AS p "
        "JOIN assigned_units AS u ON u.unit_id = p.unit_id "
        "AND u.first_exposure_date = p.exposure_date AND NOT u.crossed_over "
        "WHERE p.experiment_id = ? AND p.exposure_date = ?",
        [spec.id, day],
    ).fetchone()
    assert left_out is not None
    return UnitMetricCounts(
        units=sum(units_by_variant.values()),
        units_by_variant=units_by_variant,
        crossover_units=int(crossovers),
        rows=sum(int(values) for _, _, values in counted),
        incremental=incremental,
        pre_exposure_units=int(left_out[0]),
        pre_exposure_events=int(left_out[1]),
    )


# Part of every lineage digest: a release that changes how unit_metrics is computed bumps it, so
# rows written by an older release are never extended.
UNIT_METRICS_LINEAGE_VERSION = "2"  # 2: metrics count from the exposure timestamp


def _inputs_digest(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> str:
    """A digest of the write ids of every input partition unit_metrics(``day``) reads."""
    spec = experiment.spec
    row = conn.execute(
        """
        SELECT coalesce(string_agg(
            table_name || ':' || partition_date || ':' || write_id, ','
            ORDER BY table_name, partition_date), '')
        FROM partition_writes
        WHERE (table_name IN ('exposures', 'pre_period_covariates')
               AND experiment_id = $experiment_id AND partition_date BETWEEN $start AND $day)
           OR (table_name = 'event_facts' AND experiment_id = ''
               AND partition_date BETWEEN $start AND $through)
        """,
        {
            "experiment_id": spec.id,
            "start": spec.start,
            "day": day,
            "through": min(day, spec.end),
        },
    ).fetchone()
    writes = row[0] if row else ""
    return hashlib.sha256(
        f"{UNIT_METRICS_LINEAGE_VERSION}|{experiment.version}|{writes}".encode()
    ).hexdigest()


def _extends_previous_day(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> bool:
    """Whether unit_metrics(``day``) can be built from unit_metrics(``day - 1``) and the day.

    True when the previous day was built under the same spec version from exactly the input
    partitions that exist now (lineage digest), and its crossovers were recorded (a partition
    written before ``unit_crossovers`` existed has its count but not its units, unless there
    were none): its units and crossovers are then every unit exposed before the day.
    """
    spec = experiment.spec
    previous = day - dt.timedelta(days=1)
    if previous < spec.start:
        return False
    row = conn.execute(
        "SELECT inputs_digest, crossover_units FROM unit_metrics_lineage "
        "WHERE experiment_id = ? AND as_of_date = ? AND spec_version = ?",
        [spec.id, previous, experiment.version],
    ).fetchone()
    if row is None or row[0] != _inputs_digest(conn, experiment, previous) or row[1] is None:
        return False
    recorded = _scalar(
        conn,
        "SELECT count(*) FROM unit_crossovers WHERE experiment_id = ? AND as_of_date = ?",
        [spec.id, previous],
    )
    return int(recorded) == int(row[1])


def _assigned_units(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, start: dt.date, day: dt.date
) -> None:
    """The temp table ``assigned_units`` of unit_metrics.sql (its first statement)."""
    _execute(
        conn,
        _statements("unit_metrics")[0],
        {"experiment_id": experiment_id, "start": start, "day": day},
    )


def _segment_terms(segments: Sequence[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The @...@ markers of metric_statistics.sql for these segment names, and their parameters:
    a column ``s_k`` per segment (named by ``$segment_k``), and a grouping set per segment beside
    the one of 'all'."""
    ks = range(1, len(segments) + 1)
    params: dict[str, Any] = {f"segment_{k}": name for k, name in zip(ks, segments, strict=True)}

    def case(then: str) -> str:
        if not segments:
            return "'all'"
        whens = " ".join(f"WHEN grouping(s_{k}) = 0 THEN {then.format(k=k)}" for k in ks)
        return f"CASE {whens} ELSE 'all' END"

    terms = {
        "segment_columns": "".join(f"u.segments[$segment_{k}] AS s_{k}, " for k in ks),
        "segment": case("$segment_{k}"),
        "segment_value": case("coalesce(s_{k}, '(missing)')"),
        "grouping_sets": ", ".join(
            ["(metric, variant)", *(f"(metric, variant, s_{k})" for k in ks)]
        ),
    }
    return terms, params


def build_metric_statistics(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> int:
    """Sufficient statistics per metric × variant × segment value; returns the rows written.

    Moment metrics (mean, proportion, ratio) are summed in one pass, a winsorised metric's
    values capped first (:func:`_winsorize_caps`). A quantile metric takes two queries per day:
    its histogram per variant (the previous day's plus the day's observations, when that day's
    sums are current), then, at each arm's estimated quantile, the per-unit moments of
    (observations below it, observations) that the clustered interval needs. The outlier
    report of the day (``metric_outliers``) is written in the same transaction.
    """
    spec = experiment.spec
    moment_metrics = sorted(n for n, m in experiment.metrics.items() if m.kind.moment_statistics)
    params = {
        "experiment_id": spec.id,
        "day": day,
        "moment_metrics": moment_metrics,
        "spec_version": experiment.version,
    }
    with transaction(conn):
        _winsorize_caps(conn, experiment, day)
        terms, segment_params = _segment_terms(list(spec.segments))
        for statement in _statements("metric_statistics"):
            _execute(conn, _fill(statement, terms), {**params, **segment_params})
        run_sql(
            conn,
            "metric_outliers",
            {
                **params,
                **{
                    f"{quantity}_metrics": sorted(
                        n
                        for n, m in experiment.metrics.items()
                        if quantity in m.kind.outlier_quantities
                    )
                    for quantity in ("value", "numerator", "denominator")
                },
            },
        )
        crossovers = _analysed_units(conn, experiment, day)
        # Day-by-day sums (novelty, quantile histograms) extend the previous day's when it was
        # summed from the inputs as they are now and no unit crossed over since.
        extend = _daily_sums_extend(conn, experiment, day, crossovers)
        conn.execute(
            "DELETE FROM quantile_histograms WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        )
        for name, metric in sorted(experiment.metrics.items()):
            if not metric.kind.moment_statistics:
                _quantile_statistics(conn, experiment, day, name, metric, extend=extend)
        _register_metric_definitions(conn, experiment.metrics)
        digest = _inputs_digest(conn, experiment, day)
        through = min(day, spec.end)
        novelty_params = {
            **params,
            "start": spec.start,
            "through": through,
            "extend": extend,
            "crossover_units": crossovers,
            "inputs_digest": digest,
            "by_period": spec.analysis.novelty_period == "24h",
            "from_timestamp": spec.analysis.metric_window_start == "exposure",
            # a 24-hour period that ends on the day began the day before, after the end of
            # through_before (the previous day, or the end date)
            "through_before": min(day - dt.timedelta(days=1), spec.end),
            "events_from": through - dt.timedelta(days=1) if extend else spec.start,
        }
        clear_sums, calendar_sums, *statistics = _statements("novelty_statistics")
        _execute(conn, clear_sums, novelty_params)
        if novelty_params["by_period"]:
            run_sql(conn, "novelty_sums_24h", novelty_params)
        else:
            _execute(conn, calendar_sums, novelty_params)
        for statement in statistics:
            _execute(conn, statement, novelty_params)
    return int(
        _scalar(
            conn,
            "SELECT count(*) FROM metric_statistics WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        )
    )


def _crossover_count(conn: duckdb.DuckDBPyConnection) -> int:
    """Units of the temp table ``assigned_units`` seen under more than one variant."""
    return int(_scalar(conn, "SELECT count(*) FROM assigned_units WHERE crossed_over"))


def _analysed_units(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> int:
    """The temp table ``assigned_units`` for novelty_statistics.sql; returns the crossover count.

    The units are those of the day's unit_metrics rows (crossovers are already left out there),
    and the crossover count is the one unit_metrics recorded in its lineage: aggregating every
    exposure of the experiment again would cost more than the rest of the step. A partition
    written before the count was recorded falls back to that aggregation.
    """
    spec = experiment.spec
    recorded = _scalar(
        conn,
        "SELECT crossover_units FROM unit_metrics_lineage WHERE experiment_id = ? "
        "AND as_of_date = ? AND spec_version = ?",
        [spec.id, day, experiment.version],
    )
    if recorded is None:
        _assigned_units(conn, spec.id, spec.start, day)
        return _crossover_count(conn)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE assigned_units AS "
        "SELECT unit_id, first_exposure_date, variant, false AS crossed_over "
        "FROM unit_metric_rows WHERE experiment_id = ? AND as_of_date = ?",
        [spec.id, day],
    )
    return int(recorded)


def _daily_sums_extend(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date, crossovers: int
) -> bool:
    """Whether the day-by-day sums of ``day`` (novelty sums, quantile histograms) are those of
    ``day - 1`` plus the day's values.

    True when the previous day's sums were summed from the input partitions as they are now
    (lineage digest) and no unit crossed over on the day (a unit that did would have to leave
    the earlier days' sums: then every day is summed again).
    """
    previous = day - dt.timedelta(days=1)
    if previous < experiment.spec.start:
        return False
    row = conn.execute(
        "SELECT count(*), any_value(inputs_digest), any_value(crossover_units) FROM novelty_sums "
        "WHERE experiment_id = ? AND as_of_date = ?",
        [experiment.spec.id, previous],
    ).fetchone()
    if row is None or row[0] == 0 or row[2] != crossovers:
        return False
    return bool(row[1] == _inputs_digest(conn, experiment, previous))


def _winsorize_caps(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> None:
    """The temp table ``winsorize_caps``: each winsorised metric's cap for the day.

    The cap is the ``winsorize`` quantile of every unit's value, both arms pooled, so it does
    not depend on the treatment; it is recomputed each day from the cumulative values.
    """
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE winsorize_caps (metric VARCHAR, level DOUBLE, cap DOUBLE)"
    )
    for name, metric in sorted(experiment.metrics.items()):
        if metric.winsorize is not None:
            run_sql(
                conn,
                "winsorize_cap",
                {
                    "experiment_id": experiment.spec.id,
                    "day": day,
                    "metric": name,
                    "level": metric.winsorize,
                },
            )


def read_outliers(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date
) -> list[dict[str, Any]]:
    """The ``metric_outliers`` rows of one partition, by metric and quantity."""
    return fetch_dicts(
        conn,
        "SELECT * FROM metric_outliers WHERE experiment_id = ? AND as_of_date = ? "
        "ORDER BY metric, quantity",
        [experiment_id, day],
    )


_MOMENTS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")

# DuckDB memory one unit takes in quantile_threshold_moments.sql's per-unit grouping, with room
# to spare: at 1M units the grouping ran out of memory under a 100 MB limit and passed under
# 200 MB (some 230 bytes a unit), and the rest of the warehouse needs memory too. The same slices
# serve quantile_tail_moments.sql, whose join holds the slice's units with their metric lists.
QUANTILE_BYTES_PER_UNIT = 1024

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGTP]?i?B|bytes)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {
    "bytes": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}  # fmt: skip


def memory_limit_bytes(conn: duckdb.DuckDBPyConnection) -> int | None:
    """DuckDB's memory limit on this connection in bytes, or None if its text (e.g. '953.6 MiB')
    is not a size this function reads."""
    text = str(_scalar(conn, "SELECT current_setting('memory_limit')"))
    match = _SIZE.match(text)
    if match is None:
        return None
    number, unit = match.groups()
    return int(float(number) * _UNIT_BYTES[(unit or "bytes").lower()])


def _unit_chunks(conn: duckdb.DuckDBPyConnection, units: int) -> int:
    """In how many slices the quantile moments (quantile_tail_moments.sql, or its fallback
    quantile_threshold_moments.sql) take ``units`` units, so that each slice's per-unit work
    fits in the memory limit (one slice unless memory is short)."""
    limit = memory_limit_bytes(conn)
    if limit is None:
        return 1
    per_chunk = max(50_000, limit // QUANTILE_BYTES_PER_UNIT)
    return max(1, -(-units // per_chunk))


def _quantile_moments(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    name: str,
    params: Mapping[str, Any],
    histogram_totals: Mapping[str, int],
) -> dict[str, list[int]]:
    """Per variant, the exact integer sums ``_MOMENTS`` of (observations at or below the arm's
    threshold, observations) over its units, at the thresholds in ``quantile_thresholds``.

    From the few observations above the thresholds (:func:`_tail_moments`) when the units'
    observation counts agree with the histogram; else by summing every bucket of every unit
    (:func:`_bucket_moments`), which gives the same sums at a cost that grows with the days.
    """
    arguments = {**params, "nonpositive_bucket": NONPOSITIVE_BUCKET}
    sums = _tail_moments(conn, experiment, day, name, arguments, histogram_totals)
    if sums is not None:
        return sums
    logging.getLogger(__name__).info(
        "%s %s, %s: the units' observation counts are missing or do not add up to the "
        "histogram (event facts written by an earlier release?); summing every unit's buckets "
        "instead",
        experiment.spec.id,
        day,
        name,
    )
    return _bucket_moments(conn, experiment, day, arguments)


def _tail_moments(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    name: str,
    arguments: Mapping[str, Any],
    histogram_totals: Mapping[str, int],
) -> dict[str, list[int]] | None:
    """The quantile moments from the units' observation counts in ``unit_metric_rows`` and the
    observations above the thresholds or at or below 0 (quantile_tail_moments.sql).

    None when they cannot be trusted: the metric has no observation counts for the day, or an
    arm's positive observations do not add up to its histogram total. That happens to event
    facts written by an earlier release, which left values at or below 0 out of quantile_facts.
    """
    spec = experiment.spec
    position = _scalar(
        conn,
        "SELECT list_position(metrics, ?) FROM unit_metric_names "
        "WHERE experiment_id = ? AND as_of_date = ?",
        [name, spec.id, day],
    )
    if position is None:
        return None
    lowest = _scalar(conn, "SELECT min(bucket) FROM quantile_thresholds")
    if lowest is None:
        return {}
    base, tail = _statements("quantile_tail_moments")
    arguments = {**arguments, "position": position, "lowest_threshold": lowest}
    rows = _execute(conn, base, arguments).fetchall()
    sums: dict[str, list[int]] = {}
    for variant, units, sum_n, sum_n2 in rows:
        n1, n2 = int(sum_n or 0), int(sum_n2 or 0)
        sums[variant] = [int(units), n1, n2, n1, n2, n2]
    chunks = _unit_chunks(conn, sum(int(units) for _, units, _, _ in rows))
    for chunk in range(chunks):
        cursor = _execute(conn, tail, {**arguments, "chunks": chunks, "chunk": chunk})
        # the differences that turn sums of N and N^2 into those of B, B^2, P, P^2 and P*B
        for variant, d_x, d_x2, d_y, d_y2, d_xy in cursor.fetchall():
            totals = sums[variant]
            for i, d in zip((3, 4, 1, 2, 5), (d_x, d_x2, d_y, d_y2, d_xy), strict=True):
                totals[i] += int(d)
    if any(totals[3] != histogram_totals.get(v, 0) for v, totals in sums.items()):
        return None
    return sums


def _bucket_moments(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    arguments: Mapping[str, Any],
) -> dict[str, list[int]]:
    """The quantile moments by summing every bucket of every unit since its first exposure
    (quantile_threshold_moments.sql), in slices when memory is short."""
    spec = experiment.spec
    units = _scalar(
        conn,
        "SELECT count(*) FROM unit_metric_rows WHERE experiment_id = ? AND as_of_date = ?",
        [spec.id, day],
    )
    chunks = _unit_chunks(conn, int(units))
    sums: dict[str, list[int]] = {}
    for chunk in range(chunks):
        for m in query(
            conn, "quantile_threshold_moments", {**arguments, "chunks": chunks, "chunk": chunk}
        ):
            totals = sums.setdefault(m["variant"], [0] * len(_MOMENTS))
            for i, key in enumerate(_MOMENTS):
                totals[i] += int(m[key])
    return sums


def _quantile_statistics(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    name: str,
    metric: MetricSpec,
    *,
    extend: bool,
) -> None:
    spec = experiment.spec
    params = {
        "experiment_id": spec.id,
        "day": day,
        "through": min(day, spec.end),
        "metric": name,
        "event": metric.event,
    }
    run_sql(
        conn,
        "quantile_histogram",
        {
            **params,
            "log_gamma": LOG_GAMMA,
            "nonpositive_bucket": NONPOSITIVE_BUCKET,
            "extend": extend,
        },
    )
    histogram = fetch_dicts(
        conn,
        "SELECT variant, bucket, value, n FROM quantile_histograms "
        "WHERE experiment_id = ? AND as_of_date = ? AND metric = ? ORDER BY variant, bucket",
        [spec.id, day, name],
    )
    thresholds: list[tuple[str, int]] = []
    threshold_of: dict[str, float] = {}
    for variant in spec.weights:
        rows = [r for r in histogram if r["variant"] == variant]
        if not rows:
            continue
        values = [float(r["value"]) for r in rows]
        counts = [int(r["n"]) for r in rows]
        estimate = quantile_from_histogram(values, counts, float(metric.level or 0.5))
        thresholds.append((variant, int(rows[values.index(estimate)]["bucket"])))
        threshold_of[variant] = estimate
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE quantile_thresholds (variant VARCHAR, bucket INTEGER)"
    )
    if thresholds:
        conn.executemany("INSERT INTO quantile_thresholds VALUES (?, ?)", thresholds)
    observations: dict[str, int] = {}
    for r in histogram:
        observations[r["variant"]] = observations.get(r["variant"], 0) + int(r["n"])
    sums = _quantile_moments(conn, experiment, day, name, params, observations)
    moments = [
        {"variant": variant, **dict(zip(_MOMENTS, totals, strict=True))}
        for variant, totals in sorted(sums.items())
        # An arm without one observation of the event has no quantile: no row for it, and
        # results say the metric is not estimable (a header-only file, a day without it).
        if variant in threshold_of
    ]
    if not moments:
        return
    conn.executemany(
        "INSERT INTO metric_statistics (experiment_id, as_of_date, metric, variant, segment, "
        "segment_value, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy, threshold, spec_version) "
        "VALUES (?, ?, ?, ?, 'all', 'all', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                spec.id,
                day,
                name,
                m["variant"],
                int(m["n"]),
                float(m["sum_y"]),
                float(m["sum_y2"]),
                float(m["sum_x"]),
                float(m["sum_x2"]),
                float(m["sum_xy"]),
                threshold_of[m["variant"]],
                experiment.version,
            )
            for m in moments
        ],
    )


# ── reading small tables back ────────────────────────────────────────────────────────────────


def read_latest_decisions(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per experiment with a decision: the latest one (``as_of_date``, ``decision``, ``variant``,
    ``reasons``) and ``days_decided`` (``sql/latest_decisions.sql``)."""
    return query(conn, "latest_decisions", {})


def read_partition(
    conn: duckdb.DuckDBPyConnection, table: str, experiment_id: str, day: dt.date
) -> list[dict[str, Any]]:
    """All rows of a small experiment × day table (statistics, histograms, results, decision)."""
    if table not in SMALL_TABLES:
        raise ValueError(
            f"{table} is not a small per-partition table (exp_dagster/warehouse/tables.py)"
        )
    return fetch_dicts(
        conn,
        f"SELECT * FROM {table} WHERE experiment_id = ? AND as_of_date = ? ORDER BY ALL",
        [experiment_id, day],
    )


def read_history(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The overall (``segment = 'all'``) statistics and the histograms of the days before ``day``.

    Sequential tests treat every earlier day as a look; these rows are a few per metric, variant
    and day, so reading the whole history costs nothing next to the day's own work.
    """
    statistics = fetch_dicts(
        conn,
        "SELECT * FROM metric_statistics WHERE experiment_id = ? AND as_of_date < ? "
        "AND segment = 'all' ORDER BY ALL",
        [experiment_id, day],
    )
    histograms = fetch_dicts(
        conn,
        "SELECT * FROM quantile_histograms WHERE experiment_id = ? AND as_of_date < ? ORDER BY ALL",
        [experiment_id, day],
    )
    return statistics, histograms


def read_event_names(
    conn: duckdb.DuckDBPyConnection, day: dt.date
) -> tuple[set[str], dict[str, int]]:
    """The event names of the validated event rows through ``day``, and the quarantined rows by
    event name: what a metric whose event has no row is checked against (a typo in the metric
    catalog, or every row quarantined). A scan of ``event_facts``' event column, so it runs only
    when some metric lacks its events."""
    logged = {
        str(name)
        for (name,) in conn.execute(
            "SELECT DISTINCT event FROM event_facts WHERE event_date <= ?", [day]
        ).fetchall()
    }
    quarantined = {
        str(name): int(count)
        for name, count in conn.execute(
            "SELECT event, count(*) FROM event_quarantine "
            "WHERE event_date <= ? AND event IS NOT NULL GROUP BY event",
            [day],
        ).fetchall()
    }
    return logged, quarantined


def _check_row_keys(
    table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], where: str
) -> None:
    """Raise ``ValueError`` unless every row's keys are exactly ``columns``, naming the first
    row that differs, its extra keys (values the write would drop) and its missing keys."""
    expected = set(columns)
    for index, row in enumerate(rows):
        if row.keys() == expected:
            continue
        extra, missing = sorted(set(row) - expected), sorted(expected - set(row))
        problems = [f"keys that are not columns of {table} ({', '.join(extra)})"] if extra else []
        problems += [f"no value for the columns {', '.join(missing)}"] if missing else []
        raise ValueError(
            f"Row {index} written to {table} for {where} has {' and '.join(problems)}; give "
            f"each row exactly the columns of {table} in schema.sql, None for a NULL."
        )


def replace_partition(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    experiment_id: str,
    day: dt.date,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Replace the rows of one partition of a table written from Python, in one transaction.

    Each row must have exactly the table's columns as keys (a NULL is an explicit ``None``):
    a key the table lacks would be dropped and a column the row lacks written NULL, both
    silently, so either is a programming error and nothing is written.
    """
    if table not in WRITTEN_FROM_PYTHON:
        raise ValueError(f"{table} is not written from Python")
    columns = [r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()]
    _check_row_keys(table, columns, rows, f"{experiment_id} {day}")
    import pandas as pd  # here: importing the code location stays light

    frame = pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns)
    with transaction(conn):
        conn.execute(
            f"DELETE FROM {table} WHERE experiment_id = ? AND as_of_date = ?", [experiment_id, day]
        )
        if rows:
            conn.register("partition_rows", frame)
            try:
                conn.execute(f"INSERT INTO {table} SELECT * FROM partition_rows")
            finally:
                conn.unregister("partition_rows")
