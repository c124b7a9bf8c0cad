"""An overall evaluation criterion (OEC) over several metrics, and metric trees.

Both run on :class:`~exp_dagster.stats.regression.CrossMoments`: per arm, the count, the sums and
the matrix of sums of cross-products of the vector of metrics measured on every randomisation
unit (``count(*)``, ``sum(y_k)``, ``sum(y_k * y_l)`` from one ``GROUP BY variant``). The metrics of
one unit are correlated (a user who sessions more also clicks and buys more), so the variance of a
combination of them comes from their joint covariance matrix, not from a sum of their variances.

* :func:`oec_test`: a weighted combination ``sum_k w_k * effect_k`` of the metrics' effects,
  absolute or relative to the control means (Kohavi, Tang & Xu 2020, ch. 7).
* :func:`metric_tree`: a product decomposition ``total = F_1 * F_2 * ... * F_m`` (e.g. revenue per
  user = active rate x sessions per active user x revenue per session) with each factor's log
  lift, which add up exactly to the total's log lift, so each factor's share says which branch
  moved (Deng & Shi 2016).
* :func:`linearise_ratio`: a ratio of sums as one more per-unit component (its linearisation), so
  that a ratio metric can enter an OEC beside means and proportions.

The pipeline reads the cross-moments from ``metric_cross_statistics`` (a spec's ``oec`` and
``metric_tree`` blocks; docs/statistics.md, "OEC and metric trees").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_units,
    infer,
    sidedness,
    welch_df,
)
from exp_dagster.stats.regression import CrossMoments

Normalisation = Literal["absolute", "relative"]
"""How each metric enters the OEC: ``"absolute"``, its difference of means ``m_t - m_c``;
``"relative"``, its relative lift ``m_t / m_c - 1`` (each metric divided by its control mean)."""

NORMALISATIONS: tuple[str, ...] = get_args(Normalisation)

Reference = Literal["t", "normal"]
"""What a statistic is referred to: Student t with Welch-Satterthwaite df, or the normal."""

REFERENCES: tuple[str, ...] = get_args(Reference)


@dataclass(frozen=True)
class OECResult:
    """The effect of a treatment on an overall evaluation criterion ``sum_k w_k * effect_k``.

    Intervals have level ``1 - alpha``; one-sided alternatives give one-sided intervals (the
    other bound infinite), consistent with the p-value.

    Attributes:
        value_control: the control's OEC: ``sum_k w_k m_c,k`` (absolute), or ``sum_k w_k``
            (relative: each metric is 1 in control units).
        value_treatment: the treatment's OEC: ``sum_k w_k m_t,k``, or ``sum_k w_k m_t,k / m_c,k``.
        effect: ``value_treatment - value_control``: ``sum_k w_k (m_t,k - m_c,k)`` or
            ``sum_k w_k (m_t,k / m_c,k - 1)``.
        std_error: standard error of ``effect`` from each arm's joint covariance matrix
            ``S``: ``sqrt(g_t' S_t g_t / n_t + g_c' S_c g_c / n_c)`` with the gradients ``g``
            of the OEC in each arm's means.
        independent_std_error: what the standard error would be if the metrics were
            uncorrelated within units, ``sqrt(sum_k w_k**2 se_k**2)`` (for comparison; not used).
        statistic: ``effect / std_error`` (t or z).
        p_value: p-value under the alternative.
        ci_low: lower confidence bound of ``effect``.
        ci_high: upper confidence bound of ``effect``.
        df: degrees of freedom of the reference (``inf`` for the normal).
        component_effects: each metric's effect (difference of means or relative lift; ``nan``
            for a metric of weight 0 under relative normalisation).
        component_std_errors: each metric's standard error, same scale (``nan`` likewise).
        contributions: ``w_k * component_effects[k]``; they add up to ``effect``.
        weights: the weights, one per component (0 for a component left out).
        names: the components' names (those of the arms, or ``("y0", "y1", ...)``).
        normalisation: ``"absolute"`` or ``"relative"``.
        alpha: significance level.
        alternative: the alternative hypothesis about ``effect``.
        method: a sentence stating the test and its conventions.
    """

    value_control: float
    value_treatment: float
    effect: float
    std_error: float
    independent_std_error: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    df: float
    component_effects: tuple[float, ...]
    component_std_errors: tuple[float, ...]
    contributions: tuple[float, ...]
    weights: tuple[float, ...]
    names: tuple[str, ...]
    normalisation: Normalisation
    alpha: float
    alternative: Alternative
    method: str


def _check_arms(control: CrossMoments, treatment: CrossMoments, test: str) -> tuple[str, ...]:
    """The components' names, after checking the arms describe the same vector."""
    if control.dimension != treatment.dimension:
        raise ValueError(
            f"{test}: control and treatment must have the same components; got "
            f"{control.dimension} and {treatment.dimension} components."
        )
    if control.names and treatment.names and control.names != treatment.names:
        raise ValueError(
            f"{test}: control and treatment name their components differently "
            f"({control.names!r} and {treatment.names!r}); build both arms from the same columns."
        )
    check_units(test, control.n, treatment.n)
    names = control.names or treatment.names
    return names or tuple(f"y{k}" for k in range(control.dimension))


