"""Seeded simulators of non-randomised rollouts: clusters observed over periods, some treated.

The outcome of observation ``i`` of cluster ``g`` in period ``t`` is

    y = alpha_g + gamma_t + trend_gap * treated_g * t + effect * treated_g * (t >= start)
        + u_gt + e_i

with a cluster level ``alpha_g`` that differs between the groups (the rollout was not
randomised), a common period shock ``gamma_t``, an AR(1) cluster × period shock ``u_gt`` (so a
cluster's observations are correlated over time and clustering matters) and unit noise ``e_i``.
``trend_gap`` = 0 is parallel trends. The number of observations per cell varies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rollout:
    """How the panel is drawn.

    Attributes:
        n_clusters: clusters, the first ``n_treated`` of them treated.
        n_treated: treated clusters.
        n_periods: periods ``0 … n_periods - 1``.
        start: first treated period.
        effect: the true effect on the treated from ``start`` on.
        trend_gap: extra slope per period of the treated clusters (0: parallel trends).
        group_gap: how much higher the treated clusters' level is on average.
        shock_sd: standard deviation of the cluster × period shock.
        autocorrelation: AR(1) coefficient of that shock over periods.
        noise_sd: standard deviation of an observation around its cell's level.
        mean_observations: mean number of observations per cell (at least 1).
    """

    n_clusters: int = 40
    n_treated: int = 16
    n_periods: int = 6
    start: int = 4
    effect: float = 0.5
    trend_gap: float = 0.0
    group_gap: float = 1.0
    shock_sd: float = 0.5
    autocorrelation: float = 0.6
    noise_sd: float = 2.0
    mean_observations: float = 8.0

    def cells(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """One panel's cells: cluster, treated, period, level (mean of y) and count per cell."""
        clusters = np.repeat(np.arange(self.n_clusters), self.n_periods)
        periods = np.tile(np.arange(self.n_periods), self.n_clusters)
        treated = clusters < self.n_treated
        alpha = rng.normal(0.0, 1.0, self.n_clusters) + self.group_gap * (
            np.arange(self.n_clusters) < self.n_treated
        )
        gamma = rng.normal(0.0, 0.5, self.n_periods)
        shocks = np.empty((self.n_clusters, self.n_periods))
        shocks[:, 0] = rng.normal(0.0, self.shock_sd, self.n_clusters)
        innovation_sd = self.shock_sd * np.sqrt(1.0 - self.autocorrelation**2)
        for period in range(1, self.n_periods):
            shocks[:, period] = self.autocorrelation * shocks[:, period - 1] + rng.normal(
                0.0, innovation_sd, self.n_clusters
            )
        level = (
            alpha[clusters]
            + gamma[periods]
            + self.trend_gap * treated * periods
            + self.effect * treated * (periods >= self.start)
            + shocks.ravel()
        )
        counts = 1 + rng.poisson(self.mean_observations - 1.0, clusters.size)
        return clusters, treated, periods, level, counts

    def observations(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Per-observation arrays: cluster, treated, period, y."""
        clusters, treated, periods, level, counts = self.cells(rng)
        expanded = np.repeat(np.arange(clusters.size), counts)
        y = level[expanded] + rng.normal(0.0, self.noise_sd, expanded.size)
        return clusters[expanded], treated[expanded], periods[expanded], y

    def sums(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Per-cell sufficient statistics drawn directly: the sum of ``n`` normal observations
        is normal with mean ``n * level`` and variance ``n * noise_sd**2``. Cluster, treated,
        period, count, total."""
        clusters, treated, periods, level, counts = self.cells(rng)
        totals = counts * level + rng.normal(0.0, self.noise_sd, counts.size) * np.sqrt(counts)
        return clusters, treated, periods, counts, totals
