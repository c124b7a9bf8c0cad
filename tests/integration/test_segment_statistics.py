"""metric_statistics per segment (one grouping set per segment of the spec) against the same sums
taken in pandas from unit_metrics, with some units missing a segment's key."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exp_dagster.resources import Warehouse
from exp_dagster.warehouse import queries
from tests.conftest import Pipeline

SUMS = {
    "sum_y": ("y", None),
    "sum_y2": ("y", "y"),
    "sum_x": ("x", None),
    "sum_x2": ("x", "x"),
    "sum_xy": ("x", "y"),
    "sum_c": ("c", None),
    "sum_c2": ("c", "c"),
    "sum_yc": ("y", "c"),
    "sum_cx": ("cx", None),
    "sum_cx2": ("cx", "cx"),
    "sum_xc": ("x", "c"),
    "sum_xcx": ("x", "cx"),
    "sum_ycx": ("y", "cx"),
    "sum_ccx": ("c", "cx"),
}


def test_segment_statistics_equal_pandas_sums(pipeline: Pipeline, tmp_path: Path) -> None:
    experiment = pipeline.experiment
    spec = experiment.spec
    assert len(spec.segments) >= 2, "the pipeline's experiment should have several segments"
    day = pipeline.days[-1]
    database = tmp_path / "warehouse.duckdb"
    shutil.copyfile(pipeline.database, database)
    dropped = spec.segments[0]
    with Warehouse(database=str(database)).connect() as conn:
        # 25 units lose the first segment's key: they count under '(missing)'
        conn.execute(
            "UPDATE unit_metric_rows SET segments = map_from_entries(list_filter("
            "map_entries(segments), lambda e: e.key <> ?)) "
            "WHERE experiment_id = ? AND as_of_date = ? AND unit_id IN (SELECT unit_id "
            "FROM unit_metric_rows WHERE experiment_id = ? AND as_of_date = ? "
            "ORDER BY unit_id LIMIT 25)",
            [dropped, spec.id, day, spec.id, day],
        )
        queries.build_metric_statistics(conn, experiment, day)
        units = conn.execute(
            "SELECT metric, variant, segments, y, x, covariate AS c, covariate_x AS cx "
            "FROM unit_metrics WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        ).df()
        reported = conn.execute(
            "SELECT * FROM metric_statistics WHERE experiment_id = ? AND as_of_date = ? "
            "AND threshold IS NULL ORDER BY metric, variant, segment, segment_value",
            [spec.id, day],
        ).df()
    moment_metrics = sorted(n for n, m in experiment.metrics.items() if m.type != "quantile")
    units = units[units["metric"].isin(moment_metrics)]
    frames = [units.assign(segment="all", segment_value="all")]
    for name in spec.segments:
        values = units["segments"].map(lambda m, name=name: dict(m).get(name, "(missing)"))
        frames.append(units.assign(segment=name, segment_value=values))
    rows = pd.concat(frames, ignore_index=True)
    keys = ["metric", "variant", "segment", "segment_value"]
    expected = rows.groupby(keys).size().rename("n").reset_index()
    for column, (a, b) in SUMS.items():
        product = rows[a] if b is None else rows[a] * rows[b]
        sums = rows.assign(_p=product).groupby(keys)["_p"].sum(min_count=1)
        expected = expected.merge(sums.rename(column).reset_index(), on=keys)
    expected = expected.sort_values(keys).reset_index(drop=True)
    assert (expected["segment_value"] == "(missing)").sum() > 0
    assert reported[keys].to_numpy().tolist() == expected[keys].to_numpy().tolist()
    assert reported["n"].tolist() == expected["n"].tolist()
    for column in SUMS:
        got = reported[column].to_numpy(dtype=float)
        want = expected[column].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), column
        both = ~np.isnan(want)
        # exact_sum rounds each product to 6 decimals: at most 5e-7 a unit
        tolerance = 5e-7 * expected["n"].to_numpy()[both] + 1e-12 * np.abs(want[both])
        assert np.all(np.abs(got[both] - want[both]) <= tolerance), column
    assert pytest.approx(reported["sum_y"].sum()) == expected["sum_y"].sum()
