"""Numerics shared by every test in the package: alternatives, critical values, p-values, intervals.

Private: the public modules call these so that each convention (how a one-sided interval is
opened, what a zero standard error means) is decided once.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, get_args

from scipy import special

Alternative = Literal["two-sided", "greater", "less"]
"""The alternative hypothesis about ``treatment - control``; ``"greater"`` means it is positive."""

ALTERNATIVES: tuple[str, ...] = get_args(Alternative)


def check_alpha(alpha: float) -> None:
    """Raise a ``ValueError`` unless ``0 < alpha < 1``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, e.g. 0.05; got {alpha!r}.")


def check_alternative(alternative: str) -> None:
    """Raise a ``ValueError`` unless ``alternative`` is one of :data:`ALTERNATIVES`."""
    if alternative not in ALTERNATIVES:
        options = ", ".join(repr(a) for a in ALTERNATIVES)
        raise ValueError(f"alternative must be one of {options}; got {alternative!r}.")


def check_units(test: str, n_control: int, n_treatment: int, minimum: int = 2) -> None:
    """Raise a ``ValueError`` unless both arms have at least ``minimum`` units."""
    if min(n_control, n_treatment) < minimum:
        raise ValueError(
            f"{test} needs at least {minimum} unit{'s' if minimum > 1 else ''} in each arm; got "
            f"n_control={n_control}, n_treatment={n_treatment}. Wait for more data or drop "
            f"this cell."
        )


def sidedness(alternative: Alternative) -> str:
    """Words for the alternative, for the ``method`` sentence of a result."""
    check_alternative(alternative)
    return {
        "two-sided": "two-sided",
        "greater": "one-sided (treatment > control)",
        "less": "one-sided (treatment < control)",
    }[alternative]


def critical_value(alpha: float, alternative: Alternative, df: float = math.inf) -> float:
    """Critical value of a level ``1 - alpha`` test: ``1 - alpha/2`` quantile if two-sided.

    Student t with ``df`` degrees of freedom; the standard normal when ``df`` is infinite.
    """
    probability = 1.0 - alpha / 2.0 if alternative == "two-sided" else 1.0 - alpha
    if math.isinf(df):
        return float(special.ndtri(probability))
    return float(special.stdtrit(df, probability))


def _survival(statistic: float, df: float) -> float:
    if math.isinf(df):
        return float(special.ndtr(-statistic))
    return float(special.stdtr(df, -statistic))


def p_value(statistic: float, alternative: Alternative, df: float = math.inf) -> float:
    """P-value of a t (finite ``df``) or z statistic (infinite ``df``) under ``alternative``."""
    if math.isnan(statistic):
        return math.nan
    if alternative == "greater":
        return _survival(statistic, df)
    if alternative == "less":
        return _survival(-statistic, df)
    return min(1.0, 2.0 * _survival(abs(statistic), df))


def confidence_interval(
    estimate: float, std_error: float, crit: float, alternative: Alternative
) -> tuple[float, float]:
    """``estimate -/+ crit * std_error``, open on one side (``-/+inf``) for one-sided alternatives.

    A zero standard error gives the point itself, whatever ``crit`` is.
    """
    margin = crit * std_error if std_error != 0.0 else 0.0
    low = estimate - margin if alternative in ("two-sided", "greater") else -math.inf
    high = estimate + margin if alternative in ("two-sided", "less") else math.inf
    return low, high


def welch_df(
    var_mean_control: float, var_mean_treatment: float, n_control: int, n_treatment: int
) -> float:
    """Welch-Satterthwaite degrees of freedom from the variances of the two arm means.

    Infinite when both variances are zero: there is no sampling noise, and the critical value does
    not matter because it multiplies a zero standard error. An arm whose mean has no variance adds
    nothing to the denominator (so an arm of one unit, whose proportion has variance 0, is allowed).
    """
    total = var_mean_control + var_mean_treatment
    if total == 0.0:
        return math.inf
    return total**2 / sum(
        variance**2 / (n - 1)
        for variance, n in ((var_mean_control, n_control), (var_mean_treatment, n_treatment))
        if variance != 0.0
    )


class Inference(NamedTuple):
    """Test statistic, p-value and interval for one difference.

    Attributes:
        statistic: ``effect / test_std_error`` (t or z).
        p_value: p-value under the alternative.
        ci_low: lower confidence bound (``-inf`` for ``"less"``).
        ci_high: upper confidence bound (``+inf`` for ``"greater"``).
        critical_value: the quantile used for the interval, reusable for the relative lift.
    """

    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    critical_value: float


def infer(
    effect: float,
    std_error: float,
    *,
    alpha: float,
    alternative: Alternative,
    df: float = math.inf,
    test_std_error: float | None = None,
    continuity: float = 0.0,
) -> Inference:
    """Statistic, p-value and level ``1 - alpha`` interval for ``effect`` with ``std_error``.

    ``test_std_error`` (default ``std_error``) is the standard error under the null hypothesis
    when it differs from the one of the interval (pooled two-proportion test). A zero standard
    error means no sampling noise: the statistic is ``+/-inf`` for a non-zero effect and ``0`` for
    a zero effect (two-sided p-value 1), rather than ``nan``. ``continuity`` (a continuity
    correction, e.g. Yates' ``(1/n_c + 1/n_t) / 2`` for proportions) moves the effect that
    far towards 0 in the statistic (two-sided: ``|effect|`` less it, not below 0; one-sided:
    against the alternative) and widens the interval by it on each open side.
    """
    null_std_error = std_error if test_std_error is None else test_std_error
    tested = effect
    if continuity:
        if alternative == "two-sided":
            tested = math.copysign(max(0.0, abs(effect) - continuity), effect)
        else:
            tested = effect - continuity if alternative == "greater" else effect + continuity
    if null_std_error == 0.0:
        statistic = 0.0 if tested == 0.0 else math.copysign(math.inf, tested)
    else:
        statistic = tested / null_std_error
    crit = critical_value(alpha, alternative, df)
    low, high = confidence_interval(effect, std_error, crit, alternative)
    return Inference(
        statistic, p_value(statistic, alternative, df), low - continuity, high + continuity, crit
    )
