"""The result every test returns, and the relative lift with its interval (delta method, Fieller,
log scale, or the absolute interval divided by the control mean) and its own test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    confidence_interval,
    critical_value,
    infer,
    welch_df,
)

RelativeCI = Literal["delta", "fieller", "log", "divided"]
"""How the relative lift's interval is computed: delta method, Fieller's theorem, the delta
method on the log of the ratio (tea-tasting), or the absolute interval divided by the control
mean (spotify-confidence)."""

RELATIVE_CIS: tuple[str, ...] = get_args(RelativeCI)

Distribution = Literal["default", "t", "normal"]
"""The distribution a test's statistic is referred to (and its intervals' critical value taken
from): ``"default"``, each test's own (Student t for the t-tests: Welch, Student, CUPED,
post-stratified; the standard normal for the z-tests: proportions, ratios, quantiles);
``"normal"``, the standard normal for every test (spotify-confidence's z-tests, tea-tasting's
``use_t=False``); ``"t"``, Student t for every test, with the test's own degrees of freedom where
it has them and the Welch-Satterthwaite df of the two arms' variances of the mean otherwise
(GrowthBook's frequentist engine, gbstats ``TTest.dof``)."""

DISTRIBUTIONS: tuple[str, ...] = get_args(Distribution)

PValueScale = Literal["absolute", "relative"]
"""Which effect the p-value tests: ``"absolute"``, ``treatment - control``; ``"relative"``, the
relative lift ``treatment / control - 1`` (:func:`relative_lift_test`, GrowthBook's)."""

P_VALUE_SCALES: tuple[str, ...] = get_args(PValueScale)


def check_relative_ci(relative_ci: str) -> None:
    """Raise a ``ValueError`` unless ``relative_ci`` is one of :data:`RELATIVE_CIS`."""
    if relative_ci not in RELATIVE_CIS:
        options = ", ".join(repr(option) for option in RELATIVE_CIS)
        raise ValueError(
            f"relative_ci must be one of {options} (how the relative lift's interval is "
            f"computed); got {relative_ci!r}."
        )


def check_distribution(distribution: str) -> None:
    """Raise a ``ValueError`` unless ``distribution`` is one of :data:`DISTRIBUTIONS`."""
    if distribution not in DISTRIBUTIONS:
        options = ", ".join(repr(option) for option in DISTRIBUTIONS)
        raise ValueError(
            f"distribution must be one of {options} (what the test statistic is referred to); "
            f"got {distribution!r}."
        )


def check_p_value_scale(p_value_scale: str) -> None:
    """Raise a ``ValueError`` unless ``p_value_scale`` is one of :data:`P_VALUE_SCALES`."""
    if p_value_scale not in P_VALUE_SCALES:
        options = ", ".join(repr(option) for option in P_VALUE_SCALES)
        raise ValueError(
            f"p_value_scale must be one of {options} (whether the p-value tests the absolute "
            f"difference or the relative lift); got {p_value_scale!r}."
        )


def reference_df(
    df: float,
    distribution: Distribution,
    var_mean_control: float,
    var_mean_treatment: float,
    n_control: int,
    n_treatment: int,
) -> float:
    """The degrees of freedom a test's statistic is referred to under ``distribution``.

    ``df`` is the test's own (``inf`` for a z-test). ``"default"`` keeps it, ``"normal"`` makes
    it ``inf``, ``"t"`` keeps a finite one and replaces ``inf`` by the Welch-Satterthwaite df
    ``(v_c + v_t)**2 / (v_c**2 / (n_c - 1) + v_t**2 / (n_t - 1))`` of the arms' variances of the
    mean ``v`` (gbstats' ``TTest.dof``, written with per-unit variances ``s**2 = n v``).

    Examples:
        >>> reference_df(math.inf, "t", 0.04, 0.09, 50, 60) == welch_df(0.04, 0.09, 50, 60)
        True
        >>> reference_df(98.0, "normal", 0.04, 0.09, 50, 60), reference_df(98.0, "t", 1, 1, 2, 2)
        (inf, 98.0)
    """
    check_distribution(distribution)
    if distribution == "normal":
        return math.inf
    if distribution == "t" and math.isinf(df):
        return welch_df(var_mean_control, var_mean_treatment, n_control, n_treatment)
    return df


def distribution_words(distribution: Distribution, own_df: float) -> str:
    """The end of a ``method`` sentence when ``distribution`` changes the test's reference
    (``own_df``: the test's own df, ``inf`` for a z-test); "" when it does not."""
    check_distribution(distribution)
    if distribution == "normal" and math.isfinite(own_df):
        return "; statistic referred to the standard normal (z)"
    if distribution == "t" and math.isinf(own_df):
        return "; statistic referred to Student t with Welch-Satterthwaite df"
    return ""


def relative_ci_words(relative_ci: RelativeCI) -> str:
    """The end of a result's ``method`` sentence naming the relative lift's interval."""
    check_relative_ci(relative_ci)
    return {
        "delta": "relative lift CI by delta method",
        "fieller": "relative lift CI by Fieller's theorem (excludes 0 exactly when the absolute "
        "CI does)",
        "log": "relative lift CI by delta method on the log of the ratio",
        "divided": "relative lift CI as the absolute CI divided by the control mean (its "
        "noise ignored)",
    }[relative_ci]


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
        rel_ci_low: lower bound of the relative lift, by the delta method (the default; not on
            the log scale: symmetric around ``rel_effect``) or by Fieller's theorem (asymmetric;
            ``-inf`` together with ``rel_ci_high = +inf`` when the control summary is not
            significantly different from 0), as ``relative_ci`` says; ``nan`` when
            ``mean_control == 0``.
        rel_ci_high: upper bound of the relative lift, as ``rel_ci_low``.
        p_value: p-value of the test of no difference under the alternative: of the absolute
            difference, or of the relative lift when the test was asked ``p_value_scale=
            "relative"`` (:func:`relative_lift_test`).
        statistic: the t or z statistic of that test.
        std_error: standard error of ``abs_effect``.
        n_control: units in the control arm.
        n_treatment: units in the treatment arm.
        method: one sentence naming the test and its conventions.
        variance_reduction: CUPED only: ``1 - Var(adjusted) / Var(unadjusted)`` of the per-unit
            metric, pooled over arms; ``None`` for the other tests.
        relative_ci: how the relative lift's interval was computed: ``"delta"``,
            ``"fieller"``, ``"log"`` or ``"divided"`` (see :func:`relative_lift`).
        rel_std_error: delta-method standard error of ``rel_effect``, whichever interval
            ``relative_ci`` chose (``nan`` when ``mean_control == 0``); what a normal
            approximation of the lift needs (Bayesian summary, relative margins).
        df: degrees of freedom of the reference distribution (``inf`` for a z-test), the
            test's own or the one its ``distribution`` asked for (:func:`reference_df`).
        cuped_theta: CUPED only (:func:`~exp_dagster.stats.cuped_test`,
            :func:`~exp_dagster.stats.cuped_ratio_test`, and
            :func:`~exp_dagster.stats.regression_adjusted_test` with one covariate): the
            coefficient θ of the pre-period covariate, ``adjusted = y - θ (c - mean(c))`` (for
            a ratio, the slope of the linearised ratio on the linearised pre-period ratio);
            ``None`` for the other tests.
        var_mean_control: the variance of ``mean_control`` the test used (``nan`` where the arms
            are not independent, as in the paired t-test); with ``var_mean_treatment``, what
            combining estimates across strata needs
            (:func:`~exp_dagster.stats.stratification.stratified_effect`).
        var_mean_treatment: the variance of ``mean_treatment``, as ``var_mean_control``.
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
    relative_ci: str = "delta"
    rel_std_error: float = math.nan
    df: float = math.inf
    cuped_theta: float | None = None
    var_mean_control: float = math.nan
    var_mean_treatment: float = math.nan


