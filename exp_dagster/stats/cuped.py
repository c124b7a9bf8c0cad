"""CUPED: variance reduction with a pre-period covariate, then Welch's t-test."""

from __future__ import annotations

from typing import Literal

from exp_dagster.stats._common import Alternative, check_units, sidedness, welch_df
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)
from exp_dagster.stats.moments import CovariateMoments


def cuped_test(
    control: CovariateMoments,
    treatment: CovariateMoments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
    theta: Literal["within", "pooled"] = "within",
    ddof: Literal[0, 1] = 1,
) -> EffectEstimate:
    """Welch's t-test on CUPED-adjusted means, with one θ pooled over both arms.

    With ``theta="within"`` (default) the coefficient is pooled within arms with weights
    ``n - 1`` (``ddof=1``): ``θ = sum_arms (n - 1) Cov(y, c) / sum_arms (n - 1) Var(c)``, the OLS
    slope of ``c`` in ``y ~ treatment + c``; ``θ = 0`` when the covariate has no variance. With
    ``theta="pooled"`` it is ``Cov(y, c) / Var(c)`` over all units ignoring the arm (GrowthBook's
    and tea-tasting's convention); a treatment effect on ``y`` then leaks into θ slightly, and
    the two agree when the effect is small next to ``y``'s spread. Each arm's adjusted mean
    is ``mean(y) - θ (mean_arm(c) - mean(c))`` with ``mean(c)`` over both arms, so the adjusted
    difference equals the OLS treatment coefficient. Each arm's adjusted variance is
    ``Var(y) - 2 θ Cov(y, c) + θ**2 Var(c)``, and the adjusted means are compared by Welch's
    t-test (Welch-Satterthwaite df; the same t critical value for the interval of the difference
    and for the relative lift's interval, delta method or Fieller's theorem as ``relative_ci``
    says). θ is treated as known, which ignores an uncertainty of order 1/n. Intervals are
    two-sided, or one-sided for one-sided alternatives.

    ``ddof`` sets the divisor ``n - ddof`` of each arm's variances and covariance (θ does not
    depend on it). ``ddof=1`` (default): sample moments. ``ddof=0``: population moments, which
    for 0/1 values are the Bernoulli variances ``p (1 - p)`` and the covariance
    ``mean(y c) - mean(y) mean(c)``: with ``theta="pooled"`` on a binary metric and a binary
    pre-period covariate, GrowthBook's CUPED for proportion metrics (gbstats'
    ``RegressionAdjustedStatistic`` of two ``ProportionStatistic``s, absolute difference): the
    same estimate, standard error ``sqrt(sum_arms Var(y - θc) / n)``, Welch-Satterthwaite df and
    t p-value. The adjusted difference is the same under either ``ddof``; the standard error
    under ``ddof=0`` is smaller by about ``sqrt((n - 1) / n)``.

    ``variance_reduction = 1 - pooled adjusted variance / pooled variance of y`` (both pooled with
    weights ``n - 1``), which equals the squared pooled within-arm correlation of ``y`` and ``c``;
    0 when ``y`` has no variance.

    Args:
        control (CovariateMoments): the control arm's metric and pre-period covariate per unit.
        treatment (CovariateMoments): the treatment arm's metric and covariate per unit.
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
        theta (Literal["within", "pooled"]): θ from the within-arm pooled slope (default) or
            from all units ignoring the arm.
        ddof (Literal[0, 1]): the divisor ``n - ddof`` of each arm's variances and covariance:
            1 (default, sample moments) or 0 (population moments; GrowthBook's for proportions).

    Returns:
        EffectEstimate: adjusted means, absolute and relative effect with intervals, t statistic,
        p-value, ``variance_reduction`` and θ (``cuped_theta``).

    Raises:
        ValueError: if an arm has fewer than 2 units, or ``alpha``, ``alternative``,
            ``relative_ci``, ``theta`` or ``ddof`` is invalid.

    References:
        Deng, A., Xu, Y., Kohavi, R., & Walker, T. (2013). Improving the Sensitivity of Online
        Controlled Experiments by Utilizing Pre-Experiment Data. WSDM 2013.
        GrowthBook. gbstats (packages/stats/gbstats/models/statistics.py):
        ``RegressionAdjustedStatistic``, ``compute_theta`` and ``compute_covariance``.

    Examples:
        >>> control = CovariateMoments(
        ...     n=1000, sum_y=10_000.0, sum_y2=110_000.0, sum_c=5_000.0, sum_c2=30_000.0,
        ...     sum_yc=55_000.0,
        ... )
        >>> treatment = CovariateMoments(
        ...     n=1000, sum_y=10_400.0, sum_y2=118_500.0, sum_c=5_100.0, sum_c2=31_000.0,
        ...     sum_yc=58_300.0,
        ... )
        >>> result = cuped_test(control, treatment)
        >>> round(result.abs_effect, 4), round(result.std_error, 4)
        (0.2973, 0.0991)
        >>> round(result.variance_reduction, 4), round(result.cuped_theta, 4)
        (0.5181, 1.027)
    """
    check_units("cuped_test", control.n, treatment.n)
    if theta not in ("within", "pooled"):
        raise ValueError(f"theta must be 'within' or 'pooled'; got {theta!r}.")
    if ddof not in (0, 1):
        raise ValueError(
            f"ddof must be 1 (sample variances) or 0 (population variances, p(1 - p) for 0/1 "
            f"values); got {ddof!r}."
        )
    weight_control, weight_treatment = control.n - 1, treatment.n - 1
    mean_c = (control.sum_c + treatment.sum_c) / (control.n + treatment.n)
    if theta == "within":
        pooled_var_c = weight_control * control.var_c + weight_treatment * treatment.var_c
        pooled_cov = weight_control * control.cov_yc + weight_treatment * treatment.cov_yc
    else:
        # every unit's (y, c) together, ignoring the arm (the (n - 1)'s cancel in the ratio)
        n = control.n + treatment.n
        mean_y = (control.sum_y + treatment.sum_y) / n
        pooled_var_c = control.sum_c2 + treatment.sum_c2 - n * mean_c**2
        pooled_cov = control.sum_yc + treatment.sum_yc - n * mean_y * mean_c
    coefficient = pooled_cov / pooled_var_c if pooled_var_c > 0.0 else 0.0

    def adjusted_mean(arm: CovariateMoments) -> float:
        return arm.mean_y - coefficient * (arm.mean_c - mean_c)

    def adjusted_var(arm: CovariateMoments) -> float:
        # Var(y - θc) >= 0; computed from sums it can dip a hair below zero.
        return max(0.0, arm.var_y - 2.0 * coefficient * arm.cov_yc + coefficient**2 * arm.var_c)

    var_control, var_treatment = adjusted_var(control), adjusted_var(treatment)
    pooled_var_y = weight_control * control.var_y + weight_treatment * treatment.var_y
    pooled_var_adjusted = weight_control * var_control + weight_treatment * var_treatment
    variance_reduction = 1.0 - pooled_var_adjusted / pooled_var_y if pooled_var_y > 0.0 else 0.0
    var_mean_control = var_control / control.n
    var_mean_treatment = var_treatment / treatment.n
    if ddof == 0:
        # population moments: each arm's (n - 1) / n of the sample ones
        var_mean_control *= (control.n - 1) / control.n
        var_mean_treatment *= (treatment.n - 1) / treatment.n
    return _effect_from_means(
        mean_control=adjusted_mean(control),
        mean_treatment=adjusted_mean(treatment),
        var_mean_control=var_mean_control,
        var_mean_treatment=var_mean_treatment,
        n_control=control.n,
        n_treatment=treatment.n,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        method=(
            f"{sidedness(alternative)} Welch t-test on CUPED-adjusted means (theta "
            f"{'pooled over arms' if theta == 'within' else 'over all units, ignoring the arm'}"
            f"{'; population variances, ddof 0' if ddof == 0 else ''}); "
            f"{relative_ci_words(relative_ci)}"
        ),
        df=welch_df(var_mean_control, var_mean_treatment, control.n, treatment.n),
        variance_reduction=variance_reduction,
        cuped_theta=coefficient,
    )
