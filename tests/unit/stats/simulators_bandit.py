"""A seeded closed-loop simulation of a daily bandit with Bernoulli rewards.

Each day a batch of units arrives; they are split across the arms by the day's weights (a
multinomial draw), each converts with its arm's rate on that day, and the next day's weights come
from the cumulative statistics through the day, as the ``bandit_allocation`` asset computes them
from a day's ``metric_statistics``. The per-day counts are the truth the estimators are judged on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np

from exp_dagster.stats.bandit import allocation_seed, bandit_allocation, proportion_posterior

START = dt.date(2026, 10, 1)


@dataclass(frozen=True)
class BanditRun:
    """One simulated bandit experiment.

    Attributes:
        units: ``[day, arm]`` units first exposed that day in that arm.
        successes: ``[day, arm]`` of them that converted.
        weights: ``[day, arm]`` the allocation used that day.
        rates: ``[day, arm]`` the true conversion rates.
    """

    units: np.ndarray
    successes: np.ndarray
    weights: np.ndarray
    rates: np.ndarray

    @property
    def regret(self) -> float:
        """Expected conversions lost against always playing each day's best arm."""
        best = self.rates.max(axis=1, keepdims=True)
        return float((self.units * (best - self.rates)).sum())

    def true_difference(self, arm: int, control: int = 0) -> float:
        """The day-weighted difference of true rates (weights: the days' shares of units)."""
        share = self.units.sum(axis=1) / self.units.sum()
        return float(share @ (self.rates[:, arm] - self.rates[:, control]))

    def pooled_difference(self, arm: int, control: int = 0) -> float:
        """The naive difference of the arms' pooled conversion rates."""
        totals = self.successes.sum(axis=0) / self.units.sum(axis=0)
        return float(totals[arm] - totals[control])


def declining_rates(days: int, lifts: tuple[float, ...], start: float, end: float) -> np.ndarray:
    """``[day, arm]`` rates: a base level falling linearly from ``start`` to ``end`` over the days,
    plus each arm's constant lift."""
    base = np.linspace(start, end, days)
    return base[:, None] + np.asarray(lifts)[None, :]


def run_bandit(
    rates: np.ndarray,
    *,
    units_per_day: int,
    policy: Literal["thompson", "top_two_thompson", "equal"],
    seed: int,
    floor: float = 0.05,
    draws: int = 4_000,
) -> BanditRun:
    """Simulate the days of ``rates``; the first day (burn-in) is an equal split."""
    days, arms = rates.shape
    names = [f"arm{k}" for k in range(arms)]
    rng = np.random.default_rng(seed)
    units = np.zeros((days, arms), dtype=np.int64)
    successes = np.zeros((days, arms), dtype=np.int64)
    weights = np.zeros((days, arms))
    equal = np.full(arms, 1.0 / arms)
    for day in range(days):
        if policy == "equal" or day == 0:
            w = equal
        else:
            n, s = units[:day].sum(axis=0), successes[:day].sum(axis=0)
            allocation = bandit_allocation(
                names,
                [proportion_posterior(int(n[k]), int(s[k])) for k in range(arms)],
                algorithm=policy,
                floor=floor,
                draws=draws,
                seed=allocation_seed(f"sim{seed}", START + dt.timedelta(days=day)),
            )
            w = np.asarray(allocation.weights)
        weights[day] = w
        units[day] = rng.multinomial(units_per_day, w)
        successes[day] = rng.binomial(units[day], rates[day])
    return BanditRun(units, successes, weights, rates)
