"""Shared numerics of the evaluation package: input checks, ratios of totals, bootstrap, results.

Private: the public modules call these so that each convention (what a cluster is, how the
delta-method variance of a ratio of totals is estimated, how a bootstrap is seeded and turned into
an interval) is decided once.

Every estimate in the package is a ratio of totals over independent clusters,
``R = sum_c S_c / sum_c D_c``: a mean over requests is ``S_c`` = the cluster's sum of per-request
values over ``D_c`` = its number of requests; self-normalised IPS is ``sum w r / sum w``. Without
clusters each row is its own cluster. The delta method and the cluster bootstrap then cover all of
them with one implementation.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy import special

from exp_dagster.stats._common import check_alpha

IntervalMethod = Literal["delta", "bootstrap"]
"""How an interval is computed: delta method / CLT over clusters, or a seeded cluster bootstrap."""

INTERVAL_METHODS: tuple[str, ...] = get_args(IntervalMethod)

# Bootstrap replicates are drawn in blocks of at most this many resampled indices, so memory stays
# bounded (about 32 MB of int64) whatever the number of clusters.
_BOOTSTRAP_BLOCK_ELEMENTS = 4_000_000


def check_interval_method(interval: str) -> None:
    """Raise a ``ValueError`` unless ``interval`` is one of :data:`INTERVAL_METHODS`."""
    if interval not in INTERVAL_METHODS:
        options = ", ".join(repr(option) for option in INTERVAL_METHODS)
        raise ValueError(f"interval must be one of {options}; got {interval!r}.")


def as_vector(values: npt.ArrayLike, name: str) -> np.ndarray:
    """``values`` as a 1-D float array; a ``ValueError`` naming ``name`` otherwise."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a one-dimensional array with one value per row; got an array of "
            f"shape {array.shape}."
        )
    return array


def check_same_length(**arrays: np.ndarray | None) -> int:
    """The common length of the given arrays (``None`` skipped); a ``ValueError`` if they differ."""
    lengths = {name: len(array) for name, array in arrays.items() if array is not None}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise ValueError(
            f"The arrays must have one value per row and the same length: {described}. Pass "
            f"arrays from the same query, in the same row order."
        )
    return next(iter(lengths.values()))


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise a ``ValueError`` naming the first non-finite row of ``array``."""
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{name} must be finite; row {int(bad[0])} is {float(array[bad[0]])!r} "
            f"({bad.size} such rows). Drop or fill those rows before evaluating."
        )


def check_binary(labels: np.ndarray, name: str = "labels") -> None:
    """Raise a ``ValueError`` naming the first label that is neither 0 nor 1."""
    bad = np.flatnonzero((labels != 0.0) & (labels != 1.0))
    if bad.size:
        raise ValueError(
            f"{name} must be 0 or 1 (1 = positive, e.g. a click); row {int(bad[0])} is "
            f"{float(labels[bad[0]])!r} ({bad.size} such rows)."
        )


def cluster_index(clusters: npt.ArrayLike | None, n_rows: int) -> tuple[np.ndarray, int]:
    """Each row's cluster number ``0 .. n_clusters - 1`` and the number of clusters.

    Without clusters every row is its own cluster.
    """
    if clusters is None:
        return np.arange(n_rows), n_rows
    labels = np.asarray(clusters)
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(
            f"clusters must have one id per row ({n_rows} rows); got shape {labels.shape}."
        )
    uniques, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(-1), len(uniques)


def cluster_totals(
    numerators: np.ndarray, denominators: np.ndarray, index: np.ndarray, n_clusters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums ``S`` (shape ``(n_clusters, m)``) and ``D`` (shape ``(n_clusters,)``).

    ``numerators`` has shape ``(n_rows, m)``, ``denominators`` shape ``(n_rows,)``.
    """
    sums = np.column_stack(
        [
            np.bincount(index, weights=numerators[:, j], minlength=n_clusters)
            for j in range(numerators.shape[1])
        ]
    )
    return sums, np.bincount(index, weights=denominators, minlength=n_clusters)


