from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, tt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.cuped import cuped_test
from exp_dagster.stats.effects import relative_lift_test
from exp_dagster.stats.means import welch_test
from exp_dagster.stats.moments import CovariateMoments, Moments
from exp_dagster.stats.power import (
    Distribution,
    PowerSummary,
    achieved_power,
    days_needed,
    minimum_detectable_effect,
    power_summary,
    proportion_variance,
    sample_size,
)
from exp_dagster.stats.proportions import two_proportion_test
from tests.unit.stats.simulators import correlated_arms, normal_arms

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


@pytest.fixture(autouse=True)
def skip_slow_unless_requested(request: pytest.FixtureRequest) -> None:
    """Honour ``--run-slow`` when a conftest registers it; skip slow tests otherwise."""
    if request.node.get_closest_marker("slow") and not request.config.getoption(
        "--run-slow", default=False
    ):
        pytest.skip("slow calibration run; pass --run-slow to include it")


def signed(effect: float, alternative: Alternative) -> float:
    """The effect pointing in the direction of the alternative."""
    return -effect if alternative == "less" else effect


# --- Independent references: statsmodels, closed forms --------------------------------------


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("allocation", [1.0, 0.5, 2.5])
def test_sample_size_matches_statsmodels(alternative: Alternative, allocation: float) -> None:
    sd, mde = 2.0, 0.25
    plan = sample_size(mde, sd**2, alternative=alternative, allocation=allocation)
    reference = NormalIndPower().solve_power(
        effect_size=signed(mde / sd, alternative),
        nobs1=None,
        alpha=0.05,
        power=0.8,
        ratio=allocation,
        alternative=STATSMODELS_ALTERNATIVE[alternative],
    )
    assert plan.n_control == math.ceil(reference)
    assert plan.n_treatment == math.ceil(allocation * reference)
    assert plan.n_total == plan.n_control + plan.n_treatment
    assert (plan.mde, plan.variance_treatment, plan.allocation) == (mde, sd**2, allocation)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_sample_size_with_unequal_variances_matches_statsmodels(alternative: Alternative) -> None:
    # NormalIndPower has one sigma: se**2 = sigma**2 (1/n1 + 1/(ratio n1)). With sigma = sd_c and
    # ratio = allocation * var_c / var_t that is var_c/n1 + var_t/(allocation n1), our se**2.
    var_control, var_treatment, allocation, mde = 1.0, 2.25, 2.0, 0.1
    plan = sample_size(
        mde, var_control, var_treatment, alternative=alternative, allocation=allocation
    )
    reference = NormalIndPower().solve_power(
        effect_size=signed(mde, alternative),
        nobs1=None,
        alpha=0.05,
        power=0.8,
        ratio=allocation * var_control / var_treatment,
        alternative=STATSMODELS_ALTERNATIVE[alternative],
    )
    assert plan.n_control == math.ceil(reference)
    assert plan.n_treatment == math.ceil(allocation * reference)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("effect", [-0.3, -0.05, 0.0, 0.08, 0.2])
def test_achieved_power_matches_statsmodels(alternative: Alternative, effect: float) -> None:
    sd, n_control, n_treatment = 1.5, 400, 1000
    power = achieved_power(
        effect, n_control, n_treatment, sd**2, alpha=0.1, alternative=alternative
    )
    reference = NormalIndPower().power(
        effect_size=effect / sd,
        nobs1=n_control,
        alpha=0.1,
        ratio=n_treatment / n_control,
        alternative=STATSMODELS_ALTERNATIVE[alternative],
    )
    assert power == pytest.approx(reference, rel=1e-10, abs=1e-15)


def test_two_sided_power_includes_the_far_tail() -> None:
    crit = stats.norm.ppf(0.975)
    standardized = 0.5
    # se = sqrt(1/100 + 1/100); effect chosen so that effect / se = 0.5.
    power = achieved_power(0.5 * math.sqrt(0.02), 100, 100, 1.0)
    near_tail = stats.norm.sf(crit - standardized)
    far_tail = stats.norm.cdf(-crit - standardized)
    assert far_tail > 1e-3
    assert power == pytest.approx(near_tail + far_tail, rel=1e-12)
    assert achieved_power(0.0, 100, 100, 1.0) == pytest.approx(0.05, rel=1e-12)
    assert achieved_power(0.0, 100, 100, 1.0, alternative="greater") == pytest.approx(0.05)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("n_treatment", [1000, 400, 2500])
