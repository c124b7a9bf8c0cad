"""The OEC's result rows and the metric tree's rows from ``metric_cross_statistics`` rows, with
no warehouse: against the library on the same per-unit values, across several treatments, and
the rows that say why when there is nothing to test (issue 21)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
import yaml

from exp_dagster.analysis import compute_results
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.oec_results import TREE_COLUMNS, oec_rows, tree_rows
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.stats import CrossMoments, adjust_p_values, linearise_ratio, oec_test

DAY = dt.date(2026, 10, 3)
VARIANTS = ("control", "t1", "t2")


def experiment(**oec: Any) -> ResolvedExperiment:
    spec = yaml.safe_load((PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml").read_text())
    spec["variants"] = [
        {"name": "control", "weight": 0.4, "control": True},
        {"name": "t1", "weight": 0.3},
        {"name": "t2", "weight": 0.3},
    ]
    spec["analysis"] = {"sequential": "fixed_horizon"}
    spec["oec"] = {"name": "oec", "components": {"watch_time": 0.01, "ctr": 1.0}, **oec}
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return parse_experiment(spec, "x.yaml", catalog)


def per_unit(rng: np.random.Generator, n: int, lift: float) -> dict[str, np.ndarray]:
    """Per-unit watch time and ctr's clicks and impressions, correlated through activity."""
    activity = rng.gamma(2.0, 1.0, n)
    impressions = rng.poisson(10 * activity).astype(float)
    clicks = rng.binomial(impressions.astype(int), 0.05 * (1 + lift)).astype(float)
    watch = rng.exponential(30.0, n) * clicks
    return {"watch_time": watch, "ctr.numerator": clicks, "ctr.denominator": impressions}


def cross_rows(arms: dict[str, dict[str, np.ndarray]], names: tuple[str, ...]) -> list[dict]:
    """The rows metric_cross_statistics.sql writes for these per-unit values."""
    rows = []
    for variant, values in arms.items():
        for i, a in enumerate(names):
            for b in names[i:]:
                rows.append(
                    {
                        "variant": variant,
                        "component_a": a,
                        "component_b": b,
                        "n": len(values[a]),
                        "sum_a": float(values[a].sum()),
                        "sum_b": float(values[b].sum()),
                        "sum_ab": float(values[a] @ values[b]),
                    }
                )
    return rows


def test_oec_rows_are_the_library_test_adjusted_across_treatments() -> None:
    resolved = experiment(normalisation="absolute")
    names = resolved.cross_component_names
    assert names == ("ctr.numerator", "ctr.denominator", "watch_time")
    rng = np.random.default_rng(5)
    arms = {v: per_unit(rng, 800, lift) for v, lift in zip(VARIANTS, (0, 0.1, 0.3), strict=True)}
    rows = [
        r
        for r in compute_results(resolved, DAY, [], cross_statistics=cross_rows(arms, names))
        if r["role"] == "oec"
    ]
    assert [r["variant"] for r in rows] == ["t1", "t2"]

    def moments(values: dict[str, np.ndarray]) -> CrossMoments:
        arm = CrossMoments.from_values(np.column_stack([values[n] for n in names]), names=names)
        return linearise_ratio(arm, "ctr.numerator", "ctr.denominator", "ctr")

    expected = [
        oec_test(moments(arms["control"]), moments(arms[v]), {"watch_time": 0.01, "ctr": 1.0})
        for v in ("t1", "t2")
    ]
    for row, result in zip(rows, expected, strict=True):
        assert row["abs_effect"] == pytest.approx(result.effect, rel=1e-9)
        assert row["std_error"] == pytest.approx(result.std_error, rel=1e-9)
        assert row["p_value"] == pytest.approx(result.p_value, rel=1e-9)
        assert row["multiplicity_family"] == "oec" and row["multiplicity_method"] == "holm"
    adjusted = adjust_p_values([r.p_value for r in expected], "holm")
    assert [r["p_value_adjusted"] for r in rows] == pytest.approx(list(adjusted), rel=1e-12)
    assert all(r["significance_test"] == "fixed_horizon" for r in rows)
    assert [r["significant"] for r in rows] == [bool(p < 0.05) for p in adjusted]


def test_an_oec_without_enough_units_says_why() -> None:
    resolved = experiment()
    names = resolved.cross_component_names
    rng = np.random.default_rng(6)
    arms = {"control": per_unit(rng, 50, 0.0), "t1": per_unit(rng, 1, 0.0)}
    rows = oec_rows(resolved, DAY, cross_rows(arms, names))
    assert [r["variant"] for r in rows] == ["t1", "t2"]
    assert all(r["not_estimable"].startswith("not estimable: OEC oec: ") for r in rows)
    assert "no units yet" in rows[1]["not_estimable"]
    assert rows[0]["abs_effect"] is None and rows[0]["n_treatment"] == 1


def test_a_tree_with_a_zero_factor_says_why_and_no_tree_writes_nothing() -> None:
    assert tree_rows(experiment(), DAY, []) == []  # an OEC only: no tree rows
    catalog = MetricCatalog.model_validate(
        {
            "metrics": {
                "ctr": {
                    "type": "ratio",
                    "numerator": "click",
                    "denominator": "impression",
                    "direction": "increase",
                },
                "clicks": {"type": "mean", "event": "click", "direction": "increase"},
                "views": {"type": "mean", "event": "impression", "direction": "increase"},
            }
        }
    )
    spec = yaml.safe_load((PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml").read_text())
    spec["metrics"] = {"primary": "clicks", "secondary": ["views", "ctr"]}
    spec["metric_tree"] = {"root": "clicks", "factors": ["views", "ctr"]}
    resolved = parse_experiment(spec, "x.yaml", catalog)
    names = resolved.cross_component_names
    assert names == ("ctr.numerator", "ctr.denominator", "views")
    # No impression in the control arm: the factor views is 0 there, ctr undefined.
    rng = np.random.default_rng(8)
    control = {n: np.zeros(10) for n in names}
    treatment = {n: rng.poisson(3.0, 10).astype(float) for n in names}
    rows = tree_rows(resolved, DAY, cross_rows({"control": control, "treatment": treatment}, names))
    assert len(rows) == 1 and set(rows[0]) == set(TREE_COLUMNS)
    assert rows[0]["not_estimable"].startswith("not estimable: metric tree of clicks: ")
    assert "positive" in rows[0]["not_estimable"]
