"""A bandit experiment through ``exp-dagster analyze``: each day's ``bandit_allocations`` rows are
the next day's split, computed from that day's statistics of the reward metric, and the analysis
tests the split and stratifies the effects by allocation day (issue 21).

The logs are simulated here in a closed loop with known truth: three variants whose conversion
falls over the days (control and b by 4 points a day from 40 % and 42 %, c 8 points above
control); the first two days (burn-in) split by the planned weights, each later day by the
library's allocation from the logs' counts through the day before, seeded from (experiment, day)
as the asset seeds it. So the serving system followed the bandit, and the asset must write the
same splits the simulation served.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.partitions import experiment_day_key
from exp_dagster.stats import allocation_seed, bandit_allocation, proportion_posterior
from tests.conftest import Pipeline
from tests.integration.analyze_run import analyze_json

START = dt.date(2026, 10, 1)
DAYS = 5
BURN_IN_DAYS = 2
VARIANTS = {"control": 0.34, "b": 0.33, "c": 0.33}
LIFTS = {"control": 0.0, "b": 0.02, "c": 0.08}
FLOOR = 0.1
# per day: the median latency, the same in every arm (it falls as the days go by)
LATENCY = (120.0, 110.0, 100.0, 90.0, 80.0)


def rate(variant: str, offset: int) -> float:
    return 0.40 - 0.04 * offset + LIFTS[variant]


def served_split(truth: list[dict[str, Any]], offset: int) -> dict[str, float]:
    """The split of day ``offset``: planned during burn-in, else the library's allocation from the
    counts through the day before."""
    if offset < BURN_IN_DAYS:
        return dict(VARIANTS)
    before = START + dt.timedelta(days=offset - 1)
    seen = pd.DataFrame(truth)
    counts = seen.groupby("variant")["converted"].agg(["size", "sum"])
    allocation = bandit_allocation(
        list(VARIANTS),
        [
            proportion_posterior(int(counts.loc[v, "size"]), int(counts.loc[v, "sum"]))
            for v in VARIANTS
        ],
        floor=FLOOR,
        seed=allocation_seed("bandit_test", before),
    )
    return dict(zip(VARIANTS, allocation.weights, strict=True))


def bandit_logs(root: Path, units_per_day: int = 400) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Exposures (CSV) and purchases (JSON Lines); returns each unit's day, variant and conversion,
    and the split served each day (ISO day → variant → weight)."""
    rng = np.random.default_rng(2121)
    latency_rng = np.random.default_rng(2122)  # apart, so that the served splits stay the same
    names = list(VARIANTS)
    exposures, events, truth = [], [], []
    served: dict[str, Any] = {}
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        split = served[day.isoformat()] = served_split(truth, offset)
        variants = rng.choice(len(names), size=units_per_day, p=[split[v] for v in names])
        for i, index in enumerate(variants):
            unit, variant = f"u{offset}-{i:04d}", names[index]
            at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(minutes=int(rng.integers(0, 600)))
            exposures.append((unit, variant, at))
            converted = bool(rng.random() < rate(variant, offset))
            if converted:
                events.append((unit, at + pd.Timedelta(minutes=5), "purchase", 9.99))
            latency = float(latency_rng.lognormal(np.log(LATENCY[offset]), 0.4))
            events.append((unit, at + pd.Timedelta(minutes=1), "latency_ms", latency))
            truth.append(
                {
                    "day": day,
                    "variant": variant,
                    "converted": converted,
                    "platform": "ios" if i % 3 == 0 else "android",
                    "latency": latency,
                }
            )
    pd.DataFrame(
        {
            "experiment_id": "bandit_test",
            "unit_id": [u for u, _, _ in exposures],
            "variant": [v for _, v, _ in exposures],
            "exposed_at": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for _, _, t in exposures],
            "platform": [p["platform"] for p in truth],
        }
    ).to_csv(root / "exposures.csv", index=False)
    frame = pd.DataFrame(events, columns=["unit_id", "event_time", "event", "value"])
    frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat())).to_json(
        root / "events.jsonl", orient="records", lines=True
    )
    return pd.DataFrame(truth), served


