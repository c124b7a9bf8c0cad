"""The mean of a per-request metric with a delta-method or cluster-bootstrap interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exp_dagster.evaluation._common import (
    IntervalMethod,
    as_vector,
    bootstrap_p_value,
    bootstrap_ratios,
    check_interval_method,
    check_same_length,
    cluster_index,
    cluster_totals,
    estimate_ratio,
    interval_words,
    percentile_interval,
    ratio_delta,
    z_critical,
    z_p_value,
)
from exp_dagster.stats._common import check_alpha


@dataclass(frozen=True)
class MetricEstimate:
    """The mean of a per-request (or per-row) metric with its two-sided confidence interval.

    Attributes:
        metric: the metric's name, e.g. ``"ndcg@10 (exponential gain)"`` or ``"log loss"``.
        value: the mean over the rows where the metric is defined (ratio of totals over clusters).
        std_error: delta-method / CLT standard error over clusters (``ddof=1``); with
            ``interval="bootstrap"``, the standard deviation of the bootstrap replicates.
        ci_low: lower bound of the level ``1 - alpha`` interval: ``value - z se`` (delta) or the
            ``alpha / 2`` percentile of the bootstrap replicates.
        ci_high: upper bound, as ``ci_low``.
        n_rows: rows (requests) where the metric is defined, which the mean is over.
        n_clusters: independent clusters (e.g. users) the interval treats as the sampling unit;
            equals ``n_rows`` when no clusters were given.
        n_undefined: rows dropped because the metric is undefined there (``nan``), e.g. requests
            without any relevant item for NDCG.
        alpha: one minus the confidence level.
        method: one sentence naming the interval and its conventions.
    """

    metric: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    n_rows: int
    n_clusters: int
    n_undefined: int
    alpha: float
    method: str


def mean_estimate(
    values: npt.ArrayLike,
    *,
    metric: str = "metric",
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> MetricEstimate:
    """Mean of per-row values with a two-sided CI by the delta method or a cluster bootstrap.

    Rows whose value is ``nan`` (the metric is undefined there) are dropped and counted in
    ``n_undefined``. Without ``clusters`` the rows are independent and the delta-method interval is
    the CLT interval ``mean -/+ z s / sqrt(n)`` (``ddof=1``). With ``clusters`` (e.g. the user of
    each request) the mean is the ratio ``sum_c S_c / sum_c N_c`` of each cluster's sum of values
    and count of rows, its standard error is the delta method's over clusters (equal to the
    cluster-robust CR1-type standard error of the intercept in an intercept-only regression, with
    the factor ``C / (C - 1)``), and the bootstrap resamples whole clusters.

    Args:
        values (ArrayLike): one value per row (request), ``nan`` where undefined.
        metric (str): the name stored in the result.
        clusters (ArrayLike | None): one cluster id per row (any hashable numpy dtype); ``None``
            treats every row as independent.
        alpha (float): one minus the confidence level.
        interval (Literal["delta", "bootstrap"]): the interval's method.
        n_bootstrap (int): bootstrap resamples (``interval="bootstrap"`` only).
        seed (int): seed of the bootstrap's ``numpy.random.default_rng``.

    Returns:
        MetricEstimate: the mean, standard error, interval and counts.

    Raises:
        ValueError: if ``values`` is not one-dimensional, ``clusters`` has another length, or
            ``alpha``, ``interval`` or ``n_bootstrap`` is invalid.

    References:
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.
        Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, chapter 13
        (percentile intervals). Chapman & Hall.

    Examples:
        >>> result = mean_estimate([1.0, 0.0, 0.5, 1.0, 0.25, 0.75], metric="ndcg@3")
        >>> round(result.value, 4), round(result.std_error, 4)
        (0.5833, 0.1667)
        >>> round(result.ci_low, 4), round(result.ci_high, 4)
        (0.2567, 0.91)
    """
    check_alpha(alpha)
    check_interval_method(interval)
    array = as_vector(values, "values")
    defined = ~np.isnan(array)
    cluster_ids = None
    if clusters is not None:
        cluster_ids = np.asarray(clusters)
        if cluster_ids.shape != array.shape:
            raise ValueError(
                f"clusters must have one id per value ({len(array)} values); got shape "
                f"{cluster_ids.shape}."
            )
        cluster_ids = cluster_ids[defined]
    kept = array[defined]
    value, std_error, low, high, n_clusters = estimate_ratio(
        kept,
        np.ones_like(kept),
        clusters=cluster_ids,
        alpha=alpha,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return MetricEstimate(
        metric=metric,
        value=value,
        std_error=std_error,
        ci_low=low,
        ci_high=high,
        n_rows=int(kept.size),
        n_clusters=n_clusters,
        n_undefined=int(array.size - kept.size),
        alpha=alpha,
        method=f"mean over rows; {interval_words(interval, alpha, n_bootstrap, seed)}",
    )


@dataclass(frozen=True)
class PairedComparison:
    """A candidate model against a baseline on the same rows (requests), paired.

    Attributes:
        metric: the metric's name.
        mean_baseline: the baseline model's mean over the rows where both are defined.
        mean_candidate: the candidate model's mean over the same rows.
        abs_effect: ``mean_candidate - mean_baseline``.
        abs_ci_low: lower bound of the level ``1 - alpha`` interval of ``abs_effect``.
        abs_ci_high: upper bound of that interval.
        rel_effect: ``mean_candidate / mean_baseline - 1``; ``nan`` when ``mean_baseline == 0``.
        rel_ci_low: lower bound of the relative lift (delta method with the paired covariance, or
            the bootstrap percentile); ``nan`` when ``mean_baseline == 0``.
        rel_ci_high: upper bound of the relative lift.
        p_value: two-sided p-value of no difference: normal test of the paired difference (delta
            method), or twice the smaller bootstrap tail (bootstrap).
        std_error: standard error of ``abs_effect`` (delta method), or the standard deviation of
            its bootstrap replicates.
        n_rows: rows where both models' metric is defined.
        n_clusters: independent clusters the interval treats as the sampling unit.
        n_undefined: rows dropped because either model's metric is ``nan`` there.
        alpha: one minus the confidence level.
        method: one sentence naming the test and its conventions.
    """

    metric: str
    mean_baseline: float
    mean_candidate: float
    abs_effect: float
    abs_ci_low: float
    abs_ci_high: float
    rel_effect: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    std_error: float
    n_rows: int
    n_clusters: int
    n_undefined: int
    alpha: float
    method: str


def paired_comparison(
    baseline: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    metric: str = "metric",
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of two models' per-row metric values on the same rows (requests).

    Row ``i`` of ``baseline`` and ``candidate`` must be the same request scored by both models
    (offline replay of a logged request set), so the difference is paired and its variance has
    the covariance term: ``Var(mean_c - mean_b) = Var(mean_c) + Var(mean_b) - 2 Cov``. Rows where
    either value is ``nan`` are dropped. With ``interval="delta"`` the means are ratios of cluster
    totals (see :func:`mean_estimate`) and the difference and the relative lift get delta-method
    standard errors over clusters with a normal interval and a two-sided z-test; with
    ``interval="bootstrap"`` whole clusters are resampled (both models together, which keeps the
    pairing) and the intervals are percentiles of the replicates.

    Args:
        baseline (ArrayLike): the baseline model's value per row, ``nan`` where undefined.
        candidate (ArrayLike): the candidate model's value per row, same rows in the same order.
        metric (str): the name stored in the result.
        clusters (ArrayLike | None): one cluster id per row (e.g. user); ``None`` treats rows as
            independent.
        alpha (float): one minus the confidence level (two-sided intervals).
        interval (Literal["delta", "bootstrap"]): the intervals' method.
        n_bootstrap (int): bootstrap resamples (``interval="bootstrap"`` only).
        seed (int): seed of the bootstrap's ``numpy.random.default_rng``.

    Returns:
        PairedComparison: both means, absolute and relative difference with intervals, p-value.

    Raises:
        ValueError: if the arrays differ in length or are not one-dimensional, or ``alpha``,
            ``interval`` or ``n_bootstrap`` is invalid.

    References:
        Deng, A., Knoblich, U., & Lu, J. (2018). Applying the Delta Method in Metric Analytics:
        A Practical Guide with Novel Ideas. KDD 2018.
        Sakai, T. (2006). Evaluating Evaluation Metrics based on the Bootstrap. SIGIR 2006.

    Examples:
        >>> comparison = paired_comparison(
        ...     [0.50, 0.40, 0.70, 0.20, 0.60, 0.30], [0.55, 0.50, 0.72, 0.30, 0.61, 0.35]
        ... )
        >>> round(comparison.abs_effect, 4), round(comparison.std_error, 4)
        (0.055, 0.0157)
        >>> round(comparison.rel_effect, 4), round(comparison.p_value, 4)
        (0.1222, 0.0004)
    """
    check_alpha(alpha)
    check_interval_method(interval)
    base = as_vector(baseline, "baseline")
    cand = as_vector(candidate, "candidate")
    check_same_length(baseline=base, candidate=cand)
    defined = ~(np.isnan(base) | np.isnan(cand))
    values = np.column_stack([base[defined], cand[defined]])
    cluster_ids = None
    if clusters is not None:
        cluster_ids = np.asarray(clusters)
        if cluster_ids.shape != base.shape:
            raise ValueError(
                f"clusters must have one id per row ({len(base)} rows); got shape "
                f"{cluster_ids.shape}."
            )
        cluster_ids = cluster_ids[defined]
    index, n_clusters = cluster_index(cluster_ids, len(values))
    sums, counts = cluster_totals(values, np.ones(len(values)), index, n_clusters)
    crit = z_critical(alpha)
    method = (
        f"paired difference candidate - baseline over rows where both are defined; "
        f"{interval_words(interval, alpha, n_bootstrap, seed)}"
    )
    if n_clusters == 0:
        nan = math.nan
        return PairedComparison(
            metric, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0, 0, int(base.size), alpha,
            method,
        )  # fmt: skip
    (mean_b, mean_c), covariance = ratio_delta(sums, counts)
    effect = float(mean_c - mean_b)
    rel_effect = float(mean_c / mean_b - 1.0) if mean_b != 0.0 else math.nan
    if interval == "bootstrap":
        replicates = bootstrap_ratios(sums, counts, n_bootstrap=n_bootstrap, seed=seed)
        differences = replicates[:, 1] - replicates[:, 0]
        low, high = percentile_interval(differences, alpha)
        std_error = float(np.nanstd(differences, ddof=1))
        p_value = bootstrap_p_value(differences)
        if mean_b != 0.0:
            with np.errstate(invalid="ignore", divide="ignore"):
                rel_low, rel_high = percentile_interval(
                    replicates[:, 1] / replicates[:, 0] - 1.0, alpha
                )
        else:
            rel_low = rel_high = math.nan
    else:
        variance = covariance[0, 0] + covariance[1, 1] - 2.0 * covariance[0, 1]
        std_error = math.sqrt(max(variance, 0.0))
        low, high = effect - crit * std_error, effect + crit * std_error
        p_value = z_p_value(effect, std_error)
        if mean_b != 0.0:
            gradient = np.array([-mean_c / mean_b**2, 1.0 / mean_b])
            rel_se = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0))
            rel_low, rel_high = rel_effect - crit * rel_se, rel_effect + crit * rel_se
        else:
            rel_low = rel_high = math.nan
    return PairedComparison(
        metric=metric,
        mean_baseline=float(mean_b),
        mean_candidate=float(mean_c),
        abs_effect=effect,
        abs_ci_low=low,
        abs_ci_high=high,
        rel_effect=rel_effect,
        rel_ci_low=rel_low,
        rel_ci_high=rel_high,
        p_value=p_value,
        std_error=std_error,
        n_rows=len(values),
        n_clusters=n_clusters,
        n_undefined=int(base.size - len(values)),
        alpha=alpha,
        method=method,
    )
