"""An OEC and a metric tree through ``exp-dagster analyze`` (issue 21): the cross-moments the
engine sums equal a brute-force numpy computation over the per-unit values, the OEC's result row
and the tree's rows equal the library's tests on those numpy moments, and the decision judges
the OEC when the spec says ``oec.decides``.

The tree is clicks per user = impression value per user × ctr (clicks / impression value); the
OEC weighs watch time, conversion and ctr (a ratio, linearised per unit).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import numpy as np
import pytest
import yaml

from exp_dagster.analysis import _sequential_fields
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.simulate import SimulationConfig, simulate
from exp_dagster.simulate_models import ModelLogSizes
from exp_dagster.spec import load_experiment, load_metric_catalog
from exp_dagster.stats import CrossMoments, metric_tree, oec_test
from tests.integration.analyze_run import analyze_json

START = dt.date(2026, 10, 1)
DAYS = 3
WEIGHTS = {"watch_time": 0.5, "conversion": 0.3, "ctr": 0.2}
EXTRA_METRICS = {
    "clicks": {"type": "mean", "event": "click", "direction": "increase"},
    "impression_value": {"type": "mean", "event": "impression", "direction": "increase"},
}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("oec")
    config = SimulationConfig(
        experiment_id="oec_test",
        salt="oec-test-salt",
        n_units=3_000,
        start=START,
        days=DAYS,
        pre_days=0,
        messy=False,
        model_logs=ModelLogSizes(0, 0, 0),
    )
    simulate(root / "logs", config)
    spec = {
        "id": "oec_test",
        "hash_salt": "oec-test-salt",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {
            "primary": "ctr",
            "secondary": ["watch_time", "conversion", "clicks", "impression_value"],
        },
        "oec": {"name": "oec_engagement", "components": WEIGHTS, "decides": True},
        "metric_tree": {"root": "clicks", "factors": ["impression_value", "ctr"]},
    }
    (root / "oec_test.yaml").write_text(yaml.safe_dump(spec))
    catalog = yaml.safe_load((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    catalog["metrics"].update(EXTRA_METRICS)
    (root / "metrics.yaml").write_text(yaml.safe_dump(catalog))
    document = analyze_json(
        root / "oec_test.yaml", root / "logs" / "exposures", root / "logs" / "events", root
    )
    return document, root


def _per_unit(conn: duckdb.DuckDBPyConnection, day: dt.date) -> dict[str, dict[str, np.ndarray]]:
    """Each variant's per-unit y and x of every metric, from the unit_metrics view (pivoted by
    numpy, the brute-force way)."""
    rows = conn.execute(
        "SELECT variant, unit_id, metric, y, x FROM unit_metrics "
        "WHERE experiment_id = 'oec_test' AND as_of_date = ? ORDER BY variant, unit_id, metric",
        [day],
    ).fetchall()
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for variant, _, metric, y, x in rows:
        arm = values.setdefault(variant, {})
        arm.setdefault(metric, []).append(y)
        arm.setdefault(f"{metric}.denominator", []).append(x)
    return {
        variant: {name: np.asarray(v, dtype=float) for name, v in arm.items()}
        for variant, arm in values.items()
    }


def _brute_force_arm(arm: dict[str, np.ndarray], names: list[str]) -> CrossMoments:
    columns = [arm[n.removesuffix(".numerator")] for n in names]
    return CrossMoments.from_values(np.column_stack(columns), names=names)


def test_cross_moments_equal_the_brute_force_sums(analysed: tuple[dict[str, Any], Path]) -> None:
    _, root = analysed
    database = next((root / "home").rglob("*.duckdb"))
    day = START + dt.timedelta(days=DAYS - 1)
    with duckdb.connect(str(database), read_only=True) as conn:
        per_unit = _per_unit(conn, day)
        stored = conn.execute(
            "SELECT variant, component_a, component_b, n, sum_a, sum_b, sum_ab "
            "FROM metric_cross_statistics WHERE experiment_id = 'oec_test' AND as_of_date = ?",
            [day],
        ).fetchall()
    names = sorted({row[1] for row in stored})
    assert names == [
        "conversion",
        "ctr.denominator",
        "ctr.numerator",
        "impression_value",
        "watch_time",
    ]
    assert len(stored) == 2 * len(names) * (len(names) + 1) // 2
    for variant, a, b, n, sum_a, sum_b, sum_ab in stored:
        arm = per_unit[variant]
        va, vb = arm[a.removesuffix(".numerator")], arm[b.removesuffix(".numerator")]
        assert n == va.size
        assert sum_a == pytest.approx(va.sum(), rel=1e-12, abs=1e-6)
        assert sum_b == pytest.approx(vb.sum(), rel=1e-12, abs=1e-6)
        assert sum_ab == pytest.approx(np.dot(va, vb), rel=1e-12, abs=1e-6)


def _linearised_ctr(arm: dict[str, np.ndarray]) -> np.ndarray:
    y, x = arm["ctr"], arm["ctr.denominator"]
    ratio = y.mean() / x.mean()
    return ratio + (y - ratio * x) / x.mean()


def test_the_oec_row_is_the_test_on_per_unit_values(
    analysed: tuple[dict[str, Any], Path],
) -> None:
    document, root = analysed
    database = next((root / "home").rglob("*.duckdb"))
    day = START + dt.timedelta(days=DAYS - 1)
    with duckdb.connect(str(database), read_only=True) as conn:
        per_unit = _per_unit(conn, day)
    names = sorted(WEIGHTS)
    arms = {
        variant: CrossMoments.from_values(
            np.column_stack([_linearised_ctr(arm) if n == "ctr" else arm[n] for n in names]),
            names=names,
        )
        for variant, arm in per_unit.items()
    }
    expected = oec_test(arms["control"], arms["treatment"], WEIGHTS, normalisation="relative")
    row = next(r for r in document["results"] if r["metric"] == "oec_engagement")
    assert row["metric_type"] == "oec" and row["role"] == "oec"
    assert row["abs_effect"] == pytest.approx(expected.effect, rel=1e-9)
    assert row["std_error"] == pytest.approx(expected.std_error, rel=1e-9)
    assert row["p_value"] == pytest.approx(expected.p_value, rel=1e-9, abs=1e-15)
    assert row["abs_ci_low"] == pytest.approx(expected.ci_low, rel=1e-9)
    assert row["significance_test"] == "group_sequential"  # the spec's default policy
    # The joint covariance matters: the metrics of a unit move together.
    assert not math.isclose(expected.std_error, expected.independent_std_error, rel_tol=1e-3)
    # The ratio's component effect is the relative lift of ctr's ratio of sums (its own row's).
    ctr = next(r for r in document["results"] if r["metric"] == "ctr" and r["segment"] == "all")
    assert expected.component_effects[names.index("ctr")] == pytest.approx(
        ctr["rel_effect"], rel=1e-9
    )


def _brute_force_oec(per_unit: dict[str, dict[str, np.ndarray]]) -> Any:
    names = sorted(WEIGHTS)
    arms = {
        variant: CrossMoments.from_values(
            np.column_stack([_linearised_ctr(arm) if n == "ctr" else arm[n] for n in names]),
            names=names,
        )
        for variant, arm in per_unit.items()
    }
    return oec_test(arms["control"], arms["treatment"], WEIGHTS, normalisation="relative")


def test_each_day_is_a_look_of_the_oec_sequential_test(
    analysed: tuple[dict[str, Any], Path],
) -> None:
    """The OEC's group-sequential fields are those of the per-day brute-force OEC estimates."""
    document, root = analysed
    experiment = load_experiment(root / "oec_test.yaml", load_metric_catalog(root / "metrics.yaml"))
    database = next((root / "home").rglob("*.duckdb"))
    days = experiment.spec.days()
    looks = []
    with duckdb.connect(str(database), read_only=True) as conn:
        for day in days:
            result = _brute_force_oec(_per_unit(conn, day))
            n = conn.execute(
                "SELECT n FROM metric_cross_statistics WHERE experiment_id = 'oec_test' "
                "AND as_of_date = ? AND component_a = 'watch_time' "
                "AND component_b = 'watch_time' ORDER BY variant",
                [day],
            ).fetchall()
            look = SimpleNamespace(
                abs_effect=result.effect,
                std_error=result.std_error,
                mean_control=result.value_control,
                mean_treatment=result.value_treatment,
                n_control=n[0][0],
                n_treatment=n[1][0],
            )
            looks.append((day, look))
    expected = _sequential_fields(experiment, looks, alpha=experiment.spec.alpha)
    row = next(r for r in document["results"] if r["metric"] == "oec_engagement")
    assert row["sequential_look"] == len(days) == 3
    for field in ("information_fraction", "sequential_boundary", "sequential_ci_low"):
        assert row[field] == pytest.approx(expected[field], rel=1e-9), field
    assert row["significant"] == expected["sequential_significant"]


