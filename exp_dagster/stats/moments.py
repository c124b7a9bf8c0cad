"""Sufficient statistics of one arm: counts, sums and sums of squares and cross-products.

A warehouse computes them with one ``GROUP BY variant`` (``count(*)``, ``sum(y)``, ``sum(y * y)``,
...), so every test in this package runs on a handful of numbers per arm, whatever the number of
units. Variances and covariances use ``ddof=1`` and are ``0.0`` for fewer than two units. They are
computed from raw sums, which loses precision when a metric's mean is many orders of magnitude
larger than its standard deviation; centre such a metric (subtract a constant) before summing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _check_count(name: str, n: int) -> None:
    if n < 0:
        raise ValueError(f"{name}.n is a number of units and cannot be negative; got {n}.")


def _covariance(n: int, sum_a: float, sum_b: float, sum_ab: float) -> float:
    """Sample covariance (``ddof=1``) from sums; ``0.0`` for fewer than two units."""
    if n < 2:
        return 0.0
    return (sum_ab - sum_a * sum_b / n) / (n - 1)


def _variance(n: int, sum_a: float, sum_a2: float) -> float:
    # A variance computed from sums can come out a hair below zero when it is really zero.
    return max(0.0, _covariance(n, sum_a, sum_a, sum_a2))


def _as_vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per unit); got {array.shape}.")
    return array


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of a per-unit metric ``y`` in one arm.

    Attributes:
        n: number of units.
        sum_y: sum of ``y`` over units.
        sum_y2: sum of ``y**2`` over units.

    Examples:
        >>> arm = Moments.from_values([1.0, 2.0, 3.0, 4.0])
        >>> arm
        Moments(n=4, sum_y=10.0, sum_y2=30.0)
        >>> arm.mean, round(arm.var, 4)
        (2.5, 1.6667)
    """

    n: int
    sum_y: float
    sum_y2: float

    def __post_init__(self) -> None:
        _check_count("Moments", self.n)

    @property
    def mean(self) -> float:
        """Mean of ``y``; ``nan`` when there are no units."""
        return self.sum_y / self.n if self.n > 0 else math.nan

    @property
    def var(self) -> float:
        """Sample variance of ``y`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _variance(self.n, self.sum_y, self.sum_y2)

    @classmethod
    def from_values(cls, values: Sequence[float] | np.ndarray) -> Moments:
        """Moments of raw per-unit values (for notebooks and tests).

        Args:
            values (Sequence[float] | numpy.ndarray): one value of the metric per unit.

        Returns:
            Moments: the arm's sufficient statistics.
        """
        y = _as_vector(values, "values")
        return cls(n=int(y.size), sum_y=float(y.sum()), sum_y2=float(y @ y))


@dataclass(frozen=True)
class RatioMoments:
    """Sufficient statistics of a ratio metric ``sum(y) / sum(x)`` in one arm.

    ``y`` and ``x`` are per randomisation unit (e.g. a user's clicks and impressions), so that the
    delta method can account for the correlation of observations within a unit.

    Attributes:
        n: number of units.
        sum_y: sum of the numerators ``y``.
        sum_x: sum of the denominators ``x``.
        sum_y2: sum of ``y**2``.
        sum_x2: sum of ``x**2``.
        sum_xy: sum of ``x * y``.

    Examples:
        >>> arm = RatioMoments.from_values(y=[1.0, 0.0, 3.0], x=[2.0, 1.0, 5.0])
        >>> arm.ratio, round(arm.cov_yx, 4)
        (0.5, 3.1667)
    """

    n: int
    sum_y: float
    sum_x: float
    sum_y2: float
    sum_x2: float
    sum_xy: float

    def __post_init__(self) -> None:
        _check_count("RatioMoments", self.n)

    @property
    def ratio(self) -> float:
        """Ratio of sums ``sum_y / sum_x``; ``nan`` when ``sum_x == 0``."""
        return self.sum_y / self.sum_x if self.sum_x != 0.0 else math.nan

    @property
    def mean_y(self) -> float:
        """Mean numerator per unit; ``nan`` when there are no units."""
        return self.sum_y / self.n if self.n > 0 else math.nan

    @property
    def mean_x(self) -> float:
        """Mean denominator per unit; ``nan`` when there are no units."""
        return self.sum_x / self.n if self.n > 0 else math.nan

    @property
    def var_y(self) -> float:
        """Sample variance of ``y`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _variance(self.n, self.sum_y, self.sum_y2)

    @property
    def var_x(self) -> float:
        """Sample variance of ``x`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _variance(self.n, self.sum_x, self.sum_x2)

    @property
    def cov_yx(self) -> float:
        """Sample covariance of ``y`` and ``x`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _covariance(self.n, self.sum_y, self.sum_x, self.sum_xy)

    @property
    def linearised_var(self) -> float:
        """Sample variance (``ddof=1``) of the linearised per-unit values
        ``(y_i - R x_i) / mean(x)`` with ``R`` the arm's ratio of sums: what the delta method
        treats as the per-unit variance of the ratio (``Var(R) ~ linearised_var / n``); ``nan``
        when ``sum_x == 0``, ``0.0`` when ``n < 2``.

        Examples:
            >>> arm = RatioMoments.from_values(y=[1.0, 0.0, 3.0], x=[2.0, 1.0, 5.0])
            >>> round(arm.linearised_var, 4)
            0.0352
        """
        if self.sum_x == 0.0:
            return math.nan
        ratio = self.ratio
        # A sum of squares; from raw sums it can dip a hair below zero.
        numerator = max(0.0, self.var_y - 2.0 * ratio * self.cov_yx + ratio**2 * self.var_x)
        return numerator / self.mean_x**2

    @classmethod
    def from_values(
        cls, y: Sequence[float] | np.ndarray, x: Sequence[float] | np.ndarray
    ) -> RatioMoments:
        """Moments of raw per-unit numerators ``y`` and denominators ``x``.

        Args:
            y (Sequence[float] | numpy.ndarray): numerator per unit.
            x (Sequence[float] | numpy.ndarray): denominator per unit, aligned with ``y``.

        Returns:
            RatioMoments: the arm's sufficient statistics.
        """
        y_arr, x_arr = _as_vector(y, "y"), _as_vector(x, "x")
        if y_arr.size != x_arr.size:
            raise ValueError(
                f"y and x must have one value per unit each; got {y_arr.size} and {x_arr.size}."
            )
        return cls(
            n=int(y_arr.size),
            sum_y=float(y_arr.sum()),
            sum_x=float(x_arr.sum()),
            sum_y2=float(y_arr @ y_arr),
            sum_x2=float(x_arr @ x_arr),
            sum_xy=float(x_arr @ y_arr),
        )


@dataclass(frozen=True)
class CovariateMoments:
    """Sufficient statistics of a metric ``y`` and its pre-period covariate ``c`` in one arm.

    The covariate is usually the same metric measured on the same unit before the experiment
    started, which CUPED uses to remove variance that the treatment cannot have caused.

    Attributes:
        n: number of units.
        sum_y: sum of ``y``.
        sum_y2: sum of ``y**2``.
        sum_c: sum of the covariate ``c``.
        sum_c2: sum of ``c**2``.
        sum_yc: sum of ``y * c``.

    Examples:
        >>> arm = CovariateMoments.from_values(y=[2.0, 4.0, 6.0], c=[1.0, 2.0, 4.0])
        >>> arm.mean_y, round(arm.cov_yc, 4), round(arm.var_c, 4)
        (4.0, 3.0, 2.3333)
    """

    n: int
    sum_y: float
    sum_y2: float
    sum_c: float
    sum_c2: float
    sum_yc: float

    def __post_init__(self) -> None:
        _check_count("CovariateMoments", self.n)

    @property
    def mean_y(self) -> float:
        """Mean of ``y``; ``nan`` when there are no units."""
        return self.sum_y / self.n if self.n > 0 else math.nan

    @property
    def mean_c(self) -> float:
        """Mean of ``c``; ``nan`` when there are no units."""
        return self.sum_c / self.n if self.n > 0 else math.nan

    @property
    def var_y(self) -> float:
        """Sample variance of ``y`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _variance(self.n, self.sum_y, self.sum_y2)

    @property
    def var_c(self) -> float:
        """Sample variance of ``c`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _variance(self.n, self.sum_c, self.sum_c2)

    @property
    def cov_yc(self) -> float:
        """Sample covariance of ``y`` and ``c`` (``ddof=1``); ``0.0`` when ``n < 2``."""
        return _covariance(self.n, self.sum_y, self.sum_c, self.sum_yc)

    @classmethod
    def from_values(
        cls, y: Sequence[float] | np.ndarray, c: Sequence[float] | np.ndarray
    ) -> CovariateMoments:
        """Moments of raw per-unit metric values ``y`` and covariates ``c``.

        Args:
            y (Sequence[float] | numpy.ndarray): metric per unit.
            c (Sequence[float] | numpy.ndarray): pre-period covariate per unit, aligned with ``y``.

        Returns:
            CovariateMoments: the arm's sufficient statistics.
        """
        y_arr, c_arr = _as_vector(y, "y"), _as_vector(c, "c")
        if y_arr.size != c_arr.size:
            raise ValueError(
                f"y and c must have one value per unit each; got {y_arr.size} and {c_arr.size}."
            )
        return cls(
            n=int(y_arr.size),
            sum_y=float(y_arr.sum()),
            sum_y2=float(y_arr @ y_arr),
            sum_c=float(c_arr.sum()),
            sum_c2=float(c_arr @ c_arr),
            sum_yc=float(y_arr @ c_arr),
        )
