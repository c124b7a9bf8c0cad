"""Offline ranking metrics per request: NDCG@K, precision@K, recall@K, AP@K, reciprocal rank.

**Input contract.** A ranking is described by the relevance labels of the items a model ranked,
in ranked order (position 1 first), one request per row, in either of two forms a warehouse query
returns:

* a 2-D array of shape ``(n_requests, max_length)`` padded on the right with ``nan`` (a request
  that ranked fewer items has ``nan`` in the positions it did not fill), e.g. from
  ``list(label ORDER BY position)`` padded by numpy;
* a ragged sequence of 1-D arrays, one per request.

Labels are graded relevance (``0, 1, 2, …``) or clicks (``0/1``); an item counts as *relevant*
for the binary metrics when ``label >= min_relevance`` (default 1). Each function returns one
value per request as a 1-D float array (``nan`` where the metric is undefined), so metrics can be
averaged with an interval by :func:`~exp_dagster.evaluation.mean_estimate`, summarised all at
once by :func:`evaluate_ranking`, and compared between two models on the same requests by
:func:`compare_rankers`. The work is vectorised over requests: no Python loop over rows except
the one that measures a ragged list's lengths.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from exp_dagster.evaluation._common import IntervalMethod
from exp_dagster.evaluation.estimates import (
    MetricEstimate,
    PairedComparison,
    mean_estimate,
    paired_comparison,
)

Gain = Literal["exponential", "linear"]
"""NDCG's gain of a label ``rel``: ``2**rel - 1`` (exponential, Burges et al.) or ``rel``."""

GAINS: tuple[str, ...] = get_args(Gain)

RankingMetric = Literal["ndcg", "precision", "recall", "map", "mrr"]
"""The ranking metrics :func:`compare_rankers` and :func:`evaluate_ranking` know."""

RANKING_METRICS: tuple[str, ...] = get_args(RankingMetric)

Labels = npt.ArrayLike | Sequence[npt.ArrayLike]
"""Relevance labels in ranked order: a ``nan``-padded 2-D array or a ragged sequence of rows."""


def ranked_labels(labels: Labels) -> np.ndarray:
    """Relevance labels as a ``(n_requests, max_length)`` float matrix padded with ``nan``.

    Accepts a 2-D array (returned as floats, unchanged) or a ragged sequence of 1-D arrays (laid
    into a matrix with one vectorised assignment).

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.

    Returns:
        numpy.ndarray: the padded matrix; an empty request is a row of ``nan``.

    Raises:
        ValueError: if a request's labels are not one-dimensional or a label is infinite.

    Examples:
        >>> ranked_labels([[3, 0, 1], [1]])
        array([[ 3.,  0.,  1.],
               [ 1., nan, nan]])
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        matrix = labels.astype(float)
    else:
        rows = [np.asarray(row, dtype=float) for row in labels]
        if any(row.ndim != 1 for row in rows):
            raise ValueError(
                "labels must be one list of relevance labels per request, in ranked order; a "
                "request's labels are not one-dimensional."
            )
        lengths = np.fromiter((row.size for row in rows), dtype=np.int64, count=len(rows))
        width = int(lengths.max(initial=0))
        matrix = np.full((len(rows), width), np.nan)
        matrix[np.arange(width) < lengths[:, None]] = np.concatenate(rows) if rows else np.empty(0)
    bad = np.argwhere(np.isinf(matrix))
    if bad.size:
        request, position = (int(i) for i in bad[0])
        raise ValueError(
            f"labels must be finite relevance grades; request {request}, position "
            f"{position + 1} is {float(matrix[request, position])!r}."
        )
    return matrix


def _check_k(k: int) -> None:
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer number of positions; got {k!r}.")


def _top_k(matrix: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` positions, padded with ``nan`` when the rows are shorter than ``k``."""
    _check_k(k)
    if matrix.shape[1] >= k:
        return matrix[:, :k]
    padding = np.full((matrix.shape[0], k - matrix.shape[1]), np.nan)
    return np.hstack([matrix, padding])


