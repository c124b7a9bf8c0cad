from __future__ import annotations

import math

import numpy as np
import pytest

from exp_dagster.evaluation import drift_status, population_stability_index, psi_from_counts


def test_psi_from_counts_hand_computed() -> None:
    reference = [100, 200, 300, 400]
    current = [150, 250, 250, 350]
    r = np.array(reference) / 1000
    c = np.array(current) / 1000
    expected = sum((ci - ri) * math.log(ci / ri) for ci, ri in zip(c, r, strict=True))
    result = psi_from_counts(reference, current)
    assert result.psi == pytest.approx(expected, rel=1e-12)
    assert result.psi == pytest.approx(0.0472, abs=1e-4)
    assert result.status == "stable" and "PSI 0.047 (stable shift" in result.message
    np.testing.assert_allclose(result.contributions, (c - r) * np.log(c / r))


def test_empty_bin_uses_the_floor() -> None:
    result = psi_from_counts([50, 50, 0], [40, 40, 20], floor=1e-4)
    expected = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert result.psi == pytest.approx(expected, rel=1e-12)
    assert result.status == "major"


def test_quantile_bins_and_thresholds(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 50_000)
    result = population_stability_index(reference, rng.normal(0.0, 1.0, 50_000))
    assert len(result.edges) == 11 and result.edges[0] == -math.inf
    np.testing.assert_allclose(result.reference_share, 0.1, atol=1e-3)
    assert result.status == "stable" and result.psi < 0.01
    # A mean shift of d standard deviations has PSI close to d**2 for normals (binning loses a bit).
    shifted = population_stability_index(reference, rng.normal(0.4, 1.0, 50_000))
    assert shifted.status == "moderate"
    assert 0.13 < shifted.psi < 0.16
    counts_again = psi_from_counts(
        np.array(shifted.reference_share) * 50_000, np.array(shifted.current_share) * 50_000
    )
    assert counts_again.psi == pytest.approx(shifted.psi)


def test_discrete_scores_merge_duplicate_edges() -> None:
    reference = np.repeat([0.0, 1.0, 2.0], [500, 300, 200])
    result = population_stability_index(reference, np.repeat([0.0, 1.0, 2.0], [300, 300, 400]))
    # The deciles are reference values 0 (five times), 1 and 2: merged into three inner edges.
    assert result.edges == (-math.inf, 0.0, 1.0, 2.0, math.inf)
    # Nothing lies below the smallest value: that bin is empty and floored.
    assert result.reference_share == pytest.approx((1e-4, 0.5, 0.3, 0.2))
    assert result.current_share == pytest.approx((1e-4, 0.3, 0.3, 0.4))
    uniform = population_stability_index(reference, reference, binning="uniform", n_bins=4)
    assert uniform.psi == 0.0


def test_status_thresholds() -> None:
    assert [drift_status(value) for value in (0.0, 0.0999, 0.1, 0.2499, 0.25)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "major",
    ]


def test_invalid_inputs_are_sentences() -> None:
    with pytest.raises(ValueError, match="same bins"):
        psi_from_counts([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="current is empty"):
        population_stability_index([1.0, 2.0], [])
    with pytest.raises(ValueError, match="n_bins must be an integer of at least 2"):
        population_stability_index([1.0, 2.0], [1.0], n_bins=1)
