from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from exp_dagster.evaluation import (
    average_precision_at_k,
    compare_rankers,
    dcg_at_k,
    evaluate_ranking,
    ndcg_at_k,
    precision_at_k,
    ranked_labels,
    recall_at_k,
    reciprocal_rank,
)


@pytest.fixture
def graded(rng: np.random.Generator) -> np.ndarray:
    """400 requests of 12 ranked items with graded labels 0-4, about a tenth without relevance."""
    labels = rng.choice(5, size=(400, 12), p=[0.55, 0.2, 0.12, 0.08, 0.05]).astype(float)
    labels[rng.random(400) < 0.1] = 0.0
    return labels


@pytest.mark.parametrize("k", [1, 5, 12, 20])
@pytest.mark.parametrize("gain", ["linear", "exponential"])
def test_ndcg_matches_sklearn(graded: np.ndarray, k: int, gain: str) -> None:
    """scikit-learn's ``ndcg_score`` on the same requests, ranked by strictly decreasing scores.

    scikit-learn uses the label itself as the gain, so the exponential gain is passed as
    ``y_true = 2**rel - 1``; distinct scores avoid its tie averaging. It scores a request without
    relevant items 0 where we call NDCG undefined (``nan``).
    """
    gains = graded if gain == "linear" else np.exp2(graded) - 1.0
    scores = np.tile(-np.arange(graded.shape[1], dtype=float), (graded.shape[0], 1))
    ours = ndcg_at_k(graded, k, gain=gain)  # type: ignore[arg-type]
    has_relevance = graded.sum(axis=1) > 0
    assert np.isnan(ours[~has_relevance]).all() and (~has_relevance).sum() > 10
    # The mean over all requests, scoring undefined requests 0 as scikit-learn does.
    assert np.nan_to_num(ours).mean() == pytest.approx(ndcg_score(gains, scores, k=k), rel=1e-12)
    for request in range(25):
        reference = ndcg_score(gains[[request]], scores[[request]], k=k)
        assert np.nan_to_num(ours[request]) == pytest.approx(reference, rel=1e-12, abs=1e-15)


def test_ndcg_with_tied_scores_follows_the_order_given(rng: np.random.Generator) -> None:
    """Ties in the model's scores: our NDCG scores the order the caller gives. Ranked in
    scikit-learn's own order (reversed ascending argsort) it equals ``ignore_ties=True``; its
    default averages over the tied orders instead, which differs."""
    scores = rng.integers(0, 3, size=(40, 8)).astype(float)
    labels = rng.integers(0, 3, size=(40, 8)).astype(float)
    order = np.argsort(scores, axis=1)[:, ::-1]
    ours = ndcg_at_k(np.take_along_axis(labels, order, axis=1), 5, gain="linear")
    averaged = []
    for request in np.flatnonzero(labels.sum(axis=1) > 0):
        reference = ndcg_score([labels[request]], [scores[request]], k=5, ignore_ties=True)
        assert ours[request] == pytest.approx(reference, rel=1e-12)
        averaged.append(ndcg_score([labels[request]], [scores[request]], k=5))
    assert not np.allclose(ours[labels.sum(axis=1) > 0], averaged)


def test_ragged_and_padded_inputs_agree(graded: np.ndarray, rng: np.random.Generator) -> None:
    lengths = rng.integers(1, 13, size=graded.shape[0])
    ragged = [row[:length] for row, length in zip(graded, lengths, strict=True)]
    padded = ranked_labels(ragged)
    assert padded.shape == (400, int(lengths.max()))
    assert np.isnan(padded[0, lengths[0] :]).all()
    zero_padded = np.where(np.isnan(padded), 0.0, padded)
    np.testing.assert_allclose(ndcg_at_k(ragged, 10), ndcg_at_k(zero_padded, 10), equal_nan=True)
    np.testing.assert_allclose(precision_at_k(ragged, 10), precision_at_k(zero_padded, 10))


def test_hand_computed_binary_metrics() -> None:
    # relevant items at positions 2, 3 and 5; request 2 has one at 4; request 3 none.
    labels = [[0, 1, 1, 0, 1, 0], [0, 0, 0, 1], [0, 0]]
    np.testing.assert_allclose(precision_at_k(labels, 3), [2 / 3, 0.0, 0.0])
    np.testing.assert_allclose(precision_at_k(labels, 5), [3 / 5, 1 / 5, 0.0])
    np.testing.assert_allclose(recall_at_k(labels, 3), [2 / 3, 0.0, math.nan])
    np.testing.assert_allclose(recall_at_k(labels, 3, n_relevant=[4, 2, 1]), [0.5, 0.0, 0.0])
    # AP@5: (1/2 + 2/3 + 3/5) / min(5, 3); request 2: (1/4) / 1.
    np.testing.assert_allclose(
        average_precision_at_k(labels, 5), [(1 / 2 + 2 / 3 + 3 / 5) / 3, 1 / 4, math.nan]
    )
    # AP@2 with 3 relevant items: normalised by min(2, 3) = 2.
    np.testing.assert_allclose(average_precision_at_k(labels, 2), [(1 / 2) / 2, 0.0, math.nan])
    np.testing.assert_allclose(reciprocal_rank(labels), [1 / 2, 1 / 4, 0.0])
    np.testing.assert_allclose(reciprocal_rank(labels, k=3), [1 / 2, 0.0, 0.0])


