"""Fieller's interval for the relative lift, against brute-force inversion and by simulation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, stats

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.cuped import cuped_test
from exp_dagster.stats.effects import EffectEstimate, RelativeCI, relative_lift
from exp_dagster.stats.means import welch_test
from exp_dagster.stats.moments import CovariateMoments, Moments, RatioMoments
from exp_dagster.stats.proportions import two_proportion_test
from exp_dagster.stats.quantile import quantile_test
from exp_dagster.stats.ratio import ratio_test
from tests.unit.stats.simulators import clustered_latencies, normal_arms, quantile_arm

ArmSummaries = tuple[float, float, float, float]
"""``(mean_control, mean_treatment, var_mean_control, var_mean_treatment)``."""


def fieller_by_polynomial_roots(
    mean_control: float,
    mean_treatment: float,
    var_control: float,
    var_treatment: float,
    crit: float,
) -> tuple[float, float]:
    """Lift bounds from ``numpy.roots`` of ``(mt - r mc)**2 - crit**2 (vt + r**2 vc)`` in ``r``."""
    roots = np.roots(
        [
            mean_control**2 - crit**2 * var_control,
            -2.0 * mean_treatment * mean_control,
            mean_treatment**2 - crit**2 * var_treatment,
        ]
    )
    assert np.all(np.isreal(roots))
    low, high = sorted(float(root.real) for root in roots)
    return low - 1.0, high - 1.0


def fieller_by_test_inversion(
    summaries: ArmSummaries, *, alpha: float, alternative: Alternative, df: float
) -> tuple[float, float]:
    """Lift bounds as the ratios ``r`` where the test of ``H0: mt = r mc`` has p-value ``alpha``.

    The statistic ``(mt - r mc) / sqrt(vt + r**2 vc)`` is referred to scipy's t (finite ``df``)
    or normal distribution; the two-sided test rejects on both tails, the one-sided ones on the
    tail that a larger (``"greater"``) or smaller (``"less"``) true ratio would push it to, which
    depends on the sign of ``mc``. Roots are bracketed between the point estimate and a ratio far
    enough out that the test rejects.
    """
    mean_control, mean_treatment, var_control, var_treatment = summaries
    reference = stats.norm if math.isinf(df) else stats.t(df)
    sign = math.copysign(1.0, mean_control)

    def p_value(ratio: float) -> float:
        statistic = (mean_treatment - ratio * mean_control) / math.sqrt(
            var_treatment + ratio**2 * var_control
        )
        if alternative == "two-sided":
            return float(2.0 * reference.sf(abs(statistic)))
        if alternative == "greater":
            return float(reference.sf(sign * statistic))
        return float(reference.cdf(sign * statistic))

    estimate = mean_treatment / mean_control

    def bound(step: float) -> float:
        far = estimate + step
        while p_value(far) >= alpha:
            far += step
        return optimize.brentq(lambda r: p_value(r) - alpha, estimate, far, xtol=1e-14)

    scale = abs(estimate) + 1.0
    low = bound(-scale) - 1.0 if alternative in ("two-sided", "greater") else -math.inf
    high = bound(scale) - 1.0 if alternative in ("two-sided", "less") else math.inf
    return low, high


SUMMARIES: list[ArmSummaries] = [
    (10.0, 11.0, 0.25, 0.36),
    (1.0, 1.2, 0.09, 0.09),  # control mean CV 0.3: strongly asymmetric interval
    (2.0, 1.5, 0.3, 0.05),  # treatment below control
    (-4.0, -5.0, 0.5, 0.8),  # negative means
    (3.0, -0.5, 0.4, 0.2),  # the ratio changes sign
    (5.0, 5.0, 0.0, 0.3),  # a noiseless control: (mt -/+ crit sqrt(vt)) / mc
]


@pytest.mark.parametrize("summaries", SUMMARIES)
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("df", [math.inf, 12.5])
def test_fieller_bounds_invert_the_test_of_a_ratio(
    summaries: ArmSummaries, alternative: Alternative, df: float
) -> None:
    alpha = 0.05
    probability = 1 - alpha / 2 if alternative == "two-sided" else 1 - alpha
    crit = stats.norm.ppf(probability) if math.isinf(df) else stats.t.ppf(probability, df)
    lift, low, high = relative_lift(
        *summaries, alpha=alpha, alternative=alternative, crit=crit, relative_ci="fieller"
    )
    reference_low, reference_high = fieller_by_test_inversion(
        summaries, alpha=alpha, alternative=alternative, df=df
    )
    assert lift == pytest.approx(summaries[1] / summaries[0] - 1.0, rel=1e-12)
    assert low == pytest.approx(reference_low, rel=1e-9, abs=1e-12)
    assert high == pytest.approx(reference_high, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("summaries", SUMMARIES)
def test_fieller_bounds_match_a_grid_of_the_z_test(summaries: ArmSummaries) -> None:
    # The ratios the two-sided z-test does not reject form one interval whose ends are the
    # Fieller bounds, up to the grid step.
    mean_control, mean_treatment, var_control, var_treatment = summaries
    _, low, high = relative_lift(
        *summaries, alpha=0.05, alternative="two-sided", relative_ci="fieller"
    )
    ratios = np.linspace(low + 1 - 1.0, high + 1 + 1.0, 200_001)
    step = ratios[1] - ratios[0]
    statistic = (mean_treatment - ratios * mean_control) / np.sqrt(
        var_treatment + ratios**2 * var_control
    )
    accepted = ratios[np.abs(statistic) <= stats.norm.ppf(0.975)]
    assert accepted.size == round((accepted[-1] - accepted[0]) / step) + 1  # no gaps
    assert accepted[0] - 1 == pytest.approx(low, abs=step)
    assert accepted[-1] - 1 == pytest.approx(high, abs=step)


def test_fieller_approaches_the_delta_method_as_the_coefficients_of_variation_shrink() -> None:
    # Both intervals agree to first order; the gap relative to the half-width is of the order of
    # the coefficient of variation of the control mean.
    relative_gaps = []
    for cv in (0.1, 0.01, 0.001):
        summaries = (50.0, 53.0, (cv * 50.0) ** 2, (cv * 53.0) ** 2)
        _, delta_low, delta_high = relative_lift(*summaries, alpha=0.05, alternative="two-sided")
        _, low, high = relative_lift(
            *summaries, alpha=0.05, alternative="two-sided", relative_ci="fieller"
        )
        half_width = (delta_high - delta_low) / 2
        relative_gaps.append(max(abs(low - delta_low), abs(high - delta_high)) / half_width)
        # Fieller's interval is shifted away from 0 (the direction of the ratio's skew).
        assert low > delta_low and high > delta_high
        assert relative_gaps[-1] < 2 * cv
    assert relative_gaps[1] < 0.1 * relative_gaps[0]
    assert relative_gaps[2] < 0.1 * relative_gaps[1]


def test_unbounded_when_the_control_mean_is_not_significantly_different_from_zero() -> None:
    # mc / sqrt(vc) = 1.8: below the two-sided z (1.96), above the one-sided one (1.645).
    summaries = (1.8, 2.0, 1.0, 0.5)
    for alternative in ("two-sided", "greater", "less"):
        lift, low, high = relative_lift(
            *summaries, alpha=0.05, alternative=alternative, relative_ci="fieller"
        )
        assert lift == pytest.approx(2.0 / 1.8 - 1)
        if alternative == "two-sided":
            assert (low, high) == (-math.inf, math.inf)
        else:
            assert math.isfinite(low if alternative == "greater" else high)
    # At a 90% two-sided level the same numbers give a bounded interval.
    _, low, high = relative_lift(
        *summaries, alpha=0.1, alternative="two-sided", relative_ci="fieller"
    )
    assert math.isfinite(low) and math.isfinite(high)
    # On the boundary mc**2 == crit**2 vc the set is unbounded too.
    assert relative_lift(
        1.0, 1.5, 0.25, 0.1, alpha=0.05, alternative="two-sided", crit=2.0, relative_ci="fieller"
    )[1:] == (-math.inf, math.inf)
    # A zero control mean leaves the lift itself undefined, as with the delta method.
    undefined = relative_lift(
        0.0, 1.0, 0.1, 0.1, alpha=0.05, alternative="two-sided", relative_ci="fieller"
    )
    assert all(math.isnan(value) for value in undefined)


def test_welch_test_reports_an_unbounded_fieller_interval(rng: np.random.Generator) -> None:
    control = rng.normal(0.2, 2.0, size=30)  # mean ~0.2, standard error ~0.37
    control += 0.2 - control.mean()
    treatment = rng.normal(1.0, 2.0, size=30)
    result = welch_test(
        Moments.from_values(control), Moments.from_values(treatment), relative_ci="fieller"
    )
    assert math.isfinite(result.rel_effect) and math.isfinite(result.abs_ci_low)
    assert (result.rel_ci_low, result.rel_ci_high) == (-math.inf, math.inf)


def _raw_welch_case(
    rng: np.random.Generator,
) -> tuple[Callable[..., EffectEstimate], float, ArmSummaries]:
    control, treatment = rng.normal(2.0, 1.5, size=40), rng.normal(2.5, 2.5, size=55)

    def run(**kwargs: object) -> EffectEstimate:
        return welch_test(Moments.from_values(control), Moments.from_values(treatment), **kwargs)

    df = stats.ttest_ind(treatment, control, equal_var=False).df
    summaries = (
        control.mean(),
        treatment.mean(),
        control.var(ddof=1) / 40,
        treatment.var(ddof=1) / 55,
    )
    return run, stats.t.ppf(0.975, df), summaries


def _proportions_case(
    rng: np.random.Generator,
) -> tuple[Callable[..., EffectEstimate], float, ArmSummaries]:
    del rng

    def run(**kwargs: object) -> EffectEstimate:
        return two_proportion_test(30, 400, 45, 380, **kwargs)

    p_control, p_treatment = 30 / 400, 45 / 380
    summaries = (
        p_control,
        p_treatment,
        p_control * (1 - p_control) / 400,
        p_treatment * (1 - p_treatment) / 380,
    )
    return run, stats.norm.ppf(0.975), summaries


def _ratio_case(
    rng: np.random.Generator,
) -> tuple[Callable[..., EffectEstimate], float, ArmSummaries]:
    arms = []
    summaries = []
    for rate in (0.10, 0.12):
        x = 1.0 + rng.poisson(3.0, size=300)
        y = rng.binomial(x.astype(np.int64), rng.beta(20 * rate, 20 * (1 - rate), size=300))
        y = y.astype(float)
        ratio = y.sum() / x.sum()
        arms.append(RatioMoments.from_values(y, x))
        # The linearised per-unit values of the ratio of sums, their variance over n.
        summaries.append((ratio, np.var(y - ratio * x, ddof=1) / (300 * x.mean() ** 2)))

    def run(**kwargs: object) -> EffectEstimate:
        return ratio_test(arms[0], arms[1], **kwargs)

    (mc, vc), (mt, vt) = summaries
    return run, stats.norm.ppf(0.975), (mc, mt, vc, vt)


def _cuped_case(
    rng: np.random.Generator,
) -> tuple[Callable[..., EffectEstimate], float, ArmSummaries]:
    c_control, c_treatment = rng.normal(5.0, 1.0, size=60), rng.normal(5.0, 1.0, size=70)
    y_control = 1.0 + 0.8 * c_control + rng.normal(0.0, 1.0, size=60)
    y_treatment = 1.3 + 0.8 * c_treatment + rng.normal(0.0, 1.5, size=70)

    def run(**kwargs: object) -> EffectEstimate:
        return cuped_test(
            CovariateMoments.from_values(y_control, c_control),
            CovariateMoments.from_values(y_treatment, c_treatment),
            **kwargs,
        )

    # theta is the OLS slope of the covariate in y ~ 1 + treatment + c.
    y = np.concatenate([y_control, y_treatment])
    c = np.concatenate([c_control, c_treatment])
    is_treatment = np.concatenate([np.zeros(60), np.ones(70)])
    theta = sm.OLS(y, np.column_stack([np.ones_like(y), is_treatment, c])).fit().params[2]
    adjusted_control = y_control - theta * (c_control - c.mean())
    adjusted_treatment = y_treatment - theta * (c_treatment - c.mean())
    df = stats.ttest_ind(adjusted_treatment, adjusted_control, equal_var=False).df
    summaries = (
        adjusted_control.mean(),
        adjusted_treatment.mean(),
        adjusted_control.var(ddof=1) / 60,
        adjusted_treatment.var(ddof=1) / 70,
    )
    return run, stats.t.ppf(0.975, df), summaries


CASES = {
    "welch": _raw_welch_case,
    "proportions": _proportions_case,
    "ratio": _ratio_case,
    "cuped": _cuped_case,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_public_tests_compute_fieller_from_their_arm_variances(
    case: str, rng: np.random.Generator
) -> None:
    run, crit, summaries = CASES[case](rng)
    delta, fieller = run(), run(relative_ci="fieller")
    assert fieller.relative_ci == "fieller" and delta.relative_ci == "delta"
    assert fieller.method.endswith(
        "; relative lift CI by Fieller's theorem (excludes 0 exactly when the absolute CI does)"
    )
    assert delta.method.endswith("; relative lift CI by delta method")
    assert fieller.method.split(";")[0] == delta.method.split(";")[0]
    for field in ("abs_effect", "abs_ci_low", "abs_ci_high", "p_value", "statistic", "rel_effect"):
        assert getattr(fieller, field) == getattr(delta, field)
    low, high = fieller_by_polynomial_roots(*summaries, crit)
    assert (fieller.rel_ci_low, fieller.rel_ci_high) == pytest.approx((low, high), rel=1e-8)


def test_quantile_test_takes_relative_ci(rng: np.random.Generator) -> None:
    # The quantile test's arm standard errors come from its histogram; read them back from the
    # delta interval (two equations: Var(abs) = vc + vt and the delta variance of the lift).
    arms = []
    for scale in (1.0, 1.3):
        observations, unit_ids = clustered_latencies(rng, n_units=300, scale=scale)
        arms.append(quantile_arm(observations, unit_ids, 300, 0.9))
    delta = quantile_test(arms[0], arms[1], level=0.9)
    fieller = quantile_test(arms[0], arms[1], level=0.9, relative_ci="fieller")
    assert "relative lift CI by Fieller's theorem" in fieller.method
    assert (fieller.abs_ci_low, fieller.p_value) == (delta.abs_ci_low, delta.p_value)
    z = stats.norm.ppf(0.975)
    mc, mt = delta.mean_control, delta.mean_treatment
    var_lift = ((delta.rel_ci_high - delta.rel_ci_low) / (2 * z)) ** 2
    var_control = (var_lift - delta.std_error**2 / mc**2) / (mt**2 / mc**4 - 1 / mc**2)
    var_treatment = delta.std_error**2 - var_control
    low, high = fieller_by_polynomial_roots(mc, mt, var_control, var_treatment, z)
    assert (fieller.rel_ci_low, fieller.rel_ci_high) == pytest.approx((low, high), rel=1e-6)


def test_invalid_relative_ci_is_explained() -> None:
    with pytest.raises(ValueError, match=r"relative_ci must be one of 'delta', 'fieller'"):
        relative_lift(1.0, 1.1, 0.1, 0.1, alpha=0.05, alternative="two-sided", relative_ci="logit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"got 'Fieller'"):
        welch_test(
            Moments.from_values([1.0, 2.0]),
            Moments.from_values([2.0, 3.0]),
            relative_ci="Fieller",  # type: ignore[arg-type]
        )


# Coverage where the delta method undercovers: n = 100 units per arm with unit sd 3 around a
# control mean of 1, so the control mean has coefficient of variation 0.3; the true lift is 0.2.
COVERAGE_REPS = 10_000
TRUE_LIFT = 0.2
# Monte Carlo standard errors over 10,000 replicates: sqrt(0.95 * 0.05 / 10_000) = 0.0022 for a
# coverage near 0.95, sqrt(0.025 * 0.975 / 10_000) = 0.0016 for a one-tail miss rate near 0.025.
SE_COVERAGE = 0.0022
SE_TAIL = 0.0016


@pytest.fixture
def noisy_control_experiments(rng: np.random.Generator) -> list[tuple[Moments, Moments]]:
    controls = normal_arms(rng, reps=COVERAGE_REPS, n=100, mean=1.0, sd=3.0)
    treatments = normal_arms(rng, reps=COVERAGE_REPS, n=100, mean=1.0 + TRUE_LIFT, sd=3.0)
    return list(zip(controls, treatments, strict=True))


def _miss_rates(
    experiments: list[tuple[Moments, Moments]], alternative: Alternative, relative_ci: RelativeCI
) -> tuple[float, float]:
    """Shares of experiments whose interval lies above / below the true lift."""
    above = below = 0
    for control, treatment in experiments:
        result = welch_test(control, treatment, alternative=alternative, relative_ci=relative_ci)
        above += result.rel_ci_low > TRUE_LIFT
        below += result.rel_ci_high < TRUE_LIFT
    return above / len(experiments), below / len(experiments)


def test_fieller_keeps_its_two_sided_coverage_where_the_delta_method_does_not(
    noisy_control_experiments: list[tuple[Moments, Moments]],
) -> None:
    delta_above, delta_below = _miss_rates(noisy_control_experiments, "two-sided", "delta")
    fieller_above, fieller_below = _miss_rates(noisy_control_experiments, "two-sided", "fieller")
    # Seen with this seed: delta covers 0.936, all of its misses below the truth (0.064 vs a
    # nominal 0.025); Fieller covers 0.967, missing 0.008 above and 0.025 below (its interval is
    # unbounded in 8.4% of the experiments, which adds coverage).
    assert 1 - delta_above - delta_below < 0.95 - 4 * SE_COVERAGE
    assert delta_below > 0.025 + 10 * SE_TAIL
    assert 1 - fieller_above - fieller_below > 0.95 - 3 * SE_COVERAGE
    assert max(fieller_above, fieller_below) < 0.025 + 4 * SE_TAIL


def test_fieller_upper_bound_is_calibrated_where_the_delta_bound_is_not(
    noisy_control_experiments: list[tuple[Moments, Moments]],
) -> None:
    # One-sided upper bounds ("less"): the delta bound is too low when the control mean is noisy.
    _, delta_below = _miss_rates(noisy_control_experiments, "less", "delta")
    _, fieller_below = _miss_rates(noisy_control_experiments, "less", "fieller")
    # Seen with this seed: coverage 0.904 (delta) and 0.951 (Fieller), nominal 0.95.
    assert delta_below > 0.05 + 10 * 0.0022
    assert abs(fieller_below - 0.05) < 3 * 0.0022  # MC SE sqrt(0.05 * 0.95 / 10_000)