def _check_choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")


def _weight_vector(
    weights: Sequence[float] | Mapping[str, float], names: tuple[str, ...]
) -> np.ndarray:
    if isinstance(weights, Mapping):
        unknown = [name for name in weights if name not in names]
        if unknown:
            raise ValueError(
                f"oec_test: weights name components the arms do not have: {unknown!r}; the arms' "
                f"components are {names!r}."
            )
        vector = np.array([float(weights.get(name, 0.0)) for name in names])
    else:
        vector = np.asarray(weights, dtype=float)
        if vector.ndim != 1 or vector.size != len(names):
            raise ValueError(
                f"oec_test: weights must give one weight per component ({len(names)}: "
                f"{names!r}); got {list(np.atleast_1d(vector))!r}. Use 0 for a component to "
                f"leave out, or a mapping from component name to weight."
            )
    if not np.isfinite(vector).all():
        raise ValueError(f"oec_test: weights must be finite numbers; got {vector.tolist()!r}.")
    if not vector.any():
        raise ValueError("oec_test: every weight is 0, so the OEC is 0; give some metric a weight.")
    return vector


def linearise_ratio(
    arm: CrossMoments, numerator: str, denominator: str, name: str | None = None
) -> CrossMoments:
    """The arm's cross-moments with a ratio's numerator and denominator replaced by its
    per-unit linearisation, so the ratio of sums enters an OEC like a mean.

    With the arm's means ``Y`` and ``X`` of the numerator ``y`` and denominator ``x`` and its
    ratio ``R = Y / X``, each unit's linearised value is ``l = R + (y - R x) / X``: its mean is
    ``R`` exactly, and its variance ``/ n`` is the delta-method variance of ``R`` (gradient
    ``(1 / X, -R / X)``), with its covariances with the other components likewise (Deng,
    Knoblich & Lu 2018). ``R`` and ``X`` are the arm's own, so each arm is linearised around its
    own ratio. The moments of ``l`` follow exactly from those of ``(y, x)``: ``l`` is affine in
    them. The new component takes ``numerator``'s place; ``denominator`` is dropped.

    Args:
        arm (CrossMoments): one arm's cross-moments, with named components.
        numerator (str): the component summed in the ratio's numerator.
        denominator (str): the component summed in its denominator.
        name (str | None): the linearised component's name (default: ``numerator``'s).

    Returns:
        CrossMoments: the arm with one component fewer.

    Raises:
        ValueError: if a component is not in the arm, or the denominator's mean is 0 (the
            ratio is undefined).

    References:
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.

    Examples:
        >>> arm = CrossMoments.from_values(
        ...     [[1.0, 2.0, 4.0], [0.0, 1.0, 2.0], [3.0, 3.0, 5.0]], names=("clicks", "views", "t")
        ... )
        >>> ratio = linearise_ratio(arm, "clicks", "views", "ctr")
        >>> ratio.names, round(float(ratio.mean[0]), 4)  # 4 clicks / 6 views
        (('ctr', 't'), 0.6667)
    """
    names = arm.names
    missing = [c for c in (numerator, denominator) if c not in names]
    if missing:
        raise ValueError(
            f"linearise_ratio: {missing!r} are not components of the arm {names!r}; name the "
            f"ratio's numerator and denominator as the arm names them."
        )
    i, j = names.index(numerator), names.index(denominator)
    if i == j:
        raise ValueError("linearise_ratio: the numerator and the denominator must differ.")
    mean = arm.mean
    if mean[j] == 0.0:
        raise ValueError(
            f"linearise_ratio: the mean of the denominator {denominator!r} is 0 in this arm, so "
            f"the ratio is undefined."
        )
    ratio = mean[i] / mean[j]
    kept = [k for k in range(arm.dimension) if k != j]
    transform = np.zeros((len(kept), arm.dimension))
    shift = np.zeros(len(kept))
    for row, k in enumerate(kept):
        if k == i:
            transform[row, i] = 1.0 / mean[j]
            transform[row, j] = -ratio / mean[j]
            shift[row] = ratio
        else:
            transform[row, k] = 1.0
    sums = np.asarray(arm.sums)
    products = np.asarray(arm.products)
    new_sums = transform @ sums + arm.n * shift
    mapped = transform @ sums
    new_products = (
        transform @ products @ transform.T
        + np.outer(mapped, shift)
        + np.outer(shift, mapped)
        + arm.n * np.outer(shift, shift)
    )
    new_products = (new_products + new_products.T) / 2.0
    new_names = tuple((name or numerator) if k == i else names[k] for k in kept)
    return CrossMoments(
        n=arm.n,
        sums=tuple(new_sums.tolist()),
        products=tuple(map(tuple, new_products.tolist())),
        names=new_names,
    )


