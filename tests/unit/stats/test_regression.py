from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.cuped import cuped_test
from exp_dagster.stats.effects import EffectEstimate
from exp_dagster.stats.means import welch_test
from exp_dagster.stats.moments import CovariateMoments, Moments, RatioMoments
from exp_dagster.stats.ratio import ratio_test
from exp_dagster.stats.regression import CrossMoments, cuped_ratio_test, regression_adjusted_test
from tests.unit.stats.simulators_regression import (
    cross_moments_of,
    linearised_correlation,
    ratio_arms_with_pre_period,
    ratio_units_with_pre_period,
    skip_unless_run_slow,
)

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
NUMERIC_FIELDS = [f.name for f in fields(EffectEstimate) if f.name not in ("method",)]


def assert_same_estimate(result: EffectEstimate, reference: EffectEstimate, rel: float) -> None:
    for name in NUMERIC_FIELDS:
        value, expected = getattr(result, name), getattr(reference, name)
        if isinstance(expected, float) and math.isinf(expected):
            assert value == expected, name
        elif isinstance(expected, float | int):
            assert value == pytest.approx(expected, rel=rel, abs=1e-15), name


# --- CrossMoments ---------------------------------------------------------------------------


def test_cross_moments_match_numpy(rng: np.random.Generator) -> None:
    values = rng.normal(size=(50, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0, 0, 2.0]])
    arm = CrossMoments.from_values(values, names=("y", "c1", "c2"))
    assert arm.n == 50 and arm.dimension == 3 and arm.names == ("y", "c1", "c2")
    np.testing.assert_allclose(arm.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(arm.covariance, np.cov(values, rowvar=False), rtol=1e-10)


def test_cross_moments_store_tuples_of_floats_and_are_hashable() -> None:
    arm = CrossMoments(n=2, sums=[1, 3], products=[[1, 2], [2, 5]])  # type: ignore[arg-type]
    assert arm.sums == (1.0, 3.0) and arm.products == ((1.0, 2.0), (2.0, 5.0))
    assert hash(arm) == hash(CrossMoments(n=2, sums=(1.0, 3.0), products=((1, 2), (2, 5))))


def test_cross_moments_with_few_units() -> None:
    empty = CrossMoments.from_values(np.zeros((0, 2)))
    assert np.all(np.isnan(empty.mean))
    one = CrossMoments.from_values([[1.0, 2.0]])
    np.testing.assert_array_equal(one.covariance, np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n": -1, "sums": (1.0,), "products": ((1.0,),)}, "non-negative integer"),
        ({"n": 2.5, "sums": (1.0,), "products": ((1.0,),)}, "non-negative integer"),
        ({"n": 2, "sums": (), "products": ()}, "non-empty flat sequence"),
        ({"n": 2, "sums": (1.0, 2.0), "products": ((1.0, 2.0),)}, "2x2 matrix"),
        ({"n": 2, "sums": (1.0, 2.0), "products": ((1.0, 2.0), (2.0,))}, "2x2 matrix"),
        ({"n": 2, "sums": (1.0, 2.0), "products": ((1.0, 2.0), (2.5, 3.0))}, "symmetric"),
        ({"n": 2, "sums": (1.0, math.nan), "products": ((1.0, 2.0), (2.0, 3.0))}, "finite"),
        (
            {"n": 2, "sums": (1.0, 2.0), "products": ((1.0, 2.0), (2.0, 3.0)), "names": ("y",)},
            "name each of the 2",
        ),
    ],
)
def test_cross_moments_reject_malformed_input(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrossMoments(**arguments)  # type: ignore[arg-type]


def test_from_values_needs_a_matrix() -> None:
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        CrossMoments.from_values([1.0, 2.0, 3.0])


# --- regression_adjusted_test ---------------------------------------------------------------


@pytest.fixture
def experiment(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Three correlated covariates, heteroscedastic arms of different sizes, a true effect 0.4."""
    n_c, n_t = 700, 900
    mixing = np.array([[1.0, 0.4, 0.2], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    c_c = rng.gamma(2.0, 1.5, size=(n_c, 3)) @ mixing
    c_t = rng.gamma(2.0, 1.5, size=(n_t, 3)) @ mixing
    slopes = np.array([0.8, -0.5, 0.3])
    return {
        "control": np.column_stack([5.0 + c_c @ slopes + rng.normal(0, 2.0, n_c), c_c]),
        "treatment": np.column_stack([5.4 + c_t @ slopes + rng.normal(0, 3.0, n_t), c_t]),
    }


def ols_with_treatment(data: dict[str, np.ndarray]) -> sm.regression.linear_model.RegressionResults:
    """``y ~ 1 + treatment + c1 + c2 + c3`` on the raw units."""
    stacked = np.vstack([data["control"], data["treatment"]])
    is_treatment = np.r_[np.zeros(len(data["control"])), np.ones(len(data["treatment"]))]
    design = np.column_stack([np.ones(len(stacked)), is_treatment, stacked[:, 1:]])
    return sm.OLS(stacked[:, 0], design).fit()


def test_effect_equals_ols_treatment_coefficient(experiment: dict[str, np.ndarray]) -> None:
    result = regression_adjusted_test(
        CrossMoments.from_values(experiment["control"]),
        CrossMoments.from_values(experiment["treatment"]),
    )
    ols = ols_with_treatment(experiment)
    assert result.abs_effect == pytest.approx(ols.params[1], abs=1e-9)
    # Welch on adjusted values with heteroscedastic arms is close to the HC2 standard error.
    assert result.std_error == pytest.approx(ols.HC2_se[1], rel=0.02)
    assert "3 covariates" in result.method


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_is_welch_on_values_adjusted_by_the_ols_slopes(
    experiment: dict[str, np.ndarray], alternative: Alternative
) -> None:
    ols = ols_with_treatment(experiment)
    slopes = ols.params[2:]
    pooled_mean = np.vstack([experiment["control"], experiment["treatment"]])[:, 1:].mean(axis=0)
    adjusted = {
        arm: values[:, 0] - (values[:, 1:] - pooled_mean) @ slopes
        for arm, values in experiment.items()
    }
    reference = welch_test(
        Moments.from_values(adjusted["control"]),
        Moments.from_values(adjusted["treatment"]),
        alpha=0.1,
        alternative=alternative,
    )
    result = regression_adjusted_test(
        CrossMoments.from_values(experiment["control"]),
        CrossMoments.from_values(experiment["treatment"]),
        alpha=0.1,
        alternative=alternative,
    )
    assert_same_estimate(result, reference, rel=1e-9)
    # Within-arm R² of the covariates: residual sums of squares of y ~ arm vs y ~ arm + c.
    stacked = np.vstack([experiment["control"], experiment["treatment"]])
    is_treatment = np.r_[
        np.zeros(len(experiment["control"])), np.ones(len(experiment["treatment"]))
    ]
    arm_only = sm.OLS(stacked[:, 0], np.column_stack([np.ones_like(is_treatment), is_treatment]))
    assert result.variance_reduction == pytest.approx(1 - ols.ssr / arm_only.fit().ssr, rel=1e-9)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_one_covariate_is_cuped(
    experiment: dict[str, np.ndarray], alternative: Alternative
) -> None:
    control, treatment = experiment["control"][:, :2], experiment["treatment"][:, :2]
    result = regression_adjusted_test(
        CrossMoments.from_values(control),
        CrossMoments.from_values(treatment),
        alternative=alternative,
    )
    reference = cuped_test(
        CovariateMoments.from_values(control[:, 0], control[:, 1]),
        CovariateMoments.from_values(treatment[:, 0], treatment[:, 1]),
        alternative=alternative,
    )
    assert_same_estimate(result, reference, rel=1e-12)


@pytest.mark.parametrize(
    "extra_column",
    [
        pytest.param(lambda c: np.full(len(c), 3.0), id="constant"),
        pytest.param(lambda c: np.full(len(c), 0.1), id="constant-inexact-in-binary"),
        pytest.param(lambda c: c[:, 1].copy(), id="duplicate"),
        pytest.param(lambda c: 2.0 * c[:, 1] - c[:, 2] + 5.0, id="linear-combination"),
    ],
)
def test_redundant_covariates_change_nothing(
    experiment: dict[str, np.ndarray], extra_column: Callable[[np.ndarray], np.ndarray]
) -> None:
    plain = regression_adjusted_test(
        CrossMoments.from_values(experiment["control"]),
        CrossMoments.from_values(experiment["treatment"]),
    )
    augmented = regression_adjusted_test(
        *(
            CrossMoments.from_values(np.column_stack([values, extra_column(values)]))
            for values in (experiment["control"], experiment["treatment"])
        )
    )
    for name in ("abs_effect", "std_error", "p_value", "variance_reduction", "mean_control"):
        assert getattr(augmented, name) == pytest.approx(getattr(plain, name), rel=1e-7), name


def test_only_constant_covariates_is_welch(rng: np.random.Generator) -> None:
    y_c, y_t = rng.normal(1.0, 1.0, size=40), rng.normal(1.5, 2.0, size=60)
    result = regression_adjusted_test(
        CrossMoments.from_values(np.column_stack([y_c, np.full(40, 0.3), np.ones(40)])),
        CrossMoments.from_values(np.column_stack([y_t, np.full(60, 0.3), np.ones(60)])),
    )
    assert result.variance_reduction == 0.0
    assert_same_estimate(
        result,
        welch_test(Moments.from_values(y_c), Moments.from_values(y_t)),
        rel=1e-9,
    )


def test_variance_reduction_is_the_population_r_squared(rng: np.random.Generator) -> None:
    n = 20_000
    covariance = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    slopes = np.array([0.6, -0.4, 0.5])
    explained = float(slopes @ covariance @ slopes)
    r_squared = explained / (explained + 1.0)

    def arm(shift: float) -> CrossMoments:
        c = rng.multivariate_normal(np.zeros(3), covariance, size=n)
        return CrossMoments.from_values(
            np.column_stack([shift + c @ slopes + rng.normal(size=n), c])
        )

    result = regression_adjusted_test(arm(0.0), arm(0.1))
    # The sample R² of 20k units per arm has SE about 2 r (1 - r²) / sqrt(2n) ≈ 0.004.
    assert result.variance_reduction == pytest.approx(r_squared, abs=0.015)


def test_false_positive_rate_with_three_covariates(rng: np.random.Generator) -> None:
    reps, n = 2000, 200
    covariance = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    slopes = np.array([0.6, -0.4, 0.5])

    def arms() -> list[CrossMoments]:
        c = rng.standard_normal(size=(reps, n, 3)) @ np.linalg.cholesky(covariance).T
        y = 1.0 + c @ slopes + rng.standard_t(5, size=(reps, n))
        return cross_moments_of(np.concatenate([y[..., None], c], axis=-1))

    rejections = [
        regression_adjusted_test(control, treatment).p_value < 0.05
        for control, treatment in zip(arms(), arms(), strict=True)
    ]
    # MC SE of a rate of 0.05 over 2000 reps: sqrt(0.05 * 0.95 / 2000) ≈ 0.0049; ±3 SE.
    assert 0.035 <= np.mean(rejections) <= 0.065


@pytest.mark.parametrize(
    ("control", "treatment", "message"),
    [
        (
            CrossMoments.from_values([[1.0], [2.0], [3.0]]),
            CrossMoments.from_values([[1.0], [2.0], [4.0]]),
            "at least one covariate",
        ),
        (
            CrossMoments.from_values([[1.0, 2.0], [2.0, 1.0], [3.0, 0.0]]),
            CrossMoments.from_values([[1.0, 2.0, 3.0], [2.0, 1.0, 0.0]]),
            "control has 2 and treatment has 3",
        ),
        (
            CrossMoments.from_values([[1.0, 2.0], [2.0, 1.0]], names=("y", "c")),
            CrossMoments.from_values([[1.0, 2.0], [2.0, 1.0]], names=("c", "y")),
            "same order",
        ),
        (
            CrossMoments.from_values([[1.0, 2.0]]),
            CrossMoments.from_values([[1.0, 2.0], [2.0, 1.0]]),
            "at least 2 units",
        ),
    ],
)
def test_regression_adjusted_rejects_bad_arms(
    control: CrossMoments, treatment: CrossMoments, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        regression_adjusted_test(control, treatment)


# --- cuped_ratio_test -----------------------------------------------------------------------


def brute_force_cuped_ratio(
    control: np.ndarray, treatment: np.ndarray
) -> tuple[float, float, float, float, float]:
    """``(adjusted R_c, adjusted R_t, standard error, variance reduction, θ)`` from explicit
    linearised values of the raw ``(y, x, y_pre, x_pre)`` arrays."""
    linearised = []
    for arm in (control, treatment):
        y, x, y_pre, x_pre = arm.T
        post = (y - y.sum() / x.sum() * x) / x.mean()
        pre = (y_pre - y_pre.sum() / x_pre.sum() * x_pre) / x_pre.mean()
        linearised.append((post, pre))
    # Pool within arms: centre each arm, then stack.
    post_all = np.concatenate([post - post.mean() for post, _ in linearised])
    pre_all = np.concatenate([pre - pre.mean() for _, pre in linearised])
    theta = (post_all @ pre_all) / (pre_all @ pre_all)
    pooled_pre = (control[:, 2].sum() + treatment[:, 2].sum()) / (
        control[:, 3].sum() + treatment[:, 3].sum()
    )
    adjusted, variance = [], 0.0
    for arm, (post, pre) in zip((control, treatment), linearised, strict=True):
        ratio, ratio_pre = arm[:, 0].sum() / arm[:, 1].sum(), arm[:, 2].sum() / arm[:, 3].sum()
        adjusted.append(ratio - theta * (ratio_pre - pooled_pre))
        variance += np.var(post - theta * pre, ddof=1) / len(arm)
    residual = post_all - theta * pre_all
    reduction = 1 - (residual @ residual) / (post_all @ post_all)
    return adjusted[0], adjusted[1], math.sqrt(variance), reduction, theta


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_cuped_ratio_matches_brute_force(
    rng: np.random.Generator, alternative: Alternative
) -> None:
    control = ratio_units_with_pre_period(rng, (800,), mean_rate=0.2)
    treatment = ratio_units_with_pre_period(rng, (950,), mean_rate=0.2, post_shift=0.02)
    result = cuped_ratio_test(
        CrossMoments.from_values(control),
        CrossMoments.from_values(treatment),
        alpha=0.1,
        alternative=alternative,
    )
    mean_c, mean_t, se, reduction, theta = brute_force_cuped_ratio(control, treatment)
    z = (mean_t - mean_c) / se
    crit = stats.norm.ppf(0.95 if alternative == "two-sided" else 0.9)
    p_value = {
        "two-sided": 2 * stats.norm.sf(abs(z)),
        "greater": stats.norm.sf(z),
        "less": stats.norm.cdf(z),
    }[alternative]
    assert (result.mean_control, result.mean_treatment) == pytest.approx((mean_c, mean_t), rel=1e-9)
    assert result.std_error == pytest.approx(se, rel=1e-9)
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-8)
    assert result.variance_reduction == pytest.approx(reduction, rel=1e-9)
    assert result.cuped_theta == pytest.approx(theta, rel=1e-9)
    if alternative != "less":
        assert result.abs_ci_low == pytest.approx(mean_t - mean_c - crit * se, rel=1e-9)
    if alternative != "greater":
        assert result.abs_ci_high == pytest.approx(mean_t - mean_c + crit * se, rel=1e-9)
    assert result.variance_reduction > 0.3  # the pre-period is informative here (rho² ≈ 0.50)


def ratio_moments(arm: CrossMoments) -> RatioMoments:
    """The post-period ``(y, x)`` part of a ``(y, x, y_pre, x_pre)`` arm."""
    products = arm.products
    return RatioMoments(
        n=arm.n,
        sum_y=arm.sums[0],
        sum_x=arm.sums[1],
        sum_y2=products[0][0],
        sum_x2=products[1][1],
        sum_xy=products[0][1],
    )


def test_pre_period_without_variation_is_ratio_test(rng: np.random.Generator) -> None:
    # y_pre = 0.3 x_pre exactly: the linearised pre-period values are 0 up to rounding, θ = 0.
    arms = []
    for shift in (0.0, 0.03):
        units = ratio_units_with_pre_period(rng, (600,), mean_rate=0.2, post_shift=shift)
        units[:, 2] = 0.3 * units[:, 3]
        arms.append(CrossMoments.from_values(units))
    result = cuped_ratio_test(*arms)
    assert result.variance_reduction == 0.0
    assert_same_estimate(result, ratio_test(*map(ratio_moments, arms)), rel=1e-12)


def test_useless_pre_period_approaches_ratio_test(rng: np.random.Generator) -> None:
    arms = []
    for shift in (0.0, 0.03):
        units = ratio_units_with_pre_period(rng, (20_000,), mean_rate=0.2, post_shift=shift)
        # Pre-period of unrelated units: the true θ is 0.
        unrelated = ratio_units_with_pre_period(rng, (20_000,), mean_rate=0.2)
        units[:, 2:] = unrelated[:, 2:]
        arms.append(CrossMoments.from_values(units))
    result = cuped_ratio_test(*arms)
    plain = ratio_test(*map(ratio_moments, arms))
    # The sample rho² of independent values is about 1/(2n) = 2.5e-5.
    assert 0.0 <= result.variance_reduction < 1e-3
    assert result.std_error == pytest.approx(plain.std_error, rel=1e-3)
    # θ ~ 1/sqrt(2n) moves the estimate by a small fraction of its standard error.
    assert abs(result.abs_effect - plain.abs_effect) < 0.05 * plain.std_error


def test_cuped_ratio_variance_reduction_is_rho_squared(rng: np.random.Generator) -> None:
    rho = linearised_correlation(mean_rate=0.2)
    control = ratio_units_with_pre_period(rng, (20_000,), mean_rate=0.2)
    treatment = ratio_units_with_pre_period(rng, (20_000,), mean_rate=0.2, post_shift=0.02)
    result = cuped_ratio_test(
        CrossMoments.from_values(control), CrossMoments.from_values(treatment)
    )
    # Sample rho² over 40k units: SE about 2 rho (1 - rho²) / sqrt(40k) ≈ 0.007.
    assert result.variance_reduction == pytest.approx(rho**2, abs=0.025)


def ratio_calibration(
    rng: np.random.Generator, *, reps: int, n: int, post_shift: float
) -> tuple[list[EffectEstimate], np.ndarray]:
    """CUPED-ratio results, and the unadjusted differences of ratios, on the same experiments."""
    controls = ratio_arms_with_pre_period(rng, reps=reps, n=n, mean_rate=0.2)
    treatments = ratio_arms_with_pre_period(
        rng, reps=reps, n=n, mean_rate=0.2, post_shift=post_shift
    )
    pairs = list(zip(controls, treatments, strict=True))
    unadjusted = np.array([t.sums[0] / t.sums[1] - c.sums[0] / c.sums[1] for c, t in pairs])
    return [cuped_ratio_test(c, t) for c, t in pairs], unadjusted


def test_cuped_ratio_false_positive_rate(rng: np.random.Generator) -> None:
    adjusted, _ = ratio_calibration(rng, reps=4000, n=200, post_shift=0.0)
    rate = np.mean([result.p_value < 0.05 for result in adjusted])
    # MC SE of a rate of 0.05 over 4000 reps: sqrt(0.05 * 0.95 / 4000) ≈ 0.0034; ±2.9 SE.
    assert 0.04 <= rate <= 0.06


def check_ratio_coverage(
    rng: np.random.Generator, *, reps: int, n: int, coverage_bounds: tuple[float, float]
) -> None:
    post_shift = 0.05
    adjusted, unadjusted = ratio_calibration(rng, reps=reps, n=n, post_shift=post_shift)
    true_effect = post_shift * (1 - 0.2)
    covered = np.mean([r.abs_ci_low <= true_effect <= r.abs_ci_high for r in adjusted])
    assert coverage_bounds[0] <= covered <= coverage_bounds[1]
    effects = np.array([r.abs_effect for r in adjusted])
    # Unbiased up to O(1/n): the mean of the estimates has SE sd / sqrt(reps).
    assert abs(effects.mean() - true_effect) < 4 * effects.std() / math.sqrt(reps)
    # The reported variance matches the spread of the estimates (a sample variance has relative
    # SE sqrt(2 / reps): 3.2 % for 2000 reps), and CUPED shrinks it by about 1 - rho² = 0.50.
    tolerance = 4 * math.sqrt(2 / reps)
    assert np.mean([r.std_error**2 for r in adjusted]) == pytest.approx(
        effects.var(), rel=tolerance
    )
    rho = linearised_correlation(mean_rate=0.2)
    assert effects.var() / unadjusted.var() == pytest.approx(1 - rho**2, rel=tolerance)


def test_cuped_ratio_coverage_and_variance_of_the_estimate(rng: np.random.Generator) -> None:
    # MC SE of a coverage of 0.95 over 2000 reps ≈ 0.0049; ±3 SE.
    check_ratio_coverage(rng, reps=2000, n=200, coverage_bounds=(0.935, 0.965))


@pytest.mark.slow
def test_cuped_ratio_calibration_long_run(
    rng: np.random.Generator, request: pytest.FixtureRequest
) -> None:
    skip_unless_run_slow(request)
    # MC SE over 20000 reps ≈ 0.0015; ±3.3 SE.
    check_ratio_coverage(rng, reps=20_000, n=1000, coverage_bounds=(0.945, 0.955))
    adjusted, _ = ratio_calibration(rng, reps=20_000, n=1000, post_shift=0.0)
    assert 0.045 <= np.mean([result.p_value < 0.05 for result in adjusted]) <= 0.055
    reduction = np.mean([result.variance_reduction for result in adjusted])
    assert reduction == pytest.approx(linearised_correlation(mean_rate=0.2) ** 2, abs=0.005)


@pytest.mark.parametrize(
    ("control_units", "treatment_units", "message"),
    [
        ([[1, 2, 1], [0, 1, 1]], [[1, 2, 1], [0, 1, 1]], "4 components"),
        ([[0, 0, 1, 2], [0, 0, 0, 1]], [[1, 2, 1, 2], [0, 1, 0, 1]], "control arm's denominators"),
        (
            [[1, 2, 1, 2], [0, 1, 0, 1]],
            [[1, 2, 0, 0], [0, 1, 0, 0]],
            "treatment arm's pre-period denominators",
        ),
        ([[1, 2, 1, 2]], [[1, 2, 1, 2], [0, 1, 0, 1]], "at least 2 units"),
    ],
)
def test_cuped_ratio_rejects_bad_arms(
    control_units: list[list[float]], treatment_units: list[list[float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cuped_ratio_test(
            CrossMoments.from_values(control_units), CrossMoments.from_values(treatment_units)
        )
