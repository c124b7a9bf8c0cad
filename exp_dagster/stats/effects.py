"""The result every test returns, and the relative lift with its delta-method interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    confidence_interval,
    critical_value,
    infer,
)


@dataclass(frozen=True)
class EffectEstimate:
    """The estimated effect of a treatment against control on one metric.

    All intervals have level ``1 - alpha``. For a two-sided alternative they are two-sided; for a
    one-sided alternative they are one-sided and consistent with the p-value: ``"greater"`` gives
    ``[low, +inf)``, ``"less"`` gives ``(-inf, high]``, so the p-value is below ``alpha`` exactly
    when the interval excludes 0.

    Attributes:
        mean_control: the control arm's summary: its mean, or its CUPED-adjusted mean, its ratio
            of sums (ratio metrics), or its quantile (quantile metrics).
        mean_treatment: the same summary of the treatment arm.
        abs_effect: ``mean_treatment - mean_control``.
        abs_ci_low: lower confidence bound of ``abs_effect`` (``-inf`` if ``"less"``).
        abs_ci_high: upper confidence bound of ``abs_effect`` (``+inf`` if ``"greater"``).
        rel_effect: ``mean_treatment / mean_control - 1``; ``nan`` when ``mean_control == 0``.
        rel_ci_low: lower bound of the relative lift by the delta method (not on the log scale:
            symmetric around ``rel_effect``); ``nan`` when ``mean_control == 0``.
        rel_ci_high: upper bound of the relative lift, as ``rel_ci_low``.
        p_value: p-value of the test of no difference under the alternative.
        statistic: the t or z statistic.
        std_error: standard error of ``abs_effect``.
        n_control: units in the control arm.
        n_treatment: units in the treatment arm.
        method: one sentence naming the test and its conventions.
        variance_reduction: CUPED only: ``1 - Var(adjusted) / Var(unadjusted)`` of the per-unit
            metric, pooled over arms; ``None`` for the other tests.
    """

    mean_control: float
    mean_treatment: float
    abs_effect: float
    abs_ci_low: float
    abs_ci_high: float
    rel_effect: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    statistic: float
    std_error: float
    n_control: int
    n_treatment: int
    method: str
    variance_reduction: float | None = None


def relative_lift(
    mean_control: float,
    mean_treatment: float,
    var_mean_control: float,
    var_mean_treatment: float,
    *,
    alpha: float,
    alternative: Alternative,
    crit: float | None = None,
) -> tuple[float, float, float]:
    """Relative lift ``mean_treatment / mean_control - 1`` with its delta-method interval.

    With independent arms, the first-order (delta-method) variance of the ratio of means is
    ``var_mean_treatment / mc**2 + mt**2 * var_mean_control / mc**4``. The interval is
    ``lift -/+ crit * se`` on the natural scale (not log-transformed, so symmetric around the
    lift), two-sided or one-sided at level ``1 - alpha`` as ``alternative`` says.

    Args:
        mean_control (float): the control mean ``mc``.
        mean_treatment (float): the treatment mean ``mt``.
        var_mean_control (float): variance of the control mean (e.g. ``var / n``).
        var_mean_treatment (float): variance of the treatment mean.
        alpha (float): one minus the confidence level.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` gives
            ``[low, +inf)``, ``"less"`` gives ``(-inf, high]``.
        crit (float | None): critical value to use, so the relative interval matches the absolute
            one (Student t with Welch df for Welch tests); default the standard normal quantile.

    Returns:
        tuple[float, float, float]: ``(rel_effect, low, high)``; all ``nan`` when
        ``mean_control == 0``, where the lift is undefined.

    References:
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.

    Examples:
        >>> lift = relative_lift(10.0, 10.5, 0.04, 0.05, alpha=0.05, alternative="two-sided")
        >>> [round(value, 4) for value in lift]
        [0.05, -0.0101, 0.1101]
        >>> relative_lift(0.0, 1.0, 0.1, 0.1, alpha=0.05, alternative="two-sided")
        (nan, nan, nan)
    """
    check_alpha(alpha)
    check_alternative(alternative)
    if mean_control == 0.0:
        return math.nan, math.nan, math.nan
    lift = mean_treatment / mean_control - 1.0
    variance = (
        var_mean_treatment / mean_control**2
        + mean_treatment**2 * var_mean_control / mean_control**4
    )
    if crit is None:
        crit = critical_value(alpha, alternative)
    low, high = confidence_interval(lift, math.sqrt(variance), crit, alternative)
    return lift, low, high


def _effect_from_means(
    *,
    mean_control: float,
    mean_treatment: float,
    var_mean_control: float,
    var_mean_treatment: float,
    n_control: int,
    n_treatment: int,
    alpha: float,
    alternative: Alternative,
    method: str,
    df: float = math.inf,
    test_std_error: float | None = None,
    variance_reduction: float | None = None,
) -> EffectEstimate:
    """Assemble an :class:`EffectEstimate` from two independent arm summaries (package-private).

    The absolute effect gets ``std_error = sqrt(var_mean_control + var_mean_treatment)`` and a
    Student t (finite ``df``) or normal interval; the relative lift reuses the same critical value.
    ``test_std_error`` replaces the standard error in the statistic only (pooled proportions).
    """
    check_alpha(alpha)
    check_alternative(alternative)
    effect = mean_treatment - mean_control
    std_error = math.sqrt(var_mean_control + var_mean_treatment)
    inference = infer(
        effect,
        std_error,
        alpha=alpha,
        alternative=alternative,
        df=df,
        test_std_error=test_std_error,
    )
    rel_effect, rel_low, rel_high = relative_lift(
        mean_control,
        mean_treatment,
        var_mean_control,
        var_mean_treatment,
        alpha=alpha,
        alternative=alternative,
        crit=inference.critical_value,
    )
    return EffectEstimate(
        mean_control=mean_control,
        mean_treatment=mean_treatment,
        abs_effect=effect,
        abs_ci_low=inference.ci_low,
        abs_ci_high=inference.ci_high,
        rel_effect=rel_effect,
        rel_ci_low=rel_low,
        rel_ci_high=rel_high,
        p_value=inference.p_value,
        statistic=inference.statistic,
        std_error=std_error,
        n_control=n_control,
        n_treatment=n_treatment,
        method=method,
        variance_reduction=variance_reduction,
    )
