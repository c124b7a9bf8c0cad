"""Post-stratification: compare arms within strata of a pre-treatment attribute, then average.

:func:`post_stratified_test` stratifies the moments of mean metrics; :func:`stratified_effect`
combines the per-stratum effects of any test of independent arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from exp_dagster.stats._common import Alternative, sidedness
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)
from exp_dagster.stats.moments import Moments


def _stratum_weights(
    weights: Sequence[float] | None, control: Sequence[Moments], treatment: Sequence[Moments]
) -> np.ndarray:
    """The weights as given (normalised to sum to 1), or the pooled share of units per stratum."""
    if weights is None:
        counts = np.array([c.n + t.n for c, t in zip(control, treatment, strict=True)], float)
        return counts / counts.sum()
    given = np.asarray(weights, dtype=float)
    if given.shape != (len(control),):
        raise ValueError(
            f"post_stratified_test needs one weight per stratum; got {given.size} weights for "
            f"{len(control)} strata."
        )
    if not np.all(np.isfinite(given)) or np.any(given < 0.0) or given.sum() <= 0.0:
        raise ValueError(
            f"Stratum weights must be finite, non-negative and not all zero (e.g. population "
            f"shares or counts); got {given.tolist()}."
        )
    return given / given.sum()


def post_stratified_test(
    control: Sequence[Moments],
    treatment: Sequence[Moments],
    *,
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """t-test of the post-stratified difference of means, strata from a pre-treatment attribute.

    ``control[s]`` and ``treatment[s]`` summarise the units of stratum ``s`` (a country, a
    platform, a pre-period activity bucket: anything fixed before assignment) in each arm, with the
    strata in the same order in both arms. The estimate is ``sum_s w_s (mean_ts - mean_cs)`` with
    ``w_s`` the pooled share of units (both arms) in stratum ``s`` by default, or ``weights``
    normalised to sum to 1 (e.g. known population shares; then the estimand is the effect in that
    population). The reported arm means are ``sum_s w_s mean_as``.

    The variance is the one conditional on the stratum sizes,
    ``sum_s w_s**2 (s2_ts / n_ts + s2_cs / n_cs)`` with ``ddof=1`` variances. Unconditionally, the
    random stratum sizes add a term of order ``1/n**2`` (Miratrix, Sekhon & Yu 2013), negligible
    unless strata are tiny. The statistic is referred to a Student t with Satterthwaite degrees of
    freedom for this linear combination of ``2S`` independent variances,
    ``(sum_as v_as)**2 / sum_as v_as**2 / (n_as - 1)`` with ``v_as = w_s**2 s2_as / n_as`` (with
    one stratum: Welch's df), and the same critical value serves the interval of the difference
    and the relative lift's (delta method or Fieller); two-sided, or one-sided with the other
    bound infinite. With default weights the estimate equals the treatment coefficient of the
    fully interacted OLS fit ``y ~ T * (centred stratum dummies)`` (Lin 2013).

    ``variance_reduction = 1 - Var(post-stratified difference) / Var(unstratified Welch
    difference)``, both as estimated from these moments; about the share of the variance of ``y``
    explained by the strata, and possibly negative with weights far from the sample shares or
    with very unbalanced arms within strata. 0 when the unstratified variance is 0.

    Args:
        control (Sequence[Moments]): the control arm's moments, one per stratum.
        treatment (Sequence[Moments]): the treatment arm's moments, one per stratum, same order.
        weights (Sequence[float] | None): stratum weights, normalised to sum to 1; default the
            pooled share of units in each stratum.
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
        EffectEstimate: the stratum-weighted arm means, difference and relative lift with
        intervals, t statistic, p-value and ``variance_reduction``.

    Raises:
        ValueError: if there are no strata, the arms have different numbers of strata, a stratum
            has fewer than 2 units in an arm, the weights are invalid, or ``alpha`` or
            ``alternative`` is invalid.

    References:
        Miratrix, L. W., Sekhon, J. S., & Yu, B. (2013). Adjusting treatment effect estimates by
        post-stratification in randomized experiments. JRSS B, 75(2), 369-396.

        Lin, W. (2013). Agnostic notes on regression adjustments to experimental data:
        Reexamining Freedman's critique. Annals of Applied Statistics, 7(1), 295-318.

    Examples:
        >>> control = [Moments(n=400, sum_y=400.0, sum_y2=800.0),
        ...            Moments(n=100, sum_y=500.0, sum_y2=2_700.0)]
        >>> treatment = [Moments(n=380, sum_y=418.0, sum_y2=840.0),
        ...              Moments(n=120, sum_y=624.0, sum_y2=3_400.0)]
        >>> result = post_stratified_test(control, treatment)
        >>> round(result.abs_effect, 4), round(result.std_error, 4), round(result.p_value, 4)
        (0.122, 0.0681, 0.0735)
        >>> round(result.variance_reduction, 4)
        0.7071
    """
    if len(control) == 0 or len(control) != len(treatment):
        raise ValueError(
            f"post_stratified_test needs the same, non-zero number of strata in both arms, in the "
            f"same order; got {len(control)} in control and {len(treatment)} in treatment."
        )
    for stratum, (arm_c, arm_t) in enumerate(zip(control, treatment, strict=True)):
        if min(arm_c.n, arm_t.n) < 2:
            raise ValueError(
                f"Stratum {stratum} has n_control={arm_c.n} and n_treatment={arm_t.n}, but "
                f"post-stratification needs at least 2 units of each arm in every stratum to "
                f"estimate its variance. Merge this stratum with a similar one."
            )
    stratum_weights = _stratum_weights(weights, control, treatment)

    def weighted_mean(arm: Sequence[Moments]) -> float:
        return float(stratum_weights @ np.array([stratum.mean for stratum in arm]))

    def variance_terms(arm: Sequence[Moments]) -> np.ndarray:
        return stratum_weights**2 * np.array([stratum.var / stratum.n for stratum in arm])

    terms_control, terms_treatment = variance_terms(control), variance_terms(treatment)
    var_mean_control, var_mean_treatment = float(terms_control.sum()), float(terms_treatment.sum())
    total = var_mean_control + var_mean_treatment
    degrees = np.array([stratum.n - 1 for stratum in (*control, *treatment)], dtype=float)
    terms = np.concatenate([terms_control, terms_treatment])
    df = total**2 / float(np.sum(terms**2 / degrees)) if total > 0.0 else math.inf

    def unstratified(arm: Sequence[Moments]) -> Moments:
        return Moments(
            n=sum(stratum.n for stratum in arm),
            sum_y=sum(stratum.sum_y for stratum in arm),
            sum_y2=sum(stratum.sum_y2 for stratum in arm),
        )

    pooled_control, pooled_treatment = unstratified(control), unstratified(treatment)
    welch_variance = (
        pooled_control.var / pooled_control.n + pooled_treatment.var / pooled_treatment.n
    )
    variance_reduction = 1.0 - total / welch_variance if welch_variance > 0.0 else 0.0
    strata = len(control)
    return _effect_from_means(
        mean_control=weighted_mean(control),
        mean_treatment=weighted_mean(treatment),
        var_mean_control=var_mean_control,
        var_mean_treatment=var_mean_treatment,
        n_control=pooled_control.n,
        n_treatment=pooled_treatment.n,
        alpha=alpha,
        alternative=alternative,
        method=(
            f"{sidedness(alternative)} t-test on the post-stratified difference of means "
            f"({strata} strata, {'given' if weights is not None else 'pooled-share'} weights, "
            f"Satterthwaite df); {relative_ci_words(relative_ci)}"
        ),
        df=df,
        variance_reduction=variance_reduction,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
    )


def stratified_effect(
    strata: Sequence[EffectEstimate],
    *,
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """Combine per-stratum effects of any test into one stratified effect.

    Each ``strata[s]`` is the effect of one test (Welch, two proportions, CUPED, ratio by the
    delta method, ...) on the units of stratum ``s`` alone, its arms independent. The stratified
    arm summaries are ``sum_s w_s mean_as`` with variances ``sum_s w_s**2 var_mean_as``, and the
    effect their difference: ``sum_s w_s (mean_ts - mean_cs)``. ``w_s`` is the pooled share of
    units (both arms) in stratum ``s`` by default, or ``weights`` normalised to sum to 1.

    Use it when the share of treated units differs between strata that differ in the metric, as
    in a ramped rollout whose traffic weights change over time: the pooled comparison then
    confounds the treatment with the strata (Simpson's paradox), while within each stratum the
    split is random and the stratified effect estimates the average effect over the strata's
    units, ``sum_s w_s effect_s``. On Welch tests it equals :func:`post_stratified_test`
    (estimate, standard error and degrees of freedom).

    Degrees of freedom: ``inf`` (a z-test) when every stratum's test is a z-test; otherwise
    Satterthwaite's for the linear combination of the strata's variances, each carrying its
    test's df, ``(sum_s u_s)**2 / sum_s (u_s**2 / df_s)`` with
    ``u_s = w_s**2 (var_mean_cs + var_mean_ts)`` (with one stratum: its own df; on Welch
    strata this is exactly the Satterthwaite df over the ``2S`` arm variances). The relative
    lift's interval uses the same critical value, by the delta method or Fieller's theorem as
    ``relative_ci`` says; ``p_value_scale="relative"`` tests the stratified relative lift
    instead of the difference (:func:`~exp_dagster.stats.effects.relative_lift_test`). The
    strata's degrees of freedom are those their tests were referred to (a ``distribution`` given
    to them carries over). ``variance_reduction`` and ``cuped_theta`` are the strata's, averaged
    with the stratum weights, when every stratum has one (CUPED ran in each), else ``None``.
    A stratum's continuity correction or pooled-variance test statistic (two proportions) is not
    carried over: the combination is a Wald test on the strata's unpooled variances.

    Args:
        strata (Sequence[EffectEstimate]): one effect per stratum, each with finite
            ``var_mean_control`` and ``var_mean_treatment``.
        weights (Sequence[float] | None): stratum weights, normalised to sum to 1; default the
            pooled share of units in each stratum.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``treatment - control > 0``.
        relative_ci (Literal["delta", "fieller", "log", "divided"]): the relative lift's
            interval (see :func:`~exp_dagster.stats.effects.relative_lift`).
        p_value_scale (Literal["absolute", "relative"]): whether the p-value tests the
            difference or the relative lift.

    Returns:
        EffectEstimate: the stratified arm summaries, difference and relative lift with
        intervals, statistic, p-value and degrees of freedom; ``n_control`` and
        ``n_treatment`` are the strata's totals.

    Raises:
        ValueError: if there is no stratum, a stratum's arm variances are not finite and
            non-negative (e.g. a paired test), the weights are invalid, or ``alpha``,
            ``alternative`` or ``relative_ci`` is invalid.

    References:
        Miratrix, L. W., Sekhon, J. S., & Yu, B. (2013). Adjusting treatment effect estimates by
        post-stratification in randomized experiments. JRSS B, 75(2), 369-396.

        Satterthwaite, F. E. (1946). An Approximate Distribution of Estimates of Variance
        Components. Biometrics Bulletin, 2(6), 110-114.

    Examples:
        Early units (1 % treated) have a higher baseline than late ones (50 % treated); the
        pooled comparison mixes them in different proportions per arm:

        >>> from exp_dagster.stats.means import welch_test
        >>> early = welch_test(
        ...     Moments(n=990, sum_y=1_980.0, sum_y2=4_950.0),
        ...     Moments(n=10, sum_y=22.0, sum_y2=54.0),
        ... )
        >>> late = welch_test(
        ...     Moments(n=500, sum_y=500.0, sum_y2=1_000.0),
        ...     Moments(n=500, sum_y=550.0, sum_y2=1_110.0),
        ... )
        >>> result = stratified_effect([early, late])
        >>> round(result.abs_effect, 4), round(result.std_error, 4), round(result.df, 2)
        (0.15, 0.1297, 10.52)
        >>> same = post_stratified_test(
        ...     [Moments(990, 1_980.0, 4_950.0), Moments(500, 500.0, 1_000.0)],
        ...     [Moments(10, 22.0, 54.0), Moments(500, 550.0, 1_110.0)],
        ... )
        >>> round(same.abs_effect, 4), round(same.std_error, 4), round(same.df, 2)
        (0.15, 0.1297, 10.52)
        >>> naive = welch_test(Moments(1_490, 2_480.0, 5_950.0), Moments(510, 572.0, 1_164.0))
        >>> round(naive.abs_effect, 4)  # each stratum gains 0.1-0.2, the pooled arms look apart
        -0.5429
    """
    if len(strata) == 0:
        raise ValueError("stratified_effect needs at least one stratum's effect; got none.")
    for index, stratum in enumerate(strata):
        variances = (stratum.var_mean_control, stratum.var_mean_treatment)
        if not all(math.isfinite(v) and v >= 0.0 for v in variances):
            raise ValueError(
                f"Stratum {index}'s effect has no finite arm variances (var_mean_control="
                f"{variances[0]}, var_mean_treatment={variances[1]}); stratified_effect combines "
                f"tests of independent arms (Welch, proportions, CUPED, ratio, quantile), not "
                f"paired ones."
            )
    if weights is None:
        counts = np.array([s.n_control + s.n_treatment for s in strata], dtype=float)
        if counts.sum() <= 0.0:
            raise ValueError("stratified_effect's strata have no units; pass weights.")
        stratum_weights = counts / counts.sum()
    else:
        given = np.asarray(weights, dtype=float)
        if given.shape != (len(strata),):
            raise ValueError(
                f"stratified_effect needs one weight per stratum; got {given.size} weights for "
                f"{len(strata)} strata."
            )
        if not np.all(np.isfinite(given)) or np.any(given < 0.0) or given.sum() <= 0.0:
            raise ValueError(
                f"Stratum weights must be finite, non-negative and not all zero; got "
                f"{given.tolist()}."
            )
        stratum_weights = given / given.sum()
    squared = stratum_weights**2
    var_control = float(squared @ np.array([s.var_mean_control for s in strata]))
    var_treatment = float(squared @ np.array([s.var_mean_treatment for s in strata]))
    terms = squared * np.array([s.var_mean_control + s.var_mean_treatment for s in strata])
    degrees = np.array([s.df for s in strata], dtype=float)
    finite = np.isfinite(degrees)
    if not finite.any() or terms.sum() <= 0.0:
        df = math.inf
    else:
        df = float(terms.sum() ** 2 / np.sum(terms[finite] ** 2 / degrees[finite]))

    def averaged(values: list[float | None]) -> float | None:
        if any(value is None for value in values):
            return None
        return float(stratum_weights @ np.array(values, dtype=float))

    test = "t-test" if math.isfinite(df) else "z-test"
    return _effect_from_means(
        mean_control=float(stratum_weights @ np.array([s.mean_control for s in strata])),
        mean_treatment=float(stratum_weights @ np.array([s.mean_treatment for s in strata])),
        var_mean_control=var_control,
        var_mean_treatment=var_treatment,
        n_control=sum(s.n_control for s in strata),
        n_treatment=sum(s.n_treatment for s in strata),
        alpha=alpha,
        alternative=alternative,
        method=(
            f"{sidedness(alternative)} {test} on the stratified difference of the strata's "
            f"effects ({len(strata)} strata, {'given' if weights is not None else 'pooled-share'}"
            f" weights{', Satterthwaite df' if math.isfinite(df) else ''}); "
            f"{relative_ci_words(relative_ci)}"
        ),
        df=df,
        variance_reduction=averaged([s.variance_reduction for s in strata]),
        relative_ci=relative_ci,
        cuped_theta=averaged([s.cuped_theta for s in strata]),
        p_value_scale=p_value_scale,
    )
