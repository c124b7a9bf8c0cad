"""Quantile metrics: the log-bucketed histograms of their events' values, and the per-unit
moments at each arm's estimated quantile that the clustered interval needs, in slices when
DuckDB's memory is short."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import duckdb

from exp_dagster.spec import MetricSpec, ResolvedExperiment
from exp_dagster.stats import quantile_from_histogram
from exp_dagster.warehouse.statements import (
    execute,
    fetch_dicts,
    query,
    run_sql,
    scalar,
    sql_statements,
)

# Quantile histograms use buckets of relative width 0.1 %: a value is represented by
# (1 + QUANTILE_GAMMA) ** round(ln(value) / ln(1 + QUANTILE_GAMMA)), within 0.05 % of it.
QUANTILE_GAMMA = 0.001

LOG_GAMMA = math.log1p(QUANTILE_GAMMA)

# The bucket of a quantile event's values at or below 0 (no log bucket holds them). Histograms
# leave them out, as before: a quantile metric is estimated from the positive values. They are
# kept in quantile_facts so that a unit's positive observations are its observation count in
# unit_metrics less these, without summing every bucket of every unit (_quantile_moments).
NONPOSITIVE_BUCKET = -(2**31)

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
    text = str(scalar(conn, "SELECT current_setting('memory_limit')"))
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
    position = scalar(
        conn,
        "SELECT list_position(metrics, ?) FROM unit_metric_names "
        "WHERE experiment_id = ? AND as_of_date = ?",
        [name, spec.id, day],
    )
    if position is None:
        return None
    lowest = scalar(conn, "SELECT min(bucket) FROM quantile_thresholds")
    if lowest is None:
        return {}
    base, tail = sql_statements("quantile_tail_moments")
    arguments = {**arguments, "position": position, "lowest_threshold": lowest}
    rows = execute(conn, base, arguments).fetchall()
    sums: dict[str, list[int]] = {}
    for variant, units, sum_n, sum_n2 in rows:
        n1, n2 = int(sum_n or 0), int(sum_n2 or 0)
        sums[variant] = [int(units), n1, n2, n1, n2, n2]
    chunks = _unit_chunks(conn, sum(int(units) for _, units, _, _ in rows))
    for chunk in range(chunks):
        cursor = execute(conn, tail, {**arguments, "chunks": chunks, "chunk": chunk})
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
    units = scalar(
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


def quantile_statistics(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    name: str,
    metric: MetricSpec,
    *,
    extend: bool,
) -> None:
    """A quantile metric's histograms (``quantile_histograms``) and its ``metric_statistics``
    rows: of every unit (segment 'all'), and with allocation periods (a ramp's phases, a bandit's
    days) of the units of each period of first exposure (segment ``ramp_phase`` or
    ``allocation_day``, each period's own histogram and threshold), from which the overall effect
    is stratified by period (docs/statistics.md, "Ramped rollouts", "Bandit allocation"). Periods
    that start after the day have no units yet and are skipped."""
    spec = experiment.spec
    groups: list[tuple[str | None, dt.date, dt.date]] = [(None, dt.date.min, dt.date.max)]
    starts = spec.allocation_starts
    untils = [s - dt.timedelta(days=1) for s in starts[1:]] + [dt.date.max] if starts else []
    groups += [
        (start.isoformat(), start, until)
        for start, until in zip(starts, untils, strict=True)
        if start <= min(day, spec.end)
    ]
    for period, first_from, first_until in groups:
        _quantile_group(
            conn,
            experiment,
            day,
            name,
            metric,
            extend=extend,
            period=period,
            first_from=first_from,
            first_until=first_until,
        )


def _quantile_group(
    conn: duckdb.DuckDBPyConnection,
    experiment: ResolvedExperiment,
    day: dt.date,
    name: str,
    metric: MetricSpec,
    *,
    extend: bool,
    period: str | None,
    first_from: dt.date,
    first_until: dt.date,
) -> None:
    """The histograms and statistics rows of the units first exposed from ``first_from`` to
    ``first_until``: all of them (``period`` None), or one allocation period's (``period``, its
    first day)."""
    spec = experiment.spec
    params = {
        "experiment_id": spec.id,
        "day": day,
        "through": min(day, spec.end),
        "metric": name,
        "event": metric.event,
        "first_from": first_from,
        "first_until": first_until,
    }
    run_sql(
        conn,
        "quantile_histogram",
        {
            **params,
            "log_gamma": LOG_GAMMA,
            "nonpositive_bucket": NONPOSITIVE_BUCKET,
            "extend": extend,
            "allocation_period": period,
        },
    )
    histogram = fetch_dicts(
        conn,
        "SELECT variant, bucket, value, n FROM quantile_histograms "
        "WHERE experiment_id = ? AND as_of_date = ? AND metric = ? "
        "AND allocation_period IS NOT DISTINCT FROM CAST(? AS VARCHAR) ORDER BY variant, bucket",
        [spec.id, day, name, period],
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
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                spec.id,
                day,
                name,
                m["variant"],
                "all" if period is None else spec.allocation_segment,
                period or "all",
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
