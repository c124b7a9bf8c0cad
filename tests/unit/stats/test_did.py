from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from exp_dagster.stats import ClusterPeriodSums, did_test, event_study
from exp_dagster.stats._common import Alternative
from tests.unit.stats.simulators_did import Rollout


def _clustered_fit(formula: str, frame: pd.DataFrame) -> object:
    """statsmodels OLS with CR1 errors clustered by cluster and t inference on G - 1 df."""
    return smf.ols(formula, frame).fit(
        cov_type="cluster", cov_kwds={"groups": frame["cluster"]}, use_t=True
    )


def _observations(rollout: Rollout, seed: int) -> tuple[pd.DataFrame, ClusterPeriodSums]:
    cluster, treated, period, y = rollout.observations(np.random.default_rng(seed))
    frame = pd.DataFrame(
        {"cluster": cluster, "treated": treated.astype(float), "period": period, "y": y}
    )
    return frame, ClusterPeriodSums.from_values(cluster, treated, period, y)


def _panel(cells: tuple[np.ndarray, ...]) -> ClusterPeriodSums:
    cluster, treated, period, counts, totals = cells
    return ClusterPeriodSums(cluster, treated, period, counts, totals)


# --- against statsmodels ---------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("seed", [1, 2])
def test_did_matches_statsmodels_clustered_ols(seed: int, alternative: Alternative) -> None:
    rollout = Rollout(n_clusters=14, n_treated=5, n_periods=5, start=3, trend_gap=0.1)
    frame, panel = _observations(rollout, seed)
    # Missing cells (a cluster unobserved in a period) must not matter to the reduction.
    keep = ~((frame["cluster"] == 2) & (frame["period"] == 0)) & ~(
        (frame["cluster"] == 9) & (frame["period"] == 4)
    )
    frame = frame[keep].reset_index(drop=True)
    panel = ClusterPeriodSums.from_values(
        frame["cluster"], frame["treated"] > 0, frame["period"], frame["y"]
    )
    frame["post"] = (frame["period"] >= 3).astype(float)
    reference = _clustered_fit("y ~ treated * post", frame)
    result = did_test(panel, treatment_start=3, alpha=0.1, alternative=alternative)

    name = "treated:post"
    assert result.effect == pytest.approx(reference.params[name], rel=1e-10, abs=1e-12)
    assert result.std_error == pytest.approx(reference.bse[name], rel=1e-8)
    assert result.statistic == pytest.approx(reference.tvalues[name], rel=1e-8)
    assert result.df == 13 == reference.df_resid_inference
    two_sided = reference.pvalues[name]
    t = reference.tvalues[name]
    expected_p = {
        "two-sided": two_sided,
        "greater": stats.t.sf(t, 13),
        "less": stats.t.cdf(t, 13),
    }[alternative]
    assert result.p_value == pytest.approx(expected_p, rel=1e-8)
    low, high = reference.conf_int(alpha=0.1 if alternative == "two-sided" else 0.2).loc[name]
    if alternative in ("two-sided", "greater"):
        assert result.ci_low == pytest.approx(low, rel=1e-8)
    else:
        assert result.ci_low == -math.inf
    if alternative in ("two-sided", "less"):
        assert result.ci_high == pytest.approx(high, rel=1e-8)
    else:
        assert result.ci_high == math.inf
    assert (result.n_clusters, result.n_treated_clusters) == (14, 5)
    assert result.n_observations == len(frame)


def test_did_effect_is_the_difference_of_the_four_cell_changes() -> None:
    frame, panel = _observations(Rollout(n_clusters=10, n_treated=4), seed=3)
    post = frame["period"] >= 4
    treated = frame["treated"] > 0
    means = {
        (group, after): frame["y"][(treated == group) & (post == after)].mean()
        for group in (False, True)
        for after in (False, True)
    }
    result = did_test(panel, treatment_start=4)
    expected = (means[True, True] - means[True, False]) - (means[False, True] - means[False, False])
    assert result.effect == pytest.approx(expected, rel=1e-10)
    assert result.treated_post == pytest.approx(means[True, True], rel=1e-12)
    assert result.control_pre == pytest.approx(means[False, False], rel=1e-12)
    assert result.counterfactual == pytest.approx(
        means[True, False] + means[False, True] - means[False, False], rel=1e-12
    )


