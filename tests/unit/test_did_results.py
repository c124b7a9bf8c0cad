"""The spec's ``did`` block as ``did_effects`` rows and as a decision: the rows equal the library's
tests on the same panel, read by day (periods are dates, the rollout a date); by simulation
through the rows, the interval covers the true effect under parallel trends, and with diverging
trends the effect is biased and the pre-trend check flags it; rows that cannot be estimated say
why; the decision ships only at the end, on a significant effect whose check did not fail.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
import yaml

from exp_dagster.decision import Verdict, decide
from exp_dagster.did_results import DID_COLUMNS, did_panel, did_rows
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import ResolvedExperiment, load_metric_catalog, parse_experiment
from exp_dagster.stats import did_test, event_study
from tests.unit.stats.simulators_did import Rollout

START = dt.date(2026, 10, 1)
END = dt.date(2026, 10, 14)
ROLLOUT = START + dt.timedelta(days=4)  # periods 0-3 before, 4-5 after (Rollout's default)


def _experiment(**did: Any) -> ResolvedExperiment:
    spec = yaml.safe_load((PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml").read_text())
    spec.pop("hash_salt")
    spec["metrics"] = {"primary": "watch_time", "secondary": ["conversion"]}
    spec["segments"] = ["market"]
    spec["did"] = {
        "cluster": "market",
        "treated": [f"c{g}" for g in range(16)],
        "rollout_date": ROLLOUT.isoformat(),
        "metrics": ["watch_time"],
        **did,
    }
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return parse_experiment(spec, "x.yaml", catalog)


def _cells(rollout: Rollout, rng: np.random.Generator) -> list[dict[str, Any]]:
    """One simulated panel as ``did_cluster_days`` rows (cluster g named c<g>, period t the day
    START + t); the first ``n_treated`` clusters are treated."""
    clusters, treated, periods, counts, totals = rollout.sums(rng)
    return [
        {
            "metric": "watch_time",
            "as_of_date": START + dt.timedelta(days=int(t)),
            "cluster": f"c{g}",
            "treated": bool(flag),
            "n": int(n),
            "sum_y": float(total),
            "sum_y2": None,
        }
        for g, flag, t, n, total in zip(clusters, treated, periods, counts, totals, strict=True)
    ]


def test_rows_are_the_librarys_tests_on_the_panel_by_day() -> None:
    experiment = _experiment()
    cells = _cells(Rollout(), np.random.default_rng(3))
    day = START + dt.timedelta(days=5)
    rows = did_rows(experiment, day, cells)
    assert all(set(row) == set(DID_COLUMNS) for row in rows)
    did, *study = rows
    panel = did_panel(cells, "watch_time")
    expected = did_test(panel, ROLLOUT, alpha=0.05)
    assert did["row_type"] == "did" and did["period"] is None
    assert did["effect"] == expected.effect and did["std_error"] == expected.std_error
    assert (did["ci_low"], did["ci_high"], did["p_value"]) == (
        expected.ci_low,
        expected.ci_high,
        expected.p_value,
    )
    assert did["df"] == 39 and did["n_clusters"] == 40 and did["n_treated_clusters"] == 16
    assert did["significant"] == (expected.p_value < 0.05)
    reference = event_study(panel, ROLLOUT, alpha=0.05)
    assert did["pre_trend_p_value"] == reference.pre_trend_p_value
    assert did["pre_trend_passed"] == (reference.pre_trend_p_value >= 0.05)
    assert did["pre_trend_note"].startswith("parallel trends: joint Wald F-test of the 3")
    assert [row["period"] for row in study] == [START + dt.timedelta(days=t) for t in range(6)]
    assert [row["effect"] for row in study] == list(reference.effects)
    assert study[3]["effect"] == 0.0 and study[3]["p_value"] is None  # the reference day


def test_units_without_a_cluster_are_counted_and_left_out_of_the_panel() -> None:
    experiment = _experiment()
    cells = _cells(Rollout(), np.random.default_rng(3))
    day = START + dt.timedelta(days=5)
    # The engine's cells of units without a cluster value: cluster and treated NULL.
    without = [
        {
            "metric": "watch_time",
            "as_of_date": START + dt.timedelta(days=t),
            "cluster": None,
            "treated": None,
            "n": 2 + t,
            "sum_y": 1e6,
            "sum_y2": None,
        }
        for t in range(6)
    ]
    did, *study = did_rows(experiment, day, cells + without)
    alone, *alone_study = did_rows(experiment, day, cells)
    # Not in the panel: the effect, its clusters and unit-days are those without them.
    assert did_panel(cells + without, "watch_time") == did_panel(cells, "watch_time")
    assert did["effect"] == alone["effect"] and did["n_observations"] == alone["n_observations"]
    assert did["n_clusters"] == 40
    assert [r["effect"] for r in study] == [r["effect"] for r in alone_study]
    # Counted: 2 + 3 + ... + 7 unit-days.
    assert did["note"] == (
        "27 unit-days had no market and are not in the panel (units exposed on a day whose "
        "exposure row has no market value, counted once per such day)"
    )
    assert alone["note"] is None
    # Before the rollout the row is not estimable, and still counts them.
    before = [c for c in cells + without if c["as_of_date"] < ROLLOUT]
    early = did_rows(experiment, ROLLOUT - dt.timedelta(days=1), before)[0]
    assert early["not_estimable"] and early["note"].startswith("14 unit-days had no market")


def _simulate(rollout: Rollout, replications: int, seed: int) -> dict[str, np.ndarray]:
    experiment = _experiment()
    rng = np.random.default_rng(seed)
    day = START + dt.timedelta(days=rollout.n_periods - 1)
    effects, covered, flagged = [], [], []
    for _ in range(replications):
        did = did_rows(experiment, day, _cells(rollout, rng))[0]
        effects.append(did["effect"])
        covered.append(did["ci_low"] <= rollout.effect <= did["ci_high"])
        flagged.append(did["pre_trend_passed"] is False)
    return {
        "effects": np.array(effects),
        "covered": np.array(covered),
        "flagged": np.array(flagged),
    }


def test_parallel_trends_cover_the_true_effect() -> None:
    rollout = Rollout(effect=0.5, trend_gap=0.0)
    outcome = _simulate(rollout, replications=600, seed=20261207)
    monte_carlo_se = outcome["effects"].std(ddof=1) / math.sqrt(600)
    assert abs(outcome["effects"].mean() - rollout.effect) < 4 * monte_carlo_se
    assert 0.93 <= outcome["covered"].mean() <= 0.97
    # CR1's F-test of 3 pre-period effects is somewhat liberal with 40 unbalanced clusters.
    assert outcome["flagged"].mean() < 0.12


def test_diverging_trends_bias_the_effect_and_are_flagged() -> None:
    rollout = Rollout(effect=0.5, trend_gap=0.6)
    outcome = _simulate(rollout, replications=300, seed=7)
    # The treated clusters' extra slope adds 0.6 * (4.5 - 1.5) = 1.8 on average.
    assert outcome["effects"].mean() - rollout.effect == pytest.approx(1.8, abs=0.06)
    assert outcome["covered"].mean() < 0.05
    assert outcome["flagged"].mean() > 0.9


def test_rows_that_cannot_be_estimated_say_why() -> None:
    experiment = _experiment()
    cells = _cells(Rollout(), np.random.default_rng(1))
    before = [c for c in cells if c["as_of_date"] < ROLLOUT]
    (row,) = did_rows(experiment, ROLLOUT - dt.timedelta(days=1), before)
    assert row["not_estimable"] == (
        "not estimable: difference in differences of watch_time: no day from the rollout date "
        "2026-10-05 yet"
    )
    assert row["effect"] is None
    untreated = [c for c in cells if not c["treated"]]
    (row,) = did_rows(experiment, START + dt.timedelta(days=5), untreated)
    assert "no treated cluster has exposed units yet" in row["not_estimable"]
    # One pre-rollout day only: the effect is estimated, the trends are not tested.
    late = _experiment(rollout_date=(START + dt.timedelta(days=1)).isoformat())
    did = did_rows(late, START + dt.timedelta(days=5), cells)[0]
    assert math.isfinite(did["effect"]) and did["pre_trend_passed"] is None
    assert "no pre-period besides the reference" in did["pre_trend_note"]
    assert did_rows(_experiment_without_did(), START, cells) == []


def _experiment_without_did() -> ResolvedExperiment:
    spec = yaml.safe_load((PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml").read_text())
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return parse_experiment(spec, "x.yaml", catalog)


def _did_row(**fields: Any) -> dict[str, Any]:
    row = {
        **dict.fromkeys(DID_COLUMNS),
        "metric": "watch_time",
        "row_type": "did",
        "direction": "increase",
        "effect": 2.0,
        "ci_low": 1.0,
        "ci_high": 3.0,
        "p_value": 0.001,
        "significant": True,
        "treated_post": 12.0,
        "counterfactual": 10.0,
        "n_clusters": 40,
        "n_treated_clusters": 16,
        "pre_trend_statistic": 0.5,
        "pre_trend_p_value": 0.7,
        "pre_trend_passed": True,
        "pre_trend_note": "parallel trends: joint Wald F-test, F(3, 39)",
        "alpha": 0.05,
    }
    return {**row, **fields}


def test_the_decision_reads_the_difference_in_differences() -> None:
    experiment = _experiment()
    # No SRM test, no empty-arm check: before the rollout every unit is a control.
    early = decide(experiment, START, [], {"control": 500}, did_effects=[])
    assert early.decision == Verdict.KEEP_RUNNING and early.srm_p_value is None
    assert "no sample-ratio test" in early.reasons[-1]
    before_end = decide(experiment, END - dt.timedelta(days=1), [], {}, did_effects=[_did_row()])
    assert before_end.decision == Verdict.KEEP_RUNNING
    assert "fixed-horizon test" in before_end.reasons[0]
    shipped = decide(experiment, END, [], {}, did_effects=[_did_row()])
    assert (shipped.decision, shipped.variant) == (Verdict.SHIP, "treatment")
    assert shipped.reasons[1].startswith("Difference in differences of watch_time: +2 per unit")
    worse = decide(experiment, END, [], {}, did_effects=[_did_row(effect=-2.0)])
    assert worse.decision == Verdict.ROLLBACK
    flat = decide(experiment, END, [], {}, did_effects=[_did_row(significant=False)])
    assert flat.decision == Verdict.INCONCLUSIVE
    failed = _did_row(pre_trend_passed=False, pre_trend_p_value=0.001, pre_trend_statistic=9.0)
    for day in (END - dt.timedelta(days=1), END):
        decision = decide(experiment, day, [], {}, did_effects=[failed])
        assert decision.decision != Verdict.SHIP
        assert any(
            r.startswith("Warning: parallel trends fail for watch_time") for r in decision.reasons
        )
    assert decide(experiment, END, [], {}, did_effects=[failed]).decision == Verdict.INCONCLUSIVE
    invalid = decide(experiment, END, [], {}, ["gate failed"], did_effects=[_did_row()])
    assert invalid.decision == Verdict.INVALID and invalid.reasons == ("gate failed",)
    reason = "not estimable: difference in differences of watch_time: no day yet"
    pending = decide(experiment, END, [], {}, did_effects=[_did_row(not_estimable=reason)])
    assert pending.decision == Verdict.INCONCLUSIVE
    assert f"Difference in differences of watch_time: {reason}." in pending.reasons