def test_minimum_detectable_effect_matches_statsmodels(
    alternative: Alternative, n_treatment: int
) -> None:
    sd, n_control = 3.0, 1000
    mde = minimum_detectable_effect(n_control, n_treatment, sd**2, alternative=alternative)
    reference = NormalIndPower().solve_power(
        effect_size=None,
        nobs1=n_control,
        alpha=0.05,
        power=0.8,
        ratio=n_treatment / n_control,
        alternative=STATSMODELS_ALTERNATIVE[alternative],
    )
    # statsmodels solves the exact power equation by root finding (tolerance about 1e-5).
    assert mde == pytest.approx(abs(reference) * sd, rel=1e-4)


def test_t_test_needs_slightly_more_units() -> None:
    # A t-test with estimated variances needs about one more unit per arm than the z-test.
    plan = sample_size(0.25, 1.0)
    t_test_units = tt_ind_solve_power(effect_size=0.25, alpha=0.05, power=0.8)
    assert plan.n_control - 1 < t_test_units < plan.n_control + 2


@pytest.mark.parametrize(("variance", "mde"), [(1.0, 0.1), (4.0, 0.05), (0.09, 0.003)])
def test_kohavi_sixteen_sigma_squared_rule(variance: float, mde: float) -> None:
    coefficient = 2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2
    assert coefficient == pytest.approx(15.70, abs=0.005)
    plan = sample_size(mde, variance)
    assert plan.n_control == math.ceil(coefficient * variance / mde**2)
    assert plan.n_control == pytest.approx(16 * variance / mde**2, rel=0.02)


@pytest.mark.parametrize(("p_control", "p_treatment"), [(0.10, 0.11), (0.20, 0.23), (0.5, 0.48)])
def test_proportions_roughly_agree_with_cohens_h(p_control: float, p_treatment: float) -> None:
    # Cohen's h compares arcsine-transformed proportions, whose variance 1/(4n) does not depend
    # on p; our z-test uses p(1 - p) of each arm. The two agree to first order in the difference,
    # so for small differences the sizes are within a fraction of a percent, not exactly equal.
    plan = sample_size(
        abs(p_treatment - p_control),
        proportion_variance(p_control),
        proportion_variance(p_treatment),
    )
    reference = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(p_treatment, p_control), alpha=0.05, power=0.8
    )
    assert plan.n_control == pytest.approx(reference, rel=0.01)


@pytest.mark.parametrize("p", [0.0, 0.03, 0.5, 0.9, 1.0])
def test_proportion_variance_is_bernoulli_variance(p: float) -> None:
    assert proportion_variance(p) == pytest.approx(stats.bernoulli(p).var(), abs=1e-15)


def test_bonferroni_divides_alpha() -> None:
    corrected = sample_size(0.1, 1.0, n_comparisons=3)
    assert corrected.n_control == sample_size(0.1, 1.0, alpha=0.05 / 3).n_control
    assert corrected.n_control > sample_size(0.1, 1.0).n_control
    assert (corrected.alpha, corrected.n_comparisons) == (0.05, 3)
    assert achieved_power(0.1, 500, 500, 1.0, n_comparisons=4) == pytest.approx(
        achieved_power(0.1, 500, 500, 1.0, alpha=0.0125), rel=1e-12
    )
    assert minimum_detectable_effect(500, 500, 1.0, n_comparisons=2) == pytest.approx(
        minimum_detectable_effect(500, 500, 1.0, alpha=0.025), rel=1e-12
    )


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_cuped_variance_scales_sample_size_by_one_minus_rho_squared(rho: float) -> None:
    raw = sample_size(0.02, 1.0)
    adjusted = sample_size(0.02, 1.0 - rho**2)
    assert adjusted.n_control == pytest.approx((1.0 - rho**2) * raw.n_control, abs=1.0)


# --- Round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("allocation", [1.0, 0.3, 3.0])
@pytest.mark.parametrize("n_comparisons", [1, 4])
@pytest.mark.parametrize("target_power", [0.5, 0.8, 0.95])
def test_planned_design_reaches_target_power_and_is_minimal(
    alternative: Alternative, allocation: float, n_comparisons: int, target_power: float
) -> None:
    var_control, var_treatment, mde = 2.0, 3.0, 0.15
    plan = sample_size(
        mde,
        var_control,
        var_treatment,
        power=target_power,
        alternative=alternative,
        allocation=allocation,
        n_comparisons=n_comparisons,
    )

    def power_at(n_control: int, n_treatment: int) -> float:
        return achieved_power(
            signed(mde, alternative),
            n_control,
            n_treatment,
            var_control,
            var_treatment,
            alternative=alternative,
            n_comparisons=n_comparisons,
        )

    assert power_at(plan.n_control, plan.n_treatment) >= target_power
    assert power_at(plan.n_control - 1, plan.n_treatment - 1) < target_power


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(("n_control", "n_treatment"), [(800, 800), (300, 1200), (5000, 2000)])
def test_power_at_minimum_detectable_effect_is_target(
    alternative: Alternative, n_control: int, n_treatment: int
) -> None:
    mde = minimum_detectable_effect(
        n_control, n_treatment, 1.0, 4.0, power=0.9, alternative=alternative
    )
    power = achieved_power(
        signed(mde, alternative), n_control, n_treatment, 1.0, 4.0, alternative=alternative
    )
    # The closed-form MDE ignores the two-sided far tail, Phi(-2 * 1.96 - 1.28) ~ 1e-7, which
    # can only add power; one-sided it is exact up to rounding.
    assert power == pytest.approx(0.9, abs=1e-6)
    assert power >= 0.9 - 1e-12
    plan = sample_size(
        mde, 1.0, 4.0, power=0.9, alternative=alternative, allocation=n_treatment / n_control
    )
    assert plan.n_control in (n_control, n_control + 1)
    assert plan.n_treatment in (n_treatment, n_treatment + 1)


