"""Model evaluation beside the A/B test (issue 6), on the session's small simulated experiment:
the simulator's known truths lie inside the reported intervals, the parity table sets the
offline, counterfactual and online lifts side by side, the JSON carries them, per-segment
metrics match scikit-learn on the raw logs, and the planted feature shift is flagged."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from exp_dagster.cli import _print_model_evaluation, result_document
from exp_dagster.evaluation import MODERATE_SHIFT, auc_delong
from exp_dagster.partitions import experiment_day_key
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.warehouse.evaluation import read_rows
from exp_dagster.warehouse.queries import read_partition
from tests.conftest import SMALL, Pipeline, write_spec


@pytest.fixture(scope="module")
def everything(pipeline: Pipeline) -> pd.DataFrame:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        return conn.execute("SELECT * FROM offline_evaluation ORDER BY ALL").df()


@pytest.fixture(scope="module")
def evaluation(everything: pd.DataFrame) -> pd.DataFrame:
    """The overall rows (segment 'all')."""
    return everything[everything["segment"] == "all"]


def _unit_segments(pipeline: Pipeline, day: dt.date) -> pd.DataFrame:
    """Each unit's segments at first exposure up to ``day``, read independently of the asset."""
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        return conn.execute(
            "SELECT unit_id, segments FROM exposures WHERE experiment_id = ? "
            "AND exposure_date <= ? QUALIFY row_number() OVER "
            "(PARTITION BY unit_id ORDER BY first_exposed_at) = 1",
            [pipeline.experiment.spec.id, day],
        ).df()


def _log(pipeline: Pipeline, kind: str, day: dt.date) -> pd.DataFrame:
    return pd.read_parquet(pipeline.landing / kind / f"date={day.isoformat()}")


def _covered(frame: pd.DataFrame, truth: float) -> pd.Series:
    return (frame["ci_low"] <= truth) & (truth <= frame["ci_high"])


def test_every_day_of_the_window_is_evaluated(pipeline: Pipeline, evaluation: pd.DataFrame) -> None:
    days = sorted({d.date() for d in evaluation["as_of_date"]})
    assert days == pipeline.days
    kinds = set(evaluation["kind"])
    assert kinds == {
        "ranking",
        "ranking_comparison",
        "off_policy",
        "classifier",
        "classifier_comparison",
        "reliability",
        "interleaving",
        "drift",
    }


def test_known_truths_lie_inside_the_intervals(
    pipeline: Pipeline, evaluation: pd.DataFrame
) -> None:
    truth = pipeline.truth.model_evaluation
    ndcg = evaluation[
        (evaluation["kind"] == "ranking_comparison")
        & (evaluation["metric"] == "ndcg@10 (exponential gain)")
    ]
    dr = evaluation[evaluation["metric"] == "top-slot click rate (doubly robust)"]
    snips = evaluation[evaluation["metric"] == "top-slot click rate (snips)"]
    ece = evaluation[
        (evaluation["metric"] == "expected calibration error")
        & (evaluation["model"] == "treatment")
    ]
    in_the_large = evaluation[
        (evaluation["metric"] == "calibration-in-the-large") & (evaluation["model"] == "treatment")
    ]
    n_days = len(pipeline.days)
    for frame, key in (
        (ndcg, "ndcg@10_difference_treatment"),
        (dr, "top_slot_click_rate_treatment"),
        (snips, "top_slot_click_rate_treatment"),
        (ece, "ece_treatment"),
        (in_the_large, "calibration_in_the_large_treatment"),
    ):
        assert len(frame) == n_days, key
        # 95% intervals, one per day: all days but at most one must cover the truth.
        assert _covered(frame, truth[key]).sum() >= n_days - 1, (key, truth[key], frame)
    # The candidate really ranks better and the truths are not trivially inside wide intervals.
    assert truth["ndcg@10_difference_treatment"] > 0.03
    assert (ndcg["ci_high"] - ndcg["ci_low"]).max() < 0.1


def test_parity_table_has_the_three_lifts_and_the_decision_mentions_them(
    pipeline: Pipeline,
) -> None:
    day = pipeline.days[-1]
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        parity = read_rows(conn, "offline_online_parity", pipeline.experiment.spec.id, day)
        decision = read_partition(conn, "decision", pipeline.experiment.spec.id, day)[0]
    by_evidence = {row["evidence"]: row for row in parity}
    assert set(by_evidence) == {"offline ranking", "counterfactual", "interleaving", "online A/B"}
    for row in by_evidence.values():
        assert row["ci_low"] <= row["lift"] <= row["ci_high"]
    assert by_evidence["online A/B"]["metric"] == pipeline.experiment.spec.metrics.primary
    offline = [r for r in decision["reasons"] if r.startswith("Offline ranking ndcg@10")]
    assert len(offline) == 1 and "the online result decides" in offline[0]


