"""Difference of two means: Welch's t-test."""

from __future__ import annotations

from exp_dagster.stats._common import Alternative, check_units, sidedness, welch_df
from exp_dagster.stats.effects import (
    EffectEstimate,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)
from exp_dagster.stats.moments import Moments


def welch_test(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
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
        relative_ci (Literal["delta", "fieller"]): the relative lift's interval: delta method
            (default) or Fieller's theorem (see :func:`~exp_dagster.stats.effects.relative_lift`).

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
        method=f"{sidedness(alternative)} Welch t-test; {relative_ci_words(relative_ci)}",
        df=welch_df(var_mean_control, var_mean_treatment, control.n, treatment.n),
    )
