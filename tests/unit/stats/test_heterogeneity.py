from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import integrate, stats
from statsmodels.stats.meta_analysis import combine_effects

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.heterogeneity import (
    Covariance,
    heterogeneity_test,
    interaction_test,
    trend_test,
)
from exp_dagster.stats.means import welch_test
from exp_dagster.stats.moments import Moments
from tests.unit.stats.simulators_heterogeneity import (
    daily_estimates,
    segment_estimates,
    segmented_experiment,
)

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]

# --- heterogeneity_test ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimates", "std_errors"),
    [
        ([0.1, 0.3, -0.2], [0.1, 0.14, 0.12]),
        ([0.021, 0.019, 0.024, 0.020], [0.004, 0.006, 0.011, 0.003]),  # Q < df: I² = 0
        ([1.5, -0.4], [0.3, 0.5]),
        ([3.0, 2.0, 5.0, 4.0, 0.5, 2.5], [1.0, 0.7, 2.0, 1.2, 0.9, 0.4]),
    ],
)
def test_matches_statsmodels_meta_analysis(estimates: list[float], std_errors: list[float]) -> None:
    result = heterogeneity_test(estimates, std_errors)
    reference = combine_effects(np.array(estimates), np.array(std_errors) ** 2)
    assert result.statistic == pytest.approx(reference.q, rel=1e-9)
    # statsmodels reports (Q - df) / Q untruncated; Higgins & Thompson truncate it at 0.
    assert result.i_squared == pytest.approx(max(0.0, reference.i2), rel=1e-9, abs=1e-12)
    assert result.df == reference.df_resid == len(estimates) - 1
    assert result.pooled_effect == pytest.approx(reference.mean_effect_fe, rel=1e-9)
    assert result.pooled_std_error == pytest.approx(reference.sd_eff_w_fe, rel=1e-9)
    assert result.p_value == pytest.approx(reference.test_homogeneity().pvalue, rel=1e-9)
    assert result.p_value == pytest.approx(stats.chi2.sf(reference.q, len(estimates) - 1), rel=1e-9)
    assert sum(d * d for d in result.deviations) == pytest.approx(result.statistic, rel=1e-12)


def test_i_squared_is_zero_below_df_and_positive_above() -> None:
    homogeneous = heterogeneity_test([0.021, 0.019, 0.024, 0.020], [0.004, 0.006, 0.011, 0.003])
    assert homogeneous.statistic < homogeneous.df
    assert homogeneous.i_squared == 0.0
    spread = heterogeneity_test([0.1, 0.3, -0.2], [0.1, 0.14, 0.12])
    assert spread.i_squared == pytest.approx((spread.statistic - 2) / spread.statistic, rel=1e-12)


def test_pooled_effect_minimises_q_by_brute_force() -> None:
    estimates, std_errors = [0.4, 0.9, -0.1, 0.25], [0.2, 0.35, 0.15, 0.1]
    result = heterogeneity_test(estimates, std_errors)
    grid = np.linspace(-1.0, 1.0, 200_001)
    q_on_grid = sum(((e - grid) / s) ** 2 for e, s in zip(estimates, std_errors, strict=True))
    assert result.pooled_effect == pytest.approx(grid[np.argmin(q_on_grid)], abs=1e-5)
    assert result.statistic == pytest.approx(q_on_grid.min(), rel=1e-8)
    # Curvature of Q at its minimum is 2 / pooled variance.
    assert result.pooled_std_error == pytest.approx(
        1.0 / math.sqrt(sum(1.0 / s**2 for s in std_errors)), rel=1e-12
    )


@pytest.mark.parametrize("robust_covariance", ["HC0", "HC1", "HC2", "HC3"])
def test_is_the_robust_wald_test_of_the_interaction_in_ols(
    rng: np.random.Generator, robust_covariance: str
) -> None:
    experiment = segmented_experiment(
        rng,
        units_per_arm=[400, 900, 250],
        effects=[0.3, 0.1, -0.2],
        sds=[1.0, 2.0, 1.5],
        baselines=[1.0, 2.0, 3.0],
    )
    estimates, std_errors = experiment.difference_of_means()
    result = heterogeneity_test(estimates.tolist(), std_errors.tolist())
    segment, treated = experiment.segment, experiment.treated
    design = np.column_stack(
        [
            np.ones_like(treated),
            segment == 1,
            segment == 2,
            treated,
            treated * (segment == 1),
            treated * (segment == 2),
        ]
    ).astype(float)
    fit = sm.OLS(experiment.y, design).fit(cov_type=robust_covariance)
    wald = fit.wald_test(np.eye(6)[4:], use_f=False, scalar=True)
    if robust_covariance == "HC2":
        # In the saturated cell-means model HC2 gives each cell s²/n: exactly the Welch variances.
        assert result.statistic == pytest.approx(float(wald.statistic), rel=1e-9)
    else:
        assert result.statistic == pytest.approx(float(wald.statistic), rel=0.02)
    assert result.p_value == pytest.approx(float(wald.pvalue), rel=0.05)
    assert fit.params[3] == pytest.approx(estimates[0], rel=1e-9)