def _gain(labels: np.ndarray, gain: Gain) -> np.ndarray:
    if gain not in GAINS:
        options = ", ".join(repr(option) for option in GAINS)
        raise ValueError(f"gain must be one of {options}; got {gain!r}.")
    values = np.exp2(labels) - 1.0 if gain == "exponential" else labels
    return np.nan_to_num(values, nan=0.0)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def dcg_at_k(labels: Labels, k: int, *, gain: Gain = "exponential") -> np.ndarray:
    """Discounted cumulative gain of the top ``k`` positions of each request.

    ``DCG@k = sum_{i=1..k} g(rel_i) / log2(i + 1)`` with ``g(rel) = 2**rel - 1`` (exponential,
    default) or ``g(rel) = rel`` (linear); missing positions (padding, or fewer than ``k`` items)
    add nothing.

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int): the cut-off, a positive number of positions.
        gain (Literal["exponential", "linear"]): the gain of a label.

    Returns:
        numpy.ndarray: one DCG per request.

    Raises:
        ValueError: if ``k`` or ``gain`` is invalid, or a label is infinite.

    References:
        Järvelin, K., & Kekäläinen, J. (2002). Cumulated Gain-Based Evaluation of IR Techniques.
        ACM Transactions on Information Systems, 20(4), 422-446.
        Burges, C., et al. (2005). Learning to Rank using Gradient Descent. ICML 2005
        (the exponential gain).

    Examples:
        >>> dcg_at_k([[3, 2, 0, 1]], k=3).round(4)
        array([8.8928])
        >>> dcg_at_k([[3, 2, 0, 1]], k=3, gain="linear").round(4)
        array([4.2619])
    """
    top = _top_k(ranked_labels(labels), k)
    return _gain(top, gain) @ _discounts(k)


def ndcg_at_k(
    labels: Labels,
    k: int,
    *,
    gain: Gain = "exponential",
    ideal_labels: Labels | None = None,
) -> np.ndarray:
    """Normalised DCG@k per request: ``DCG@k / IDCG@k``, in ``[0, 1]``.

    The ideal DCG sorts the request's labels in decreasing order and takes their DCG@k. By default
    those are the labels of the ranked list itself, which suits logs where only the shown items
    are judged; pass ``ideal_labels`` (every judged candidate of the request, in any order) when the
    judgement pool is larger than the list. A request without any positive gain has ``IDCG = 0``
    and NDCG ``nan`` (undefined, dropped by the summaries and counted in ``n_undefined``); note
    that scikit-learn's ``ndcg_score`` scores such a request 0 instead. Ties in the model's score
    are the caller's to break: the labels are taken in the order given (scikit-learn's
    ``ndcg_score`` averages over tied scores unless ``ignore_ties=True``). The gain is stated by
    ``gain``: scikit-learn's ``ndcg_score`` uses the linear gain, so pass ``2**rel - 1`` to it to
    compare with the exponential one.

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int): the cut-off, a positive number of positions.
        gain (Literal["exponential", "linear"]): the gain of a label, ``2**rel - 1`` or ``rel``.
        ideal_labels (ArrayLike | Sequence[ArrayLike] | None): all judged labels per request for
            the ideal DCG, same number of requests; default ``labels``.

    Returns:
        numpy.ndarray: one NDCG per request, ``nan`` where the ideal DCG is 0.

    Raises:
        ValueError: if ``k`` or ``gain`` is invalid, a label is infinite, or ``ideal_labels`` has
            another number of requests.

    References:
        Järvelin, K., & Kekäläinen, J. (2002). Cumulated Gain-Based Evaluation of IR Techniques.
        ACM Transactions on Information Systems, 20(4), 422-446.
        Wang, Y., et al. (2013). A Theoretical Analysis of NDCG Type Ranking Measures. COLT 2013.

    Examples:
        >>> labels = [[3, 2, 0, 1], [0, 0, 1], [0, 0]]
        >>> ndcg_at_k(labels, k=3).round(4)
        array([0.9468, 0.5   ,    nan])
        >>> ndcg_at_k(labels, k=3, gain="linear").round(4)
        array([0.895, 0.5  ,   nan])
    """
    matrix = ranked_labels(labels)
    ideal = matrix if ideal_labels is None else ranked_labels(ideal_labels)
    if ideal.shape[0] != matrix.shape[0]:
        raise ValueError(
            f"ideal_labels must have one row per request like labels ({matrix.shape[0]} "
            f"requests); got {ideal.shape[0]} rows."
        )
    # Sorting the negated labels puts nan (padding) last and the best labels first.
    ideal_sorted = -np.sort(-ideal, axis=1)
    actual = dcg_at_k(matrix, k, gain=gain)
    best = dcg_at_k(ideal_sorted, k, gain=gain)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best > 0.0, actual / best, np.nan)


