"""The table rows of :mod:`exp_dagster.offline` on simulated arrays, against independent
references: per-segment NDCG and AUC against scikit-learn, DeLong's paired comparison against a
brute-force covariance and a bootstrap, feature PSI against a hand computation and the closed
form of the planted shift; and the staging of a prediction log's optional feature columns."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.metrics import ndcg_score, roc_auc_score

from exp_dagster.evaluation import (
    MODERATE_SHIFT,
    auc_delong,
    calibration,
    evaluate_ranking,
    interleaving_test,
    mean_estimate,
)
from exp_dagster.offline import (
    COUNTERFACTUAL_METRIC,
    ECE_BOOTSTRAP,
    MIN_SEGMENT_ROWS,
    OVERALL,
    classifier_comparison_rows,
    classifier_rows,
    drift_rows,
    interleaving_rows,
    off_policy_rows,
    ranking_rows,
    segment_groups,
)
from exp_dagster.simulate_models import FEATURE_SHIFT, feature_psi
from exp_dagster.warehouse import evaluation as sql
from exp_dagster.warehouse.landing import LogSource

SEGMENTS = ("platform", "is_new_user")
ALPHA = 0.05  # the catalog specs' level; the pipeline passes each spec's own
NDCG = "ndcg@10 (exponential gain)"


def _segments(rng: np.random.Generator, n: int) -> list[dict[str, str] | None]:
    """Per row a segments map; about one row in ten has none (a unit not exposed yet)."""
    platform = rng.choice(["ios", "android", "web"], size=n, p=[0.5, 0.35, 0.15])
    new = rng.random(n) < 0.3
    return [
        None if rng.random() < 0.1 else {"platform": str(p), "is_new_user": str(bool(b)).lower()}
        for p, b in zip(platform, new, strict=True)
    ]


def _in(row_segments: list[dict[str, str] | None], segment: str, value: str) -> np.ndarray:
    return np.array([(m or {}).get(segment) == value for m in row_segments])


def test_segment_groups_keep_overall_and_drop_small_values() -> None:
    maps: list[dict[str, str] | None] = [{"platform": "ios"}] * MIN_SEGMENT_ROWS
    maps += [{"platform": "web"}] * (MIN_SEGMENT_ROWS - 1) + [None, {"country": "DE"}]
    groups = segment_groups(maps, ["platform"])
    assert list(groups) == [OVERALL, ("platform", "ios")]
    assert groups[OVERALL].size == len(maps)
    np.testing.assert_array_equal(groups[("platform", "ios")], np.arange(MIN_SEGMENT_ROWS))


@pytest.fixture
def requests(rng: np.random.Generator) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """600 requests ranked by two models (candidate better), each with its unit's segments."""
    n, m = 600, 10
    relevance = rng.standard_normal((n, m))
    labels = np.where(rng.random((n, m)) < 1 / (1 + np.exp(-(relevance - 1.5))), 1, 0)
    labels = labels * (1 + (rng.random((n, m)) < 0.4))
    control = np.take_along_axis(
        labels, np.argsort(-(relevance + 1.2 * rng.standard_normal((n, m))), axis=1), axis=1
    )
    candidate = np.take_along_axis(
        labels, np.argsort(-(relevance + 0.4 * rng.standard_normal((n, m))), axis=1), axis=1
    )
    maps = _segments(rng, n)
    units = [f"u{i}" for i in rng.integers(0, 250, size=n)]
    rows = [
        {"request_id": f"r{i}", "variant": variant, "unit_id": units[i], "labels": list(ranked[i])}
        | {"segments": maps[i]}
        for i in range(n)
        for variant, ranked in (("control", control), ("treatment", candidate))
    ]
    return rows, control, candidate


def _sklearn_ndcg(labels: np.ndarray) -> float:
    """scikit-learn's NDCG@10 of labels already in ranked order, with the gain 2**label - 1,
    over requests with a relevant item (the library leaves the others undefined)."""
    labels = labels[labels.max(axis=1) > 0]
    order = np.tile(np.arange(labels.shape[1], 0, -1), (labels.shape[0], 1))
    return float(ndcg_score(2.0**labels - 1.0, order, k=10))


