"""Seeded, vectorised simulators of per-arm sufficient statistics for calibration tests.

Each function draws ``reps`` independent arms at once with numpy and reduces them to the
package's moment types, so thousands of simulated experiments cost a few milliseconds; only the
test function itself runs once per replicate.
"""

from __future__ import annotations

import numpy as np

from exp_dagster.stats import (
    CovariateMoments,
    Moments,
    QuantileArm,
    RatioMoments,
    quantile_from_histogram,
)


def normal_arms(
    rng: np.random.Generator, *, reps: int, n: int, mean: float, sd: float
) -> list[Moments]:
    """``reps`` arms of ``n`` iid normal unit values."""
    y = rng.normal(mean, sd, size=(reps, n))
    return [
        Moments(n=n, sum_y=float(s), sum_y2=float(s2))
        for s, s2 in zip(y.sum(axis=1), (y * y).sum(axis=1), strict=True)
    ]


def ratio_arms(
    rng: np.random.Generator,
    *,
    reps: int,
    n: int,
    mean_rate: float,
    concentration: float = 20.0,
    mean_count: float = 4.0,
) -> list[RatioMoments]:
    """Clustered ratio metric: unit ``i`` has ``x_i = 1 + Poisson(mean_count)`` trials and
    ``y_i ~ Binomial(x_i, p_i)`` successes with its own rate ``p_i ~ Beta`` of mean ``mean_rate``
    (so the true ratio of sums is ``mean_rate``, and trials within a unit are correlated)."""
    x = 1.0 + rng.poisson(mean_count, size=(reps, n))
    rate = rng.beta(mean_rate * concentration, (1.0 - mean_rate) * concentration, size=(reps, n))
    y = rng.binomial(x.astype(np.int64), rate).astype(float)
    return ratio_moments_of(y, x)


def ratio_moments_of(y: np.ndarray, x: np.ndarray) -> list[RatioMoments]:
    """Row-wise :class:`RatioMoments` of ``(reps, n)`` arrays."""
    n = y.shape[1]
    sums = [y.sum(1), x.sum(1), (y * y).sum(1), (x * x).sum(1), (x * y).sum(1)]
    return [
        RatioMoments(
            n=n, sum_y=float(a), sum_x=float(b), sum_y2=float(c), sum_x2=float(d), sum_xy=float(e)
        )
        for a, b, c, d, e in zip(*sums, strict=True)
    ]


def correlated_arms(
    rng: np.random.Generator, *, reps: int, n: int, mean: float, rho: float
) -> list[CovariateMoments]:
    """Unit metric ``y`` (mean ``mean``, sd 1) and pre-period covariate ``c`` with correlation
    ``rho``, standard bivariate normal otherwise."""
    c = rng.normal(size=(reps, n))
    y = mean + rho * c + np.sqrt(1.0 - rho**2) * rng.normal(size=(reps, n))
    sums = [y.sum(1), (y * y).sum(1), c.sum(1), (c * c).sum(1), (y * c).sum(1)]
    return [
        CovariateMoments(
            n=n, sum_y=float(a), sum_y2=float(b), sum_c=float(d), sum_c2=float(e), sum_yc=float(f)
        )
        for a, b, d, e, f in zip(*sums, strict=True)
    ]


def clustered_latencies(
    rng: np.random.Generator,
    *,
    n_units: int,
    scale: float = 1.0,
    mean_requests: float = 4.0,
    unit_sd: float = 0.8,
    request_sd: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Observations and their unit ids: unit ``i`` makes ``1 + Poisson(mean_requests)`` requests
    with latency ``scale * exp(u_i + e_ij)``, ``u_i ~ N(0, unit_sd)``, ``e_ij ~ N(0, request_sd)``.

    The number of requests is independent of ``u_i``, so the observation-level ``level`` quantile is
    ``scale * exp(sqrt(unit_sd**2 + request_sd**2) * Phi^-1(level))``."""
    sizes = 1 + rng.poisson(mean_requests, size=n_units)
    unit_ids = np.repeat(np.arange(n_units), sizes)
    log_latency = rng.normal(0.0, unit_sd, size=n_units)[unit_ids] + rng.normal(
        0.0, request_sd, size=unit_ids.size
    )
    return scale * np.exp(log_latency), unit_ids


def quantile_arm(
    observations: np.ndarray, unit_ids: np.ndarray, n_units: int, level: float, *, iid: bool = False
) -> QuantileArm:
    """Exact-histogram :class:`QuantileArm` of clustered observations, vectorised.

    With ``iid=True`` every observation is treated as its own unit: the naive analysis that
    ignores the clustering."""
    values, counts = np.unique(observations, return_counts=True)
    quantile = quantile_from_histogram(values, counts, level)
    below = (observations <= quantile).astype(float)
    if iid:
        y, x = below, np.ones_like(below)
    else:
        y = np.bincount(unit_ids, weights=below, minlength=n_units)
        x = np.bincount(unit_ids, minlength=n_units).astype(float)
    return QuantileArm(
        values=tuple(values.tolist()),
        counts=tuple(counts.tolist()),
        threshold_moments=ratio_moments_of(y[None, :], x[None, :])[0],
    )