def ratio_delta(sums: np.ndarray, denominators: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ratios ``R_j = sum_c S_cj / sum_c D_c`` and their delta-method covariance matrix.

    Each cluster's influence on ``R_j`` is ``(S_cj - R_j D_c) / sum(D)``; the covariance is
    ``C / (C - 1) * sum_c infl_c infl_c^T`` over the ``C`` clusters (the ``C / (C - 1)`` factor
    makes it ``s**2 / n`` with ``ddof=1`` for a plain mean). Fewer than 2 clusters give ``nan``.
    """
    total = denominators.sum()
    ratios = sums.sum(axis=0) / total
    n_clusters = len(denominators)
    if n_clusters < 2:
        return ratios, np.full((sums.shape[1], sums.shape[1]), math.nan)
    influence = (sums - np.outer(denominators, ratios)) / total
    covariance = influence.T @ influence * (n_clusters / (n_clusters - 1))
    return ratios, covariance


def bootstrap_ratios(
    sums: np.ndarray,
    denominators: np.ndarray,
    *,
    n_bootstrap: int,
    seed: int,
) -> np.ndarray:
    """Ratios of totals on ``n_bootstrap`` resamples of the clusters, shape ``(n_bootstrap, m)``.

    Clusters are drawn with replacement (``numpy.random.default_rng(seed)``), in blocks so memory
    stays bounded; the same seed gives the same replicates. A replicate whose denominator total is
    0 gives ``nan`` and is ignored by the interval.
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive number of resamples; got {n_bootstrap}.")
    rng = np.random.default_rng(seed)
    n_clusters = len(denominators)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // max(n_clusters, 1))
    replicates = np.empty((n_bootstrap, sums.shape[1]))
    for start in range(0, n_bootstrap, block):
        stop = min(start + block, n_bootstrap)
        draws = rng.integers(0, n_clusters, size=(stop - start, n_clusters))
        numerator = sums[draws].sum(axis=1)
        denominator = denominators[draws].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start:stop] = numerator / denominator[:, None]
    return replicates


def percentile_interval(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    """The ``alpha / 2`` and ``1 - alpha / 2`` quantiles of the finite bootstrap replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided percentile-bootstrap p-value of ``H0: effect = 0``: twice the smaller tail.

    ``2 * min(P*(effect <= 0), P*(effect >= 0))``, capped at 1, over the finite replicates.
    """
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan
    return float(min(1.0, 2.0 * min(np.mean(finite <= 0.0), np.mean(finite >= 0.0))))


def z_critical(alpha: float) -> float:
    """The ``1 - alpha / 2`` standard normal quantile (two-sided intervals)."""
    check_alpha(alpha)
    return float(special.ndtri(1.0 - alpha / 2.0))


def z_p_value(estimate: float, std_error: float) -> float:
    """Two-sided normal p-value of ``H0: effect = 0``; ``nan`` for an undefined standard error."""
    if not math.isfinite(std_error) or std_error < 0.0:
        return math.nan
    if std_error == 0.0:
        return 1.0 if estimate == 0.0 else 0.0
    return float(min(1.0, 2.0 * special.ndtr(-abs(estimate) / std_error)))


def estimate_ratio(
    numerators: np.ndarray,
    denominators: np.ndarray,
    *,
    clusters: npt.ArrayLike | None,
    alpha: float,
    interval: IntervalMethod,
    n_bootstrap: int,
    seed: int,
) -> tuple[float, float, float, float, int]:
    """``(value, std_error, ci_low, ci_high, n_clusters)`` of ``sum numerators / sum denominators``.

    Two-sided interval by the delta method over clusters or the cluster bootstrap (percentile).
    """
    check_interval_method(interval)
    crit = z_critical(alpha)
    index, n_clusters = cluster_index(clusters, len(numerators))
    sums, totals = cluster_totals(numerators[:, None], denominators, index, n_clusters)
    if n_clusters == 0 or totals.sum() == 0.0:
        return math.nan, math.nan, math.nan, math.nan, n_clusters
    ratios, covariance = ratio_delta(sums, totals)
    value = float(ratios[0])
    if interval == "bootstrap":
        replicates = bootstrap_ratios(sums, totals, n_bootstrap=n_bootstrap, seed=seed)[:, 0]
        low, high = percentile_interval(replicates, alpha)
        return value, float(np.nanstd(replicates, ddof=1)), low, high, n_clusters
    std_error = math.sqrt(covariance[0, 0]) if n_clusters >= 2 else math.nan
    return value, std_error, value - crit * std_error, value + crit * std_error, n_clusters


def interval_words(interval: IntervalMethod, alpha: float, n_bootstrap: int, seed: int) -> str:
    """The part of a ``method`` sentence that names the interval."""
    level = f"{100 * (1 - alpha):g}%"
    if interval == "bootstrap":
        return (
            f"{level} percentile interval from {n_bootstrap} cluster-bootstrap resamples "
            f"(seed {seed})"
        )
    return f"{level} normal interval, delta-method standard error over clusters"
