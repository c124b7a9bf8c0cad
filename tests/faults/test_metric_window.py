"""Metrics count from each unit's exposure timestamp: its events earlier on its first exposure day
count in neither its metrics nor its covariate (analysis.metric_window_start: exposure, the
default); ``exposure_day`` counts from that day's midnight, as releases before the option did.

Hand-made logs whose units have events before and after their exposure on the exposure day (and
a second exposure on a later day, before which events do count): every metric type's unit values,
the quantile histogram and moments, and the novelty sums equal a pandas computation of the rule,
built day by day (incremental) or from every day."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from exp_dagster.assignment import assign_variant
from exp_dagster.cli import main
from exp_dagster.spec import ResolvedExperiment
from exp_dagster.warehouse import quantiles, queries
from exp_dagster.warehouse.landing import LogSource
from exp_dagster.warehouse.queries import (
    LOG_GAMMA,
    build_event_facts,
    build_exposures,
    build_metric_statistics,
    build_pre_period_covariates,
    build_unit_metrics,
    ensure_schema,
)
from tests.faults.corpus import (
    EXPERIMENT_ID,
    SALT,
    START,
    WEIGHTS,
    experiment,
    hive,
    unit_ids,
    write_catalog,
)

DAYS = [START + dt.timedelta(days=d) for d in range(3)]
PRE_DAY = START - dt.timedelta(days=1)
METRICS = {
    "primary": "watch_time",
    "secondary": ["conversion", "ctr", "impressions"],
    "guardrails": [{"metric": "latency_p95", "margin": 0.05}],
}
EVENT_VALUES = {  # event: (rows per unit-day, value drawer)
    "watch_seconds": (3, lambda rng: round(float(rng.exponential(60)), 3)),
    "impression": (4, lambda rng: 1.0),
    "click": (1, lambda rng: 1.0),
    "purchase": (1, lambda rng: round(float(rng.exponential(20)), 2)),
    "latency_ms": (3, lambda rng: round(float(rng.gamma(4, 20)), 3)),
}


def _at(day: dt.date, seconds: float) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat(), tz="UTC") + pd.Timedelta(seconds=seconds)


def _logs(n_units: int = 60, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures and events: half the units first exposed on DAYS[0], half on DAYS[1], a third
    of the first half exposed again on DAYS[1]; events at random times of every day from the
    pre-period day on, so many fall before the unit's exposure on its exposure day, one exactly
    at it (which counts)."""
    rng = np.random.default_rng(seed)
    units = unit_ids(n_units)
    exposure_rows: list[dict[str, Any]] = []
    for i, unit in enumerate(units):
        days = [DAYS[0]] if i < n_units // 2 else [DAYS[1]]
        if i < n_units // 6:
            days.append(DAYS[1])
        for day in days:
            exposure_rows.append(
                {
                    "experiment_id": EXPERIMENT_ID,
                    "unit_id": unit,
                    "variant": assign_variant(SALT, unit, WEIGHTS),
                    "exposed_at": _at(day, float(rng.uniform(3, 20)) * 3600),
                    "platform": "ios" if i % 3 else "web",
                }
            )
    exposures = pd.DataFrame(exposure_rows)
    first = exposures.groupby("unit_id")["exposed_at"].min()
    event_rows: list[dict[str, Any]] = []
    for unit in units:
        for day in [PRE_DAY, *DAYS]:
            for event, (rows, draw) in EVENT_VALUES.items():
                for _ in range(int(rng.integers(0, rows + 1))):
                    when = _at(day, float(rng.uniform(0, 86_399)))
                    event_rows.append(
                        {"unit_id": unit, "event_time": when, "event": event, "value": draw(rng)}
                    )
        # an impression at the very moment of first exposure: counted
        event_rows.append(
            {"unit_id": unit, "event_time": first[unit], "event": "impression", "value": 1.0}
        )
        # a second before it, a request far slower than any other (beyond every quantile's
        # threshold) and one logged as 0 ms (no log bucket): neither counts
        before = first[unit] - pd.Timedelta(seconds=1)
        for value in (5000.0, 0.0):
            event_rows.append(
                {"unit_id": unit, "event_time": before, "event": "latency_ms", "value": value}
            )
    events = pd.DataFrame(event_rows)
    return exposures, events


