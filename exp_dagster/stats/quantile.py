"""Difference of two quantiles of a clustered metric (e.g. p95 latency, many requests per unit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from exp_dagster.stats._common import Alternative, check_alpha, check_units, sidedness
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)
from exp_dagster.stats.moments import RatioMoments
from exp_dagster.stats.ratio import _ratio_variance


def quantile_from_histogram(values: Sequence[float], counts: Sequence[int], level: float) -> float:
    """The ``level`` quantile of a histogram by the inverse empirical CDF (Hyndman-Fan type 1).

    Returns the smallest bucket value ``v_k`` whose cumulative count reaches ``level * N``, with
    ``N`` the total count: the same as ``numpy.quantile(..., method="inverted_cdf")`` on the
    observations the histogram summarises. Level 0 gives the smallest observed value.

    Args:
        values (Sequence[float]): bucket representatives, sorted ascending.
        counts (Sequence[int]): observations per bucket, non-negative, not all zero.
        level (float): the quantile level, in ``[0, 1]``.

    Returns:
        float: the quantile.

    Raises:
        ValueError: if the histogram is empty or malformed, or ``level`` is outside ``[0, 1]``.

    References:
        Hyndman, R. J., & Fan, Y. (1996). Sample Quantiles in Statistical Packages. The American
        Statistician, 50(4), 361-365.

    Examples:
        >>> quantile_from_histogram([10.0, 20.0, 50.0, 100.0], [5, 3, 1, 1], 0.5)
        10.0
        >>> quantile_from_histogram([10.0, 20.0, 50.0, 100.0], [5, 3, 1, 1], 0.9)
        50.0
    """
    value_array = np.asarray(values, dtype=float)
    count_array = np.asarray(counts, dtype=np.int64)
    if value_array.ndim != 1 or value_array.shape != count_array.shape or value_array.size == 0:
        raise ValueError(
            f"A histogram needs as many counts as values, at least one; got {value_array.size} "
            f"values and {count_array.size} counts."
        )
    if np.any(count_array < 0):
        raise ValueError("Histogram counts cannot be negative.")
    if np.any(np.diff(value_array) < 0):
        raise ValueError("Histogram values must be sorted ascending.")
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"The quantile level must be between 0 and 1; got {level!r}.")
    cumulative = np.cumsum(count_array)
    total = int(cumulative[-1])
    if total == 0:
        raise ValueError("The histogram has no observations (all counts are 0).")
    target = level * total
    if target <= 0.0:
        return float(value_array[np.flatnonzero(count_array)[0]])
    return float(value_array[np.searchsorted(cumulative, target, side="left")])


@dataclass(frozen=True)
class QuantileArm:
    """Sufficient statistics of a clustered quantile metric in one arm.

    Attributes:
        values: sorted histogram bucket representatives of all the arm's observations.
        counts: observations per bucket.
        threshold_moments: per randomisation unit ``i``, ``y_i`` = the unit's observations at or
            below the arm's estimated quantile and ``x_i`` = all the unit's observations, so that
            ``sum_y / sum_x`` is the clustered proportion below the quantile.

    Examples:
        >>> arm = QuantileArm.from_values([[1.0, 5.0], [2.0], [3.0, 4.0, 9.0]], level=0.5)
        >>> arm.values, arm.counts
        ((1.0, 2.0, 3.0, 4.0, 5.0, 9.0), (1, 1, 1, 1, 1, 1))
        >>> arm.threshold_moments.sum_y, arm.threshold_moments.sum_x
        (3.0, 6.0)
    """

    values: tuple[float, ...]
    counts: tuple[int, ...]
    threshold_moments: RatioMoments

    @classmethod
    def from_values(
        cls, observations: Sequence[Sequence[float] | np.ndarray], *, level: float
    ) -> QuantileArm:
        """Exact histogram and threshold moments from raw observations (for notebooks and tests).

        Args:
            observations (Sequence[Sequence[float] | numpy.ndarray]): per randomisation unit, its
                observations (a unit may have none).
            level (float): the quantile level the moments are thresholded at.

        Returns:
            QuantileArm: one bucket per distinct value.
        """
        per_unit = [np.asarray(unit, dtype=float).ravel() for unit in observations]
        pooled = np.concatenate(per_unit) if per_unit else np.empty(0)
        values, counts = np.unique(pooled, return_counts=True)
        quantile = quantile_from_histogram(values, counts, level)
        below = np.array([np.count_nonzero(unit <= quantile) for unit in per_unit], dtype=float)
        sizes = np.array([unit.size for unit in per_unit], dtype=float)
        return cls(
            values=tuple(float(v) for v in values),
            counts=tuple(int(c) for c in counts),
            threshold_moments=RatioMoments.from_values(below, sizes),
        )


def _quantile_with_std_error(
    arm: QuantileArm, name: str, level: float, z: float
) -> tuple[float, float]:
    """The arm's quantile and its standard error from the clustered outer interval."""
    if arm.threshold_moments.sum_x == 0.0:
        raise ValueError(
            f"The {name} arm's threshold moments count no observations (sum_x = 0); a quantile "
            f"needs observations in each arm."
        )
    quantile = quantile_from_histogram(arm.values, arm.counts, level)
    sigma = math.sqrt(_ratio_variance(arm.threshold_moments, name))
    low = quantile_from_histogram(arm.values, arm.counts, min(1.0, max(0.0, level - z * sigma)))
    high = quantile_from_histogram(arm.values, arm.counts, min(1.0, max(0.0, level + z * sigma)))
    return quantile, (high - low) / (2.0 * z)


