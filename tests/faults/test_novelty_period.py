"""``analysis.novelty_period: 24h``: the novelty trend by 24-hour periods since exposure.

Period k of a unit holds its events in ``[anchor + k × 24 h, anchor + (k + 1) × 24 h)`` (anchor:
its first exposure timestamp, or that day's midnight with ``metric_window_start: exposure_day``),
and the unit counts in period k once the period has ended by the end of the analysis day (or the
end date). On the hand-made logs of the metric-window tests (exposures at random times, events on
every period boundary to the microsecond), ``novelty_statistics`` equals a pandas computation of
that rule, day by day (incremental) and from every day; anchored at midnight, the periods are the
calendar days, so the two options must then give the same rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.warehouse.landing import LogSource
from exp_dagster.warehouse.queries import (
    build_event_facts,
    build_exposures,
    build_metric_statistics,
    build_pre_period_covariates,
    build_unit_metrics,
    ensure_schema,
)
from tests.faults.corpus import experiment
from tests.faults.test_metric_window_days import (
    AFTER_END,
    DAY,
    END,
    EVENT_DAYS,
    EXPOSURE_DAYS,
    _land,
    _logs,
)

METRICS = {"primary": "watch_time", "secondary": ["conversion", "ctr", "impressions"]}
# metric: (kind, event, denominator event, aggregate)
DEFINITIONS = {
    "watch_time": ("mean", "watch_seconds", None, "sum"),
    "conversion": ("proportion", "purchase", None, "sum"),
    "ctr": ("ratio", "click", "impression", "sum"),
    "impressions": ("mean", "impression", None, "count"),
}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("novelty_logs")
    exposures, events = _logs()
    _land(root, exposures, events)
    return exposures, events, root


def _experiment(**analysis: str) -> ResolvedExperiment:
    return experiment(
        metrics=METRICS, pre_period_days=1, end=END.isoformat(), analysis=dict(analysis)
    )


def _build(
    resolved: ResolvedExperiment, root: Path, days: list[dt.date]
) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    ensure_schema(conn)
    for day in EVENT_DAYS:
        build_event_facts(conn, LogSource("events", root / "events"), day, ["latency_ms"])
    for day in EXPOSURE_DAYS:
        build_exposures(conn, resolved, LogSource("exposures", root / "exposures"), day)
        build_pre_period_covariates(conn, resolved, day)
    for day in days:
        build_unit_metrics(conn, resolved, day)
        build_metric_statistics(conn, resolved, day)
    return conn


def _expected(
    exposures: pd.DataFrame, events: pd.DataFrame, as_of: dt.date, *, from_timestamp: bool = True
) -> pd.DataFrame:
    """novelty_statistics by 24-hour period, in pandas."""
    first = (
        exposures[exposures["exposed_at"].dt.date <= as_of]
        .groupby("unit_id")
        .agg(first_at=("exposed_at", "min"), variant=("variant", "first"))
    )
    anchor = first["first_at"] if from_timestamp else first["first_at"].dt.normalize()
    horizon = pd.Timestamp(min(as_of, END) + dt.timedelta(days=1), tz="UTC")
    ended = ((horizon - anchor) // DAY).astype(int)  # whole periods each unit has had
    frame = events.join(anchor.rename("anchor"), on="unit_id", how="inner")
    frame = frame[frame["event_time"] >= frame["anchor"]].copy()
    frame["k"] = ((frame["event_time"] - frame["anchor"]) // DAY).astype(int)
    frame = frame[frame["k"] < frame["unit_id"].map(ended)]
    frame["variant"] = frame["unit_id"].map(first["variant"])
    rows = []
    for metric, (kind, event, denominator, aggregate) in DEFINITIONS.items():
        keys = [frame["variant"], frame["unit_id"], frame["k"]]
        is_event = frame["event"] == event
        counts = is_event.groupby(keys).sum().astype(float)
        if kind == "proportion":
            y_all = (counts > 0).astype(float)
        elif aggregate == "count":
            y_all = counts
        else:
            y_all = frame["value"].where(is_event, 0.0).groupby(keys).sum()
        x_all = (
            frame["value"].where(frame["event"] == denominator, 0.0).groupby(keys).sum()
            if denominator
            else pd.Series(1.0, index=y_all.index)
        )
        per_unit = pd.DataFrame({"y": y_all, "x": x_all})
        # a unit with only other events in the period has no row in the warehouse's sums
        touched = frame["event"].isin([event, denominator]).groupby(keys).any()
        per_unit = per_unit[touched]
        for variant in sorted(first["variant"].unique()):
            for k in range(int(ended.max()) if len(ended) else 0):
                n = int(((ended > k) & (first["variant"] == variant)).sum())
                if n == 0:
                    continue
                units = per_unit.loc[
                    (per_unit.index.get_level_values("variant") == variant)
                    & (per_unit.index.get_level_values("k") == k)
                ]
                y, x = units["y"], units["x"]
                sum_x, sum_x2, sum_xy = (
                    (x.sum(), (x * x).sum(), (x * y).sum())
                    if kind == "ratio"
                    else (float(n), float(n), y.sum())
                )
                rows.append((metric, variant, k, n, y.sum(), (y * y).sum(), sum_x, sum_x2, sum_xy))
    columns = ["metric", "variant", "day_index", "n", "sum_y", "sum_y2", "sum_x", "sum_x2"]
    return pd.DataFrame(rows, columns=[*columns, "sum_xy"]).sort_values(columns[:3])


def _actual(conn: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    return conn.execute(
        "SELECT metric, variant, day_index, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy "
        "FROM novelty_statistics WHERE as_of_date = ? ORDER BY metric, variant, day_index",
        [as_of],
    ).fetchdf()


def _compare(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.reset_index(drop=True)
    keys = ["metric", "variant", "day_index", "n"]
    assert actual[keys].astype(str).equals(expected[keys].astype(str))
    for column in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"):
        assert np.allclose(actual[column], expected[column], rtol=1e-12, atol=1e-6), column


def test_novelty_by_24_hour_periods_equals_the_rule_day_by_day_and_from_scratch(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    resolved = _experiment(novelty_period="24h")
    assert resolved.version != _experiment().version
    days = [*EXPOSURE_DAYS, AFTER_END]
    incremental = _build(resolved, root, days)
    for as_of in days:
        _compare(_actual(incremental, as_of), _expected(exposures, events, as_of))
    periods = _actual(incremental, END)
    calendar = _actual(_build(_experiment(), root, [END]), END)
    assert not periods.equals(calendar)  # exposures mid-day: the periods are not the days
    # from every day at once: the same rows, to the bit
    scratch = _build(resolved, root, [AFTER_END])
    assert _actual(scratch, AFTER_END).equals(_actual(incremental, AFTER_END))


def test_periods_anchored_at_midnight_are_the_calendar_days(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    periods = _experiment(novelty_period="24h", metric_window_start="exposure_day")
    calendar = _experiment(metric_window_start="exposure_day")
    by_period = _build(periods, root, EXPOSURE_DAYS)
    by_day = _build(calendar, root, EXPOSURE_DAYS)
    for as_of in EXPOSURE_DAYS:
        expected = _expected(exposures, events, as_of, from_timestamp=False)
        _compare(_actual(by_period, as_of), expected)
        _compare(_actual(by_day, as_of), expected)
