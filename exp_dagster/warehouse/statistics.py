"""Sufficient statistics per metric, variant and segment (``metric_statistics``), with the day's
novelty sums, outlier report and winsorisation caps (docs/architecture.md, decision 1).

Quantile metrics get theirs from :mod:`.quantiles`; the units are those of the day's
``unit_metrics`` (:mod:`.unit_state`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from exp_dagster.metric_kinds import launch_period_unsupported
from exp_dagster.spec import (
    PHASE_CROSS_SEPARATOR,
    RAMP_PHASE_SEGMENT,
    MetricSpec,
    ResolvedExperiment,
)
from exp_dagster.warehouse.cross_statistics import build_cross_statistics
from exp_dagster.warehouse.did_panel import build_did_cluster_days
from exp_dagster.warehouse.quantiles import quantile_statistics
from exp_dagster.warehouse.statements import (
    execute,
    fetch_dicts,
    fill_markers,
    run_sql,
    scalar,
    sql_statements,
    transaction,
)
from exp_dagster.warehouse.unit_state import (
    checked_unit_terms,
    crossover_count,
    inputs_digest,
    register_assigned_units,
)


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
            terms = checked_unit_terms(m)
            rows.append((name, terms.reduction, terms.event, terms.denominator))
    if rows:
        conn.executemany("INSERT INTO metric_definitions VALUES (?, ?, ?, ?)", rows)


def _segment_terms(
    segments: Sequence[str],
    ramp_starts: Sequence[dt.date] = (),
    derived: str = RAMP_PHASE_SEGMENT,
) -> tuple[dict[str, str], dict[str, Any]]:
    """The @...@ markers of metric_statistics.sql for these segment names, and their parameters:
    a column ``s_k`` per segment (named by ``$segment_k``), and a grouping set per segment beside
    the one of 'all'. With allocation periods (``ramp_starts``, their first days: a ramp's phases,
    or a bandit's days), one more segment named ``derived`` (``ramp_phase``, ``allocation_day``):
    the first day of the period in force on each unit's first exposure day, and each spec segment
    crossed with it (``<segment>|<derived>``, values ``<value>|<period's first day>``)."""
    ks = range(1, len(segments) + 1)
    params: dict[str, Any] = {f"segment_{k}": name for k, name in zip(ks, segments, strict=True)}
    columns = "".join(f"u.segments[$segment_{k}] AS s_{k}, " for k in ks)
    if ramp_starts:
        k = len(segments) + 1
        ks = range(1, k + 1)
        params[f"segment_{k}"] = derived
        params["ramp_phase_starts"] = list(ramp_starts)
        columns += (
            "CAST(list_max(list_filter($ramp_phase_starts, "
            f"lambda phase_start: phase_start <= u.first_exposure_date)) AS VARCHAR) AS s_{k}, "
        )

    # With allocation periods, each spec segment crossed with the period too
    # (spec.phase_cross_segment): the cells a segment row's period-stratified effect combines.
    phase = len(segments) + 1
    crossed = range(1, len(segments) + 1) if ramp_starts else range(0)

    def case(then: str, cross: str) -> str:
        if not ks:
            return "'all'"
        whens = " ".join(
            [
                *(
                    f"WHEN grouping(s_{k}) = 0 AND grouping(s_{phase}) = 0 THEN "
                    f"{cross.format(k=k, phase=phase)}"
                    for k in crossed
                ),
                *(f"WHEN grouping(s_{k}) = 0 THEN {then.format(k=k)}" for k in ks),
            ]
        )
        return f"CASE {whens} ELSE 'all' END"

    terms = {
        "segment_columns": columns,
        "segment": case(
            "$segment_{k}", f"$segment_{{k}} || '{PHASE_CROSS_SEPARATOR}' || $segment_{{phase}}"
        ),
        "segment_value": case(
            "coalesce(s_{k}, '(missing)')",
            f"coalesce(s_{{k}}, '(missing)') || '{PHASE_CROSS_SEPARATOR}' || s_{{phase}}",
        ),
        "grouping_sets": ", ".join(
            [
                "(metric, variant)",
                *(f"(metric, variant, s_{k})" for k in ks),
                *(f"(metric, variant, s_{k}, s_{phase})" for k in crossed),
            ]
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
        terms, segment_params = _segment_terms(
            list(spec.segments),
            spec.allocation_starts,
            spec.allocation_segment or RAMP_PHASE_SEGMENT,
        )
        for statement in sql_statements("metric_statistics"):
            execute(conn, fill_markers(statement, terms), {**params, **segment_params})
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
        build_cross_statistics(conn, experiment, day)
        build_did_cluster_days(conn, experiment, day)
        _launch_period_statistics(conn, experiment, day)
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
                quantile_statistics(conn, experiment, day, name, metric, extend=extend)
        _register_metric_definitions(conn, experiment.metrics)
        digest = inputs_digest(conn, experiment, day)
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
        clear_sums, calendar_days, add_sums, *statistics = sql_statements("novelty_statistics")
        execute(conn, clear_sums, novelty_params)
        if novelty_params["by_period"]:
            run_sql(conn, "novelty_sums_24h", novelty_params)
        else:
            execute(conn, calendar_days, novelty_params)
        execute(conn, add_sums, novelty_params)
        for statement in statistics:
            execute(conn, statement, novelty_params)
    return int(
        scalar(
            conn,
            "SELECT count(*) FROM metric_statistics WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        )
    )


def launch_period_bases(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> dict[str, dt.date | str]:
    """A holdout's launches up to ``day`` (inside the window) by name: the base day its period's
    values subtract (the day before the launch, or None when the launch is on the start date),
    or why the period cannot be computed (a sentence: the base day's ``unit_metrics`` is missing
    or was computed from other inputs or another spec version)."""
    spec = experiment.spec
    if spec.holdout is None:
        return {}
    bases: dict[str, dt.date | str] = {}
    for launch in spec.holdout.launches:
        if launch.date > min(day, spec.end):
            continue
        base = launch.date - dt.timedelta(days=1)
        if base < spec.start:
            bases[launch.name] = base
            continue
        stored = scalar(
            conn,
            "SELECT inputs_digest FROM unit_metrics_lineage WHERE experiment_id = ? "
            "AND as_of_date = ?",
            [spec.id, base],
        )
        if stored is None:
            bases[launch.name] = (
                f"unit_metrics of {base} (the day before the launch) is not materialised; "
                f"run that day first"
            )
        elif stored != inputs_digest(conn, experiment, base):
            bases[launch.name] = (
                f"unit_metrics of {base} (the day before the launch) was computed from other "
                f"inputs or another spec version; re-run that day"
            )
        else:
            bases[launch.name] = base
    return bases


def _launch_period_statistics(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> None:
    """With a holdout, the statistics of each launch's period so far (launch_period_statistics
    .sql): one pass over the day's units and the base day's per launch, so a day of a long holdout
    costs what any day costs. Metrics whose value does not add up over days are left out
    (:func:`~exp_dagster.metric_kinds.launch_period_unsupported`); results say why."""
    spec = experiment.spec
    metrics = sorted(
        name
        for name, metric in experiment.metrics.items()
        if metric.kind.moment_statistics and launch_period_unsupported(metric) is None
    )
    ratios = sorted(n for n in metrics if checked_unit_terms(experiment.metrics[n]).denominator)
    if not metrics:
        return
    for launch, base in launch_period_bases(conn, experiment, day).items():
        if isinstance(base, str):
            continue
        run_sql(
            conn,
            "launch_period_statistics",
            {
                "experiment_id": spec.id,
                "day": day,
                "base_day": base,
                "launch": launch,
                "period_metrics": metrics,
                "ratio_metrics": ratios,
                "spec_version": experiment.version,
            },
        )


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
    recorded = scalar(
        conn,
        "SELECT crossover_units FROM unit_metrics_lineage WHERE experiment_id = ? "
        "AND as_of_date = ? AND spec_version = ?",
        [spec.id, day, experiment.version],
    )
    if recorded is None:
        register_assigned_units(conn, spec.id, spec.start, day)
        return crossover_count(conn)
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
    return bool(row[1] == inputs_digest(conn, experiment, previous))


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
