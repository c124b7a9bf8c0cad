"""Non-inferiority tests for guardrail metrics: is any harm smaller than a tolerated margin?

A guardrail metric (latency, crash rate, revenue while testing a ranking model) need not improve;
the launch only needs evidence that it did not get worse by more than a margin. That is a
one-sided test with a shifted null hypothesis, ``H0: harm >= margin`` against ``H1: harm <
margin``, the lower (or upper) half of Schuirmann's two one-sided tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from scipy import special

from exp_dagster.stats._common import confidence_interval, infer
from exp_dagster.stats.effects import EffectEstimate

Direction = Literal["increase", "decrease"]
"""Which way the metric should move: harm is a decrease for ``"increase"`` metrics."""

MarginType = Literal["relative", "absolute"]
"""Whether a margin is on the relative lift (0.01 = 1%) or on the absolute difference."""

# Recovered critical values within this relative distance of the normal quantile are read as z:
# a Student t that close has more than ~1e9 degrees of freedom.
_NORMAL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NonInferiorityResult:
    """The outcome of a one-sided non-inferiority test.

    Attributes:
        bound: the one-sided ``1 - alpha`` confidence bound on the side of harm: the lower bound
            of the effect for ``"increase"`` metrics, the upper bound for ``"decrease"`` metrics;
            ``nan`` when the effect is undefined.
        margin: the tolerated harm (non-negative), on the scale of the effect.
        statistic: ``(estimate - null_value) / std_error`` with ``null_value = -margin`` for
            ``"increase"`` metrics and ``+margin`` for ``"decrease"`` metrics (t or z; ``+/-inf``
            or 0 when the standard error is 0).
        p_value: one-sided p-value of ``H0: harm >= margin``.
        passed: ``p_value < alpha``, equivalently the bound lies strictly within the margin
            (``bound > -margin`` for ``"increase"``, ``bound < margin`` for ``"decrease"``);
            ``False`` when the effect is undefined.
        method: one sentence naming the test, its null hypothesis and reference distribution.
    """

    bound: float
    margin: float
    statistic: float
    p_value: float
    passed: bool
    method: str


def _check_direction(direction: str) -> None:
    options = get_args(Direction)
    if direction not in options:
        raise ValueError(
            f"direction must be one of {', '.join(repr(o) for o in options)} (the way the metric "
            f"should move, so that harm is the opposite); got {direction!r}."
        )


def _check_margin(margin: float) -> None:
    if not (math.isfinite(margin) and margin >= 0.0):
        raise ValueError(
            f"The non-inferiority margin is the largest tolerated harm and must be a finite "
            f"number >= 0 (e.g. 0.01 for 1% on the relative scale); got {margin!r}."
        )


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 0.5:
        raise ValueError(
            f"alpha of a one-sided non-inferiority test must be strictly between 0 and 0.5, "
            f"e.g. 0.05; got {alpha!r}."
        )


def _check_df(df: float) -> None:
    if not df > 0.0:  # also rejects nan
        raise ValueError(
            f"df must be positive (math.inf for a z-test); got {df!r}. Pass the degrees of "
            f"freedom of the estimate's t distribution."
        )


def _test_name(df: float) -> str:
    return "z-test" if math.isinf(df) else f"t-test ({df:.1f} df)"


def _test(
    estimate: float,
    std_error: float,
    margin: float,
    *,
    direction: Direction,
    alpha: float,
    df: float,
    scale: str,
) -> NonInferiorityResult:
    """The test on validated numbers; ``scale`` names the estimate in the method sentence."""
    null_value = -margin if direction == "increase" else margin
    alternative = "greater" if direction == "increase" else "less"
    inference = infer(estimate - null_value, std_error, alpha=alpha, alternative=alternative, df=df)
    low, high = confidence_interval(estimate, std_error, inference.critical_value, alternative)
    relation = ">" if direction == "increase" else "<"
    opposite = "<=" if direction == "increase" else ">="
    return NonInferiorityResult(
        bound=low if direction == "increase" else high,
        margin=margin,
        statistic=inference.statistic,
        p_value=inference.p_value,
        passed=bool(inference.p_value < alpha),
        method=(
            f"one-sided non-inferiority {_test_name(df)}, H0: {scale} {opposite} {null_value:g} "
            f"vs H1: {scale} {relation} {null_value:g}"
        ),
    )


def non_inferiority_test(
    estimate: float,
    std_error: float,
    margin: float,
    *,
    direction: Direction,
    alpha: float = 0.05,
    df: float = math.inf,
) -> NonInferiorityResult:
    """One-sided test that the harm of a treatment is smaller than ``margin``.

    The estimate can be on any scale, as long as ``std_error`` and ``margin`` are on the same one:
    the absolute difference ``treatment - control`` with its standard error, or the relative lift
    with its delta-method standard error. For a metric that should ``"increase"``, harm is a
    decrease: ``H0: effect <= -margin`` against ``H1: effect > -margin``, statistic
    ``(estimate + margin) / std_error``, upper-tail p-value, and ``bound = estimate - crit *
    std_error``. For a metric that should ``"decrease"`` (latency, errors), ``H0: effect >=
    margin`` against ``H1: effect < margin``, statistic ``(estimate - margin) / std_error``,
    lower-tail p-value, and ``bound = estimate + crit * std_error``. ``crit`` is the ``1 - alpha``
    quantile (one-sided) of Student's t with ``df`` degrees of freedom, or of the standard normal
    when ``df`` is infinite. The test passes when ``p_value < alpha``, which is the same as the
    bound lying strictly within the margin. A zero standard error means no sampling noise: the
    test passes exactly when the estimate lies strictly within the margin. ``margin = 0`` gives
    the one-sided superiority test.

    Args:
        estimate (float): the estimated effect (absolute difference or relative lift).
        std_error (float): its standard error, on the same scale.
        margin (float): the largest tolerated harm, ``>= 0``, on the same scale (e.g. 0.01 for a
            1% relative margin).
        direction (Literal["increase", "decrease"]): the way the metric should move.
        alpha (float): one-sided significance level, strictly between 0 and 0.5.
        df (float): degrees of freedom of the t reference (e.g. Welch's); ``math.inf`` for z.

    Returns:
        NonInferiorityResult: the bound on the side of harm, the statistic, the p-value of
        ``H0: harm >= margin`` and whether the test passed.

    Raises:
        ValueError: if ``estimate`` is not finite, ``std_error`` is negative or not finite,
            ``margin`` is negative or not finite, or ``direction``, ``alpha`` or ``df`` is
            invalid.

    References:
        Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure and the power
        approach for assessing the equivalence of average bioavailability. Journal of
        Pharmacokinetics and Biopharmaceutics, 15(6), 657-680.
        Wellek, S. (2010). Testing Statistical Hypotheses of Equivalence and Noninferiority
        (2nd ed.). Chapman & Hall/CRC.
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 21 (guardrail metrics). Cambridge University Press.

    Examples:
        A conversion lift of -0.4% with standard error 0.5% against a 2% margin:

        >>> result = non_inferiority_test(-0.004, 0.005, 0.02, direction="increase")
        >>> round(result.bound, 5), round(result.statistic, 4), round(result.p_value, 5)
        (-0.01222, 3.2, 0.00069)
        >>> result.passed
        True
        >>> result.method
        'one-sided non-inferiority z-test, H0: effect <= -0.02 vs H1: effect > -0.02'

        Latency up 30 ms (standard error 20 ms, 58 df) against a 50 ms margin does not pass:

        >>> result = non_inferiority_test(30.0, 20.0, 50.0, direction="decrease", df=58.0)
        >>> round(result.bound, 2), round(result.p_value, 4), result.passed
        (63.43, 0.1607, False)
    """
    if not math.isfinite(estimate):
        raise ValueError(
            f"The estimate must be a finite number; got {estimate!r}. An undefined effect (e.g. a "
            f"relative lift against a zero control mean) cannot be tested."
        )
    if not (math.isfinite(std_error) and std_error >= 0.0):
        raise ValueError(f"std_error must be a finite number >= 0; got {std_error!r}.")
    _check_margin(margin)
    _check_direction(direction)
    _check_alpha(alpha)
    _check_df(df)
    return _test(
        estimate, std_error, margin, direction=direction, alpha=alpha, df=df, scale="effect"
    )


def _half_width(estimate: float, low: float, high: float) -> float:
    """Distance from the estimate to its interval's bound(s): the mean of both when two-sided."""
    if math.isfinite(low) and math.isfinite(high):
        return (high - low) / 2.0
    if math.isfinite(low):
        return estimate - low
    return high - estimate


def _recover_df(effect: EffectEstimate, crit: float, alpha: float) -> float:
    """Degrees of freedom of the effect's interval, assuming it has level ``1 - alpha``."""
    two_sided = math.isfinite(effect.abs_ci_low) and math.isfinite(effect.abs_ci_high)
    probability = 1.0 - alpha / 2.0 if two_sided else 1.0 - alpha
    normal_quantile = float(special.ndtri(probability))
    mismatch = ValueError(
        f"The effect's interval does not look like a level {1 - alpha:g} z or Welch t interval "
        f"(its critical value is {crit:.6g}); compute the effect with the same alpha as the "
        f"non-inferiority test, or pass df explicitly."
    )
    if crit < normal_quantile * (1.0 - _NORMAL_TOLERANCE):
        raise mismatch
    if crit <= normal_quantile * (1.0 + _NORMAL_TOLERANCE):
        return math.inf
    df = float(special.stdtridf(probability, crit))
    # Welch-Satterthwaite df lies between min(n) - 1 and n_c + n_t - 2; anything else means the
    # interval was not a level 1 - alpha Welch interval.
    smallest = min(effect.n_control, effect.n_treatment) - 1
    largest = effect.n_control + effect.n_treatment - 2
    if not smallest * (1.0 - 1e-6) <= df <= largest * (1.0 + 1e-6):
        raise mismatch
    return df


def non_inferiority_from_effect(
    effect: EffectEstimate,
    margin: float,
    *,
    margin_type: MarginType,
    direction: Direction,
    alpha: float = 0.05,
    df: float | None = None,
) -> NonInferiorityResult:
    """:func:`non_inferiority_test` on the absolute or relative effect of an ``EffectEstimate``.

    The estimate and its standard error come from the effect: for ``margin_type="absolute"``,
    ``abs_effect`` and ``std_error``; for ``margin_type="relative"``, ``rel_effect`` and the
    delta-method standard error of the lift, recovered as
    ``std_error * (relative half-width) / (absolute half-width)``: both intervals of an
    :class:`EffectEstimate` use the same critical value, so it cancels, whatever the effect's
    alpha, alternative or degrees of freedom (half-widths are taken on the finite side of a
    one-sided interval). A zero standard error gives a zero relative standard error.

    The reference distribution is the effect's: unless ``df`` is given, the degrees of freedom
    are recovered from the effect's critical value ``(absolute half-width) / std_error``
    assuming the effect was computed at the same ``alpha`` (as the pipeline does): the normal
    quantile means a z-test (``df = inf``), a larger value Student's t with the ``df`` that
    gives it (Welch's t-test, CUPED).

    On the relative scale the delta-method standard error is evaluated at the estimated lift, not
    at the null: the test is slightly conservative for ``"increase"`` metrics and slightly liberal
    for ``"decrease"`` ones, by an amount of the order of the control mean's coefficient of
    variation (with 50 units per arm and a CV of 0.03, rejection rates 0.045 and 0.056 at the
    margin for a nominal 0.05; within Monte Carlo error of 0.05 by a CV of 0.007).

    Args:
        effect (EffectEstimate): a result of any test of the package, at level ``1 - alpha``,
            with the relative interval by the delta method if ``margin_type="relative"``.
        margin (float): the largest tolerated harm, ``>= 0``: a fraction of the control for
            ``"relative"`` (0.01 = 1%), in the metric's units for ``"absolute"``.
        margin_type (Literal["relative", "absolute"]): the scale of ``margin``.
        direction (Literal["increase", "decrease"]): the way the metric should move.
        alpha (float): one-sided significance level, strictly between 0 and 0.5.
        df (float | None): degrees of freedom of the t reference; ``None`` recovers them from the
            effect.

    Returns:
        NonInferiorityResult: as :func:`non_inferiority_test`. When the relative lift is
        undefined (``mean_control == 0``, ``rel_effect`` is ``nan``), bound, statistic and
        p-value are ``nan`` and the test does not pass.

    Raises:
        ValueError: if ``margin``, ``margin_type``, ``direction``, ``alpha`` or ``df`` is invalid;
            if ``margin_type="relative"`` and the effect's relative interval is Fieller's (it is
            not ``estimate -/+ crit * se``: recompute the effect with ``relative_ci="delta"``);
            if the effect's interval has zero width with a non-zero standard error; or if
            ``df`` is ``None`` and the effect's interval is not a level ``1 - alpha`` z or Welch
            t interval.

    References:
        Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure and the power
        approach for assessing the equivalence of average bioavailability. Journal of
        Pharmacokinetics and Biopharmaceutics, 15(6), 657-680.
        Wellek, S. (2010). Testing Statistical Hypotheses of Equivalence and Noninferiority
        (2nd ed.). Chapman & Hall/CRC.
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        chapter 21 (guardrail metrics). Cambridge University Press.

    Examples:
        >>> from exp_dagster.stats.means import welch_test
        >>> from exp_dagster.stats.moments import Moments
        >>> control = Moments(n=1000, sum_y=10_000.0, sum_y2=110_000.0)
        >>> treatment = Moments(n=1000, sum_y=9_950.0, sum_y2=109_000.0)
        >>> effect = welch_test(control, treatment)
        >>> result = non_inferiority_from_effect(
        ...     effect, 0.03, margin_type="relative", direction="increase"
        ... )
        >>> round(effect.rel_effect, 4), round(result.bound, 4), round(result.p_value, 4)
        (-0.005, -0.0282, 0.0383)
        >>> result.passed
        True
    """
    _check_margin(margin)
    _check_direction(direction)
    _check_alpha(alpha)
    if margin_type not in get_args(MarginType):
        raise ValueError(
            f"margin_type must be 'relative' (a fraction of the control, 0.01 = 1%) or "
            f"'absolute' (in the metric's units); got {margin_type!r}."
        )
    if df is not None:
        _check_df(df)
    relative = margin_type == "relative"
    if relative and effect.relative_ci != "delta":
        raise ValueError(
            f"A relative non-inferiority margin needs the relative lift's delta-method standard "
            f"error, but this effect's relative interval is by {effect.relative_ci!r}, which is "
            f"not estimate -/+ crit * se. Recompute the effect with relative_ci='delta', or "
            f"compare its one-sided Fieller bound (alternative on the side of harm) with the "
            f"margin."
        )
    scale = "relative lift" if relative else "absolute effect"
    if relative and math.isnan(effect.rel_effect):
        return NonInferiorityResult(
            bound=math.nan,
            margin=margin,
            statistic=math.nan,
            p_value=math.nan,
            passed=False,
            method=(
                f"one-sided non-inferiority test of the {scale}, not run: the relative lift is "
                f"undefined because the control summary is 0"
            ),
        )
    if effect.std_error == 0.0:
        # No sampling noise: the reference distribution does not matter.
        std_error, recovered_df = 0.0, math.inf
    else:
        abs_half_width = _half_width(effect.abs_effect, effect.abs_ci_low, effect.abs_ci_high)
        if not abs_half_width > 0.0:
            raise ValueError(
                f"The effect's interval has zero width but its standard error is "
                f"{effect.std_error:g}, so its critical value is 0 and its scale cannot be "
                f"recovered; compute the effect at a level alpha below 0.5."
            )
        crit = abs_half_width / effect.std_error
        if relative:
            rel_half_width = _half_width(effect.rel_effect, effect.rel_ci_low, effect.rel_ci_high)
            std_error = effect.std_error * rel_half_width / abs_half_width
        else:
            std_error = effect.std_error
        recovered_df = _recover_df(effect, crit, alpha) if df is None else df
    estimate = effect.rel_effect if relative else effect.abs_effect
    return _test(
        estimate, std_error, margin, direction=direction, alpha=alpha, df=recovered_df, scale=scale
    )