def test_json_document_carries_the_model_evaluation(pipeline: Pipeline) -> None:
    day = pipeline.days[-1]
    experiment_id = pipeline.experiment.spec.id
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        rows = read_partition(conn, "results", experiment_id, day)
        evaluation = read_rows(conn, "offline_evaluation", experiment_id, day)
        parity = read_rows(conn, "offline_online_parity", experiment_id, day)
    document = result_document(experiment_id, day, "v", {}, rows, evaluation, parity)
    section = document["model_evaluation"]
    assert set(section) == {"parity", "offline"}
    assert {r["evidence"] for r in section["parity"]} >= {"offline ranking", "online A/B"}
    assert set(section["offline"][0]) >= {"kind", "model", "metric", "value", "ci_low", "ci_high"}
    assert "experiment_id" not in section["offline"][0]


def test_drift_check_flags_the_planted_feature_shift_only(
    pipeline: Pipeline, evaluation: pd.DataFrame
) -> None:
    """The simulator shifts feature_session_minutes on window days and nothing else: the WARN
    check fails on that feature every day and never names the scores or feature_activity."""
    key = dg.AssetCheckKey(dg.AssetKey("offline_evaluation"), "check_score_drift")
    history = pipeline.instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
    # One evaluation per partition (more when another test re-materialises the session's days).
    assert len(history) >= len(pipeline.days)
    evaluations = [record.event.dagster_event.asset_check_evaluation_data for record in history]
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in evaluations)
    assert not any(e.passed for e in evaluations)
    for e in evaluations:
        description = e.description or ""
        assert "feature_session_minutes shifted" in description
        assert "feature_activity" not in description and "score" not in description
    drift = evaluation[evaluation["kind"] == "drift"]
    n_days, truth = len(pipeline.days), pipeline.truth.model_evaluation
    by_metric = {metric: frame for metric, frame in drift.groupby("metric")}
    assert set(by_metric) == {
        "psi of prediction scores",
        "psi of feature_activity",
        "psi of feature_session_minutes",
    }
    for frame in by_metric.values():
        assert len(frame) == 2 * n_days  # both models, every day
    shifted = by_metric["psi of feature_session_minutes"]
    assert (shifted["value"] >= MODERATE_SHIFT).all() and set(shifted["detail"]) == {"major"}
    # Sampling noise of a 10-bin PSI on 2,000 against 6,000 values is a few hundredths.
    assert (shifted["value"] - truth["psi_feature_session_minutes"]).abs().max() < 0.08
    for metric in ("psi of prediction scores", "psi of feature_activity"):
        stable = by_metric[metric]
        assert (stable["value"] < MODERATE_SHIFT).all() and set(stable["detail"]) == {"stable"}


def test_segment_ndcg_matches_sklearn_on_the_raw_logs(
    pipeline: Pipeline, everything: pd.DataFrame
) -> None:
    """Every per-segment NDCG@10 row equals scikit-learn's ndcg_score (gain 2**label - 1) over
    that segment's requests with a positive label, from the landing logs and the exposures."""
    day = pipeline.days[-1]
    log = _log(pipeline, "ranking", day)
    segments = _unit_segments(pipeline, day)
    unit_value = {
        name: {
            u: m.get(name) for u, m in zip(segments["unit_id"], segments["segments"], strict=True)
        }
        for name in pipeline.experiment.spec.segments
    }
    rows = everything[
        (everything["as_of_date"].dt.date == day)
        & (everything["kind"] == "ranking")
        & (everything["metric"] == "ndcg@10 (exponential gain)")
        & (everything["segment"] != "all")
    ]
    assert set(rows["segment"]) == set(pipeline.experiment.spec.segments)
    checked = 0
    for row in rows.itertuples():
        model_log = log[log["variant"] == row.model].sort_values(["request_id", "position"])
        in_segment = model_log["unit_id"].map(unit_value[row.segment]) == row.segment_value
        labels = np.stack(
            model_log[in_segment].groupby("request_id")["label"].apply(np.asarray).to_list()
        )
        labels = labels[labels.max(axis=1) > 0]  # NDCG is undefined without a relevant item
        ranked_scores = np.tile(np.arange(labels.shape[1], 0, -1), (labels.shape[0], 1))
        expected = ndcg_score(2.0**labels - 1.0, ranked_scores, k=10)
        assert row.value == pytest.approx(expected, rel=1e-9), (row.segment, row.segment_value)
        assert row.n == labels.shape[0] and row.ci_low < row.value < row.ci_high
        checked += 1
    assert checked >= 2 * len(pipeline.experiment.spec.segments)  # two models, each segment


