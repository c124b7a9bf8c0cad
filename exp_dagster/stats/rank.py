"""Mann-Whitney U: a rank test for heavy-tailed metrics, with its effect size and interval.

Needs each unit's value (ranks are not sufficient statistics), so it is for notebooks and
small or medium arms, not for the pipeline's sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    check_units,
    confidence_interval,
    critical_value,
    sidedness,
)


@dataclass(frozen=True)
class MannWhitneyResult:
    """The Mann-Whitney U test of treatment against control.

    Attributes:
        statistic: the treatment's ``U``: the number of (treatment, control) pairs in which the
            treatment value is larger, ties counting one half.
        p_value: scipy's ``mannwhitneyu`` p-value (exact for small arms without ties, else the
            normal approximation with tie and continuity corrections).
        prob_superiority: ``θ = P(T > C) + P(T = C) / 2 = U / (n_c n_t)`` (the common-language
            effect size, the AUC of "treatment" against "control"); 0.5 means no shift.
        ci_low: lower bound of the level ``1 - alpha`` interval of ``θ`` (``-inf`` is replaced
            by 0 for ``"less"``), by DeLong's variance, clipped to ``[0, 1]``.
        ci_high: upper bound, as ``ci_low`` (1 for ``"greater"``).
        std_error: DeLong's standard error of ``θ``.
        rank_biserial: ``2 θ - 1``, in ``[-1, 1]``.
        n_control: units in control.
        n_treatment: units in treatment.
        method: one sentence naming the test.
    """

    statistic: float
    p_value: float
    prob_superiority: float
    ci_low: float
    ci_high: float
    std_error: float
    rank_biserial: float
    n_control: int
    n_treatment: int
    method: str


def mann_whitney_test(
    control: Sequence[float] | np.ndarray,
    treatment: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> MannWhitneyResult:
    """Mann-Whitney U (Wilcoxon rank-sum) test, with ``θ = P(T > C) + P(T = C)/2`` and its interval.

    The test asks whether treatment values tend to be larger than control values, without
    assuming a distribution: a few huge values (revenue, watch time) move it as much as any
    other value above the rest, unlike a t-test. It tests ``θ = 0.5`` (stochastic equality), not
    equal means: report it beside the mean's test, not instead of it when the decision is about
    totals. The interval of ``θ`` uses DeLong's structural-component variance (computed from
    midranks), normal, clipped to ``[0, 1]``; ``rank_biserial = 2θ - 1``.

    Args:
        control (Sequence[float] | numpy.ndarray): one finite value per control unit.
        treatment (Sequence[float] | numpy.ndarray): one finite value per treatment unit.
        alpha (float): significance level; the interval of ``θ`` has level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"``: treatment values
            tend to be larger.

    Returns:
        MannWhitneyResult: U, p-value, θ with its interval and standard error, rank-biserial.

    Raises:
        ValueError: if an arm has fewer than 2 values, a value is not finite, or an option is
            invalid.

    References:
        Mann, H. B., & Whitney, D. R. (1947). On a Test of Whether one of Two Random Variables is
        Stochastically Larger than the Other. Annals of Mathematical Statistics, 18(1), 50-60.
        DeLong, E. R., DeLong, D. M., & Clarke-Pearson, D. L. (1988). Comparing the Areas under
        Two or More Correlated ROC Curves. Biometrics, 44(3), 837-845.

    Examples:
        >>> result = mann_whitney_test([1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 6.0, 7.0])
        >>> result.statistic, result.prob_superiority, round(result.p_value, 4)
        (14.5, 0.90625, 0.0814)
    """
    check_alpha(alpha)
    check_alternative(alternative)
    c = np.asarray(control, dtype=float).reshape(-1)
    t = np.asarray(treatment, dtype=float).reshape(-1)
    check_units("mann_whitney_test", c.size, t.size)
    if not (np.isfinite(c).all() and np.isfinite(t).all()):
        raise ValueError("mann_whitney_test needs finite values; drop or impute NaN and inf first.")
    n_c, n_t = c.size, t.size
    from scipy import stats  # here, not at the top: see stats/__init__ (lazy scipy)

    ranks = stats.rankdata(np.concatenate([t, c]))  # midranks
    rank_t, rank_c = ranks[:n_t], ranks[n_t:]
    u = float(rank_t.sum() - n_t * (n_t + 1) / 2.0)
    theta = u / (n_c * n_t)
    # DeLong: each treatment value's share of control values below it (ties one half), and each
    # control value's share of treatment values above it, from ranks among all and within arm.
    v_t = (rank_t - stats.rankdata(t)) / n_c
    v_c = 1.0 - (rank_c - stats.rankdata(c)) / n_t
    variance = float(np.var(v_t, ddof=1) / n_t + np.var(v_c, ddof=1) / n_c)
    std_error = math.sqrt(max(variance, 0.0))
    low, high = confidence_interval(
        theta, std_error, critical_value(alpha, alternative), alternative
    )
    p_value = stats.mannwhitneyu(t, c, alternative=alternative).pvalue
    return MannWhitneyResult(
        statistic=u,
        p_value=float(p_value),
        prob_superiority=theta,
        ci_low=max(0.0, low),
        ci_high=min(1.0, high),
        std_error=std_error,
        rank_biserial=2.0 * theta - 1.0,
        n_control=n_c,
        n_treatment=n_t,
        method=(
            f"{sidedness(alternative)} Mann-Whitney U test (scipy); P(T > C) + P(T = C)/2 with "
            f"DeLong's interval"
        ),
    )
