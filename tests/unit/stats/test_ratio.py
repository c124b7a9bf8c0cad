from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import Alternative, Moments, RatioMoments, ratio_test, welch_test
from tests.unit.stats.simulators import ratio_arms

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]


def clustered_units(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    x = 1.0 + rng.poisson(6.0, size=n)
    y = rng.binomial(x.astype(int), rng.beta(rate * 10, (1 - rate) * 10, size=n)).astype(float)
    return y, x


def linearised_variance(y: np.ndarray, x: np.ndarray) -> float:
    """Brute force on raw arrays: variance of the per-unit linearisation, divided by n."""
    ratio = y.sum() / x.sum()
    linear = (y - ratio * x) / x.mean()
    return float(linear.var(ddof=1) / y.size)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_matches_brute_force_linearisation(
    rng: np.random.Generator, alternative: Alternative
) -> None:
    y_c, x_c = clustered_units(rng, 800, 0.20)
    y_t, x_t = clustered_units(rng, 900, 0.22)
    result = ratio_test(
        RatioMoments.from_values(y_c, x_c),
        RatioMoments.from_values(y_t, x_t),
        alpha=0.1,
        alternative=alternative,
    )
    r_c, r_t = y_c.sum() / x_c.sum(), y_t.sum() / x_t.sum()
    var_c, var_t = linearised_variance(y_c, x_c), linearised_variance(y_t, x_t)
    se = math.sqrt(var_c + var_t)
    z = (r_t - r_c) / se
    p_value = {
        "two-sided": 2 * stats.norm.sf(abs(z)),
        "greater": stats.norm.sf(z),
        "less": stats.norm.cdf(z),
    }[alternative]
    crit = stats.norm.ppf(0.95 if alternative == "two-sided" else 0.9)
    assert (result.mean_control, result.mean_treatment) == pytest.approx((r_c, r_t), rel=1e-12)
    assert result.std_error == pytest.approx(se, rel=1e-9)
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-8)
    if alternative != "less":
        assert result.abs_ci_low == pytest.approx(r_t - r_c - crit * se, rel=1e-9)
    if alternative != "greater":
        assert result.abs_ci_high == pytest.approx(r_t - r_c + crit * se, rel=1e-9)
    rel_se = math.sqrt(var_t / r_c**2 + r_t**2 * var_c / r_c**4)
    if alternative == "two-sided":
        assert (result.rel_ci_low, result.rel_ci_high) == pytest.approx(
            (r_t / r_c - 1 - crit * rel_se, r_t / r_c - 1 + crit * rel_se), rel=1e-9
        )


def test_standard_error_matches_bootstrap(rng: np.random.Generator) -> None:
    n, resamples = 2000, 2000
    arms = [clustered_units(rng, n, 0.2), clustered_units(rng, n, 0.25)]
    result = ratio_test(RatioMoments.from_values(*arms[0]), RatioMoments.from_values(*arms[1]))
    bootstrap_ratios = []
    for y, x in arms:
        units = rng.integers(0, n, size=(resamples, n))
        bootstrap_ratios.append(y[units].sum(axis=1) / x[units].sum(axis=1))
    bootstrap_se = float(np.std(bootstrap_ratios[1] - bootstrap_ratios[0], ddof=1))
    assert result.std_error == pytest.approx(bootstrap_se, rel=0.05)


def test_clustering_widens_the_interval_over_the_binomial_one(rng: np.random.Generator) -> None:
    arms = [clustered_units(rng, 1000, 0.2), clustered_units(rng, 1000, 0.2)]
    result = ratio_test(RatioMoments.from_values(*arms[0]), RatioMoments.from_values(*arms[1]))
    binomial_variance = sum(y.sum() * (x.sum() - y.sum()) / x.sum() ** 3 for y, x in arms)
    # Within-unit correlation 1 / (1 + 10) over ~7 trials per unit: design effect ~1.5.
    assert result.std_error / math.sqrt(binomial_variance) == pytest.approx(1.25, abs=0.1)


def test_one_observation_per_unit_is_a_z_test_of_means(rng: np.random.Generator) -> None:
    y_c, y_t = rng.normal(1.0, 1.0, size=300), rng.normal(1.2, 1.5, size=400)
    ones_c, ones_t = np.ones(300), np.ones(400)
    result = ratio_test(
        RatioMoments.from_values(y_c, ones_c), RatioMoments.from_values(y_t, ones_t)
    )
    welch = welch_test(Moments.from_values(y_c), Moments.from_values(y_t))
    assert result.abs_effect == pytest.approx(welch.abs_effect, rel=1e-12)
    assert result.std_error == pytest.approx(welch.std_error, rel=1e-9)
    assert result.statistic == pytest.approx(welch.statistic, rel=1e-9)


def test_zero_variance_ratio() -> None:
    # Every unit has the same ratio 0.5, so the linearised values are all zero.
    arm = RatioMoments.from_values([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    result = ratio_test(arm, arm)
    assert (result.std_error, result.statistic, result.p_value) == (0.0, 0.0, 1.0)


def test_zero_control_ratio_gives_nan_relative_fields() -> None:
    control = RatioMoments.from_values([0.0, 0.0, 0.0], [2.0, 4.0, 6.0])
    treatment = RatioMoments.from_values([1.0, 0.0, 2.0], [2.0, 4.0, 6.0])
    result = ratio_test(control, treatment, alternative="greater")
    assert result.abs_effect == pytest.approx(0.25)
    assert result.abs_ci_high == math.inf
    assert all(math.isnan(v) for v in (result.rel_effect, result.rel_ci_low, result.rel_ci_high))


def test_invalid_arms_are_explained() -> None:
    good = RatioMoments.from_values([1.0, 2.0], [3.0, 4.0])
    with pytest.raises(ValueError, match="control arm's denominators sum to 0"):
        ratio_test(RatioMoments.from_values([0.0, 0.0], [0.0, 0.0]), good)
    with pytest.raises(ValueError, match="at least 2 units in each arm"):
        ratio_test(good, RatioMoments.from_values([1.0], [3.0]))


def test_false_positive_rate_is_alpha(rng: np.random.Generator) -> None:
    reps = 2000
    controls = ratio_arms(rng, reps=reps, n=300, mean_rate=0.1)
    treatments = ratio_arms(rng, reps=reps, n=300, mean_rate=0.1)
    rejections = [
        ratio_test(c, t).p_value < 0.05 for c, t in zip(controls, treatments, strict=True)
    ]
    assert 0.035 <= np.mean(rejections) <= 0.065


def test_interval_coverage(rng: np.random.Generator) -> None:
    reps = 2000
    controls = ratio_arms(rng, reps=reps, n=300, mean_rate=0.10)
    treatments = ratio_arms(rng, reps=reps, n=300, mean_rate=0.12)
    # Trials are independent of each unit's rate, so the true ratio of sums is the mean rate.
    effect = 0.02
    covered = [
        (r := ratio_test(c, t)).abs_ci_low <= effect <= r.abs_ci_high
        for c, t in zip(controls, treatments, strict=True)
    ]
    assert 0.93 <= np.mean(covered) <= 0.97
