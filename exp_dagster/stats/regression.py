"""Regression adjustment with several covariates, and CUPED for ratio metrics.

Both tests run on :class:`CrossMoments`: the count, the sums and the matrix of sums of
cross-products of a vector measured on every unit, which a warehouse computes with one
``GROUP BY variant`` (``count(*)``, ``sum(v_i)``, ``sum(v_i * v_j)`` for ``i <= j``). From these the
within-arm covariance matrix of the vector is exact, and so is every linear adjustment of the
metric by the other components.

* :func:`regression_adjusted_test`: CUPED with several covariates (or CUPAC, where a covariate is
  a model's prediction from pre-period data): ``v = (y, c_1, ..., c_k)``.
* :func:`cuped_ratio_test`: CUPED for a ratio metric with the same ratio in the pre-period:
  ``v = (y, x, y_pre, x_pre)`` per randomisation unit, linearised by the delta method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from exp_dagster.stats._common import Alternative, check_units, sidedness, welch_df
from exp_dagster.stats.effects import (
    Distribution,
    EffectEstimate,
    PValueScale,
    RelativeCI,
    _effect_from_means,
    relative_ci_words,
)

_CONSTANT_TOLERANCE = 1e-12
"""A centred sum of squares below this share of the raw sum of squares it was computed from is
rounding noise: the component is constant within arms."""

_COLLINEAR_TOLERANCE = 1e-10
"""Relative singular-value cutoff of the least-squares solve on the correlation scale."""


@dataclass(frozen=True)
class CrossMoments:
    """Sufficient statistics of a vector ``v`` measured on every unit of one arm.

    Lists are accepted and stored as tuples of floats. ``products`` must be symmetric (up to a
    relative ``1e-9``, for sums accumulated in different orders).

    Attributes:
        n: number of units.
        sums: ``sum(v_i)`` over units, one per component.
        products: the symmetric matrix of ``sum(v_i * v_j)`` over units, as a tuple of rows.
        names: optional labels of the components (e.g. ``("revenue", "revenue_pre")``); empty,
            or one per component.

    Examples:
        >>> arm = CrossMoments.from_values([[1.0, 2.0], [2.0, 2.5], [4.0, 5.0]], names=("y", "c"))
        >>> arm.n, arm.sums, arm.products
        (3, (7.0, 9.5), ((21.0, 27.0), (27.0, 35.25)))
        >>> arm.mean.round(4).tolist()
        [2.3333, 3.1667]
        >>> arm.covariance.round(4).tolist()
        [[2.3333, 2.4167], [2.4167, 2.5833]]
    """

    n: int
    sums: tuple[float, ...]
    products: tuple[tuple[float, ...], ...]
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise ValueError(
                f"CrossMoments.n is a number of units and must be a non-negative integer; got "
                f"{self.n!r}."
            )
        sums = np.asarray(self.sums, dtype=float)
        dimension = sums.size
        if sums.ndim != 1 or dimension == 0:
            raise ValueError(
                f"CrossMoments.sums must be a non-empty flat sequence, one sum per component of v; "
                f"got {self.sums!r}."
            )
        row_lengths = [len(row) for row in self.products]
        if len(row_lengths) != dimension or any(length != dimension for length in row_lengths):
            raise ValueError(
                f"CrossMoments.products must be a {dimension}x{dimension} matrix (one row and one "
                f"column per component of sums); got {len(row_lengths)} rows of lengths "
                f"{row_lengths}."
            )
        matrix = np.asarray(self.products, dtype=float)
        if not (np.isfinite(matrix).all() and np.isfinite(sums).all()):
            raise ValueError(
                "CrossMoments.sums and products must be finite; a nan or inf usually comes from a "
                "missing value in the warehouse query. Fill or filter it before summing."
            )
        relative_asymmetry = np.abs(matrix - matrix.T) - 1e-9 * np.maximum(
            np.abs(matrix), np.abs(matrix.T)
        )
        if (relative_asymmetry > 0.0).any():
            i, j = np.unravel_index(int(np.argmax(relative_asymmetry)), matrix.shape)
            raise ValueError(
                f"CrossMoments.products must be symmetric (sum of v_i * v_j = sum of v_j * v_i); "
                f"entry ({i}, {j}) is {matrix[i, j]!r} but ({j}, {i}) is {matrix[j, i]!r}."
            )
        names = tuple(self.names)
        if names and len(names) != dimension:
            raise ValueError(
                f"CrossMoments.names must be empty or name each of the {dimension} components; "
                f"got {len(names)} names {names!r}."
            )
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "sums", tuple(sums.tolist()))
        object.__setattr__(self, "products", tuple(map(tuple, matrix.tolist())))
        object.__setattr__(self, "names", names)

    @property
    def dimension(self) -> int:
        """Number of components of ``v``."""
        return len(self.sums)

    @property
    def mean(self) -> np.ndarray:
        """Mean of each component; ``nan`` when there are no units."""
        if self.n == 0:
            return np.full(self.dimension, math.nan)
        return np.array(self.sums) / self.n

    @property
    def covariance(self) -> np.ndarray:
        """Sample covariance matrix (``ddof=1``); zeros when ``n < 2``.

        Computed from raw sums, so a component whose mean is many orders of magnitude larger
        than its spread loses precision: centre it (subtract a constant) before summing.
        """
        if self.n < 2:
            return np.zeros((self.dimension, self.dimension))
        return _centred_products(self) / (self.n - 1)

    @classmethod
    def from_values(
        cls, matrix: Sequence[Sequence[float]] | np.ndarray, names: Sequence[str] = ()
    ) -> CrossMoments:
        """Cross-moments of raw per-unit vectors (for notebooks and tests).

        Args:
            matrix (Sequence[Sequence[float]] | numpy.ndarray): one row per unit, one column per
                component of ``v``.
            names (Sequence[str]): optional labels of the columns.

        Returns:
            CrossMoments: the arm's sufficient statistics.

        Raises:
            ValueError: if ``matrix`` is not two-dimensional.
        """
        values = np.asarray(matrix, dtype=float)
        if values.ndim != 2:
            raise ValueError(
                f"matrix must be two-dimensional, one row per unit and one column per component; "
                f"got shape {values.shape}. For a single component use values.reshape(-1, 1)."
            )
        return cls(
            n=int(values.shape[0]),
            sums=tuple(values.sum(axis=0).tolist()),
            products=tuple(tuple(row) for row in (values.T @ values).tolist()),
            names=tuple(names),
        )


def _centred_products(arm: CrossMoments) -> np.ndarray:
    """``sum (v - mean)(v - mean)^T`` over the arm's units: ``(n - 1)`` times the covariance."""
    sums = np.array(arm.sums)
    return np.array(arm.products) - np.outer(sums, sums) / arm.n