def test_the_decision_judges_the_oec(analysed: tuple[dict[str, Any], Path]) -> None:
    document, _ = analysed
    assert any(reason.startswith("OEC oec_engagement: ") for reason in document["reasons"])
    assert not any(reason.startswith("Primary metric") for reason in document["reasons"])


def test_the_tree_rows_decompose_the_root(analysed: tuple[dict[str, Any], Path]) -> None:
    _, root = analysed
    database = next((root / "home").rglob("*.duckdb"))
    day = START + dt.timedelta(days=DAYS - 1)
    with duckdb.connect(str(database), read_only=True) as conn:
        per_unit = _per_unit(conn, day)
        rows = conn.execute(
            "SELECT factor, position, value_control, value_treatment, lift, log_lift, "
            "log_std_error, share, not_estimable FROM metric_trees "
            "WHERE experiment_id = 'oec_test' AND as_of_date = ? ORDER BY position",
            [day],
        ).fetchall()
        clicks = conn.execute(
            "SELECT mean_control, mean_treatment FROM results WHERE experiment_id = 'oec_test' "
            "AND as_of_date = ? AND metric = 'clicks' AND segment = 'all'",
            [day],
        ).fetchone()
    assert [r[0] for r in rows] == ["clicks", "impression_value", "ctr"]
    assert all(r[-1] is None for r in rows)
    names = ["ctr.numerator", "ctr.denominator", "impression_value"]
    expected = metric_tree(
        _brute_force_arm(per_unit["control"], names),
        _brute_force_arm(per_unit["treatment"], names),
        {
            "impression_value": ("impression_value", None),
            "ctr": ("ctr.numerator", "ctr.denominator"),
        },
    )
    for row, factor in zip(rows, (expected.total, *expected.factors), strict=True):
        assert row[2:7] == pytest.approx(
            (
                factor.value_control,
                factor.value_treatment,
                factor.lift,
                factor.log_lift,
                factor.std_error,
            ),
            rel=1e-9,
        )
    # The total is the root metric itself, and the shares add up to 1.
    assert rows[0][2:4] == pytest.approx(clicks, rel=1e-9)
    assert rows[1][7] + rows[2][7] == pytest.approx(1.0, rel=1e-9)


def test_the_report_shows_the_oec_and_the_tree(analysed: tuple[dict[str, Any], Path]) -> None:
    _, root = analysed
    html = next((root / "reports").rglob("*.html")).read_text()
    section = html[html.index('<h2 id="oec">') :]
    assert "OEC <b>oec_engagement</b> = 0.3 × conversion, 0.2 × ctr, 0.5 × watch_time" in section
    assert "each metric's relative lift" in section
    assert "It decides the verdict in place of the primary metric." in section
    cuped = html[html.index('<h2 id="cuped">') : html.index('<h2 id="quality">')]
    assert "<td>ctr</td>" in cuped and "<td>oec_engagement</td>" not in cuped
    assert "Metric tree: <b>clicks</b> = impression_value × ctr." in section
    assert "clicks (total)" in section and "× impression_value" in section and "× ctr" in section
