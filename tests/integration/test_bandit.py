"""A bandit experiment through ``exp-dagster analyze``: each day's ``bandit_allocations`` rows are
the next day's split, computed from that day's statistics of the reward metric (issue 21).

The logs are simulated here with known truth (three variants, conversion 10 %, 12 % and 20 %,
units split by the planned weights); the allocation is recomputed from the logs with the library
and the same seed, independently of the warehouse's statistics.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from exp_dagster.cli import main
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.partitions import experiment_day_key
from exp_dagster.stats import allocation_seed, bandit_allocation, proportion_posterior
from tests.conftest import Pipeline

START = dt.date(2026, 10, 1)
DAYS = 4
VARIANTS = {"control": 0.34, "b": 0.33, "c": 0.33}
RATES = {"control": 0.10, "b": 0.12, "c": 0.20}
FLOOR = 0.05


def bandit_logs(root: Path, units_per_day: int = 500) -> pd.DataFrame:
    """Exposures (CSV) and purchases (JSON Lines); returns each unit's day, variant, conversion."""
    rng = np.random.default_rng(2121)
    names = list(VARIANTS)
    exposures, events, truth = [], [], []
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        variants = rng.choice(len(names), size=units_per_day, p=list(VARIANTS.values()))
        for i, index in enumerate(variants):
            unit, variant = f"u{offset}-{i:04d}", names[index]
            at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(minutes=int(rng.integers(0, 600)))
            exposures.append((unit, variant, at))
            converted = bool(rng.random() < RATES[variant])
            if converted:
                events.append((unit, at + pd.Timedelta(minutes=5), "purchase", 9.99))
            truth.append({"day": day, "variant": variant, "converted": converted})
    pd.DataFrame(
        {
            "experiment_id": "bandit_test",
            "unit_id": [u for u, _, _ in exposures],
            "variant": [v for _, v, _ in exposures],
            "exposed_at": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for _, _, t in exposures],
        }
    ).to_csv(root / "exposures.csv", index=False)
    frame = pd.DataFrame(events, columns=["unit_id", "event_time", "event", "value"])
    frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat())).to_json(
        root / "events.jsonl", orient="records", lines=True
    )
    return pd.DataFrame(truth)


def analyse(root: Path) -> None:
    spec = {
        "id": "bandit_test",
        "variants": [
            {"name": name, "weight": weight, "control": name == "control"}
            for name, weight in VARIANTS.items()
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "conversion", "secondary": ["revenue"]},
        "analysis": {"sequential": "fixed_horizon"},
        "bandit": {"algorithm": "thompson", "floor": FLOOR, "burn_in_days": 2},
    }
    (root / "bandit_test.yaml").write_text(yaml.safe_dump(spec))
    (root / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    code = main(
        [
            "analyze",
            "--experiment",
            str(root / "bandit_test.yaml"),
            "--exposures",
            str(root / "exposures.csv"),
            "--events",
            str(root / "events.jsonl"),
            "--json",
            str(root / "out.json"),
            "--report-dir",
            str(root / "reports"),
            "--home",
            str(root / "home"),
        ]
    )
    assert code == 0
    assert json.loads((root / "out.json").read_text())["decision"] != "INVALID"


def allocation_rows(root: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True) as conn:
        frame = conn.execute("SELECT * FROM bandit_allocations ORDER BY as_of_date, variant").df()
    return frame.to_dict("records")


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bandit")
    truth = bandit_logs(root)
    analyse(root)
    first = allocation_rows(root)
    analyse(root)  # the same days again: the partitions are replaced, not appended to
    return {"truth": truth, "rows": first, "again": allocation_rows(root)}


def test_each_day_but_the_last_writes_the_next_days_split(outcome: dict[str, Any]) -> None:
    rows = pd.DataFrame(outcome["rows"])
    days = sorted({d.date() for d in pd.to_datetime(rows["as_of_date"])})
    assert days == [START + dt.timedelta(days=i) for i in range(DAYS - 1)]  # none on the end
    assert (
        (pd.to_datetime(rows["applies_to"]) - pd.to_datetime(rows["as_of_date"]))
        .eq(pd.Timedelta(days=1))
        .all()
    )
    for _, day in rows.groupby("as_of_date"):
        assert sorted(day["variant"]) == sorted(VARIANTS)
        assert abs(day["weight"].sum() - 1.0) <= 1e-9
        assert (day["weight"] >= FLOOR).all()
        assert (day["metric"] == "conversion").all()
    burn_in = rows[rows["basis"] == "burn-in"]
    assert sorted(pd.to_datetime(burn_in["applies_to"]).dt.date.unique()) == [
        START + dt.timedelta(days=1)
    ]  # burn_in_days: 2 covers the start day and the next
    assert dict(zip(burn_in["variant"], burn_in["weight"], strict=True)) == pytest.approx(VARIANTS)
    last = rows[pd.to_datetime(rows["as_of_date"]).dt.date == START + dt.timedelta(days=DAYS - 2)]
    assert (last["basis"] == "posterior").all()
    weights = dict(zip(last["variant"], last["weight"], strict=True))
    assert weights["c"] > 0.85 and min(weights.values()) == pytest.approx(FLOOR, abs=0.01)
    pd.testing.assert_frame_equal(pd.DataFrame(outcome["again"]), rows)


def test_the_weights_are_the_librarys_on_the_logs_counts(outcome: dict[str, Any]) -> None:
    """n, mean and the weights recomputed from the simulated units (not the warehouse), with the
    seed of (experiment, day)."""
    truth: pd.DataFrame = outcome["truth"]
    rows = pd.DataFrame(outcome["rows"])
    for as_of, day_rows in rows.groupby("as_of_date"):
        day = pd.Timestamp(as_of).date()
        units = truth[truth["day"] <= day]
        counts = units.groupby("variant")["converted"].agg(["size", "sum"])
        got = day_rows.set_index("variant")
        for variant in VARIANTS:
            assert got.loc[variant, "n"] == counts.loc[variant, "size"]
            assert got.loc[variant, "mean"] == pytest.approx(
                counts.loc[variant, "sum"] / counts.loc[variant, "size"], rel=1e-12
            )
        expected = bandit_allocation(
            list(VARIANTS),
            [
                proportion_posterior(int(counts.loc[v, "size"]), int(counts.loc[v, "sum"]))
                for v in VARIANTS
            ],
            floor=FLOOR,
            seed=allocation_seed("bandit_test", day),
        )
        assert [got.loc[v, "probability_best"] for v in VARIANTS] == pytest.approx(
            list(expected.probability_best), abs=1e-12
        )
        assert int(got["seed"].iloc[0]) == allocation_seed("bandit_test", day)
        if (got["basis"] == "posterior").all():
            assert [got.loc[v, "weight"] for v in VARIANTS] == pytest.approx(
                list(expected.weights), abs=1e-12
            )


def test_an_experiment_without_a_bandit_writes_no_allocation(pipeline: Pipeline) -> None:
    day = pipeline.days[-1]
    key = str(experiment_day_key(pipeline.experiment.spec.id, day))
    with duckdb.connect(str(pipeline.database), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM bandit_allocations").fetchone() == (0,)
    record = pipeline.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("bandit_allocations"), asset_partitions=[key]),
        limit=1,
    ).records[0]
    metadata = record.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["dagster/row_count"].value == 0
    assert "no bandit block" in str(metadata["allocation"].value)
