from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from exp_dagster.stats import Alternative, CovariateMoments, Moments, cuped_test, welch_test
from tests.unit.stats.simulators import correlated_arms

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]


@pytest.fixture
def experiment(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_c, n_t = 700, 900
    c_c, c_t = rng.gamma(2.0, 3.0, size=n_c), rng.gamma(2.0, 3.2, size=n_t)
    return {
        "c_control": c_c,
        "c_treatment": c_t,
        "y_control": 5.0 + 0.8 * c_c + rng.normal(0.0, 2.0, size=n_c),
        "y_treatment": 5.4 + 0.7 * c_t + rng.normal(0.0, 3.0, size=n_t),
    }


def arms(data: dict[str, np.ndarray]) -> tuple[CovariateMoments, CovariateMoments]:
    return (
        CovariateMoments.from_values(data["y_control"], data["c_control"]),
        CovariateMoments.from_values(data["y_treatment"], data["c_treatment"]),
    )


def test_effect_and_theta_match_ols(experiment: dict[str, np.ndarray]) -> None:
    control, treatment = arms(experiment)
    result = cuped_test(control, treatment)
    y = np.concatenate([experiment["y_control"], experiment["y_treatment"]])
    c = np.concatenate([experiment["c_control"], experiment["c_treatment"]])
    is_treatment = np.concatenate([np.zeros(control.n), np.ones(treatment.n)])
    ols = sm.OLS(y, np.column_stack([np.ones_like(y), is_treatment, c])).fit()
    assert result.abs_effect == pytest.approx(ols.params[1], abs=1e-9)
    # mean_control = mean_c(y) - θ (mean_c(c) - mean(c)), so θ can be read back from it.
    theta = (control.mean_y - result.mean_control) / (control.mean_c - c.mean())
    assert theta == pytest.approx(ols.params[2], rel=1e-9)
    assert result.cuped_theta == pytest.approx(ols.params[2], rel=1e-9)
    # With heteroscedastic arms the Welch standard error is close to the HC2 one.
    assert result.std_error == pytest.approx(ols.HC2_se[1], rel=0.02)


def test_adjusted_variances_and_welch(experiment: dict[str, np.ndarray]) -> None:
    control, treatment = arms(experiment)
    result = cuped_test(control, treatment)
    c = np.concatenate([experiment["c_control"], experiment["c_treatment"]])
    theta = (control.mean_y - result.mean_control) / (control.mean_c - c.mean())
    adjusted_c = experiment["y_control"] - theta * (experiment["c_control"] - c.mean())
    adjusted_t = experiment["y_treatment"] - theta * (experiment["c_treatment"] - c.mean())
    reference = welch_test(Moments.from_values(adjusted_c), Moments.from_values(adjusted_t))
    for field in ("mean_control", "mean_treatment", "std_error", "statistic", "p_value"):
        assert getattr(result, field) == pytest.approx(getattr(reference, field), rel=1e-9)
    for field in ("abs_ci_low", "abs_ci_high", "rel_effect", "rel_ci_low", "rel_ci_high"):
        assert getattr(result, field) == pytest.approx(getattr(reference, field), rel=1e-9)
    pooled_adjusted = np.concatenate(
        [adjusted_c - adjusted_c.mean(), adjusted_t - adjusted_t.mean()]
    )
    pooled_raw = np.concatenate(
        [
            experiment["y_control"] - experiment["y_control"].mean(),
            experiment["y_treatment"] - experiment["y_treatment"].mean(),
        ]
    )
    assert result.variance_reduction == pytest.approx(
        1 - (pooled_adjusted @ pooled_adjusted) / (pooled_raw @ pooled_raw), rel=1e-9
    )


def test_variance_reduction_is_rho_squared(rng: np.random.Generator) -> None:
    rho = 0.6
    (control,) = correlated_arms(rng, reps=1, n=20_000, mean=1.0, rho=rho)
    (treatment,) = correlated_arms(rng, reps=1, n=20_000, mean=1.1, rho=rho)
    result = cuped_test(control, treatment)
    assert result.variance_reduction == pytest.approx(rho**2, abs=0.01)
    unadjusted = welch_test(
        Moments(control.n, control.sum_y, control.sum_y2),
        Moments(treatment.n, treatment.sum_y, treatment.sum_y2),
    )
    assert result.std_error == pytest.approx(unadjusted.std_error * math.sqrt(1 - rho**2), rel=0.02)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_constant_covariate_is_plain_welch(
    rng: np.random.Generator, alternative: Alternative
) -> None:
    y_c, y_t = rng.normal(1.0, 1.0, size=50), rng.normal(1.3, 2.0, size=70)
    result = cuped_test(
        CovariateMoments.from_values(y_c, np.full(50, 3.0)),
        CovariateMoments.from_values(y_t, np.full(70, 3.0)),
        alternative=alternative,
    )
    welch = welch_test(Moments.from_values(y_c), Moments.from_values(y_t), alternative=alternative)
    assert result.variance_reduction == 0.0
    for field in (
        "abs_effect",
        "abs_ci_low",
        "abs_ci_high",
        "p_value",
        "rel_ci_low",
        "rel_ci_high",
    ):
        assert getattr(result, field) == pytest.approx(getattr(welch, field), rel=1e-9)
    assert "CUPED" in result.method


def test_zero_variance_metric() -> None:
    control = CovariateMoments.from_values([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    treatment = CovariateMoments.from_values([2.0, 2.0], [5.0, 1.0])
    result = cuped_test(control, treatment)
    assert (result.abs_effect, result.p_value, result.variance_reduction) == (0.0, 1.0, 0.0)


def test_zero_adjusted_control_mean_gives_nan_relative_fields() -> None:
    control = CovariateMoments.from_values([-1.0, 1.0, 0.0], [0.0, 0.0, 0.0])
    treatment = CovariateMoments.from_values([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    result = cuped_test(control, treatment, alternative="less")
    assert result.abs_ci_low == -math.inf
    assert all(math.isnan(v) for v in (result.rel_effect, result.rel_ci_low, result.rel_ci_high))


def test_fewer_than_two_units_is_explained() -> None:
    one = CovariateMoments.from_values([1.0], [1.0])
    two = CovariateMoments.from_values([1.0, 2.0], [1.0, 3.0])
    with pytest.raises(ValueError, match="cuped_test needs at least 2 units"):
        cuped_test(two, one)


def test_false_positive_rate_is_alpha(rng: np.random.Generator) -> None:
    reps = 2000
    controls = correlated_arms(rng, reps=reps, n=200, mean=1.0, rho=0.7)
    treatments = correlated_arms(rng, reps=reps, n=200, mean=1.0, rho=0.7)
    rejections = [
        cuped_test(c, t).p_value < 0.05 for c, t in zip(controls, treatments, strict=True)
    ]
    assert 0.035 <= np.mean(rejections) <= 0.065


def test_theta_pooled_ignoring_the_arm_written_out() -> None:
    rng = np.random.default_rng(12)
    c_control, c_treatment = rng.gamma(2.0, 3.0, 400), rng.gamma(2.0, 3.0, 500)
    y_control = 2.0 + 0.8 * c_control + rng.normal(0, 2.0, 400)
    y_treatment = 2.6 + 0.8 * c_treatment + rng.normal(0, 2.0, 500)
    result = cuped_test(
        CovariateMoments.from_values(y_control, c_control),
        CovariateMoments.from_values(y_treatment, c_treatment),
        theta="pooled",
    )
    y_all, c_all = (
        np.concatenate([y_control, y_treatment]),
        np.concatenate([c_control, c_treatment]),
    )
    theta = np.cov(y_all, c_all, ddof=1)[0, 1] / np.var(c_all, ddof=1)
    adjusted_control = y_control - theta * (c_control - c_all.mean())
    adjusted_treatment = y_treatment - theta * (c_treatment - c_all.mean())
    reference = stats.ttest_ind(adjusted_treatment, adjusted_control, equal_var=False)
    assert result.abs_effect == pytest.approx(
        adjusted_treatment.mean() - adjusted_control.mean(), rel=1e-10
    )
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    assert result.cuped_theta == pytest.approx(theta, rel=1e-10)
    assert "ignoring the arm" in result.method
    within = cuped_test(
        CovariateMoments.from_values(y_control, c_control),
        CovariateMoments.from_values(y_treatment, c_treatment),
    )
    # Both remove most of the covariate's variance and agree closely on a small effect.
    assert within.abs_effect == pytest.approx(result.abs_effect, rel=0.02)
    with pytest.raises(ValueError, match="theta must be 'within' or 'pooled'"):
        cuped_test(
            CovariateMoments.from_values(y_control, c_control),
            CovariateMoments.from_values(y_treatment, c_treatment),
            theta="arm",  # type: ignore[arg-type]
        )


def test_theta_pooled_a_a_false_positive_rate() -> None:
    rng = np.random.default_rng(13)
    reps, n, rejections = 3000, 200, 0
    for _ in range(reps):
        c = rng.gamma(2.0, 3.0, (2, n))
        y = 1.0 + 0.9 * c + rng.normal(0, 2.0, (2, n))
        result = cuped_test(
            CovariateMoments.from_values(y[0], c[0]),
            CovariateMoments.from_values(y[1], c[1]),
            theta="pooled",
        )
        rejections += result.p_value < 0.05
    # MC SE 0.004.
    assert abs(rejections / reps - 0.05) <= 0.013
