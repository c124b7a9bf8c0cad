from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from exp_dagster.evaluation import interleaving_test, sign_test_p_value, team_draft_credit


@pytest.mark.parametrize(("wins", "losses"), [(0, 0), (3, 0), (7, 3), (10, 10), (40, 25), (4, 96)])
def test_sign_test_matches_scipy_binomtest(wins: int, losses: int) -> None:
    expected = 1.0 if wins + losses == 0 else binomtest(wins, wins + losses, 0.5).pvalue
    assert sign_test_p_value(wins, losses) == pytest.approx(expected, rel=1e-12)


def test_credit_from_item_logs() -> None:
    credit = team_draft_credit(
        request_ids=[7, 3, 7, 7, 3, 9],
        teams=["candidate", "baseline", "baseline", "candidate", "candidate", "baseline"],
        clicks=[1, 1, 0, 1, 0, 0],
    )
    np.testing.assert_array_equal(credit.request_ids, [3, 7, 9])
    np.testing.assert_array_equal(credit.baseline_clicks, [1, 0, 0])
    np.testing.assert_array_equal(credit.candidate_clicks, [0, 2, 0])


def test_preference_counts_and_interval(rng: np.random.Generator) -> None:
    """Candidate wins 55% of decided requests; ties and empty requests as the docs say."""
    n = 4000
    clicked = rng.random(n) < 0.6
    outcome = rng.choice([1, -1, 0], size=n, p=[0.5, 0.4, 0.1])
    candidate = np.where(clicked & (outcome >= 0), 1.0, 0.0)
    baseline = np.where(clicked & (outcome <= 0), 1.0, 0.0)
    result = interleaving_test(baseline, candidate, n_bootstrap=2000, seed=3)
    wins = int((clicked & (outcome == 1)).sum())
    losses = int((clicked & (outcome == -1)).sum())
    ties = int((clicked & (outcome == 0)).sum())
    assert (result.wins, result.losses, result.ties) == (wins, losses, ties)
    assert result.n_without_clicks == n - clicked.sum()
    assert result.preference == pytest.approx((wins + ties / 2) / (wins + losses + ties) - 0.5)
    assert result.p_value == pytest.approx(binomtest(wins, wins + losses).pvalue, rel=1e-9)
    # The bootstrap interval is close to the normal interval of a mean of 0/0.5/1 outcomes.
    scores = np.r_[np.ones(wins), np.zeros(losses), np.full(ties, 0.5)]
    se = scores.std(ddof=1) / np.sqrt(scores.size)
    assert result.ci_low == pytest.approx(result.preference - 1.96 * se, abs=0.2 * se)
    assert result.ci_high == pytest.approx(result.preference + 1.96 * se, abs=0.2 * se)
    assert result.ci_low > 0
    again = interleaving_test(baseline, candidate, n_bootstrap=2000, seed=3)
    assert again == result


def test_no_preference_interval_covers_zero(rng: np.random.Generator) -> None:
    baseline = rng.binomial(1, 0.3, 2000).astype(float)
    candidate = rng.binomial(1, 0.3, 2000).astype(float)
    result = interleaving_test(baseline, candidate, clusters=np.arange(2000) // 4)
    assert result.ci_low < 0 < result.ci_high
    assert result.p_value > 0.05


def test_invalid_inputs_are_sentences() -> None:
    with pytest.raises(ValueError, match="row 1 is 'c'"):
        team_draft_credit([1, 1], ["baseline", "c"], [1, 0])
    with pytest.raises(ValueError, match="non-negative click counts"):
        interleaving_test([1.0, -1.0], [0.0, 1.0])
