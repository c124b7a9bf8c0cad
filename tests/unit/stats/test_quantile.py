from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import (
    Alternative,
    QuantileArm,
    RatioMoments,
    quantile_from_histogram,
    quantile_test,
)
from tests.unit.stats.simulators import clustered_latencies, quantile_arm

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
LEVELS = [0.0, 0.01, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999, 1.0]


@pytest.mark.parametrize("size", [1, 7, 10, 100, 1000])
def test_quantile_from_histogram_matches_numpy_inverted_cdf(
    rng: np.random.Generator, size: int
) -> None:
    observations = rng.integers(0, 30, size=size).astype(float)  # many ties
    values, counts = np.unique(observations, return_counts=True)
    for level in [*LEVELS, *(k / size for k in range(size + 1))]:
        expected = np.quantile(observations, level, method="inverted_cdf")
        assert quantile_from_histogram(values, counts, level) == expected, level


def test_quantile_from_histogram_skips_empty_buckets() -> None:
    values, counts = [1.0, 2.0, 3.0, 4.0, 5.0], [0, 2, 0, 2, 0]
    assert quantile_from_histogram(values, counts, 0.0) == 2.0
    assert quantile_from_histogram(values, counts, 0.5) == 2.0
    assert quantile_from_histogram(values, counts, 0.51) == 4.0
    assert quantile_from_histogram(values, counts, 1.0) == 4.0


@pytest.mark.parametrize(
    ("values", "counts", "level", "message"),
    [
        ([1.0, 2.0], [1], 0.5, "as many counts as values"),
        ([], [], 0.5, "as many counts as values"),
        ([1.0, 2.0], [1, -1], 0.5, "cannot be negative"),
        ([2.0, 1.0], [1, 1], 0.5, "sorted ascending"),
        ([1.0, 2.0], [1, 1], 1.5, "between 0 and 1"),
        ([1.0, 2.0], [0, 0], 0.5, "no observations"),
    ],
)
def test_quantile_from_histogram_rejects_malformed_input(
    values: list[float], counts: list[int], level: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quantile_from_histogram(values, counts, level)


def test_quantile_arm_from_values_matches_the_vectorised_builder(rng: np.random.Generator) -> None:
    observations, unit_ids = clustered_latencies(rng, n_units=50)
    units = [observations[unit_ids == i] for i in range(50)]
    assert QuantileArm.from_values([*units, []], level=0.9) == quantile_arm(
        observations, unit_ids, 51, 0.9
    )


def independent_quantile_inference(
    observations: np.ndarray, unit_ids: np.ndarray, level: float, z: float
) -> tuple[float, float]:
    """The arm's quantile and standard error, computed from raw arrays with numpy only."""
    quantile = np.quantile(observations, level, method="inverted_cdf")
    below = np.bincount(unit_ids, weights=observations <= quantile)
    sizes = np.bincount(unit_ids).astype(float)
    p = below.sum() / sizes.sum()
    sigma = np.sqrt(((below - p * sizes) / sizes.mean()).var(ddof=1) / sizes.size)
    low, high = np.quantile(
        observations, np.clip([level - z * sigma, level + z * sigma], 0, 1), method="inverted_cdf"
    )
    return float(quantile), float((high - low) / (2 * z))


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_matches_independent_computation(
    rng: np.random.Generator, alternative: Alternative
) -> None:
    level, alpha, n_units = 0.95, 0.1, 300
    control_obs, control_ids = clustered_latencies(rng, n_units=n_units)
    treatment_obs, treatment_ids = clustered_latencies(rng, n_units=n_units, scale=1.2)
    result = quantile_test(
        quantile_arm(control_obs, control_ids, n_units, level),
        quantile_arm(treatment_obs, treatment_ids, n_units, level),
        level=level,
        alpha=alpha,
        alternative=alternative,
    )
    z = stats.norm.ppf(1 - alpha / 2)
    q_c, se_c = independent_quantile_inference(control_obs, control_ids, level, z)
    q_t, se_t = independent_quantile_inference(treatment_obs, treatment_ids, level, z)
    se = math.sqrt(se_c**2 + se_t**2)
    assert (result.mean_control, result.mean_treatment) == (q_c, q_t)
    assert result.std_error == pytest.approx(se, rel=1e-12)
    assert result.statistic == pytest.approx((q_t - q_c) / se, rel=1e-12)
    crit = stats.norm.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha)
    if alternative != "less":
        assert result.abs_ci_low == pytest.approx(q_t - q_c - crit * se, rel=1e-12)
    else:
        assert result.abs_ci_low == -math.inf
    rel_se = math.sqrt(se_t**2 / q_c**2 + q_t**2 * se_c**2 / q_c**4)
    if alternative != "greater":
        assert result.rel_ci_high == pytest.approx(q_t / q_c - 1 + crit * rel_se, rel=1e-12)
    assert (result.n_control, result.n_treatment) == (n_units, n_units)
    assert "0.95 quantile" in result.method


