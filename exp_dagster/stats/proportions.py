"""Difference of two proportions: the two-sample z-test, and Fisher's exact test."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    check_units,
    sidedness,
)
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
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
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
    continuity: bool = False,
    pooled_ci: bool = False,
    clip: bool = False,
) -> EffectEstimate:
    """Two-sample z-test of the difference of proportions ``p_t - p_c``.

    With ``pooled=True`` (default) the statistic uses the pooled variance under the null
    hypothesis, ``p(1 - p)(1/n_c + 1/n_t)`` with ``p`` the overall proportion (the score test of
    ``statsmodels.stats.proportion.proportions_ztest``). With ``pooled=False`` it is the unpooled
    Wald statistic, ``p_c(1 - p_c)/n_c + p_t(1 - p_t)/n_t``. The intervals are the unpooled Wald
    interval by default (``pooled_ci=False``: each arm's variance ``p_a (1 - p_a)``, as
    statsmodels' ``confint_proportions_2indep(method="wald")``, R's ``prop.test``, GrowthBook and
    spotify-confidence), whose standard error is the reported ``std_error``; so with
    ``pooled=True`` the p-value and the interval can disagree in borderline cases. With
    ``pooled_ci=True`` both arms' variances are the pooled ``p (1 - p)`` for the intervals (the
    absolute one, the relative lift's, and ``std_error``, ``rel_std_error``): together with
    ``pooled=True`` the two-sided interval then excludes 0 exactly when the p-value is below
    ``alpha``, but it is centred on an estimate whose spread it takes from the null hypothesis,
    so it undercovers when the proportions differ much. The relative lift's interval uses the
    delta method on the natural scale (or Fieller's theorem with ``relative_ci="fieller"``) with
    the same critical value. One-sided alternatives give one-sided intervals.
    ``continuity=True`` applies Yates' continuity correction ``c = (1/n_c + 1/n_t) / 2`` to the
    absolute difference: the statistic uses ``|p_t - p_c| - c`` (not below 0; one-sided:
    ``p_t - p_c`` moved ``c`` against the alternative), so the pooled two-sided p-value equals
    scipy's ``chi2_contingency`` with ``correction=True``, and the interval is widened by ``c``
    (Newcombe's method 2); the relative interval is not corrected. ``clip=True`` clips the
    absolute interval to ``[-1, 1]``, where a difference of proportions lies, as R's
    ``prop.test`` does (``c(max(DELTA - WIDTH, -1), min(DELTA + WIDTH, 1))``, and ``-1`` or ``1``
    for the open side of a one-sided interval, instead of an infinite bound); the relative
    lift's interval is not clipped. statsmodels clips the interval of one proportion to
    ``[0, 1]`` (``proportion_confint``) but not the Wald interval of a difference, and
    spotify-confidence clips neither (its ``to_finite`` only bounds infinite values in charts).

    Args:
        successes_control (int): units with the event in control.
        n_control (int): units in control.
        successes_treatment (int): units with the event in treatment.
        n_treatment (int): units in treatment.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``p_t - p_c > 0``.
        pooled (bool): pooled variance for the statistic (True) or unpooled Wald (False).
        relative_ci (Literal["delta", "fieller", "log", "divided"]): the relative lift's
            interval (see :func:`~exp_dagster.stats.effects.relative_lift`).
        distribution (Literal["default", "t", "normal"]): the reference distribution: the
            test's own (default), the standard normal, or Student t (with Welch-Satterthwaite
            df where the test has none); see :func:`~exp_dagster.stats.effects.reference_df`.
        p_value_scale (Literal["absolute", "relative"]): whether ``p_value`` and ``statistic``
            test the absolute difference (default) or the relative lift
            (:func:`~exp_dagster.stats.effects.relative_lift_test`, on the log scale with
            ``relative_ci="log"``).
        continuity (bool): Yates' continuity correction of the test and the absolute interval.
        pooled_ci (bool): the pooled variance ``p (1 - p)`` in both arms for the intervals
            (True), or each arm's own (False, default: the unpooled Wald interval).
        clip (bool): clip the absolute interval to ``[-1, 1]`` (R's ``prop.test``).

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

        A small sample, its interval clipped to [-1, 1] as R's prop.test(c(9, 1), c(10, 10),
        correct = FALSE) gives it:

        >>> small = two_proportion_test(1, 10, 9, 10, clip=True)
        >>> round(small.abs_ci_low, 4), small.abs_ci_high
        (0.537, 1.0)
    """
    check_units("two_proportion_test", n_control, n_treatment, minimum=1)
    _check_counts("control", successes_control, n_control)
    _check_counts("treatment", successes_treatment, n_treatment)
    p_control = successes_control / n_control
    p_treatment = successes_treatment / n_treatment
    p_overall = (successes_control + successes_treatment) / (n_control + n_treatment)
    pooled_variance = p_overall * (1.0 - p_overall)
    if pooled_ci:
        var_mean_control = pooled_variance / n_control
        var_mean_treatment = pooled_variance / n_treatment
    else:
        var_mean_control = p_control * (1.0 - p_control) / n_control
        var_mean_treatment = p_treatment * (1.0 - p_treatment) / n_treatment
    test_std_error: float | None = None
    if pooled and pooled_ci:
        method = "two-proportion z-test (pooled variance for the p-value and the CI)"
    elif pooled:
        test_std_error = math.sqrt(pooled_variance * (1.0 / n_control + 1.0 / n_treatment))
        method = "two-proportion z-test (pooled variance for the p-value, unpooled Wald CI)"
    elif pooled_ci:
        test_std_error = math.sqrt(
            p_control * (1.0 - p_control) / n_control
            + p_treatment * (1.0 - p_treatment) / n_treatment
        )
        method = "two-proportion Wald z-test (unpooled variance for the p-value, pooled for the CI)"
    else:
        method = "two-proportion Wald z-test (unpooled variance)"
    correction = 0.5 * (1.0 / n_control + 1.0 / n_treatment) if continuity else 0.0
    if continuity:
        method += ", Yates' continuity correction"
    if clip:
        method += ", CI clipped to [-1, 1]"
    effect = _effect_from_means(
        mean_control=p_control,
        mean_treatment=p_treatment,
        var_mean_control=var_mean_control,
        var_mean_treatment=var_mean_treatment,
        n_control=n_control,
        n_treatment=n_treatment,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        method=f"{sidedness(alternative)} {method}; {relative_ci_words(relative_ci)}",
        test_std_error=test_std_error,
        continuity=correction,
    )
    if not clip:
        return effect
    return replace(
        effect,
        abs_ci_low=max(effect.abs_ci_low, -1.0),
        abs_ci_high=min(effect.abs_ci_high, 1.0),
    )


@dataclass(frozen=True)
class FisherExactResult:
    """Fisher's exact test of a 2 × 2 table (control / treatment × with / without the event).

    Attributes:
        p_value: the exact conditional p-value (hypergeometric, margins fixed); two-sided sums
            the tables at most as likely as the observed one.
        odds_ratio: the conditional maximum-likelihood estimate of the odds ratio (treatment's
            odds over control's), as R's ``fisher.test`` reports it.
        ci_low: lower bound of the exact conditional interval of the odds ratio (``0`` for
            ``"less"``).
        ci_high: upper bound (``inf`` for ``"greater"``, or when a cell makes it unbounded).
        sample_odds_ratio: ``(s_t (n_c - s_c)) / (s_c (n_t - s_t))``, ``inf`` or ``nan`` when a
            cell is 0.
        alternative: the alternative hypothesis about the odds ratio against 1.
        alpha: the interval's level is ``1 - alpha``.
    """

    p_value: float
    odds_ratio: float
    ci_low: float
    ci_high: float
    sample_odds_ratio: float
    alternative: str
    alpha: float


def fisher_exact_test(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> FisherExactResult:
    """Fisher's exact test of equal proportions, for small samples or rare events.

    Conditions on both margins of the 2 × 2 table, so the treatment arm's count of units with
    the event is hypergeometric under the null hypothesis; no normal approximation is made, and
    the test's false-positive rate never exceeds ``alpha`` (it is conservative). ``"greater"``
    tests whether the treatment's proportion (odds) is larger. The odds ratio is the conditional
    maximum-likelihood estimate with its exact conditional interval (scipy's ``odds_ratio``,
    ``kind="conditional"``; the same as R's ``fisher.test``). For large arms the z-test
    (:func:`two_proportion_test`) gives nearly the same p-value and an interval for the
    difference, which is what a decision needs.

    Args:
        successes_control (int): units with the event in control.
        n_control (int): units in control.
        successes_treatment (int): units with the event in treatment.
        n_treatment (int): units in treatment.
        alpha (float): the odds ratio's interval has level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): about the treatment's odds ratio.

    Returns:
        FisherExactResult: p-value, conditional MLE of the odds ratio and its interval.

    Raises:
        ValueError: if an arm has no units, a count is outside ``[0, n]``, or ``alpha`` or
            ``alternative`` is invalid.

    References:
        Fisher, R. A. (1935). The Logic of Inductive Inference. Journal of the Royal Statistical
        Society, 98(1), 39-82.
        Agresti, A. (2013). Categorical Data Analysis (3rd ed.), section 3.5. Wiley.

    Examples:
        >>> result = fisher_exact_test(1, 4, 3, 4)  # Fisher's lady tasting tea
        >>> round(result.p_value, 4), round(result.odds_ratio, 3)
        (0.4857, 6.408)
        >>> round(fisher_exact_test(1, 4, 3, 4, alternative="greater").p_value, 4)
        0.2429
    """
    check_units("fisher_exact_test", n_control, n_treatment, minimum=1)
    _check_counts("control", successes_control, n_control)
    _check_counts("treatment", successes_treatment, n_treatment)
    check_alpha(alpha)
    check_alternative(alternative)
    # Rows treatment, control; columns with, without: the odds ratio is treatment's over control's.
    table = [
        [successes_treatment, n_treatment - successes_treatment],
        [successes_control, n_control - successes_control],
    ]
    from scipy import stats  # here, not at the top: see stats/__init__ (lazy scipy)

    sample, p_value = stats.fisher_exact(table, alternative=alternative)
    conditional = stats.contingency.odds_ratio(table, kind="conditional")
    interval = conditional.confidence_interval(
        confidence_level=1.0 - alpha, alternative=alternative
    )
    return FisherExactResult(
        p_value=float(p_value),
        odds_ratio=float(conditional.statistic),
        ci_low=float(interval.low),
        ci_high=float(interval.high),
        sample_odds_ratio=float(sample),
        alternative=alternative,
        alpha=alpha,
    )
