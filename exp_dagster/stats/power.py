"""Power and sample size of a two-arm z-test on a difference of means.

Every function here describes the same test: the difference of two arm means
``treatment - control`` divided by its standard error
``se = sqrt(variance_control / n_control + variance_treatment / n_treatment)`` and referred to the
standard normal: the large-sample approximation of the package's tests (``welch_test``,
``two_proportion_test``, ``ratio_test``, ``cuped_test``). The variances are *per-unit* variances
of the metric (``ddof=1`` sample variances from :class:`~exp_dagster.stats.moments.Moments` will
do), not variances of the means. Effects are absolute (``treatment - control``, in the metric's
unit) by default; callers convert a relative minimum detectable effect (MDE) by multiplying it by
``|control mean|``, as :func:`power_summary` does.

With ``effect_scale="relative"`` (and ``control_mean``) the effect is a relative lift
``Delta = mu_t / mu_c - 1`` tested by ``lift / se(lift)`` with the delta-method variance of the
lift (GrowthBook's power convention, written out in its "power technical details"):
``Var(lift) = var_t / (n_t mu_c**2) + mu_t**2 var_c / (n_c mu_c**4)``, evaluated at the true
``mu_t = mu_c (1 + Delta)``. The standardised effect is then
``Delta |mu_c| / sqrt(var_t / n_t + (1 + Delta)**2 var_c / n_c)``: the absolute problem with the
effect ``Delta |mu_c|`` and the control variance scaled by ``(1 + Delta)**2``, so the variance
depends on the effect and the MDE solves a quadratic (GrowthBook's closed form). ``alternative``
then refers to the sign of the lift.

Conventions shared by the functions:

* ``alternative`` is ``"two-sided"``, ``"greater"`` (the effect is ``treatment - control > 0``) or
  ``"less"``. A two-sided test at level ``alpha`` uses ``z_{1 - alpha/2}``, a one-sided test
  ``z_{1 - alpha}``.
* ``n_comparisons = k > 1`` applies a Bonferroni correction: each comparison is tested at level
  ``alpha / k`` (a design with ``k`` treatments against one control, analysed with Bonferroni).
* Sample size and MDE use the usual closed form
  ``se = |delta| / (z_{1 - alpha/2} + z_{power})``, which ignores the probability of rejecting in
  the wrong direction under a two-sided test (at most ``Phi(-2 z_{1 - alpha/2} - z_{power})``,
  about ``1e-6`` at ``alpha = 0.05`` and 80 % power). :func:`achieved_power` is the exact normal
  power and includes that far tail, so planned designs reach at least the target power.

The per-unit variance to pass for each kind of metric:

* a mean: the sample variance of the per-unit values;
* a proportion of units with an event: ``p (1 - p)``, see :func:`proportion_variance`;
* a ratio metric ``sum(y) / sum(x)`` randomised by unit (clicks per impression): ``n`` times the
  delta-method variance of the ratio, i.e.
  ``(Var(y) - 2 R Cov(y, x) + R**2 Var(x)) / mean(x)**2`` with per-unit ``y``, ``x`` and
  ``R = sum(y) / sum(x)`` (Deng, Knoblich & Lu 2018), and the MDE is then on the ratio's scale;
* a CUPED-adjusted metric with a pre-period covariate of correlation ``rho``: the adjusted
  variance ``Var(y) (1 - rho**2)`` (Deng et al. 2013), or directly the adjusted variance
  ``Var(y - theta c)``; the sample size shrinks by the factor ``1 - rho**2``.

References:
    Chow, S.-C., Shao, J., & Wang, H. (2008). Sample Size Calculations in Clinical Research
    (2nd ed.), chapter 3 (comparing means: large-sample tests). Chapman & Hall/CRC.
    Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments, chapter 17
    (the ``16 sigma**2 / delta**2`` rule). Cambridge University Press.
    Deng, A., Xu, Y., Kohavi, R., & Walker, T. (2013). Improving the Sensitivity of Online
    Controlled Experiments by Utilizing Pre-Experiment Data. WSDM 2013.
    Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
    A Practical Guide with Novel Ideas. KDD 2018.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from scipy import special

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    check_units,
    critical_value,
    sidedness,
)

Distribution = Literal["normal", "t"]
"""The reference distribution of the planned test: ``"normal"`` (the z-test, default) or ``"t"``
(Student's t with ``n_c + n_t - 2`` degrees of freedom and the noncentral t for power, as
statsmodels' ``TTestIndPower`` and R's ``power.t.test``)."""

DISTRIBUTIONS: tuple[str, ...] = get_args(Distribution)

EffectScale = Literal["absolute", "relative"]
"""The scale of an effect or MDE: ``"absolute"`` (``treatment - control``, the default) or
``"relative"`` (the lift ``treatment / control - 1``, with the delta-method variance of the lift
at the true effect, as GrowthBook's power calculator)."""

EFFECT_SCALES: tuple[str, ...] = get_args(EffectScale)


def _relative_control(effect_scale: str, control_mean: float | None) -> float | None:
    """``|control_mean|`` for ``effect_scale="relative"``, None for ``"absolute"``."""
    if effect_scale not in EFFECT_SCALES:
        raise ValueError(f"effect_scale must be 'absolute' or 'relative'; got {effect_scale!r}.")
    if effect_scale == "absolute":
        return None
    if control_mean is None or not math.isfinite(control_mean) or control_mean == 0.0:
        raise ValueError(
            f"effect_scale='relative' needs control_mean, the control arm's finite, non-zero "
            f"mean that a relative lift is relative to; got {control_mean!r}."
        )
    return abs(control_mean)


def _lift_variance_factor(lift: float) -> float:
    """``(1 + lift)**2 = mu_t**2 / mu_c**2``, the factor of the control's term in Var(lift)."""
    return (1.0 + lift) ** 2


def _check_distribution(distribution: str) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be 'normal' or 't'; got {distribution!r}.")


def _t_power(standardized: float, df: float, alpha_each: float, alternative: Alternative) -> float:
    """Power of the t-test at noncentrality ``standardized`` (effect / se) with ``df`` degrees of
    freedom: the noncentral t's mass beyond the central t's critical values."""
    crit = critical_value(alpha_each, alternative, df)
    from scipy import stats  # here, not at the top: see stats/__init__ (lazy scipy)

    noncentral = stats.nct(df, standardized)
    if alternative == "greater":
        return float(noncentral.sf(crit))
    if alternative == "less":
        return float(noncentral.cdf(-crit))
    return float(noncentral.sf(crit) + noncentral.cdf(-crit))


@dataclass(frozen=True)
class SampleSize:
    """Units needed per arm to detect an absolute effect, with the inputs that produced them.

    Attributes:
        n_control: units needed in control, rounded up.
        n_treatment: units needed in treatment, ``allocation`` times the unrounded control size,
            rounded up.
        n_total: ``n_control + n_treatment`` (one comparison; a design with ``k`` treatments
            needs ``n_control + k * n_treatment``).
        mde: the absolute effect to detect (a magnitude, in the metric's unit).
        variance_control: per-unit variance of the metric in control.
        variance_treatment: per-unit variance of the metric in treatment.
        alpha: family-wise significance level (before the Bonferroni division).
        power: target probability of rejecting when the effect is ``mde``.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        allocation: ``n_treatment / n_control``.
        n_comparisons: number of comparisons ``alpha`` is shared between (Bonferroni).
    """

    n_control: int
    n_treatment: int
    n_total: int
    mde: float
    variance_control: float
    variance_treatment: float
    alpha: float
    power: float
    alternative: Alternative
    allocation: float
    n_comparisons: int


@dataclass(frozen=True)
class PowerSummary:
    """Whether one metric of one experiment is powered for its target MDE, and what it can detect.

    Attributes:
        mde_abs: absolute effect detectable now with the target power (a magnitude).
        mde_rel: ``mde_abs / |control_mean|``; ``nan`` when ``control_mean == 0``.
        power_at_target: exact power now against the target relative MDE (in the direction of
            the alternative); ``nan`` when ``control_mean == 0``.
        required_n_control: control units needed for the target relative MDE at the target
            power, with the current ``n_treatment / n_control`` split; ``None`` when
            ``control_mean == 0``.
        required_n_treatment: treatment units needed, as ``required_n_control``.
        days_needed: additional days of new units at the current rate until both arms reach
            their required size (0 if they have; ``inf`` if no new units arrive; ``nan`` when
            ``control_mean == 0``). A lower bound, see :func:`days_needed`.
        powered: ``power_at_target >= power`` (``False`` when it is ``nan``).
        method: one sentence naming the test and its conventions.
    """

    mde_abs: float
    mde_rel: float
    power_at_target: float
    required_n_control: int | None
    required_n_treatment: int | None
    days_needed: float
    powered: bool
    method: str


def _check_variances(
    variance_control: float, variance_treatment: float | None
) -> tuple[float, float]:
    """Both per-unit variances, the treatment's defaulting to the control's."""
    if variance_treatment is None:
        variance_treatment = variance_control
    for name, value in (
        ("variance_control", variance_control),
        ("variance_treatment", variance_treatment),
    ):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(
                f"{name} must be a finite, non-negative per-unit variance of the metric; "
                f"got {value!r}."
            )
    if variance_control == 0.0 and variance_treatment == 0.0:
        raise ValueError(
            "Both per-unit variances are 0: the metric does not vary, so there is no sampling "
            "noise to power against. Check the metric, or skip its power analysis."
        )
    return variance_control, variance_treatment


def _alpha_per_comparison(alpha: float, n_comparisons: int) -> float:
    check_alpha(alpha)
    if isinstance(n_comparisons, bool) or not isinstance(n_comparisons, int) or n_comparisons < 1:
        raise ValueError(
            f"n_comparisons must be a whole number of comparisons, at least 1 (e.g. the number "
            f"of treatment arms compared with control); got {n_comparisons!r}."
        )
    return alpha / n_comparisons


def _check_power(power: float, alpha_per_comparison: float) -> None:
    if not alpha_per_comparison < power < 1.0:
        raise ValueError(
            f"power must be between the per-comparison significance level "
            f"({alpha_per_comparison:.4g}) and 1, e.g. 0.8; a power at or below the level is "
            f"reached with no effect at all. Got {power!r}."
        )


def _z_sum(alpha_per_comparison: float, power: float, alternative: Alternative) -> float:
    """``z_{1 - alpha/2} + z_{power}`` (two-sided) or ``z_{1 - alpha} + z_{power}``."""
    return critical_value(alpha_per_comparison, alternative) + float(special.ndtri(power))


def required_information(
    relative_mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
) -> float:
    """The information ``1 / se²`` of the relative lift at which a fixed-horizon z-test of
    ``relative_mde`` reaches ``power``: ``((z_{1-alpha/2} + z_power) / relative_mde)²``.

    The maximum information of a group-sequential design (Jennison & Turnbull 2000, ch. 7) on
    the relative scale: the share of it gathered is an information fraction for alpha spending.

    Args:
        relative_mde (float): the relative lift to detect, positive (0.02 = 2 %).
        alpha (float): significance level of the test.
        power (float): the power at ``relative_mde``, above ``alpha``.
        alternative (Literal["two-sided", "greater", "less"]): two-sided uses ``alpha / 2``.

    Returns:
        float: the required information.

    Examples:
        >>> round(required_information(0.02), 1)
        19622.2
    """
    check_alpha(alpha)
    _check_power(power, alpha)
    _check_positive_finite("relative_mde", relative_mde, "the relative lift to detect")
    return (_z_sum(alpha, power, alternative) / relative_mde) ** 2


def _check_positive_finite(name: str, value: float, meaning: str) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive, finite number ({meaning}); got {value!r}.")


def sample_size(
    mde: float,
    variance_control: float,
    variance_treatment: float | None = None,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    allocation: float = 1.0,
    n_comparisons: int = 1,
    distribution: Distribution = "normal",
    effect_scale: EffectScale = "absolute",
    control_mean: float | None = None,
) -> SampleSize:
    """Units needed per arm for a z-test to detect an absolute difference of means ``mde``.

    ``n_control = (z_{1 - a/2} + z_{power})**2 (var_c + var_t / allocation) / mde**2`` with
    ``a = alpha / n_comparisons`` (Bonferroni), ``z_{1 - a}`` instead of ``z_{1 - a/2}`` for a
    one-sided alternative, and ``n_treatment = allocation * n_control``; both are rounded up
    separately. This closed form ignores the far tail of a two-sided test, so the exact power of
    the rounded design (:func:`achieved_power`) is at least ``power``. With equal variances,
    equal allocation, ``alpha = 0.05`` two-sided and 80 % power it is
    ``15.7 var / mde**2`` per arm: Kohavi's ``16 sigma**2 / delta**2`` rule. With
    ``distribution="t"`` the design is the smallest ``n_control`` (and ``n_treatment =
    ceil(allocation * n_control)``) whose exact noncentral-t power reaches ``power``, as
    statsmodels' ``TTestIndPower.solve_power`` (a few units more than the z-test's at small
    sizes, the same at large ones). With ``effect_scale="relative"``, ``mde`` is a relative lift
    ``Delta`` and ``n_control = (z + z_power)**2 ((1 + s Delta)**2 var_c + var_t / allocation) /
    (Delta mu_c)**2`` with ``s = -1`` for ``"less"``, else ``+1`` (the delta-method variance of
    the lift at the true effect, GrowthBook's convention; see the module docstring).

    Args:
        mde (float): the absolute effect to detect, ``|treatment - control|`` in the metric's
            unit (a relative MDE times ``|control mean|``), or with ``effect_scale="relative"``
            the relative lift to detect (0.02 = 2 %); for ``"less"`` the effect ``-mde`` is
            detected.
        variance_control (float): per-unit variance of the metric in control (not of its mean);
            see the module docstring for proportions, ratio metrics and CUPED.
        variance_treatment (float | None): per-unit variance in treatment; default
            ``variance_control``.
        alpha (float): family-wise significance level.
        power (float): target probability of rejecting when the true effect is ``mde``.
        alternative (Literal["two-sided", "greater", "less"]): the alternative of the planned
            test; ``"greater"`` means ``treatment - control > 0``.
        allocation (float): ``n_treatment / n_control``, e.g. 2.0 for a 1:2 split.
        n_comparisons (int): comparisons sharing ``alpha`` (Bonferroni), e.g. the number of
            treatment arms compared with one control.
        distribution (Literal["normal", "t"]): the planned test's reference distribution.
        effect_scale (Literal["absolute", "relative"]): the scale of ``mde``.
        control_mean (float | None): the control mean; required for ``"relative"``.

    Returns:
        SampleSize: ``n_control``, ``n_treatment``, ``n_total`` and the inputs (``mde`` on the
        scale it was given; the variances as given).

    Raises:
        ValueError: if ``mde`` or ``allocation`` is not positive and finite, a variance is
            negative or both are 0, ``alpha`` or ``alternative`` is invalid, ``power`` is not
            between the per-comparison level and 1, or ``n_comparisons < 1``.

    References:
        Chow, S.-C., Shao, J., & Wang, H. (2008). Sample Size Calculations in Clinical Research
        (2nd ed.), section 3.2. Chapman & Hall/CRC.
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 17. Cambridge University Press.

    Examples:
        >>> plan = sample_size(0.1, 1.0)
        >>> plan.n_control, plan.n_treatment, plan.n_total
        (1570, 1570, 3140)
        >>> plan = sample_size(0.1, 1.0, 1.5, alternative="greater", allocation=2.0)
        >>> plan.n_control, plan.n_treatment
        (1082, 2164)
        >>> sample_size(0.02, 16.0, effect_scale="relative", control_mean=10.0).n_control
        6406
    """
    _check_positive_finite("mde", mde, "the absolute difference of means to detect")
    _check_positive_finite("allocation", allocation, "n_treatment / n_control, e.g. 1.0")
    check_alternative(alternative)
    variance_control, variance_treatment = _check_variances(variance_control, variance_treatment)
    scale = _relative_control(effect_scale, control_mean)
    if scale is not None:
        lift = -mde if alternative == "less" else mde
        plan = sample_size(
            mde * scale,
            _lift_variance_factor(lift) * variance_control,
            variance_treatment,
            alpha=alpha,
            power=power,
            alternative=alternative,
            allocation=allocation,
            n_comparisons=n_comparisons,
            distribution=distribution,
        )
        return replace(
            plan, mde=mde, variance_control=variance_control, variance_treatment=variance_treatment
        )
    alpha_each = _alpha_per_comparison(alpha, n_comparisons)
    _check_power(power, alpha_each)
    unrounded_control = (
        _z_sum(alpha_each, power, alternative) ** 2
        * (variance_control + variance_treatment / allocation)
        / mde**2
    )
    _check_distribution(distribution)
    n_control = math.ceil(unrounded_control)
    n_treatment = math.ceil(allocation * unrounded_control)
    if distribution == "t":
        # t-power rises with n; the z-test's size is a lower bound (the t's tails are heavier).
        # For "less" the effect detected is -mde.
        signed_mde = -mde if alternative == "less" else mde
        n_control = max(2, math.floor(unrounded_control))
        while True:
            n_treatment = max(2, math.ceil(allocation * n_control))
            se = _std_error(n_control, n_treatment, variance_control, variance_treatment)
            df = n_control + n_treatment - 2
            if df > 0 and _t_power(signed_mde / se, df, alpha_each, alternative) >= power:
                break
            n_control += 1
    return SampleSize(
        n_control=n_control,
        n_treatment=n_treatment,
        n_total=n_control + n_treatment,
        mde=mde,
        variance_control=variance_control,
        variance_treatment=variance_treatment,
        alpha=alpha,
        power=power,
        alternative=alternative,
        allocation=allocation,
        n_comparisons=n_comparisons,
    )


def _std_error(
    n_control: int, n_treatment: int, variance_control: float, variance_treatment: float
) -> float:
    return math.sqrt(variance_control / n_control + variance_treatment / n_treatment)


def minimum_detectable_effect(
    n_control: int,
    n_treatment: int,
    variance_control: float,
    variance_treatment: float | None = None,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    n_comparisons: int = 1,
    distribution: Distribution = "normal",
    effect_scale: EffectScale = "absolute",
    control_mean: float | None = None,
) -> float:
    """Smallest absolute difference of means detected with probability ``power`` at these sizes.

    ``mde = (z_{1 - a/2} + z_{power}) sqrt(var_c / n_c + var_t / n_t)`` with
    ``a = alpha / n_comparisons`` (Bonferroni) and ``z_{1 - a}`` for a one-sided alternative:
    the inverse of :func:`sample_size`. It ignores the far tail of a two-sided test, so the exact
    power at ``mde`` exceeds ``power`` by at most ``Phi(-2 z_{1 - a/2} - z_{power})``. With
    ``distribution="t"`` it is the effect at which the exact noncentral-t power
    (:func:`achieved_power`) equals ``power``, as statsmodels' ``TTestIndPower.solve_power``.

    With ``effect_scale="relative"`` it is the smallest relative lift ``Delta`` with
    ``Delta |mu_c| = k sqrt(var_t / n_t + (1 + s Delta)**2 var_c / n_c)``, ``k = z + z_power``
    and ``s = -1`` for ``"less"``, else ``+1``: with ``A = k**2 var_c / n_c``,
    ``B = k**2 var_t / n_t`` and ``m = |mu_c|``, the positive root
    ``Delta = (s A + sqrt(A**2 + (m**2 - A)(A + B))) / (m**2 - A)`` of
    ``(m**2 - A) Delta**2 - 2 s A Delta - (A + B) = 0`` (GrowthBook's quadratic, which with
    equal variances and sizes reads ``(1 + sqrt(a (2 - a))) / (1 - a) - 1``,
    ``a = k**2 var / (n mu_c**2)``). It exists only when ``m**2 > A``, i.e.
    ``n_c > k**2 var_c / mu_c**2``: below that, no lift is detectable with that power because
    the lift's own variance grows with it. With ``distribution="t"`` the root of the exact
    noncentral-t power is found numerically.

    Args:
        n_control (int): units in control (at least 1).
        n_treatment (int): units in treatment (at least 1).
        variance_control (float): per-unit variance of the metric in control (not of its mean).
        variance_treatment (float | None): per-unit variance in treatment; default
            ``variance_control``.
        alpha (float): family-wise significance level.
        power (float): target probability of rejecting.
        alternative (Literal["two-sided", "greater", "less"]): the alternative of the test.
        n_comparisons (int): comparisons sharing ``alpha`` (Bonferroni).
        distribution (Literal["normal", "t"]): the planned test's reference distribution.
        effect_scale (Literal["absolute", "relative"]): the scale of the MDE returned.
        control_mean (float | None): the control mean; required for ``"relative"``.

    Returns:
        float: the MDE as a magnitude in the metric's unit (for ``"less"`` the detectable effect
        is ``-mde``), or as a relative lift with ``effect_scale="relative"``.

    Raises:
        ValueError: if an arm has no units, a variance is negative or both are 0, ``alpha`` or
            ``alternative`` is invalid, ``power`` is not between the per-comparison level and
            1, ``n_comparisons < 1``, or (relative) the control is too noisy for any lift to be
            detectable at these sizes.

    References:
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 17. Cambridge University Press.

    Examples:
        >>> round(minimum_detectable_effect(1570, 1570, 1.0), 4)
        0.1
        >>> round(minimum_detectable_effect(5000, 5000, 0.09, n_comparisons=3), 4)
        0.0194
        >>> mde = minimum_detectable_effect(
        ...     5000, 5000, 16.0, effect_scale="relative", control_mean=10.0
        ... )
        >>> round(mde, 5)
        0.02267
    """
    check_units("minimum_detectable_effect", n_control, n_treatment, minimum=1)
    check_alternative(alternative)
    variance_control, variance_treatment = _check_variances(variance_control, variance_treatment)
    alpha_each = _alpha_per_comparison(alpha, n_comparisons)
    _check_power(power, alpha_each)
    _check_distribution(distribution)
    scale = _relative_control(effect_scale, control_mean)
    if scale is not None:
        relative = _relative_mde(
            n_control,
            n_treatment,
            variance_control,
            variance_treatment,
            scale,
            alpha_each=alpha_each,
            power=power,
            alternative=alternative,
            distribution=distribution,
        )
        if math.isinf(relative):
            needed = _z_sum(alpha_each, power, alternative) ** 2 * variance_control / scale**2
            raise ValueError(
                f"No relative lift is detectable with power {power:g} at n_control={n_control}: "
                f"the lift's variance grows with the lift through the control's term, and the "
                f"control needs more than k² var_c / mean_c² = {needed:.4g} units (GrowthBook's "
                f"condition). Wait for more units, or plan on the absolute scale."
            )
        return relative
    se = _std_error(n_control, n_treatment, variance_control, variance_treatment)
    normal_mde = _z_sum(alpha_each, power, alternative) * se
    if distribution == "normal":
        return normal_mde
    df = n_control + n_treatment - 2
    if df < 1:
        raise ValueError("distribution='t' needs at least 3 units over both arms (df >= 1).")
    sign = -1.0 if alternative == "less" else 1.0

    from scipy import optimize  # here, not at the top: see stats/__init__ (lazy scipy)

    def shortfall(effect: float) -> float:
        return _t_power(sign * effect / se, df, alpha_each, alternative) - power

    high = normal_mde
    while shortfall(high) < 0.0:
        high *= 2.0
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-14 * high, rtol=1e-13))