def _quadratic(gradient: np.ndarray, arm: CrossMoments) -> float:
    """``g' S g / n``: the variance of a linear function ``g' mean`` of the arm's means."""
    return max(0.0, float(gradient @ arm.covariance @ gradient)) / arm.n


def oec_test(
    control: CrossMoments,
    treatment: CrossMoments,
    weights: Sequence[float] | Mapping[str, float],
    *,
    normalisation: Normalisation = "absolute",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    distribution: Reference = "t",
) -> OECResult:
    """Test of an overall evaluation criterion, a weighted combination of several metrics' effects.

    Each arm gives the per-unit vector of metrics ``y = (y_1, ..., y_K)`` as cross-moments, from
    which its means ``m`` and its covariance matrix ``S`` (``ddof=1``) are exact. The arms are
    independent samples of units.

    * ``normalisation="absolute"``: ``OEC = sum_k w_k (m_t,k - m_c,k)``, the difference of the
      arms' means of the per-unit value ``sum_k w_k y_k``. Its variance is
      ``w' S_t w / n_t + w' S_c w / n_c``: the joint covariance, not ``sum_k w_k**2 se_k**2``.
      This is exactly Welch's t-test on the per-unit values ``sum_k w_k y_k``.
    * ``normalisation="relative"``: ``OEC = sum_k w_k (m_t,k / m_c,k - 1)``, each metric divided
      by its control mean so that metrics on different scales can be weighted. The control means
      are estimated, so the variance is by the delta method in both arms' means: gradients
      ``g_t,k = w_k / m_c,k`` and ``g_c,k = -w_k m_t,k / m_c,k**2``, variance
      ``g_t' S_t g_t / n_t + g_c' S_c g_c / n_c``.

    The statistic is referred to Student t with Welch-Satterthwaite degrees of freedom
    ``(v_c + v_t)**2 / (v_c**2 / (n_c - 1) + v_t**2 / (n_t - 1))`` of the two arms' variance terms
    ``v`` above (``distribution="t"``), or to the standard normal (``"normal"``); the interval
    uses the same critical value.

    Args:
        control (CrossMoments): the control arm's per-unit vector of metrics.
        treatment (CrossMoments): the treatment arm's, same components in the same order.
        weights (Sequence[float] | Mapping[str, float]): one weight per component, or a mapping
            from component name to weight (components not named get weight 0).
        normalisation (Literal["absolute", "relative"]): differences of means, or relative lifts.
        alpha (float): significance level; the interval has level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether the
            OEC's effect is positive.
        distribution (Literal["t", "normal"]): the reference distribution.

    Returns:
        OECResult: the OEC in each arm, its effect with interval and p-value, and each metric's
        effect and contribution.

    Raises:
        ValueError: if the arms' components differ, an arm has fewer than 2 units, the weights do
            not match the components or are all 0, a weighted metric's control mean is 0 under
            relative normalisation, or an option is invalid.

    References:
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments,
        ch. 7 (metrics for experimentation and the OEC). Cambridge University Press.
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.
        Welch, B. L. (1947). The generalization of 'Student's' problem when several different
        population variances are involved. Biometrika 34(1-2), 28-35.

    Examples:
        >>> names = ("clicks", "buy")
        >>> control = CrossMoments.from_values(
        ...     [[1.0, 0.0], [2.0, 1.0], [3.0, 1.0], [2.0, 0.0], [4.0, 1.0]], names=names
        ... )
        >>> treatment = CrossMoments.from_values(
        ...     [[2.0, 1.0], [3.0, 1.0], [4.0, 1.0], [2.0, 0.0], [5.0, 1.0]], names=names
        ... )
        >>> result = oec_test(control, treatment, {"clicks": 1.0, "buy": 2.0})
        >>> round(result.effect, 4), round(result.std_error, 4), round(result.df, 2)
        (1.2, 1.2649, 7.96)
        >>> round(result.independent_std_error, 4)  # ignoring that clicks and buys go together
        1.0
        >>> relative = oec_test(control, treatment, [0.5, 0.5], normalisation="relative")
        >>> round(relative.effect, 4), [round(c, 4) for c in relative.contributions]
        (0.3333, [0.1667, 0.1667])
    """
    names = _check_arms(control, treatment, "oec_test")
    check_alpha(alpha)
    _check_choice("normalisation", normalisation, NORMALISATIONS)
    _check_choice("distribution", distribution, REFERENCES)
    w = _weight_vector(weights, names)
    mean_c, mean_t = control.mean, treatment.mean
    var_c = np.diag(control.covariance) / control.n
    var_t = np.diag(treatment.covariance) / treatment.n
    if normalisation == "absolute":
        gradient_c, gradient_t = -w, w
        component_effects = mean_t - mean_c
        component_variances = var_t + var_c
        value_control, value_treatment = float(w @ mean_c), float(w @ mean_t)
        scale = "differences of means"
    else:
        zero = [names[k] for k in range(len(names)) if w[k] != 0.0 and mean_c[k] == 0.0]
        if zero:
            raise ValueError(
                f"oec_test: the control mean of {zero!r} is 0, so its relative lift is undefined; "
                f"give it weight 0, or use normalisation='absolute'."
            )
        weighted = w != 0.0
        # A metric left out (weight 0) may have a zero control mean; it contributes nothing.
        safe_c = np.where(weighted, mean_c, 1.0)
        gradient_t = np.where(weighted, w / safe_c, 0.0)
        gradient_c = np.where(weighted, -w * mean_t / safe_c**2, 0.0)
        component_effects = np.where(weighted, mean_t / safe_c - 1.0, math.nan)
        ratio = mean_t / safe_c
        component_variances = np.where(weighted, (var_t + ratio**2 * var_c) / safe_c**2, math.nan)
        value_control = float(w[weighted].sum())
        value_treatment = float(w[weighted] @ ratio[weighted])
        scale = "relative lifts (each metric divided by its control mean, delta method)"
    variance_c = _quadratic(gradient_c, control)
    variance_t = _quadratic(gradient_t, treatment)
    std_error = math.sqrt(variance_c + variance_t)
    contributions = np.where(w != 0.0, w * component_effects, 0.0)
    effect = float(contributions.sum())
    independent = math.sqrt(float(np.sum(np.where(w != 0.0, w**2 * component_variances, 0.0))))
    df = (
        welch_df(variance_c, variance_t, control.n, treatment.n)
        if distribution == "t"
        else math.inf
    )
    inference = infer(effect, std_error, alpha=alpha, alternative=alternative, df=df)
    reference = "t-test with Welch-Satterthwaite df" if distribution == "t" else "z-test"
    method = (
        f"{sidedness(alternative)} {reference} on an OEC of {len(names)} metrics "
        f"(weighted sum of {scale}); variance from the arms' joint covariance of the metrics"
    )
    return OECResult(
        value_control=value_control,
        value_treatment=value_treatment,
        effect=effect,
        std_error=std_error,
        independent_std_error=independent,
        statistic=inference.statistic,
        p_value=inference.p_value,
        ci_low=inference.ci_low,
        ci_high=inference.ci_high,
        df=df,
        component_effects=tuple(component_effects.tolist()),
        component_std_errors=tuple(np.sqrt(component_variances).tolist()),
        contributions=tuple(contributions.tolist()),
        weights=tuple(w.tolist()),
        names=names,
        normalisation=normalisation,
        alpha=alpha,
        alternative=alternative,
        method=method,
    )


