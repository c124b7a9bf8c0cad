"""A rollout that was not randomised (the spec's ``did`` block) through ``exp-dagster analyze``
(issue 21): the panel the engine sums (``did_cluster_days``) equals the brute-force per-cluster
sums of the logs; the difference in differences and the event study (``did_effects``) equal a
statsmodels OLS of the unit-days with CR1 errors clustered by market; with parallel
trends the interval covers the true effect and the decision ships; with diverging trends the
pre-trend check flags it, the decision says why it does not ship, and the report shows it.

The logs are drawn here: ``MARKETS`` markets of ``UNITS`` users each, the first ``TREATED``
rolled out on ``ROLLOUT``; each day a user is exposed with probability 0.8 and logs one
``watch_seconds`` event whose value is a market level (higher in the treated markets), a day
shock, a market × day shock, noise, the effect after the rollout in the treated markets and,
with ``trend_gap``, an extra slope per day of the treated markets. ``NO_MARKET`` more users a day
log exposures without a market: they are in no cluster, counted and left out of the panel (not in
the returned unit-days).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
import yaml

from tests.integration.analyze_run import analyze_json

START = dt.date(2026, 10, 1)
DAYS = 8
ROLLOUT = dt.date(2026, 10, 5)
MARKETS = 20
TREATED = 8
UNITS = 25
EFFECT = 3.0
NO_MARKET = 3


def _simulate(root: Path, *, trend_gap: float, seed: int) -> pd.DataFrame:
    """Write the exposure and event logs (CSV, one date= folder per day); return the unit-days."""
    rng = np.random.default_rng(seed)
    markets = [f"m{g:02d}" for g in range(MARKETS)]
    treated = np.arange(MARKETS) < TREATED
    level = 100.0 + rng.normal(0.0, 4.0, MARKETS) + 6.0 * treated
    day_shock = rng.normal(0.0, 2.0, DAYS)
    cell_shock = rng.normal(0.0, 1.0, (MARKETS, DAYS))
    rows = []
    for t in range(DAYS):
        day = START + dt.timedelta(days=t)
        post = day >= ROLLOUT
        for g, market in enumerate(markets):
            for u in range(UNITS):
                if rng.random() > 0.8:
                    continue
                y = (
                    level[g]
                    + day_shock[t]
                    + cell_shock[g, t]
                    + trend_gap * treated[g] * t
                    + EFFECT * treated[g] * post
                    + rng.normal(0.0, 5.0)
                )
                rows.append(
                    {
                        "day": day,
                        "unit_id": f"{market}-u{u:03d}",
                        "market": market,
                        "treated": bool(treated[g]),
                        "variant": "treatment" if treated[g] and post else "control",
                        "minute": int(rng.integers(0, 600)),
                        "y": round(float(y), 3),
                    }
                )
    data = pd.DataFrame(rows)
    # Users whose exposure rows carry no market: in no cluster, so not in the panel.
    without_market = pd.DataFrame(
        [
            {
                "day": START + dt.timedelta(days=t),
                "unit_id": f"nomarket-u{u:03d}",
                "market": None,
                "treated": False,
                "variant": "control",
                "minute": 60 * u,
                "y": 100.0,
            }
            for t in range(DAYS)
            for u in range(NO_MARKET)
        ]
    )
    for day, part in pd.concat([data, without_market]).groupby("day"):
        stamp = pd.Timestamp(day) + pd.to_timedelta(part["minute"], unit="min")
        folder = f"date={day.isoformat()}"
        (root / "exposures" / folder).mkdir(parents=True)
        (root / "events" / folder).mkdir(parents=True)
        pd.DataFrame(
            {
                "experiment_id": "did_test",
                "unit_id": part["unit_id"],
                "variant": part["variant"],
                "exposed_at": stamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "market": part["market"],
            }
        ).to_csv(root / "exposures" / folder / "part-0.csv", index=False)
        pd.DataFrame(
            {
                "unit_id": part["unit_id"],
                "event_time": (stamp + pd.Timedelta(minutes=30)).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "event": "watch_seconds",
                "value": part["y"],
            }
        ).to_csv(root / "events" / folder / "part-0.csv", index=False)
    return data


def _analyse(root: Path, trend_gap: float, seed: int) -> tuple[dict[str, Any], Path, pd.DataFrame]:
    data = _simulate(root / "logs", trend_gap=trend_gap, seed=seed)
    spec = {
        "id": "did_test",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "watch_time"},
        "segments": ["market"],
        "did": {
            "cluster": "market",
            "treated": [f"m{g:02d}" for g in range(TREATED)],
            "rollout_date": ROLLOUT.isoformat(),
            "metrics": ["watch_time"],
        },
    }
    (root / "did_test.yaml").write_text(yaml.safe_dump(spec))
    # The asset checks of every run analyze executes (in process).
    evaluations: list[dg.AssetCheckEvaluation] = []
    panel_metadata: list[dict[str, Any]] = []
    execute = dg.JobDefinition.execute_in_process

    def recorded(job: dg.JobDefinition, *args: Any, **kwargs: Any) -> Any:
        result = execute(job, *args, **kwargs)
        evaluations.extend(result.get_asset_check_evaluations())
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization and materialization.asset_key == dg.AssetKey("did_cluster_days"):
                panel_metadata.append(
                    {key: getattr(v, "value", v) for key, v in materialization.metadata.items()}
                )
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dg.JobDefinition, "execute_in_process", recorded)
        document = analyze_json(
            root / "did_test.yaml", root / "logs" / "exposures", root / "logs" / "events", root
        )
    srm = [e for e in evaluations if e.check_name == "check_sample_ratio"]
    # A rollout by cluster planned no split: the sample-ratio check does not test one.
    assert len(srm) == DAYS
    assert all(e.passed and "not randomised" in (e.description or "") for e in srm)
    # Each day's panel step counts the day's units without a market.
    assert [m["units_without_cluster"] for m in panel_metadata] == [NO_MARKET] * DAYS
    return document, root, data


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, pd.DataFrame]:
    return _analyse(tmp_path_factory.mktemp("did_parallel"), trend_gap=0.0, seed=7)


@pytest.fixture(scope="module")
def diverging(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], Path, pd.DataFrame]:
    return _analyse(tmp_path_factory.mktemp("did_diverging"), trend_gap=2.0, seed=7)


def _table(root: Path, sql: str) -> pd.DataFrame:
    database = next((root / "home").rglob("*.duckdb"))
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).df()


def _clustered_fit(formula: str, frame: pd.DataFrame) -> Any:
    """statsmodels OLS of the unit-days with CR1 errors clustered by market and t inference on
    G - 1 df (Stata's ``regress ..., vce(cluster market)``)."""
    return smf.ols(formula, frame).fit(
        cov_type="cluster", cov_kwds={"groups": frame["market"]}, use_t=True
    )


def test_the_panel_equals_the_brute_force_sums(
    parallel: tuple[dict[str, Any], Path, pd.DataFrame],
) -> None:
    _, root, data = parallel
    stored = _table(
        root,
        "SELECT as_of_date, cluster, treated, n, sum_y, sum_y2 FROM did_cluster_days "
        "WHERE experiment_id = 'did_test' AND metric = 'watch_time' AND cluster IS NOT NULL "
        "ORDER BY as_of_date, cluster",
    )
    data = data.assign(y2=data["y"] ** 2)
    expected = (
        data.groupby(["day", "market"])
        .agg(
            treated=("treated", "first"), n=("y", "size"), sum_y=("y", "sum"), sum_y2=("y2", "sum")
        )
        .reset_index()
    )
    assert len(stored) == len(expected) == DAYS * MARKETS
    assert stored["cluster"].tolist() == expected["market"].tolist()
    assert stored["treated"].tolist() == expected["treated"].tolist()
    assert stored["n"].tolist() == expected["n"].tolist()
    np.testing.assert_allclose(stored["sum_y"], expected["sum_y"], rtol=1e-12)
    np.testing.assert_allclose(stored["sum_y2"], expected["sum_y2"], rtol=1e-10)
    # The units without a market: one cell a day, no cluster and no group, counted.
    left_out = _table(
        root,
        "SELECT n, treated FROM did_cluster_days "
        "WHERE experiment_id = 'did_test' AND metric = 'watch_time' AND cluster IS NULL "
        "ORDER BY as_of_date",
    )
    assert left_out["n"].tolist() == [NO_MARKET] * DAYS
    assert left_out["treated"].isna().all()


def test_the_effect_and_event_study_equal_statsmodels_clustered_ols(
    parallel: tuple[dict[str, Any], Path, pd.DataFrame],
) -> None:
    _, root, data = parallel
    last = START + dt.timedelta(days=DAYS - 1)
    effects = _table(
        root,
        f"SELECT * FROM did_effects WHERE experiment_id = 'did_test' "
        f"AND as_of_date = DATE '{last}' ORDER BY row_type, period",
    )
    frame = data.assign(
        treated=data["treated"].astype(float),
        post=(data["day"] >= ROLLOUT).astype(float),
        day=data["day"].astype(str),
    )
    reference = _clustered_fit("y ~ treated * post", frame)
    name = "treated:post"
    did = effects[effects["row_type"] == "did"].iloc[0]
    assert did["effect"] == pytest.approx(reference.params[name], rel=1e-9)
    assert did["std_error"] == pytest.approx(reference.bse[name], rel=1e-7)
    assert did["p_value"] == pytest.approx(reference.pvalues[name], rel=1e-6)
    low, high = reference.conf_int(alpha=0.05).loc[name]
    assert (did["ci_low"], did["ci_high"]) == (
        pytest.approx(low, rel=1e-7),
        pytest.approx(high, rel=1e-7),
    )
    assert did["df"] == MARKETS - 1 == reference.df_resid_inference
    assert (did["n_clusters"], did["n_treated_clusters"]) == (MARKETS, TREATED)
    assert did["n_observations"] == len(data)
    assert did["note"] == (
        f"{NO_MARKET * DAYS} unit-days had no market and are not in the panel (units exposed on "
        "a day whose exposure row has no market value, counted once per such day)"
    )
    # With parallel trends the interval covers the true effect, and the check does not fail.
    assert did["ci_low"] < EFFECT < did["ci_high"]
    assert did["pre_trend_passed"]

    # The event study: treated x day relative to the last day before the rollout.
    reference_day = (ROLLOUT - dt.timedelta(days=1)).isoformat()
    study_fit = _clustered_fit(f"y ~ treated * C(day, Treatment('{reference_day}'))", frame)
    study = effects[effects["row_type"] == "event_study"]
    days = sorted(data["day"].unique())
    assert [p.date() for p in study["period"]] == days
    pre_terms = []
    for row in study.itertuples():
        day = row.period.date().isoformat()
        if day == reference_day:
            assert row.effect == 0.0 and math.isnan(row.p_value)
            continue
        term = f"treated:C(day, Treatment('{reference_day}'))[T.{day}]"
        assert row.effect == pytest.approx(study_fit.params[term], rel=1e-8, abs=1e-10)
        assert row.std_error == pytest.approx(study_fit.bse[term], rel=1e-7)
        assert row.p_value == pytest.approx(study_fit.pvalues[term], rel=1e-6)
        if day < reference_day:
            pre_terms.append(term)
    wald = study_fit.wald_test(", ".join(f"{t} = 0" for t in pre_terms), use_f=True, scalar=True)
    assert did["pre_trend_statistic"] == pytest.approx(wald.statistic, rel=1e-6)
    assert did["pre_trend_p_value"] == pytest.approx(wald.pvalue, rel=1e-6)


def test_parallel_trends_ship_at_the_end(
    parallel: tuple[dict[str, Any], Path, pd.DataFrame],
) -> None:
    document, root, _ = parallel
    # --json has the day's did_effects rows: the did row, then the event study's days.
    did, *study = document["did_effects"]
    assert did["row_type"] == "did" and did["metric"] == "watch_time"
    assert did["pre_trend_passed"] and did["ci_low"] < EFFECT < did["ci_high"]
    assert did["note"].startswith(f"{NO_MARKET * DAYS} unit-days had no market")
    assert [r["period"] for r in study] == [
        (START + dt.timedelta(days=t)).isoformat() for t in range(DAYS)
    ]
    assert "bandit_allocations" not in document
    decisions = _table(
        root,
        "SELECT as_of_date, decision, variant, reasons FROM decision "
        "WHERE experiment_id = 'did_test' ORDER BY as_of_date",
    )
    assert decisions["decision"].tolist()[:-1] == ["KEEP_RUNNING"] * (DAYS - 1)
    last = decisions.iloc[-1]
    assert last["decision"] == "SHIP" and last["variant"] == "treatment"
    reasons = " ".join(last["reasons"])
    assert "Difference in differences of watch_time" in reasons
    assert "no sample-ratio test" in reasons and "Warning" not in reasons
    html = next((root / "reports").rglob(f"{START + dt.timedelta(days=DAYS - 1)}.html"))
    text = html.read_text()
    assert '<h2 id="did">Difference in differences</h2>' in text
    assert 'alt="Event study: the effect of each day' in text and "parallel trends fail" not in text
    assert "none: a rollout by cluster that was not randomised has no planned split" in text
    assert f"{NO_MARKET * DAYS} unit-days had no market and are not in the panel" in text


def test_diverging_trends_are_flagged_and_block_the_ship(
    diverging: tuple[dict[str, Any], Path, pd.DataFrame],
) -> None:
    _, root, _ = diverging
    last = START + dt.timedelta(days=DAYS - 1)
    did = _table(
        root,
        f"SELECT * FROM did_effects WHERE experiment_id = 'did_test' "
        f"AND as_of_date = DATE '{last}' AND row_type = 'did'",
    ).iloc[0]
    # The treated markets' extra slope of 2 a day biases the 2x2 effect by about 2 x 4 days.
    assert did["effect"] - EFFECT > 4.0
    assert not did["pre_trend_passed"] and did["pre_trend_p_value"] < 0.05
    decision = _table(
        root,
        f"SELECT decision, reasons FROM decision WHERE experiment_id = 'did_test' "
        f"AND as_of_date = DATE '{last}'",
    ).iloc[0]
    assert decision["decision"] == "INCONCLUSIVE"
    reasons = list(decision["reasons"])
    assert "parallel-trends check of watch_time fails" in reasons[0]
    assert any(r.startswith("Warning: parallel trends fail for watch_time") for r in reasons)
    html = next((root / "reports").rglob(f"{last}.html")).read_text()
    assert "parallel trends fail" in html
