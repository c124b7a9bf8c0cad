"""The clustered quantile interval's per-unit moments.

They are computed from the units' observation counts and the few observations above each arm's
threshold (quantile_tail_moments.sql). Here they are checked against a direct computation from
the facts in pandas, with values at or below 0 planted (they are observations of the unit, but
not of the quantile), and against the fallback that sums every bucket when the facts predate
the non-positive bucket.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from exp_dagster.resources import Warehouse
from exp_dagster.warehouse import quantiles, queries
from tests.conftest import Pipeline

MOMENTS = ["n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"]


def _reference(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date, metric: str, event: str
) -> dict[str, list[float]]:
    """Per variant: over the day's units, the sums of B (positive observations since the unit's
    first exposure at or below the arm's threshold bucket), B², P (positive observations), P²
    and P·B, with the thresholds the day's metric_statistics reports."""
    threshold = dict(
        conn.execute(
            "SELECT h.variant, h.bucket FROM quantile_histograms AS h JOIN metric_statistics AS s "
            "USING (experiment_id, as_of_date, metric, variant) WHERE s.experiment_id = ? "
            "AND s.as_of_date = ? AND s.metric = ? AND h.value = s.threshold",
            [experiment_id, day, metric],
        ).fetchall()
    )
    units = conn.execute(
        "SELECT unit_id, variant, first_exposure_date FROM unit_metric_rows "
        "WHERE experiment_id = ? AND as_of_date = ?",
        [experiment_id, day],
    ).df()
    facts = conn.execute(
        "SELECT unit_id, event_date, bucket, n FROM quantile_facts WHERE event = ? "
        "AND event_date <= ?",
        [event, day],
    ).df()
    joined = units.merge(facts, on="unit_id", how="left")
    joined = joined[joined["event_date"] >= joined["first_exposure_date"]]
    positive = joined[joined["bucket"] != queries.NONPOSITIVE_BUCKET]
    below = positive[positive["bucket"] <= positive["variant"].map(threshold)]
    per_unit = units.set_index("unit_id")[["variant"]].assign(
        p=positive.groupby("unit_id")["n"].sum(), b=below.groupby("unit_id")["n"].sum()
    )
    per_unit = per_unit.fillna({"p": 0, "b": 0})
    out: dict[str, list[float]] = {}
    for variant, g in per_unit.groupby("variant"):
        p, b = g["p"].astype("int64"), g["b"].astype("int64")
        out[str(variant)] = [
            float(v)
            for v in (len(g), b.sum(), (b * b).sum(), p.sum(), (p * p).sum(), (p * b).sum())
        ]
    return out


def _reported(
    conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date, metric: str
) -> dict[str, list[float]]:
    rows = conn.execute(
        f"SELECT variant, {', '.join(MOMENTS)} FROM metric_statistics "
        "WHERE experiment_id = ? AND as_of_date = ? AND metric = ?",
        [experiment_id, day, metric],
    ).fetchall()
    return {variant: [float(v) for v in values] for variant, *values in rows}


def test_tail_moments_equal_the_facts_with_values_at_or_below_zero_and_the_fallback(
    pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    experiment = pipeline.experiment
    spec = experiment.spec
    (metric, definition), *_ = (
        (n, m) for n, m in sorted(experiment.metrics.items()) if m.type == "quantile"
    )
    database = tmp_path / "warehouse.duckdb"
    shutil.copyfile(pipeline.database, database)
    days = pipeline.days
    planted_day, last = days[len(days) // 2], days[-1]
    with Warehouse(database=str(database)).connect() as conn:
        # 40 units get 0 ms latencies on one day: in event_facts (as observations) and in the
        # non-positive bucket of quantile_facts, as event_facts.sql writes them
        planted = pd.DataFrame(
            conn.execute(
                "SELECT unit_id, 1 + row_number() OVER (ORDER BY unit_id) % 3 AS k "
                "FROM unit_metric_rows WHERE experiment_id = ? AND as_of_date = ? "
                "ORDER BY unit_id LIMIT 40",
                [spec.id, planted_day],
            ).fetchall(),
            columns=["unit_id", "k"],
        )
        params = {"day": planted_day, "event": definition.event}
        conn.register("planted", planted)
        conn.execute(
            "INSERT INTO quantile_facts SELECT $day, unit_id, $event, $bucket, k FROM planted",
            {**params, "bucket": queries.NONPOSITIVE_BUCKET},
        )
        conn.execute(
            "UPDATE event_facts AS f SET n = f.n + p.k FROM planted AS p "
            "WHERE f.unit_id = p.unit_id AND f.event = $event AND f.event_date = $day",
            params,
        )
        conn.execute(
            "INSERT INTO event_facts SELECT $day, unit_id, $event, k, 0, 0 FROM planted "
            "WHERE unit_id NOT IN (SELECT unit_id FROM event_facts "
            "WHERE event = $event AND event_date = $day)",
            params,
        )
        for day in days[days.index(planted_day) :]:
            queries.build_unit_metrics(conn, experiment, day)
        with caplog.at_level(logging.INFO, logger=quantiles.__name__):
            queries.build_metric_statistics(conn, experiment, last)
        assert "summing every unit's buckets" not in caplog.text
        reference = _reference(conn, spec.id, last, metric, definition.event)
        assert _reported(conn, spec.id, last, metric) == reference
        # the planted values are observations of the units, but not of the quantile
        observed = conn.execute(
            "SELECT sum(y) FROM unit_metrics WHERE experiment_id = ? AND as_of_date = ? "
            "AND metric = ?",
            [spec.id, last, metric],
        ).fetchone()
        assert observed is not None
        assert observed[0] == sum(r[3] for r in reference.values()) + planted["k"].sum()

        # facts written before the non-positive bucket existed: the counts do not add up, and
        # the statistics come from every bucket of every unit, the same
        conn.execute("DELETE FROM quantile_facts WHERE bucket = ?", [queries.NONPOSITIVE_BUCKET])
        with caplog.at_level(logging.INFO, logger=quantiles.__name__):
            queries.build_metric_statistics(conn, experiment, last)
        assert "summing every unit's buckets" in caplog.text
        assert _reported(conn, spec.id, last, metric) == reference