def test_segment_ndcg_equals_sklearn_on_the_segment_requests(
    requests: tuple[list[dict[str, Any]], np.ndarray, np.ndarray],
) -> None:
    rows, control, candidate = requests
    out = ranking_rows(rows, "control", ["treatment"], SEGMENTS, alpha=ALPHA)
    maps = [r["segments"] for r in rows if r["variant"] == "control"]
    found = {
        (r["segment"], r["segment_value"], r["model"]): r
        for r in out
        if r["kind"] == "ranking" and r["metric"] == NDCG
    }
    assert {(s, v) for s, v, _ in found} == {
        OVERALL,
        ("platform", "ios"),
        ("platform", "android"),
        ("platform", "web"),
        ("is_new_user", "true"),
        ("is_new_user", "false"),
    }
    for (segment, value, model), row in found.items():
        pick = np.ones(len(maps), dtype=bool) if segment == "all" else _in(maps, segment, value)
        labels = (control if model == "control" else candidate)[pick]
        assert row["value"] == pytest.approx(_sklearn_ndcg(labels), rel=1e-12), (segment, value)
        assert row["ci_low"] < row["value"] < row["ci_high"]
    web = _in(maps, "platform", "web")
    comparison = next(
        r
        for r in out
        if r["kind"] == "ranking_comparison"
        and r["metric"] == NDCG
        and (r["segment"], r["segment_value"]) == ("platform", "web")
    )
    expected = _sklearn_ndcg(candidate[web]) - _sklearn_ndcg(control[web])
    # Paired on requests with a relevant item, which are the same for both models.
    assert comparison["value"] == pytest.approx(expected, rel=1e-9)
    assert comparison["n"] == int((control[web].max(axis=1) > 0).sum())


@pytest.fixture
def predictions(rng: np.random.Generator) -> dict[str, Any]:
    """800 labelled outcomes scored by two correlated models (the candidate sharper)."""
    n = 800
    signal = rng.standard_normal(n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(signal - 0.8)))).astype(float)
    shared = 0.5 * rng.standard_normal(n)
    base = 1 / (1 + np.exp(-(signal + shared + 0.9 * rng.standard_normal(n) - 0.8)))
    cand = 1 / (1 + np.exp(-(signal + shared + 0.3 * rng.standard_normal(n) - 0.8)))
    return {"labels": labels, "baseline": base, "candidate": cand, "segments": _segments(rng, n)}


def test_segment_classifier_metrics_equal_sklearn(predictions: dict[str, Any]) -> None:
    labels, scores, maps = predictions["labels"], predictions["candidate"], predictions["segments"]
    out = classifier_rows(
        [{"model": "treatment", "scores": scores, "labels": labels, "segments": maps}],
        SEGMENTS,
        alpha=ALPHA,
    )
    by_key = {(r["segment"], r["segment_value"], r["kind"], r["metric"]): r for r in out}
    ios = _in(maps, "platform", "ios")
    auc = by_key[("platform", "ios", "classifier", "auc")]
    assert auc["value"] == pytest.approx(roc_auc_score(labels[ios], scores[ios]), rel=1e-12)
    assert auc["n"] == int(ios.sum())
    loss = by_key[("platform", "ios", "classifier", "log loss")]
    assert loss["value"] == pytest.approx(sklearn_log_loss(labels[ios], scores[ios]), rel=1e-9)
    overall = by_key[("all", "all", "classifier", "auc")]
    assert overall["value"] == pytest.approx(roc_auc_score(labels, scores), rel=1e-12)
    # The reliability table is overall only.
    assert {(r["segment"]) for r in out if r["kind"] == "reliability"} == {"all"}