def _fieller_ratio_bounds(
    mean_control: float,
    mean_treatment: float,
    var_mean_control: float,
    var_mean_treatment: float,
    crit: float,
) -> tuple[float, float]:
    """Roots ``low <= high`` of ``(mt - r mc)**2 = crit**2 (vt + r**2 vc)``, or ``(-inf, inf)``.

    The roots exist and bound the Fieller set exactly when ``mc**2 > crit**2 vc``; otherwise the
    set is the whole line or the complement of an interval, reported as ``(-inf, inf)``.
    """
    g = crit**2 * var_mean_control / mean_control**2
    if g >= 1.0:
        return -math.inf, math.inf
    ratio = mean_treatment / mean_control
    # The discriminant, divided by mc**2, is vt (1 - g) + r**2 vc >= 0 when g < 1.
    spread = (
        abs(crit)
        / abs(mean_control)
        * math.sqrt(var_mean_treatment * (1.0 - g) + ratio**2 * var_mean_control)
    )
    return (ratio - spread) / (1.0 - g), (ratio + spread) / (1.0 - g)


def _lift_std_error(
    mean_control: float, mean_treatment: float, var_mean_control: float, var_mean_treatment: float
) -> float:
    """Delta-method standard error of ``mean_treatment / mean_control`` for independent arms:
    ``sqrt(v_t / m_c**2 + m_t**2 v_c / m_c**4)``; ``nan`` when ``mean_control == 0``."""
    if mean_control == 0.0:
        return math.nan
    return math.sqrt(
        var_mean_treatment / mean_control**2
        + mean_treatment**2 * var_mean_control / mean_control**4
    )