# --- days_needed and power_summary ---------------------------------------------------------


def test_days_needed() -> None:
    assert days_needed(10_000, 2_500, 1_000.0) == 7.5
    assert days_needed(10_000, 10_000, 1_000.0) == 0.0
    assert days_needed(10_000, 11_000, 0.0) == 0.0
    assert days_needed(10_000, 9_999, 0.0) == math.inf


def summary_of(**overrides: object) -> PowerSummary:
    arguments: dict[str, object] = {
        "control_mean": 4.0,
        "variance_control": 9.0,
        "variance_treatment": 10.0,
        "n_control": 20_000,
        "n_treatment": 10_000,
        "target_relative_mde": 0.02,
        "alpha": 0.05,
        "power": 0.8,
        "new_units_per_day": 3_000.0,
    }
    arguments.update(overrides)
    return power_summary(**arguments)  # type: ignore[arg-type]


def test_power_summary_combines_the_parts() -> None:
    summary = summary_of()
    mde = minimum_detectable_effect(20_000, 10_000, 9.0, 10.0)
    assert summary.mde_abs == pytest.approx(mde, rel=1e-12)
    assert summary.mde_rel == pytest.approx(mde / 4.0, rel=1e-12)
    assert summary.power_at_target == pytest.approx(
        achieved_power(0.08, 20_000, 10_000, 9.0, 10.0), rel=1e-12
    )
    plan = sample_size(0.08, 9.0, 10.0, allocation=0.5)
    assert (summary.required_n_control, summary.required_n_treatment) == (
        plan.n_control,
        plan.n_treatment,
    )
    # New units split 2:1 as the current arms: 2000 a day to control, 1000 to treatment.
    expected_days = max((plan.n_control - 20_000) / 2_000.0, (plan.n_treatment - 10_000) / 1_000.0)
    assert summary.days_needed == pytest.approx(expected_days, rel=1e-12)
    assert summary.days_needed > 0.0
    assert not summary.powered
    assert summary.power_at_target < 0.8
    assert summary.mde_rel > 0.02
    assert "two-sided z-test" in summary.method


def test_power_summary_powered_at_the_required_size() -> None:
    first = summary_of()
    assert first.required_n_control is not None and first.required_n_treatment is not None
    enough = summary_of(n_control=first.required_n_control, n_treatment=first.required_n_treatment)
    assert enough.powered
    assert enough.power_at_target >= 0.8
    assert enough.mde_rel <= 0.02
    assert enough.days_needed == 0.0


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_power_summary_uses_magnitudes(alternative: Alternative) -> None:
    positive = summary_of(alternative=alternative)
    negative = summary_of(alternative=alternative, control_mean=-4.0)
    assert positive == negative
    # Power in the alternative's direction, not against it.
    assert positive.power_at_target > 0.5
    assert "one-sided" in positive.method


def test_power_summary_without_new_units_never_finishes() -> None:
    assert summary_of(new_units_per_day=0.0).days_needed == math.inf


def test_power_summary_with_zero_control_mean_has_no_relative_answers() -> None:
    summary = summary_of(control_mean=0.0, n_comparisons=3)
    assert summary.mde_abs == pytest.approx(
        minimum_detectable_effect(20_000, 10_000, 9.0, 10.0, n_comparisons=3)
    )
    assert math.isnan(summary.mde_rel) and math.isnan(summary.power_at_target)
    assert math.isnan(summary.days_needed)
    assert summary.required_n_control is None and summary.required_n_treatment is None
    assert not summary.powered
    assert "Bonferroni" in summary.method