def _relative_mde(
    n_control: int,
    n_treatment: int,
    variance_control: float,
    variance_treatment: float,
    control_scale: float,
    *,
    alpha_each: float,
    power: float,
    alternative: Alternative,
    distribution: Distribution,
) -> float:
    """The relative MDE (see :func:`minimum_detectable_effect`): GrowthBook's quadratic for the
    z-test, a root of the exact power for the t-test; ``inf`` when no lift is detectable."""
    sign = -1.0 if alternative == "less" else 1.0
    k = _z_sum(alpha_each, power, alternative)
    a_term = k**2 * variance_control / n_control
    b_term = k**2 * variance_treatment / n_treatment
    leading = control_scale**2 - a_term
    if leading <= 0.0:
        return math.inf
    normal_mde = (sign * a_term + math.sqrt(a_term**2 + leading * (a_term + b_term))) / leading
    if distribution == "normal":
        return normal_mde
    df = n_control + n_treatment - 2
    if df < 1:
        raise ValueError("distribution='t' needs at least 3 units over both arms (df >= 1).")

    def standardized(lift: float) -> float:
        scaled = _lift_variance_factor(sign * lift) * variance_control
        return lift * control_scale / _std_error(n_control, n_treatment, scaled, variance_treatment)

    from scipy import optimize  # here, not at the top: see stats/__init__ (lazy scipy)

    def shortfall(lift: float) -> float:
        return _t_power(sign * standardized(lift), df, alpha_each, alternative) - power

    high = normal_mde
    for _ in range(60):
        if shortfall(high) >= 0.0:
            break
        high *= 2.0
    else:
        return math.inf
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-14 * high, rtol=1e-13))


