"""Model evaluation of one experiment-day: warehouse reductions → evaluation library → table rows.

The layer between :mod:`exp_dagster.warehouse.evaluation` (SQL per-request reductions) and the
``offline_evaluation`` / ``offline_online_parity`` tables, like :mod:`exp_dagster.analysis` is for
``results``. Conventions (docs/pipeline.md):

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
  calibration-in-the-large (mean prediction minus observed rate) with a delta interval; each
  candidate's AUC against the control's by DeLong's paired test on the same outcomes;
* every interval and test is at the experiment spec's ``alpha`` (two-sided), the level of its
  A/B intervals: the asset passes it, there is no level of its own here;
* segments: the ranking and classifier metrics (and the comparisons) are repeated per value of
  each spec segment, the requesting unit's value at its first exposure (``segment`` /
  ``segment_value``; ``'all'`` / ``'all'`` for the whole day, as in ``results``); a segment
  value with fewer than ``MIN_SEGMENT_ROWS`` requests or predictions is left out, and the
  reliability table is overall only;
* drift: PSI of each model's prediction scores and of each ``feature_*`` column of its
  prediction logs on the day against the pre-period's (10 quantile bins of the pre-period).
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
    delong_test,
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
PRIMARY_RANKING_METRIC = f"ndcg@{K} ({GAIN} gain)"
COUNTERFACTUAL_METRIC = "top-slot click rate"
ECE_BOOTSTRAP = 200
ECE_BINS = 10  # uniform bins of the ECE row, and of its bootstrap replicates
REWARD_MODEL_BINS = 10
MIN_SEGMENT_ROWS = 30
OVERALL = ("all", "all")

Row = dict[str, Any]

# The offline_evaluation columns a row may leave out (NULL): each kind has the estimates it has
# (a drift row has no interval, a ranking row no baseline). Every other column is required.
OPTIONAL_EVALUATION_COLUMNS = (
    *("baseline", "value", "std_error", "ci_low", "ci_high"),
    *("rel_effect", "rel_ci_low", "rel_ci_high", "p_value", "n"),
    *("effective_sample_size", "mean_predicted", "detail", "method"),
)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _labels_matrix(rows: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
    return [np.asarray(r["labels"], dtype=float) for r in rows]


def segment_groups(
    segments: Sequence[Mapping[str, str] | None], names: Sequence[str]
) -> dict[tuple[str, str], np.ndarray]:
    """Row indices by (segment, value): ``OVERALL`` holds every row, then each value of each
    segment in ``names`` with at least ``MIN_SEGMENT_ROWS`` rows (rows without a value, e.g. of
    units not exposed yet, are only in ``OVERALL``).

    Args:
        segments: each row's segments map (None when the unit has none).
        names: the spec's segment names, in the order wanted.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for index, mapping in enumerate(segments):
        for name in names:
            value = (mapping or {}).get(name)
            if value is not None:
                groups.setdefault((name, str(value)), []).append(index)
    found = {OVERALL: np.arange(len(segments))}
    for key in sorted(groups):
        if len(groups[key]) >= MIN_SEGMENT_ROWS:
            found[key] = np.asarray(groups[key])
    return found


def _in_segment(row: Row, key: tuple[str, str]) -> Row:
    return {"segment": key[0], "segment_value": key[1], **row}


