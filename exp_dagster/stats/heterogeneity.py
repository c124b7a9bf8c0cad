"""Does the effect differ between segments, or drift with time since first exposure?

Both tests take one effect estimate and its standard error per cell (a segment value, a day since
first exposure), as any of the package's tests returns them (``abs_effect``, ``std_error``), and
treat the standard errors as known: the inverse-variance weights ``1 / se**2`` are fixed, and the
statistics are referred to the chi-square and normal distributions.

A cell without a usable standard error is dropped, in both tests, by one rule: its estimate or
standard error is ``nan`` (the cell's effect is undefined, e.g. an empty ratio denominator), or
its standard error is 0 (no variation in the cell, typically very few units; it would get an
infinite weight) or ``+inf`` (it carries no information). Dropped cells are listed in the result,
so a report can say what was left out. Negative standard errors and infinite estimates are errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

from scipy import special

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    critical_value,
    p_value,
)
from exp_dagster.stats.moments import Moments

Covariance = Literal["HC0", "HC1", "HC2", "HC3"]
"""A heteroskedasticity-consistent covariance of the segment × treatment regression (MacKinnon &
White 1985), named as statsmodels' ``cov_type``: ``"HC2"`` (each cell's own ``ddof=1`` variance,
the Welch standard errors), ``"HC1"`` (Stata's ``robust``: HC0 times ``N / (N - 2k)``), ``"HC0"``
(White's, ``ddof=0`` variances) or ``"HC3"``."""

COVARIANCES: tuple[str, ...] = get_args(Covariance)


@dataclass(frozen=True)
class HeterogeneityResult:
    """Cochran's Q test that the treatment effect is the same in every segment value.

    Attributes:
        statistic: Cochran's ``Q = sum_i w_i (theta_i - pooled_effect)**2`` with
            ``w_i = 1 / se_i**2``, over the segments kept.
        df: degrees of freedom, the number of segments kept minus 1.
        p_value: upper-tail chi-square probability of ``statistic`` with ``df`` degrees of freedom.
        pooled_effect: the inverse-variance weighted mean effect ``sum w_i theta_i / sum w_i`` (the
            fixed-effect meta-analytic estimate, an average over segments weighted by precision).
        pooled_std_error: its standard error ``1 / sqrt(sum w_i)``.
        i_squared: Higgins & Thompson's ``I² = max(0, (Q - df) / Q)``, the share of the spread of
            the segment estimates beyond what sampling error explains; 0 when ``Q == 0``.
        largest_deviation: label of the segment with the largest ``|theta_i - pooled_effect| /
            se_i``, i.e. the largest contribution to ``Q``.
        reversals: labels of the segments whose estimate has the sign opposite to
            ``pooled_effect`` and whose own two-sided level ``1 - alpha`` interval
            ``theta_i -/+ z se_i`` excludes 0, in input order; empty when ``pooled_effect == 0``.
            Each segment is tested on its own, without a multiplicity adjustment.
        labels: labels of the segments kept, in input order.
        deviations: ``(theta_i - pooled_effect) / se_i`` for the segments kept, signed; their
            squares sum to ``statistic``.
        dropped: labels of the segments dropped for an unusable estimate or standard error.
        method: one sentence naming the test and its conventions.
    """

    statistic: float
    df: int
    p_value: float
    pooled_effect: float
    pooled_std_error: float
    i_squared: float
    largest_deviation: str
    reversals: tuple[str, ...]
    labels: tuple[str, ...]
    deviations: tuple[float, ...]
    dropped: tuple[str, ...]
    method: str


@dataclass(frozen=True)
class TrendResult:
    """Weighted least-squares trend of the daily effect, with a z-test of a zero slope.

    Attributes:
        slope: change of the effect per day, ``sum w (x - x̄)(y - ȳ) / sum w (x - x̄)**2`` with
            ``w = 1 / se**2`` and weighted means ``x̄``, ``ȳ``.
        slope_std_error: ``1 / sqrt(sum w (x - x̄)**2)``, from the known standard errors (no
            rescaling by the residual variance).
        statistic: the z statistic ``slope / slope_std_error``.
        p_value: normal p-value of ``statistic`` under the alternative.
        intercept: the fitted effect at day 0 (``x = 0``).
        first_effect: the fitted effect at the first (smallest) day kept.
        last_effect: the fitted effect at the last (largest) day kept.
        n_days: number of days kept.
        dropped_days: the days dropped for an unusable estimate or standard error.
        method: one sentence naming the test and its conventions.
    """

    slope: float
    slope_std_error: float
    statistic: float
    p_value: float
    intercept: float
    first_effect: float
    last_effect: float
    n_days: int
    dropped_days: tuple[float, ...]
    method: str


_SLOPE_SIDEDNESS = {
    "two-sided": "two-sided",
    "greater": "one-sided (slope > 0)",
    "less": "one-sided (slope < 0)",
}


def _usable_cells(
    test: str, what: str, estimates: Sequence[float], std_errors: Sequence[float]
) -> list[bool]:
    """Which cells to keep by the module's rule; raise for estimates or errors that are wrong."""
    if len(estimates) != len(std_errors):
        raise ValueError(
            f"{test} needs one standard error per {what}; got {len(estimates)} estimates and "
            f"{len(std_errors)} standard errors."
        )
    keep = []
    for index, (estimate, std_error) in enumerate(zip(estimates, std_errors, strict=True)):
        if std_error < 0.0:
            raise ValueError(
                f"{test}: the standard error of {what} {index} is negative ({std_error!r}); pass "
                f"standard errors, not signed values."
            )
        if math.isinf(estimate):
            raise ValueError(
                f"{test}: the estimate of {what} {index} is infinite; pass finite effect estimates "
                f"(or nan for an undefined {what}, which is dropped)."
            )
        keep.append(
            not (math.isnan(estimate) or math.isnan(std_error)) and 0.0 < std_error < math.inf
        )
    return keep


def heterogeneity_test(
    estimates: Sequence[float],
    std_errors: Sequence[float],
    labels: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
) -> HeterogeneityResult:
    """Cochran's Q test of a segment × treatment interaction: is the effect equal in all segments?

    The segment values of one categorical variable (e.g. platform = ios/android/web) hold disjoint
    units, so their effect estimates ``theta_i`` are independent. With known variances ``se_i**2``
    and weights ``w_i = 1 / se_i**2``, ``Q = sum_i w_i (theta_i - pooled_effect)**2`` around the
    inverse-variance weighted mean is chi-square with ``k - 1`` degrees of freedom when all
    segments share one effect; it is the Wald test of the interaction terms of the fully
    interacted model ``y ~ segment * treatment`` (equal to it when the segment estimates are the
    cell differences of means with the cells' own variances, the HC2 covariance of that model;
    :func:`interaction_test` computes it from the cells' moments with HC1, HC0 or HC3 instead).
    The test is two-sided by nature (any difference) and only as good as the standard errors:
    with small segments, Welch standard errors make it slightly liberal.

    The segments must be disjoint and from one variable: segments of different variables share
    units, and their estimates are correlated. Segment only by attributes fixed before exposure;
    a segment the treatment can change (e.g. "active users") compares unlike units.

    Besides the omnibus test, the result names the segment farthest from the pooled effect and
    the *reversals*: segments whose effect is significantly (each on its own, two-sided at
    ``alpha``, no multiplicity adjustment) of the sign opposite to the pooled effect, which a
    decision should mention even when ``Q`` is not significant.

    Segments with a ``nan`` estimate or standard error, or a standard error of 0 or ``+inf``, are
    dropped and listed in ``dropped`` (see the module docstring).

    Args:
        estimates (Sequence[float]): effect per segment, e.g. ``abs_effect`` of each segment's
            test; all on the same scale (do not mix absolute and relative effects).
        std_errors (Sequence[float]): the standard error of each estimate, in the same order.
        labels (Sequence[str] | None): a unique name per segment; ``"0"``, ``"1"``, … if omitted.
        alpha (float): level of the per-segment two-sided intervals that define a reversal; the
            p-value of ``Q`` does not depend on it.

    Returns:
        HeterogeneityResult: Q, df, p-value, pooled effect and its standard error, I², the segment
        farthest from the pooled effect, reversals, per-segment standardised deviations and the
        dropped segments.

    Raises:
        ValueError: if the lengths differ, labels repeat, a standard error is negative, an
            estimate is infinite, ``alpha`` is not in (0, 1), or fewer than 2 segments are usable.

    References:
        Cochran, W. G. (1954). The combination of estimates from different experiments.
        Biometrics, 10(1), 101-129.
        Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
        meta-analysis. Statistics in Medicine, 21(11), 1539-1558.
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments.
        Cambridge University Press. Chapter 3 (segment-level effects and Simpson's paradox) and
        the discussion of heterogeneous treatment effects.

    Examples:
        >>> result = heterogeneity_test(
        ...     [0.8, 1.1, -0.9], [0.2, 0.3, 0.25], labels=["ios", "android", "web"]
        ... )
        >>> round(result.statistic, 3), result.df, f"{result.p_value:.2e}"
        (36.309, 2, '1.30e-08')
        >>> round(result.pooled_effect, 4), round(result.pooled_std_error, 4)
        (0.342, 0.1385)
        >>> round(result.i_squared, 3), result.largest_deviation, result.reversals
        (0.945, 'web', ('web',))
        >>> heterogeneity_test([0.5, 0.6, 0.4], [0.1, float("nan"), 0.1]).dropped
        ('1',)
    """
    check_alpha(alpha)
    names = [str(index) for index in range(len(estimates))] if labels is None else list(labels)
    if len(names) != len(estimates):
        raise ValueError(
            f"heterogeneity_test needs one label per segment; got {len(estimates)} estimates and "
            f"{len(names)} labels."
        )
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"Segment labels must be unique; repeated: {repeated}.")
    keep = _usable_cells("heterogeneity_test", "segment", estimates, std_errors)
    dropped = tuple(name for name, kept in zip(names, keep, strict=True) if not kept)
    if sum(keep) < 2:
        raise ValueError(
            f"heterogeneity_test needs at least 2 segments with a finite estimate and a positive "
            f"finite standard error; {sum(keep)} of {len(keep)} are usable (dropped: "
            f"{', '.join(repr(name) for name in dropped) or 'none'})."
        )
    kept_labels = tuple(name for name, kept in zip(names, keep, strict=True) if kept)
    thetas = [float(e) for e, kept in zip(estimates, keep, strict=True) if kept]
    ses = [float(s) for s, kept in zip(std_errors, keep, strict=True) if kept]
    weights = [1.0 / se**2 for se in ses]
    total_weight = math.fsum(weights)
    pooled = math.fsum(w * theta for w, theta in zip(weights, thetas, strict=True)) / total_weight
    deviations = tuple((theta - pooled) / se for theta, se in zip(thetas, ses, strict=True))
    statistic = math.fsum(d * d for d in deviations)
    df = len(thetas) - 1
    i_squared = max(0.0, (statistic - df) / statistic) if statistic > 0.0 else 0.0
    largest = max(range(len(deviations)), key=lambda index: abs(deviations[index]))
    crit = critical_value(alpha, "two-sided")
    reversals = tuple(
        label
        for label, theta, se in zip(kept_labels, thetas, ses, strict=True)
        if theta * pooled < 0.0 and abs(theta) > crit * se
    )
    return HeterogeneityResult(
        statistic=statistic,
        df=df,
        p_value=float(special.chdtrc(df, statistic)),
        pooled_effect=pooled,
        pooled_std_error=1.0 / math.sqrt(total_weight),
        i_squared=i_squared,
        largest_deviation=kept_labels[largest],
        reversals=reversals,
        labels=kept_labels,
        deviations=deviations,
        dropped=dropped,
        method=(
            f"Cochran's Q (Wald test of segment × treatment interaction, inverse-variance "
            f"weights, chi-square with {df} df); reversals at two-sided level {1 - alpha:g}"
        ),
    )


def _variance_of_mean(arm: Moments, covariance: Covariance) -> float:
    """HC variance of one cell's mean in the saturated model: every unit of a cell of ``n`` has
    leverage ``1 / n``, so the squared residuals ``(n - 1) s²`` are divided by ``n²`` (HC0, HC1
    before its global factor), ``n (n - 1)`` (HC2) or ``(n - 1)²`` (HC3)."""
    if covariance == "HC2":
        return arm.var / arm.n
    if covariance == "HC3":
        return arm.var / (arm.n - 1)
    return (arm.n - 1) * arm.var / arm.n**2


def interaction_test(
    control: Sequence[Moments],
    treatment: Sequence[Moments],
    labels: Sequence[str] | None = None,
    *,
    covariance: Covariance = "HC2",
    alpha: float = 0.05,
) -> HeterogeneityResult:
    """The robust Wald test of the segment × treatment interaction, from per-cell moments.

    For a per-unit metric ``y`` split by one segment variable with ``k`` values, the fully
    interacted least-squares model ``y ~ segment * treatment`` (statsmodels
    ``ols("y ~ C(segment) * treatment")``, R ``lm(y ~ segment * treatment)``) fits every
    segment × arm cell by its mean, so its treatment effect in segment ``i`` is the difference
    of means ``theta_i`` and a heteroskedasticity-consistent covariance of the coefficients is
    diagonal in the cells. The Wald test of the ``k - 1`` interaction coefficients is then
    exactly Cochran's Q (:func:`heterogeneity_test`) of the ``theta_i`` with the variances
    ``v_c + v_t`` of the chosen covariance, where for a cell of ``n`` units with sample variance
    ``s²`` (``ddof=1``):

    * ``"HC2"`` (default): ``v = s² / n``, the cell's own variance: the Welch standard errors
      the package's tests report, so this equals :func:`heterogeneity_test` on ``welch_test``
      results (today's convention of the pipeline for mean metrics);
    * ``"HC1"``: ``v = (n - 1) s² / n² * N / (N - 2k)`` with ``N`` the units of all the cells
      kept: White's HC0 with the degrees-of-freedom factor of the regression, Stata's
      ``regress, robust`` and statsmodels' ``cov_type="HC1"``;
    * ``"HC0"``: ``v = (n - 1) s² / n²`` (White 1980); ``"HC3"``: ``v = s² / (n - 1)``.

    The statistic is referred to the chi-square with ``k - 1`` degrees of freedom (statsmodels'
    ``wald_test(..., use_f=False)``). HC1 and HC0 are smaller than HC2 by the factor
    ``(n - 1) / n`` per cell, so with large cells all four agree.

    A segment is dropped (and listed in ``dropped``) when an arm has fewer than 2 units or both
    arms have no variation; the model, and HC1's ``N`` and ``k``, then cover the segments kept.

    Args:
        control (Sequence[Moments]): the control arm's ``(n, Σy, Σy²)`` in each segment.
        treatment (Sequence[Moments]): the treatment arm's, in the same order.
        labels (Sequence[str] | None): a unique name per segment; ``"0"``, ``"1"``, … if omitted.
        covariance (Literal["HC0", "HC1", "HC2", "HC3"]): the robust covariance.
        alpha (float): level of the per-segment intervals that define a reversal.

    Returns:
        HeterogeneityResult: as :func:`heterogeneity_test`, with the effects ``theta_i`` and
        the covariance named in ``method``.

    Raises:
        ValueError: if the sequences' lengths differ, ``covariance`` is unknown, or fewer than 2
            segments are usable (and for the inputs :func:`heterogeneity_test` rejects).

    References:
        White, H. (1980). A heteroskedasticity-consistent covariance matrix estimator and a
        direct test for heteroskedasticity. Econometrica, 48(4), 817-838.
        MacKinnon, J. G., & White, H. (1985). Some heteroskedasticity-consistent covariance
        matrix estimators with improved finite sample properties. Journal of Econometrics,
        29(3), 305-325.

    Examples:
        >>> control = [Moments(50, 100.0, 260.0), Moments(80, 240.0, 800.0)]
        >>> treatment = [Moments(60, 150.0, 420.0), Moments(70, 200.0, 650.0)]
        >>> hc2 = interaction_test(control, treatment, ["ios", "web"])
        >>> hc1 = interaction_test(control, treatment, ["ios", "web"], covariance="HC1")
        >>> round(hc2.statistic, 4), round(hc1.statistic, 4), hc1.df
        (6.2495, 6.2567, 1)
    """
    if covariance not in COVARIANCES:
        options = ", ".join(repr(option) for option in COVARIANCES)
        raise ValueError(f"covariance must be one of {options}; got {covariance!r}.")
    if len(control) != len(treatment):
        raise ValueError(
            f"interaction_test needs the moments of both arms in every segment; got "
            f"{len(control)} control and {len(treatment)} treatment cells."
        )
    estimates, variances, units = [], [], []
    for arm_c, arm_t in zip(control, treatment, strict=True):
        if min(arm_c.n, arm_t.n) < 2:
            estimates.append(math.nan)
            variances.append(math.nan)
            units.append(0)
            continue
        estimates.append(arm_t.mean - arm_c.mean)
        variances.append(
            _variance_of_mean(arm_c, covariance) + _variance_of_mean(arm_t, covariance)
        )
        units.append(arm_c.n + arm_t.n)
    if covariance == "HC1":
        kept = [
            index
            for index, variance in enumerate(variances)
            if math.isfinite(variance) and variance > 0.0
        ]
        total = sum(units[index] for index in kept)
        parameters = 2 * len(kept)
        if total > parameters:
            variances = [variance * total / (total - parameters) for variance in variances]
    result = heterogeneity_test(estimates, [math.sqrt(v) for v in variances], labels, alpha=alpha)
    return replace(
        result,
        method=(
            f"Wald test of the segment × treatment interaction of y ~ segment * treatment with "
            f"{covariance} covariance (Cochran's Q of the cell differences of means, chi-square "
            f"with {result.df} df); reversals at two-sided level {1 - alpha:g}"
        ),
    )


def trend_test(
    days: Sequence[float],
    estimates: Sequence[float],
    std_errors: Sequence[float],
    *,
    alternative: Alternative = "two-sided",
) -> TrendResult:
    """Novelty or primacy: does the effect change with the day since first exposure?

    Fits ``effect = intercept + slope * day`` by weighted least squares with known variances
    (weights ``1 / se**2``, the scale fixed at 1, not estimated from the residuals) and tests
    ``slope = 0`` with a z-test. ``"greater"`` tests whether the effect grows with time
    (``slope > 0``) and ``"less"`` whether it shrinks. A novelty effect of a positive effect shows
    as a negative slope; a primacy (learning) effect as a positive one.

    This is a screening device, not a confirmatory test, because its independence assumption is
    wrong: the cohort seen on day ``d`` since exposure shares units with the cohorts of the other
    days, so the daily estimates are positively correlated. A component common to all days cancels
    from the slope, but correlation that fades with the distance between days (a unit's behaviour
    on nearby days is more alike) makes the true variance of the slope larger than the reported
    one, and the p-value too small. Day-of-week swings beyond sampling error do the same. The
    cohorts also change: late days since exposure only contain early-exposed, still-active units,
    so a trend can be a change of composition rather than of the effect. Confirm a trend by
    comparing the same units early and late, or by a holdback.

    Days with a ``nan`` estimate or standard error, or a standard error of 0 or ``+inf``, are
    dropped and listed in ``dropped_days`` (see the module docstring).

    Args:
        days (Sequence[float]): day since first exposure of each estimate (0, 1, 2, …); any
            finite numbers, in any order, at least 2 distinct among the days kept.
        estimates (Sequence[float]): the effect on each day, all on the same scale.
        std_errors (Sequence[float]): the standard error of each estimate.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``slope > 0``.

    Returns:
        TrendResult: slope, its standard error, z statistic, p-value, intercept, fitted effects
        at the first and last day, and the days kept and dropped.

    Raises:
        ValueError: if the lengths differ, a day is not finite, a standard error is negative, an
            estimate is infinite, ``alternative`` is invalid, or fewer than 2 distinct days are
            usable.

    References:
        Aitken, A. C. (1935). On least squares and linear combination of observations.
        Proceedings of the Royal Society of Edinburgh, 55, 42-48 (weighted least squares).
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments.
        Cambridge University Press. Chapter 23 (novelty and primacy effects).
        Chen, N., Liu, M., & Xu, Y. (2019). How A/B Tests Could Go Wrong: Automatic Diagnosis of
        Invalid Online Experiments. WSDM 2019 (daily effect trends as a diagnostic).

    Examples:
        >>> result = trend_test(
        ...     [0, 1, 2, 3, 4, 5, 6],
        ...     [0.9, 0.75, 0.62, 0.55, 0.5, 0.41, 0.4],
        ...     [0.08, 0.08, 0.09, 0.09, 0.1, 0.1, 0.11],
        ... )
        >>> round(result.slope, 4), round(result.slope_std_error, 4), f"{result.p_value:.1e}"
        (-0.0858, 0.0175, '1.0e-06')
        >>> round(result.first_effect, 4), round(result.last_effect, 4)
        (0.8461, 0.3313)
    """
    check_alternative(alternative)
    if len(days) != len(estimates):
        raise ValueError(
            f"trend_test needs one day per estimate; got {len(days)} days and {len(estimates)} "
            f"estimates."
        )
    if not all(math.isfinite(day) for day in days):
        raise ValueError(f"Days since first exposure must be finite numbers; got {list(days)}.")
    keep = _usable_cells("trend_test", "day", estimates, std_errors)
    dropped = tuple(float(day) for day, kept in zip(days, keep, strict=True) if not kept)
    xs = [float(x) for x, kept in zip(days, keep, strict=True) if kept]
    ys = [float(y) for y, kept in zip(estimates, keep, strict=True) if kept]
    weights = [1.0 / float(se) ** 2 for se, kept in zip(std_errors, keep, strict=True) if kept]
    if len(set(xs)) < 2:
        raise ValueError(
            f"trend_test needs estimates on at least 2 distinct days with a finite estimate and a "
            f"positive finite standard error; the usable days are {xs} (dropped: "
            f"{list(dropped)}). Wait for more days of data."
        )
    total_weight = math.fsum(weights)
    mean_x = math.fsum(w * x for w, x in zip(weights, xs, strict=True)) / total_weight
    mean_y = math.fsum(w * y for w, y in zip(weights, ys, strict=True)) / total_weight
    sxx = math.fsum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs, strict=True))
    sxy = math.fsum(
        w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys, strict=True)
    )
    slope = sxy / sxx
    slope_std_error = 1.0 / math.sqrt(sxx)
    statistic = slope / slope_std_error
    intercept = mean_y - slope * mean_x
    return TrendResult(
        slope=slope,
        slope_std_error=slope_std_error,
        statistic=statistic,
        p_value=p_value(statistic, alternative),
        intercept=intercept,
        first_effect=intercept + slope * min(xs),
        last_effect=intercept + slope * max(xs),
        n_days=len(xs),
        dropped_days=dropped,
        method=(
            f"{_SLOPE_SIDEDNESS[alternative]} z-test of the slope of a weighted least-squares "
            f"trend of the daily effect (weights 1/se², known variances); daily estimates assumed "
            f"independent"
        ),
    )
