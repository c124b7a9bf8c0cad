"""Per-unit state: ``unit_metrics`` (each unit's metric values cumulated from its exposure), the
crossovers left out of it, and the lineage digests that let a day extend the previous one
(docs/architecture.md, decision 3).

The per-unit terms of each metric are its kind's (``MetricKind.unit_terms`` in
:mod:`exp_dagster.metric_kinds`); this module renders them in SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from exp_dagster.metric_kinds import Reduction, UnitTerms
from exp_dagster.spec import MetricSpec, ResolvedExperiment
from exp_dagster.warehouse.statements import (
    execute,
    fill_markers,
    run_sql,
    scalar,
    sql_statements,
    transaction,
)


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
        units_by_phase: with a ramp, the units by the start date of the ramp phase of their
            first exposure (ISO text), then by variant (every variant, 0 when none; the input of
            the per-phase sample-ratio tests); empty without a ramp.
    """

    units: int
    units_by_variant: dict[str, int]
    crossover_units: int
    rows: int
    incremental: bool = False
    pre_exposure_units: int = 0
    pre_exposure_events: int = 0
    units_by_phase: dict[str, dict[str, int]] = field(default_factory=dict)


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


def checked_unit_terms(metric: MetricSpec) -> UnitTerms:
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
    unit_terms = {name: checked_unit_terms(m) for name, m in metrics.items()}
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
            register_assigned_units(conn, spec.id, spec.start, day)
        _register_metric_windows(conn, experiment.metrics)
        window_params = _window_parameters(experiment, day, extend=incremental)
        for statement in sql_statements("unit_metrics")[1:]:  # after assigned_units
            execute(
                conn,
                fill_markers(statement, terms),
                {**params, **window_params, "extend": incremental},
            )
        crossovers = crossover_count(conn)
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
                inputs_digest(conn, experiment, day),
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
    units_by_phase: dict[str, dict[str, int]] = {}
    if spec.allocation_segment is not None:
        # a ramp: every phase, empty or not; a bandit: the days with units (each its own split)
        units_by_phase = {
            phase.start.isoformat(): dict.fromkeys(spec.weights, 0) for phase in spec.ramp or ()
        }
        for first_day, variant, units in conn.execute(
            "SELECT first_exposure_date, variant, count(*) FROM unit_metric_rows "
            "WHERE experiment_id = ? AND as_of_date = ? GROUP BY ALL",
            [spec.id, day],
        ).fetchall():
            if spec.ramp is not None:
                period = spec.ramp[spec.phase_index(first_day) or 0].start.isoformat()
            else:
                period = first_day.isoformat()
            cell = units_by_phase.setdefault(period, dict.fromkeys(spec.weights, 0))
            cell[variant] += int(units)
    return UnitMetricCounts(
        units=sum(units_by_variant.values()),
        units_by_variant=units_by_variant,
        crossover_units=int(crossovers),
        rows=sum(int(values) for _, _, values in counted),
        incremental=incremental,
        pre_exposure_units=int(left_out[0]),
        pre_exposure_events=int(left_out[1]),
        units_by_phase=units_by_phase,
    )


# Part of every lineage digest: a release that changes how unit_metrics is computed bumps it, so
# rows written by an older release are never extended.
UNIT_METRICS_LINEAGE_VERSION = "2"  # 2: metrics count from the exposure timestamp


def inputs_digest(
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
    if row is None or row[0] != inputs_digest(conn, experiment, previous) or row[1] is None:
        return False
    recorded = scalar(
        conn,
        "SELECT count(*) FROM unit_crossovers WHERE experiment_id = ? AND as_of_date = ?",
        [spec.id, previous],
    )
    return int(recorded) == int(row[1])


def register_assigned_units(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, start: dt.date, day: dt.date
) -> None:
    """The temp table ``assigned_units`` of unit_metrics.sql (its first statement)."""
    execute(
        conn,
        sql_statements("unit_metrics")[0],
        {"experiment_id": experiment_id, "start": start, "day": day},
    )


def crossover_count(conn: duckdb.DuckDBPyConnection) -> int:
    """Units of the temp table ``assigned_units`` seen under more than one variant."""
    return int(scalar(conn, "SELECT count(*) FROM assigned_units WHERE crossed_over"))
