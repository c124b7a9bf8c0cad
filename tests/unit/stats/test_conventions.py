"""The peer libraries' conventions as keywords of the tests (issue 19): the reference distribution
(``distribution``), the p-value of the relative lift (``p_value_scale``), a proportion's pooled
interval (``pooled_ci``) and its clipping to [-1, 1] (``clip``). Each is checked against scipy,
statsmodels, or the peer's formula written out here (GrowthBook's gbstats ``TTest``, R's
``prop.test``, spotify-confidence's statsmodels z helpers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats import proportion
from statsmodels.stats.weightstats import _zconfint_generic, _zstat_generic

from exp_dagster.stats import (
    Alternative,
    CovariateMoments,
    Moments,
    RatioMoments,
    cuped_test,
    ratio_test,
    relative_lift_test,
    student_t_test,
    two_proportion_test,
    welch_test,
)
from exp_dagster.stats.effects import reference_df
from exp_dagster.stats.stratification import post_stratified_test

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


@pytest.fixture(scope="module")
def values() -> tuple[np.ndarray, np.ndarray]:
    """Skewed per-unit values, unequal arms and spreads."""
    rng = np.random.default_rng(1919)
    return rng.gamma(2.0, 5.0, 60), rng.gamma(2.0, 6.5, 45)


# ── the reference distribution ──────────────────────────────────────────────────────────────


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_welch_referred_to_the_normal_is_spotifys_z_test(
    values: tuple[np.ndarray, np.ndarray], alternative: Alternative
) -> None:
    """spotify-confidence's ZTest: statsmodels' ``_zstat_generic`` / ``_zconfint_generic`` on the
    unpooled standard error (z_test_computer.py)."""
    control, treatment = values
    result = welch_test(
        Moments.from_values(control),
        Moments.from_values(treatment),
        alternative=alternative,
        distribution="normal",
    )
    std_diff = math.sqrt(
        control.var(ddof=1) / control.size + treatment.var(ddof=1) / treatment.size
    )
    side = STATSMODELS_ALTERNATIVE[alternative]
    z, p_value = _zstat_generic(treatment.mean(), control.mean(), std_diff, side, 0.0)
    low, high = _zconfint_generic(treatment.mean() - control.mean(), std_diff, 0.05, side)
    assert result.statistic == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx((low, high), rel=1e-10)
    assert math.isinf(result.df)
    assert result.method.endswith("statistic referred to the standard normal (z)")


def test_student_referred_to_the_normal_keeps_its_pooled_variance(
    values: tuple[np.ndarray, np.ndarray],
) -> None:
    """tea-tasting's ``equal_var=True, use_t=False``: the pooled t statistic read on the normal."""
    control, treatment = values
    result = student_t_test(
        Moments.from_values(control), Moments.from_values(treatment), distribution="normal"
    )
    reference = scipy_stats.ttest_ind(treatment, control, equal_var=True)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(reference.statistic)))
    assert math.isinf(result.df)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), [(30, 400, 22, 650), (9, 50, 17, 48)])
def test_unpooled_proportions_referred_to_t_are_welchs_test_on_bernoulli_sds(
    s_c: int, n_c: int, s_t: int, n_t: int, alternative: Alternative
) -> None:
    """GrowthBook's convention: a proportion's variance ``p (1 - p)`` and Student t with
    Welch-Satterthwaite df; scipy's Welch test from those standard deviations is the same test."""
    result = two_proportion_test(
        s_c, n_c, s_t, n_t, alternative=alternative, pooled=False, distribution="t"
    )
    p_c, p_t = s_c / n_c, s_t / n_t
    sd_c, sd_t = math.sqrt(p_c * (1 - p_c)), math.sqrt(p_t * (1 - p_t))
    reference = scipy_stats.ttest_ind_from_stats(
        p_t, sd_t, n_t, p_c, sd_c, n_c, equal_var=False, alternative=alternative
    )
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    # gbstats TTest.dof, written out with per-unit variances v and units n
    v_c, v_t = sd_c**2, sd_t**2
    dof = (v_t / n_t + v_c / n_c) ** 2 / (
        v_t**2 / (n_t**2 * (n_t - 1)) + v_c**2 / (n_c**2 * (n_c - 1))
    )
    assert result.df == pytest.approx(dof, rel=1e-12)
    assert "Welch-Satterthwaite" in result.method
    if alternative == "two-sided":
        half = scipy_stats.t.ppf(0.975, dof) * result.std_error
        assert result.abs_ci_low == pytest.approx(p_t - p_c - half, rel=1e-10)


