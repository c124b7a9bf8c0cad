"""Seeded, vectorised simulators for the regression-adjustment and post-stratification tests.

Like :mod:`tests.unit.stats.simulators`, each function draws many arms at once with numpy and
reduces them to the package's moment types; the closed forms next to them give the population
quantities (correlations, explained shares) the estimates should recover.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytest

from exp_dagster.stats.moments import Moments
from exp_dagster.stats.regression import CrossMoments


def skip_unless_run_slow(request: pytest.FixtureRequest) -> None:
    """Skip a long calibration run unless ``--run-slow`` (or ``EXP_DAGSTER_RUN_SLOW=1``) is set.

    ``getoption`` with a default works whether or not a conftest registers ``--run-slow``.
    """
    if request.config.getoption("--run-slow", default=False):
        return
    if os.environ.get("EXP_DAGSTER_RUN_SLOW") == "1":
        return
    pytest.skip("long calibration run; opt in with --run-slow or EXP_DAGSTER_RUN_SLOW=1")


def cross_moments_of(values: np.ndarray) -> list[CrossMoments]:
    """Per-replicate :class:`CrossMoments` of a ``(reps, n, d)`` array of unit vectors."""
    n = values.shape[1]
    sums = values.sum(axis=1)
    products = np.einsum("rni,rnj->rij", values, values)
    return [
        CrossMoments(n=n, sums=tuple(s.tolist()), products=tuple(map(tuple, p.tolist())))
        for s, p in zip(sums, products, strict=True)
    ]


def ratio_units_with_pre_period(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    *,
    mean_rate: float,
    post_shift: float = 0.0,
    concentration: float = 2.0,
    mean_count: float = 6.0,
) -> np.ndarray:
    """Units' ``(y, x, y_pre, x_pre)``, an array of ``shape + (4,)``.

    Unit ``i`` has its own click rate ``p_i ~ Beta`` of mean ``mean_rate`` (small ``concentration``
    means very different units). In each period it sees ``1 + Poisson(mean_count)`` impressions
    and clicks ``Binomial(impressions, rate)``, independently given ``p_i``; the rate is ``p_i`` in
    the pre-period and ``p_i + post_shift (1 - p_i)`` during the experiment. The population ratio of
    sums is ``mean_rate`` before and ``mean_rate + post_shift (1 - mean_rate)`` during.
    """
    rate = rng.beta(mean_rate * concentration, (1.0 - mean_rate) * concentration, size=shape)
    post_rate = rate + post_shift * (1.0 - rate)
    x = 1 + rng.poisson(mean_count, size=shape)
    x_pre = 1 + rng.poisson(mean_count, size=shape)
    y = rng.binomial(x, post_rate)
    y_pre = rng.binomial(x_pre, rate)
    return np.stack([y, x, y_pre, x_pre], axis=-1).astype(float)


def ratio_arms_with_pre_period(
    rng: np.random.Generator, *, reps: int, n: int, chunk: int = 500, **units: float
) -> list[CrossMoments]:
    """``reps`` arms of ``n`` units from :func:`ratio_units_with_pre_period`, drawn in chunks."""
    arms: list[CrossMoments] = []
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        arms.extend(cross_moments_of(ratio_units_with_pre_period(rng, (size, n), **units)))
    return arms


def linearised_correlation(
    *, mean_rate: float, concentration: float = 2.0, mean_count: float = 6.0
) -> float:
    """Population correlation of a unit's linearised post and pre ratios, without treatment.

    With ``m = mean_count``, ``V = Var(p) = mean_rate (1 - mean_rate) / (concentration + 1)``,
    ``Cov(y - R x, y_pre - R x_pre) = E(x)**2 V`` (the periods share only ``p_i``) and
    ``Var(y - R x) = E(x**2) V + E(x) (R (1 - R) - V)`` (rate heterogeneity plus binomial noise),
    with ``E(x) = 1 + m`` and ``E(x**2) = m + (1 + m)**2``.
    """
    rate_variance = mean_rate * (1.0 - mean_rate) / (concentration + 1.0)
    mean_x = 1.0 + mean_count
    covariance = mean_x**2 * rate_variance
    variance = (mean_count + mean_x**2) * rate_variance + mean_x * (
        mean_rate * (1.0 - mean_rate) - rate_variance
    )
    return covariance / variance


def stratified_units(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    *,
    shares: Sequence[float],
    stratum_means: Sequence[float],
    within_sd: float,
    effect: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Units' stratum labels (drawn with probabilities ``shares``) and values
    ``stratum_means[label] + effect + Normal(0, within_sd)``; two arrays of ``shape``."""
    labels = rng.choice(len(shares), size=shape, p=np.asarray(shares))
    values = np.asarray(stratum_means)[labels] + effect + rng.normal(0.0, within_sd, size=shape)
    return labels, values


def stratified_arms(
    rng: np.random.Generator,
    *,
    reps: int,
    n: int,
    shares: Sequence[float],
    stratum_means: Sequence[float],
    within_sd: float,
    effect: float = 0.0,
) -> list[list[Moments]]:
    """``reps`` arms of ``n`` units from :func:`stratified_units`, as one Moments per stratum
    (random stratum sizes, as when strata are formed after assignment)."""
    labels, values = stratified_units(
        rng,
        (reps, n),
        shares=shares,
        stratum_means=stratum_means,
        within_sd=within_sd,
        effect=effect,
    )
    per_stratum = []
    for stratum in range(len(shares)):
        inside = labels == stratum
        per_stratum.append(
            (
                inside.sum(1),
                np.where(inside, values, 0.0).sum(1),
                np.where(inside, values**2, 0.0).sum(1),
            )
        )
    return [
        [
            Moments(n=int(counts[rep]), sum_y=float(sums[rep]), sum_y2=float(squares[rep]))
            for counts, sums, squares in per_stratum
        ]
        for rep in range(reps)
    ]


def between_stratum_share(
    *, shares: Sequence[float], stratum_means: Sequence[float], within_sd: float
) -> float:
    """Share of the variance of a unit's value explained by its stratum:
    ``B / (B + within_sd**2)`` with ``B = sum_s share_s (mean_s - overall mean)**2``."""
    weights, means = np.asarray(shares), np.asarray(stratum_means)
    between = float(weights @ (means - weights @ means) ** 2)
    return between / (between + within_sd**2)