def test_rejection_rate_under_a_homogeneous_effect_is_alpha(rng: np.random.Generator) -> None:
    reps = 4000
    estimates, std_errors = segment_estimates(
        rng, reps=reps, units_per_arm=[300, 800, 150], effects=[0.2, 0.2, 0.2], sds=[1.0, 2.0, 0.5]
    )
    p_values = np.array(
        [
            heterogeneity_test(e.tolist(), s.tolist()).p_value
            for e, s in zip(estimates, std_errors, strict=True)
        ]
    )
    # Monte Carlo SE of a 0.05 rate over 4000 reps: sqrt(0.05 * 0.95 / 4000) = 0.0034; ±3 SE.
    assert 0.04 <= np.mean(p_values < 0.05) <= 0.06
    # And the whole null distribution is uniform, not only its 5% tail.
    assert stats.kstest(p_values, "uniform").pvalue > 0.001


def test_power_against_a_planted_reversal_matches_closed_forms(
    rng: np.random.Generator,
) -> None:
    reps, n, sds = 2000, [400, 400, 400], [1.0, 1.0, 1.0]
    effects = np.array([0.3, 0.3, -0.15])
    estimates, std_errors = segment_estimates(
        rng, reps=reps, units_per_arm=n, effects=effects.tolist(), sds=sds
    )
    results = [
        heterogeneity_test(e.tolist(), s.tolist(), labels=["ios", "android", "web"])
        for e, s in zip(estimates, std_errors, strict=True)
    ]
    # Var(mean_t - mean_c) = (1.5² + 1) sd² / n; every segment has the same se here.
    se = math.sqrt(3.25 / 400)
    deviations = effects - effects.mean()
    noncentrality = np.sum(deviations**2) / se**2
    expected_power = stats.ncx2.sf(stats.chi2.isf(0.05, 2), 2, noncentrality)
    power = np.mean([r.p_value < 0.05 for r in results])
    # MC SE of a power near 0.94 over 2000 reps: 0.0053; ±4 SE plus the error of treating the
    # estimated se as known.
    assert abs(power - expected_power) < 0.025
    # web is named when its estimate t is below -z se while the pooled (equal weights: the mean)
    # effect is positive, i.e. the ios + android sum S ~ N(0.6, 2 se²) exceeds -t:
    # P = ∫_{-inf}^{-z se} φ_web(t) P(S > -t) dt, by numerical integration.
    z = stats.norm.ppf(0.975)
    expected_named, _ = integrate.quad(
        lambda t: (
            stats.norm.pdf(t, effects[2], se)
            * stats.norm.sf(-t, effects[0] + effects[1], math.sqrt(2) * se)
        ),
        -np.inf,
        -z * se,
    )
    named = np.mean([r.reversals == ("web",) for r in results])
    # MC SE near 0.37 over 2000 reps: 0.011; ±4 SE.
    assert abs(named - expected_named) < 0.045
    assert np.mean([r.largest_deviation == "web" for r in results]) > 0.95


def test_planted_reversal_is_named() -> None:
    result = heterogeneity_test(
        [0.8, 1.1, -0.9, 0.2], [0.2, 0.3, 0.25, 0.4], labels=["ios", "android", "web", "tv"]
    )
    assert result.p_value < 1e-6
    assert result.largest_deviation == "web"
    assert result.reversals == ("web",)
    assert result.pooled_effect > 0
    assert result.labels == ("ios", "android", "web", "tv")