def analyse(root: Path, name: str, bandit: bool = True) -> dict[str, Any]:
    spec = {
        "id": "bandit_test",
        "variants": [
            {"name": name, "weight": weight, "control": name == "control"}
            for name, weight in VARIANTS.items()
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "conversion", "secondary": ["revenue", "latency_p95"]},
        "segments": ["platform"],
        "analysis": {"sequential": "fixed_horizon"},
        **(
            {"bandit": {"algorithm": "thompson", "floor": FLOOR, "burn_in_days": BURN_IN_DAYS}}
            if bandit
            else {}
        ),
    }
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "bandit_test.yaml").write_text(yaml.safe_dump(spec))
    (folder / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    document = analyze_json(
        folder / "bandit_test.yaml", root / "exposures.csv", root / "events.jsonl", folder
    )
    return document


def allocation_rows(root: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(root / "bandit" / "home" / "warehouse.duckdb"), read_only=True) as conn:
        frame = conn.execute("SELECT * FROM bandit_allocations ORDER BY as_of_date, variant").df()
    return frame.to_dict("records")


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bandit")
    truth, served = bandit_logs(root)
    document = analyse(root, "bandit")
    first = allocation_rows(root)
    analyse(root, "bandit")  # the same days again: the partitions are replaced, not appended to
    return {
        "root": root,
        "truth": truth,
        "served": served,
        "document": document,
        "plain": analyse(root, "plain", bandit=False),
        "rows": first,
        "again": allocation_rows(root),
    }


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
    assert max(weights, key=weights.__getitem__) == "c" and weights["c"] > 0.6
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


def test_the_asset_wrote_the_splits_that_were_served(outcome: dict[str, Any]) -> None:
    rows = pd.DataFrame(outcome["rows"])
    for applies_to, day_rows in rows.groupby("applies_to"):
        served = outcome["served"][pd.Timestamp(applies_to).date().isoformat()]
        got = dict(zip(day_rows["variant"], day_rows["weight"], strict=True))
        assert got == pytest.approx(served, abs=1e-12)


def test_the_split_is_tested_per_allocation_day(outcome: dict[str, Any]) -> None:
    """Against each day's served split the sample ratio matches; the same logs read as one
    34/33/33 test are a mismatch (the bandit moved traffic to c)."""
    document, plain = outcome["document"], outcome["plain"]
    assert document["decision"] != "INVALID", document["reasons"]
    assert any("per allocation day" in reason for reason in document["reasons"])
    assert document["srm_p_value"] > 0.001
    assert plain["decision"] == "INVALID"
    assert plain["srm_p_value"] < 1e-10


def test_the_effect_is_stratified_by_allocation_day(outcome: dict[str, Any]) -> None:
    """The overall row for c is the day-stratified difference computed here from the units
    (weights: each day's share of control and c units), and its interval covers the true 8
    points; the pooled difference's expectation over the same units, given their days, is far
    below it: the bandit moved c's traffic to the later, lower-converting days."""
    truth: pd.DataFrame = outcome["truth"]
    (row,) = [
        r
        for r in outcome["document"]["results"]
        if r["metric"] == "conversion" and r["variant"] == "c"
    ]
    pair = truth[truth["variant"].isin(["control", "c"])]
    weights, effects = [], []
    for _, units in pair.groupby("day"):
        rates = units.groupby("variant")["converted"].mean()
        weights.append(len(units))
        effects.append(rates["c"] - rates["control"])
    w = np.array(weights, dtype=float) / sum(weights)
    stratified = float(w @ effects)
    offsets = (pd.to_datetime(truth["day"]) - pd.Timestamp(START)).dt.days
    expected = pd.Series(
        [rate(v, int(o)) for v, o in zip(truth["variant"], offsets, strict=True)],
        index=truth.index,
    )
    pooled_expectation = float(
        expected[truth["variant"] == "c"].mean() - expected[truth["variant"] == "control"].mean()
    )
    assert row["abs_effect"] == pytest.approx(stratified, rel=1e-9)
    assert "allocation days of first exposure" in row["method"]
    assert row["abs_ci_low"] <= LIFTS["c"] <= row["abs_ci_high"]
    assert pooled_expectation < LIFTS["c"] - 0.03, pooled_expectation


def day_stratified(units: pd.DataFrame, value: Any) -> float:
    """c's effect against control among ``units``: each day's difference of ``value`` (a function
    of one arm's units), weighted by the day's share of control and c units."""
    pair = units[units["variant"].isin(["control", "c"])]
    weights, effects = [], []
    for _, day in pair.groupby("day"):
        arms = dict(list(day.groupby("variant")))
        weights.append(len(day))
        effects.append(value(arms["c"]) - value(arms["control"]))
    return float(np.array(weights, dtype=float) / sum(weights) @ effects)


def test_segment_rows_are_stratified_by_allocation_day_too(outcome: dict[str, Any]) -> None:
    """Each platform's conversion row for c is the day-stratified difference among its units
    (from its platform|allocation_day cells, which are not result rows of their own)."""
    truth: pd.DataFrame = outcome["truth"]
    segments = outcome["document"]["segment_results"]
    for platform in ("ios", "android"):
        (row,) = [
            r
            for r in segments
            if (r["metric"], r["variant"]) == ("conversion", "c")
            and (r["segment"], r["segment_value"]) == ("platform", platform)
        ]
        expected = day_stratified(
            truth[truth["platform"] == platform], lambda u: u["converted"].mean()
        )
        assert row["abs_effect"] == pytest.approx(expected, rel=1e-9)
        assert "strata: the allocation days of first exposure" in row["method"]
        assert "pooled over the allocation days" not in row["method"]
    assert {r["segment"] for r in segments} == {"platform", "allocation_day"}


def test_a_quantile_is_the_day_weighted_quantile_difference(outcome: dict[str, Any]) -> None:
    """latency_p95's row for c is the average of the days' p95 differences (numpy's
    inverted-CDF quantile; the histograms' buckets are 0.1 % wide), weighted by the days' shares
    of control and c units: from per-day histograms, not the difference of the pooled p95s."""
    truth: pd.DataFrame = outcome["truth"]
    (row,) = [
        r
        for r in outcome["document"]["results"]
        if (r["metric"], r["variant"]) == ("latency_p95", "c")
    ]
    assert row["not_estimable"] is None

    def p95(units: pd.DataFrame) -> float:
        return float(np.quantile(units["latency"].to_numpy(), 0.95, method="inverted_cdf"))

    assert row["abs_effect"] == pytest.approx(day_stratified(truth, p95), abs=0.002 * LATENCY[0])
    assert row["abs_ci_low"] <= 0.0 <= row["abs_ci_high"]
    # The pooled difference is far off: the bandit moved c's traffic to the later, faster days.
    arms = dict(list(truth.groupby("variant")))
    pooled = p95(arms["c"]) - p95(arms["control"])
    assert pooled < row["abs_effect"] - 5.0, (pooled, row["abs_effect"])
    assert "strata: the allocation days of first exposure" in row["method"]
    assert "day-weighted average of the within-day quantile differences" in row["method"]


def test_the_json_has_the_latest_split(outcome: dict[str, Any]) -> None:
    """``--json``'s ``bandit_allocations``: the split set on the last day that set one (the end
    day allocates no next day), as the table has it; without a bandit there is no such key."""
    document = outcome["document"]
    latest = START + dt.timedelta(days=DAYS - 2)
    expected = [r for r in outcome["again"] if r["as_of_date"].date() == latest]
    entries = document["bandit_allocations"]
    assert [e["variant"] for e in entries] == sorted(VARIANTS)
    assert {e["as_of_date"] for e in entries} == {latest.isoformat()}
    assert {e["applies_to"] for e in entries} == {(latest + dt.timedelta(days=1)).isoformat()}
    by_variant = {r["variant"]: r for r in expected}
    for entry in entries:
        assert entry["weight"] == by_variant[entry["variant"]]["weight"]
        assert entry["probability_best"] == by_variant[entry["variant"]]["probability_best"]
        assert entry["algorithm"] == "thompson" and entry["floor"] == FLOOR
    assert "bandit_allocations" not in outcome["plain"]
    assert "did_effects" not in document and "did_effects" not in outcome["plain"]


def test_the_report_shows_the_allocations(outcome: dict[str, Any]) -> None:
    """The report of the end day has a 'Bandit allocation' section: the algorithm, floor and
    burn-in, the chart, and each day's weights as the table has them; a fixed split has none."""
    outcome_root = outcome["root"]
    end = START + dt.timedelta(days=DAYS - 1)
    html = next((outcome_root / "bandit" / "reports").rglob(f"{end}.html")).read_text()
    assert '<h2 id="bandit">Bandit allocation</h2>' in html
    assert "by Thompson sampling on <b>conversion</b>" in html
    assert f"the floor of {FLOOR:g}" in html and f"the first {BURN_IN_DAYS} day(s)" in html
    assert 'alt="Bandit allocation: each variant&#x27;s share of the traffic by day"' in html
    rows = allocation_rows(outcome_root)
    for applies_to in sorted({r["applies_to"].date() for r in rows}):
        cells = {r["variant"]: r["weight"] for r in rows if r["applies_to"].date() == applies_to}
        weights = "".join(f'<td class="num">{cells[v]:.1%}</td>' for v in VARIANTS)
        assert f"<td>{applies_to}</td>{weights}" in html
    plain = next((outcome_root / "plain" / "reports").rglob(f"{end}.html")).read_text()
    assert 'id="bandit"' not in plain