def _relevant(matrix: np.ndarray, min_relevance: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return matrix >= min_relevance


def _n_relevant(
    matrix: np.ndarray, min_relevance: float, n_relevant: npt.ArrayLike | None
) -> np.ndarray:
    if n_relevant is None:
        return _relevant(matrix, min_relevance).sum(axis=1).astype(float)
    counts = np.asarray(n_relevant, dtype=float)
    if counts.shape != (matrix.shape[0],):
        raise ValueError(
            f"n_relevant must have one count per request ({matrix.shape[0]} requests); got shape "
            f"{counts.shape}."
        )
    shown = _relevant(matrix, min_relevance).sum(axis=1)
    short = np.flatnonzero(counts < shown)
    if short.size:
        raise ValueError(
            f"n_relevant must count every relevant item of the request, at least the "
            f"{int(shown[short[0]])} relevant items ranked in request {int(short[0])}; got "
            f"{counts[short[0]]:g}."
        )
    return counts


def precision_at_k(labels: Labels, k: int, *, min_relevance: float = 1.0) -> np.ndarray:
    """Precision@k per request: relevant items among the top ``k`` positions, divided by ``k``.

    The denominator is always ``k``, also for a request that ranked fewer than ``k`` items (the
    empty positions count as not relevant, the trec_eval convention).

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int): the cut-off, a positive number of positions.
        min_relevance (float): a label counts as relevant when ``label >= min_relevance``.

    Returns:
        numpy.ndarray: one precision per request, in ``[0, 1]``.

    Raises:
        ValueError: if ``k`` is invalid or a label is infinite.

    References:
        Manning, C. D., Raghavan, P., & Schütze, H. (2008). Introduction to Information
        Retrieval, chapter 8. Cambridge University Press.

    Examples:
        >>> precision_at_k([[1, 0, 1, 1], [0, 1]], k=3)
        array([0.66666667, 0.33333333])
    """
    top = _top_k(ranked_labels(labels), k)
    return _relevant(top, min_relevance).sum(axis=1) / k


def recall_at_k(
    labels: Labels,
    k: int,
    *,
    min_relevance: float = 1.0,
    n_relevant: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Recall@k per request: relevant items in the top ``k`` over all relevant items.

    "All relevant items" is ``n_relevant`` when given (every relevant candidate of the request,
    ranked or not), otherwise the relevant items anywhere in the ranked list. A request without a
    relevant item has recall ``nan`` (undefined).

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int): the cut-off, a positive number of positions.
        min_relevance (float): a label counts as relevant when ``label >= min_relevance``.
        n_relevant (ArrayLike | None): the number of relevant items per request; default the
            relevant items in the ranked list.

    Returns:
        numpy.ndarray: one recall per request, ``nan`` where there is no relevant item.

    Raises:
        ValueError: if ``k`` is invalid, a label is infinite, or ``n_relevant`` has another
            length or is below the relevant items ranked.

    References:
        Manning, C. D., Raghavan, P., & Schütze, H. (2008). Introduction to Information
        Retrieval, chapter 8. Cambridge University Press.

    Examples:
        >>> recall_at_k([[1, 0, 1, 1], [0, 1], [0, 0]], k=2)
        array([0.33333333, 1.        ,        nan])
        >>> recall_at_k([[1, 0, 1, 1]], k=2, n_relevant=[4])
        array([0.25])
    """
    matrix = ranked_labels(labels)
    total = _n_relevant(matrix, min_relevance, n_relevant)
    hits = _relevant(_top_k(matrix, k), min_relevance).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0.0, hits / total, np.nan)


def average_precision_at_k(
    labels: Labels,
    k: int,
    *,
    min_relevance: float = 1.0,
    n_relevant: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Average precision at k per request; its mean over requests is MAP@k.

    ``AP@k = sum_{i <= k, item i relevant} precision@i / min(k, R)`` with ``R`` the number of
    relevant items of the request (``n_relevant``, or the relevant items in the ranked list). The
    ``min(k, R)`` normaliser makes a perfect top-``k`` score 1 even when ``R > k``. A request
    without a relevant item has AP ``nan`` (undefined).

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int): the cut-off, a positive number of positions.
        min_relevance (float): a label counts as relevant when ``label >= min_relevance``.
        n_relevant (ArrayLike | None): the number of relevant items per request; default the
            relevant items in the ranked list.

    Returns:
        numpy.ndarray: one AP@k per request, ``nan`` where there is no relevant item.

    Raises:
        ValueError: if ``k`` is invalid, a label is infinite, or ``n_relevant`` is invalid.

    References:
        Manning, C. D., Raghavan, P., & Schütze, H. (2008). Introduction to Information
        Retrieval, chapter 8.4. Cambridge University Press.

    Examples:
        >>> average_precision_at_k([[1, 0, 1, 0, 1], [0, 1, 0]], k=3)
        array([0.55555556, 0.5       ])
    """
    matrix = ranked_labels(labels)
    total = _n_relevant(matrix, min_relevance, n_relevant)
    hits = _relevant(_top_k(matrix, k), min_relevance)
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    summed = (precision_at_i * hits).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0.0, summed / np.minimum(total, k), np.nan)