def test_reversal_needs_the_segment_interval_to_exclude_zero() -> None:
    z = stats.norm.ppf(0.975)
    inside = heterogeneity_test(
        [1.0, 1.0, -z * 0.5 * 0.999], [0.1, 0.1, 0.5], labels=["a", "b", "c"]
    )
    outside = heterogeneity_test(
        [1.0, 1.0, -z * 0.5 * 1.001], [0.1, 0.1, 0.5], labels=["a", "b", "c"]
    )
    assert inside.reversals == ()
    assert outside.reversals == ("c",)
    # A wider interval (smaller alpha) keeps the same segment inside it.
    assert (
        heterogeneity_test(
            [1.0, 1.0, -z * 0.5 * 1.001], [0.1, 0.1, 0.5], labels=["a", "b", "c"], alpha=0.01
        ).reversals
        == ()
    )


def test_same_sign_outlier_is_the_largest_deviation_but_not_a_reversal() -> None:
    result = heterogeneity_test([0.1, 0.12, 0.9], [0.05, 0.05, 0.1], labels=["a", "b", "c"])
    assert result.largest_deviation == "c"
    assert result.reversals == ()
    assert result.p_value < 1e-6


def test_no_reversal_without_a_pooled_direction() -> None:
    result = heterogeneity_test([1.0, -1.0], [0.1, 0.1])
    assert result.pooled_effect == 0.0
    assert result.reversals == ()


def test_identical_estimates_have_no_heterogeneity() -> None:
    result = heterogeneity_test([0.3, 0.3, 0.3], [0.1, 0.2, 0.3])
    assert (result.statistic, result.p_value, result.i_squared) == (0.0, 1.0, 0.0)
    assert result.pooled_effect == pytest.approx(0.3, rel=1e-12)


def test_shift_and_order_invariance() -> None:
    estimates, std_errors = [0.4, 0.9, -0.1, 0.25], [0.2, 0.35, 0.15, 0.1]
    base = heterogeneity_test(estimates, std_errors)
    shifted = heterogeneity_test([e + 10.0 for e in estimates], std_errors)
    reordered = heterogeneity_test(estimates[::-1], std_errors[::-1])
    assert shifted.statistic == pytest.approx(base.statistic, rel=1e-9)
    assert shifted.pooled_effect == pytest.approx(base.pooled_effect + 10.0, rel=1e-12)
    assert reordered.statistic == pytest.approx(base.statistic, rel=1e-12)
    # Default labels are positions: the same segment is at the mirrored position.
    assert reordered.largest_deviation == str(3 - int(base.largest_deviation))
    assert reordered.deviations == pytest.approx(base.deviations[::-1], rel=1e-12)


@pytest.mark.parametrize("unusable_std_error", [0.0, math.inf, math.nan])
def test_segments_without_a_usable_std_error_are_dropped(unusable_std_error: float) -> None:
    result = heterogeneity_test(
        [0.1, 0.3, 5.0, -0.2], [0.1, 0.14, unusable_std_error, 0.12], labels=["a", "b", "c", "d"]
    )
    reference = heterogeneity_test([0.1, 0.3, -0.2], [0.1, 0.14, 0.12], labels=["a", "b", "d"])
    assert result.dropped == ("c",)
    assert result.labels == ("a", "b", "d")
    assert result.df == 2
    assert result.statistic == reference.statistic


def test_nan_estimate_is_dropped() -> None:
    result = heterogeneity_test([0.1, math.nan, 0.3], [0.1, 0.1, 0.1])
    assert result.dropped == ("1",)
    assert result.df == 1


