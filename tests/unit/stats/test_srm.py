from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import srm_test


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([5050, 4950], [0.5, 0.5]),
        ([10_321, 9_679], [1.0, 1.0]),
        ([1000, 520, 480], [2.0, 1.0, 1.0]),
        ([812, 3_188], [0.2, 0.8]),
        ([333, 341, 326, 300], [0.25, 0.25, 0.25, 0.25]),
    ],
)
def test_matches_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    result = srm_test(observed, weights)
    expected = np.array(weights) / sum(weights) * sum(observed)
    reference = stats.chisquare(observed, f_exp=expected)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.df == len(observed) - 1
    assert result.observed == tuple(observed)
    assert result.expected == pytest.approx(tuple(expected), rel=1e-12)


def test_perfect_split() -> None:
    result = srm_test([500, 500], [0.5, 0.5])
    assert (result.statistic, result.p_value) == (0.0, 1.0)


def test_false_positive_rate_under_the_plan(rng: np.random.Generator) -> None:
    weights = [0.5, 0.3, 0.2]
    splits = rng.multinomial(5000, weights, size=2000)
    rejections = [srm_test(split.tolist(), weights).p_value < 0.05 for split in splits]
    assert 0.035 <= np.mean(rejections) <= 0.065


@pytest.mark.parametrize(
    ("observed", "weights", "message"),
    [
        ([10, 10], [1.0], "one weight per variant"),
        ([10], [1.0], "at least 2 variants"),
        ([10, -1], [1.0, 1.0], "cannot be negative"),
        ([10, 10], [1.0, 0.0], "positive and finite"),
        ([0, 0], [1.0, 1.0], "at least one observed unit"),
    ],
)
def test_invalid_inputs_are_explained(
    observed: list[int], weights: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        srm_test(observed, weights)