@dataclass(frozen=True)
class TreeFactor:
    """One factor ``F = mean(numerator) / mean(denominator)`` of a metric tree, on the log scale.

    Attributes:
        name: the factor's name (e.g. ``"sessions per active user"``).
        numerator: the component summed in the numerator.
        denominator: the component summed in the denominator; ``None`` for a mean per unit.
        value_control: the factor in control.
        value_treatment: the factor in treatment.
        log_lift: ``log(value_treatment / value_control)``.
        std_error: delta-method standard error of ``log_lift``.
        ci_low: lower confidence bound of ``log_lift``.
        ci_high: upper confidence bound of ``log_lift``.
        lift: ``exp(log_lift) - 1``, the relative lift of the factor.
        lift_ci_low: ``exp(ci_low) - 1``.
        lift_ci_high: ``exp(ci_high) - 1``.
        statistic: ``log_lift / std_error``.
        p_value: p-value under the alternative.
        share: ``log_lift / total log lift``, the share of the total's movement this factor
            carries (shares add up to 1; ``nan`` when the total log lift is 0). A share above 1
            or below 0 means other factors moved the other way.
    """

    name: str
    numerator: str
    denominator: str | None
    value_control: float
    value_treatment: float
    log_lift: float
    std_error: float
    ci_low: float
    ci_high: float
    lift: float
    lift_ci_low: float
    lift_ci_high: float
    statistic: float
    p_value: float
    share: float