def _brute_force_covariance(base: np.ndarray, cand: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """DeLong et al. (1988) from the O(m n) pair kernel: the structural components of both AUCs
    and their covariance over positives plus over negatives (2 x 2: baseline, candidate)."""

    def components(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = scores[labels == 1], scores[labels == 0]
        kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return kernel.mean(axis=1), kernel.mean(axis=0)

    b10, b01 = components(base)
    c10, c01 = components(cand)
    s10 = np.cov(np.vstack([b10, c10])) / b10.size
    s01 = np.cov(np.vstack([b01, c01])) / b01.size
    return s10 + s01


def test_paired_auc_row_against_brute_force_sklearn_and_bootstrap(
    predictions: dict[str, Any], rng: np.random.Generator
) -> None:
    labels, base, cand = predictions["labels"], predictions["baseline"], predictions["candidate"]
    paired = {
        "baseline_scores": list(base),
        "candidate_scores": list(cand),
        "labels": list(labels),
        "segments": predictions["segments"],
        "label_mismatches": 3,
    }
    out = classifier_comparison_rows(paired, "control", "treatment", SEGMENTS, alpha=ALPHA)
    overall = next(r for r in out if r["segment"] == "all")
    assert overall["kind"] == "classifier_comparison" and overall["baseline"] == "control"
    expected = roc_auc_score(labels, cand) - roc_auc_score(labels, base)
    assert overall["value"] == pytest.approx(expected, rel=1e-12)
    covariance = _brute_force_covariance(base, cand, labels)
    se = math.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    assert overall["std_error"] == pytest.approx(se, rel=1e-10)
    assert overall["ci_low"] == pytest.approx(expected - 1.959964 * se, rel=1e-6)
    assert "3 pairs with different labels dropped" in overall["detail"]
    # A bootstrap of the outcomes (both models resampled together) agrees with DeLong's SE.
    replicates = []
    for _ in range(400):
        pick = rng.integers(0, labels.size, labels.size)
        replicates.append(
            roc_auc_score(labels[pick], cand[pick]) - roc_auc_score(labels[pick], base[pick])
        )
    assert float(np.std(replicates, ddof=1)) == pytest.approx(se, rel=0.15)
    # Pairing matters: the correlated AUCs make the SE well below the one ignoring it.
    assert overall["std_error"] < 0.8 * math.sqrt(covariance[0, 0] + covariance[1, 1])
    web = _in(predictions["segments"], "platform", "web")
    row = next(r for r in out if (r["segment"], r["segment_value"]) == ("platform", "web"))
    assert row["value"] == pytest.approx(
        roc_auc_score(labels[web], cand[web]) - roc_auc_score(labels[web], base[web]), rel=1e-12
    )


@pytest.fixture
def logged(rng: np.random.Generator) -> list[dict[str, Any]]:
    """2,000 first slots of a logging policy, with the target policy's probability and score."""
    n = 2000
    logged_score = rng.random(n)
    units = rng.integers(0, 700, size=n)
    reward = (rng.random(n) < 0.05 + 0.3 * logged_score).astype(float)
    return [
        {
            "reward": reward[i],
            "logging_propensity": p,
            "target_probability": q,
            "unit_id": f"u{units[i]}",
            "logged_score": logged_score[i],
            "target_item_score": t,
        }
        for i, (p, q, t) in enumerate(
            zip(0.2 + 0.6 * rng.random(n), rng.random(n), rng.random(n), strict=True)
        )
    ]


@pytest.fixture
def clicks(rng: np.random.Generator) -> list[dict[str, Any]]:
    """1,500 interleaved requests, the candidate's team clicked a little more often."""
    n = 1500
    return [
        {"baseline_clicks": int(b), "candidate_clicks": int(c), "unit_id": f"u{u}"}
        for b, c, u in zip(
            rng.poisson(0.5, n), rng.poisson(0.6, n), rng.integers(0, 500, n), strict=True
        )
    ]


def test_every_interval_is_at_the_level_asked_for(
    requests: tuple[list[dict[str, Any]], np.ndarray, np.ndarray],
    predictions: dict[str, Any],
    logged: list[dict[str, Any]],
    clicks: list[dict[str, Any]],
) -> None:
    """A spec with alpha 0.01 gets 99% model-evaluation intervals, not 95% ones: every row
    keeps its value and widens its interval, and the rows equal the library's 99% intervals."""
    labels, scores = predictions["labels"], predictions["candidate"]

    def every_row(alpha: float) -> dict[tuple[str, ...], dict[str, Any]]:
        paired = {
            "baseline_scores": list(predictions["baseline"]),
            "candidate_scores": list(scores),
            "labels": list(labels),
            "segments": predictions["segments"],
        }
        model = {"model": "treatment", "scores": scores, "labels": labels}
        rows = (
            ranking_rows(requests[0], "control", ["treatment"], SEGMENTS, alpha=alpha)
            + off_policy_rows(logged, "control", "treatment", alpha=alpha)
            + classifier_rows(
                [{**model, "segments": predictions["segments"]}], SEGMENTS, alpha=alpha
            )
            + classifier_comparison_rows(paired, "control", "treatment", SEGMENTS, alpha=alpha)
            + interleaving_rows(clicks, "control", "treatment", alpha=alpha)
        )
        keyed = {
            (
                r["kind"],
                r["model"],
                r["metric"],
                r.get("segment", "all"),
                r.get("segment_value", "all"),
            ): r
            for r in rows
        }
        assert len(keyed) == len(rows)
        return keyed

    strict, usual = every_row(0.01), every_row(0.05)
    assert strict.keys() == usual.keys()
    widened = set()
    for key, row in strict.items():
        other = usual[key]
        assert row["value"] == other["value"], key
        if row.get("ci_low") is None:
            continue
        assert row["ci_low"] <= other["ci_low"] and other["ci_high"] <= row["ci_high"], key
        if other["ci_high"] > other["ci_low"]:  # (recall@10 of 10 items is 1, interval [1, 1])
            assert row["ci_high"] - row["ci_low"] > other["ci_high"] - other["ci_low"], key
            widened.add(key[0])
    assert widened == {
        "ranking",
        "ranking_comparison",
        "off_policy",
        "classifier",
        "classifier_comparison",
        "reliability",
        "interleaving",
    }
    # A row of each kind of interval is the library's own 99% interval.
    auc = auc_delong(scores, labels, alpha=0.01)
    row = strict[("classifier", "treatment", "auc", "all", "all")]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((auc.ci_low, auc.ci_high), rel=1e-12)
    ndcg = evaluate_ranking(
        [np.asarray(r) for r in requests[2]],
        k=10,
        gain="exponential",
        clusters=np.array([r["unit_id"] for r in requests[0] if r["variant"] == "control"]),
        alpha=0.01,
    )["ndcg@10 (exponential gain)"]
    row = strict[("ranking", "treatment", NDCG, "all", "all")]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ndcg.ci_low, ndcg.ci_high), rel=1e-12)
    rate = mean_estimate(
        np.array([r["reward"] for r in logged]),
        metric=COUNTERFACTUAL_METRIC,
        clusters=np.array([r["unit_id"] for r in logged]),
        alpha=0.01,
    )
    row = strict[("off_policy", "control", f"{COUNTERFACTUAL_METRIC} (logged)", "all", "all")]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((rate.ci_low, rate.ci_high), rel=1e-12)
    preference = interleaving_test(
        [r["baseline_clicks"] for r in clicks],
        [r["candidate_clicks"] for r in clicks],
        clusters=np.array([r["unit_id"] for r in clicks]),
        alpha=0.01,
    )
    row = strict[("interleaving", "treatment", "preference", "all", "all")]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (preference.ci_low, preference.ci_high), rel=1e-12
    )


