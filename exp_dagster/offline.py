"""Model evaluation of one experiment-day: warehouse reductions → evaluation library → table rows.

The layer between :mod:`exp_dagster.warehouse.evaluation` (SQL per-request reductions) and the
``offline_evaluation`` / ``offline_online_parity`` tables, like :mod:`exp_dagster.analysis` is for
``results``. Conventions (README "Model evaluation"):

* the control variant is the baseline and the production (logging) policy; every other variant
  is a candidate; comparisons are ``candidate - baseline``;
* ranking metrics are at ``k = 10``, NDCG with the exponential gain ``2**label - 1``; an item is
  relevant (precision, recall, MAP, MRR) and a click (off-policy reward) when ``label > 0``;
  intervals are delta-method intervals over units (a unit's requests are one cluster);
* the off-policy target is the candidate's click rate at the first slot, estimated from the
  logging policy's first slots: IPS, clipped IPS, SNIPS and doubly robust with a reward model of
  the click rate by decile of the logging model's score;
* classifier metrics: AUC with DeLong's interval, log loss and Brier with delta intervals,
  expected calibration error (10 uniform bins) with a seeded bootstrap interval, and
  calibration-in-the-large (mean prediction minus observed rate) with a delta interval;
* drift: PSI of each model's prediction scores on the day against the pre-period's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from exp_dagster.evaluation import (
    MAJOR_SHIFT,
    MODERATE_SHIFT,
    auc_delong,
    brier_score,
    calibration,
    compare_rankers,
    evaluate_ranking,
    interleaving_test,
    log_loss,
    mean_estimate,
    off_policy_evaluation,
    paired_comparison,
    population_stability_index,
)

K = 10
GAIN = "exponential"
ALPHA = 0.05
PRIMARY_RANKING_METRIC = f"ndcg@{K} ({GAIN} gain)"
COUNTERFACTUAL_METRIC = "top-slot click rate"
ECE_BOOTSTRAP = 200
REWARD_MODEL_BINS = 10

Row = dict[str, Any]


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _labels_matrix(rows: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
    return [np.asarray(r["labels"], dtype=float) for r in rows]


def ranking_rows(
    requests: Sequence[Mapping[str, Any]], control: str, candidates: Sequence[str]
) -> list[Row]:
    """Per model, every ranking metric with its interval; per candidate, the paired comparison.

    Args:
        requests: one row per (request, model) with ``request_id``, ``variant``, ``unit_id`` and
            ``labels`` in ranked order, for requests every model ranked, sorted by request.
        control: the baseline variant.
        candidates: the other variants.
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in requests:
        by_model.setdefault(row["variant"], []).append(row)
    if control not in by_model:
        return []
    clusters = np.array([r["unit_id"] for r in by_model[control]])
    out: list[Row] = []
    for model, rows in sorted(by_model.items()):
        for name, estimate in evaluate_ranking(
            _labels_matrix(rows), k=K, gain=GAIN, clusters=clusters, alpha=ALPHA
        ).items():
            out.append(
                {
                    "kind": "ranking",
                    "model": model,
                    "metric": name,
                    "value": estimate.value,
                    "std_error": estimate.std_error,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                    "n": estimate.n_rows,
                    "detail": f"{estimate.n_undefined} requests without a relevant item",
                    "method": estimate.method,
                }
            )
    for candidate in candidates:
        if candidate not in by_model:
            continue
        for metric in ("ndcg", "precision", "recall", "map", "mrr"):
            comparison = compare_rankers(
                _labels_matrix(by_model[control]),
                _labels_matrix(by_model[candidate]),
                metric=metric,  # type: ignore[arg-type]
                k=K,
                gain=GAIN,
                clusters=clusters,
                alpha=ALPHA,
            )
            out.append(
                {
                    "kind": "ranking_comparison",
                    "model": candidate,
                    "baseline": control,
                    "metric": comparison.metric,
                    "value": comparison.abs_effect,
                    "std_error": comparison.std_error,
                    "ci_low": comparison.abs_ci_low,
                    "ci_high": comparison.abs_ci_high,
                    "rel_effect": comparison.rel_effect,
                    "rel_ci_low": comparison.rel_ci_low,
                    "rel_ci_high": comparison.rel_ci_high,
                    "p_value": comparison.p_value,
                    "n": comparison.n_rows,
                    "detail": (
                        f"{comparison.mean_candidate:.4f} against {comparison.mean_baseline:.4f} "
                        f"on the same requests"
                    ),
                    "method": comparison.method,
                }
            )
    return out


