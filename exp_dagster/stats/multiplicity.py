"""Multiple testing: adjusted p-values for a family of hypotheses (Bonferroni, Šidák, Holm,
Holm-Šidák, Hochberg, Benjamini-Hochberg, Benjamini-Yekutieli).

An experiment usually tests several metrics, and sometimes several treatments, at once; among
many true null hypotheses some p-values fall below ``alpha`` by chance. An adjusted p-value is the
smallest family-level ``alpha`` at which the procedure rejects the hypothesis, so "reject when
``adjusted_p_value <= alpha``" applies the procedure.

Which error rate each method controls at level ``alpha``:

* ``"bonferroni"`` and ``"holm"``: the family-wise error rate (FWER, the probability of at least
  one false rejection), under any dependence between the p-values. Holm rejects everything
  Bonferroni rejects, and sometimes more.
* ``"sidak"`` and ``"holm-sidak"``: the FWER when the p-values are independent, and for two-sided
  z-tests of jointly normal statistics under any correlation (Šidák's inequality); slightly less
  conservative than Bonferroni and Holm (``1 - (1 - p)^m`` instead of ``m p``).
* ``"hochberg"``: the FWER under independence or PRDS (Sarkar 2008); a step-up procedure that
  rejects everything Holm rejects, and sometimes more.
* ``"benjamini-hochberg"``: the false discovery rate (FDR, the expected share of false
  rejections among the rejections), when the p-values are independent or positively regression
  dependent on the subset of true nulls (PRDS), e.g. one-sided tests of positively correlated
  metrics. It controls the FDR at ``alpha * m0 / m`` with ``m0`` true nulls among ``m``.
* ``"benjamini-yekutieli"``: the FDR under any dependence, at the price of multiplying the
  Benjamini-Hochberg values by ``c(m) = 1 + 1/2 + ... + 1/m``.
* ``"none"``: nothing; the p-values are returned as given (per-comparison error rate).

Missing p-values (``nan``, e.g. a metric that could not be computed) stay ``nan`` and are not
counted in the family size ``m``: the family is the hypotheses that were actually tested.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from exp_dagster.stats._common import check_alpha

MultiplicityMethod = Literal[
    "bonferroni",
    "holm",
    "benjamini-hochberg",
    "none",
    "sidak",
    "holm-sidak",
    "hochberg",
    "benjamini-yekutieli",
]
"""A multiple-testing adjustment; see the module docstring for the error rate each controls."""

MULTIPLICITY_METHODS: tuple[str, ...] = get_args(MultiplicityMethod)

ERROR_RATES: dict[str, str] = {
    "bonferroni": "FWER",
    "holm": "FWER",
    "benjamini-hochberg": "FDR",
    "none": "per-comparison",
    "sidak": "FWER",
    "holm-sidak": "FWER",
    "hochberg": "FWER",
    "benjamini-yekutieli": "FDR",
}
"""The error rate each method controls at level ``alpha``."""


@dataclass(frozen=True)
class AdjustedPValue:
    """One hypothesis of a family after a multiple-testing adjustment.

    Attributes:
        p_value: the unadjusted p-value as given (``nan`` if the hypothesis was not tested).
        adjusted_p_value: the adjusted p-value, in ``[p_value, 1]``; ``nan`` when ``p_value`` is.
        rejected: ``adjusted_p_value <= alpha``; ``False`` when the p-value is ``nan``.
        family_size: the number of hypotheses with a p-value (not ``nan``) in the family.
        method: the adjustment, one of :data:`MULTIPLICITY_METHODS`.
        error_rate: what ``rejected`` controls at level ``alpha``: ``"FWER"`` (Bonferroni,
            Šidák, Holm, Holm-Šidák, Hochberg), ``"FDR"`` (Benjamini-Hochberg,
            Benjamini-Yekutieli) or ``"per-comparison"`` (none).
        alpha: the family-level significance level used for ``rejected``.
    """

    p_value: float
    adjusted_p_value: float
    rejected: bool
    family_size: int
    method: str
    error_rate: str
    alpha: float


def _tested(p_values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Validated p-values as an array, and the mask of those that are not ``nan``."""
    values = np.asarray(p_values, dtype=float).reshape(-1)
    tested = ~np.isnan(values)
    invalid = values[tested & ~((values >= 0.0) & (values <= 1.0))]
    if invalid.size:
        raise ValueError(
            f"p-values must lie in [0, 1] (or be nan for an untested hypothesis); got "
            f"{invalid.tolist()}. Check that the inputs are p-values, not statistics or "
            f"percentages."
        )
    return values, tested


