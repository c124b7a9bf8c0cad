"""The calibration suite the decision relies on, at the bounds the project promises.

A/A false-positive rates within [0.04, 0.06] at alpha = 0.05 and 95% CI coverage within
[0.94, 0.96] for the mean, proportion, ratio and CUPED tests. With 6000 replicates the Monte Carlo
standard error of a rate near 0.05 is sqrt(0.05 * 0.95 / 6000) = 0.0028, so each bound is about
3.5 standard errors away: a calibrated method fails such a test about once in 2000 runs, while a
method off by 0.015 fails most of the time. The seeds are fixed, so the figures are reproducible.
``--run-slow`` repeats every check with 40000 replicates and bounds of +/- 0.004.
(Sequential, power, heterogeneity and non-inferiority calibrations live in their own files.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from exp_dagster.stats import (
    EffectEstimate,
    cuped_test,
    ratio_test,
    two_proportion_test,
    welch_test,
)
from tests.unit.stats.simulators import correlated_arms, normal_arms, ratio_arms

Simulation = Callable[[np.random.Generator, int, float], list[EffectEstimate]]


def welch(rng: np.random.Generator, reps: int, lift: float) -> list[EffectEstimate]:
    # Skewed-enough unequal variances: sd 2 against 3, unequal sizes.
    controls = normal_arms(rng, reps=reps, n=150, mean=10.0, sd=2.0)
    treatments = normal_arms(rng, reps=reps, n=250, mean=10.0 * (1 + lift), sd=3.0)
    return [welch_test(c, t) for c, t in zip(controls, treatments, strict=True)]


def proportion(rng: np.random.Generator, reps: int, lift: float) -> list[EffectEstimate]:
    n, rate = 3000, 0.1
    control = rng.binomial(n, rate, size=reps)
    treatment = rng.binomial(n, rate * (1 + lift), size=reps)
    return [
        two_proportion_test(int(c), n, int(t), n) for c, t in zip(control, treatment, strict=True)
    ]


def ratio(rng: np.random.Generator, reps: int, lift: float) -> list[EffectEstimate]:
    controls = ratio_arms(rng, reps=reps, n=300, mean_rate=0.1)
    treatments = ratio_arms(rng, reps=reps, n=300, mean_rate=0.1 * (1 + lift))
    return [ratio_test(c, t) for c, t in zip(controls, treatments, strict=True)]


def cuped(rng: np.random.Generator, reps: int, lift: float) -> list[EffectEstimate]:
    controls = correlated_arms(rng, reps=reps, n=200, mean=1.0, rho=0.7)
    treatments = correlated_arms(rng, reps=reps, n=200, mean=1.0 + lift, rho=0.7)
    return [cuped_test(c, t) for c, t in zip(controls, treatments, strict=True)]


SIMULATIONS: dict[str, tuple[Simulation, float]] = {
    # name: (simulation, true absolute effect of the lift used for coverage)
    "welch": (welch, 10.0 * 0.05),
    "proportion": (proportion, 0.1 * 0.1),
    "ratio": (ratio, 0.1 * 0.1),
    "cuped": (cuped, 0.1),
}
LIFTS = {"welch": 0.05, "proportion": 0.1, "ratio": 0.1, "cuped": 0.1}


def false_positive_rate(name: str, reps: int, seed: int) -> float:
    simulate, _ = SIMULATIONS[name]
    results = simulate(np.random.default_rng(seed), reps, 0.0)
    return float(np.mean([r.p_value < 0.05 for r in results]))


def coverage(name: str, reps: int, seed: int) -> float:
    simulate, effect = SIMULATIONS[name]
    results = simulate(np.random.default_rng(seed), reps, LIFTS[name])
    return float(np.mean([r.abs_ci_low <= effect <= r.abs_ci_high for r in results]))


@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_a_a_false_positive_rate_is_within_bounds(name: str) -> None:
    assert 0.04 <= false_positive_rate(name, 6000, seed=101) <= 0.06


@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_ci_coverage_is_within_bounds(name: str) -> None:
    assert 0.94 <= coverage(name, 6000, seed=202) <= 0.96


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_long_calibration(name: str) -> None:
    assert abs(false_positive_rate(name, 40_000, seed=303) - 0.05) <= 0.004
    assert abs(coverage(name, 40_000, seed=404) - 0.95) <= 0.004