def test_pooled_proportions_referred_to_t_keep_the_score_statistic() -> None:
    result = two_proportion_test(120, 1000, 150, 1000, distribution="t")
    z, _ = proportion.proportions_ztest([150, 120], [1000, 1000])
    assert result.statistic == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(z), result.df), rel=1e-10)
    assert 1000 < result.df < 1998


def test_a_ratio_referred_to_t_is_welchs_test_on_the_linearised_values() -> None:
    """The delta method's linearised values ``R + (y - R x) / mean(x)`` have the arm's ratio as
    their mean and the ratio's variance times n as their variance: scipy's Welch test on them
    is the ratio test referred to t."""
    rng = np.random.default_rng(7)
    arms = []
    for rate in (0.10, 0.12):
        x = rng.poisson(8.0, 150).astype(float) + 1.0
        arms.append((rng.binomial(x.astype(int), rate).astype(float), x))
    moments = [RatioMoments.from_values(y, x) for y, x in arms]
    result = ratio_test(moments[0], moments[1], distribution="t")
    linearised = [y.sum() / x.sum() + (y - y.sum() / x.sum() * x) / x.mean() for y, x in arms]
    reference = scipy_stats.ttest_ind(linearised[1], linearised[0], equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    assert result.df == pytest.approx(reference.df, rel=1e-9)
    default = ratio_test(moments[0], moments[1])
    assert default.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(reference.statistic)))


def test_cuped_and_post_stratification_referred_to_the_normal() -> None:
    """The same adjusted estimate and standard error; the p-value and interval from z."""
    rng = np.random.default_rng(11)
    c = [rng.gamma(2.0, 5.0, n) for n in (200, 180)]
    y = [0.8 * c[0] + rng.normal(0, 4, 200), 0.8 * c[1] + 1.0 + rng.normal(0, 4, 180)]
    arms = [CovariateMoments.from_values(y[i], c[i]) for i in (0, 1)]
    t_result = cuped_test(*arms)
    z_result = cuped_test(*arms, distribution="normal")
    assert z_result.abs_effect == t_result.abs_effect
    assert z_result.std_error == t_result.std_error
    assert z_result.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(t_result.statistic)))
    half = scipy_stats.norm.ppf(0.975) * t_result.std_error
    assert z_result.abs_ci_high == pytest.approx(t_result.abs_effect + half, rel=1e-12)
    strata = [[Moments.from_values(v[:100]), Moments.from_values(v[100:])] for v in y]
    stratified = post_stratified_test(*strata, distribution="normal")
    assert math.isinf(stratified.df) and math.isfinite(post_stratified_test(*strata).df)


def test_the_default_is_each_tests_own_and_t_keeps_a_finite_df(
    values: tuple[np.ndarray, np.ndarray],
) -> None:
    control, treatment = (Moments.from_values(v) for v in values)
    for distribution in ("default", "t"):
        result = student_t_test(control, treatment, distribution=distribution)  # type: ignore[arg-type]
        assert result == student_t_test(control, treatment)
    assert reference_df(math.inf, "default", 1.0, 2.0, 5, 6) == math.inf
    with pytest.raises(ValueError, match="distribution must be one of"):
        welch_test(control, treatment, distribution="student")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p_value_scale must be one of"):
        welch_test(control, treatment, p_value_scale="lift")  # type: ignore[arg-type]


def test_t_on_a_one_unit_arm_of_proportions_has_a_finite_df() -> None:
    """An arm of one unit has a proportion of 0 or 1 and no variance: it adds nothing to the
    Welch-Satterthwaite denominator, which is then the other arm's alone."""
    result = two_proportion_test(0, 1, 3, 10, pooled=False, distribution="t")
    assert result.df == pytest.approx(9.0, rel=1e-12)


# ── pooled interval and clipping of a difference of proportions ─────────────────────────────