@pytest.mark.parametrize(
    ("estimates", "std_errors", "labels", "message"),
    [
        ([0.1, 0.2], [0.1], None, "one standard error per segment"),
        ([0.1, 0.2], [0.1, 0.1], ["a"], "one label per segment"),
        ([0.1, 0.2], [0.1, 0.1], ["a", "a"], "labels must be unique"),
        ([0.1, 0.2], [0.1, -0.1], None, "segment 1 is negative"),
        ([0.1, math.inf], [0.1, 0.1], None, "segment 1 is infinite"),
        ([0.1], [0.1], None, "at least 2 segments"),
        ([0.1, 0.2], [0.1, 0.0], ["a", "b"], r"1 of 2 are usable \(dropped: 'b'\)"),
    ],
)
def test_invalid_heterogeneity_inputs_are_explained(
    estimates: list[float], std_errors: list[float], labels: list[str] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        heterogeneity_test(estimates, std_errors, labels)


def test_invalid_alpha_is_explained() -> None:
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        heterogeneity_test([0.1, 0.2], [0.1, 0.1], alpha=1.5)


# --- trend_test -----------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(
    ("days", "estimates", "std_errors"),
    [
        (
            [0, 1, 2, 3, 4, 5, 6],
            [0.9, 0.75, 0.62, 0.55, 0.5, 0.41, 0.4],
            [0.08, 0.08, 0.09, 0.09, 0.1, 0.1, 0.11],
        ),
        ([3, 0, 1.5, 7, 2], [0.2, 0.1, -0.05, 0.3, 0.15], [0.1, 0.3, 0.05, 0.2, 0.12]),
        ([10, 11, 12, 13], [1.0, 1.0, 1.0, 1.0], [0.5, 0.4, 0.3, 0.2]),
    ],
)
def test_slope_matches_statsmodels_wls_with_known_variances(
    days: list[float], estimates: list[float], std_errors: list[float], alternative: Alternative
) -> None:
    result = trend_test(days, estimates, std_errors, alternative=alternative)
    design = sm.add_constant(np.array(days, dtype=float))
    fit = sm.WLS(np.array(estimates), design, weights=1.0 / np.array(std_errors) ** 2).fit(
        cov_type="fixed scale"
    )
    assert result.slope == pytest.approx(fit.params[1], rel=1e-9, abs=1e-12)
    assert result.intercept == pytest.approx(fit.params[0], rel=1e-9)
    assert result.slope_std_error == pytest.approx(fit.bse[1], rel=1e-9)
    assert result.statistic == pytest.approx(fit.tvalues[1], rel=1e-9, abs=1e-12)
    two_sided = fit.pvalues[1]
    expected_p = {
        "two-sided": two_sided,
        "greater": stats.norm.sf(fit.tvalues[1]),
        "less": stats.norm.cdf(fit.tvalues[1]),
    }[alternative]
    assert result.p_value == pytest.approx(expected_p, rel=1e-9)
    first, last = fit.predict(np.array([[1.0, min(days)], [1.0, max(days)]]))
    assert result.first_effect == pytest.approx(first, rel=1e-9)
    assert result.last_effect == pytest.approx(last, rel=1e-9)
    assert result.n_days == len(days)


def test_two_days_is_the_difference_over_the_gap() -> None:
    result = trend_test([2, 5], [0.8, 0.5], [0.1, 0.2])
    assert result.slope == pytest.approx((0.5 - 0.8) / 3, rel=1e-12)
    assert result.slope_std_error == pytest.approx(math.sqrt(0.1**2 + 0.2**2) / 3, rel=1e-12)
    assert (result.first_effect, result.last_effect) == pytest.approx((0.8, 0.5), rel=1e-12)
    assert result.intercept == pytest.approx(0.8 - 2 * result.slope, rel=1e-12)


def test_false_positive_rate_without_a_trend(rng: np.random.Generator) -> None:
    reps, days = 4000, np.arange(14)
    std_errors = 0.05 + 0.01 * days  # later days have fewer units
    estimates = daily_estimates(rng, reps=reps, true_effects=[0.3] * 14, std_errors=std_errors)
    two_sided = np.array([trend_test(days, e, std_errors).p_value for e in estimates])
    less = np.array(
        [trend_test(days, e, std_errors, alternative="less").p_value for e in estimates]
    )
    # Monte Carlo SE of a 0.05 rate over 4000 reps: 0.0034; ±3 SE.
    assert 0.04 <= np.mean(two_sided < 0.05) <= 0.06
    assert 0.04 <= np.mean(less < 0.05) <= 0.06
    assert stats.kstest(two_sided, "uniform").pvalue > 0.001


def test_power_against_a_decaying_effect_matches_the_normal_closed_form(
    rng: np.random.Generator,
) -> None:
    reps, days = 2000, np.arange(10)
    std_errors = np.full(10, 0.1)
    true_slope = -0.02
    estimates = daily_estimates(
        rng, reps=reps, true_effects=0.5 + true_slope * days, std_errors=std_errors
    )
    power = np.mean(
        [trend_test(days, e, std_errors, alternative="less").p_value < 0.05 for e in estimates]
    )
    slope_se = 0.1 / math.sqrt(np.sum((days - days.mean()) ** 2))
    expected = stats.norm.cdf(-true_slope / slope_se - stats.norm.ppf(0.95))
    # MC SE near 0.6 over 2000 reps: 0.011; ±4 SE.
    assert abs(power - expected) < 0.045