def test_clustered_interval_covers_and_the_iid_one_does_not(rng: np.random.Generator) -> None:
    reps, n_units, level, scale = 300, 200, 0.9, 1.2
    true_quantile = math.exp(math.hypot(0.8, 0.5) * stats.norm.ppf(level))
    effect = (scale - 1.0) * true_quantile
    covered, naive_covered = [], []
    for _ in range(reps):
        arms = [
            clustered_latencies(rng, n_units=n_units),
            clustered_latencies(rng, n_units=n_units, scale=scale),
        ]
        result = quantile_test(
            *(quantile_arm(obs, ids, n_units, level) for obs, ids in arms), level=level
        )
        naive = quantile_test(
            *(quantile_arm(obs, ids, n_units, level, iid=True) for obs, ids in arms), level=level
        )
        covered.append(result.abs_ci_low <= effect <= result.abs_ci_high)
        naive_covered.append(naive.abs_ci_low <= effect <= naive.abs_ci_high)
    assert 0.90 <= np.mean(covered) <= 0.99
    assert np.mean(naive_covered) < 0.85


def test_coarse_histogram_gives_zero_standard_error() -> None:
    moments = RatioMoments.from_values([3.0, 5.0, 2.0], [3.0, 5.0, 2.0])
    arm = QuantileArm(values=(100.0,), counts=(10,), threshold_moments=moments)
    result = quantile_test(arm, arm, level=0.5)
    assert (result.mean_control, result.std_error, result.p_value) == (100.0, 0.0, 1.0)


def test_zero_control_quantile_gives_nan_relative_fields() -> None:
    control = QuantileArm.from_values([[0.0, 0.0, 1.0], [0.0, 2.0], [0.0]], level=0.5)
    treatment = QuantileArm.from_values([[1.0, 2.0], [3.0, 1.0], [2.0]], level=0.5)
    result = quantile_test(control, treatment, level=0.5)
    assert result.mean_control == 0.0
    assert all(math.isnan(v) for v in (result.rel_effect, result.rel_ci_low, result.rel_ci_high))


def test_invalid_inputs_are_explained() -> None:
    arm = QuantileArm.from_values([[1.0, 2.0], [3.0]], level=0.5)
    empty_moments = RatioMoments(n=2, sum_y=0.0, sum_x=0.0, sum_y2=0.0, sum_x2=0.0, sum_xy=0.0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        quantile_test(arm, arm, level=1.0)
    with pytest.raises(ValueError, match="at least 2 units"):
        quantile_test(arm, QuantileArm.from_values([[1.0]], level=0.5), level=0.5)
    with pytest.raises(ValueError, match="treatment arm's threshold moments count no"):
        quantile_test(arm, QuantileArm(arm.values, arm.counts, empty_moments), level=0.5)
    with pytest.raises(ValueError, match="alpha"):
        quantile_test(arm, arm, level=0.5, alpha=5.0)