@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), [(120, 1000, 150, 1000), (9, 50, 17, 48)])
def test_pooled_interval_has_the_score_tests_standard_error(
    s_c: int, n_c: int, s_t: int, n_t: int
) -> None:
    """Its half-width is the critical value times the null standard error |diff / z| of
    statsmodels' score test, and it uses the pooled variance in the relative lift too."""
    result = two_proportion_test(s_c, n_c, s_t, n_t, pooled_ci=True, relative_ci="delta")
    diff = s_t / n_t - s_c / n_c
    z, p_value = proportion.proportions_ztest([s_t, s_c], [n_t, n_c])
    null_se = abs(diff / z)
    half = scipy_stats.norm.ppf(0.975) * null_se
    assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx(
        (diff - half, diff + half), rel=1e-9
    )
    assert result.std_error == pytest.approx(null_se, rel=1e-10)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    pooled = (s_c + s_t) / (n_c + n_t) * (1 - (s_c + s_t) / (n_c + n_t))
    p_c, p_t = s_c / n_c, s_t / n_t
    rel_se = math.sqrt(pooled / n_t / p_c**2 + p_t**2 * pooled / n_c / p_c**4)
    assert result.rel_std_error == pytest.approx(rel_se, rel=1e-12)
    # the Wald statistic with the pooled interval: statsmodels' test_proportions_2indep
    wald = two_proportion_test(s_c, n_c, s_t, n_t, pooled=False, pooled_ci=True)
    reference = proportion.test_proportions_2indep(s_t, n_t, s_c, n_c, method="wald")
    assert wald.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert wald.abs_ci_low == pytest.approx(result.abs_ci_low, rel=1e-12)
    assert "pooled for the CI" in wald.method


def test_pooled_interval_and_pooled_test_never_disagree() -> None:
    """Two-sided, the pooled interval excludes 0 exactly when the pooled p-value is below alpha;
    the unpooled interval does not always (borderline tables exist on this grid)."""
    disagreements = 0
    for s_c in range(0, 41, 2):
        for s_t in range(0, 41, 3):
            if s_c + s_t == 0 or s_c + s_t == 80:
                continue
            pooled = two_proportion_test(s_c, 40, s_t, 40, pooled_ci=True)
            excludes = pooled.abs_ci_low > 0 or pooled.abs_ci_high < 0
            assert excludes == (pooled.p_value < 0.05), (s_c, s_t)
            unpooled = two_proportion_test(s_c, 40, s_t, 40)
            unpooled_excludes = unpooled.abs_ci_low > 0 or unpooled.abs_ci_high < 0
            disagreements += unpooled_excludes != (unpooled.p_value < 0.05)
    assert disagreements > 0


def r_prop_test_interval(
    s_c: int, n_c: int, s_t: int, n_t: int, alternative: Alternative, correct: bool
) -> tuple[float, float]:
    """R's stats::prop.test(c(s_t, s_c), c(n_t, n_c)) interval, as its source computes it
    (src/library/stats/R/prop.test.R): DELTA = p_t - p_c, YATES = min(0.5, |DELTA| / sum(1/n)),
    WIDTH = z sqrt(sum(p (1 - p) / n)) + YATES sum(1/n), clipped to [-1, 1]."""
    estimate = np.array([s_t / n_t, s_c / n_c])
    n = np.array([n_t, n_c])
    delta = estimate[0] - estimate[1]
    yates = min(0.5 if correct else 0.0, abs(delta) / (1 / n).sum())
    z = scipy_stats.norm.ppf(0.975 if alternative == "two-sided" else 0.95)
    width = z * math.sqrt((estimate * (1 - estimate) / n).sum()) + yates * (1 / n).sum()
    low = max(delta - width, -1.0) if alternative != "less" else -1.0
    high = min(delta + width, 1.0) if alternative != "greater" else 1.0
    return low, high


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("correct", [False, True])
@pytest.mark.parametrize(
    ("s_c", "n_c", "s_t", "n_t"), [(1, 10, 9, 10), (9, 10, 1, 10), (0, 6, 6, 6), (30, 400, 22, 650)]
)
def test_clipped_interval_is_r_prop_tests(
    s_c: int, n_c: int, s_t: int, n_t: int, alternative: Alternative, correct: bool
) -> None:
    result = two_proportion_test(
        s_c, n_c, s_t, n_t, alternative=alternative, continuity=correct, clip=True
    )
    low, high = r_prop_test_interval(s_c, n_c, s_t, n_t, alternative, correct)
    assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx((low, high), rel=1e-10)
    assert -1.0 <= result.abs_ci_low <= result.abs_ci_high <= 1.0
    unclipped = two_proportion_test(s_c, n_c, s_t, n_t, alternative=alternative, continuity=correct)
    assert (unclipped.p_value, unclipped.rel_ci_low) == (result.p_value, result.rel_ci_low)
    assert "clipped to [-1, 1]" in result.method