@dataclass(frozen=True)
class MetricTreeResult:
    """A product decomposition ``total = F_1 * ... * F_m`` with each factor's log lift.

    Attributes:
        total: the total's row (name ``"total"``, no numerator or denominator of its own:
            ``numerator`` and ``denominator`` are ``""`` and ``None``, ``share`` 1).
        factors: one row per factor, in the order given; their ``log_lift`` add up to the
            total's exactly.
        df: degrees of freedom of the reference (``inf`` for the normal).
        alpha: significance level.
        alternative: the alternative hypothesis about each log lift.
        method: a sentence stating the conventions.
    """

    total: TreeFactor
    factors: tuple[TreeFactor, ...]
    df: float
    alpha: float
    alternative: Alternative
    method: str


def _component(reference: str | int, names: tuple[str, ...], factor: str) -> int:
    if isinstance(reference, bool):
        reference = str(reference)
    if isinstance(reference, int | np.integer):
        if not 0 <= reference < len(names):
            raise ValueError(
                f"metric_tree: factor {factor!r} refers to component {reference}, but the arms "
                f"have components 0 to {len(names) - 1} ({names!r})."
            )
        return int(reference)
    if reference not in names:
        raise ValueError(
            f"metric_tree: factor {factor!r} refers to {reference!r}, which is not one of the "
            f"arms' components {names!r}."
        )
    return names.index(reference)