def achieved_power(
    effect: float,
    n_control: int,
    n_treatment: int,
    variance_control: float,
    variance_treatment: float | None = None,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    n_comparisons: int = 1,
    distribution: Distribution = "normal",
    effect_scale: EffectScale = "absolute",
    control_mean: float | None = None,
) -> float:
    """Exact normal power of the z-test against a true absolute effect ``effect``.

    With ``lam = effect / sqrt(var_c / n_c + var_t / n_t)`` and ``a = alpha / n_comparisons``:
    ``Phi(lam - z_{1 - a})`` for ``"greater"``, ``Phi(-lam - z_{1 - a})`` for ``"less"``, and
    ``Phi(lam - z_{1 - a/2}) + Phi(-lam - z_{1 - a/2})`` for ``"two-sided"`` (both rejection
    regions, including the far tail). At ``effect = 0`` it is the per-comparison level ``a``.
    With ``distribution="t"``: the noncentral t with ``n_c + n_t - 2`` degrees of freedom and
    noncentrality ``lam`` beyond the central t's critical values (statsmodels'
    ``TTestIndPower.power``, R's ``power.t.test``). With ``effect_scale="relative"``, ``effect``
    is the true lift ``Delta`` and ``lam = Delta |mu_c| / sqrt(var_t / n_t + (1 + Delta)**2
    var_c / n_c)``, the lift over its delta-method standard error (GrowthBook's power).

    Args:
        effect (float): the true ``treatment - control`` in the metric's unit (signed), or the
            true relative lift with ``effect_scale="relative"``.
        n_control (int): units in control (at least 1).
        n_treatment (int): units in treatment (at least 1).
        variance_control (float): per-unit variance of the metric in control (not of its mean).
        variance_treatment (float | None): per-unit variance in treatment; default
            ``variance_control``.
        alpha (float): family-wise significance level.
        alternative (Literal["two-sided", "greater", "less"]): the alternative of the test.
        n_comparisons (int): comparisons sharing ``alpha`` (Bonferroni).
        distribution (Literal["normal", "t"]): the test's reference distribution.
        effect_scale (Literal["absolute", "relative"]): the scale of ``effect``.
        control_mean (float | None): the control mean; required for ``"relative"``.

    Returns:
        float: the probability that the test rejects.

    Raises:
        ValueError: if ``effect`` is not finite, an arm has no units, a variance is negative or
            both are 0, ``alpha`` or ``alternative`` is invalid, or ``n_comparisons < 1``.

    References:
        Chow, S.-C., Shao, J., & Wang, H. (2008). Sample Size Calculations in Clinical Research
        (2nd ed.), section 3.2. Chapman & Hall/CRC.

    Examples:
        >>> round(achieved_power(0.1, 1570, 1570, 1.0), 4)
        0.8001
        >>> round(achieved_power(0.0, 1570, 1570, 1.0), 4)
        0.05
        >>> f"{achieved_power(-0.1, 1570, 1570, 1.0, alternative='greater'):.1e}"
        '4.4e-06'
        >>> power = achieved_power(
        ...     0.02, 6406, 6406, 16.0, effect_scale="relative", control_mean=10.0
        ... )
        >>> round(power, 4)
        0.8
    """
    if not math.isfinite(effect):
        raise ValueError(f"effect must be a finite difference of means; got {effect!r}.")
    scale = _relative_control(effect_scale, control_mean)
    if scale is not None:
        return achieved_power(
            effect * scale,
            n_control,
            n_treatment,
            _lift_variance_factor(effect) * variance_control,
            variance_control if variance_treatment is None else variance_treatment,
            alpha=alpha,
            alternative=alternative,
            n_comparisons=n_comparisons,
            distribution=distribution,
        )
    check_units("achieved_power", n_control, n_treatment, minimum=1)
    check_alternative(alternative)
    variance_control, variance_treatment = _check_variances(variance_control, variance_treatment)
    alpha_each = _alpha_per_comparison(alpha, n_comparisons)
    _check_distribution(distribution)
    standardized = effect / _std_error(n_control, n_treatment, variance_control, variance_treatment)
    if distribution == "t":
        df = n_control + n_treatment - 2
        if df < 1:
            raise ValueError("distribution='t' needs at least 3 units over both arms (df >= 1).")
        return _t_power(standardized, df, alpha_each, alternative)
    crit = critical_value(alpha_each, alternative)
    if alternative == "greater":
        return float(special.ndtr(standardized - crit))
    if alternative == "less":
        return float(special.ndtr(-standardized - crit))
    return float(special.ndtr(standardized - crit) + special.ndtr(-standardized - crit))