def test_clipping_moves_only_bounds_beyond_one() -> None:
    unclipped = two_proportion_test(1, 10, 9, 10)
    clipped = two_proportion_test(1, 10, 9, 10, clip=True)
    assert unclipped.abs_ci_high > 1.0 and clipped.abs_ci_high == 1.0
    assert clipped.abs_ci_low == unclipped.abs_ci_low
    inside = two_proportion_test(120, 1000, 150, 1000, clip=True)
    plain = two_proportion_test(120, 1000, 150, 1000)
    assert (inside.abs_ci_low, inside.abs_ci_high) == (plain.abs_ci_low, plain.abs_ci_high)


# ── the p-value of the relative lift ────────────────────────────────────────────────────────


def gbstats_t_test(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, alpha: float
) -> dict[str, float]:
    """GrowthBook's frequentist test (gbstats/frequentist/tests.py, ``TTest`` and its subclasses),
    written out: the relative lift, its delta-method variance, Welch-Satterthwaite df, a t test."""
    variance = var_b / (mean_a**2 * n_b) + var_a * mean_b**2 / (mean_a**4 * n_a)
    estimate = (mean_b - mean_a) / mean_a
    statistic = estimate / math.sqrt(variance)
    dof = (var_b / n_b + var_a / n_a) ** 2 / (
        var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1))
    )
    width = scipy_stats.t.ppf(1 - alpha / 2, dof) * math.sqrt(variance)
    return {
        "statistic": statistic,
        "two-sided": 2 * (1 - scipy_stats.t.cdf(abs(statistic), dof)),
        "greater": 1 - scipy_stats.t.cdf(statistic, dof),
        "less": scipy_stats.t.cdf(statistic, dof),
        "ci_low": estimate - width,
        "ci_high": estimate + width,
        "dof": dof,
    }


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_relative_p_value_of_a_mean_is_growthbooks(
    values: tuple[np.ndarray, np.ndarray], alternative: Alternative
) -> None:
    control, treatment = values
    result = welch_test(
        Moments.from_values(control),
        Moments.from_values(treatment),
        alternative=alternative,
        p_value_scale="relative",
    )
    gb = gbstats_t_test(
        control.mean(),
        control.var(ddof=1),
        control.size,
        treatment.mean(),
        treatment.var(ddof=1),
        treatment.size,
        0.05,
    )
    assert result.statistic == pytest.approx(gb["statistic"], rel=1e-10)
    assert result.p_value == pytest.approx(gb[alternative], rel=1e-8)
    assert result.df == pytest.approx(gb["dof"], rel=1e-12)
    assert "p-value of the relative lift (delta method)" in result.method
    absolute = welch_test(
        Moments.from_values(control), Moments.from_values(treatment), alternative=alternative
    )
    assert (result.abs_ci_low, result.abs_ci_high) == (absolute.abs_ci_low, absolute.abs_ci_high)
    assert result.p_value != pytest.approx(absolute.p_value, rel=1e-3)