def _hand_psi(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> float:
    """PSI from first principles: deciles of the reference, shares, sum of (a - e) ln(a / e)."""
    inner = np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1], method="inverted_cdf")
    expected = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=n_bins)
    actual = np.bincount(np.searchsorted(inner, current, side="right"), minlength=n_bins)
    e, a = expected / expected.sum(), actual / actual.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def test_drift_flags_the_planted_feature_shift_and_not_the_others(
    rng: np.random.Generator,
) -> None:
    n_ref, n_cur = 30_000, 10_000

    def day(shift: float, n: int) -> dict[str, list[float]]:
        return {
            "score": list(1 / (1 + np.exp(-rng.standard_normal(n)))),
            "feature_activity": list(rng.standard_normal(n)),
            # A shift of FEATURE_SHIFT standard deviations of the log, as the simulator plants.
            "feature_session_minutes": list(np.exp(2.5 + 0.6 * (rng.standard_normal(n) + shift))),
        }

    reference = {"control": day(0.0, n_ref)}
    current = {"control": day(FEATURE_SHIFT, n_cur)}
    current["control"]["feature_activity"] += [math.nan]  # non-finite values are dropped
    rows = {r["metric"]: r for r in drift_rows(reference, current)}
    assert list(rows) == [
        "psi of prediction scores",
        "psi of feature_activity",
        "psi of feature_session_minutes",
    ]
    shifted = rows["psi of feature_session_minutes"]
    assert shifted["value"] == pytest.approx(
        _hand_psi(
            np.asarray(reference["control"]["feature_session_minutes"]),
            np.asarray(current["control"]["feature_session_minutes"]),
        ),
        rel=1e-9,
    )
    assert shifted["value"] >= MODERATE_SHIFT and shifted["detail"] == "major"
    # The closed form of the planted shift (simulate_models.feature_psi) up to sampling noise.
    assert shifted["value"] == pytest.approx(feature_psi(FEATURE_SHIFT), abs=0.03)
    for metric in ("psi of prediction scores", "psi of feature_activity"):
        assert rows[metric]["value"] < MODERATE_SHIFT and rows[metric]["detail"] == "stable"
    assert rows["psi of feature_activity"]["n"] == n_cur


