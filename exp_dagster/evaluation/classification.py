"""Classifier metrics: AUC with DeLong's interval and paired test, log loss, Brier, calibration.

**Input contract.** One row per scored unit (or prediction), as a prediction log returns:
``scores`` (a probability in ``[0, 1]`` for the loss and calibration metrics, any real score for
AUC) and ``labels`` (0 or 1), as 1-D arrays of equal length in the same row order. For the paired
DeLong test both models score the same rows. Everything is vectorised (ranking by
``scipy.stats.rankdata``, binning by ``numpy.searchsorted``): ``O(n log n)`` for AUC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from exp_dagster.evaluation._common import (
    IntervalMethod,
    as_vector,
    check_binary,
    check_finite,
    check_same_length,
    z_critical,
    z_p_value,
)
from exp_dagster.evaluation.estimates import MetricEstimate, mean_estimate
from exp_dagster.stats._common import check_alpha

BinStrategy = Literal["uniform", "quantile"]
"""Calibration bins: equal width on ``[0, 1]``, or equal counts (quantiles of the predictions)."""

BIN_STRATEGIES: tuple[str, ...] = get_args(BinStrategy)


def _scores_and_labels(
    scores: npt.ArrayLike, labels: npt.ArrayLike, *, probabilities: bool
) -> tuple[np.ndarray, np.ndarray]:
    score = as_vector(scores, "scores")
    label = as_vector(labels, "labels")
    check_same_length(scores=score, labels=label)
    check_finite(score, "scores")
    check_binary(label)
    if probabilities:
        bad = np.flatnonzero((score < 0.0) | (score > 1.0))
        if bad.size:
            raise ValueError(
                f"scores must be probabilities in [0, 1]; row {int(bad[0])} is "
                f"{float(score[bad[0]])!r} ({bad.size} such rows). Pass calibrated probabilities, "
                f"not raw scores or logits."
            )
    return score, label


def _structural_components(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeLong's structural components of each model's AUC by midranks (Sun & Xu 2014).

    ``scores`` has shape ``(n_models, n)``. Returns ``(auc, v10, v01)``: AUC per model, and the
    components ``V10`` (one per positive, shape ``(n_models, m)``) and ``V01`` (one per negative,
    shape ``(n_models, n_neg)``) with ``mean(V10) = mean(V01) = AUC``.
    """
    positive = labels == 1.0
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUC needs both classes in labels; got {n_pos} positive and {n_neg} negative rows. "
            f"Evaluate on a sample with both outcomes."
        )
    # scipy.stats is imported here, not with the module: it costs half a second, and the code
    # location imports this package in every run process.
    from scipy import stats

    rank_all = stats.rankdata(scores, axis=1)
    rank_pos = stats.rankdata(scores[:, positive], axis=1)
    rank_neg = stats.rankdata(scores[:, ~positive], axis=1)
    # A positive's midrank among all minus among positives counts the negatives below it (ties
    # count one half): V10 = P(score_neg < score_pos) + P(=)/2 for that positive.
    v10 = (rank_all[:, positive] - rank_pos) / n_neg
    v01 = 1.0 - (rank_all[:, ~positive] - rank_neg) / n_pos
    return v10.mean(axis=1), v10, v01