def _pooled_slopes(
    centred_cc: np.ndarray, centred_cy: np.ndarray, raw_cc_diagonal: np.ndarray
) -> np.ndarray:
    """Slopes ``θ`` solving ``centred_cc θ = centred_cy``, robust to constant or collinear columns.

    A covariate whose centred sum of squares is below ``_CONSTANT_TOLERANCE`` of the raw sum of
    squares it came from is constant within arms up to rounding and gets ``θ = 0``. The others are
    solved on the correlation scale by least squares with a relative singular-value cutoff, which
    gives the minimum-norm solution when covariates are exactly collinear: the fitted values
    ``θ·c`` are then still unique within arms.
    """
    theta = np.zeros(centred_cy.shape)
    diagonal = np.diag(centred_cc)
    varying = diagonal > _CONSTANT_TOLERANCE * raw_cc_diagonal
    if not np.any(varying):
        return theta
    if np.count_nonzero(varying) == 1:
        # One slope: the plain ratio, as cuped_test computes it.
        theta[varying] = centred_cy[varying] / diagonal[varying]
        return theta
    scale = np.sqrt(diagonal[varying])
    correlation = centred_cc[np.ix_(varying, varying)] / np.outer(scale, scale)
    solution = np.linalg.lstsq(
        correlation, centred_cy[varying] / scale, rcond=_COLLINEAR_TOLERANCE
    )[0]
    theta[varying] = solution / scale
    return theta