def _sidak(p: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """``1 - (1 - p)^k`` without losing the digits of small ``p`` (``-expm1(k log1p(-p))``)."""
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf gives 1, as it should
        return -np.expm1(k * np.log1p(-p))


def _step(p_values: Sequence[float], method: str) -> tuple[float, ...]:
    """Adjust the tested p-values with ``method``; ``nan`` entries are kept out of the family."""
    values, tested = _tested(p_values)
    adjusted = values.copy()
    family = values[tested]
    m = family.size
    if m == 0 or method == "none":
        return tuple(float(v) for v in adjusted)
    if method == "bonferroni":
        result = family * m
    elif method == "sidak":
        result = _sidak(family, m)
    else:
        # A stable sort keeps tied p-values in input order; every step procedure gives ties the
        # same adjusted value, so the order among ties does not matter.
        order = np.argsort(family, kind="stable")
        ordered = family[order]
        rank = np.arange(1, m + 1)
        # Step-down procedures are made non-decreasing from the smallest p-value up (running
        # maximum); step-up procedures by a running minimum from the largest.
        if method == "holm":  # p_(i) * (m - i + 1), step-down
            stepped = np.maximum.accumulate(ordered * (m - rank + 1))
        elif method == "holm-sidak":  # 1 - (1 - p_(i))^(m - i + 1), step-down
            stepped = np.maximum.accumulate(_sidak(ordered, m - rank + 1))
        elif method == "hochberg":  # p_(i) * (m - i + 1), step-up
            stepped = np.minimum.accumulate((ordered * (m - rank + 1))[::-1])[::-1]
        else:  # Benjamini-Hochberg p_(i) * m / i, step-up; Benjamini-Yekutieli times c(m)
            factor = float(np.sum(1.0 / rank)) if method == "benjamini-yekutieli" else 1.0
            stepped = np.minimum.accumulate((ordered * (m * factor) / rank)[::-1])[::-1]
        result = np.empty(m)
        result[order] = stepped
    adjusted[tested] = np.minimum(result, 1.0)
    return tuple(float(v) for v in adjusted)


def bonferroni(p_values: Sequence[float]) -> tuple[float, ...]:
    """Bonferroni-adjusted p-values: ``min(1, m * p)``; controls the FWER under any dependence.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Dunn, O. J. (1961). Multiple Comparisons Among Means. Journal of the American Statistical
        Association, 56(293), 52-64 (the Bonferroni inequality applied to tests).

    Examples:
        >>> bonferroni([0.01, 0.04, 0.03, float("nan")])
        (0.03, 0.12, 0.09, nan)
    """
    return _step(p_values, "bonferroni")


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjusted p-values; controls the FWER under any dependence.

    With the ``m`` tested p-values sorted ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``min(1, max_{j <= i} (m - j + 1) p_(j))``. It never exceeds the Bonferroni
    value, so Holm rejects at least what Bonferroni rejects.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Holm, S. (1979). A Simple Sequentially Rejective Multiple Test Procedure. Scandinavian
        Journal of Statistics, 6(2), 65-70.

    Examples:
        >>> [round(p, 4) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    return _step(p_values, "holm")


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Hochberg step-up adjusted p-values (q-values); control the FDR.

    With the ``m`` tested p-values sorted ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``min(1, min_{j >= i} m p_(j) / j)``. Rejecting when it is ``<= alpha`` controls
    the false discovery rate at ``alpha * m0 / m`` when the p-values are independent or PRDS
    (Benjamini & Yekutieli, 2001); it does not control the FWER.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Benjamini, Y., & Hochberg, Y. (1995). Controlling the False Discovery Rate: A Practical
        and Powerful Approach to Multiple Testing. Journal of the Royal Statistical Society,
        Series B, 57(1), 289-300.

        Benjamini, Y., & Yekutieli, D. (2001). The Control of the False Discovery Rate in Multiple
        Testing under Dependency. The Annals of Statistics, 29(4), 1165-1188.

    Examples:
        >>> [round(p, 4) for p in benjamini_hochberg([0.01, 0.04, 0.03])]
        [0.03, 0.04, 0.04]
    """
    return _step(p_values, "benjamini-hochberg")


def sidak(p_values: Sequence[float]) -> tuple[float, ...]:
    """Šidák-adjusted p-values: ``1 - (1 - p)^m``; control the FWER for independent p-values.

    Also valid for two-sided z-tests of jointly normal statistics under any correlation (Šidák's
    inequality). Never above the Bonferroni value ``m p``, and close to it for small ``p``.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Šidák, Z. (1967). Rectangular Confidence Regions for the Means of Multivariate Normal
        Distributions. Journal of the American Statistical Association, 62(318), 626-633.

    Examples:
        >>> [round(p, 4) for p in sidak([0.01, 0.04, 0.03])]
        [0.0297, 0.1153, 0.0873]
    """
    return _step(p_values, "sidak")


def holm_sidak(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down procedure with Šidák's adjustment at each step; FWER as :func:`sidak`.

    With the ``m`` tested p-values sorted, the adjusted value of ``p_(i)`` is
    ``min(1, max_{j <= i} 1 - (1 - p_(j))^(m - j + 1))``: never above Holm's.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Holm, S. (1979). A Simple Sequentially Rejective Multiple Test Procedure. Scandinavian
        Journal of Statistics, 6(2), 65-70 (the Šidák variant is in its section 4).

    Examples:
        >>> [round(p, 4) for p in holm_sidak([0.01, 0.04, 0.03])]
        [0.0297, 0.0591, 0.0591]
    """
    return _step(p_values, "holm-sidak")


def hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Hochberg's step-up adjusted p-values; control the FWER under independence or PRDS.

    With the ``m`` tested p-values sorted, the adjusted value of ``p_(i)`` is
    ``min(1, min_{j >= i} (m - j + 1) p_(j))``: never above Holm's, so Hochberg rejects at least
    what Holm rejects, but it needs independence or positive dependence (Sarkar 2008), which
    Holm does not.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Hochberg, Y. (1988). A Sharper Bonferroni Procedure for Multiple Tests of Significance.
        Biometrika, 75(4), 800-802.

        Sarkar, S. K. (2008). On the Simes Inequality and Its Generalization. IMS Collections,
        1, 231-242.

    Examples:
        >>> [round(p, 4) for p in hochberg([0.01, 0.04, 0.03])]
        [0.03, 0.04, 0.04]
    """
    return _step(p_values, "hochberg")


def benjamini_yekutieli(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Yekutieli adjusted p-values: the FDR under any dependence.

    The Benjamini-Hochberg values times ``c(m) = 1 + 1/2 + ... + 1/m`` (then made monotone and
    capped at 1): the price of dropping the independence/PRDS assumption.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``; ``nan`` marks an untested
            hypothesis, which stays ``nan`` and does not count in ``m``.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if a p-value lies outside ``[0, 1]``.

    References:
        Benjamini, Y., & Yekutieli, D. (2001). The Control of the False Discovery Rate in Multiple
        Testing under Dependency. The Annals of Statistics, 29(4), 1165-1188 (Theorem 1.3).

    Examples:
        >>> [round(p, 4) for p in benjamini_yekutieli([0.01, 0.04, 0.03])]
        [0.055, 0.0733, 0.0733]
    """
    return _step(p_values, "benjamini-yekutieli")


def _check_method(method: str) -> None:
    if method not in MULTIPLICITY_METHODS:
        options = ", ".join(repr(m) for m in MULTIPLICITY_METHODS)
        raise ValueError(f"method must be one of {options}; got {method!r}.")


def adjust_p_values(p_values: Sequence[float], method: MultiplicityMethod) -> tuple[float, ...]:
    """Adjusted p-values of a family, in the order given, by the named method.

    Adjusted values are capped at 1 and are never below the raw p-values; Holm's and
    Benjamini-Hochberg's are monotone in the raw p-values (a smaller p-value never gets a larger
    adjusted value). ``nan`` p-values stay ``nan`` and are not counted in the family size.

    Args:
        p_values (Sequence[float]): the family's p-values in ``[0, 1]``, or ``nan``.
        method (MultiplicityMethod): ``"bonferroni"`` and ``"holm"`` control the FWER under any
            dependence; ``"sidak"``, ``"holm-sidak"`` and ``"hochberg"`` the FWER under
            independence (Hochberg: or PRDS); ``"benjamini-hochberg"`` the FDR under
            independence or PRDS; ``"benjamini-yekutieli"`` the FDR under any dependence;
            ``"none"`` returns the p-values unchanged.

    Returns:
        tuple[float, ...]: adjusted p-values in the order given.

    Raises:
        ValueError: if ``method`` is unknown or a p-value lies outside ``[0, 1]``.

    References:
        Holm, S. (1979). A Simple Sequentially Rejective Multiple Test Procedure. Scandinavian
        Journal of Statistics, 6(2), 65-70.

        Benjamini, Y., & Hochberg, Y. (1995). Controlling the False Discovery Rate: A Practical
        and Powerful Approach to Multiple Testing. Journal of the Royal Statistical Society,
        Series B, 57(1), 289-300.

    Examples:
        >>> p_values = [0.001, 0.012, 0.02, 0.3]
        >>> [round(p, 4) for p in adjust_p_values(p_values, "bonferroni")]
        [0.004, 0.048, 0.08, 1.0]
        >>> [round(p, 4) for p in adjust_p_values(p_values, "holm")]
        [0.004, 0.036, 0.04, 0.3]
        >>> [round(p, 4) for p in adjust_p_values(p_values, "benjamini-hochberg")]
        [0.004, 0.024, 0.0267, 0.3]
    """
    _check_method(method)
    return _step(p_values, method)


def adjust_family(
    p_values: Mapping[str, float], *, method: MultiplicityMethod, alpha: float = 0.05
) -> dict[str, AdjustedPValue]:
    """Adjust a family of labelled hypotheses and decide which are rejected at level ``alpha``.

    The family is every hypothesis in the mapping with a p-value (``nan`` ones are reported but
    neither counted nor rejected); the caller decides what a family is, e.g. all metrics of one
    treatment-versus-control comparison. A hypothesis is rejected when its adjusted p-value is
    ``<= alpha``, which controls the error rate of :data:`ERROR_RATES` at ``alpha`` under the
    method's assumptions (module docstring).

    Args:
        p_values (Mapping[str, float]): p-value per hypothesis label, e.g. metric name.
        method (MultiplicityMethod): the adjustment (see :func:`adjust_p_values`).
        alpha (float): family-level significance level, strictly between 0 and 1.

    Returns:
        dict[str, AdjustedPValue]: one entry per label, in the mapping's order.

    Raises:
        ValueError: if ``method`` is unknown, ``alpha`` is not in ``(0, 1)``, or a p-value lies
            outside ``[0, 1]``.

    References:
        Holm, S. (1979). A Simple Sequentially Rejective Multiple Test Procedure. Scandinavian
        Journal of Statistics, 6(2), 65-70.

        Benjamini, Y., & Hochberg, Y. (1995). Controlling the False Discovery Rate: A Practical
        and Powerful Approach to Multiple Testing. Journal of the Royal Statistical Society,
        Series B, 57(1), 289-300.

    Examples:
        >>> family = {"ctr": 0.004, "revenue": 0.03, "latency": 0.2, "retention": float("nan")}
        >>> adjusted = adjust_family(family, method="holm", alpha=0.05)
        >>> for label, result in adjusted.items():
        ...     print(label, round(result.adjusted_p_value, 3), result.rejected)
        ctr 0.012 True
        revenue 0.06 False
        latency 0.2 False
        retention nan False
        >>> adjusted["ctr"].family_size, adjusted["ctr"].error_rate
        (3, 'FWER')
    """
    _check_method(method)
    check_alpha(alpha)
    labels = list(p_values)
    raw = [float(p_values[label]) for label in labels]
    adjusted = _step(raw, method)
    family_size = sum(not math.isnan(p) for p in raw)
    return {
        label: AdjustedPValue(
            p_value=p,
            adjusted_p_value=q,
            rejected=bool(q <= alpha),
            family_size=family_size,
            method=method,
            error_rate=ERROR_RATES[method],
            alpha=alpha,
        )
        for label, p, q in zip(labels, raw, adjusted, strict=True)
    }