def _reward_model(
    logged_score: np.ndarray, reward: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Click rate by decile of the logging model's score: edges and per-bin rates."""
    if logged_score.size < 2 * REWARD_MODEL_BINS:
        return None
    edges = np.unique(np.quantile(logged_score, np.linspace(0, 1, REWARD_MODEL_BINS + 1))[1:-1])
    index = np.searchsorted(edges, logged_score, side="right")
    counts = np.bincount(index, minlength=edges.size + 1)
    sums = np.bincount(index, weights=reward, minlength=edges.size + 1)
    overall = reward.mean()
    rates = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    return edges, rates


def off_policy_rows(rows: Sequence[Mapping[str, Any]], logging: str, target: str) -> list[Row]:
    """IPS, clipped IPS, SNIPS and DR of ``target``'s top-slot click rate, the logging policy's
    own rate, and the relative lift of the DR estimate over it (paired per request)."""
    if len(rows) < 2:
        return []
    reward = np.array([r["reward"] for r in rows], dtype=float)
    propensity = np.array([r["logging_propensity"] for r in rows], dtype=float)
    target_probability = np.array([r["target_probability"] for r in rows], dtype=float)
    clusters = np.array([r["unit_id"] for r in rows])
    logged_score = np.array([r["logged_score"] for r in rows], dtype=float)
    target_score = np.array([r["target_item_score"] for r in rows], dtype=float)
    model = _reward_model(logged_score, reward)
    predictions: dict[str, np.ndarray] = {}
    if model is not None:
        edges, rates = model
        predictions = {
            "reward_predictions": rates[np.searchsorted(edges, logged_score, side="right")],
            "target_expected_rewards": rates[np.searchsorted(edges, target_score, side="right")],
        }
    result = off_policy_evaluation(
        reward,
        propensity,
        target_probability,
        clusters=clusters,
        alpha=ALPHA,
        **predictions,  # type: ignore[arg-type]
    )
    diagnostics = result.diagnostics
    warnings = " ".join(diagnostics.warnings)
    out: list[Row] = []
    for estimate in (result.ips, result.clipped_ips, result.snips, result.doubly_robust):
        if estimate is None:
            continue
        out.append(
            {
                "kind": "off_policy",
                "model": target,
                "baseline": logging,
                "metric": f"{COUNTERFACTUAL_METRIC} ({estimate.estimator})",
                "value": estimate.value,
                "std_error": estimate.std_error,
                "ci_low": estimate.ci_low,
                "ci_high": estimate.ci_high,
                "n": estimate.n_rows,
                "effective_sample_size": diagnostics.effective_sample_size,
                "detail": warnings or f"max weight {diagnostics.max_weight:.3g}",
                "method": estimate.method,
            }
        )
    logged = mean_estimate(reward, metric=COUNTERFACTUAL_METRIC, clusters=clusters, alpha=ALPHA)
    out.append(
        {
            "kind": "off_policy",
            "model": logging,
            "metric": f"{COUNTERFACTUAL_METRIC} (logged)",
            "value": logged.value,
            "std_error": logged.std_error,
            "ci_low": logged.ci_low,
            "ci_high": logged.ci_high,
            "n": logged.n_rows,
            "detail": "the logging policy's own first-slot click rate",
            "method": logged.method,
        }
    )
    # The best estimate's per-request terms against the logged rewards, paired on the requests.
    weights = target_probability / propensity
    if predictions:
        terms = predictions["target_expected_rewards"] + weights * (
            reward - predictions["reward_predictions"]
        )
        estimator = "doubly robust"
    else:
        terms, estimator = weights * reward, "ips"
    lift = paired_comparison(
        reward, terms, metric=COUNTERFACTUAL_METRIC, clusters=clusters, alpha=ALPHA
    )
    out.append(
        {
            "kind": "off_policy",
            "model": target,
            "baseline": logging,
            "metric": f"{COUNTERFACTUAL_METRIC} lift ({estimator})",
            "value": lift.abs_effect,
            "std_error": lift.std_error,
            "ci_low": lift.abs_ci_low,
            "ci_high": lift.abs_ci_high,
            "rel_effect": lift.rel_effect,
            "rel_ci_low": lift.rel_ci_low,
            "rel_ci_high": lift.rel_ci_high,
            "p_value": lift.p_value,
            "n": lift.n_rows,
            "effective_sample_size": diagnostics.effective_sample_size,
            "detail": warnings or None,
            "method": lift.method,
        }
    )
    return out


def _ece_interval(scores: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the ECE from a seeded bootstrap of the rows."""
    rng = np.random.default_rng(seed)
    replicates = np.empty(ECE_BOOTSTRAP)
    for b in range(ECE_BOOTSTRAP):
        pick = rng.integers(0, scores.size, scores.size)
        replicates[b] = calibration(scores[pick], labels[pick]).expected_calibration_error
    low, high = np.quantile(replicates, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def classifier_rows(predictions: Sequence[Mapping[str, Any]]) -> list[Row]:
    """AUC, log loss, Brier, ECE with its reliability table, and calibration-in-the-large."""
    out: list[Row] = []
    for row in predictions:
        model = row["model"]
        scores = np.asarray(row["scores"], dtype=float)
        labels = np.asarray(row["labels"], dtype=float)
        if scores.size < 2 or labels.min() == labels.max():
            continue
        auc = auc_delong(scores, labels, alpha=ALPHA)
        out.append(
            {
                "kind": "classifier",
                "model": model,
                "metric": "auc",
                "value": auc.auc,
                "std_error": auc.std_error,
                "ci_low": auc.ci_low,
                "ci_high": auc.ci_high,
                "n": auc.n_positive + auc.n_negative,
                "method": auc.method,
            }
        )
        for estimate in (
            log_loss(scores, labels, alpha=ALPHA),
            brier_score(scores, labels, alpha=ALPHA),
            mean_estimate(scores - labels, metric="calibration-in-the-large", alpha=ALPHA),
        ):
            out.append(
                {
                    "kind": "classifier",
                    "model": model,
                    "metric": estimate.metric,
                    "value": estimate.value,
                    "std_error": estimate.std_error,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                    "n": estimate.n_rows,
                    "method": estimate.method,
                }
            )
        calibrated = calibration(scores, labels, alpha=ALPHA)
        low, high = _ece_interval(scores, labels)
        out.append(
            {
                "kind": "classifier",
                "model": model,
                "metric": "expected calibration error",
                "value": calibrated.expected_calibration_error,
                "ci_low": low,
                "ci_high": high,
                "n": calibrated.n_rows,
                "detail": f"max calibration error {calibrated.max_calibration_error:.4f}",
                "method": (
                    f"{calibrated.n_bins} {calibrated.strategy} bins, L1 (Naeini et al. 2015); "
                    f"{100 * (1 - ALPHA):g}% percentile interval from {ECE_BOOTSTRAP} bootstrap "
                    f"resamples (seed 0)"
                ),
            }
        )
        for bin_ in calibrated.bins:
            out.append(
                {
                    "kind": "reliability",
                    "model": model,
                    "metric": f"({bin_.low:.1f}, {bin_.high:.1f}]",
                    "value": bin_.observed_rate,
                    "ci_low": bin_.observed_ci_low,
                    "ci_high": bin_.observed_ci_high,
                    "n": bin_.count,
                    "mean_predicted": bin_.mean_predicted,
                    "method": "observed rate with a Wilson interval",
                }
            )
    return out


def interleaving_rows(
    requests: Sequence[Mapping[str, Any]], baseline: str, candidate: str
) -> list[Row]:
    """Team-draft preference of ``candidate`` over ``baseline`` with its sign test."""
    if not requests:
        return []
    result = interleaving_test(
        [r["baseline_clicks"] for r in requests],
        [r["candidate_clicks"] for r in requests],
        clusters=np.array([r["unit_id"] for r in requests]),
        alpha=ALPHA,
    )
    return [
        {
            "kind": "interleaving",
            "model": candidate,
            "baseline": baseline,
            "metric": "preference",
            "value": result.preference,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "p_value": result.p_value,
            "n": result.n_requests,
            "detail": (
                f"{result.wins} wins, {result.losses} losses, {result.ties} ties; "
                f"{result.n_without_clicks} requests without clicks"
            ),
            "method": result.method,
        }
    ]


def drift_rows(
    reference: Mapping[str, Sequence[float]], current: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """PSI of each model's scores on the day against the pre-period (quantile bins)."""
    out: list[Row] = []
    for row in current:
        model = row["model"]
        ref = np.asarray(reference.get(model, []), dtype=float)
        cur = np.asarray(row["scores"], dtype=float)
        cur = cur[np.isfinite(cur)]
        if ref.size == 0 or cur.size == 0:
            continue
        result = population_stability_index(ref, cur)
        out.append(
            {
                "kind": "drift",
                "model": model,
                "metric": "psi of prediction scores",
                "value": result.psi,
                "n": result.n_current,
                "detail": result.status,
                "method": (
                    f"PSI against the pre-period's {result.n_reference} scores, "
                    f"{len(result.edges) - 1} quantile bins; moderate from {MODERATE_SHIFT:g}, "
                    f"major from {MAJOR_SHIFT:g}"
                ),
            }
        )
    return out


def parity_rows(
    evaluation: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    primary_metric: str,
    control: str,
    candidates: Sequence[str],
) -> list[Row]:
    """Per candidate: the offline ranking lift, the counterfactual lift, the interleaving
    preference and the online A/B lift of the primary metric, side by side with their CIs."""
    out: list[Row] = []
    for candidate in candidates:
        online = next(
            (
                r
                for r in results
                if r["variant"] == candidate
                and r["metric"] == primary_metric
                and r["segment"] == "all"
            ),
            None,
        )
        online_lift = _finite(online["rel_effect"]) if online else None

        def agrees(lift: float | None, online_lift: float | None = online_lift) -> bool | None:
            if lift is None or online_lift is None:
                return None
            return (lift > 0) == (online_lift > 0)

        for row in evaluation:
            if row.get("model") != candidate:
                continue
            if row["kind"] == "ranking_comparison" and row["metric"] == PRIMARY_RANKING_METRIC:
                evidence = "offline ranking"
            elif row["kind"] == "off_policy" and row["metric"].startswith(
                f"{COUNTERFACTUAL_METRIC} lift"
            ):
                evidence = "counterfactual"
            elif row["kind"] == "interleaving":
                out.append(
                    {
                        "variant": candidate,
                        "baseline": control,
                        "evidence": "interleaving",
                        "metric": "team-draft preference",
                        "lift": row["value"],
                        "ci_low": row["ci_low"],
                        "ci_high": row["ci_high"],
                        "p_value": row["p_value"],
                        "agrees_with_online": agrees(_finite(row["value"])),
                        "detail": row.get("detail"),
                    }
                )
                continue
            else:
                continue
            out.append(
                {
                    "variant": candidate,
                    "baseline": control,
                    "evidence": evidence,
                    "metric": row["metric"],
                    "lift": row["rel_effect"],
                    "ci_low": row["rel_ci_low"],
                    "ci_high": row["rel_ci_high"],
                    "p_value": row["p_value"],
                    "agrees_with_online": agrees(_finite(row["rel_effect"])),
                    "detail": row.get("detail"),
                }
            )
        if online is not None:
            out.append(
                {
                    "variant": candidate,
                    "baseline": control,
                    "evidence": "online A/B",
                    "metric": primary_metric,
                    "lift": online["rel_effect"],
                    "ci_low": online["rel_ci_low"],
                    "ci_high": online["rel_ci_high"],
                    "p_value": online["p_value"],
                    "agrees_with_online": None,
                    "detail": "the primary metric of the A/B test: it decides",
                }
            )
    return out
