from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from exp_dagster.evaluation import mean_estimate, paired_comparison


def test_clustered_delta_method_matches_cluster_robust_regression(
    rng: np.random.Generator,
) -> None:
    """With clusters, our mean and standard error equal an intercept-only OLS with CR0 errors
    (statsmodels, no small-sample correction) times the C / (C - 1) factor we apply."""
    users = rng.integers(0, 150, size=1200)
    user_effect = rng.normal(0.0, 0.3, size=150)
    values = 0.5 + user_effect[users] + rng.normal(0.0, 0.2, size=1200)
    ours = mean_estimate(values, clusters=users)
    ols = sm.OLS(values, np.ones_like(values)).fit(
        cov_type="cluster", cov_kwds={"groups": users, "use_correction": False}
    )
    n_clusters = len(np.unique(users))
    assert ours.n_clusters == n_clusters
    assert ours.value == pytest.approx(ols.params[0])
    assert ours.std_error == pytest.approx(
        ols.bse[0] * math.sqrt(n_clusters / (n_clusters - 1)), rel=1e-9
    )
    # Correlated requests of a user: the naive interval would be too narrow.
    assert ours.std_error > mean_estimate(values).std_error * 1.5


def test_bootstrap_is_seeded_and_resamples_clusters(rng: np.random.Generator) -> None:
    users = rng.integers(0, 100, size=800)
    values = rng.normal(0.0, 1.0, size=100)[users] + rng.normal(0.0, 0.5, size=800)
    first = mean_estimate(values, clusters=users, interval="bootstrap", n_bootstrap=3000, seed=7)
    again = mean_estimate(values, clusters=users, interval="bootstrap", n_bootstrap=3000, seed=7)
    other = mean_estimate(values, clusters=users, interval="bootstrap", n_bootstrap=3000, seed=8)
    assert first == again
    assert first.ci_low != other.ci_low
    delta = mean_estimate(values, clusters=users)
    assert first.std_error == pytest.approx(delta.std_error, rel=0.1)


def test_nan_rows_are_dropped_and_counted() -> None:
    result = mean_estimate([1.0, math.nan, 3.0, math.nan])
    assert (result.value, result.n_rows, result.n_undefined) == (2.0, 2, 2)


def test_paired_comparison_delta_relative_lift(rng: np.random.Generator) -> None:
    baseline = rng.normal(1.0, 0.4, size=5000)
    candidate = 1.05 * baseline + rng.normal(0.0, 0.1, size=5000)
    result = paired_comparison(baseline, candidate)
    difference = candidate - baseline
    assert result.std_error == pytest.approx(difference.std(ddof=1) / math.sqrt(5000))
    # The delta method's relative interval agrees with a large bootstrap.
    boot = paired_comparison(baseline, candidate, interval="bootstrap", n_bootstrap=2000, seed=2)
    assert result.rel_effect == pytest.approx(0.05, abs=0.005)
    assert boot.rel_ci_low == pytest.approx(result.rel_ci_low, abs=0.0015)
    assert boot.rel_ci_high == pytest.approx(result.rel_ci_high, abs=0.0015)
    assert boot.p_value == 0.0 and result.p_value < 1e-12


def test_invalid_options_are_sentences() -> None:
    with pytest.raises(ValueError, match="interval must be one of"):
        mean_estimate([1.0, 2.0], interval="jackknife")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length"):
        paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one id per value"):
        mean_estimate([1.0, 2.0], clusters=[1])
    with pytest.raises(ValueError, match="n_bootstrap must be a positive"):
        mean_estimate([1.0, 2.0], interval="bootstrap", n_bootstrap=0)