def reciprocal_rank(
    labels: Labels, *, k: int | None = None, min_relevance: float = 1.0
) -> np.ndarray:
    """Reciprocal rank per request: ``1 / position`` of the first relevant item; its mean is MRR.

    A request whose ranked list (its first ``k`` positions when ``k`` is given) has no relevant
    item scores 0, the usual convention (the user found nothing), so MRR is defined for every
    request.

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int | None): only the first ``k`` positions count; default the whole list.
        min_relevance (float): a label counts as relevant when ``label >= min_relevance``.

    Returns:
        numpy.ndarray: one reciprocal rank per request, in ``[0, 1]``.

    Raises:
        ValueError: if ``k`` is invalid or a label is infinite.

    References:
        Voorhees, E. M. (1999). The TREC-8 Question Answering Track Report. TREC 1999.

    Examples:
        >>> reciprocal_rank([[0, 0, 1], [1, 1], [0, 0]])
        array([0.33333333, 1.        , 0.        ])
    """
    matrix = ranked_labels(labels)
    if k is not None:
        matrix = _top_k(matrix, k)
    hits = _relevant(matrix, min_relevance)
    first = np.argmax(hits, axis=1)
    found = hits.any(axis=1)
    return np.where(found, 1.0 / (first + 1.0), 0.0)


def ranking_metric_values(
    labels: Labels,
    metric: RankingMetric,
    *,
    k: int = 10,
    gain: Gain = "exponential",
    min_relevance: float = 1.0,
    n_relevant: npt.ArrayLike | None = None,
) -> np.ndarray:
    """One ranking metric per request, chosen by name (``"mrr"`` is cut at ``k`` too)."""
    if metric == "ndcg":
        return ndcg_at_k(labels, k, gain=gain)
    if metric == "precision":
        return precision_at_k(labels, k, min_relevance=min_relevance)
    if metric == "recall":
        return recall_at_k(labels, k, min_relevance=min_relevance, n_relevant=n_relevant)
    if metric == "map":
        return average_precision_at_k(labels, k, min_relevance=min_relevance, n_relevant=n_relevant)
    if metric == "mrr":
        return reciprocal_rank(labels, k=k, min_relevance=min_relevance)
    options = ", ".join(repr(option) for option in RANKING_METRICS)
    raise ValueError(f"metric must be one of {options}; got {metric!r}.")


def metric_name(metric: RankingMetric, k: int, gain: Gain = "exponential") -> str:
    """The display name of a ranking metric, e.g. ``"ndcg@10 (exponential gain)"``.

    Examples:
        >>> metric_name("ndcg", 10), metric_name("map", 5), metric_name("mrr", 10)
        ('ndcg@10 (exponential gain)', 'map@5', 'mrr@10')
    """
    if metric == "ndcg":
        return f"ndcg@{k} ({gain} gain)"
    return f"{metric}@{k}"