# --- Invalid inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sample_size(0.0, 1.0), "mde must be a positive"),
        (lambda: sample_size(-0.1, 1.0), "mde must be a positive"),
        (lambda: sample_size(0.1, 1.0, allocation=0.0), "allocation must be a positive"),
        (lambda: sample_size(0.1, -1.0), "variance_control must be a finite, non-negative"),
        (lambda: sample_size(0.1, 1.0, math.nan), "variance_treatment must be a finite"),
        (lambda: sample_size(0.1, 0.0, 0.0), "Both per-unit variances are 0"),
        (lambda: sample_size(0.1, 1.0, power=1.0), "power must be between"),
        (lambda: sample_size(0.1, 1.0, power=0.01), "power must be between"),
        (lambda: sample_size(0.1, 1.0, alpha=0.0), "alpha must be strictly between"),
        (lambda: sample_size(0.1, 1.0, alternative="both"), "alternative must be one of"),  # type: ignore[arg-type]
        (lambda: sample_size(0.1, 1.0, n_comparisons=0), "n_comparisons must be a whole"),
        (lambda: sample_size(0.1, 1.0, n_comparisons=2.5), "n_comparisons must be a whole"),  # type: ignore[arg-type]
        (lambda: minimum_detectable_effect(0, 10, 1.0), "needs at least 1 unit in each arm"),
        (lambda: achieved_power(math.inf, 10, 10, 1.0), "effect must be a finite"),
        (lambda: achieved_power(0.1, 10, 0, 1.0), "needs at least 1 unit in each arm"),
        (lambda: proportion_variance(1.2), "p must be a proportion"),
        (lambda: days_needed(-1, 0, 1.0), "required_units is a number of units"),
        (lambda: days_needed(10, 0, -1.0), "units_per_day must be a finite"),
        (lambda: summary_of(control_mean=math.nan), "control_mean must be a finite"),
        (lambda: summary_of(target_relative_mde=0.0), "target_relative_mde must be a positive"),
        (lambda: summary_of(new_units_per_day=math.inf), "new_units_per_day must be a finite"),
    ],
)
def test_invalid_inputs_are_explained(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --- Calibration by simulation -------------------------------------------------------------
# Each scenario plans a design, simulates `reps` experiments at the planned sizes with the true
# effect equal to the MDE, analyses each with the package's own test, and compares the share of
# rejections with the calculated power. Monte Carlo SE at power 0.8: sqrt(0.8 * 0.2 / reps),
# 0.0063 for 4000 reps (tolerance 0.03 = 4.7 SE) and 0.0020 for 40000 reps (0.01 = 5 SE). The
# tests are t-tests or pooled z-tests with estimated variances, not the known-variance z-test of
# the plan; at a few hundred units per arm that moves the power by well under 0.01.

CALIBRATION_RUNS = [
    pytest.param(4_000, 0.03, id="4000-reps"),
    pytest.param(40_000, 0.01, id="40000-reps", marks=pytest.mark.slow),
]


def unadjusted(arm: CovariateMoments) -> Moments:
    return Moments(n=arm.n, sum_y=arm.sum_y, sum_y2=arm.sum_y2)


def rejection_rate(p_values: list[float], alpha: float) -> float:
    return float(np.mean(np.asarray(p_values) < alpha))


@pytest.mark.parametrize(("reps", "tolerance"), CALIBRATION_RUNS)
@pytest.mark.parametrize(
    ("alternative", "allocation", "n_comparisons"),
    [("greater", 2.0, 1), ("less", 1.0, 1), ("two-sided", 0.5, 3)],
)
def test_normal_metric_reaches_planned_power(
    rng: np.random.Generator,
    reps: int,
    tolerance: float,
    alternative: Alternative,
    allocation: float,
    n_comparisons: int,
) -> None:
    sd_control, sd_treatment, mde = 1.0, 1.5, 0.3
    plan = sample_size(
        mde,
        sd_control**2,
        sd_treatment**2,
        alternative=alternative,
        allocation=allocation,
        n_comparisons=n_comparisons,
    )
    effect = signed(mde, alternative)
    planned_power = achieved_power(
        effect,
        plan.n_control,
        plan.n_treatment,
        sd_control**2,
        sd_treatment**2,
        alternative=alternative,
        n_comparisons=n_comparisons,
    )
    # Rounding the sizes up adds a little power.
    assert 0.8 <= planned_power < 0.805
    controls = normal_arms(rng, reps=reps, n=plan.n_control, mean=5.0, sd=sd_control)
    treatments = normal_arms(rng, reps=reps, n=plan.n_treatment, mean=5.0 + effect, sd=sd_treatment)
    p_values = [
        welch_test(c, t, alternative=alternative).p_value
        for c, t in zip(controls, treatments, strict=True)
    ]
    assert rejection_rate(p_values, 0.05 / n_comparisons) == pytest.approx(
        planned_power, abs=tolerance
    )


@pytest.mark.parametrize(("reps", "tolerance"), CALIBRATION_RUNS)
def test_conversion_metric_reaches_planned_power(
    rng: np.random.Generator, reps: int, tolerance: float
) -> None:
    p_control, p_treatment = 0.20, 0.23
    plan = sample_size(
        p_treatment - p_control, proportion_variance(p_control), proportion_variance(p_treatment)
    )
    # A Binomial(n, p) count is the sum of n Bernoulli(p) units.
    successes_control = rng.binomial(plan.n_control, p_control, size=reps)
    successes_treatment = rng.binomial(plan.n_treatment, p_treatment, size=reps)
    p_values = [
        two_proportion_test(int(c), plan.n_control, int(t), plan.n_treatment).p_value
        for c, t in zip(successes_control, successes_treatment, strict=True)
    ]
    assert rejection_rate(p_values, 0.05) == pytest.approx(0.8, abs=tolerance)


@pytest.mark.parametrize(("reps", "tolerance"), CALIBRATION_RUNS)
def test_cuped_reaches_power_planned_with_reduced_variance(
    rng: np.random.Generator, reps: int, tolerance: float
) -> None:
    rho, mde = 0.7, 0.2
    # correlated_arms draws y with sd 1, so its CUPED-adjusted variance is 1 - rho**2.
    plan = sample_size(mde, 1.0 - rho**2)
    assert plan.n_control < 0.52 * sample_size(mde, 1.0).n_control
    controls = correlated_arms(rng, reps=reps, n=plan.n_control, mean=1.0, rho=rho)
    treatments = correlated_arms(rng, reps=reps, n=plan.n_treatment, mean=1.0 + mde, rho=rho)
    cuped_p_values = [cuped_test(c, t).p_value for c, t in zip(controls, treatments, strict=True)]
    assert rejection_rate(cuped_p_values, 0.05) == pytest.approx(0.8, abs=tolerance)
    # Without the adjustment the same sample has only the power of the raw variance.
    raw_power = achieved_power(mde, plan.n_control, plan.n_treatment, 1.0)
    assert raw_power < 0.55
    welch_p_values = [
        welch_test(unadjusted(c), unadjusted(t)).p_value
        for c, t in zip(controls, treatments, strict=True)
    ]
    assert rejection_rate(welch_p_values, 0.05) == pytest.approx(raw_power, abs=tolerance)


@pytest.mark.parametrize(("reps", "tolerance"), CALIBRATION_RUNS)
def test_minimum_detectable_effect_is_detected_with_target_power(
    rng: np.random.Generator, reps: int, tolerance: float
) -> None:
    n_control, n_treatment, sd = 300, 700, 2.0
    mde = minimum_detectable_effect(n_control, n_treatment, sd**2, power=0.7)
    controls = normal_arms(rng, reps=reps, n=n_control, mean=0.0, sd=sd)
    treatments = normal_arms(rng, reps=reps, n=n_treatment, mean=mde, sd=sd)
    p_values = [welch_test(c, t).p_value for c, t in zip(controls, treatments, strict=True)]
    assert rejection_rate(p_values, 0.05) == pytest.approx(0.7, abs=tolerance)


def test_required_information_is_the_fixed_test_information_at_the_mde() -> None:
    # Independent reference: at information I the relative lift's se is 1/sqrt(I), and a
    # two-sided z-test of the mde then has power Phi(mde * sqrt(I) - z_{1-alpha/2}).
    from scipy import stats as scipy_stats

    from exp_dagster.stats import required_information

    for mde, alpha, power in [(0.02, 0.05, 0.8), (0.1, 0.01, 0.9), (0.05, 0.1, 0.5)]:
        information = required_information(mde, alpha=alpha, power=power)
        achieved = scipy_stats.norm.cdf(
            mde * information**0.5 - scipy_stats.norm.isf(alpha / 2)
        ) + scipy_stats.norm.cdf(-mde * information**0.5 - scipy_stats.norm.isf(alpha / 2))
        assert achieved == pytest.approx(power, abs=2e-3)
        one_sided = required_information(mde, alpha=alpha, power=power, alternative="greater")
        assert scipy_stats.norm.cdf(
            mde * one_sided**0.5 - scipy_stats.norm.isf(alpha)
        ) == pytest.approx(power, rel=1e-12)
    with pytest.raises(ValueError, match="relative_mde"):
        required_information(0.0)


# ── the t distribution: noncentral-t power, as statsmodels and R ──────────────────────────────
from statsmodels.stats.power import TTestIndPower  # noqa: E402


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize(("n_c", "n_t", "effect"), [(20, 20, 1.0), (12, 30, 0.8), (200, 150, 0.25)])
def test_t_power_matches_statsmodels(alternative: str, n_c: int, n_t: int, effect: float) -> None:
    signed = -effect if alternative == "less" else effect
    power = achieved_power(signed, n_c, n_t, 1.0, alternative=alternative, distribution="t")  # type: ignore[arg-type]
    reference = TTestIndPower().power(
        signed,
        nobs1=n_c,
        alpha=0.05,
        ratio=n_t / n_c,
        alternative={"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative],
    )
    assert power == pytest.approx(reference, rel=1e-10)
    # Heavier tails than the normal: less power at the same size.
    assert power < achieved_power(signed, n_c, n_t, 1.0, alternative=alternative)  # type: ignore[arg-type]


def test_t_power_matches_r_power_t_test() -> None:
    # R: power.t.test(n = 20, delta = 1) gives 0.8689528 (upper tail only, strict = FALSE); the
    # two-sided power adds the far tail, about 2e-7 here.
    assert achieved_power(1.0, 20, 20, 1.0, distribution="t") == pytest.approx(0.8689528, abs=5e-7)


@pytest.mark.parametrize(("mde", "variance"), [(0.5, 1.0), (0.2, 1.0), (1.2, 2.0)])
def test_t_sample_size_is_the_smallest_that_reaches_power(mde: float, variance: float) -> None:
    plan = sample_size(mde, variance, distribution="t")
    d = mde / math.sqrt(variance)
    reference = TTestIndPower().solve_power(d, power=0.8, alpha=0.05)
    assert plan.n_control == math.ceil(reference - 1e-9)
    assert achieved_power(mde, plan.n_control, plan.n_treatment, variance, distribution="t") >= 0.8
    smaller = plan.n_control - 1
    assert achieved_power(mde, smaller, smaller, variance, distribution="t") < 0.8
    assert plan.n_control >= sample_size(mde, variance).n_control


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_t_sample_size_matches_statsmodels(alternative: Alternative) -> None:
    # "less" detects the effect -mde (this looped for ever before the sign was applied).
    plan = sample_size(0.4, 1.0, alternative=alternative, distribution="t")
    reference = TTestIndPower().solve_power(
        0.4 if alternative == "greater" else -0.4,
        power=0.8,
        alpha=0.05,
        alternative=STATSMODELS_ALTERNATIVE[alternative],
    )
    assert plan.n_control == math.ceil(reference - 1e-9)


def test_t_mde_matches_statsmodels_and_inverts_the_power() -> None:
    mde = minimum_detectable_effect(64, 80, 1.0, distribution="t")
    solver = TTestIndPower()
    reference = solver.solve_power(None, nobs1=64, ratio=80 / 64, power=0.8, alpha=0.05)
    # statsmodels' root finder stops ~1e-6 early (its power there is 0.8 + 9e-7); ours is the
    # root of statsmodels' own power function to 1e-15.
    assert mde == pytest.approx(reference, rel=1e-5)
    assert solver.power(mde, nobs1=64, ratio=80 / 64, alpha=0.05) == pytest.approx(0.8, abs=1e-12)
    assert achieved_power(mde, 64, 80, 1.0, distribution="t") == pytest.approx(0.8, abs=1e-10)
    less = minimum_detectable_effect(64, 80, 1.0, alternative="less", distribution="t")
    assert achieved_power(
        -less, 64, 80, 1.0, alternative="less", distribution="t"
    ) == pytest.approx(0.8, abs=1e-10)


def test_unknown_distribution_is_explained() -> None:
    with pytest.raises(ValueError, match="distribution must be 'normal' or 't'"):
        achieved_power(0.1, 10, 10, 1.0, distribution="cauchy")  # type: ignore[arg-type]


# --- a relative lift (GrowthBook's power convention) ----------------------------------------


def growthbook_lift_variance(variance: float, n: int, mean_a: float, mean_b: float) -> float:
    """GrowthBook's power-technical docs: Var(lift) = s2/N / mu_A**2 + s2/N * mu_B**2 / mu_A**4
    (equal variances s2 and N per variation)."""
    return variance / n / mean_a**2 + variance / n * mean_b**2 / mean_a**4


def growthbook_power(lift: float, variance: float, n: int, mean_a: float, alpha: float) -> float:
    """GrowthBook's two-sided power: 1 - Phi(Z_{1-alpha/2} - D/s_D) + Phi(Z_{alpha/2} - D/s_D)."""
    sigma = math.sqrt(growthbook_lift_variance(variance, n, mean_a, mean_a * (1.0 + lift)))
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    return float(
        1.0
        - stats.norm.cdf(z - lift / sigma)
        + stats.norm.cdf(stats.norm.ppf(alpha / 2) - lift / sigma)
    )


def growthbook_mde(variance: float, n: int, mean_a: float, alpha: float, power: float) -> float:
    """GrowthBook's quadratic, with v = sigma**2 / N:
    mu_B = (mu_A + sqrt(k**2 v (2 - v k**2 / mu_A**2))) / (1 - v k**2 / mu_A**2),
    k = Phi^-1(1 - alpha/2) - Phi^-1(1 - power); the MDE is mu_B / mu_A - 1."""
    k = stats.norm.ppf(1.0 - alpha / 2.0) - stats.norm.ppf(1.0 - power)
    v = variance / n
    denominator = 1.0 - v * k**2 / mean_a**2
    mean_b = (mean_a + math.sqrt(k**2 * v * (2.0 - v * k**2 / mean_a**2))) / denominator
    return mean_b / mean_a - 1.0


@pytest.mark.parametrize(
    ("lift", "variance", "n", "mean_a"),
    [(0.02, 16.0, 6_000, 10.0), (0.1, 0.09, 900, 0.3), (-0.05, 4.0, 2_500, -2.0)],
)
def test_relative_power_matches_growthbooks_formula(
    lift: float, variance: float, n: int, mean_a: float
) -> None:
    ours = achieved_power(lift, n, n, variance, effect_scale="relative", control_mean=mean_a)
    assert ours == pytest.approx(growthbook_power(lift, variance, n, abs(mean_a), 0.05), rel=1e-12)


@pytest.mark.parametrize(
    ("variance", "n", "mean_a", "alpha", "power"),
    [(16.0, 6_000, 10.0, 0.05, 0.8), (0.09, 900, 0.3, 0.1, 0.9), (4.0, 40, 2.0, 0.05, 0.8)],
)
def test_relative_mde_matches_growthbooks_quadratic(
    variance: float, n: int, mean_a: float, alpha: float, power: float
) -> None:
    ours = minimum_detectable_effect(
        n, n, variance, alpha=alpha, power=power, effect_scale="relative", control_mean=mean_a
    )
    assert ours == pytest.approx(growthbook_mde(variance, n, mean_a, alpha, power), rel=1e-12)
    # Larger than the absolute MDE over the mean: the lift's variance grows with the lift.
    absolute = minimum_detectable_effect(n, n, variance, alpha=alpha, power=power) / mean_a
    assert ours > absolute


def test_no_relative_mde_below_growthbooks_condition() -> None:
    # k ≈ 2.8 at alpha 0.05, power 0.8: N must exceed σ² k² / μ² = 4 * 7.85 / 1 ≈ 31.4.
    with pytest.raises(ValueError, match="No relative lift is detectable"):
        minimum_detectable_effect(31, 31, 4.0, effect_scale="relative", control_mean=1.0)
    assert math.isfinite(
        minimum_detectable_effect(32, 32, 4.0, effect_scale="relative", control_mean=1.0)
    )
    summary = power_summary(
        control_mean=1.0, variance_control=4.0, variance_treatment=4.0, n_control=20,
        n_treatment=20, target_relative_mde=0.5, alpha=0.05, power=0.8, new_units_per_day=10.0,
        effect_scale="relative",
    )  # fmt: skip
    assert summary.mde_rel == math.inf and not summary.powered


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_relative_power_is_the_delta_method_z_test_with_unequal_arms(
    alternative: Alternative,
) -> None:
    # Var(mean_t / mean_c - 1) ~ var_t / (n_t mu_c**2) + mu_t**2 var_c / (n_c mu_c**4), at the
    # true mu_t = mu_c (1 + lift).
    lift, mean_c, var_c, var_t, n_c, n_t = 0.04, 5.0, 9.0, 14.0, 3_000, 5_000
    lift = -lift if alternative == "less" else lift
    mean_t = mean_c * (1.0 + lift)
    se = math.sqrt(var_t / (n_t * mean_c**2) + mean_t**2 * var_c / (n_c * mean_c**4))
    crit = stats.norm.ppf(1 - 0.05 / (2 if alternative == "two-sided" else 1))
    expected = {
        "greater": stats.norm.sf(crit - lift / se),
        "less": stats.norm.cdf(-crit - lift / se),
        "two-sided": stats.norm.sf(crit - lift / se) + stats.norm.cdf(-crit - lift / se),
    }[alternative]
    ours = achieved_power(
        lift, n_c, n_t, var_c, var_t, alternative=alternative, effect_scale="relative",
        control_mean=mean_c,
    )  # fmt: skip
    assert ours == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("distribution", ["normal", "t"])
def test_relative_sample_size_and_mde_invert_the_power(
    alternative: Alternative, distribution: Distribution
) -> None:
    options: dict[str, Any] = {
        "alternative": alternative,
        "distribution": distribution,
        "effect_scale": "relative",
        "control_mean": 2.0,
    }
    plan = sample_size(0.15, 3.0, 5.0, allocation=1.5, **options)
    lift = -0.15 if alternative == "less" else 0.15
    reached = achieved_power(lift, plan.n_control, plan.n_treatment, 3.0, 5.0, **options)
    # One control unit fewer (the t design keeps n_t = ceil(allocation * n_c)).
    n_c = plan.n_control - 1
    n_t = plan.n_treatment - 1 if distribution == "normal" else math.ceil(1.5 * n_c)
    fewer = achieved_power(lift, n_c, n_t, 3.0, 5.0, **options)
    assert reached >= 0.8 > fewer
    assert plan.mde == 0.15 and plan.variance_control == 3.0
    mde = minimum_detectable_effect(400, 600, 3.0, 5.0, **options)
    signed_mde = -mde if alternative == "less" else mde
    at_mde = achieved_power(signed_mde, 400, 600, 3.0, 5.0, **options)
    # Exact for one-sided tests and the t-test; the closed form ignores the far tail otherwise.
    exact = alternative != "two-sided" or distribution == "t"
    assert at_mde == pytest.approx(0.8, abs=1e-9 if exact else 1e-6)


def test_relative_power_summary_uses_the_relative_scale() -> None:
    summary = summary_of(effect_scale="relative")
    assert summary.mde_rel == pytest.approx(
        minimum_detectable_effect(
            20_000, 10_000, 9.0, 10.0, effect_scale="relative", control_mean=4.0
        ),
        rel=1e-12,
    )
    assert summary.mde_abs == pytest.approx(summary.mde_rel * 4.0, rel=1e-12)
    assert summary.power_at_target == pytest.approx(
        achieved_power(0.02, 20_000, 10_000, 9.0, 10.0, effect_scale="relative", control_mean=4.0),
        rel=1e-12,
    )
    absolute = summary_of()
    # A positive lift's variance is larger on the relative scale: less power, more units.
    assert summary.power_at_target < absolute.power_at_target
    assert summary.required_n_control > absolute.required_n_control  # type: ignore[operator]
    assert "GrowthBook" in summary.method


def test_relative_power_is_the_rejection_rate_of_the_lift_over_its_delta_method_se(
    rng: np.random.Generator,
) -> None:
    # GrowthBook's model: the estimated lift is normal with the delta-method variance at the
    # true means, and the test divides it by that standard error.
    mean_c, sd, lift, reps = 10.0, 5.0, 0.2, 4_000
    plan = sample_size(lift, sd**2, effect_scale="relative", control_mean=mean_c)
    n_c, n_t = plan.n_control, plan.n_treatment
    planned = achieved_power(lift, n_c, n_t, sd**2, effect_scale="relative", control_mean=mean_c)
    controls = normal_arms(rng, reps=reps, n=n_c, mean=mean_c, sd=sd)
    treatments = normal_arms(rng, reps=reps, n=n_t, mean=mean_c * (1 + lift), sd=sd)
    lifts = np.array([t.mean / c.mean - 1.0 for c, t in zip(controls, treatments, strict=True)])
    mean_t = mean_c * (1.0 + lift)
    true_se = math.sqrt(sd**2 / (n_t * mean_c**2) + mean_t**2 * sd**2 / (n_c * mean_c**4))
    simulated = float(np.mean(np.abs(lifts / true_se) > stats.norm.ppf(0.975)))
    assert simulated == pytest.approx(planned, abs=0.02)  # 3 sd of 4000 draws is 0.019
    # The absolute scale's power at the same sizes ignores the lift's larger variance.
    absolute = achieved_power(lift * mean_c, n_c, n_t, sd**2)
    assert absolute - simulated > 0.04
    # The delta-method z-test with plug-in standard errors rejects more often than planned
    # (its statistic's spread shrinks under the alternative): the plan is conservative for it.
    p_values = [
        relative_lift_test(c.mean, t.mean, c.var / c.n, t.var / t.n)[1]
        for c, t in zip(controls, treatments, strict=True)
    ]
    assert rejection_rate(p_values, 0.05) > planned + 0.02


def test_relative_scale_needs_a_control_mean() -> None:
    with pytest.raises(ValueError, match="needs control_mean"):
        sample_size(0.02, 1.0, effect_scale="relative")
    with pytest.raises(ValueError, match="needs control_mean"):
        achieved_power(0.02, 10, 10, 1.0, effect_scale="relative", control_mean=0.0)
    with pytest.raises(ValueError, match="effect_scale must be"):
        minimum_detectable_effect(10, 10, 1.0, effect_scale="log")  # type: ignore[arg-type]
