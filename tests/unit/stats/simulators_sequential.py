"""Seeded, vectorised simulators of experiments analysed once a day, for the sequential tests.

Each simulated experiment has two arms of iid normal units arriving day by day; the look after
day ``k`` sees the cumulative data of days ``1..k``. Instead of drawing every unit, each day's sum
and within-day sum of squares are drawn from their exact joint distribution (the sum is normal,
the within-day sum of squares is ``sd**2`` times an independent chi-square with ``n - 1`` degrees
of freedom), so the cumulative sufficient statistics are exactly those of unit-level data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class DailyLooks(NamedTuple):
    """Arrays of the cumulative effect estimate at each daily look.

    Attributes:
        estimates: shape ``(reps, days)``: ``mean_treatment - mean_control`` of the units seen up
            to each day.
        std_errors: shape ``(reps, days)``: its Welch standard error
            ``sqrt(var_t / n_t + var_c / n_c)`` with sample variances (``ddof=1``).
        design_std_errors: shape ``(days,)``: the standard error with the true ``sd``, the same
            for every replicate (the planned information).
    """

    estimates: np.ndarray
    std_errors: np.ndarray
    design_std_errors: np.ndarray


def _cumulative_arm(
    rng: np.random.Generator, reps: int, units_per_day: np.ndarray, mean: float, sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative mean and sample variance (``ddof=1``) of one arm after each day."""
    days = units_per_day.size
    daily_sum = rng.normal(units_per_day * mean, sd * np.sqrt(units_per_day), size=(reps, days))
    within_day_squares = sd**2 * rng.chisquare(units_per_day - 1, size=(reps, days))
    daily_sum_squares = within_day_squares + daily_sum**2 / units_per_day
    count = np.cumsum(units_per_day)
    total = np.cumsum(daily_sum, axis=1)
    total_squares = np.cumsum(daily_sum_squares, axis=1)
    mean_so_far = total / count
    variance = (total_squares - total * mean_so_far) / (count - 1)
    return mean_so_far, variance


def daily_looks(
    rng: np.random.Generator,
    *,
    reps: int,
    units_per_day: Sequence[int],
    effect: float,
    sd: float = 1.0,
    control_mean: float = 10.0,
) -> DailyLooks:
    """``reps`` experiments with ``units_per_day[k]`` new units per arm on day ``k``.

    Treatment units have mean ``control_mean + effect``; both arms have standard deviation ``sd``.
    """
    units = np.asarray(units_per_day, dtype=np.int64)
    mean_c, var_c = _cumulative_arm(rng, reps, units, control_mean, sd)
    mean_t, var_t = _cumulative_arm(rng, reps, units, control_mean + effect, sd)
    count = np.cumsum(units)
    return DailyLooks(
        estimates=mean_t - mean_c,
        std_errors=np.sqrt((var_c + var_t) / count),
        design_std_errors=sd * np.sqrt(2.0 / count),
    )


def brownian_z_statistics(
    rng: np.random.Generator, *, reps: int, information: Sequence[float], drift: float = 0.0
) -> np.ndarray:
    """``(reps, K)`` z statistics ``S_k / sqrt(I_k)`` of a Brownian score.

    ``S`` has independent increments ``N(delta (I_k - I_{k-1}), I_k - I_{k-1})`` with
    ``delta = drift / sqrt(I_K)`` (so ``E[Z_K] = drift``): the canonical joint distribution of
    group-sequential statistics, under the null hypothesis when ``drift`` is 0.
    """
    info = np.asarray(information, dtype=float)
    increments = np.diff(info, prepend=0.0)
    delta = drift / np.sqrt(info[-1])
    steps = rng.normal(delta * increments, np.sqrt(increments), size=(reps, info.size))
    return np.cumsum(steps, axis=1) / np.sqrt(info)
