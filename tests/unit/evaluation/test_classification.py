from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sklearn_log_loss

from exp_dagster.evaluation import auc_delong, brier_score, calibration, delong_test, log_loss


@pytest.fixture
def scored(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """600 rows: a label, a true probability, and two models' scores (rounded, so with ties)."""
    signal = rng.normal(0.0, 1.0, size=600)
    probability = 1.0 / (1.0 + np.exp(-(signal - 0.5)))
    labels = (rng.random(600) < probability).astype(float)
    baseline = np.round(1.0 / (1.0 + np.exp(-(signal + rng.normal(0.0, 1.2, 600)))), 2)
    candidate = np.round(1.0 / (1.0 + np.exp(-(signal + rng.normal(0.0, 0.6, 600)))), 2)
    return {"labels": labels, "baseline": baseline, "candidate": candidate, "true": probability}


def brute_force_components(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """DeLong's structural components from the O(m n) pair kernel psi(x, y)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    kernel = (positive[:, None] > negative[None, :]) + 0.5 * (
        positive[:, None] == negative[None, :]
    )
    return kernel.mean(axis=1), kernel.mean(axis=0)


def test_auc_matches_sklearn_with_ties(scored: dict[str, np.ndarray]) -> None:
    for model in ("baseline", "candidate"):
        result = auc_delong(scored[model], scored["labels"])
        assert result.auc == pytest.approx(roc_auc_score(scored["labels"], scored[model]))
        assert result.n_positive + result.n_negative == 600


def test_delong_variance_matches_brute_force(scored: dict[str, np.ndarray]) -> None:
    labels = scored["labels"]
    v10, v01 = brute_force_components(scored["baseline"], labels)
    variance = v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size
    result = auc_delong(scored["baseline"], labels)
    assert result.std_error == pytest.approx(math.sqrt(variance), rel=1e-10)
    assert result.ci_low == pytest.approx(result.auc - 1.959964 * result.std_error, rel=1e-6)


def test_paired_delong_matches_brute_force(scored: dict[str, np.ndarray]) -> None:
    labels = scored["labels"]
    b10, b01 = brute_force_components(scored["baseline"], labels)
    c10, c01 = brute_force_components(scored["candidate"], labels)
    covariance = np.cov(np.vstack([b10, c10])) / b10.size + np.cov(np.vstack([b01, c01])) / b01.size
    se = math.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    result = delong_test(scored["baseline"], scored["candidate"], labels)
    assert result.abs_effect == pytest.approx(c10.mean() - b10.mean())
    assert result.std_error == pytest.approx(se, rel=1e-10)
    assert result.correlation == pytest.approx(
        covariance[0, 1] / math.sqrt(covariance[0, 0] * covariance[1, 1])
    )
    assert result.abs_effect > 0 and result.p_value < 0.05


def test_paired_delong_is_calibrated_under_the_null(rng: np.random.Generator) -> None:
    """Two equally good, correlated scorers: the test rejects about alpha of the time."""
    rejections = 0
    reps = 300
    for _ in range(reps):
        signal = rng.normal(0.0, 1.0, size=200)
        labels = (rng.random(200) < 1.0 / (1.0 + np.exp(-signal))).astype(float)
        shared = rng.normal(0.0, 0.7, size=200)
        first = signal + shared + rng.normal(0.0, 0.7, size=200)
        second = signal + shared + rng.normal(0.0, 0.7, size=200)
        rejections += delong_test(first, second, labels).p_value < 0.05
    assert 0.02 <= rejections / reps <= 0.09


def test_log_loss_and_brier_match_sklearn(scored: dict[str, np.ndarray]) -> None:
    labels, probability = scored["labels"], scored["true"]
    loss = log_loss(probability, labels)
    assert loss.value == pytest.approx(sklearn_log_loss(labels, probability), rel=1e-12)
    brier = brier_score(probability, labels)
    assert brier.value == pytest.approx(brier_score_loss(labels, probability), rel=1e-12)
    per_row = (probability - labels) ** 2
    assert brier.std_error == pytest.approx(per_row.std(ddof=1) / math.sqrt(600))
    # Clipped like scikit-learn: a confident mistake costs -log(eps), not infinity.
    extreme = log_loss([0.0, 1.0], [1, 1])
    assert extreme.value == pytest.approx(-math.log(np.finfo(float).eps) / 2)
    assert extreme.value == pytest.approx(sklearn_log_loss([1, 1], [0.0, 1.0], labels=[0, 1]))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_table_matches_sklearn_calibration_curve(
    scored: dict[str, np.ndarray], strategy: str
) -> None:
    labels, probability = scored["labels"], scored["candidate"]
    result = calibration(probability, labels, n_bins=8, strategy=strategy)  # type: ignore[arg-type]
    prob_true, prob_pred = calibration_curve(labels, probability, n_bins=8, strategy=strategy)
    np.testing.assert_allclose([b.observed_rate for b in result.bins], prob_true, rtol=1e-12)
    np.testing.assert_allclose([b.mean_predicted for b in result.bins], prob_pred, rtol=1e-12)
    counts = np.array([b.count for b in result.bins])
    assert counts.sum() == 600
    gaps = np.abs(prob_true - prob_pred)
    assert result.expected_calibration_error == pytest.approx((counts * gaps).sum() / 600)
    assert result.max_calibration_error == pytest.approx(gaps.max())
    for b in result.bins:
        assert b.observed_ci_low <= b.observed_rate <= b.observed_ci_high


def test_ece_hand_computed_and_edge_convention() -> None:
    # Bins of width 0.25: 0.25 sits in the first bin (right-closed), 0.3 and 0.5 in the second.
    probability = [0.1, 0.25, 0.3, 0.5, 0.9, 0.9]
    labels = [0, 1, 0, 1, 1, 0]
    result = calibration(probability, labels, n_bins=4)
    assert [b.count for b in result.bins] == [2, 2, 2]
    # |1/2 - 0.175| * 2 + |1/2 - 0.4| * 2 + |1/2 - 0.9| * 2, over 6 rows.
    assert result.expected_calibration_error == pytest.approx((0.325 + 0.1 + 0.4) * 2 / 6)
    assert result.max_calibration_error == pytest.approx(0.4)


def test_known_miscalibration_is_measured(rng: np.random.Generator) -> None:
    """Predictions 0.05 above the truth everywhere: ECE close to 0.05, and 0 when calibrated."""
    truth = rng.uniform(0.1, 0.8, size=200_000)
    labels = (rng.random(200_000) < truth).astype(float)
    assert calibration(truth + 0.05, labels).expected_calibration_error == pytest.approx(
        0.05, abs=0.005
    )
    assert calibration(truth, labels).expected_calibration_error < 0.006


def test_invalid_inputs_are_sentences() -> None:
    with pytest.raises(ValueError, match="both classes"):
        auc_delong([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match=r"row 1 is 2\.0"):
        auc_delong([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]; row 0 is 1\.5"):
        log_loss([1.5, 0.2], [0, 1])
    with pytest.raises(ValueError, match="at least 2 rows of each class"):
        delong_test([0.1, 0.2, 0.3], [0.1, 0.3, 0.2], [0, 0, 1])
    with pytest.raises(ValueError, match="strategy must be one of"):
        calibration([0.1], [0], strategy="kmeans")  # type: ignore[arg-type]