def proportion_variance(p: float) -> float:
    """Per-unit variance ``p (1 - p)`` of a 0/1 metric with proportion ``p``.

    This is the Bernoulli variance (``ddof=0``), the one of the unpooled z-test of
    :func:`~exp_dagster.stats.proportions.two_proportion_test`; pass the control's and the
    expected treatment's proportions as ``variance_control`` and ``variance_treatment``. For a
    ratio metric use ``n`` times the delta-method variance of the ratio, and for a CUPED-adjusted
    metric ``Var(y) (1 - rho**2)``; see the module docstring.

    Args:
        p (float): the proportion of units with the event, in ``[0, 1]``.

    Returns:
        float: ``p (1 - p)``.

    Raises:
        ValueError: if ``p`` is outside ``[0, 1]``.

    References:
        Chow, S.-C., Shao, J., & Wang, H. (2008). Sample Size Calculations in Clinical Research
        (2nd ed.), section 4.2 (comparing proportions). Chapman & Hall/CRC.

    Examples:
        >>> proportion_variance(0.1)
        0.09000000000000001
        >>> plan = sample_size(0.01, proportion_variance(0.10), proportion_variance(0.11))
        >>> plan.n_control
        14749
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a proportion between 0 and 1; got {p!r}.")
    return p * (1.0 - p)


def days_needed(required_units: int, current_units: int, units_per_day: float) -> float:
    """Additional days until ``required_units`` are enrolled, at ``units_per_day`` new units.

    ``max(0, required_units - current_units) / units_per_day``; 0 when enough units are already
    enrolled and ``inf`` when more are needed but none arrive. Not rounded: take the ceiling for
    whole days. It assumes steady traffic of *new* units (returning units add none) and a
    per-unit variance that stays as it is now. For a cumulative metric (e.g. revenue per user
    since the start) the per-unit variance usually grows with time, so the required size grows
    too: read the result as a lower bound, and recompute it every day.

    Args:
        required_units (int): units needed (in one arm, or in total; the same as the others).
        current_units (int): units enrolled so far.
        units_per_day (float): new units enrolled per day at the current rate.

    Returns:
        float: days still needed, 0 or more, possibly ``inf``.

    Raises:
        ValueError: if a count is negative or the rate is negative or not finite.

    References:
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 17 (sample size and experiment duration). Cambridge University Press.

    Examples:
        >>> days_needed(10_000, 4_000, 1_500.0)
        4.0
        >>> days_needed(10_000, 12_000, 0.0), days_needed(10_000, 4_000, 0.0)
        (0.0, inf)
    """
    for name, value in (("required_units", required_units), ("current_units", current_units)):
        if value < 0:
            raise ValueError(f"{name} is a number of units and cannot be negative; got {value}.")
    if not (math.isfinite(units_per_day) and units_per_day >= 0.0):
        raise ValueError(
            f"units_per_day must be a finite, non-negative rate of new units; got "
            f"{units_per_day!r}."
        )
    missing = max(0, required_units - current_units)
    if missing == 0:
        return 0.0
    if units_per_day == 0.0:
        return math.inf
    return missing / units_per_day


def power_summary(
    *,
    control_mean: float,
    variance_control: float,
    variance_treatment: float,
    n_control: int,
    n_treatment: int,
    target_relative_mde: float,
    alpha: float,
    power: float,
    new_units_per_day: float,
    alternative: Alternative = "two-sided",
    n_comparisons: int = 1,
    effect_scale: EffectScale = "absolute",
) -> PowerSummary:
    """Is one metric powered for its target relative MDE, what can it detect, how long to go?

    With the current sizes and the observed per-unit variances (CUPED-adjusted ones when the
    analysis uses CUPED): ``mde_abs`` is :func:`minimum_detectable_effect` at the target power,
    ``mde_rel = mde_abs / |control_mean|``; ``power_at_target`` is :func:`achieved_power` against
    the absolute effect ``target_relative_mde * |control_mean|`` (negated for ``"less"``);
    the required sizes are :func:`sample_size` for that effect with
    ``allocation = n_treatment / n_control``; and ``days_needed`` is the largest over the two
    arms of :func:`days_needed`, each arm receiving its current share of ``new_units_per_day``.
    When ``control_mean == 0`` a relative effect is undefined: ``mde_rel``, ``power_at_target``
    and ``days_needed`` are ``nan``, the required sizes ``None`` and ``powered`` is ``False``.

    With ``effect_scale="relative"`` the target is a lift tested on its own scale (GrowthBook's
    convention): ``mde_rel`` is :func:`minimum_detectable_effect` on the relative scale
    (``inf`` when no lift is detectable yet) and ``mde_abs = mde_rel * |control_mean|``; the
    power and the sizes use the delta-method variance of the lift at the target, which for a
    positive lift is a little larger than the absolute scale's (the control's term is scaled by
    ``(1 + lift)**2``), so more units are needed.

    Args:
        control_mean (float): the control arm's mean (or ratio), which scales relative effects.
        variance_control (float): per-unit variance of the metric in control.
        variance_treatment (float): per-unit variance of the metric in treatment.
        n_control (int): control units so far (at least 1).
        n_treatment (int): treatment units so far (at least 1).
        target_relative_mde (float): the spec's relative MDE, e.g. 0.02 for 2 %.
        alpha (float): family-wise significance level of the analysis.
        power (float): target power, e.g. 0.8.
        new_units_per_day (float): new units per day entering these two arms together, at the
            current rate.
        alternative (Literal["two-sided", "greater", "less"]): the alternative of the analysis.
        n_comparisons (int): comparisons sharing ``alpha`` (Bonferroni), e.g. the number of
            treatment arms.
        effect_scale (Literal["absolute", "relative"]): the scale the test is planned on.

    Returns:
        PowerSummary: detectable effect now, power at the target, required sizes and days.

    Raises:
        ValueError: if ``control_mean`` is not finite, ``target_relative_mde`` is not positive
            and finite, or any input rejected by the functions above is invalid.

    References:
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 17. Cambridge University Press.
        Deng, A., Xu, Y., Kohavi, R., & Walker, T. (2013). Improving the Sensitivity of Online
        Controlled Experiments by Utilizing Pre-Experiment Data. WSDM 2013.

    Examples:
        >>> summary = power_summary(
        ...     control_mean=10.0, variance_control=16.0, variance_treatment=16.0,
        ...     n_control=20_000, n_treatment=20_000, target_relative_mde=0.01, alpha=0.05,
        ...     power=0.8, new_units_per_day=5_000.0,
        ... )
        >>> round(summary.mde_rel, 4), round(summary.power_at_target, 4), summary.powered
        (0.0112, 0.7054, False)
        >>> summary.required_n_control, summary.required_n_treatment, round(summary.days_needed, 2)
        (25117, 25117, 2.05)
    """
    if not math.isfinite(control_mean):
        raise ValueError(f"control_mean must be a finite number; got {control_mean!r}.")
    _check_positive_finite(
        "target_relative_mde", target_relative_mde, "a relative effect, e.g. 0.02 for 2 %"
    )
    if not (math.isfinite(new_units_per_day) and new_units_per_day >= 0.0):
        raise ValueError(
            f"new_units_per_day must be a finite, non-negative rate of new units; got "
            f"{new_units_per_day!r}."
        )
    if effect_scale not in EFFECT_SCALES:
        raise ValueError(f"effect_scale must be 'absolute' or 'relative'; got {effect_scale!r}.")
    relative = effect_scale == "relative"
    if relative and control_mean != 0.0:
        alpha_each = _alpha_per_comparison(alpha, n_comparisons)
        check_units("power_summary", n_control, n_treatment, minimum=1)
        check_alternative(alternative)
        _check_power(power, alpha_each)
        variances = _check_variances(variance_control, variance_treatment)
        mde_rel = _relative_mde(
            n_control,
            n_treatment,
            *variances,
            abs(control_mean),
            alpha_each=alpha_each,
            power=power,
            alternative=alternative,
            distribution="normal",
        )
        mde_abs = mde_rel * abs(control_mean)
    else:
        mde_abs = minimum_detectable_effect(
            n_control,
            n_treatment,
            variance_control,
            variance_treatment,
            alpha=alpha,
            power=power,
            alternative=alternative,
            n_comparisons=n_comparisons,
        )
        mde_rel = mde_abs / abs(control_mean) if control_mean != 0.0 else math.nan
    alpha_each = alpha / n_comparisons
    correction = (
        f" (Bonferroni: {alpha_each:.4g} for each of {n_comparisons} comparisons)"
        if n_comparisons > 1
        else ""
    )
    method = (
        f"{sidedness(alternative)} z-test of a difference of means (normal approximation) at "
        f"alpha {alpha:g}{correction}, target power {power:g}, observed per-unit variances; "
        + (
            "relative lift over its delta-method standard error at the target (GrowthBook); "
            if relative
            else "relative effects against |control mean|; "
        )
        + "days at the current rate and split of new units"
    )
    if control_mean == 0.0:
        return PowerSummary(
            mde_abs=mde_abs,
            mde_rel=math.nan,
            power_at_target=math.nan,
            required_n_control=None,
            required_n_treatment=None,
            days_needed=math.nan,
            powered=False,
            method=method,
        )
    target = target_relative_mde if relative else target_relative_mde * abs(control_mean)
    scale_options: dict[str, Any] = (
        {"effect_scale": "relative", "control_mean": control_mean} if relative else {}
    )
    power_at_target = achieved_power(
        -target if alternative == "less" else target,
        n_control,
        n_treatment,
        variance_control,
        variance_treatment,
        alpha=alpha,
        alternative=alternative,
        n_comparisons=n_comparisons,
        **scale_options,
    )
    required = sample_size(
        target,
        variance_control,
        variance_treatment,
        alpha=alpha,
        power=power,
        alternative=alternative,
        allocation=n_treatment / n_control,
        n_comparisons=n_comparisons,
        **scale_options,
    )
    share_control = n_control / (n_control + n_treatment)
    days = max(
        days_needed(required.n_control, n_control, new_units_per_day * share_control),
        days_needed(required.n_treatment, n_treatment, new_units_per_day * (1.0 - share_control)),
    )
    return PowerSummary(
        mde_abs=mde_abs,
        mde_rel=mde_rel,
        power_at_target=power_at_target,
        required_n_control=required.n_control,
        required_n_treatment=required.n_treatment,
        days_needed=days,
        powered=power_at_target >= power,
        method=method,
    )