def quantile_test(
    control: QuantileArm,
    treatment: QuantileArm,
    *,
    level: float,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """z-test of the difference of the ``level`` quantiles ``q_t - q_c`` of a clustered metric.

    When a unit contributes many observations (requests, page loads), they are correlated and an
    iid interval for a quantile is too narrow. Following Deng, Knoblich & Lu (2018), the share of
    observations at or below the estimated quantile, ``p = sum(y) / sum(x)`` over units, is a
    ratio metric whose delta-method standard error ``sigma_p`` accounts for the clustering (the
    variance of :func:`ratio_test`). The arm's ``1 - alpha`` interval for its quantile is
    ``[Q(level - z sigma_p), Q(level + z sigma_p)]`` read from its histogram (levels clipped to
    ``[0, 1]``), with ``z`` the two-sided normal quantile, and the arm's standard error is the
    interval's width over ``2 z``. The difference has standard error ``sqrt(se_c**2 + se_t**2)``
    (independent arms), is referred to the standard normal, and gets a normal interval (two-sided,
    or one-sided for one-sided alternatives); the relative lift's interval is by the delta method,
    or by Fieller's theorem with ``relative_ci="fieller"``.

    The standard error is only as fine as the histogram buckets: if the whole interval falls in
    one bucket, the standard error is 0. Use buckets narrow compared with the expected effect.

    Args:
        control (QuantileArm): the control arm's histogram and threshold moments.
        treatment (QuantileArm): the treatment arm's histogram and threshold moments.
        level (float): the quantile level, strictly between 0 and 1 (e.g. 0.95).
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``q_t - q_c > 0``.
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
        EffectEstimate: the quantiles as means, their difference and relative lift with
        intervals, z statistic and p-value; ``n_control``/``n_treatment`` count units.

    Raises:
        ValueError: if an arm has fewer than 2 units or no observation, a histogram is malformed,
            or ``level``, ``alpha``, ``alternative`` or ``relative_ci`` is invalid.

    References:
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018 (quantile metrics).

    Examples:
        Latencies of 400 users per arm, five requests each, sharing a per-user random effect:

        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> def arm(scale: float) -> QuantileArm:
        ...     units = [scale * rng.lognormal(rng.normal(), 0.5, size=5) for _ in range(400)]
        ...     return QuantileArm.from_values(units, level=0.9)
        >>> result = quantile_test(arm(1.0), arm(1.3), level=0.9)
        >>> round(result.mean_control, 2), round(result.mean_treatment, 2)
        (4.5, 5.28)
        >>> round(result.abs_ci_low, 2), round(result.abs_ci_high, 2), round(result.p_value, 3)
        (-0.18, 1.74, 0.113)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"The quantile level must be strictly between 0 and 1; got {level!r}.")
    check_alpha(alpha)
    check_units("quantile_test", control.threshold_moments.n, treatment.threshold_moments.n)
    z = float(special.ndtri(1.0 - alpha / 2.0))
    q_control, se_control = _quantile_with_std_error(control, "control", level, z)
    q_treatment, se_treatment = _quantile_with_std_error(treatment, "treatment", level, z)
    return _effect_from_means(
        mean_control=q_control,
        mean_treatment=q_treatment,
        var_mean_control=se_control**2,
        var_mean_treatment=se_treatment**2,
        n_control=control.threshold_moments.n,
        n_treatment=treatment.threshold_moments.n,
        alpha=alpha,
        alternative=alternative,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        method=(
            f"{sidedness(alternative)} z-test on the {level:g} quantile, SE from the "
            f"Deng-Knoblich-Lu clustered interval; {relative_ci_words(relative_ci)}"
        ),
    )