@pytest.mark.parametrize("reference_period", [None, 0, 2])
def test_event_study_matches_statsmodels_clustered_ols(reference_period: int | None) -> None:
    rollout = Rollout(n_clusters=16, n_treated=7, n_periods=6, start=4, trend_gap=0.15)
    frame, panel = _observations(rollout, seed=5)
    reference_level = 3 if reference_period is None else reference_period
    reference = _clustered_fit(
        f"y ~ treated * C(period, Treatment(reference={reference_level}))", frame
    )
    result = event_study(panel, treatment_start=4, reference_period=reference_period, alpha=0.1)

    def name(period: int) -> str:
        return f"treated:C(period, Treatment(reference={reference_level}))[T.{period}]"

    assert result.reference_period == reference_level
    assert result.periods == (0, 1, 2, 3, 4, 5)
    others = [period for period in result.periods if period != reference_level]
    intervals = reference.conf_int(alpha=0.1)
    for index, period in enumerate(result.periods):
        if period == reference_level:
            assert (result.effects[index], result.std_errors[index]) == (0.0, 0.0)
            assert math.isnan(result.p_values[index])
            continue
        assert result.effects[index] == pytest.approx(reference.params[name(period)], rel=1e-9)
        assert result.std_errors[index] == pytest.approx(reference.bse[name(period)], rel=1e-8)
        assert result.p_values[index] == pytest.approx(reference.pvalues[name(period)], rel=1e-8)
        assert result.ci_lows[index] == pytest.approx(intervals.loc[name(period), 0], rel=1e-8)
        assert result.ci_highs[index] == pytest.approx(intervals.loc[name(period), 1], rel=1e-8)
    names = [name(period) for period in others]
    expected_covariance = reference.cov_params().loc[names, names].to_numpy()
    np.testing.assert_allclose(np.array(result.covariance), expected_covariance, rtol=1e-8)

    pre = [period for period in range(4) if period != reference_level]
    assert result.pre_periods == tuple(pre)
    wald = reference.wald_test(
        ", ".join(f"{name(period)} = 0" for period in pre), use_f=True, scalar=True
    )
    assert result.pre_trend_statistic == pytest.approx(wald.fvalue, rel=1e-8)
    assert result.pre_trend_df == (len(pre), 15) == (wald.df_num, wald.df_denom)
    assert result.pre_trend_p_value == pytest.approx(wald.pvalue, rel=1e-8)

    average = reference.t_test(f"({name(4)} + {name(5)}) / 2 = 0")
    assert result.average_post_effect == pytest.approx(np.asarray(average.effect).item(), rel=1e-9)
    assert result.average_post_std_error == pytest.approx(np.asarray(average.sd).item(), rel=1e-8)


def test_cells_and_observations_give_the_same_event_study() -> None:
    # One observation per cell with the cell's mean: equal cluster weights, the same as OLS on
    # the means, and the reduction of per-observation data reproduces the sums.
    frame, panel = _observations(Rollout(n_clusters=12, n_treated=5), seed=8)
    means = frame.groupby(["cluster", "period"], as_index=False).agg(
        treated=("treated", "first"), y=("y", "mean")
    )
    by_means = event_study(
        ClusterPeriodSums(
            means["cluster"], means["treated"] > 0, means["period"], [1] * len(means), means["y"]
        ),
        treatment_start=4,
    )
    reference = _clustered_fit("y ~ treated * C(period, Treatment(reference=3))", means)
    assert by_means.effects[5] == pytest.approx(
        reference.params["treated:C(period, Treatment(reference=3))[T.5]"], rel=1e-9
    )
    assert sum(panel.n) == len(frame)
    assert math.fsum(panel.total) == pytest.approx(frame["y"].sum(), rel=1e-12)


# --- calibration by simulation ---------------------------------------------------------------


def test_parallel_trends_unbiased_with_calibrated_intervals() -> None:
    rng = np.random.default_rng(20261207)
    rollout = Rollout(effect=0.5, trend_gap=0.0)
    replications = 2000
    estimates = np.empty(replications)
    covered = np.empty(replications, dtype=bool)
    for replication in range(replications):
        result = did_test(_panel(rollout.sums(rng)), treatment_start=rollout.start)
        estimates[replication] = result.effect
        covered[replication] = result.ci_low <= rollout.effect <= result.ci_high
    monte_carlo_se = estimates.std(ddof=1) / math.sqrt(replications)
    assert abs(estimates.mean() - rollout.effect) < 4 * monte_carlo_se
    assert 0.93 <= covered.mean() <= 0.97


def test_parallel_trends_check_holds_its_level_with_enough_clusters() -> None:
    # The CR1 Wald F-test of 3 pre-period effects is liberal with few, unbalanced clusters (about
    # 8 % at 40 clusters, 16 treated, in this design) and tends to 5 % as clusters grow; with 100
    # clusters it is close.
    rng = np.random.default_rng(11)
    rollout = Rollout(n_clusters=100, n_treated=40, trend_gap=0.0)
    replications = 1500
    rejects = [
        event_study(_panel(rollout.sums(rng)), treatment_start=rollout.start).pre_trend_p_value
        < 0.05
        for _ in range(replications)
    ]
    assert 0.035 <= np.mean(rejects) <= 0.07


