"""Model evaluation beside the A/B test (issue 6), on the session's small simulated experiment:
the simulator's known truths lie inside the reported intervals, the parity table sets the
offline, counterfactual and online lifts side by side, the JSON carries them, drift is checked."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from exp_dagster.cli import result_document
from exp_dagster.warehouse.evaluation import read_rows
from exp_dagster.warehouse.queries import read_partition
from tests.conftest import Pipeline


@pytest.fixture(scope="module")
def evaluation(pipeline: Pipeline) -> pd.DataFrame:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        return conn.execute("SELECT * FROM offline_evaluation ORDER BY ALL").df()


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


def test_drift_check_runs_and_finds_the_scores_stable(pipeline: Pipeline) -> None:
    key = dg.AssetCheckKey(dg.AssetKey("offline_evaluation"), "check_score_drift")
    history = pipeline.instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
    # One evaluation per partition (more when another test re-materialises the session's days).
    assert len(history) >= len(pipeline.days)
    evaluations = [record.event.dagster_event.asset_check_evaluation_data for record in history]
    assert all(e.passed and e.severity == dg.AssetCheckSeverity.WARN for e in evaluations)
    drift = _drift_rows(pipeline)
    assert len(drift) == 2 * len(pipeline.days)
    assert (drift["value"] < 0.1).all() and set(drift["detail"]) == {"stable"}


def _drift_rows(pipeline: Pipeline) -> pd.DataFrame:
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        return conn.execute("SELECT * FROM offline_evaluation WHERE kind = 'drift'").df()
