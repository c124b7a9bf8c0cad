"""A long-term holdout through ``exp-dagster analyze``: a 10/90 split of simulated logs whose
spec keeps the 10 % ``holdout`` off two launches; the reasons give the cumulative effect of the
launches so far, and the effect at the last look of each earlier launch period (issue 21).

The simulator's treatment effect starts at each unit's exposure, so here "the launches" are the
spec's dates on an effect that is constant in time: the test checks the reading and its
numbers (they are the ``results`` rows of the named looks), not a time-varying truth.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from exp_dagster.decision import pct
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.simulate import SimulationConfig, simulate
from exp_dagster.simulate_models import ModelLogSizes
from exp_dagster.stats import ratio_test, welch_test
from exp_dagster.stats.moments import Moments, RatioMoments
from tests.integration.analyze_run import analyze_json

START = dt.date(2026, 10, 1)
DAYS = 6
LAUNCHES = [
    {"name": "ranker_v2", "date": "2026-10-03"},
    {"name": "notif_v3", "date": "2026-10-05"},
]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("holdout")
    config = SimulationConfig(
        experiment_id="holdout_test",
        salt="holdout-test-salt",
        weights=(("holdout", 0.1), ("launched", 0.9)),
        n_units=4_000,
        start=START,
        days=DAYS,
        pre_days=0,
        messy=False,
        model_logs=ModelLogSizes(0, 0, 0),
    )
    simulate(root / "logs", config)
    spec = {
        "id": "holdout_test",
        "hash_salt": "holdout-test-salt",
        "variants": [
            {"name": "holdout", "weight": 0.1, "control": True},
            {"name": "launched", "weight": 0.9},
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {
            "primary": "ctr",
            "secondary": ["watch_time"],
            "guardrails": [{"metric": "latency_p95", "margin": 0.1}],
        },
        "holdout": {"group": "holdout", "launches": LAUNCHES},
    }
    (root / "holdout_test.yaml").write_text(yaml.safe_dump(spec))
    (root / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    document = analyze_json(
        root / "holdout_test.yaml", root / "logs" / "exposures", root / "logs" / "events", root
    )
    return document, root


def test_the_reasons_name_the_launches_and_their_cumulative_effect(
    analysed: tuple[dict[str, Any], Path],
) -> None:
    document, _ = analysed
    assert document["as_of"] == "2026-10-06" and document["decision"] != "INVALID"
    reasons = document["reasons"]
    assert reasons[0].startswith("The launches")  # read at the end date: gains last or not
    ctr = next(r for r in document["results"] if r["metric"] == "ctr")
    assert reasons[1] == (
        f"The launches so far (ranker_v2 since 2026-10-03, notif_v3 since 2026-10-05) moved ctr "
        f"by {pct(ctr['rel_effect'])} [{pct(ctr['rel_ci_low'])}, {pct(ctr['rel_ci_high'])}] "
        f"against the holdout ({reasons[1].rsplit('(', 1)[1]}"
    )
    assert (
        "averages the 6 days so far (2 with no launch yet; 2 with ranker_v2; 2 with "
        in (reasons[2])
    )


def test_the_earlier_launch_periods_are_read_at_their_last_look(
    analysed: tuple[dict[str, Any], Path],
) -> None:
    document, root = analysed
    database = next((root / "home").rglob("*.duckdb"))
    with duckdb.connect(str(database), read_only=True) as conn:
        looks = conn.execute(
            "SELECT as_of_date, rel_effect, rel_ci_low, rel_ci_high FROM results "
            "WHERE metric = 'ctr' AND segment = 'all' AND as_of_date IN (?, ?) "
            "ORDER BY as_of_date",
            [dt.date(2026, 10, 2), dt.date(2026, 10, 4)],
        ).fetchall()
    assert len(looks) == 2
    expected = "; ".join(
        f"on {day}, with {label}: {pct(rel)} [{pct(low)}, {pct(high)}]"
        for (day, rel, low, high), label in zip(looks, ("no launch yet", "ranker_v2"), strict=True)
    )
    assert f"At the last look of each earlier launch period: {expected}." in document["reasons"]


def _since(root: Path, launch: dt.date, end: dt.date) -> pd.DataFrame:
    """Brute force from the raw logs: each exposed unit's clicks, impressions and watch seconds
    over the days from ``launch`` (or its first exposure day, if later) through ``end``."""
    exposures = pd.read_parquet(root / "logs" / "exposures")
    exposures["day"] = pd.to_datetime(exposures["exposed_at"], utc=True).dt.date
    units = exposures.groupby("unit_id").agg(variant=("variant", "first"), first=("day", "min"))
    events = pd.read_parquet(root / "logs" / "events")
    events["day"] = pd.to_datetime(events["event_time"], utc=True).dt.date
    events = events.join(units, on="unit_id", how="inner")
    since = events[(events["day"] >= np.maximum(events["first"], launch)) & (events["day"] <= end)]
    sums = since.pivot_table(
        index="unit_id", columns="event", values="value", aggfunc="sum", fill_value=0.0
    )
    return units.join(sums, how="left").fillna(0.0)


@pytest.mark.parametrize("launch", LAUNCHES, ids=[x["name"] for x in LAUNCHES])
def test_the_effect_since_each_launch_is_the_brute_force_one(
    analysed: tuple[dict[str, Any], Path], launch: dict[str, str]
) -> None:
    """The ``launch_period`` rows (each unit's metric from the launch to the day, computed as its
    cumulative value less the day before the launch's) equal the tests on per-unit values
    summed from the raw logs over those days alone."""
    document, root = analysed
    end = START + dt.timedelta(days=DAYS - 1)
    units = _since(root, dt.date.fromisoformat(launch["date"]), end)
    arms = {v: units[units["variant"] == v] for v in ("holdout", "launched")}
    rows = {
        r["metric"]: r
        for r in document["segment_results"]
        if r["segment"] == "launch_period" and r["segment_value"] == launch["name"]
    }
    ctr = ratio_test(
        *(
            RatioMoments.from_values(a["click"].to_numpy(), a["impression"].to_numpy())
            for a in arms.values()
        )
    )
    watch = welch_test(*(Moments.from_values(a["watch_seconds"].to_numpy()) for a in arms.values()))
    for name, expected in (("ctr", ctr), ("watch_time", watch)):
        row = rows[name]
        assert row["n_control"] + row["n_treatment"] == len(units)
        assert row["abs_effect"] == pytest.approx(expected.abs_effect, rel=1e-9)
        assert row["std_error"] == pytest.approx(expected.std_error, rel=1e-9)
        assert row["p_value"] == pytest.approx(expected.p_value, rel=1e-6)
    # A latency quantile's period would need the period's histograms: its row says why.
    assert rows["latency_p95"]["not_estimable"].startswith(
        f"not estimable since the launch of {launch['name']}: a quantile"
    )
    summary = next(r for r in document["reasons"] if r.startswith("Over the days since each"))
    assert f"{launch['name']} (since {launch['date']}" in summary
