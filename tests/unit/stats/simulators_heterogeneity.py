"""Seeded, vectorised simulators for the segment, trend and SRM-over-time tests.

They draw raw unit values or counts with numpy and reduce them with numpy, independently of the
package's own tests, so that the estimates fed to the functions under test are not computed by
the code being tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentedExperiment:
    """Raw unit data of one experiment split by a categorical segment.

    Attributes:
        y: metric per unit.
        segment: segment index per unit (0 … k-1).
        treated: 1.0 for treatment units, 0.0 for control units.
    """

    y: np.ndarray
    segment: np.ndarray
    treated: np.ndarray

    def difference_of_means(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-segment ``mean_t - mean_c`` and its Welch standard error (``ddof=1``)."""
        effects, std_errors = [], []
        for index in range(int(self.segment.max()) + 1):
            in_segment = self.segment == index
            control = self.y[in_segment & (self.treated == 0.0)]
            treatment = self.y[in_segment & (self.treated == 1.0)]
            effects.append(treatment.mean() - control.mean())
            std_errors.append(
                np.sqrt(treatment.var(ddof=1) / treatment.size + control.var(ddof=1) / control.size)
            )
        return np.array(effects), np.array(std_errors)


def segmented_experiment(
    rng: np.random.Generator,
    *,
    units_per_arm: Sequence[int],
    effects: Sequence[float],
    sds: Sequence[float],
    baselines: Sequence[float] | None = None,
) -> SegmentedExperiment:
    """Segment ``i`` has ``units_per_arm[i]`` units in each arm, control values
    ``N(baselines[i], sds[i])`` and treatment values shifted by ``effects[i]`` with a 1.5 times
    larger sd (so the arms are heteroskedastic and only robust standard errors are right)."""
    baselines = [0.0] * len(effects) if baselines is None else baselines
    ys, segments, treated = [], [], []
    for index, (n, effect, sd, base) in enumerate(
        zip(units_per_arm, effects, sds, baselines, strict=True)
    ):
        ys += [rng.normal(base, sd, size=n), rng.normal(base + effect, 1.5 * sd, size=n)]
        segments.append(np.full(2 * n, index))
        treated += [np.zeros(n), np.ones(n)]
    return SegmentedExperiment(
        np.concatenate(ys), np.concatenate(segments), np.concatenate(treated)
    )


def segment_estimates(
    rng: np.random.Generator,
    *,
    reps: int,
    units_per_arm: Sequence[int],
    effects: Sequence[float],
    sds: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """``reps`` experiments at once: ``(reps, k)`` arrays of per-segment differences of means and
    Welch standard errors, from skewed (exponential) unit values with mean 0 + effect and sd
    ``sds[i]`` in control, ``1.5 * sds[i]`` in treatment."""
    estimates = np.empty((reps, len(effects)))
    std_errors = np.empty((reps, len(effects)))
    for index, (n, effect, sd) in enumerate(zip(units_per_arm, effects, sds, strict=True)):
        control = sd * (rng.exponential(size=(reps, n)) - 1.0)
        treatment = effect + 1.5 * sd * (rng.exponential(size=(reps, n)) - 1.0)
        estimates[:, index] = treatment.mean(axis=1) - control.mean(axis=1)
        std_errors[:, index] = np.sqrt(
            treatment.var(axis=1, ddof=1) / n + control.var(axis=1, ddof=1) / n
        )
    return estimates, std_errors


def daily_estimates(
    rng: np.random.Generator,
    *,
    reps: int,
    true_effects: Sequence[float],
    std_errors: Sequence[float],
    autocorrelation: float = 0.0,
) -> np.ndarray:
    """``(reps, days)`` daily effect estimates ``true_effects + noise`` with the given standard
    errors; the noise is Gaussian AR(1) over days with lag-1 correlation ``autocorrelation``."""
    days = len(true_effects)
    lags = np.abs(np.subtract.outer(np.arange(days), np.arange(days)))
    se = np.asarray(std_errors, dtype=float)
    covariance = autocorrelation**lags * np.outer(se, se)
    return rng.multivariate_normal(np.asarray(true_effects, dtype=float), covariance, size=reps)


def daily_split_counts(
    rng: np.random.Generator,
    *,
    units_per_day: int,
    days: int,
    weights: Sequence[float],
    broken_from_day: int | None = None,
    broken_weights: Sequence[float] | None = None,
) -> list[list[int]]:
    """New units per day and variant, multinomial with ``weights``; from ``broken_from_day`` on
    (0-based) with ``broken_weights`` instead (e.g. a logging bug that loses treatment units)."""
    counts = []
    for day in range(days):
        broken = broken_from_day is not None and day >= broken_from_day
        probabilities = np.asarray(broken_weights if broken else weights, dtype=float)
        counts.append(rng.multinomial(units_per_day, probabilities / probabilities.sum()).tolist())
    return counts
