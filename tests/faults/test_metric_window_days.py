"""Metric windows: ``window_days: [d0, d1]`` on a metric counts each unit's events in
``[anchor + d0 × 24 h, anchor + (d1 + 1) × 24 h)``, anchor = its first exposure timestamp (or,
with ``analysis.metric_window_start: exposure_day``, that day's midnight), and only for the units
whose window has elapsed by the end of the analysis day (or the end date, if earlier).

Hand-made logs with units exposed over several days at random times (some exactly at midnight),
events at random times of every day and on the window boundaries to the microsecond: every
windowed metric's unit values and statistics equal a pandas computation of the rule, built day
by day (incremental) or from every day; and ``analyze`` reports the units whose window has
elapsed, or why there are none."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from exp_dagster.assignment import assign_variant
from exp_dagster.cli import main
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import MetricCatalog, ResolvedExperiment, SpecError, parse_experiment
from exp_dagster.warehouse.landing import LogSource
from exp_dagster.warehouse.queries import (
    build_event_facts,
    build_exposures,
    build_metric_statistics,
    build_pre_period_covariates,
    build_unit_metrics,
    ensure_schema,
)
from tests.faults.corpus import EXPERIMENT_ID, SALT, START, WEIGHTS, hive, spec_data, unit_ids

EXPOSURE_DAYS = [START + dt.timedelta(days=d) for d in range(5)]
END = EXPOSURE_DAYS[-1]
AFTER_END = END + dt.timedelta(days=1)  # analysed, but its events are not read
PRE_DAY = START - dt.timedelta(days=1)
EVENT_DAYS = [PRE_DAY, *EXPOSURE_DAYS, AFTER_END]
DAY = pd.Timedelta(days=1)

# name: (type, event or (numerator, denominator), aggregate, window_days)
WINDOWED: dict[str, tuple[str, Any, str, tuple[int, int]]] = {
    "watch_first_day": ("mean", "watch_seconds", "sum", (0, 0)),
    "watch_days_1_2": ("mean", "watch_seconds", "sum", (1, 2)),
    "conversion_first_2": ("proportion", "purchase", "sum", (0, 1)),
    "ctr_first_2": ("ratio", ("click", "impression"), "sum", (0, 1)),
    "impressions_days_1_2": ("mean", "impression", "count", (1, 2)),
}
ROLES = {
    "primary": "watch_first_day",
    "secondary": ["watch_time", *[m for m in WINDOWED if m != "watch_first_day"]],
}


def _catalog_data(extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    data = yaml.safe_load((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    for name, (kind, event, aggregate, window) in WINDOWED.items():
        metric: dict[str, Any] = {
            "type": kind,
            "direction": "increase",
            "window_days": list(window),
        }
        if kind == "ratio":
            metric["numerator"], metric["denominator"] = event
        else:
            metric["event"], metric["aggregate"] = event, aggregate
        data["metrics"][name] = metric
    data["metrics"].update(extra or {})
    return data


def _experiment(**overrides: Any) -> ResolvedExperiment:
    catalog = MetricCatalog.model_validate(_catalog_data())
    data = spec_data(metrics=ROLES, pre_period_days=1, end=END.isoformat(), **overrides)
    return parse_experiment(data, f"{EXPERIMENT_ID}.yaml", catalog)


def _at(day: dt.date, seconds: float) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat(), tz="UTC") + pd.Timedelta(seconds=seconds)


def _logs(n_units: int = 80, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Units first exposed on each of the five days (one in eight exactly at midnight), a fifth
    of them exposed again later; events at random times of every day, and on each unit's window
    boundaries (the anchor, anchor + 1, 2 and 3 days, and a microsecond before each)."""
    rng = np.random.default_rng(seed)
    exposure_rows: list[dict[str, Any]] = []
    for i, unit in enumerate(unit_ids(n_units)):
        first = EXPOSURE_DAYS[i % len(EXPOSURE_DAYS)]
        seconds = 0.0 if i % 8 == 0 else round(float(rng.uniform(0, 86_399)), 3)
        times = [_at(first, seconds)]
        if i % 5 == 0 and first < END:
            times.append(_at(first + dt.timedelta(days=1), float(rng.uniform(0, 86_399))))
        for when in times:
            exposure_rows.append(
                {
                    "experiment_id": EXPERIMENT_ID,
                    "unit_id": unit,
                    "variant": assign_variant(SALT, unit, WEIGHTS),
                    "exposed_at": when,
                    "platform": "ios" if i % 3 else "web",
                }
            )
    exposures = pd.DataFrame(exposure_rows)
    first_at = exposures.groupby("unit_id")["exposed_at"].min()
    draws = {
        "watch_seconds": lambda: round(float(rng.exponential(60)), 3),
        "impression": lambda: 1.0,
        "click": lambda: 1.0,
        "purchase": lambda: round(float(rng.exponential(20)), 2),
    }
    rows: list[tuple[str, pd.Timestamp, str, float]] = []
    for unit, anchor in first_at.items():
        for day in EVENT_DAYS:
            for event, draw in draws.items():
                chance = 0.15 if event == "purchase" else 1.0
                for _ in range(int(rng.integers(0, 4)) if rng.random() < chance else 0):
                    rows.append((unit, _at(day, float(rng.uniform(0, 86_399))), event, draw()))
        for boundary in (anchor, anchor + DAY, anchor + 2 * DAY, anchor + 3 * DAY):
            for when in (boundary, boundary - pd.Timedelta(microseconds=1)):
                rows.append((unit, when, "watch_seconds", draws["watch_seconds"]()))
                rows.append((unit, when, "impression", 1.0))
                rows.append((unit, when, "click", 1.0))
                if rng.random() < 0.2:
                    rows.append((unit, when, "purchase", draws["purchase"]()))
    events = pd.DataFrame(rows, columns=["unit_id", "event_time", "event", "value"])
    events = events[events["event_time"].dt.date <= AFTER_END]
    return exposures, events