def evaluate_ranking(
    labels: Labels,
    *,
    k: int = 10,
    gain: Gain = "exponential",
    min_relevance: float = 1.0,
    n_relevant: npt.ArrayLike | None = None,
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, MetricEstimate]:
    """Every ranking metric of one model, averaged over requests with a confidence interval.

    NDCG@k, precision@k, recall@k, MAP@k and MRR (cut at ``k``), each by the per-request function
    of this module, then :func:`~exp_dagster.evaluation.mean_estimate` (requests where a metric is
    undefined are dropped from that metric's mean and counted). ``clusters`` (e.g. the user of
    each request) makes the interval treat clusters as the independent unit; the bootstrap of
    every metric uses the same ``seed``, so the metrics' replicates resample the same clusters.

    Args:
        labels (ArrayLike | Sequence[ArrayLike]): labels in ranked order, one request per row.
        k (int): the cut-off.
        gain (Literal["exponential", "linear"]): NDCG's gain.
        min_relevance (float): a label counts as relevant when ``label >= min_relevance``.
        n_relevant (ArrayLike | None): relevant items per request, for recall and MAP.
        clusters (ArrayLike | None): one cluster id per request; ``None``: requests independent.
        alpha (float): one minus the confidence level.
        interval (Literal["delta", "bootstrap"]): the intervals' method.
        n_bootstrap (int): bootstrap resamples.
        seed (int): the bootstrap's seed.

    Returns:
        dict[str, MetricEstimate]: keyed by :func:`metric_name`, in the order NDCG, precision,
        recall, MAP, MRR.

    Raises:
        ValueError: if an argument is invalid (see the per-request functions).

    Examples:
        >>> summary = evaluate_ranking([[3, 0, 1], [0, 2, 0], [1, 0, 0], [0, 0, 0]], k=2)
        >>> list(summary)
        ['ndcg@2 (exponential gain)', 'precision@2', 'recall@2', 'map@2', 'mrr@2']
        >>> ndcg = summary["ndcg@2 (exponential gain)"]
        >>> round(ndcg.value, 4), ndcg.n_rows, ndcg.n_undefined
        (0.8494, 3, 1)
    """
    matrix = ranked_labels(labels)
    return {
        metric_name(metric, k, gain): mean_estimate(
            ranking_metric_values(
                matrix, metric, k=k, gain=gain, min_relevance=min_relevance, n_relevant=n_relevant
            ),
            metric=metric_name(metric, k, gain),
            clusters=clusters,
            alpha=alpha,
            interval=interval,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        for metric in RANKING_METRICS
    }


def compare_rankers(
    baseline_labels: Labels,
    candidate_labels: Labels,
    *,
    metric: RankingMetric = "ndcg",
    k: int = 10,
    gain: Gain = "exponential",
    min_relevance: float = 1.0,
    n_relevant: npt.ArrayLike | None = None,
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of two rankers' metric on the same requests.

    Row ``i`` of both label sets must be the same request ranked by each model (an offline
    replay: the same candidates, judged once). The per-request metric of each model is computed
    as in :func:`evaluate_ranking`, then compared by
    :func:`~exp_dagster.evaluation.paired_comparison` (requests where either is undefined are
    dropped; for NDCG pass the same judged pool to both, which makes the ideal DCG the same).

    Args:
        baseline_labels (ArrayLike | Sequence[ArrayLike]): the baseline's ranked labels.
        candidate_labels (ArrayLike | Sequence[ArrayLike]): the candidate's, same requests.
        metric (Literal["ndcg", "precision", "recall", "map", "mrr"]): the metric compared.
        k (int): the cut-off.
        gain (Literal["exponential", "linear"]): NDCG's gain.
        min_relevance (float): a label counts as relevant when ``label >= min_relevance``.
        n_relevant (ArrayLike | None): relevant items per request, for recall and MAP.
        clusters (ArrayLike | None): one cluster id per request.
        alpha (float): one minus the confidence level.
        interval (Literal["delta", "bootstrap"]): the intervals' method.
        n_bootstrap (int): bootstrap resamples.
        seed (int): the bootstrap's seed.

    Returns:
        PairedComparison: both means, the difference and relative lift with intervals, p-value.

    Raises:
        ValueError: if the label sets have different numbers of requests or an argument is
            invalid.

    Examples:
        >>> baseline = [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
        >>> candidate = [[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]]
        >>> result = compare_rankers(baseline, candidate, metric="mrr", k=3)
        >>> round(result.mean_baseline, 4), round(result.mean_candidate, 4)
        (0.5833, 0.875)
        >>> round(result.abs_effect, 4), round(result.p_value, 4)
        (0.2917, 0.0196)
    """
    base = ranked_labels(baseline_labels)
    cand = ranked_labels(candidate_labels)
    if base.shape[0] != cand.shape[0]:
        raise ValueError(
            f"baseline_labels and candidate_labels must rank the same requests; got "
            f"{base.shape[0]} and {cand.shape[0]} requests."
        )
    values = functools.partial(
        ranking_metric_values,
        metric=metric,
        k=k,
        gain=gain,
        min_relevance=min_relevance,
        n_relevant=n_relevant,
    )
    return paired_comparison(
        values(base),
        values(cand),
        metric=metric_name(metric, k, gain),
        clusters=clusters,
        alpha=alpha,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