def test_autocorrelated_days_inflate_the_false_positive_rate_as_documented(
    rng: np.random.Generator,
) -> None:
    reps, days, rho = 3000, np.arange(14), 0.6
    std_errors = np.full(14, 0.1)
    estimates = daily_estimates(
        rng, reps=reps, true_effects=[0.3] * 14, std_errors=std_errors, autocorrelation=rho
    )
    rate = np.mean([trend_test(days, e, std_errors).p_value < 0.05 for e in estimates])
    # The slope is a linear contrast c·y; its true variance under AR(1) is c' Σ c.
    contrast = (days - days.mean()) / np.sum((days - days.mean()) ** 2)
    lags = np.abs(np.subtract.outer(days, days))
    true_se = math.sqrt(contrast @ (rho**lags * 0.01) @ contrast)
    reported_se = 0.1 / math.sqrt(np.sum((days - days.mean()) ** 2))
    expected_rate = 2 * stats.norm.sf(1.96 * reported_se / true_se)
    assert expected_rate > 0.15
    # MC SE near 0.2 over 3000 reps: 0.0073; ±4 SE.
    assert abs(rate - expected_rate) < 0.03


def test_unusable_days_are_dropped() -> None:
    result = trend_test([0, 1, 2, 3], [0.5, math.nan, 0.4, 0.3], [0.1, 0.1, 0.1, 0.0])
    assert result.dropped_days == (1.0, 3.0)
    assert result.n_days == 2
    assert result.slope == pytest.approx(-0.05, rel=1e-12)


