"""Difference of two proportions: the two-sample z-test."""

from __future__ import annotations

import math

from exp_dagster.stats._common import Alternative, check_units, sidedness
from exp_dagster.stats.effects import (
    EffectEstimate,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)


def _check_counts(arm: str, successes: int, n: int) -> None:
    if not 0 <= successes <= n:
        raise ValueError(
            f"successes_{arm} must be between 0 and n_{arm}={n} (a count of units with the "
            f"event); got {successes}."
        )


def two_proportion_test(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    pooled: bool = True,
    relative_ci: RelativeCI = "delta",
) -> EffectEstimate:
    """Two-sample z-test of the difference of proportions ``p_t - p_c``.

    With ``pooled=True`` (default) the statistic uses the pooled variance under the null
    hypothesis, ``p(1 - p)(1/n_c + 1/n_t)`` with ``p`` the overall proportion (the score test of
    ``statsmodels.stats.proportion.proportions_ztest``). With ``pooled=False`` it is the unpooled
    Wald statistic, ``p_c(1 - p_c)/n_c + p_t(1 - p_t)/n_t``. The confidence interval for the
    difference is always the unpooled Wald interval, whose standard error is the reported
    ``std_error``; so with ``pooled=True`` the p-value and the interval can disagree in borderline
    cases. The relative lift's interval uses the delta method on the natural scale (or Fieller's
    theorem with ``relative_ci="fieller"``) with the same normal critical value. One-sided
    alternatives give one-sided intervals.

    Args:
        successes_control (int): units with the event in control.
        n_control (int): units in control.
        successes_treatment (int): units with the event in treatment.
        n_treatment (int): units in treatment.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``p_t - p_c > 0``.
        pooled (bool): pooled variance for the statistic (True) or unpooled Wald (False).
        relative_ci (Literal["delta", "fieller"]): the relative lift's interval: delta method
            (default) or Fieller's theorem (see :func:`~exp_dagster.stats.effects.relative_lift`).

    Returns:
        EffectEstimate: proportions as means, difference and relative lift with intervals, z.

    Raises:
        ValueError: if an arm has no units, a count is outside ``[0, n]``, or ``alpha`` or
            ``alternative`` or ``relative_ci`` is invalid.

    References:
        Agresti, A. (2013). Categorical Data Analysis (3rd ed.), section 3.1. Wiley.
        Newcombe, R. G. (1998). Interval estimation for the difference between independent
        proportions. Statistics in Medicine, 17(8), 873-890.

    Examples:
        >>> result = two_proportion_test(1000, 10_000, 1100, 10_000)
        >>> round(result.abs_effect, 4), round(result.abs_ci_low, 4), round(result.abs_ci_high, 4)
        (0.01, 0.0015, 0.0185)
        >>> round(result.statistic, 4), round(result.p_value, 4), round(result.rel_effect, 4)
        (2.3066, 0.0211, 0.1)
    """
    check_units("two_proportion_test", n_control, n_treatment, minimum=1)
    _check_counts("control", successes_control, n_control)
    _check_counts("treatment", successes_treatment, n_treatment)
    p_control = successes_control / n_control
    p_treatment = successes_treatment / n_treatment
    if pooled:
        p_overall = (successes_control + successes_treatment) / (n_control + n_treatment)
        test_std_error: float | None = math.sqrt(
            p_overall * (1.0 - p_overall) * (1.0 / n_control + 1.0 / n_treatment)
        )
        method = "two-proportion z-test (pooled variance for the p-value, unpooled Wald CI)"
    else:
        test_std_error = None
        method = "two-proportion Wald z-test (unpooled variance)"
    return _effect_from_means(
        mean_control=p_control,
        mean_treatment=p_treatment,
        var_mean_control=p_control * (1.0 - p_control) / n_control,
        var_mean_treatment=p_treatment * (1.0 - p_treatment) / n_treatment,
        n_control=n_control,
        n_treatment=n_treatment,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        method=f"{sidedness(alternative)} {method}; {relative_ci_words(relative_ci)}",
        test_std_error=test_std_error,
    )