def _iso(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return frame


def _land(root: Path, exposures: pd.DataFrame, events: pd.DataFrame) -> None:
    for day in EXPOSURE_DAYS:
        rows = exposures[exposures["exposed_at"].dt.date == day]
        hive(root, "exposures", _iso(rows, "exposed_at"), day=day)
    for day in EVENT_DAYS:
        rows = events[events["event_time"].dt.date == day]
        hive(root, "events", _iso(rows, "event_time"), day=day)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("window_logs")
    exposures, events = _logs()
    _land(root, exposures, events)
    return exposures, events, root


def _build(
    resolved: ResolvedExperiment, root: Path, days: list[dt.date]
) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    ensure_schema(conn)
    event_source = LogSource("events", root / "events")
    for day in EVENT_DAYS:
        build_event_facts(conn, event_source, day, [])
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
    """The rule in pandas: per unit exposed by ``as_of`` and windowed metric, its events in the
    window when the window has ended by the end of min(as_of, END), else NaN; the covariate over
    the whole day before the exposure day."""
    units = exposures[exposures["exposed_at"].dt.date <= as_of].groupby("unit_id")
    first = units.agg(first_at=("exposed_at", "min"), variant=("variant", "first"))
    anchor = first["first_at"] if from_timestamp else first["first_at"].dt.normalize()
    horizon = pd.Timestamp(min(as_of, END) + dt.timedelta(days=1), tz="UTC")
    frame = events.join(anchor.rename("anchor"), on="unit_id", how="inner")
    exposure_day = frame["anchor"].dt.normalize()
    pre = frame[(frame["event_time"] < exposure_day) & (frame["event_time"] >= exposure_day - DAY)]
    rows = []
    for name, (kind, event, aggregate, (first_day, last_day)) in WINDOWED.items():
        start = frame["anchor"] + first_day * DAY
        end = frame["anchor"] + (last_day + 1) * DAY
        inside = frame[(frame["event_time"] >= start) & (frame["event_time"] < end)]
        numerator, denominator = event if kind == "ratio" else (event, None)

        def total(rows: pd.DataFrame, event: str, how: str) -> pd.Series:
            chosen = rows[rows["event"] == event].groupby("unit_id")["value"]
            return (
                (chosen.sum() if how == "sum" else chosen.count()).reindex(first.index).fillna(0.0)
            )

        y = total(inside, numerator, aggregate).astype(float)
        covariate = total(pre, numerator, aggregate).astype(float)
        if kind == "proportion":
            y, covariate = (y > 0).astype(float), (covariate > 0).astype(float)
        x = total(inside, denominator, "sum") if denominator else pd.Series(1.0, index=first.index)
        complete = anchor + (last_day + 1) * DAY <= horizon
        for unit in first.index:
            value = y[unit] if complete[unit] else np.nan
            weight = x[unit] if complete[unit] or not denominator else np.nan
            rows.append((unit, name, first.at[unit, "variant"], value, weight, covariate[unit]))
    return pd.DataFrame(rows, columns=["unit_id", "metric", "variant", "y", "x", "covariate"])


def _actual(conn: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    return conn.execute(
        "SELECT unit_id, metric, variant, y, x, covariate FROM unit_metrics "
        "WHERE as_of_date = ? AND list_contains(?, metric) ORDER BY unit_id, metric",
        [as_of, sorted(WINDOWED)],
    ).fetchdf()


def _compare(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.sort_values(["unit_id", "metric"]).reset_index(drop=True)
    assert actual[["unit_id", "metric", "variant"]].equals(
        expected[["unit_id", "metric", "variant"]]
    )
    for column in ("y", "x", "covariate"):
        assert np.array_equal(actual[column].isna(), expected[column].isna()), column
        assert np.allclose(
            actual[column].astype(float), expected[column], rtol=0, atol=1e-6, equal_nan=True
        ), column


def test_the_logs_put_events_on_both_sides_of_every_window_boundary(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, _ = logs
    first = exposures.groupby("unit_id")["exposed_at"].min()
    since = events["event_time"] - events["unit_id"].map(first)
    assert (since == DAY).sum() >= 80 and (since == DAY - pd.Timedelta(microseconds=1)).sum() >= 80
    assert (first == first.dt.normalize()).sum() >= 10  # exposures exactly at midnight
    # some units' windows elapse only after the end date: they must never count
    assert (first + 3 * DAY > pd.Timestamp(END + dt.timedelta(days=1), tz="UTC")).sum() > 10


def test_windowed_unit_values_equal_the_rule_day_by_day_and_from_scratch(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    resolved = _experiment()
    days = [*EXPOSURE_DAYS, AFTER_END]
    incremental = _build(resolved, root, days)
    flags = incremental.execute(
        "SELECT incremental FROM unit_metrics_lineage ORDER BY as_of_date"
    ).fetchall()
    assert [flag for (flag,) in flags] == [False] + [True] * (len(days) - 1)
    elapsed = []
    for as_of in days:
        expected = _expected(exposures, events, as_of)
        _compare(_actual(incremental, as_of), expected)
        elapsed.append(int(expected["y"].notna().sum()))
    # units join as their windows elapse, none after the end date
    assert elapsed[0] > 0 and elapsed == sorted(elapsed) and elapsed[-1] == elapsed[-2]
    assert elapsed[-1] < len(_expected(exposures, events, END))
    # materialised from every day at once: the same rows, to the bit
    for as_of in (EXPOSURE_DAYS[2], AFTER_END):
        scratch = _build(resolved, root, [as_of])
        assert scratch.execute(
            "SELECT count(*) FROM unit_metrics_lineage WHERE incremental"
        ).fetchone() == (0,)
        assert _actual(scratch, as_of).equals(_actual(incremental, as_of))


def test_windowed_statistics_count_only_the_units_whose_window_elapsed(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    resolved = _experiment()
    conn = _build(resolved, root, EXPOSURE_DAYS)
    for as_of in (EXPOSURE_DAYS[1], END):
        expected = _expected(exposures, events, as_of).dropna(subset=["y"])
        statistics = conn.execute(
            "SELECT metric, variant, n, sum_y, sum_y2, sum_x, sum_xy FROM metric_statistics "
            "WHERE as_of_date = ? AND segment = 'all' AND list_contains(?, metric) ORDER BY ALL",
            [as_of, sorted(WINDOWED)],
        ).fetchall()
        sums = (
            expected.assign(y2=expected["y"] ** 2, xy=expected["x"] * expected["y"])
            .groupby(["metric", "variant"])
            .agg(
                n=("y", "size"), y=("y", "sum"), y2=("y2", "sum"), x=("x", "sum"), xy=("xy", "sum")
            )
        )
        assert [(m, v) for m, v, *_ in statistics] == list(sums.index)
        for metric, variant, n, sum_y, sum_y2, sum_x, sum_xy in statistics:
            row = sums.loc[(metric, variant)]
            assert n == row["n"]
            assert (sum_y, sum_y2, sum_x, sum_xy) == pytest.approx(
                (row["y"], row["y2"], row["x"], row["xy"]), abs=1e-6
            )
    # metric_outliers reads the same units
    units = conn.execute(
        "SELECT units FROM metric_outliers WHERE as_of_date = ? AND metric = 'watch_days_1_2'",
        [END],
    ).fetchone()
    expected = _expected(exposures, events, END)
    assert units == (expected[expected["metric"] == "watch_days_1_2"]["y"].notna().sum(),)


def test_exposure_day_anchors_the_windows_at_midnight(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
) -> None:
    exposures, events, root = logs
    resolved = _experiment(analysis={"metric_window_start": "exposure_day"})
    conn = _build(resolved, root, EXPOSURE_DAYS)
    for as_of in (EXPOSURE_DAYS[1], END):
        expected = _expected(exposures, events, as_of, from_timestamp=False)
        _compare(_actual(conn, as_of), expected)


def test_a_spec_without_windows_keeps_its_version() -> None:
    with_windows = MetricCatalog.model_validate(_catalog_data())
    project = MetricCatalog.model_validate(
        yaml.safe_load((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    )
    assert "window_days" not in with_windows.get("watch_time").model_dump()
    assert with_windows.get("watch_first_day").model_dump()["window_days"] == (0, 0)
    plain = parse_experiment(spec_data(), "x.yaml", with_windows)
    assert plain.version == parse_experiment(spec_data(), "x.yaml", project).version
    windowed = spec_data(metrics={"primary": "watch_first_day"})
    assert parse_experiment(windowed, "x.yaml", with_windows).version != plain.version


@pytest.mark.parametrize(
    ("metric", "phrase"),
    [
        ({"type": "mean", "event": "e", "window_days": [3, 1]}, "its last day comes before"),
        ({"type": "mean", "event": "e", "window_days": [-1, 2]}, "greater than or equal to 0"),
        ({"type": "mean", "event": "e", "window_days": [1]}, "window_days"),
        (
            {"type": "quantile", "event": "e", "level": 0.9, "window_days": [0, 6]},
            "'window_days' applies to mean, proportion, ratio metrics",
        ),
    ],
    ids=["reversed", "negative", "one-day", "quantile"],
)
def test_invalid_windows_are_rejected_with_the_field_named(
    tmp_path: Path, metric: dict[str, Any], phrase: str
) -> None:
    from exp_dagster.spec import load_metric_catalog

    path = tmp_path / "metrics.yaml"
    path.write_text(yaml.safe_dump({"metrics": {"m": {"direction": "increase", **metric}}}))
    with pytest.raises(SpecError) as error:
        load_metric_catalog(path)
    assert "metrics.m" in str(error.value) and phrase in str(error.value)


def test_analyze_reports_the_units_whose_window_elapsed_or_why_none_did(
    logs: tuple[pd.DataFrame, pd.DataFrame, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exposures, events, root = logs
    catalog = tmp_path / "catalog"
    (catalog / "experiments").mkdir(parents=True)
    later = {"type": "mean", "event": "watch_seconds", "direction": "increase"}
    data = _catalog_data({"watch_days_7_13": {**later, "window_days": [7, 13]}})
    (catalog / "metrics.yaml").write_text(yaml.safe_dump(data))
    spec = spec_data(
        metrics={**ROLES, "secondary": [*ROLES["secondary"], "watch_days_7_13"]},
        pre_period_days=1,
        end=END.isoformat(),
        analysis={"sequential": "fixed_horizon", "cuped": "off"},  # the raw means
    )
    spec_path = catalog / "experiments" / f"{EXPERIMENT_ID}.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out.json"
    code = main(
        [
            "analyze",
            "--experiment", str(spec_path),
            "--exposures", str(root / "exposures"),
            "--events", str(root / "events"),
            "--json", str(out),
            "--as-of", END.isoformat(),
            "--home", str(tmp_path / "home"),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = {
        r["metric"]: r
        for r in json.loads(out.read_text())["results"]
        if r["segment"] == "all" and r["variant"] == "treatment"
    }
    expected = _expected(exposures, events, END).dropna(subset=["y"])
    for name in WINDOWED:
        arms = expected[expected["metric"] == name].groupby("variant")
        row = rows[name]
        assert (row["n_control"], row["n_treatment"]) == tuple(
            arms.size()[["control", "treatment"]]
        )
        assert "window: days" in row["method"] and "has elapsed" in row["method"], row["method"]
        if WINDOWED[name][0] != "ratio":
            means = arms["y"].mean()
            assert row["mean_control"] == pytest.approx(means["control"], abs=1e-9)
            assert row["mean_treatment"] == pytest.approx(means["treatment"], abs=1e-9)
    assert rows["watch_time"]["n_control"] > rows["watch_days_1_2"]["n_control"]
    assert "window" not in rows["watch_time"]["method"]
    never = rows["watch_days_7_13"]
    assert never["p_value"] is None and never["n_control"] == never["n_treatment"] == 0
    assert never["not_estimable"].startswith(
        "not estimable: the metric's window (days 7-13 after each unit's exposure"
    )
    assert "336 h" in never["not_estimable"]
    assert "has elapsed for no unit" in never["not_estimable"]