@pytest.mark.parametrize(
    ("days", "estimates", "std_errors", "message"),
    [
        ([0, 1], [0.1, 0.2, 0.3], [0.1, 0.1, 0.1], "one day per estimate"),
        ([0, 1, 2], [0.1, 0.2, 0.3], [0.1, 0.1], "one standard error per day"),
        ([0, math.nan], [0.1, 0.2], [0.1, 0.1], "must be finite"),
        ([0, 1], [0.1, 0.2], [0.1, -0.1], "day 1 is negative"),
        ([1, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.1, 0.1], "at least 2 distinct days"),
        ([0, 1], [0.1, 0.2], [0.1, math.nan], "at least 2 distinct days"),
    ],
)
def test_invalid_trend_inputs_are_explained(
    days: list[float], estimates: list[float], std_errors: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        trend_test(days, estimates, std_errors)


def test_invalid_alternative_is_explained() -> None:
    with pytest.raises(ValueError, match="alternative must be one of"):
        trend_test([0, 1], [0.1, 0.2], [0.1, 0.1], alternative="both")  # type: ignore[arg-type]


def test_method_names_the_side_of_the_slope() -> None:
    assert trend_test([0, 1], [0.1, 0.2], [0.1, 0.1], alternative="less").method.startswith(
        "one-sided (slope < 0)"
    )


# --- interaction_test: the robust covariance as an option ---------------------------------


def interacted_wald_statistic(
    y: np.ndarray, segment: np.ndarray, treated: np.ndarray, cov_type: str
) -> tuple[float, float]:
    """Wald chi-square and p-value of the interaction terms of ``y ~ C(segment) * treated`` fitted
    by statsmodels OLS on the unit-level data with a robust covariance."""
    values = np.unique(segment)
    columns = [np.ones_like(y), treated]
    columns += [(segment == value).astype(float) for value in values[1:]]
    columns += [treated * (segment == value) for value in values[1:]]
    fit = sm.OLS(y, np.column_stack(columns)).fit(cov_type=cov_type)
    n_interactions = len(values) - 1
    restriction = np.eye(len(columns))[-n_interactions:]
    wald = fit.wald_test(restriction, use_f=False, scalar=True)
    return float(wald.statistic), float(wald.pvalue)


def unequal_arms(
    rng: np.random.Generator, sizes: list[tuple[int, int]], effects: list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit data with unequal arms and heteroskedastic, skewed values per segment."""
    ys, segments, treated = [], [], []
    for index, ((n_c, n_t), effect) in enumerate(zip(sizes, effects, strict=True)):
        ys += [
            rng.gamma(2.0, 1.0 + index, size=n_c),
            rng.gamma(2.0, 1.5 + index, size=n_t) + effect,
        ]
        segments.append(np.full(n_c + n_t, index))
        treated += [np.zeros(n_c), np.ones(n_t)]
    return np.concatenate(ys), np.concatenate(segments), np.concatenate(treated)


def cell_moments(
    y: np.ndarray, segment: np.ndarray, treated: np.ndarray
) -> tuple[list[Moments], list[Moments]]:
    control, treatment = [], []
    for value in np.unique(segment):
        for arm, flag in ((control, 0.0), (treatment, 1.0)):
            arm.append(Moments.from_values(y[(segment == value) & (treated == flag)]))
    return control, treatment


@pytest.mark.parametrize("covariance", ["HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize(
    "sizes", [[(40, 25), (12, 30), (60, 55)], [(8, 5), (6, 9), (30, 4), (15, 15)]]
)
def test_interaction_test_is_the_statsmodels_robust_wald_test(
    rng: np.random.Generator, covariance: Covariance, sizes: list[tuple[int, int]]
) -> None:
    # Small, unequal cells, where the four covariances differ by several per cent.
    y, segment, treated = unequal_arms(rng, sizes, [0.5, -0.3, 0.1, 0.9][: len(sizes)])
    control, treatment = cell_moments(y, segment, treated)
    result = interaction_test(control, treatment, covariance=covariance)
    statistic, p = interacted_wald_statistic(y, segment, treated, covariance)
    assert result.statistic == pytest.approx(statistic, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.df == len(sizes) - 1
    assert covariance in result.method


def test_hc2_is_todays_heterogeneity_test_on_welch_results(rng: np.random.Generator) -> None:
    y, segment, treated = unequal_arms(rng, [(40, 25), (12, 30), (60, 55)], [0.5, -0.3, 0.1])
    control, treatment = cell_moments(y, segment, treated)
    welch = [welch_test(c, t) for c, t in zip(control, treatment, strict=True)]
    today = heterogeneity_test([w.abs_effect for w in welch], [w.std_error for w in welch])
    hc2 = interaction_test(control, treatment)
    assert hc2.statistic == pytest.approx(today.statistic, rel=1e-12)
    assert hc2.pooled_effect == pytest.approx(today.pooled_effect, rel=1e-12)


def test_hc1_is_hc0_times_the_regression_degrees_of_freedom_factor(
    rng: np.random.Generator,
) -> None:
    sizes = [(6, 5), (5, 7), (8, 6)]
    small = cell_moments(*unequal_arms(rng, sizes, [0.5, -0.3, 0.1]))
    total, parameters = sum(n_c + n_t for n_c, n_t in sizes), 2 * len(sizes)
    hc0 = interaction_test(*small, covariance="HC0").statistic
    hc1 = interaction_test(*small, covariance="HC1").statistic
    hc2 = interaction_test(*small, covariance="HC2").statistic
    assert hc1 == pytest.approx(hc0 * (total - parameters) / total, rel=1e-12)
    assert hc2 < hc0  # s²/n > (n - 1) s²/n² in every cell
    large = cell_moments(*unequal_arms(rng, [(6000, 5000), (5000, 7000)], [0.5, -0.3]))
    ratio_large = (
        interaction_test(*large, covariance="HC1").statistic
        / interaction_test(*large, covariance="HC2").statistic
    )
    assert ratio_large == pytest.approx(1.0, abs=1e-3)


def test_interaction_test_drops_a_segment_without_two_units_per_arm(
    rng: np.random.Generator,
) -> None:
    y, segment, treated = unequal_arms(rng, [(40, 25), (1, 30), (60, 55)], [0.5, -0.3, 0.1])
    control, treatment = cell_moments(y, segment, treated)
    result = interaction_test(control, treatment, ["a", "b", "c"], covariance="HC1")
    assert result.dropped == ("b",)
    kept = segment != 1
    statistic, _ = interacted_wald_statistic(y[kept], segment[kept], treated[kept], "HC1")
    assert result.statistic == pytest.approx(statistic, rel=1e-10)


def test_interaction_test_rejects_bad_options() -> None:
    arm = Moments(10, 10.0, 20.0)
    with pytest.raises(ValueError, match="covariance must be one of"):
        interaction_test([arm, arm], [arm, arm], covariance="HC4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both arms in every segment"):
        interaction_test([arm, arm], [arm])