def test_feature_psi_closed_form_matches_a_large_sample(rng: np.random.Generator) -> None:
    reference = rng.standard_normal(400_000)
    current = rng.standard_normal(400_000) + FEATURE_SHIFT
    assert feature_psi(FEATURE_SHIFT) == pytest.approx(_hand_psi(reference, current), abs=0.005)
    assert feature_psi(0.0) == pytest.approx(0.0, abs=1e-12)


def test_ece_interval_is_the_bootstrap_of_calibration(predictions: dict[str, Any]) -> None:
    """The ECE row's interval: the same seeded resamples as a full calibration() per replicate."""
    labels, scores = predictions["labels"], predictions["candidate"]
    row = next(
        r
        for r in classifier_rows([{"model": "m", "scores": scores, "labels": labels}], alpha=0.01)
        if r["metric"] == "expected calibration error"
    )
    assert row["value"] == pytest.approx(calibration(scores, labels).expected_calibration_error)
    rng = np.random.default_rng(0)  # the row's documented seed
    replicates = []
    for _ in range(ECE_BOOTSTRAP):
        pick = rng.integers(0, labels.size, labels.size)
        replicates.append(calibration(scores[pick], labels[pick]).expected_calibration_error)
    low, high = np.quantile(replicates, [0.005, 0.995])  # the level asked for: 99%
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert "99% percentile interval" in row["method"]
    assert row["ci_low"] < row["value"] < row["ci_high"]


def test_feature_columns_are_optional_and_typed(tmp_path: Path) -> None:
    """Only ``feature_*`` columns every file of the day has are staged; a malformed value is
    NULL and left out of the drift sample, and logs without features give scores only."""
    day = dt.date(2026, 10, 1)
    folder = tmp_path / "predictions" / f"date={day.isoformat()}"
    folder.mkdir(parents=True)
    base = {"unit_id": ["u1", "u2"], "model": ["m", "m"], "score": [0.2, 0.7], "label": [0, 1]}
    pq.write_table(
        pa.table({**base, "feature_a": ["1.5", "oops"], "feature_b": [1.0, 2.0]}),
        folder / "part-0.parquet",
    )
    pq.write_table(pa.table({**base, "feature_a": ["2.5", "3.5"]}), folder / "part-1.parquet")
    source = LogSource("predictions", tmp_path / "predictions")
    with duckdb.connect() as conn:
        assert sql.stage_model_logs(conn, source, day) == ("predictions_logs", 4)
        found = sql.distributions(conn)
    assert set(found["m"]) == {"score", "feature_a"}
    assert sorted(found["m"]["feature_a"]) == [1.5, 2.5, 3.5]
    pq.write_table(pa.table(base), folder / "part-1.parquet")
    (folder / "part-0.parquet").unlink()
    with duckdb.connect() as conn:
        sql.stage_model_logs(conn, source, day)
        assert set(sql.distributions(conn)["m"]) == {"score"}