def _delong_covariance(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    """``S10 / m + S01 / n``: DeLong's covariance matrix of the models' AUCs (``ddof=1``)."""
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return s10 / v10.shape[1] + s01 / v01.shape[1]


@dataclass(frozen=True)
class AUCEstimate:
    """Area under the ROC curve with DeLong's standard error and interval.

    Attributes:
        auc: the AUC, ``P(score_positive > score_negative) + P(=) / 2`` over all pairs.
        std_error: DeLong's standard error, ``sqrt(S10 / m + S01 / n)``; ``nan`` with a single
            row in a class.
        ci_low: lower bound of the two-sided level ``1 - alpha`` normal interval, clipped to 0.
        ci_high: upper bound, clipped to 1.
        n_positive: rows with label 1 (``m``).
        n_negative: rows with label 0 (``n``).
        alpha: one minus the confidence level.
        method: one sentence naming the interval.
    """

    auc: float
    std_error: float
    ci_low: float
    ci_high: float
    n_positive: int
    n_negative: int
    alpha: float
    method: str


def auc_delong(scores: npt.ArrayLike, labels: npt.ArrayLike, *, alpha: float = 0.05) -> AUCEstimate:
    """AUC of one scorer with DeLong's nonparametric standard error and a normal interval.

    The AUC is the Mann-Whitney statistic (ties between a positive and a negative count one
    half), equal to scikit-learn's ``roc_auc_score``. DeLong's variance is
    ``S10 / m + S01 / n`` where ``S10`` is the sample variance (``ddof=1``) over the ``m``
    positives of their structural components ``V10_i`` (the share of negatives scored below
    positive ``i``, ties one half) and ``S01`` the same over the ``n`` negatives. Components are
    computed from midranks in ``O(n log n)`` (Sun & Xu 2014). The interval is
    ``AUC -/+ z se``, clipped to ``[0, 1]``; rows are assumed independent.

    Args:
        scores (ArrayLike): one score per row; higher means more likely positive.
        labels (ArrayLike): one label per row, 0 or 1.
        alpha (float): one minus the confidence level.

    Returns:
        AUCEstimate: the AUC, its standard error and interval, the class counts.

    Raises:
        ValueError: if the arrays differ in length, a score is not finite, a label is not 0/1,
            a class is empty, or ``alpha`` is invalid.

    References:
        DeLong, E. R., DeLong, D. M., & Clarke-Pearson, D. L. (1988). Comparing the Areas under
        Two or More Correlated Receiver Operating Characteristic Curves: A Nonparametric
        Approach. Biometrics, 44(3), 837-845.
        Sun, X., & Xu, W. (2014). Fast Implementation of DeLong's Algorithm for Comparing the
        Areas Under Correlated Receiver Operating Characteristic Curves. IEEE Signal Processing
        Letters, 21(11), 1389-1393.

    Examples:
        >>> result = auc_delong([0.1, 0.4, 0.35, 0.8, 0.7, 0.2], [0, 0, 1, 1, 1, 0])
        >>> round(result.auc, 4), round(result.std_error, 4)
        (0.8889, 0.1571)
        >>> round(result.ci_low, 4), result.ci_high
        (0.5809, 1.0)
    """
    check_alpha(alpha)
    score, label = _scores_and_labels(scores, labels, probabilities=False)
    auc, v10, v01 = _structural_components(score[None, :], label)
    n_pos, n_neg = v10.shape[1], v01.shape[1]
    if min(n_pos, n_neg) < 2:
        std_error = math.nan
    else:
        std_error = math.sqrt(max(float(_delong_covariance(v10, v01)[0, 0]), 0.0))
    crit = z_critical(alpha)
    value = float(auc[0])
    return AUCEstimate(
        auc=value,
        std_error=std_error,
        ci_low=max(0.0, value - crit * std_error),
        ci_high=min(1.0, value + crit * std_error),
        n_positive=n_pos,
        n_negative=n_neg,
        alpha=alpha,
        method=(
            f"Mann-Whitney AUC; {100 * (1 - alpha):g}% normal interval with DeLong's standard "
            f"error, clipped to [0, 1]"
        ),
    )


@dataclass(frozen=True)
class AUCComparison:
    """Two scorers' AUCs on the same labelled rows, compared by DeLong's paired test.

    Attributes:
        auc_baseline: the baseline scorer's AUC.
        auc_candidate: the candidate scorer's AUC.
        abs_effect: ``auc_candidate - auc_baseline``.
        ci_low: lower bound of the two-sided level ``1 - alpha`` interval of ``abs_effect``.
        ci_high: upper bound of that interval.
        std_error: DeLong's standard error of the difference, with the covariance of the two
            AUCs (``Var(c) + Var(b) - 2 Cov(b, c)``).
        statistic: ``abs_effect / std_error``, standard normal under no difference.
        p_value: two-sided p-value.
        correlation: DeLong's estimate of the correlation between the two AUCs.
        n_positive: rows with label 1.
        n_negative: rows with label 0.
        alpha: one minus the confidence level.
        method: one sentence naming the test.
    """

    auc_baseline: float
    auc_candidate: float
    abs_effect: float
    ci_low: float
    ci_high: float
    std_error: float
    statistic: float
    p_value: float
    correlation: float
    n_positive: int
    n_negative: int
    alpha: float
    method: str


def delong_test(
    baseline_scores: npt.ArrayLike,
    candidate_scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> AUCComparison:
    """DeLong's paired test of two scorers' AUCs on the same labelled rows.

    Both AUCs are computed on the same rows, so they are correlated; DeLong's covariance matrix
    ``S10 / m + S01 / n`` of the two AUCs (structural components as in :func:`auc_delong`) gives
    the variance of the difference, ``Var(c) + Var(b) - 2 Cov(b, c)``, and the z statistic of the
    difference is referred to the standard normal (two-sided). The interval of the difference is
    ``diff -/+ z se``.

    Args:
        baseline_scores (ArrayLike): the baseline's score per row.
        candidate_scores (ArrayLike): the candidate's score per row, same rows in the same order.
        labels (ArrayLike): one label per row, 0 or 1.
        alpha (float): one minus the confidence level.

    Returns:
        AUCComparison: both AUCs, the difference with its interval, statistic and p-value.

    Raises:
        ValueError: if the arrays differ in length, a score is not finite, a label is not 0/1,
            a class has fewer than 2 rows, or ``alpha`` is invalid.

    References:
        DeLong, E. R., DeLong, D. M., & Clarke-Pearson, D. L. (1988). Comparing the Areas under
        Two or More Correlated Receiver Operating Characteristic Curves: A Nonparametric
        Approach. Biometrics, 44(3), 837-845.
        Sun, X., & Xu, W. (2014). Fast Implementation of DeLong's Algorithm. IEEE Signal
        Processing Letters, 21(11), 1389-1393.

    Examples:
        >>> labels = [0, 0, 1, 1, 1, 0, 1, 0]
        >>> baseline = [0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.3, 0.5]
        >>> candidate = [0.1, 0.3, 0.45, 0.8, 0.7, 0.2, 0.35, 0.5]
        >>> result = delong_test(baseline, candidate, labels)
        >>> round(result.auc_baseline, 4), round(result.auc_candidate, 4)
        (0.75, 0.875)
        >>> round(result.std_error, 4), round(result.p_value, 4)
        (0.1443, 0.3865)
        >>> round(result.correlation, 4)
        0.7071
    """
    check_alpha(alpha)
    base, label = _scores_and_labels(baseline_scores, labels, probabilities=False)
    cand, _ = _scores_and_labels(candidate_scores, labels, probabilities=False)
    auc, v10, v01 = _structural_components(np.vstack([base, cand]), label)
    n_pos, n_neg = v10.shape[1], v01.shape[1]
    if min(n_pos, n_neg) < 2:
        raise ValueError(
            f"DeLong's test needs at least 2 rows of each class; got {n_pos} positive and "
            f"{n_neg} negative rows."
        )
    covariance = _delong_covariance(v10, v01)
    variance = covariance[0, 0] + covariance[1, 1] - 2.0 * covariance[0, 1]
    std_error = math.sqrt(max(float(variance), 0.0))
    effect = float(auc[1] - auc[0])
    statistic = effect / std_error if std_error > 0.0 else (0.0 if effect == 0.0 else math.inf)
    crit = z_critical(alpha)
    scale = math.sqrt(covariance[0, 0] * covariance[1, 1])
    return AUCComparison(
        auc_baseline=float(auc[0]),
        auc_candidate=float(auc[1]),
        abs_effect=effect,
        ci_low=effect - crit * std_error,
        ci_high=effect + crit * std_error,
        std_error=std_error,
        statistic=math.copysign(statistic, effect) if math.isinf(statistic) else statistic,
        p_value=z_p_value(effect, std_error),
        correlation=float(covariance[0, 1] / scale) if scale > 0.0 else math.nan,
        n_positive=n_pos,
        n_negative=n_neg,
        alpha=alpha,
        method="DeLong's paired z-test of the AUC difference (candidate - baseline), two-sided",
    )


def log_loss(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> MetricEstimate:
    """Mean log loss (binary cross-entropy, natural log) with a confidence interval.

    ``-mean(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``,
    ``eps = numpy.finfo(float).eps`` (as scikit-learn's ``log_loss`` for float64 input), so a
    confident wrong prediction costs about 36 instead of infinity. The interval is that of the
    mean of the per-row losses (:func:`~exp_dagster.evaluation.mean_estimate`).

    Args:
        probabilities (ArrayLike): predicted probability of label 1 per row, in ``[0, 1]``.
        labels (ArrayLike): one label per row, 0 or 1.
        clusters (ArrayLike | None): one cluster id per row (e.g. user); ``None``: independent.
        alpha (float): one minus the confidence level.
        interval (Literal["delta", "bootstrap"]): the interval's method.
        n_bootstrap (int): bootstrap resamples.
        seed (int): the bootstrap's seed.

    Returns:
        MetricEstimate: the mean log loss (lower is better) with its interval.

    Raises:
        ValueError: if the arrays differ in length, a probability is outside ``[0, 1]``, a label
            is not 0/1, or an option is invalid.

    References:
        Good, I. J. (1952). Rational Decisions. Journal of the Royal Statistical Society,
        Series B, 14(1), 107-114.

    Examples:
        >>> round(log_loss([0.9, 0.2, 0.6, 0.3], [1, 0, 1, 1]).value, 4)
        0.5108
    """
    probability, label = _scores_and_labels(probabilities, labels, probabilities=True)
    eps = np.finfo(float).eps
    clipped = np.clip(probability, eps, 1.0 - eps)
    losses = -(label * np.log(clipped) + (1.0 - label) * np.log1p(-clipped))
    return mean_estimate(
        losses,
        metric="log loss",
        clusters=clusters,
        alpha=alpha,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def brier_score(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> MetricEstimate:
    """Brier score ``mean((p - y)**2)`` with a confidence interval; 0 is perfect, lower is better.

    Args:
        probabilities (ArrayLike): predicted probability of label 1 per row, in ``[0, 1]``.
        labels (ArrayLike): one label per row, 0 or 1.
        clusters (ArrayLike | None): one cluster id per row; ``None``: independent rows.
        alpha (float): one minus the confidence level.
        interval (Literal["delta", "bootstrap"]): the interval's method.
        n_bootstrap (int): bootstrap resamples.
        seed (int): the bootstrap's seed.

    Returns:
        MetricEstimate: the Brier score with its interval.

    Raises:
        ValueError: if the arrays differ in length, a probability is outside ``[0, 1]``, a label
            is not 0/1, or an option is invalid.

    References:
        Brier, G. W. (1950). Verification of Forecasts Expressed in Terms of Probability.
        Monthly Weather Review, 78(1), 1-3.

    Examples:
        >>> round(brier_score([0.9, 0.2, 0.6, 0.3], [1, 0, 1, 1]).value, 4)
        0.175
    """
    probability, label = _scores_and_labels(probabilities, labels, probabilities=True)
    return mean_estimate(
        (probability - label) ** 2,
        metric="brier score",
        clusters=clusters,
        alpha=alpha,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


@dataclass(frozen=True)
class ReliabilityBin:
    """One row of a reliability table: predicted against observed in a bin of predictions.

    Attributes:
        low: the bin's lower edge (exclusive, except 0 for the first bin).
        high: the bin's upper edge (inclusive).
        count: rows whose prediction falls in the bin.
        mean_predicted: the mean prediction of those rows.
        observed_rate: the share of those rows with label 1.
        observed_ci_low: lower bound of the Wilson interval of ``observed_rate``.
        observed_ci_high: upper bound of the Wilson interval.
    """

    low: float
    high: float
    count: int
    mean_predicted: float
    observed_rate: float
    observed_ci_low: float
    observed_ci_high: float


@dataclass(frozen=True)
class CalibrationResult:
    """Expected calibration error and the reliability table it is computed from.

    Attributes:
        expected_calibration_error: ``sum_b (n_b / N) |observed_b - predicted_b|`` over bins.
        max_calibration_error: ``max_b |observed_b - predicted_b|`` over non-empty bins.
        bins: the non-empty bins in increasing order of prediction.
        n_bins: the number of bins requested.
        strategy: ``"uniform"`` or ``"quantile"``.
        n_rows: rows evaluated.
    """

    expected_calibration_error: float
    max_calibration_error: float
    bins: tuple[ReliabilityBin, ...]
    n_bins: int
    strategy: str
    n_rows: int


def calibration(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_bins: int = 10,
    strategy: BinStrategy = "uniform",
    alpha: float = 0.05,
) -> CalibrationResult:
    """Expected calibration error (ECE) with a reliability table of predicted against observed.

    Predictions are binned by edges ``e_0 = 0 < e_1 < … < e_B = 1`` (``"uniform"``: equal width;
    ``"quantile"``: the ``b / B`` quantiles of the predictions, duplicates merged), each bin
    ``(e_{b-1}, e_b]`` open on the left except the first, which includes 0: the convention of
    scikit-learn's ``calibration_curve``, whose ``prob_true`` and ``prob_pred`` equal this table's
    ``observed_rate`` and ``mean_predicted``. ``ECE = sum_b (n_b / N) |observed_b - predicted_b|``
    (Naeini et al. 2015, the L1 binned estimate), which is biased upward by sampling noise in
    small bins; ``max_calibration_error`` is the largest bin gap. Each bin's observed rate has a
    Wilson score interval at level ``1 - alpha``.

    Args:
        probabilities (ArrayLike): predicted probability of label 1 per row, in ``[0, 1]``.
        labels (ArrayLike): one label per row, 0 or 1.
        n_bins (int): the number of bins, at least 1.
        strategy (Literal["uniform", "quantile"]): how the edges are placed.
        alpha (float): one minus the level of the bins' Wilson intervals.

    Returns:
        CalibrationResult: ECE, maximum calibration error and the non-empty bins.

    Raises:
        ValueError: if the arrays differ in length or are empty, a probability is outside
            ``[0, 1]``, a label is not 0/1, or ``n_bins``, ``strategy`` or ``alpha`` is invalid.

    References:
        Naeini, M. P., Cooper, G. F., & Hauskrecht, M. (2015). Obtaining Well Calibrated
        Probabilities Using Bayesian Binning. AAAI 2015.
        Guo, C., Pleiss, G., Sun, Y., & Weinberger, K. Q. (2017). On Calibration of Modern
        Neural Networks. ICML 2017.
        Wilson, E. B. (1927). Probable Inference, the Law of Succession, and Statistical
        Inference. Journal of the American Statistical Association, 22(158), 209-212.

    Examples:
        >>> result = calibration([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0, 0, 1, 1, 1, 1], n_bins=2)
        >>> round(result.expected_calibration_error, 4)
        0.1667
        >>> [(b.count, round(b.mean_predicted, 4), round(b.observed_rate, 4)) for b in result.bins]
        [(3, 0.2, 0.3333), (3, 0.8, 1.0)]
    """
    check_alpha(alpha)
    if strategy not in BIN_STRATEGIES:
        options = ", ".join(repr(option) for option in BIN_STRATEGIES)
        raise ValueError(f"strategy must be one of {options}; got {strategy!r}.")
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")
    probability, label = _scores_and_labels(probabilities, labels, probabilities=True)
    if probability.size == 0:
        raise ValueError("calibration needs at least one prediction; got empty arrays.")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.unique(np.quantile(probability, np.linspace(0.0, 1.0, n_bins + 1)))
    # Bin b covers (edges[b], edges[b + 1]]; the first bin includes its lower edge.
    index = np.searchsorted(edges[1:-1], probability, side="left")
    n_edges = len(edges) - 1
    counts = np.bincount(index, minlength=n_edges)
    sum_predicted = np.bincount(index, weights=probability, minlength=n_edges)
    sum_observed = np.bincount(index, weights=label, minlength=n_edges)
    filled = counts > 0
    predicted = sum_predicted[filled] / counts[filled]
    observed = sum_observed[filled] / counts[filled]
    gaps = np.abs(observed - predicted)
    low, high = _wilson(sum_observed[filled], counts[filled], alpha)
    lows, highs = edges[:-1][filled], edges[1:][filled]
    bins = tuple(
        ReliabilityBin(
            low=float(lows[b]),
            high=float(highs[b]),
            count=int(counts[filled][b]),
            mean_predicted=float(predicted[b]),
            observed_rate=float(observed[b]),
            observed_ci_low=float(low[b]),
            observed_ci_high=float(high[b]),
        )
        for b in range(int(filled.sum()))
    )
    return CalibrationResult(
        expected_calibration_error=float((counts[filled] * gaps).sum() / probability.size),
        max_calibration_error=float(gaps.max()),
        bins=bins,
        n_bins=int(n_bins),
        strategy=strategy,
        n_rows=int(probability.size),
    )


def _wilson(
    successes: np.ndarray, trials: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``successes / trials`` (vectorised, ``trials > 0``)."""
    z = z_critical(alpha)
    rate = successes / trials
    denominator = 1.0 + z**2 / trials
    centre = (rate + z**2 / (2.0 * trials)) / denominator
    half = z * np.sqrt(rate * (1.0 - rate) / trials + z**2 / (4.0 * trials**2)) / denominator
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
