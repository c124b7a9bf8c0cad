"""Difference of two means: Welch's t-test, Student's pooled t-test, and the paired t-test."""

from __future__ import annotations

import math

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    check_units,
    confidence_interval,
    infer,
    sidedness,
    welch_df,
)
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)
from exp_dagster.stats.moments import Moments, RatioMoments


def welch_test(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """Welch's t-test of the difference of means ``treatment - control``.

    Unequal variances are allowed: the standard error is ``sqrt(s_c**2/n_c + s_t**2/n_t)`` with
    sample variances (``ddof=1``), and the statistic is referred to Student's t with the
    Welch-Satterthwaite degrees of freedom. The interval for the difference uses the same t
    critical value, and so does the relative lift's interval (delta method on the natural scale,
    or Fieller's theorem with ``relative_ci="fieller"``). Both are two-sided for ``"two-sided"``
    and one-sided (the other bound infinite) otherwise. When both arms have zero variance the
    standard error is 0 and the statistic is ``+/-inf`` (or 0 for equal means).

    Args:
        control (Moments): the control arm's per-unit metric.
        treatment (Moments): the treatment arm's per-unit metric.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``treatment - control > 0``.
        relative_ci (Literal["delta", "fieller", "log", "divided"]): the relative lift's
            interval (see :func:`~exp_dagster.stats.effects.relative_lift`).
        distribution (Literal["default", "t", "normal"]): the reference distribution: the
            test's own (default), the standard normal, or Student t (with Welch-Satterthwaite
            df where the test has none); see :func:`~exp_dagster.stats.effects.reference_df`.
        p_value_scale (Literal["absolute", "relative"]): whether ``p_value`` and ``statistic``
            test the absolute difference (default) or the relative lift
            (:func:`~exp_dagster.stats.effects.relative_lift_test`, on the log scale with
            ``relative_ci="log"``).

    Returns:
        EffectEstimate: means, absolute and relative effect with intervals, t statistic, p-value.

    Raises:
        ValueError: if an arm has fewer than 2 units, or ``alpha``, ``alternative`` or
            ``relative_ci`` is invalid.

    References:
        Welch, B. L. (1947). The Generalization of "Student's" Problem when Several Different
        Population Variances are Involved. Biometrika, 34(1/2), 28-35.

    Examples:
        >>> control = Moments(n=1000, sum_y=10_000.0, sum_y2=110_000.0)
        >>> treatment = Moments(n=1200, sum_y=12_600.0, sum_y2=145_000.0)
        >>> result = welch_test(control, treatment)
        >>> round(result.abs_effect, 4), round(result.abs_ci_low, 4), round(result.abs_ci_high, 4)
        (0.5, 0.2308, 0.7692)
        >>> round(result.rel_effect, 4), round(result.statistic, 4), round(result.p_value, 5)
        (0.05, 3.6431, 0.00028)
        >>> result.method
        'two-sided Welch t-test; relative lift CI by delta method'
        >>> fieller = welch_test(control, treatment, relative_ci="fieller")
        >>> round(fieller.rel_ci_low, 4), round(fieller.rel_ci_high, 4)
        (0.0228, 0.0781)
        >>> fieller.method.split("; ")[1]
        "relative lift CI by Fieller's theorem (excludes 0 exactly when the absolute CI does)"
    """
    check_units("welch_test", control.n, treatment.n)
    var_mean_control = control.var / control.n
    var_mean_treatment = treatment.var / treatment.n
    return _effect_from_means(
        mean_control=control.mean,
        mean_treatment=treatment.mean,
        var_mean_control=var_mean_control,
        var_mean_treatment=var_mean_treatment,
        n_control=control.n,
        n_treatment=treatment.n,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        method=f"{sidedness(alternative)} Welch t-test; {relative_ci_words(relative_ci)}",
        df=welch_df(var_mean_control, var_mean_treatment, control.n, treatment.n),
    )


def student_t_test(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """Student's two-sample t-test with a pooled variance (equal variances assumed).

    The pooled variance ``((n_c - 1) s_c**2 + (n_t - 1) s_t**2) / (n_c + n_t - 2)`` (``ddof=1``
    per arm) serves both arms, the statistic is referred to Student's t with ``n_c + n_t - 2``
    degrees of freedom, and the intervals (absolute, and the relative lift's) use the same
    standard error and critical value: scipy's ``ttest_ind(equal_var=True)`` and R's
    ``t.test(var.equal = TRUE)``. With unequal arms and unequal variances its level is wrong;
    :func:`welch_test` (the default everywhere in the pipeline) is not.

    Args:
        control (Moments): the control arm's per-unit metric.
        treatment (Moments): the treatment arm's per-unit metric.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): about ``treatment - control``.
        relative_ci (Literal["delta", "fieller", "log", "divided"]): the relative lift's
            interval.
        distribution (Literal["default", "t", "normal"]): the reference distribution: the
            test's own (default), the standard normal, or Student t (with Welch-Satterthwaite
            df where the test has none); see :func:`~exp_dagster.stats.effects.reference_df`.
        p_value_scale (Literal["absolute", "relative"]): whether ``p_value`` and ``statistic``
            test the absolute difference (default) or the relative lift
            (:func:`~exp_dagster.stats.effects.relative_lift_test`, on the log scale with
            ``relative_ci="log"``).

    Returns:
        EffectEstimate: means, absolute and relative effect with intervals, t statistic, p-value,
        ``df = n_c + n_t - 2``.

    Raises:
        ValueError: if an arm has fewer than 2 units, or an option is invalid.

    References:
        Student (1908). The Probable Error of a Mean. Biometrika, 6(1), 1-25.

    Examples:
        >>> control = Moments(n=1000, sum_y=10_000.0, sum_y2=110_000.0)
        >>> treatment = Moments(n=1200, sum_y=12_600.0, sum_y2=145_000.0)
        >>> result = student_t_test(control, treatment)
        >>> round(result.statistic, 4), round(result.p_value, 5), result.df
        (3.6337, 0.00029, 2198.0)
    """
    check_units("student_t_test", control.n, treatment.n)
    df = control.n + treatment.n - 2
    pooled = ((control.n - 1) * control.var + (treatment.n - 1) * treatment.var) / df
    return _effect_from_means(
        mean_control=control.mean,
        mean_treatment=treatment.mean,
        var_mean_control=pooled / control.n,
        var_mean_treatment=pooled / treatment.n,
        n_control=control.n,
        n_treatment=treatment.n,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        method=(
            f"{sidedness(alternative)} Student t-test (pooled variance); "
            f"{relative_ci_words(relative_ci)}"
        ),
        df=float(df),
    )


def paired_t_test(
    pairs: RatioMoments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> EffectEstimate:
    """Paired t-test for within-unit (crossover) designs: each unit seen under both conditions.

    ``pairs`` holds each unit's control value as ``x`` and treatment value as ``y`` (``n``,
    ``Σy``, ``Σx``, ``Σy²``, ``Σx²``, ``Σxy``). The effect is the mean within-unit difference
    ``d = y - x``, with standard error ``sqrt(var(d) / n)`` (``ddof=1``) and Student's t with
    ``n - 1`` degrees of freedom: scipy's ``ttest_rel``. The relative lift ``ȳ / x̄ - 1`` gets a
    delta-method interval that accounts for the covariance of the two means:
    ``var(ȳ/x̄) ≈ (var ȳ - 2 r cov(ȳ, x̄) + r² var x̄) / x̄²`` with ``r = ȳ / x̄``. The report's
    ``n_control`` and ``n_treatment`` are both ``n``.

    Args:
        pairs (RatioMoments): cross moments of (control value ``x``, treatment value ``y``).
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): about ``treatment - control``.

    Returns:
        EffectEstimate: the two means, the mean difference and relative lift with intervals, t,
        p-value and ``df = n - 1``.

    Raises:
        ValueError: if there are fewer than 2 pairs, or an option is invalid.

    References:
        Student (1908). The Probable Error of a Mean. Biometrika, 6(1), 1-25.
        Senn, S. (2002). Cross-over Trials in Clinical Research (2nd ed.). Wiley.

    Examples:
        >>> pairs = RatioMoments.from_values([2.0, 3.5, 4.0, 5.5], [1.0, 3.0, 3.0, 4.0])
        >>> result = paired_t_test(pairs)
        >>> round(result.abs_effect, 4), round(result.statistic, 4), round(result.p_value, 4)
        (1.0, 4.899, 0.0163)
    """
    check_alpha(alpha)
    check_alternative(alternative)
    check_units("paired_t_test", pairs.n, pairs.n)
    n = pairs.n
    mean_x, mean_y = pairs.sum_x / n, pairs.sum_y / n
    var_x = max(0.0, (pairs.sum_x2 - n * mean_x**2) / (n - 1))
    var_y = max(0.0, (pairs.sum_y2 - n * mean_y**2) / (n - 1))
    cov = (pairs.sum_xy - n * mean_x * mean_y) / (n - 1)
    var_d = max(0.0, var_y + var_x - 2.0 * cov)
    std_error = math.sqrt(var_d / n)
    effect = mean_y - mean_x
    df = float(n - 1)
    inference = infer(effect, std_error, alpha=alpha, alternative=alternative, df=df)
    if mean_x == 0.0:
        rel, rel_low, rel_high, rel_se = math.nan, math.nan, math.nan, math.nan
    else:
        ratio = mean_y / mean_x
        rel_var = max(0.0, (var_y - 2.0 * ratio * cov + ratio**2 * var_x) / n) / mean_x**2
        rel_se = math.sqrt(rel_var)
        rel = ratio - 1.0
        rel_low, rel_high = confidence_interval(rel, rel_se, inference.critical_value, alternative)
    return EffectEstimate(
        mean_control=mean_x,
        mean_treatment=mean_y,
        abs_effect=effect,
        abs_ci_low=inference.ci_low,
        abs_ci_high=inference.ci_high,
        rel_effect=rel,
        rel_ci_low=rel_low,
        rel_ci_high=rel_high,
        p_value=inference.p_value,
        statistic=inference.statistic,
        std_error=std_error,
        n_control=n,
        n_treatment=n,
        method=(
            f"{sidedness(alternative)} paired t-test on within-unit differences; relative lift "
            f"CI by delta method with the means' covariance"
        ),
        rel_std_error=rel_se,
        df=df,
    )
