from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from exp_dagster.stats import Alternative, Moments, welch_test
from tests.unit.stats.simulators import normal_arms

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


@pytest.fixture
def samples(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(5.0, 1.0, size=40), rng.normal(5.4, 2.5, size=65)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_matches_scipy_welch(
    samples: tuple[np.ndarray, np.ndarray], alternative: Alternative, alpha: float
) -> None:
    control, treatment = samples
    result = welch_test(
        Moments.from_values(control),
        Moments.from_values(treatment),
        alpha=alpha,
        alternative=alternative,
    )
    reference = stats.ttest_ind(treatment, control, equal_var=False, alternative=alternative)
    interval = reference.confidence_interval(confidence_level=1 - alpha)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.abs_ci_low == pytest.approx(interval.low, rel=1e-10)
    assert result.abs_ci_high == pytest.approx(interval.high, rel=1e-10)
    assert result.abs_effect == pytest.approx(treatment.mean() - control.mean(), rel=1e-12)
    assert result.std_error == pytest.approx(
        math.sqrt(control.var(ddof=1) / 40 + treatment.var(ddof=1) / 65), rel=1e-12
    )
    assert (result.n_control, result.n_treatment) == (40, 65)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_matches_statsmodels_compare_means(
    samples: tuple[np.ndarray, np.ndarray], alternative: Alternative
) -> None:
    control, treatment = samples
    result = welch_test(
        Moments.from_values(control), Moments.from_values(treatment), alternative=alternative
    )
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    sm_alternative = STATSMODELS_ALTERNATIVE[alternative]
    statistic, p_value, _ = compare.ttest_ind(usevar="unequal", alternative=sm_alternative)
    low, high = compare.tconfint_diff(usevar="unequal", alternative=sm_alternative)
    assert (result.statistic, result.p_value) == pytest.approx((statistic, p_value), rel=1e-9)
    assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx((low, high), rel=1e-10)


def test_relative_lift_uses_the_welch_critical_value(
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    control, treatment = samples
    result = welch_test(Moments.from_values(control), Moments.from_values(treatment))
    df = stats.ttest_ind(treatment, control, equal_var=False).df
    mc, mt = control.mean(), treatment.mean()
    var_c, var_t = control.var(ddof=1) / 40, treatment.var(ddof=1) / 65
    se = math.sqrt(var_t / mc**2 + mt**2 * var_c / mc**4)
    margin = stats.t.ppf(0.975, df) * se
    assert result.rel_effect == pytest.approx(mt / mc - 1, rel=1e-12)
    assert (result.rel_ci_low, result.rel_ci_high) == pytest.approx(
        (mt / mc - 1 - margin, mt / mc - 1 + margin), rel=1e-10
    )


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_one_sided_interval_agrees_with_p_value(
    samples: tuple[np.ndarray, np.ndarray], alternative: Alternative
) -> None:
    control, treatment = samples
    result = welch_test(
        Moments.from_values(control), Moments.from_values(treatment), alternative=alternative
    )
    if alternative == "greater":
        assert result.abs_ci_high == math.inf and result.rel_ci_high == math.inf
    if alternative == "less":
        assert result.abs_ci_low == -math.inf and result.rel_ci_low == -math.inf
    assert result.method.startswith("one-sided" if alternative != "two-sided" else "two-sided")
    # The CI for the difference is centred on the effect, so a shift by the lower bound gives
    # a p-value of exactly alpha at the boundary.
    if alternative == "greater":
        shifted = Moments.from_values(treatment - result.abs_ci_low)
        boundary = welch_test(Moments.from_values(control), shifted, alternative="greater")
        assert boundary.p_value == pytest.approx(0.05, rel=1e-8)


def test_one_arm_with_zero_variance_is_a_one_sample_t_test() -> None:
    control = np.array([2.0, 2.0, 2.0, 2.0])
    treatment = np.array([2.5, 3.0, 2.0, 3.5, 2.8])
    result = welch_test(Moments.from_values(control), Moments.from_values(treatment))
    # A constant control arm leaves the treatment mean's noise only: Welch's df becomes n_t - 1.
    reference = stats.ttest_1samp(treatment, popmean=2.0)
    interval = reference.confidence_interval()
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.abs_ci_low == pytest.approx(interval.low - 2.0, rel=1e-10)
    assert result.abs_ci_high == pytest.approx(interval.high - 2.0, rel=1e-10)


def test_both_arms_with_zero_variance() -> None:
    same = welch_test(Moments.from_values([3.0, 3.0]), Moments.from_values([3.0, 3.0, 3.0]))
    assert (same.statistic, same.p_value, same.std_error) == (0.0, 1.0, 0.0)
    assert (same.abs_ci_low, same.abs_ci_high, same.rel_ci_low) == (0.0, 0.0, 0.0)
    shifted = welch_test(Moments.from_values([3.0, 3.0]), Moments.from_values([4.0, 4.0]))
    assert (shifted.statistic, shifted.p_value) == (math.inf, 0.0)
    assert (shifted.abs_ci_low, shifted.abs_ci_high) == (1.0, 1.0)


def test_zero_control_mean_gives_nan_relative_fields() -> None:
    result = welch_test(Moments.from_values([-1.0, 1.0, 0.0]), Moments.from_values([1.0, 2.0]))
    assert result.abs_effect == pytest.approx(1.5)
    assert math.isnan(result.rel_effect)
    assert math.isnan(result.rel_ci_low) and math.isnan(result.rel_ci_high)


def test_fewer_than_two_units_is_explained() -> None:
    with pytest.raises(ValueError, match=r"at least 2 units in each arm; got n_control=1"):
        welch_test(Moments.from_values([1.0]), Moments.from_values([1.0, 2.0]))


def test_invalid_arguments_are_explained() -> None:
    arm = Moments.from_values([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="alpha"):
        welch_test(arm, arm, alpha=0.0)
    with pytest.raises(ValueError, match="alternative"):
        welch_test(arm, arm, alternative="larger")  # type: ignore[arg-type]


def test_false_positive_rate_is_alpha(rng: np.random.Generator) -> None:
    reps = 2000
    controls = normal_arms(rng, reps=reps, n=25, mean=1.0, sd=1.0)
    treatments = normal_arms(rng, reps=reps, n=60, mean=1.0, sd=3.0)
    for alternative in ALTERNATIVES:
        rejections = [
            welch_test(c, t, alternative=alternative).p_value < 0.05
            for c, t in zip(controls, treatments, strict=True)
        ]
        assert 0.035 <= np.mean(rejections) <= 0.065, alternative


def test_interval_coverage(rng: np.random.Generator) -> None:
    reps, effect = 2000, 0.7
    controls = normal_arms(rng, reps=reps, n=25, mean=1.0, sd=1.0)
    treatments = normal_arms(rng, reps=reps, n=60, mean=1.0 + effect, sd=3.0)
    results = [welch_test(c, t) for c, t in zip(controls, treatments, strict=True)]
    covered = [r.abs_ci_low <= effect <= r.abs_ci_high for r in results]
    assert 0.93 <= np.mean(covered) <= 0.97
    # The interval and the p-value are one test: 0 is outside the interval iff p < alpha.
    assert all((r.p_value < 0.05) == (not r.abs_ci_low <= 0 <= r.abs_ci_high) for r in results)


# ── Student's pooled t-test and the paired t-test ───────────────────────────────────────────
from exp_dagster.stats.means import paired_t_test, student_t_test  # noqa: E402
from exp_dagster.stats.moments import RatioMoments  # noqa: E402


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_student_matches_scipy_pooled_t_test(alternative: str) -> None:
    rng = np.random.default_rng(3)
    control, treatment = rng.normal(10.0, 3.0, 40), rng.normal(11.0, 3.0, 55)
    result = student_t_test(
        Moments.from_values(control),
        Moments.from_values(treatment),
        alternative=alternative,  # type: ignore[arg-type]
    )
    reference = stats.ttest_ind(treatment, control, equal_var=True, alternative=alternative)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.df == 93
    interval = reference.confidence_interval(0.95)
    assert result.abs_ci_low == pytest.approx(interval.low, rel=1e-9, abs=1e-12)
    assert result.abs_ci_high == pytest.approx(interval.high, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_paired_matches_scipy_ttest_rel(alternative: str) -> None:
    rng = np.random.default_rng(4)
    baseline = rng.normal(50.0, 10.0, 30)
    before = baseline + rng.normal(0.0, 2.0, 30)
    after = baseline + 1.2 + rng.normal(0.0, 2.0, 30)
    result = paired_t_test(
        RatioMoments.from_values(after, before),
        alternative=alternative,  # type: ignore[arg-type]
    )
    reference = stats.ttest_rel(after, before, alternative=alternative)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    assert result.df == 29
    interval = reference.confidence_interval(0.95)
    assert result.abs_ci_low == pytest.approx(interval.low, rel=1e-9, abs=1e-12)
    assert result.abs_ci_high == pytest.approx(interval.high, rel=1e-9, abs=1e-12)
    # Pairing removes the units' shared level: far narrower than Welch on the same values.
    welch = welch_test(Moments.from_values(before), Moments.from_values(after))
    assert result.std_error < welch.std_error / 3


def test_paired_relative_interval_covers_by_simulation() -> None:
    # The delta-method interval of ȳ/x̄ - 1 with the means' covariance: 95% coverage at n = 200.
    rng = np.random.default_rng(5)
    covered, reps, true_lift = 0, 2000, 0.05
    for _ in range(reps):
        level = rng.gamma(4.0, 5.0, 200)
        before = level + rng.normal(0.0, 3.0, 200)
        after = level * (1 + true_lift) + rng.normal(0.0, 3.0, 200)
        result = paired_t_test(RatioMoments.from_values(after, before))
        covered += result.rel_ci_low <= true_lift <= result.rel_ci_high
    # MC SE sqrt(.95 * .05 / 2000) = 0.0049.
    assert abs(covered / reps - 0.95) <= 0.015