def test_paired_auc_comparison_against_sklearn_and_the_truth(
    pipeline: Pipeline, evaluation: pd.DataFrame
) -> None:
    """DeLong's paired row: its AUCs are scikit-learn's on the raw logs, and the true AUC
    difference lies inside the 95% interval on all days but at most one."""
    truth = pipeline.truth.model_evaluation
    comparison = evaluation[evaluation["kind"] == "classifier_comparison"]
    assert len(comparison) == len(pipeline.days)
    day = pipeline.days[0]
    log = _log(pipeline, "predictions", day)
    auc = {m: roc_auc_score(f["label"], f["score"]) for m, f in log.groupby("model")}
    first = comparison[comparison["as_of_date"].dt.date == day].iloc[0]
    assert first["value"] == pytest.approx(auc["treatment"] - auc["control"], abs=1e-12)
    assert f"{auc['treatment']:.4f} against {auc['control']:.4f}" in first["detail"]
    difference = truth["auc_treatment"] - truth["auc_control"]
    assert _covered(comparison, difference).sum() >= len(pipeline.days) - 1, comparison
    # Paired: narrower than the two AUCs' own intervals combined as if independent.
    single = evaluation[(evaluation["metric"] == "auc") & (evaluation["kind"] == "classifier")]
    independent = np.sqrt(single.groupby("as_of_date")["std_error"].agg(lambda s: (s**2).sum()))
    paired = comparison.set_index("as_of_date")["std_error"]
    assert (paired < independent.loc[paired.index]).all()


def test_offline_intervals_are_at_the_spec_level(pipeline: Pipeline, tmp_path: Path) -> None:
    """The same day re-evaluated under the same spec with alpha 0.01 (on a copy of the
    warehouse): every value stays, every interval widens to 99%, the AUC's is DeLong's 99%
    interval on the raw logs, and the ECE row names its 99% level."""
    day = pipeline.days[-1]
    experiment_id = pipeline.experiment.spec.id
    assert pipeline.experiment.spec.alpha == 0.05
    database = tmp_path / "warehouse.duckdb"
    shutil.copyfile(pipeline.database, database)
    write_spec(tmp_path / "catalog", SMALL, alpha=0.01)
    resources = {
        **pipeline.resources,
        "warehouse": Warehouse(database=str(database)),
        "catalog": Catalog(catalog_dir=str(tmp_path / "catalog")),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("experiment", [experiment_id])
        result = dg.materialize(
            [pipeline.defs.get_assets_def("offline_evaluation")],
            partition_key=str(experiment_day_key(experiment_id, day)),
            instance=instance,
            resources=resources,
        )
    assert result.success
    preview = result.asset_materializations_for_node("offline_evaluation")[0].metadata["preview"]
    assert "99% CI" in str(preview.value)

    def rows(path: Path) -> dict[tuple[str, ...], dict[str, object]]:
        with duckdb.connect(str(path), read_only=True) as conn:
            found = read_rows(conn, "offline_evaluation", experiment_id, day)
        return {
            (r["kind"], r["model"], r["metric"], r["segment"], r["segment_value"]): r for r in found
        }

    strict, usual = rows(database), rows(pipeline.database)
    assert strict.keys() == usual.keys() and len(strict) > 50
    widened = 0
    for key, row in strict.items():
        other = usual[key]
        assert row["value"] == pytest.approx(other["value"], rel=1e-12, nan_ok=True), key
        if row["ci_low"] is None or not other["ci_high"] > other["ci_low"]:
            continue
        assert row["ci_high"] - row["ci_low"] > other["ci_high"] - other["ci_low"], key
        widened += 1
    assert widened > 50
    log = _log(pipeline, "predictions", day)
    treatment = log[log["model"] == "treatment"]
    auc = auc_delong(treatment["score"], treatment["label"], alpha=0.01)
    row = strict[("classifier", "treatment", "auc", "all", "all")]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((auc.ci_low, auc.ci_high), rel=1e-9)
    ece = strict[("classifier", "treatment", "expected calibration error", "all", "all")]
    assert "99% percentile interval" in str(ece["method"])


def test_terminal_states_the_spec_level(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    day = pipeline.days[-1]
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        evaluation = read_rows(conn, "offline_evaluation", pipeline.experiment.spec.id, day)
        parity = read_rows(conn, "offline_online_parity", pipeline.experiment.spec.id, day)
    _print_model_evaluation(evaluation, parity, alpha=0.01)
    assert (
        "Model evaluation beside the A/B test (relative lifts, 99% CIs):" in capsys.readouterr().out
    )