def test_graded_labels_use_min_relevance() -> None:
    labels = [[1, 3, 0, 2]]
    np.testing.assert_allclose(precision_at_k(labels, 4, min_relevance=2), [0.5])
    np.testing.assert_allclose(reciprocal_rank(labels, min_relevance=2), [0.5])


def test_dcg_hand_computed_and_ideal_pool() -> None:
    assert dcg_at_k([[2, 0, 1]], 3, gain="exponential")[0] == pytest.approx(3 + 1 / 2)
    assert dcg_at_k([[2, 0, 1]], 3, gain="linear")[0] == pytest.approx(2 + 1 / 2)
    # A larger judged pool (an unranked item of grade 3) lowers NDCG.
    shown = ndcg_at_k([[2, 0, 1]], 3)[0]
    pooled = ndcg_at_k([[2, 0, 1]], 3, ideal_labels=[[2, 0, 1, 3]])[0]
    assert pooled == pytest.approx(3.5 / (7 + 3 / math.log2(3) + 1 / 2))
    assert pooled < shown


def test_mean_interval_is_clt_and_bootstrap_agrees(graded: np.ndarray) -> None:
    values = ndcg_at_k(graded, 10)
    defined = values[~np.isnan(values)]
    summary = evaluate_ranking(graded, k=10)["ndcg@10 (exponential gain)"]
    assert summary.n_rows == defined.size
    assert summary.n_undefined == 400 - defined.size
    assert summary.value == pytest.approx(defined.mean())
    assert summary.std_error == pytest.approx(defined.std(ddof=1) / math.sqrt(defined.size))
    assert summary.ci_low == pytest.approx(summary.value - 1.959964 * summary.std_error)
    boot = evaluate_ranking(graded, k=10, interval="bootstrap", n_bootstrap=2000, seed=3)
    boot_ndcg = boot["ndcg@10 (exponential gain)"]
    assert boot_ndcg.std_error == pytest.approx(summary.std_error, rel=0.1)
    assert boot_ndcg.ci_low == pytest.approx(summary.ci_low, abs=0.25 * summary.std_error)
    assert boot_ndcg.ci_high == pytest.approx(summary.ci_high, abs=0.25 * summary.std_error)


def test_paired_comparison_of_rankers(graded: np.ndarray, rng: np.random.Generator) -> None:
    """Both rankers sort each request's items by label plus noise, the candidate with less noise:
    it is better, and the requests' difficulty makes the two models' NDCGs correlated."""

    def ranker(noise: float) -> np.ndarray:
        order = np.argsort(-(graded + rng.normal(0.0, noise, size=graded.shape)), axis=1)
        return np.take_along_axis(graded, order, axis=1)

    baseline, candidate = ranker(3.0), ranker(1.0)
    result = compare_rankers(baseline, candidate, metric="ndcg", k=5)
    base, cand = ndcg_at_k(baseline, 5), ndcg_at_k(candidate, 5)
    difference = (cand - base)[~np.isnan(base)]
    assert result.abs_effect == pytest.approx(difference.mean())
    assert result.std_error == pytest.approx(difference.std(ddof=1) / math.sqrt(difference.size))
    assert result.abs_effect > 0 and result.p_value < 1e-6
    # The paired interval is narrower than the unpaired one would be.
    unpaired = math.sqrt(
        np.nanvar(base, ddof=1) / difference.size + np.nanvar(cand, ddof=1) / difference.size
    )
    assert result.std_error < unpaired
    boot = compare_rankers(baseline, candidate, metric="ndcg", k=5, interval="bootstrap", seed=1)
    assert boot.abs_ci_low == pytest.approx(result.abs_ci_low, abs=0.3 * result.std_error)
    assert boot.rel_ci_low == pytest.approx(result.rel_ci_low, rel=0.15)


def test_invalid_inputs_are_sentences() -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ndcg_at_k([[1, 0]], 0)
    with pytest.raises(ValueError, match="gain must be one of"):
        ndcg_at_k([[1, 0]], 2, gain="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="request 0, position 2"):
        ndcg_at_k([[1, math.inf]], 2)
    with pytest.raises(ValueError, match="same requests"):
        compare_rankers([[1, 0]], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="at least the 2 relevant items ranked in request 0"):
        recall_at_k([[1, 1]], 2, n_relevant=[1])
