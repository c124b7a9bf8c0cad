"""Model evaluation beside the A/B test: offline ranking metrics, classifier metrics and
calibration, off-policy (counterfactual) estimates, interleaving and drift.

Like :mod:`exp_dagster.stats`, a public library of pure, deterministic functions on numpy arrays
(numpy and scipy only: no pandas, no Dagster, no I/O), which a data scientist can call in a
notebook on arrays from any warehouse query and get what the pipeline reports. Each module states
its input contract (what one row of each array is) in its docstring.

* :mod:`~exp_dagster.evaluation.ranking`: NDCG@K (exponential ``2**rel - 1`` or linear gain),
  precision@K, recall@K, AP@K (MAP), reciprocal rank (MRR) per request;
  :func:`evaluate_ranking` averages them with intervals, :func:`compare_rankers` compares two
  models on the same requests.
* :mod:`~exp_dagster.evaluation.estimates`: the mean of any per-request metric with a
  delta-method or seeded cluster-bootstrap interval (:func:`mean_estimate`) and the paired
  comparison of two models (:func:`paired_comparison`).
* :mod:`~exp_dagster.evaluation.classification`: AUC with DeLong's interval
  (:func:`auc_delong`) and DeLong's paired test (:func:`delong_test`), log loss, Brier score,
  expected calibration error with a reliability table (:func:`calibration`).
* :mod:`~exp_dagster.evaluation.counterfactual`: IPS, clipped IPS, self-normalised IPS and doubly
  robust estimates of a candidate policy's reward from the logging policy's logs, with intervals,
  effective sample size and warnings when the weights explode (:func:`off_policy_evaluation`).
* :mod:`~exp_dagster.evaluation.interleaving`: team-draft credit, preference, exact sign test and
  bootstrap interval (:func:`interleaving_test`).
* :mod:`~exp_dagster.evaluation.drift`: population stability index with stated binning and
  thresholds (:func:`population_stability_index`).

Conventions: intervals are two-sided with level ``1 - alpha``; ``interval="delta"`` is a normal
interval with a delta-method (CLT) standard error over independent clusters (each row its own
cluster unless ``clusters`` is given), ``interval="bootstrap"`` a percentile interval of a cluster
bootstrap seeded by ``seed``; variances use ``ddof=1``; comparisons are ``candidate - baseline``;
a per-row value of ``nan`` means "undefined here" and is dropped and counted.

Examples:
    >>> from exp_dagster.evaluation import compare_rankers, evaluate_ranking
    >>> baseline = [[0, 2, 1], [1, 0, 0], [0, 0, 3], [2, 1, 0]]
    >>> candidate = [[2, 0, 1], [1, 0, 0], [3, 0, 0], [2, 1, 0]]
    >>> round(evaluate_ranking(candidate, k=3)["ndcg@3 (exponential gain)"].value, 4)
    0.991
    >>> comparison = compare_rankers(baseline, candidate, metric="ndcg", k=3)
    >>> round(comparison.abs_effect, 4), round(comparison.rel_effect, 4)
    (0.2012, 0.2548)
"""

from __future__ import annotations

from exp_dagster.evaluation._common import IntervalMethod
from exp_dagster.evaluation.classification import (
    AUCComparison,
    AUCEstimate,
    BinStrategy,
    CalibrationResult,
    ReliabilityBin,
    auc_delong,
    brier_score,
    calibration,
    delong_test,
    log_loss,
)
from exp_dagster.evaluation.counterfactual import (
    OffPolicyEstimate,
    OffPolicyEvaluation,
    WeightDiagnostics,
    importance_weights,
    off_policy_evaluation,
    weight_diagnostics,
)
from exp_dagster.evaluation.drift import (
    MAJOR_SHIFT,
    MODERATE_SHIFT,
    DriftStatus,
    PSIBinning,
    PSIResult,
    drift_status,
    population_stability_index,
    psi_from_counts,
)
from exp_dagster.evaluation.estimates import (
    MetricEstimate,
    PairedComparison,
    mean_estimate,
    paired_comparison,
)
from exp_dagster.evaluation.interleaving import (
    InterleavingResult,
    TeamCredit,
    interleaving_test,
    sign_test_p_value,
    team_draft_credit,
)
from exp_dagster.evaluation.ranking import (
    Gain,
    RankingMetric,
    average_precision_at_k,
    compare_rankers,
    dcg_at_k,
    evaluate_ranking,
    metric_name,
    ndcg_at_k,
    precision_at_k,
    ranked_labels,
    ranking_metric_values,
    recall_at_k,
    reciprocal_rank,
)

__all__ = [
    "MAJOR_SHIFT",
    "MODERATE_SHIFT",
    "AUCComparison",
    "AUCEstimate",
    "BinStrategy",
    "CalibrationResult",
    "DriftStatus",
    "Gain",
    "InterleavingResult",
    "IntervalMethod",
    "MetricEstimate",
    "OffPolicyEstimate",
    "OffPolicyEvaluation",
    "PSIBinning",
    "PSIResult",
    "PairedComparison",
    "RankingMetric",
    "ReliabilityBin",
    "TeamCredit",
    "WeightDiagnostics",
    "auc_delong",
    "average_precision_at_k",
    "brier_score",
    "calibration",
    "compare_rankers",
    "dcg_at_k",
    "delong_test",
    "drift_status",
    "evaluate_ranking",
    "importance_weights",
    "interleaving_test",
    "log_loss",
    "mean_estimate",
    "metric_name",
    "ndcg_at_k",
    "off_policy_evaluation",
    "paired_comparison",
    "population_stability_index",
    "precision_at_k",
    "psi_from_counts",
    "ranked_labels",
    "ranking_metric_values",
    "recall_at_k",
    "reciprocal_rank",
    "sign_test_p_value",
    "team_draft_credit",
    "weight_diagnostics",
]
