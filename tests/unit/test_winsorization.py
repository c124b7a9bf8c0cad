"""Winsorisation in SQL against numpy on the same per-unit values: the cap is the pooled quantile
(linear interpolation, both arms together), and each arm's mean and variance are those of the
capped values, overall and within segments."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from exp_dagster.spec import MetricCatalog, ResolvedExperiment, parse_experiment
from exp_dagster.warehouse import schema
from exp_dagster.warehouse.queries import build_metric_statistics, ensure_schema, read_outliers

DAY = dt.date(2026, 5, 4)
LEVEL = 0.999


def experiment(winsorize: float | None) -> ResolvedExperiment:
    metric: dict[str, object] = {"type": "mean", "event": "watch_seconds", "direction": "increase"}
    if winsorize is not None:
        metric["winsorize"] = winsorize
    catalog = MetricCatalog.model_validate({"metrics": {"watch_time": metric}})
    spec = {
        "id": "winsor",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": DAY.isoformat(),
        "end": DAY.isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "watch_time"},
        "segments": ["platform"],
    }
    return parse_experiment(spec, "winsor.yaml", catalog)


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    """5,000 units with log-normal watch time, a few of them enormous, in two arms."""
    rng = np.random.default_rng(20260504)
    n = 5000
    y = np.round(rng.lognormal(4, 1.2, n), 3)
    y[rng.choice(n, 4, replace=False)] = [2e6, 5e6, 1e7, 3e7]
    return pd.DataFrame(
        {
            "unit_id": [f"u{i:05d}" for i in range(n)],
            "variant": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "platform": np.where(rng.random(n) < 0.3, "web", "ios"),
            "y": y,
        }
    )


def statistics(units: pd.DataFrame, winsorize: float | None) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    ensure_schema(conn)
    resolved = experiment(winsorize)
    conn.register("units", units)
    conn.execute(
        "CREATE TEMP TABLE long_rows AS SELECT 'winsor' AS experiment_id, ?::DATE AS as_of_date, "
        "unit_id, variant, ?::DATE AS first_exposure_date, MAP {'platform': platform} AS segments, "
        "'watch_time' AS metric, y, 1::DOUBLE AS x, NULL::DOUBLE AS covariate, "
        "NULL::DOUBLE AS covariate_x, ? AS spec_version FROM units",
        [DAY, DAY, resolved.version],
    )
    schema._pack_long_unit_metrics(conn, "long_rows")
    build_metric_statistics(conn, resolved, DAY)
    return conn


def test_winsorised_means_match_numpy(units: pd.DataFrame) -> None:
    conn = statistics(units, LEVEL)
    cap = np.quantile(units["y"], LEVEL)  # numpy's default is linear interpolation
    assert 1e3 < cap < 2e6  # above the clean tail, below every planted outlier
    capped = units.assign(y=np.minimum(units["y"], cap))
    rows = conn.execute(
        "SELECT segment, segment_value, variant, n, sum_y, sum_y2 FROM metric_statistics"
    ).fetchall()
    assert len(rows) == 2 * 3  # all, ios, web × two arms
    for segment, value, variant, n, sum_y, sum_y2 in rows:
        cell = capped[capped["variant"] == variant]
        if segment == "platform":
            cell = cell[cell["platform"] == value]
        assert n == len(cell)
        mean = sum_y / n
        variance = (sum_y2 - sum_y**2 / n) / (n - 1)
        assert mean == pytest.approx(cell["y"].mean(), rel=1e-9)
        assert variance == pytest.approx(cell["y"].var(ddof=1), rel=1e-7)
    (report,) = read_outliers(conn, "winsor", DAY)
    assert report["cap"] == pytest.approx(cap, rel=1e-12)
    assert report["capped_units"] == int((units["y"] > cap).sum())
    assert report["outlier_units"] == 4
    assert sorted(report["top_values"]) == [2e6, 5e6, 1e7, 3e7]


def test_without_winsorize_the_values_are_summed_as_logged(units: pd.DataFrame) -> None:
    conn = statistics(units, None)
    sums = dict(
        conn.execute(
            "SELECT variant, sum_y FROM metric_statistics WHERE segment = 'all'"
        ).fetchall()
    )
    for variant, total in sums.items():
        expected = units.loc[units["variant"] == variant, "y"].sum()
        assert total == pytest.approx(expected, rel=1e-12)
    (report,) = read_outliers(conn, "winsor", DAY)
    assert report["cap"] is None and report["outlier_units"] == 4