def _iso(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return frame


def _land(root: Path, exposures: pd.DataFrame, events: pd.DataFrame) -> None:
    for day in DAYS:
        rows = exposures[exposures["exposed_at"].dt.date == day]
        hive(root, "exposures", _iso(rows, "exposed_at"), day=day)
    for day in [PRE_DAY, *DAYS]:
        rows = events[events["event_time"].dt.date == day]
        hive(root, "events", _iso(rows, "event_time"), day=day)


def _build(
    conn: duckdb.DuckDBPyConnection, resolved: ResolvedExperiment, root: Path, days: list[dt.date]
) -> list[queries.UnitMetricCounts]:
    exposure_source = LogSource("exposures", root / "exposures")
    event_source = LogSource("events", root / "events")
    for day in [PRE_DAY, *DAYS]:
        build_event_facts(conn, event_source, day, ["latency_ms"])
    for day in DAYS:
        build_exposures(conn, resolved, exposure_source, day)
        build_pre_period_covariates(conn, resolved, day)
    built = []
    for day in days:
        built.append(build_unit_metrics(conn, resolved, day))
        build_metric_statistics(conn, resolved, day)
    return built


def _expected(
    exposures: pd.DataFrame, events: pd.DataFrame, as_of: dt.date, *, from_timestamp: bool
) -> pd.DataFrame:
    """The rule in pandas: per unit, its events from its first exposure (the timestamp, or the
    midnight of that day) through ``as_of``; the covariate over the whole day before."""
    first = exposures.groupby("unit_id").agg(
        first_at=("exposed_at", "min"), variant=("variant", "first")
    )
    first = first[first["first_at"].dt.date <= as_of]
    start = first["first_at"] if from_timestamp else first["first_at"].dt.normalize()
    frame = events.join(start.rename("start"), on="unit_id", how="inner")
    end = pd.Timestamp(as_of + dt.timedelta(days=1), tz="UTC")
    post = frame[(frame["event_time"] >= frame["start"]) & (frame["event_time"] < end)]
    pre_end = frame["start"].dt.normalize()
    pre = frame[
        (frame["event_time"] < pre_end) & (frame["event_time"] >= pre_end - pd.Timedelta(days=1))
    ]

    def totals(rows: pd.DataFrame) -> pd.DataFrame:
        return rows.pivot_table(
            index="unit_id", columns="event", values="value", aggfunc=["sum", "count"]
        ).reindex(first.index)

    y, c = totals(post), totals(pre)

    def get(table: pd.DataFrame, how: str, event: str) -> pd.Series:
        column = (how, event)
        if column not in table.columns:
            return pd.Series(0.0, index=first.index)
        return table[column].fillna(0.0).astype(float)

    rows = []
    for unit in first.index:
        values = {
            "watch_time": (get(y, "sum", "watch_seconds")[unit], 1.0),
            "conversion": (float(get(y, "count", "purchase")[unit] > 0), 1.0),
            "ctr": (get(y, "sum", "click")[unit], get(y, "sum", "impression")[unit]),
            "impressions": (get(y, "count", "impression")[unit], 1.0),
            "latency_p95": (get(y, "count", "latency_ms")[unit], 1.0),
        }
        covariates = {
            "watch_time": get(c, "sum", "watch_seconds")[unit],
            "conversion": float(get(c, "count", "purchase")[unit] > 0),
            "ctr": get(c, "sum", "click")[unit],
            "impressions": get(c, "count", "impression")[unit],
            "latency_p95": None,
        }
        for metric, (value, denominator) in values.items():
            rows.append((unit, metric, round(value, 6), round(denominator, 6), covariates[metric]))
    return pd.DataFrame(rows, columns=["unit_id", "metric", "y", "x", "covariate"])


def _actual(conn: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    frame = conn.execute(
        "SELECT unit_id, metric, y, x, covariate FROM unit_metrics WHERE as_of_date = ? "
        "ORDER BY unit_id, metric",
        [as_of],
    ).fetchdf()
    frame["y"] = frame["y"].round(6)
    frame["x"] = frame["x"].round(6)
    return frame


def _compare(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.sort_values(["unit_id", "metric"]).reset_index(drop=True)
    assert actual[["unit_id", "metric"]].equals(expected[["unit_id", "metric"]])
    assert np.allclose(actual["y"], expected["y"], rtol=0, atol=1e-6)
    assert np.allclose(actual["x"], expected["x"], rtol=0, atol=1e-6)
    covariate = expected["covariate"].astype(float)
    assert np.allclose(actual["covariate"].astype(float), covariate, atol=1e-6, equal_nan=True)


@pytest.fixture
def logs(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    exposures, events = _logs()
    _land(tmp_path, exposures, events)
    return exposures, events, tmp_path


def test_the_logs_have_events_before_exposure_on_the_exposure_day(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, _ = logs
    first = exposures.groupby("unit_id")["exposed_at"].min()
    joined = events.join(first.rename("first_at"), on="unit_id")
    same_day = joined["event_time"].dt.date == joined["first_at"].dt.date
    assert (same_day & (joined["event_time"] < joined["first_at"])).sum() > 100


def test_unit_metrics_count_from_the_exposure_timestamp(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    resolved = experiment(metrics=METRICS, pre_period_days=1)  # the default window
    incremental = duckdb.connect()
    ensure_schema(incremental)
    built = _build(incremental, resolved, root, DAYS)
    # what unit_metrics reports it left out: each day, the new units' events before exposure
    first = exposures.groupby("unit_id")["exposed_at"].min()
    joined = events.join(first.rename("first_at"), on="unit_id", how="inner")
    left_out = joined[
        (joined["event_time"] < joined["first_at"])
        & (joined["event_time"].dt.date == joined["first_at"].dt.date)
    ]
    by_day = left_out.groupby(left_out["first_at"].dt.date)
    assert [(c.pre_exposure_units, c.pre_exposure_events) for c in built] == [
        (by_day["unit_id"].nunique().get(day, 0), by_day.size().get(day, 0)) for day in DAYS
    ]
    lineage = incremental.execute(
        "SELECT as_of_date, incremental FROM unit_metrics_lineage ORDER BY as_of_date"
    ).fetchall()
    assert [flag for _, flag in lineage] == [False, True, True]
    for as_of in DAYS:
        expected = _expected(exposures, events, as_of, from_timestamp=True)
        _compare(_actual(incremental, as_of), expected)
    # built from every day at once: the same rows
    full = duckdb.connect()
    ensure_schema(full)
    _build(full, resolved, root, [DAYS[-1]])
    assert _actual(full, DAYS[-1]).equals(_actual(incremental, DAYS[-1]))
    assert resolved.spec.analysis.metric_window_start == "exposure"


def test_quantile_and_novelty_statistics_count_from_the_exposure_timestamp(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path], caplog: pytest.LogCaptureFixture
) -> None:
    exposures, events, root = logs
    resolved = experiment(metrics=METRICS, pre_period_days=1)
    conn = duckdb.connect()
    ensure_schema(conn)
    caplog.set_level("INFO")
    _build(conn, resolved, root, DAYS)
    # the moments from the tail agree with the histogram (no fallback to every bucket)
    assert "summing every unit's buckets" not in caplog.text
    as_of = DAYS[-1]
    first = exposures.groupby("unit_id").agg(
        first_at=("exposed_at", "min"), variant=("variant", "first")
    )
    frame = events.join(first, on="unit_id", how="inner")
    post = frame[frame["event_time"] >= frame["first_at"]]
    latency = post[(post["event"] == "latency_ms") & (post["value"] > 0)].copy()
    latency["bucket"] = [round(math.log(v) / LOG_GAMMA) for v in latency["value"]]
    histogram = conn.execute(
        "SELECT variant, bucket, n FROM quantile_histograms WHERE as_of_date = ? "
        "ORDER BY variant, bucket",
        [as_of],
    ).fetchall()
    expected = latency.groupby(["variant", "bucket"]).size()
    assert histogram == [(v, b, n) for (v, b), n in expected.items()]
    statistics = conn.execute(
        "SELECT variant, n, sum_x, sum_y, threshold FROM metric_statistics "
        "WHERE as_of_date = ? AND metric = 'latency_p95' AND segment = 'all' ORDER BY variant",
        [as_of],
    ).fetchall()
    for variant, units, observations, below, threshold in statistics:
        arm = latency[latency["variant"] == variant]
        assert units == (first["variant"] == variant).sum()
        assert observations == len(arm)
        assert below == (arm["bucket"] <= round(math.log(threshold) / LOG_GAMMA)).sum()
    # the fallback that sums every bucket of every unit gives the same moments
    fallback = quantiles._bucket_moments(
        conn,
        resolved,
        as_of,
        {
            "experiment_id": resolved.spec.id,
            "day": as_of,
            "through": as_of,
            "event": "latency_ms",
            "nonpositive_bucket": queries.NONPOSITIVE_BUCKET,
            # every unit, whatever its first exposure day (not one allocation period's)
            "first_from": dt.date.min,
            "first_until": dt.date.max,
        },
    )
    assert {v: totals[:4] for v, totals in fallback.items()} == {
        variant: [units, below, below2, observations]
        for variant, units, below, below2, observations in conn.execute(
            "SELECT variant, n, sum_y, sum_y2, sum_x FROM metric_statistics WHERE as_of_date = ? "
            "AND metric = 'latency_p95' AND segment = 'all'",
            [as_of],
        ).fetchall()
    }
    # novelty: day 0 is what each unit did on its first exposure day from its exposure on
    first_day = post[post["event_time"].dt.date == post["first_at"].dt.date]
    watched = first_day[first_day["event"] == "watch_seconds"]
    novelty = dict(
        conn.execute(
            "SELECT variant, sum_y FROM novelty_statistics WHERE as_of_date = ? "
            "AND metric = 'watch_time' AND day_index = 0",
            [as_of],
        ).fetchall()
    )
    for variant, total in watched.groupby("variant")["value"].sum().items():
        assert novelty[variant] == pytest.approx(total, abs=1e-6)


def test_exposure_day_counts_from_the_midnight_of_the_exposure_day(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    resolved = experiment(
        metrics=METRICS, pre_period_days=1, analysis={"metric_window_start": "exposure_day"}
    )
    default = experiment(metrics=METRICS, pre_period_days=1)
    assert resolved.version != default.version  # part of the spec version
    conn = duckdb.connect()
    ensure_schema(conn)
    _build(conn, resolved, root, DAYS)
    assert conn.execute("SELECT count(*) FROM pre_exposure_facts").fetchone() == (0,)
    as_of = DAYS[-1]
    _compare(_actual(conn, as_of), _expected(exposures, events, as_of, from_timestamp=False))


def _held_out_logs(root: Path) -> None:
    """An A/A test in which the treatment's units, and only they, were busy on their exposure day
    before being exposed: they watched a lot, then saw the (ineffective) change."""
    rng = np.random.default_rng(11)
    units = unit_ids(400)
    exposures: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i, unit in enumerate(units):
        day = DAYS[i % 3]
        variant = assign_variant(SALT, unit, WEIGHTS)
        exposed_at = _at(day, 12 * 3600 + i)
        exposures.append(
            {
                "experiment_id": EXPERIMENT_ID,
                "unit_id": unit,
                "variant": variant,
                "exposed_at": exposed_at,
                "platform": "ios",
            }
        )
        for offset in range(3):  # after exposure: the same in both arms
            when = exposed_at + pd.Timedelta(minutes=10 + offset)
            value = round(float(rng.exponential(60)), 3)
            events.append(
                {"unit_id": unit, "event_time": when, "event": "watch_seconds", "value": value}
            )
        if variant == "treatment":
            for offset in range(5):  # before exposure, on the exposure day
                when = exposed_at - pd.Timedelta(hours=1 + offset)
                events.append(
                    {"unit_id": unit, "event_time": when, "event": "watch_seconds", "value": 600.0}
                )
    exposure_frame, event_frame = pd.DataFrame(exposures), pd.DataFrame(events)
    for day in DAYS:
        rows = exposure_frame[exposure_frame["exposed_at"].dt.date == day]
        hive(root, "exposures", _iso(rows, "exposed_at"), day=day)
        rows = event_frame[event_frame["event_time"].dt.date == day]
        hive(root, "events", _iso(rows, "event_time"), day=day)


@pytest.mark.parametrize(
    ("window", "shipped"), [("exposure", False), ("exposure_day", True)], ids=["default", "day"]
)
def test_events_before_exposure_in_one_arm_alone_make_no_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], window: str, shipped: bool
) -> None:
    _held_out_logs(tmp_path)
    spec = write_catalog(
        tmp_path / "catalog",
        end=DAYS[-1].isoformat(),
        metrics={"primary": "watch_time"},
        analysis={"sequential": "fixed_horizon"}
        | ({} if window == "exposure" else {"metric_window_start": window}),
    )
    code = main(
        [
            "analyze",
            "--experiment",
            str(spec),
            "--exposures",
            str(tmp_path / "exposures"),
            "--events",
            str(tmp_path / "events"),
            "--json",
            str(tmp_path / "out.json"),
            "--home",
            str(tmp_path / "home"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    document = json.loads((tmp_path / "out.json").read_text())
    (primary,) = [r for r in document["results"] if r["metric"] == "watch_time"]
    if shipped:  # counted from midnight, the treatment "watched" 3000 s more per unit
        assert document["decision"] == "SHIP" and primary["p_value"] < 1e-6
    else:
        assert document["decision"] != "SHIP" and primary["p_value"] > 0.05, primary
        assert primary["rel_effect"] == pytest.approx(0, abs=0.2)


def test_facts_without_timestamps_for_a_metric_event_are_named(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, root = logs
    resolved = experiment(metrics=METRICS)
    conn = duckdb.connect()
    ensure_schema(conn)
    day = DAYS[0]
    # as the asset does: timestamps kept for the catalog's metric events only (here, fewer)
    build_event_facts(conn, LogSource("events", root / "events"), day, [], ["impression"])
    kept = conn.execute("SELECT DISTINCT event FROM event_times").fetchall()
    assert kept == [("impression",)]
    build_exposures(conn, resolved, LogSource("exposures", root / "exposures"), day)
    counts = build_pre_period_covariates(conn, resolved, day)
    assert counts.untimed_events == ("click", "latency_ms", "purchase", "watch_seconds")
    assert "materialise event_facts for 2026-03-02 again" in caplog.text