def test_diverging_pre_trends_bias_the_naive_estimate_and_are_flagged() -> None:
    rng = np.random.default_rng(7)
    # A steep gap, so the check's power is high; with trend_gap=0.25 the naive interval still
    # covers in only ~23 % of panels, yet the check flags only ~35 % of them (docs/statistics.md).
    rollout = Rollout(effect=0.5, trend_gap=0.6)
    replications = 400
    estimates = np.empty(replications)
    covered = np.empty(replications, dtype=bool)
    flagged = np.empty(replications, dtype=bool)
    for replication in range(replications):
        panel = _panel(rollout.sums(rng))
        naive = did_test(panel, treatment_start=rollout.start)
        estimates[replication] = naive.effect
        covered[replication] = naive.ci_low <= rollout.effect <= naive.ci_high
        flagged[replication] = (
            event_study(panel, treatment_start=rollout.start).pre_trend_p_value < 0.05
        )
    # Periods 0-3 before, 4-5 after: the gap adds trend_gap * (4.5 - 1.5) on average (cells
    # have equal expected counts), a bias of 1.8.
    bias = estimates.mean() - rollout.effect
    assert bias == pytest.approx(0.6 * 3.0, abs=0.05)
    assert covered.mean() < 0.05
    assert flagged.mean() > 0.9


# --- edge cases and errors -------------------------------------------------------------------


def test_event_study_without_a_second_pre_period_does_not_test_trends() -> None:
    rollout = Rollout(n_clusters=8, n_treated=4, n_periods=3, start=1)
    result = event_study(_panel(rollout.sums(np.random.default_rng(1))), treatment_start=1)
    assert result.pre_periods == ()
    assert math.isnan(result.pre_trend_p_value)
    assert "not tested" in result.method


def test_event_study_with_more_pre_periods_than_cluster_df_does_not_test_trends() -> None:
    rollout = Rollout(n_clusters=3, n_treated=1, n_periods=8, start=6)
    result = event_study(_panel(rollout.sums(np.random.default_rng(2))), treatment_start=6)
    assert result.pre_trend_df == (5, 2)
    assert math.isnan(result.pre_trend_statistic)
    assert "exceed the 2 degrees of freedom" in result.method


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="both treated and untreated"):
        ClusterPeriodSums(["a", "a"], [True, False], [0, 1], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="two cells for period 0"):
        ClusterPeriodSums(["a", "a"], [True, True], [0, 0], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"n\[1\] is a number of observations"):
        ClusterPeriodSums(["a", "b"], [True, False], [0, 0], [1, -2], [1.0, 2.0])
    with pytest.raises(ValueError, match="no observations but a total"):
        ClusterPeriodSums(["a", "b"], [True, False], [0, 0], [1, 0], [1.0, 2.0])
    with pytest.raises(ValueError, match="one value per cell"):
        ClusterPeriodSums(["a", "b"], [True, False], [0], [1, 1], [1.0, 2.0])
    panel = ClusterPeriodSums(
        ["a", "a", "b", "b"], [True, True, False, False], [0, 1, 0, 1], [3, 3, 3, 3], [1.0] * 4
    )
    with pytest.raises(ValueError, match="control post cell"):
        did_test(panel, treatment_start=2)
    with pytest.raises(ValueError, match="reference_period=1 is not a period before"):
        event_study(panel, treatment_start=1, reference_period=1)
    with pytest.raises(ValueError, match="periods both before and from"):
        event_study(panel, treatment_start=0)
    unobserved = ClusterPeriodSums(
        ["a", "a", "b", "b", "b"],
        [True, True, False, False, False],
        [0, 1, 0, 1, 2],
        [2] * 5,
        [1.0] * 5,
    )
    with pytest.raises(ValueError, match=r"treated group in every period; it has none in \[2\]"):
        event_study(unobserved, treatment_start=1)
    tiny = ClusterPeriodSums(
        ["a", "a", "b", "b"], [True, True, False, False], [0, 1] * 2, [1] * 4, [1.0, 2.0, 3.0, 5.0]
    )
    with pytest.raises(ValueError, match="more observations than the model's 4 coefficients"):
        did_test(tiny, treatment_start=1)
    one_cluster = ClusterPeriodSums(["a", "a"], [True, True], [0, 1], [2, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="control pre cell"):
        did_test(one_cluster, treatment_start=1)
