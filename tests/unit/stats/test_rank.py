from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import mann_whitney_test


def pairwise_theta(control: np.ndarray, treatment: np.ndarray) -> float:
    """P(T > C) + P(T = C)/2 over every pair, by brute force."""
    diff = treatment[:, None] - control[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def delong_variance(control: np.ndarray, treatment: np.ndarray) -> float:
    """DeLong's variance written out pair by pair (structural components)."""
    psi = (treatment[:, None] > control[None, :]) + 0.5 * (treatment[:, None] == control[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(v10.var(ddof=1) / treatment.size + v01.var(ddof=1) / control.size)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_matches_brute_force_and_scipy(alternative: str) -> None:
    rng = np.random.default_rng(8)
    control = np.round(rng.lognormal(1.0, 1.0, 60), 1)  # rounded: ties
    treatment = np.round(rng.lognormal(1.2, 1.0, 45), 1)
    result = mann_whitney_test(control, treatment, alternative=alternative)  # type: ignore[arg-type]
    reference = stats.mannwhitneyu(treatment, control, alternative=alternative)
    assert result.statistic == reference.statistic
    assert result.p_value == reference.pvalue
    assert result.prob_superiority == pytest.approx(pairwise_theta(control, treatment), rel=1e-12)
    assert result.std_error**2 == pytest.approx(delong_variance(control, treatment), rel=1e-10)
    assert result.rank_biserial == pytest.approx(2 * result.prob_superiority - 1, rel=1e-12)


def test_interval_covers_the_true_theta_by_simulation() -> None:
    # Normal shift delta: theta = Phi(delta / sqrt(2)).
    rng = np.random.default_rng(9)
    delta, reps = 0.3, 1500
    truth = stats.norm.cdf(delta / math.sqrt(2))
    covered = 0
    for _ in range(reps):
        result = mann_whitney_test(rng.normal(0, 1, 150), rng.normal(delta, 1, 120))
        covered += result.ci_low <= truth <= result.ci_high
    # MC SE 0.0056.
    assert abs(covered / reps - 0.95) <= 0.017


def test_a_few_huge_values_do_not_dominate() -> None:
    # A t-test follows one enormous value; the rank test does not.
    control = np.arange(1.0, 101.0)
    treatment = np.arange(1.0, 101.0)
    treatment[-1] = 1e9
    result = mann_whitney_test(control, treatment)
    assert result.prob_superiority == pytest.approx(0.5 + 0.99 / 100 / 2 * 1.0, abs=0.01)
    assert result.p_value > 0.9


def test_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="finite values"):
        mann_whitney_test([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 units"):
        mann_whitney_test([1.0], [1.0, 2.0])