def test_relative_p_value_and_interval_of_a_proportion_are_growthbooks() -> None:
    """gbstats' ProportionStatistic has variance ``p (1 - p)``: our unpooled interval, Student t
    with Welch df, the relative lift's delta interval and its p-value."""
    s_c, n_c, s_t, n_t = 310, 3000, 362, 2900
    result = two_proportion_test(
        s_c,
        n_c,
        s_t,
        n_t,
        pooled=False,
        distribution="t",
        p_value_scale="relative",
        relative_ci="delta",
    )
    p_c, p_t = s_c / n_c, s_t / n_t
    gb = gbstats_t_test(p_c, p_c * (1 - p_c), n_c, p_t, p_t * (1 - p_t), n_t, 0.05)
    assert result.statistic == pytest.approx(gb["statistic"], rel=1e-10)
    assert result.p_value == pytest.approx(gb["two-sided"], rel=1e-8)
    assert (result.rel_ci_low, result.rel_ci_high) == pytest.approx(
        (gb["ci_low"], gb["ci_high"]), rel=1e-10
    )
    # the delta interval excludes 0 exactly when the relative p-value is below alpha
    assert (result.rel_ci_low > 0) == (result.p_value < 0.05)


def test_relative_p_value_on_the_log_scale_with_the_log_interval() -> None:
    rng = np.random.default_rng(5)
    x_c, x_t = rng.poisson(6.0, 300) + 1.0, rng.poisson(6.0, 280) + 1.0
    y_c, y_t = rng.binomial(x_c.astype(int), 0.1) * 1.0, rng.binomial(x_t.astype(int), 0.12) * 1.0
    control, treatment = RatioMoments.from_values(y_c, x_c), RatioMoments.from_values(y_t, x_t)
    result = ratio_test(control, treatment, relative_ci="log", p_value_scale="relative")
    base = ratio_test(control, treatment, relative_ci="log")
    # recover each arm's variance of the ratio from the delta-method relative standard error
    r_c, r_t = y_c.sum() / x_c.sum(), y_t.sum() / x_t.sum()
    v = []
    for y, x, r in ((y_c, x_c, r_c), (y_t, x_t, r_t)):
        v.append(np.var((y - r * x) / x.mean(), ddof=1) / y.size)
    log_z = math.log(r_t / r_c) / math.sqrt(v[1] / r_t**2 + v[0] / r_c**2)
    assert result.statistic == pytest.approx(log_z, rel=1e-9)
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(log_z)), rel=1e-9)
    assert (result.rel_ci_low, result.rel_ci_high) == (base.rel_ci_low, base.rel_ci_high)
    # the log interval excludes 0 exactly when the log-scale p-value is below alpha
    for alpha in (0.05, 0.5):
        at = ratio_test(
            control, treatment, alpha=alpha, relative_ci="log", p_value_scale="relative"
        )
        assert (at.rel_ci_low > 0 or at.rel_ci_high < 0) == (at.p_value < alpha)
    assert "on the log of the ratio" in result.method


def test_relative_lift_test_refers_to_t_with_df() -> None:
    statistic, p_value = relative_lift_test(10.0, 10.5, 0.04, 0.05, df=12.0, alternative="less")
    se = math.sqrt(0.05 / 100 + 10.5**2 * 0.04 / 10**4)
    assert statistic == pytest.approx(0.05 / se, rel=1e-12)
    assert p_value == pytest.approx(scipy_stats.t.cdf(statistic, 12.0), rel=1e-12)


def test_relative_p_value_is_nan_without_a_control_mean() -> None:
    result = welch_test(
        Moments.from_values([0.0, 0.0, 0.0]),
        Moments.from_values([1.0, 0.0, 2.0]),
        p_value_scale="relative",
    )
    assert math.isnan(result.p_value) and math.isnan(result.statistic)
    assert math.isfinite(result.abs_ci_low)


def test_relative_p_value_holds_its_level_under_the_null() -> None:
    """Calibration: with equal means, the relative test rejects about alpha of the time
    (4000 seeded experiments of 200 skewed units per arm; the 4-sigma band of 0.05)."""
    rng = np.random.default_rng(2024)
    rejections = 0
    simulations = 4000
    for _ in range(simulations):
        control, treatment = rng.gamma(2.0, 5.0, 200), rng.gamma(2.0, 5.0, 200)
        result = welch_test(
            Moments.from_values(control), Moments.from_values(treatment), p_value_scale="relative"
        )
        rejections += result.p_value < 0.05
    band = 4 * math.sqrt(0.05 * 0.95 / simulations)
    assert abs(rejections / simulations - 0.05) < band
