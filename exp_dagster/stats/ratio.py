"""Difference of two ratio metrics (ratio of sums) with the delta method."""

from __future__ import annotations

from exp_dagster.stats._common import Alternative, check_units, sidedness
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)
from exp_dagster.stats.moments import RatioMoments


def _ratio_variance(arm: RatioMoments, name: str) -> float:
    """Delta-method variance of ``sum_y / sum_x`` with units as the independent observations.

    ``Var(R) ~ (Var(y) - 2 R Cov(y, x) + R**2 Var(x)) / (n * mean(x)**2)`` with ``ddof=1``: the
    sample variance of the linearised per-unit values ``(y_i - R x_i) / mean(x)``, divided by n.
    """
    if arm.sum_x == 0.0:
        raise ValueError(
            f"The {name} arm's denominators sum to 0, so its ratio is undefined; a ratio metric "
            f"needs at least one unit with a non-zero denominator in each arm."
        )
    ratio = arm.ratio
    numerator = arm.var_y - 2.0 * ratio * arm.cov_yx + ratio**2 * arm.var_x
    # The linearised variance is a sum of squares; from raw sums it can dip a hair below zero.
    return max(0.0, numerator) / (arm.n * arm.mean_x**2)


def ratio_test(
    control: RatioMoments,
    treatment: RatioMoments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """z-test of the difference of ratio metrics ``R_t - R_c``, ``R = sum(y) / sum(x)`` per arm.

    For metrics whose analysis unit (an impression, a session) is finer than the randomisation
    unit (a user), observations within a unit are correlated and the naive binomial or iid
    variance is too small. The delta method linearises the ratio at the randomisation unit:
    ``Var(R) ~ (Var(y) - 2 R Cov(y, x) + R**2 Var(x)) / (n * mean(x)**2)`` with per-unit ``y``
    and ``x`` and ``ddof=1``. The arms are independent, the statistic is referred to the standard
    normal, and the interval uses the same normal critical value (two-sided, or one-sided with the
    other bound infinite). The relative lift's interval is by the delta method on the natural
    scale, or by Fieller's theorem with ``relative_ci="fieller"``.

    Args:
        control (RatioMoments): the control arm's per-unit numerators and denominators.
        treatment (RatioMoments): the treatment arm's per-unit numerators and denominators.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``R_t - R_c > 0``.
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
        EffectEstimate: the ratios as means, difference and relative lift with intervals, z.

    Raises:
        ValueError: if an arm has fewer than 2 units or denominators summing to 0, or ``alpha``,
            ``alternative`` or ``relative_ci`` is invalid.

    References:
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.

    Examples:
        >>> control = RatioMoments(
        ...     n=5000, sum_y=5000.0, sum_x=50_000.0, sum_y2=10_000.0, sum_x2=600_000.0,
        ...     sum_xy=70_000.0,
        ... )
        >>> treatment = RatioMoments(
        ...     n=5000, sum_y=5150.0, sum_x=50_000.0, sum_y2=10_400.0, sum_x2=600_000.0,
        ...     sum_xy=72_000.0,
        ... )
        >>> result = ratio_test(control, treatment)
        >>> result.mean_control, result.mean_treatment
        (0.1, 0.103)
        >>> round(result.abs_ci_low, 4), round(result.abs_ci_high, 4), round(result.p_value, 4)
        (0.0005, 0.0055, 0.0168)
    """
    check_units("ratio_test", control.n, treatment.n)
    var_control = _ratio_variance(control, "control")
    var_treatment = _ratio_variance(treatment, "treatment")
    return _effect_from_means(
        mean_control=control.ratio,
        mean_treatment=treatment.ratio,
        var_mean_control=var_control,
        var_mean_treatment=var_treatment,
        n_control=control.n,
        n_treatment=treatment.n,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        method=(
            f"{sidedness(alternative)} z-test on the ratio of sums, delta-method variance at the "
            f"randomisation unit; {relative_ci_words(relative_ci)}"
        ),
    )