def relative_lift(
    mean_control: float,
    mean_treatment: float,
    var_mean_control: float,
    var_mean_treatment: float,
    *,
    alpha: float,
    alternative: Alternative,
    crit: float | None = None,
    relative_ci: RelativeCI = "delta",
) -> tuple[float, float, float]:
    """Relative lift ``mean_treatment / mean_control - 1`` with a delta-method or Fieller interval.

    ``relative_ci="delta"`` (default): with independent arms, the first-order (delta-method)
    variance of the ratio of means is ``var_mean_treatment / mc**2 + mt**2 * var_mean_control /
    mc**4``, and the interval is ``lift -/+ crit * se`` on the natural scale (not log-transformed,
    so symmetric around the lift).

    ``relative_ci="fieller"``: the interval inverts the test of ``H0: mt = r mc``, whose statistic
    ``(mt - r mc) / sqrt(vt + r**2 vc)`` does not linearise the ratio. Its bounds for the ratio
    ``r`` are the roots of ``(mt - r mc)**2 = crit**2 (vt + r**2 vc)``,
    ``(r_hat -/+ (crit / |mc|) sqrt(vt (1 - g) + r_hat**2 vc)) / (1 - g)`` with
    ``r_hat = mt / mc`` and ``g = crit**2 vc / mc**2``, and the lift's bounds are ``r - 1``. The
    interval is asymmetric around the lift, wider on the side away from 0 when the control mean is
    noisy, and it keeps its coverage where the delta method undercovers (simulated, 100 normal
    units per arm and a control mean with coefficient of variation 0.3: two-sided coverage 0.967
    against the delta method's 0.936, one-sided upper bound 0.951 against 0.904). When
    ``mc**2 <= crit**2 vc`` (``g >= 1``: the control mean is not significantly different from 0
    at this level) the Fieller set is unbounded (the whole line or the complement of an interval)
    and the interval returned is ``(-inf, inf)``; both methods agree to first order when both
    means' coefficients of variation are small.

    ``relative_ci="log"`` (tea-tasting's convention): the delta method on ``log(mt / mc)``, whose
    variance is ``vt / mt**2 + vc / mc**2``; the bounds ``exp(log r -/+ crit * se) - 1`` are
    asymmetric and never below -100 %. Undefined when the means have opposite signs or one is 0:
    the interval is then ``(-inf, inf)``.

    ``relative_ci="divided"`` (spotify-confidence's convention): the absolute interval
    ``(mt - mc) -/+ crit * sqrt(vt + vc)`` divided by ``mc``, as if the control mean were known;
    it ignores the control mean's noise, so it is narrower than the others and undercovers when
    that noise matters.

    Both use the same critical value ``crit`` as the absolute interval, two-sided or one-sided at
    level ``1 - alpha`` as ``alternative`` says: a one-sided alternative gives the matching
    one-sided bound (the two-sided formula at the one-sided critical value, the other bound
    infinite). One-sided Fieller bounds assume the sign of the control mean is well determined,
    which is what a bounded interval means.

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
        relative_ci (Literal["delta", "fieller", "log", "divided"]): the delta method
            (default), Fieller's theorem, the log-scale delta method, or the absolute interval
            divided by the control mean.

    Returns:
        tuple[float, float, float]: ``(rel_effect, low, high)``; all ``nan`` when
        ``mean_control == 0``, where the lift is undefined.

    Raises:
        ValueError: if ``alpha``, ``alternative`` or ``relative_ci`` is invalid.

    References:
        Fieller, E. C. (1954). Some Problems in Interval Estimation. Journal of the Royal
        Statistical Society, Series B, 16(2), 175-185.
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 18 (relative differences). Cambridge University Press.

    Examples:
        >>> lift = relative_lift(10.0, 10.5, 0.04, 0.05, alpha=0.05, alternative="two-sided")
        >>> [round(value, 4) for value in lift]
        [0.05, -0.0101, 0.1101]
        >>> relative_lift(0.0, 1.0, 0.1, 0.1, alpha=0.05, alternative="two-sided")
        (nan, nan, nan)

        A noisy control mean (coefficient of variation 0.3): the delta interval is symmetric,
        Fieller's is skewed away from 0, and unbounded once the control mean is not significantly
        different from 0:

        >>> delta = relative_lift(1.0, 1.2, 0.09, 0.09, alpha=0.05, alternative="two-sided")
        >>> [round(value, 4) for value in delta]
        [0.2, -0.7185, 1.1185]
        >>> fieller = relative_lift(
        ...     1.0, 1.2, 0.09, 0.09, alpha=0.05, alternative="two-sided", relative_ci="fieller"
        ... )
        >>> [round(value, 4) for value in fieller]
        [0.2, -0.4664, 2.1347]
        >>> relative_lift(
        ...     1.0, 1.5, 0.36, 0.09, alpha=0.05, alternative="two-sided", relative_ci="fieller"
        ... )
        (0.5, -inf, inf)
    """
    check_alpha(alpha)
    check_alternative(alternative)
    check_relative_ci(relative_ci)
    if mean_control == 0.0:
        return math.nan, math.nan, math.nan
    lift = mean_treatment / mean_control - 1.0
    if crit is None:
        crit = critical_value(alpha, alternative)
    if relative_ci == "fieller":
        ratio_low, ratio_high = _fieller_ratio_bounds(
            mean_control, mean_treatment, var_mean_control, var_mean_treatment, crit
        )
        low = ratio_low - 1.0 if alternative in ("two-sided", "greater") else -math.inf
        high = ratio_high - 1.0 if alternative in ("two-sided", "less") else math.inf
        return lift, low, high
    if relative_ci == "log":
        ratio = mean_treatment / mean_control
        if ratio <= 0.0:
            return lift, -math.inf, math.inf
        log_se = math.sqrt(
            var_mean_treatment / mean_treatment**2 + var_mean_control / mean_control**2
        )
        log_low, log_high = confidence_interval(math.log(ratio), log_se, crit, alternative)
        return lift, math.expm1(log_low), math.expm1(log_high)
    if relative_ci == "divided":
        abs_low, abs_high = confidence_interval(
            mean_treatment - mean_control,
            math.sqrt(var_mean_control + var_mean_treatment),
            crit,
            alternative,
        )
        bounds = sorted((abs_low / mean_control, abs_high / mean_control))
        return lift, bounds[0], bounds[1]
    se = _lift_std_error(mean_control, mean_treatment, var_mean_control, var_mean_treatment)
    low, high = confidence_interval(lift, se, crit, alternative)
    return lift, low, high