def _check_same_layout(test: str, control: CrossMoments, treatment: CrossMoments) -> None:
    if control.dimension != treatment.dimension:
        raise ValueError(
            f"{test} needs the same components in both arms; control has {control.dimension} "
            f"and treatment has {treatment.dimension}."
        )
    if control.names and treatment.names and control.names != treatment.names:
        raise ValueError(
            f"{test} needs the components in the same order in both arms; control has "
            f"{control.names!r} and treatment has {treatment.names!r}."
        )


def regression_adjusted_test(
    control: CrossMoments,
    treatment: CrossMoments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> EffectEstimate:
    """Welch's t-test on means adjusted by several covariates (multi-covariate CUPED, CUPAC).

    Each unit has ``v = (y, c_1, ..., c_k)``: the metric first, then ``k >= 1`` covariates that
    the treatment cannot affect (pre-period metrics, a model's prediction from pre-period data).
    The coefficients are pooled within arms with weights ``n - 1`` (``ddof=1``):
    ``θ = S_cc^-1 S_cy`` with ``S`` the sum over arms of the centred cross-products, i.e. the
    slopes of ``c`` in the OLS fit ``y ~ treatment + c_1 + ... + c_k``. Each arm's adjusted mean is
    ``mean(y) - θ·(mean_arm(c) - mean(c))`` with ``mean(c)`` over both arms, so the adjusted
    difference equals the OLS treatment coefficient. Each arm's adjusted variance is
    ``Var(y - θ·c)`` (``ddof=1``), and the adjusted means are compared by Welch's t-test
    (Welch-Satterthwaite df; the same t critical value for the interval of the difference and for
    the delta-method interval of the relative lift). θ is treated as known, which ignores an
    uncertainty of order ``k/n``. With one covariate this is :func:`~exp_dagster.stats.cuped_test`.

    ``S_cc`` may be singular: a covariate constant within each arm up to rounding (its centred
    sum of squares below ``1e-12`` of its raw one; even if the constant differs between arms)
    gets ``θ = 0``, and exactly collinear covariates are resolved by the
    minimum-norm least-squares solution on the correlation scale (relative singular-value cutoff
    ``1e-10``), which leaves the adjusted values ``y - θ·c`` unchanged. So a dropped constant
    covariate or a duplicated one does not change the result.

    ``variance_reduction = 1 - pooled Var(y - θ·c) / pooled Var(y)`` (both pooled with weights
    ``n - 1``), the within-arm R² of the regression of ``y`` on the covariates; 0 when ``y`` has no
    variance.

    Args:
        control (CrossMoments): the control arm's ``(y, c_1, ..., c_k)`` per unit.
        treatment (CrossMoments): the treatment arm's, components in the same order.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``treatment - control > 0``.

    Returns:
        EffectEstimate: adjusted means, absolute and relative effect with intervals, t statistic,
        p-value and ``variance_reduction``; with one covariate also its θ (``cuped_theta``).

    Raises:
        ValueError: if an arm has fewer than 2 units, the arms' components differ, ``v`` has no
            covariate, or ``alpha``/``alternative`` is invalid.

    References:
        Deng, A., Xu, Y., Kohavi, R., & Walker, T. (2013). Improving the Sensitivity of Online
        Controlled Experiments by Utilizing Pre-Experiment Data. WSDM 2013.

        Lin, W. (2013). Agnostic notes on regression adjustments to experimental data:
        Reexamining Freedman's critique. Annals of Applied Statistics, 7(1), 295-318.

        Li, J., Tang, Y., & Bauman, J. (2020). Improving Experimental Power through Control
        Using Predictions as Covariate (CUPAC). DoorDash Engineering blog.

    Examples:
        >>> control = CrossMoments.from_values(
        ...     [[3.0, 2.0, 1.0], [5.0, 4.5, 0.0], [4.0, 3.0, 1.0],
        ...      [6.5, 5.0, 1.0], [2.0, 1.0, 0.0], [4.0, 2.5, 0.0]],
        ...     names=("revenue", "revenue_pre", "is_returning"),
        ... )
        >>> treatment = CrossMoments.from_values(
        ...     [[4.5, 2.5, 1.0], [5.0, 3.5, 0.0], [7.0, 5.0, 1.0],
        ...      [3.5, 1.5, 0.0], [6.5, 4.0, 1.0], [5.0, 3.0, 1.0]],
        ...     names=("revenue", "revenue_pre", "is_returning"),
        ... )
        >>> result = regression_adjusted_test(control, treatment)
        >>> round(result.abs_effect, 4), round(result.std_error, 4), round(result.p_value, 4)
        (0.8751, 0.1825, 0.001)
        >>> round(result.variance_reduction, 4)
        0.9514
    """
    check_units("regression_adjusted_test", control.n, treatment.n)
    _check_same_layout("regression_adjusted_test", control, treatment)
    if control.dimension < 2:
        raise ValueError(
            "regression_adjusted_test needs v = (y, c_1, ..., c_k) with at least one covariate; "
            "got only y. Use welch_test for an unadjusted comparison."
        )
    centred_control, centred_treatment = _centred_products(control), _centred_products(treatment)
    pooled = centred_control + centred_treatment
    raw_diagonal = np.diag(np.array(control.products) + np.array(treatment.products))
    theta = _pooled_slopes(pooled[1:, 1:], pooled[1:, 0], raw_diagonal[1:])
    # Coefficients of the adjusted value y - θ·c as a linear form of v.
    adjustment = np.concatenate([[1.0], -theta])
    mean_covariates = (np.array(control.sums[1:]) + np.array(treatment.sums[1:])) / (
        control.n + treatment.n
    )

    def adjusted_mean(arm: CrossMoments) -> float:
        return float(arm.mean[0] - theta @ (arm.mean[1:] - mean_covariates))

    def adjusted_sum_of_squares(centred: np.ndarray) -> float:
        # A sum of squares; from raw sums it can dip a hair below zero.
        return max(0.0, float(adjustment @ centred @ adjustment))

    residual_control = adjusted_sum_of_squares(centred_control)
    residual_treatment = adjusted_sum_of_squares(centred_treatment)
    pooled_y = max(0.0, float(pooled[0, 0]))
    pooled_residual = residual_control + residual_treatment
    variance_reduction = 1.0 - pooled_residual / pooled_y if pooled_y > 0.0 else 0.0
    var_mean_control = residual_control / (control.n - 1) / control.n
    var_mean_treatment = residual_treatment / (treatment.n - 1) / treatment.n
    covariates = control.dimension - 1
    return _effect_from_means(
        mean_control=adjusted_mean(control),
        mean_treatment=adjusted_mean(treatment),
        var_mean_control=var_mean_control,
        var_mean_treatment=var_mean_treatment,
        n_control=control.n,
        n_treatment=treatment.n,
        alpha=alpha,
        alternative=alternative,
        method=(
            f"{sidedness(alternative)} Welch t-test on regression-adjusted means ({covariates} "
            f"covariate{'s' if covariates > 1 else ''}, coefficients pooled over arms); relative "
            f"lift CI by delta method"
        ),
        df=welch_df(var_mean_control, var_mean_treatment, control.n, treatment.n),
        variance_reduction=variance_reduction,
        # One covariate is CUPED, whose θ the result carries; several have a vector of them.
        cuped_theta=float(theta[0]) if covariates == 1 else None,
    )


def _linearised_arm(arm: CrossMoments, name: str) -> tuple[float, float, np.ndarray, float]:
    """Post and pre ratios of one arm and the centred cross-products of its linearised values.

    Returns ``(R, R_pre, S, scale)``: ``S`` is the 2x2 matrix of centred sums of squares and
    cross-products of ``L = (y - R x) / mean(x)`` and ``L_pre = (y_pre - R_pre x_pre) /
    mean(x_pre)``, each a linear form of ``v``; ``scale`` bounds the raw sums that the centred sum
    of squares of ``L_pre`` is computed from, to tell rounding noise from variation.
    """
    sum_y, sum_x, sum_y_pre, sum_x_pre = arm.sums
    if sum_x == 0.0:
        raise ValueError(
            f"The {name} arm's denominators x sum to 0, so its ratio is undefined; a ratio metric "
            f"needs at least one unit with a non-zero denominator in each arm."
        )
    if sum_x_pre == 0.0:
        raise ValueError(
            f"The {name} arm's pre-period denominators x_pre sum to 0, so its pre-period ratio is "
            f"undefined; without pre-period data use ratio_test instead."
        )
    ratio, ratio_pre = sum_y / sum_x, sum_y_pre / sum_x_pre
    forms = np.array(
        [
            [arm.n / sum_x, -ratio * arm.n / sum_x, 0.0, 0.0],
            [0.0, 0.0, arm.n / sum_x_pre, -ratio_pre * arm.n / sum_x_pre],
        ]
    )
    products = np.array(arm.products)
    sums = np.array(arm.sums)
    centred = products - np.outer(sums, sums) / arm.n
    raw_scale = float(np.abs(forms[1]) @ np.abs(products) @ np.abs(forms[1]))
    return ratio, ratio_pre, forms @ centred @ forms.T, raw_scale


def cuped_ratio_test(
    control: CrossMoments,
    treatment: CrossMoments,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_ci: RelativeCI = "delta",
    distribution: Distribution = "default",
    p_value_scale: PValueScale = "absolute",
) -> EffectEstimate:
    """z-test of a ratio metric's difference, CUPED-adjusted by the same ratio in the pre-period.

    Each randomisation unit (e.g. a user) has ``v = (y, x, y_pre, x_pre)``: the numerator and
    denominator of the metric during the experiment (clicks, impressions) and before it. Per arm,
    ``R = sum(y) / sum(x)`` and ``R_pre = sum(y_pre) / sum(x_pre)`` are linearised by the delta
    method at the unit: ``L = (y - R x) / mean(x)`` and ``L_pre = (y_pre - R_pre x_pre) /
    mean(x_pre)``, so that ``Var(R) ~ Var(L) / n``. The coefficient is pooled within arms with
    weights ``n - 1`` (``ddof=1``): ``θ = sum_arms (n - 1) Cov(L, L_pre) / sum_arms (n - 1)
    Var(L_pre)`` (0 when ``L_pre`` has no variance up to rounding). Each arm's adjusted ratio is
    ``R - θ (R_pre - R_pre_pooled)`` with ``R_pre_pooled`` the pre-period ratio of sums over both
    arms (it cancels in the difference), with variance
    ``(Var(L) - 2 θ Cov(L, L_pre) + θ**2 Var(L_pre)) / n``. All of these come from the 4x4
    cross-products. The arms are independent, the statistic is referred to the standard normal,
    and the interval uses the same normal critical value (two-sided, or one-sided with the other
    bound infinite); the relative lift's interval is by the delta method or Fieller's theorem
    as ``relative_ci`` says, on the adjusted ratios' variances. θ is treated as known.

    Units without pre-period activity enter with ``y_pre = x_pre = 0`` (their ``L_pre`` is 0);
    they must be included, not dropped, or the arms stop being comparable.

    ``variance_reduction = 1 - pooled Var(L - θ L_pre) / pooled Var(L)``, the squared pooled
    within-arm correlation of the linearised values; 0 when ``L`` has no variance.

    Args:
        control (CrossMoments): the control arm's ``(y, x, y_pre, x_pre)`` per unit.
        treatment (CrossMoments): the treatment arm's, components in the same order.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``R_t - R_c > 0``.
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
        EffectEstimate: the adjusted ratios as means, difference and relative lift with
        intervals, z statistic, p-value, ``variance_reduction`` and θ (``cuped_theta``, the
        slope of ``L`` on ``L_pre``).

    Raises:
        ValueError: if ``v`` does not have 4 components, an arm has fewer than 2 units or
            denominators (post or pre) summing to 0, or ``alpha``/``alternative`` is invalid.

    References:
        Deng, A., Xu, Y., Kohavi, R., & Walker, T. (2013). Improving the Sensitivity of Online
        Controlled Experiments by Utilizing Pre-Experiment Data. WSDM 2013.

        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.

        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments.
        Cambridge University Press (variance estimation and improved sensitivity).

    Examples:
        >>> control = CrossMoments.from_values(
        ...     [[1, 4, 1, 5], [0, 2, 0, 3], [3, 6, 2, 4],
        ...      [1, 3, 1, 2], [2, 5, 2, 6], [0, 1, 0, 2]],
        ...     names=("clicks", "impressions", "clicks_pre", "impressions_pre"),
        ... )
        >>> treatment = CrossMoments.from_values(
        ...     [[2, 4, 1, 4], [1, 2, 0, 2], [3, 5, 2, 5],
        ...      [1, 2, 1, 3], [2, 6, 1, 5], [1, 3, 0, 1]],
        ...     names=("clicks", "impressions", "clicks_pre", "impressions_pre"),
        ... )
        >>> result = cuped_ratio_test(control, treatment)
        >>> round(result.mean_control, 4), round(result.mean_treatment, 4)
        (0.3245, 0.4643)
        >>> round(result.abs_effect, 4), round(result.std_error, 4), round(result.p_value, 4)
        (0.1398, 0.0463, 0.0025)
        >>> round(result.variance_reduction, 4)
        0.7292
    """
    if control.dimension != 4 or treatment.dimension != 4:
        raise ValueError(
            f"cuped_ratio_test needs v = (y, x, y_pre, x_pre) per unit, 4 components; got "
            f"{control.dimension} in control and {treatment.dimension} in treatment."
        )
    _check_same_layout("cuped_ratio_test", control, treatment)
    check_units("cuped_ratio_test", control.n, treatment.n)
    ratio_control, pre_control, linear_control, scale_control = _linearised_arm(control, "control")
    ratio_treatment, pre_treatment, linear_treatment, scale_treatment = _linearised_arm(
        treatment, "treatment"
    )
    pooled = linear_control + linear_treatment
    raw_scale = scale_control + scale_treatment
    theta = float(_pooled_slopes(pooled[1:, 1:], pooled[1:, 0], np.array([raw_scale]))[0])
    adjustment = np.array([1.0, -theta])
    pooled_pre_ratio = (control.sums[2] + treatment.sums[2]) / (control.sums[3] + treatment.sums[3])

    def adjusted_sum_of_squares(linear: np.ndarray) -> float:
        # A sum of squares; from raw sums it can dip a hair below zero.
        return max(0.0, float(adjustment @ linear @ adjustment))

    residual_control = adjusted_sum_of_squares(linear_control)
    residual_treatment = adjusted_sum_of_squares(linear_treatment)
    pooled_linear = max(0.0, float(pooled[0, 0]))
    pooled_residual = residual_control + residual_treatment
    variance_reduction = 1.0 - pooled_residual / pooled_linear if pooled_linear > 0.0 else 0.0
    return _effect_from_means(
        mean_control=ratio_control - theta * (pre_control - pooled_pre_ratio),
        mean_treatment=ratio_treatment - theta * (pre_treatment - pooled_pre_ratio),
        var_mean_control=residual_control / (control.n - 1) / control.n,
        var_mean_treatment=residual_treatment / (treatment.n - 1) / treatment.n,
        n_control=control.n,
        n_treatment=treatment.n,
        alpha=alpha,
        alternative=alternative,
        method=(
            f"{sidedness(alternative)} z-test on CUPED-adjusted ratios of sums (delta-method "
            f"linearisation at the randomisation unit, theta pooled over arms); "
            f"{relative_ci_words(relative_ci)}"
        ),
        variance_reduction=variance_reduction,
        relative_ci=relative_ci,
        distribution=distribution,
        p_value_scale=p_value_scale,
        cuped_theta=theta,
    )