def _log_gradient(
    arm: CrossMoments, numerator: int, denominator: int | None, factor: str, arm_name: str
) -> tuple[float, np.ndarray]:
    """The factor's value in the arm and the gradient of its log in the arm's means."""
    mean = arm.mean
    gradient = np.zeros(arm.dimension)
    value = mean[numerator]
    gradient[numerator] += 1.0 / mean[numerator] if mean[numerator] != 0.0 else math.nan
    if denominator is not None:
        value = value / mean[denominator] if mean[denominator] != 0.0 else math.nan
        gradient[denominator] -= 1.0 / mean[denominator] if mean[denominator] != 0.0 else math.nan
    if not value > 0.0:
        raise ValueError(
            f"metric_tree: factor {factor!r} is {float(value)!r} in the {arm_name} arm; a log lift "
            f"needs every factor positive in both arms (a mean that is 0 or negative cannot be "
            f"decomposed multiplicatively)."
        )
    return float(value), gradient


def metric_tree(
    control: CrossMoments,
    treatment: CrossMoments,
    factors: Mapping[str, tuple[str | int, str | int | None]],
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    distribution: Reference = "normal",
) -> MetricTreeResult:
    """Which branch of a product of metrics moved: each factor's log lift, with delta-method CIs.

    A top-line metric often factors into a product, e.g. revenue per assigned user = active rate
    x sessions per active user x revenue per session, ``(A/n) (S/A) (R/S)`` with per-unit
    ``a`` (active or not), ``s`` (sessions), ``r`` (revenue) and ``A, S, R`` their sums. Each
    factor is a ratio of means ``F = mean(numerator) / mean(denominator)`` (or a mean per unit when
    the denominator is ``None``) of components of the arms' per-unit vector; the total is their
    product. On the log scale the lifts add up exactly:
    ``log(T_t / T_c) = sum_j log(F_j,t / F_j,c)``, so each factor's share of the total log lift
    says which branch moved. A branch that is itself a product is decomposed by calling this on
    the branch's own factors (its total is the parent's factor).

    Each log lift's variance is by the delta method in both arms' means, with units as the
    independent observations: ``g' S g / n`` per arm, where ``S`` is the arm's covariance matrix
    (``ddof=1``) and ``g`` the gradient of ``log F`` (``1 / m_num`` on the numerator,
    ``-1 / m_den`` on the denominator), summed over the independent arms. The total's gradient
    is the sum of the factors' gradients, so its variance accounts for the factors'
    correlation. The statistic is referred to the standard normal (``distribution="normal"``,
    the default) or to Student t with the Welch-Satterthwaite df of each row's two arm variance
    terms (``"t"``; ``df`` of the result is then the total's); intervals use the same critical
    value and are mapped to relative lifts by ``exp(.) - 1``.

    Args:
        control (CrossMoments): the control arm's per-unit vector of components.
        treatment (CrossMoments): the treatment arm's, same components in the same order.
        factors (Mapping[str, tuple[str | int, str | int | None]]): factor name to
            ``(numerator, denominator)``, each a component name (or index); ``None`` as
            denominator for a mean per unit.
        alpha (float): significance level; intervals have level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): about each log lift.
        distribution (Literal["normal", "t"]): the reference distribution.

    Returns:
        MetricTreeResult: the total's and each factor's log lift with interval, p-value and share.

    Raises:
        ValueError: if the arms' components differ, an arm has fewer than 2 units, a factor
            names an unknown component or is not positive in an arm, there is no factor, or an
            option is invalid.

    References:
        Deng, A., & Shi, X. (2016). Data-Driven Metric Development for Online Controlled
        Experiments: Seven Lessons Learned. KDD 2016 (metric decomposition).
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.

    Examples:
        >>> names = ("active", "sessions", "revenue")
        >>> control = CrossMoments.from_values(
        ...     [[1, 2, 10.0], [0, 0, 0.0], [1, 3, 12.0], [1, 1, 3.0], [0, 0, 0.0]], names=names
        ... )
        >>> treatment = CrossMoments.from_values(
        ...     [[1, 3, 14.0], [1, 1, 2.0], [1, 4, 15.0], [1, 2, 6.0], [0, 0, 0.0]], names=names
        ... )
        >>> tree = metric_tree(control, treatment, {
        ...     "active rate": ("active", None),
        ...     "sessions per active user": ("sessions", "active"),
        ...     "revenue per session": ("revenue", "sessions"),
        ... })
        >>> round(tree.total.value_control, 2), round(tree.total.value_treatment, 2)
        (5.0, 7.4)
        >>> for factor in tree.factors:
        ...     print(f"{factor.name}: {factor.log_lift:+.4f} (share {factor.share:+.3f})")
        active rate: +0.2877 (share +0.734)
        sessions per active user: +0.2231 (share +0.569)
        revenue per session: -0.1188 (share -0.303)
        >>> round(sum(f.log_lift for f in tree.factors) - tree.total.log_lift, 12)
        0.0
    """
    names = _check_arms(control, treatment, "metric_tree")
    check_alpha(alpha)
    _check_choice("distribution", distribution, REFERENCES)
    if not factors:
        raise ValueError(
            "metric_tree: give at least one factor, e.g. {'active rate': ('active', None)}."
        )
    rows: list[tuple[str, int, int | None]] = []
    for name, pair in factors.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(
                f"metric_tree: factor {name!r} must be a (numerator, denominator) pair, with "
                f"denominator None for a mean per unit; got {pair!r}."
            )
        numerator = _component(pair[0], names, name)
        denominator = None if pair[1] is None else _component(pair[1], names, name)
        rows.append((name, numerator, denominator))

    def row(
        name: str,
        numerator: str,
        denominator: str | None,
        values: tuple[float, float],
        gradients: tuple[np.ndarray, np.ndarray],
        log_lift: float,
        share: float,
    ) -> tuple[TreeFactor, float]:
        variance_c = _quadratic(gradients[0], control)
        variance_t = _quadratic(gradients[1], treatment)
        df = (
            welch_df(variance_c, variance_t, control.n, treatment.n)
            if distribution == "t"
            else math.inf
        )
        std_error = math.sqrt(variance_c + variance_t)
        inference = infer(log_lift, std_error, alpha=alpha, alternative=alternative, df=df)
        factor = TreeFactor(
            name=name,
            numerator=numerator,
            denominator=denominator,
            value_control=values[0],
            value_treatment=values[1],
            log_lift=log_lift,
            std_error=std_error,
            ci_low=inference.ci_low,
            ci_high=inference.ci_high,
            lift=math.expm1(log_lift),
            lift_ci_low=math.expm1(inference.ci_low),
            lift_ci_high=math.expm1(inference.ci_high),
            statistic=inference.statistic,
            p_value=inference.p_value,
            share=share,
        )
        return factor, df

    parts = []
    for name, numerator, denominator in rows:
        value_c, gradient_c = _log_gradient(control, numerator, denominator, name, "control")
        value_t, gradient_t = _log_gradient(treatment, numerator, denominator, name, "treatment")
        parts.append((name, numerator, denominator, value_c, value_t, gradient_c, gradient_t))
    log_lifts = [math.log(part[4]) - math.log(part[3]) for part in parts]
    # The total's log lift is the sum of the factors' (rather than log T_t - log T_c recomputed),
    # so the decomposition adds up exactly in floating point too.
    total_log_lift = math.fsum(log_lifts)
    total, total_df = row(
        "total",
        "",
        None,
        (math.prod(part[3] for part in parts), math.prod(part[4] for part in parts)),
        (sum(part[5] for part in parts), sum(part[6] for part in parts)),
        total_log_lift,
        1.0,
    )
    factor_rows = tuple(
        row(
            name,
            names[numerator],
            None if denominator is None else names[denominator],
            (value_c, value_t),
            (gradient_c, gradient_t),
            log_lift,
            log_lift / total_log_lift if total_log_lift != 0.0 else math.nan,
        )[0]
        for (
            name,
            numerator,
            denominator,
            value_c,
            value_t,
            gradient_c,
            gradient_t,
        ), log_lift in zip(parts, log_lifts, strict=True)
    )
    reference = (
        "Student t with Welch-Satterthwaite df per row" if distribution == "t" else "the normal"
    )
    method = (
        f"{sidedness(alternative)} tests of the log lifts of {len(parts)} factors whose product is "
        f"the total (log lifts add up to the total's); delta-method standard errors from each "
        f"arm's joint covariance of the components, referred to {reference}"
    )
    return MetricTreeResult(
        total=total,
        factors=factor_rows,
        df=total_df,
        alpha=alpha,
        alternative=alternative,
        method=method,
    )