def ranking_rows(
    requests: Sequence[Mapping[str, Any]],
    control: str,
    candidates: Sequence[str],
    segments: Sequence[str] = (),
    *,
    alpha: float,
) -> list[Row]:
    """Per model, every ranking metric with its interval; per candidate, the paired comparison;
    overall and per segment value (see :func:`segment_groups`).

    Args:
        requests: one row per (request, model) with ``request_id``, ``variant``, ``unit_id``,
            ``labels`` in ranked order and the unit's ``segments`` map (optional), for requests
            every model ranked, sorted by request.
        control: the baseline variant.
        candidates: the other variants.
        segments: the spec's segment names.
        alpha: two-sided level of the intervals and tests (the spec's ``alpha``).
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in requests:
        by_model.setdefault(row["variant"], []).append(row)
    if control not in by_model:
        return []
    groups = segment_groups([r.get("segments") for r in by_model[control]], segments)
    out: list[Row] = []
    for key, index in groups.items():
        # Every model ranked the same requests in the same (request) order: one index fits all.
        subset = {model: [rows[i] for i in index] for model, rows in by_model.items()}
        out += [
            _in_segment(r, key) for r in _ranking_rows(subset, control, candidates, alpha=alpha)
        ]
    return out


def _ranking_rows(
    by_model: Mapping[str, Sequence[Mapping[str, Any]]],
    control: str,
    candidates: Sequence[str],
    *,
    alpha: float,
) -> list[Row]:
    clusters = np.array([r["unit_id"] for r in by_model[control]])
    out: list[Row] = []
    for model, rows in sorted(by_model.items()):
        for name, estimate in evaluate_ranking(
            _labels_matrix(rows), k=K, gain=GAIN, clusters=clusters, alpha=alpha
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
                alpha=alpha,
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


def off_policy_rows(
    rows: Sequence[Mapping[str, Any]], logging: str, target: str, *, alpha: float
) -> list[Row]:
    """IPS, clipped IPS, SNIPS and DR of ``target``'s top-slot click rate, the logging policy's
    own rate, and the relative lift of the DR estimate over it (paired per request), with
    intervals at the two-sided level ``alpha`` (the spec's)."""
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
        alpha=alpha,
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
    logged = mean_estimate(reward, metric=COUNTERFACTUAL_METRIC, clusters=clusters, alpha=alpha)
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
        reward, terms, metric=COUNTERFACTUAL_METRIC, clusters=clusters, alpha=alpha
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


def _ece_interval(
    scores: np.ndarray, labels: np.ndarray, *, alpha: float, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the ECE from a seeded bootstrap of the rows.

    A replicate's ECE is ``sum_b |sum_(i in b) (label_i - score_i)| / n`` over the bins of
    :func:`calibration` (``ECE_BINS`` uniform bins ``(e_b, e_(b+1)]``, the first closed), which
    is its ``sum_b n_b |observed_b - predicted_b| / n``: binned once, summed per replicate by
    ``bincount`` instead of a full :func:`calibration` per replicate (per segment, that was
    most of the asset's time).
    """
    rng = np.random.default_rng(seed)
    index = np.searchsorted(np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1], scores, side="left")
    residual = labels - scores
    replicates = np.empty(ECE_BOOTSTRAP)
    for b in range(ECE_BOOTSTRAP):
        pick = rng.integers(0, scores.size, scores.size)
        gaps = np.bincount(index[pick], weights=residual[pick], minlength=ECE_BINS)
        replicates[b] = np.abs(gaps).sum() / scores.size
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def classifier_rows(
    predictions: Sequence[Mapping[str, Any]], segments: Sequence[str] = (), *, alpha: float
) -> list[Row]:
    """AUC, log loss, Brier, ECE and calibration-in-the-large per model, overall and per segment
    value; the reliability table overall.

    Args:
        predictions: one row per model with ``scores``, ``labels`` and (optional) each row's
            unit ``segments`` map, as lists in the same order.
        segments: the spec's segment names.
        alpha: two-sided level of the intervals (the spec's ``alpha``).
    """
    out: list[Row] = []
    for row in predictions:
        scores = np.asarray(row["scores"], dtype=float)
        labels = np.asarray(row["labels"], dtype=float)
        maps = row.get("segments") or [None] * scores.size
        for key, index in segment_groups(maps, segments).items():
            out += [
                _in_segment(r, key)
                for r in _classifier_rows(
                    row["model"],
                    scores[index],
                    labels[index],
                    reliability=key == OVERALL,
                    alpha=alpha,
                )
            ]
    return out


def _classifier_rows(
    model: str, scores: np.ndarray, labels: np.ndarray, *, reliability: bool, alpha: float
) -> list[Row]:
    out: list[Row] = []
    if scores.size < 2 or labels.min() == labels.max():
        return out
    auc = auc_delong(scores, labels, alpha=alpha)
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
        log_loss(scores, labels, alpha=alpha),
        brier_score(scores, labels, alpha=alpha),
        mean_estimate(scores - labels, metric="calibration-in-the-large", alpha=alpha),
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
    calibrated = calibration(scores, labels, n_bins=ECE_BINS, alpha=alpha)
    low, high = _ece_interval(scores, labels, alpha=alpha)
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
                f"{100 * (1 - alpha):g}% percentile interval from {ECE_BOOTSTRAP} bootstrap "
                f"resamples (seed 0)"
            ),
        }
    )
    for bin_ in calibrated.bins if reliability else ():
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


def classifier_comparison_rows(
    paired: Mapping[str, Any],
    baseline: str,
    candidate: str,
    segments: Sequence[str] = (),
    *,
    alpha: float,
) -> list[Row]:
    """The candidate's AUC against the baseline's on the same outcomes by DeLong's paired test
    (the covariance of the two AUCs counted), overall and per segment value.

    Args:
        paired: ``baseline_scores``, ``candidate_scores``, ``labels`` and (optional) each pair's
            unit ``segments`` map, as aligned lists; ``label_mismatches``: pairs dropped.
        baseline: the control model.
        candidate: the candidate model.
        segments: the spec's segment names.
        alpha: two-sided level of the interval and test (the spec's ``alpha``).
    """
    base = np.asarray(paired.get("baseline_scores") or [], dtype=float)
    cand = np.asarray(paired.get("candidate_scores") or [], dtype=float)
    labels = np.asarray(paired.get("labels") or [], dtype=float)
    mismatches = int(paired.get("label_mismatches") or 0)
    maps = paired.get("segments") or [None] * labels.size
    out: list[Row] = []
    for key, index in segment_groups(maps, segments).items():
        b, c, y = base[index], cand[index], labels[index]
        finite = np.isfinite(b) & np.isfinite(c) & np.isfinite(y)
        b, c, y = b[finite], c[finite], y[finite]
        if min(int((y == 1).sum()), int((y == 0).sum())) < 2:
            continue
        test = delong_test(b, c, y, alpha=alpha)
        dropped = f"; {mismatches} pairs with different labels dropped" if mismatches else ""
        out.append(
            _in_segment(
                {
                    "kind": "classifier_comparison",
                    "model": candidate,
                    "baseline": baseline,
                    "metric": "auc",
                    "value": test.abs_effect,
                    "std_error": test.std_error,
                    "ci_low": test.ci_low,
                    "ci_high": test.ci_high,
                    "p_value": test.p_value,
                    "n": test.n_positive + test.n_negative,
                    "detail": (
                        f"{test.auc_candidate:.4f} against {test.auc_baseline:.4f} on the same "
                        f"outcomes, correlation {test.correlation:.3f}{dropped}"
                    ),
                    "method": test.method + " (DeLong et al. 1988)",
                },
                key,
            )
        )
    return out


def interleaving_rows(
    requests: Sequence[Mapping[str, Any]], baseline: str, candidate: str, *, alpha: float
) -> list[Row]:
    """Team-draft preference of ``candidate`` over ``baseline`` with its sign test, the interval
    at the two-sided level ``alpha`` (the spec's)."""
    if not requests:
        return []
    result = interleaving_test(
        [r["baseline_clicks"] for r in requests],
        [r["candidate_clicks"] for r in requests],
        clusters=np.array([r["unit_id"] for r in requests]),
        alpha=alpha,
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
    reference: Mapping[str, Mapping[str, Sequence[float]]],
    current: Mapping[str, Mapping[str, Sequence[float]]],
) -> list[Row]:
    """PSI of each model's scores and ``feature_*`` columns on the day against the pre-period.

    Args:
        reference: per model, per column (``score`` or a ``feature_*`` name), the pre-period's
            values.
        current: the same for the day.

    Returns:
        One ``drift`` row per model and column present on both sides: ``metric`` is
        ``psi of prediction scores`` or ``psi of <feature column>``, ``detail`` the status.
    """
    out: list[Row] = []
    for model, columns in sorted(current.items()):
        for column, values in sorted(columns.items(), key=lambda item: item[0] != "score"):
            ref = np.asarray(reference.get(model, {}).get(column, []), dtype=float)
            cur = np.asarray(values, dtype=float)
            ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
            if ref.size == 0 or cur.size == 0:
                continue
            result = population_stability_index(ref, cur)
            what = "prediction scores" if column == "score" else column
            out.append(
                {
                    "kind": "drift",
                    "model": model,
                    "metric": f"psi of {what}",
                    "value": result.psi,
                    "n": result.n_current,
                    "detail": result.status,
                    "method": (
                        f"PSI against the pre-period's {result.n_reference} values, "
                        f"{len(result.edges) - 1} quantile bins; moderate from "
                        f"{MODERATE_SHIFT:g}, major from {MAJOR_SHIFT:g}"
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
            if row.get("model") != candidate or row.get("segment", "all") != "all":
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
