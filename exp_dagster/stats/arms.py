"""Single-arm intervals: each arm's mean or proportion with its own confidence interval."""

from __future__ import annotations

import math
from typing import Literal, get_args

from scipy import special

from exp_dagster.stats._common import check_alpha, critical_value
from exp_dagster.stats.moments import Moments

ProportionInterval = Literal["wilson", "wald", "clopper-pearson", "jeffreys"]
"""How :func:`proportion_interval` bounds a proportion."""

PROPORTION_INTERVALS: tuple[str, ...] = get_args(ProportionInterval)


def mean_interval(arm: Moments, *, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided Student t interval of an arm's mean: ``ȳ -/+ t_{n-1} s / sqrt(n)`` (``ddof=1``).

    Args:
        arm (Moments): the arm's per-unit metric.
        alpha (float): the interval has level ``1 - alpha``.

    Returns:
        tuple[float, float]: the bounds; the mean twice when ``s = 0``.

    Raises:
        ValueError: if the arm has fewer than 2 units or ``alpha`` is invalid.

    Examples:
        >>> low, high = mean_interval(Moments.from_values([2.0, 4.0, 4.0, 6.0]))
        >>> round(low, 4), round(high, 4)
        (1.4015, 6.5985)
    """
    check_alpha(alpha)
    if arm.n < 2:
        raise ValueError(f"mean_interval needs at least 2 units; got n={arm.n}.")
    half = critical_value(alpha, "two-sided", arm.n - 1) * math.sqrt(arm.var / arm.n)
    return arm.mean - half, arm.mean + half


def proportion_interval(
    successes: int, n: int, *, alpha: float = 0.05, method: ProportionInterval = "wilson"
) -> tuple[float, float]:
    """Two-sided interval of one arm's proportion ``successes / n``.

    * ``"wilson"`` (default): the score interval; good coverage even for small ``n`` or a
      proportion near 0 or 1.
    * ``"wald"``: ``p -/+ z sqrt(p (1 - p) / n)``, clipped to ``[0, 1]``; what the z-test's
      standard error implies, poor for small ``n`` or extreme ``p`` (zero width at 0 events).
    * ``"clopper-pearson"``: the exact interval from Beta quantiles; conservative.
    * ``"jeffreys"``: the equal-tailed interval of the ``Beta(1/2, 1/2)`` posterior.

    The same conventions as statsmodels' ``proportion_confint`` (``wilson``, ``normal``,
    ``beta``, ``jeffreys``).

    Args:
        successes (int): units with the event.
        n (int): units in the arm, at least 1.
        alpha (float): the interval has level ``1 - alpha``.
        method (Literal["wilson", "wald", "clopper-pearson", "jeffreys"]): the interval.

    Returns:
        tuple[float, float]: the bounds, within ``[0, 1]``.

    Raises:
        ValueError: if ``successes`` is outside ``[0, n]``, ``n < 1``, or an option is invalid.

    References:
        Brown, L. D., Cai, T. T., & DasGupta, A. (2001). Interval Estimation for a Binomial
        Proportion. Statistical Science, 16(2), 101-133.

    Examples:
        >>> [round(v, 4) for v in proportion_interval(3, 40)]
        [0.0258, 0.1986]
        >>> [round(v, 4) for v in proportion_interval(0, 40, method="clopper-pearson")]
        [0.0, 0.0881]
    """
    check_alpha(alpha)
    if n < 1:
        raise ValueError(f"proportion_interval needs at least 1 unit; got n={n}.")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}; got {successes}.")
    if method not in PROPORTION_INTERVALS:
        options = ", ".join(repr(m) for m in PROPORTION_INTERVALS)
        raise ValueError(f"method must be one of {options}; got {method!r}.")
    p = successes / n
    if method == "wald":
        half = critical_value(alpha, "two-sided") * math.sqrt(p * (1.0 - p) / n)
        return max(0.0, p - half), min(1.0, p + half)
    if method == "wilson":
        z = critical_value(alpha, "two-sided")
        z2 = z * z
        center = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        return max(0.0, center - half), min(1.0, center + half)
    if method == "clopper-pearson":
        low = (
            0.0
            if successes == 0
            else float(special.betaincinv(successes, n - successes + 1, alpha / 2))
        )
        high = (
            1.0
            if successes == n
            else float(special.betaincinv(successes + 1, n - successes, 1 - alpha / 2))
        )
        return low, high
    # As statsmodels: the posterior's quantiles even at 0 or n events (Brown et al. set the bound
    # to 0 or 1 there instead).
    from scipy import stats  # here, not at the top: see stats/__init__ (lazy scipy)

    posterior = stats.beta(successes + 0.5, n - successes + 0.5)
    return float(posterior.ppf(alpha / 2)), float(posterior.isf(alpha / 2))