def relative_lift_test(
    mean_control: float,
    mean_treatment: float,
    var_mean_control: float,
    var_mean_treatment: float,
    *,
    alternative: Alternative = "two-sided",
    scale: Literal["natural", "log"] = "natural",
    df: float = math.inf,
) -> tuple[float, float]:
    """A test of the relative lift itself: ``(statistic, p_value)`` of ``H0: lift = 0``.

    ``scale="natural"``: ``lift / se`` with the delta-method standard error of the lift (the test
    that matches ``relative_ci="delta"``; GrowthBook's frequentist test, gbstats ``TTest``);
    ``scale="log"``: ``log(mt / mc) / se_log`` with ``se_log**2 = vt / mt**2 + vc / mc**2`` (the
    test that matches ``relative_ci="log"``, tea-tasting's interval). Both are asymptotically the
    test of ``mt = mc``; at finite samples they differ from the absolute test's p-value, which
    Fieller's interval follows. The statistic is referred to the standard normal (``df`` infinite,
    the default) or to Student t with ``df`` degrees of freedom (GrowthBook refers it to t with
    the Welch-Satterthwaite df of the arms). ``nan`` when ``mean_control == 0``, or on the log
    scale when the means have opposite signs or one is 0.

    Args:
        mean_control (float): the control mean ``mc``.
        mean_treatment (float): the treatment mean ``mt``.
        var_mean_control (float): variance of the control mean.
        var_mean_treatment (float): variance of the treatment mean.
        alternative (Literal["two-sided", "greater", "less"]): about the lift.
        scale (Literal["natural", "log"]): the lift's scale.
        df (float): degrees of freedom of the reference Student t; ``inf`` (default) for the
            standard normal.

    Returns:
        tuple[float, float]: the z (or t) statistic and its p-value.

    Raises:
        ValueError: if ``alternative`` or ``scale`` is invalid.

    Examples:
        >>> [round(v, 4) for v in relative_lift_test(10.0, 10.5, 0.04, 0.05)]
        [1.63, 0.1031]
        >>> [round(v, 4) for v in relative_lift_test(10.0, 10.5, 0.04, 0.05, scale="log")]
        [1.67, 0.0949]
        >>> [round(v, 4) for v in relative_lift_test(10.0, 10.5, 0.04, 0.05, df=20.0)]
        [1.63, 0.1188]
    """
    check_alternative(alternative)
    if scale not in ("natural", "log"):
        raise ValueError(f"scale must be 'natural' or 'log'; got {scale!r}.")
    if mean_control == 0.0:
        return math.nan, math.nan
    if scale == "log":
        ratio = mean_treatment / mean_control
        if ratio <= 0.0:
            return math.nan, math.nan
        se = math.sqrt(var_mean_treatment / mean_treatment**2 + var_mean_control / mean_control**2)
        estimate = math.log(ratio)
    else:
        se = _lift_std_error(mean_control, mean_treatment, var_mean_control, var_mean_treatment)
        estimate = mean_treatment / mean_control - 1.0
    inference = infer(estimate, se, alpha=0.05, alternative=alternative, df=df)
    return inference.statistic, inference.p_value


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
    relative_ci: RelativeCI = "delta",
    continuity: float = 0.0,
    cuped_theta: float | None = None,
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """Assemble an :class:`EffectEstimate` from two independent arm summaries (package-private).

    The absolute effect gets ``std_error = sqrt(var_mean_control + var_mean_treatment)`` and a
    Student t (finite ``df``) or normal interval; the relative lift reuses the same critical value,
    with the delta method or Fieller's theorem as ``relative_ci`` says (``method`` should name it:
    see :func:`relative_ci_words`). ``test_std_error`` replaces the standard error in the
    statistic only (pooled proportions); ``continuity`` is a continuity correction of the absolute
    effect's test and interval (:func:`~exp_dagster.stats._common.infer`).

    ``distribution`` replaces the test's own reference ``df`` (:func:`reference_df`) for the
    statistic and every interval, and the ``method`` says so (:func:`distribution_words`).
    ``p_value_scale="relative"`` takes ``statistic`` and ``p_value`` from
    :func:`relative_lift_test` on the same variances and reference df (on the log scale when
    ``relative_ci="log"``, else on the natural scale), instead of the absolute difference's
    test; ``test_std_error`` and ``continuity`` then bear on nothing but the absolute interval's
    continuity widening.
    """
    check_alpha(alpha)
    check_alternative(alternative)
    check_relative_ci(relative_ci)
    check_p_value_scale(p_value_scale)
    own_df = df
    df = reference_df(
        df, distribution, var_mean_control, var_mean_treatment, n_control, n_treatment
    )
    method += distribution_words(distribution, own_df)
    effect = mean_treatment - mean_control
    std_error = math.sqrt(var_mean_control + var_mean_treatment)
    inference = infer(
        effect,
        std_error,
        alpha=alpha,
        alternative=alternative,
        df=df,
        test_std_error=test_std_error,
        continuity=continuity,
    )
    statistic, p_value = inference.statistic, inference.p_value
    if p_value_scale == "relative":
        scale: Literal["natural", "log"] = "log" if relative_ci == "log" else "natural"
        statistic, p_value = relative_lift_test(
            mean_control,
            mean_treatment,
            var_mean_control,
            var_mean_treatment,
            alternative=alternative,
            scale=scale,
            df=df,
        )
        method += (
            f"; p-value of the relative lift (delta method"
            f"{' on the log of the ratio' if scale == 'log' else ''})"
        )
    rel_effect, rel_low, rel_high = relative_lift(
        mean_control,
        mean_treatment,
        var_mean_control,
        var_mean_treatment,
        alpha=alpha,
        alternative=alternative,
        crit=inference.critical_value,
        relative_ci=relative_ci,
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
        p_value=p_value,
        statistic=statistic,
        std_error=std_error,
        n_control=n_control,
        n_treatment=n_treatment,
        method=method,
        variance_reduction=variance_reduction,
        relative_ci=relative_ci,
        rel_std_error=_lift_std_error(
            mean_control, mean_treatment, var_mean_control, var_mean_treatment
        ),
        df=df,
        cuped_theta=cuped_theta,
        var_mean_control=var_mean_control,
        var_mean_treatment=var_mean_treatment,
    )
