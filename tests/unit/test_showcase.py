"""The showcase experiments' simulations (exp_dagster.showcase): they agree with their specs in
catalog/experiments, their ramp assignment is the hash under each unit's phase of first exposure,
and their truths are those of the generating process (issue 21)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exp_dagster import cli
from exp_dagster.assignment import assign_variant
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.showcase import SHOWCASE
from exp_dagster.simulate import (
    SimulatedLaunch,
    SimulatedPhase,
    SimulatedRollout,
    SimulationConfig,
    simulate,
)
from exp_dagster.simulate_bandit import BanditSimulationConfig, simulate_bandit
from exp_dagster.spec import earliest_event_day, load_experiments, load_metric_catalog
from exp_dagster.stats import allocation_seed, bandit_allocation, proportion_posterior

CATALOG = PROJECT_ROOT / "catalog"


def test_the_showcase_simulations_agree_with_their_specs() -> None:
    experiments = load_experiments(
        CATALOG / "experiments", load_metric_catalog(CATALOG / "metrics.yaml")
    )
    assert set(SHOWCASE) == set(cli.SHOWCASE_EXPERIMENTS) < set(experiments)
    ranker = experiments[cli.DEMO_EXPERIMENT].spec
    for name, config in SHOWCASE.items():
        spec = experiments[name].spec
        assert config.experiment_id == spec.id
        # a rollout or a bandit is not assigned by the hash: its spec has no salt
        assert spec.hash_salt == (None if spec.did or spec.bandit else config.salt)
        assert config.weights == tuple((v.name, v.weight) for v in spec.variants)
        assert (config.start, config.end) == (spec.start, spec.end)
        assert config.pre_days == spec.pre_period_days
        # Inside the demo's days: the partition grid starts where it did.
        assert spec.first_event_day >= ranker.first_event_day
        phases = [(p.start, p.weights) for p in spec.ramp or ()]
        assert [(p.start, dict(p.weights)) for p in config.ramp] == phases
        launches = [(x.name, x.date) for x in spec.holdout.launches] if spec.holdout else []
        assert [(x.name, x.date) for x in config.launches] == launches
        if isinstance(config, BanditSimulationConfig):
            assert spec.bandit is not None
            assert (config.algorithm, config.floor, config.burn_in_days, config.top_two_beta) == (
                spec.bandit.algorithm,
                spec.bandit.floor,
                spec.bandit.burn_in_days,
                spec.bandit.top_two_beta,
            )
            assert spec.metrics.primary == "conversion" and spec.bandit_metric == "conversion"
            continue
        rollout = config.rollout
        assert (spec.did is not None) == (rollout is not None)
        if spec.did is not None and rollout is not None:
            assert spec.did.treated == list(rollout.market_names()[: rollout.treated])
            assert spec.did.rollout_date == rollout.date
        assert (spec.oec is not None) == (config.oec is not None)
        if spec.oec is not None and config.oec is not None:
            assert spec.oec.name == config.oec.name
            assert dict(spec.oec.components) == dict(config.oec.components)
            assert spec.oec.normalisation == "relative"


def test_the_partition_grid_still_starts_with_the_demo() -> None:
    # ranker_v2's start less its 7-day pre-period, as before the showcases were added
    assert earliest_event_day(CATALOG / "experiments") == dt.date(2026, 9, 24)


def _logs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    exposures = pd.read_parquet(out / "exposures")
    exposures["day"] = pd.to_datetime(exposures["exposed_at"], utc=True).dt.date
    events = pd.read_parquet(out / "events")
    events["day"] = pd.to_datetime(events["event_time"], utc=True).dt.date
    return exposures, events


RAMP = dataclasses.replace(SHOWCASE["ramp_demo"], n_units=3_000)


@pytest.fixture(scope="module")
def ramp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("ramp")
    return out, simulate(out, RAMP)


def test_a_ramped_unit_keeps_the_variant_of_its_first_exposures_phase(
    ramp_run: tuple[Path, object],
) -> None:
    out, _ = ramp_run
    exposures, _ = _logs(out)
    first = exposures.groupby("unit_id")["day"].min()
    starts = [phase.start for phase in RAMP.ramp]
    for unit, variant in exposures.groupby("unit_id")["variant"].unique().items():
        assert len(variant) == 1, unit  # sticky: one variant on every day
        phase = RAMP.ramp[max(i for i, s in enumerate(starts) if s <= first[unit])]
        assert variant[0] == assign_variant(RAMP.salt, str(unit), dict(phase.weights))
    # the treatment's share grows with the phases (10 %, 30 %, 50 % planned)
    by_phase = exposures.assign(
        phase=exposures["unit_id"].map(first).map(lambda d: sum(s <= d for s in starts))
    ).drop_duplicates("unit_id")
    shares = by_phase.groupby("phase")["variant"].apply(lambda v: (v == "treatment").mean())
    assert shares.is_monotonic_increasing and shares.iloc[0] < 0.2 < 0.4 < shares.iloc[-1]


def test_a_ramps_truth_is_each_phases_effect_and_their_unit_weighted_mixture(
    ramp_run: tuple[Path, object],
) -> None:
    """Per phase, watch time moves by exactly the phase's effect; overall, the analysis's
    estimand: the phases' treated over untreated expected sums (so each phase weighted by its
    units and its control mean), between the phases' effects."""
    _, truth = ramp_run
    by_segment = truth.segment_relative_effects  # type: ignore[attr-defined]
    for phase in RAMP.ramp:
        label = f"ramp_phase={phase.start}"
        assert by_segment["watch_time"][label] == pytest.approx(phase.watch_time, abs=1e-12)
        assert by_segment["ctr"][label] == pytest.approx(dict(phase.ctr_by_platform)["ios"])
    overall = truth.relative_effects["watch_time"]  # type: ignore[attr-defined]
    effects = [phase.watch_time for phase in RAMP.ramp]
    assert min(effects) < overall < max(effects)
    assert truth.relative_effects["latency_p95"] == 0.0  # type: ignore[attr-defined]


def test_launches_change_the_effect_on_their_dates_and_the_truth_follows(
    tmp_path: Path,
) -> None:
    """A holdout's launched units: no effect before the first launch, then each launch's. The
    expected watch seconds per active unit-day, by brute force on a large simulation, move by
    the effect in force; the truth since the last launch is its effect exactly."""
    config = dataclasses.replace(SHOWCASE["holdout_demo"], n_units=20_000)
    truth = simulate(tmp_path, config)
    exposures, events = _logs(tmp_path)
    variant = exposures.groupby("unit_id")["variant"].first()
    watch = events[events["event"] == "watch_seconds"]
    watch = watch[watch["unit_id"].isin(variant.index)]
    active = exposures.drop_duplicates(["unit_id", "day"])
    per_day = (
        watch.groupby(["unit_id", "day"])["value"]
        .sum()
        .reindex(pd.MultiIndex.from_frame(active[["unit_id", "day"]]), fill_value=0.0)
    ).reset_index()
    per_day["variant"] = per_day["unit_id"].map(variant)
    first, second = config.launches
    for start, end, effect in (
        (config.start, first.date - dt.timedelta(days=1), 0.0),
        (second.date, config.end, second.watch_time),
    ):
        days = per_day[(per_day["day"] >= start) & (per_day["day"] <= end)]
        means = days.groupby("variant")["value"].mean()
        lift = means["launched"] / means["holdout"] - 1.0
        assert lift == pytest.approx(effect, abs=0.12), (start, lift)
    by_segment = truth.segment_relative_effects
    assert by_segment["watch_time"][f"launch_period={second.name}"] == pytest.approx(
        second.watch_time, abs=1e-12
    )
    since_first = by_segment["watch_time"][f"launch_period={first.name}"]
    assert first.watch_time < since_first < second.watch_time
    assert 0.0 < truth.relative_effects["watch_time"] < since_first  # days before any launch


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {
                "ramp": (
                    SimulatedPhase(dt.date(2026, 10, 2), (("control", 0.5), ("treatment", 0.5))),
                )
            },
            "start on the window's start",
        ),
        (
            {
                "ramp": (
                    SimulatedPhase(dt.date(2026, 10, 1), (("control", 0.9), ("treatment", 0.1))),
                )
            },
            "last ramp phase's weights",
        ),
        ({"launches": (SimulatedLaunch("x", dt.date(2027, 1, 1)),)}, "inside the window"),
        (
            {
                "launches": (SimulatedLaunch("x", dt.date(2026, 10, 2)),),
                "ramp": (
                    SimulatedPhase(dt.date(2026, 10, 1), (("control", 0.5), ("treatment", 0.5))),
                ),
            },
            "only one of them",
        ),
        (
            {"rollout": SimulatedRollout(markets=4, treated=4, date=dt.date(2026, 10, 3))},
            "fewer than rollout.markets",
        ),
        (
            {"rollout": SimulatedRollout(markets=4, treated=2, date=dt.date(2026, 10, 1))},
            "after its first day",
        ),
        (
            {"rollout": SimulatedRollout(markets=4, treated=2, date=dt.date(2026, 10, 3))},
            "must not move conversion",
        ),
    ],
)
def test_bad_phases_and_launches_are_explained(change: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SimulationConfig(start=dt.date(2026, 10, 1), **change)  # type: ignore[arg-type]


def test_a_rollouts_variant_is_its_markets_on_the_day(tmp_path: Path) -> None:
    """Each unit keeps one market; its exposures are the treatment's exactly on the rollout's
    days in a treated market. The truth: watch time +20 % once treated, and the DiD estimand
    (absolute, per treated unit-day after the rollout) is that share of the treated markets'
    expected untreated watch seconds, whose observed counterpart is close."""
    config = dataclasses.replace(SHOWCASE["did_demo"], n_units=3_000)
    assert isinstance(config, SimulationConfig) and config.rollout is not None
    rollout = config.rollout
    truth = simulate(tmp_path, config)
    exposures, events = _logs(tmp_path)
    assert exposures.groupby("unit_id")["market"].nunique().max() == 1
    treated_markets = set(rollout.market_names()[: rollout.treated])
    expected = np.where(
        exposures["market"].isin(treated_markets) & (exposures["day"] >= rollout.date),
        "treatment",
        "control",
    )
    assert (exposures["variant"] == expected).all()
    assert set(exposures["market"]) == set(rollout.market_names())
    assert truth.relative_effects["watch_time"] == rollout.watch_time
    # Treated unit-days after the rollout: observed watch seconds ≈ (1 + effect) x the
    # counterfactual, whose effect share the truth is (a check of scale: a unit-day's watch
    # seconds are heavy-tailed, so 3,000 users leave several per cent of noise; the DiD's
    # interval covering the truth is checked end to end in test_showcase_demo.py).
    watch = events[events["event"] == "watch_seconds"].groupby(["unit_id", "day"])["value"].sum()
    days = exposures.drop_duplicates(["unit_id", "day"])
    post = days[days["market"].isin(treated_markets) & (days["day"] >= rollout.date)]
    observed = watch.reindex(pd.MultiIndex.from_frame(post[["unit_id", "day"]])).fillna(0.0)
    estimand = truth.estimands["did:watch_time"]
    counterfactual = estimand / rollout.watch_time
    assert observed.mean() == pytest.approx(counterfactual * (1 + rollout.watch_time), rel=0.2)


def test_an_oecs_truth_is_the_weighted_sum_of_its_components(tmp_path: Path) -> None:
    """The OEC's truth is the weights times the components' relative lifts (CTR's lift is the
    same on every platform, so its mixture is that lift); clicks move with CTR, items shown not."""
    config = dataclasses.replace(SHOWCASE["oec_demo"], n_units=1_000, days=2)
    assert isinstance(config, SimulationConfig) and config.oec is not None
    truth = simulate(tmp_path, config)
    effects = truth.relative_effects
    assert effects["ctr"] == pytest.approx(0.10, abs=1e-12)
    assert (effects["clicks"], effects["items_shown"]) == (effects["ctr"], 0.0)
    assert (effects["watch_time"], effects["conversion"]) == (0.20, 0.15)
    assert truth.estimands["oec:oec_engagement"] == pytest.approx(
        0.3 * 0.20 + 0.2 * 0.15 + 0.5 * 0.10, abs=1e-12
    )


def test_the_bandits_split_is_the_librarys_on_the_logs_so_far(tmp_path: Path) -> None:
    """Recomputed from the written logs (not the simulator's state): each day after burn-in
    served the allocation of the units and conversions through the day before, with the
    asset's seed; burn-in days served the planned split; c, the best arm, ends with the most
    traffic."""
    config = dataclasses.replace(SHOWCASE["bandit_demo"], n_units=1_600)
    assert isinstance(config, BanditSimulationConfig)
    truth = simulate_bandit(tmp_path, config)
    exposures, events = _logs(tmp_path)
    buyers = set(events.loc[events["event"] == "purchase", "unit_id"])
    assert (
        events["day"].to_numpy()
        == events["unit_id"].map(exposures.set_index("unit_id")["day"]).to_numpy()
    ).all()  # a purchase follows its exposure the same day
    exposures["converted"] = exposures["unit_id"].isin(buyers)
    names = [name for name, _ in config.weights]
    for offset in range(config.days):
        day = config.start + dt.timedelta(days=offset)
        served = [truth.estimands[f"bandit_split:{day}:{name}"] for name in names]
        if offset < config.burn_in_days:
            assert served == [w for _, w in config.weights]
            continue
        before = exposures[exposures["day"] < day].groupby("variant")["converted"]
        n, converted = before.size(), before.sum()
        expected = bandit_allocation(
            names,
            [proportion_posterior(int(n[v]), int(converted[v])) for v in names],
            floor=config.floor,
            seed=allocation_seed(config.experiment_id, day - dt.timedelta(days=1)),
        )
        assert served == pytest.approx(list(expected.weights), abs=1e-12)
        assert min(served) >= config.floor - 1e-12
    last = config.end.isoformat()
    assert max(names, key=lambda v: truth.estimands[f"bandit_split:{last}:{v}"]) == "c"
    assert truth.estimands["bandit_lift:c:conversion"] == pytest.approx(0.27 / 0.20 - 1)


def test_without_phases_or_launches_nothing_changes() -> None:
    """The defaults are the demo's: no ramp, no launches (its logs stay byte-identical; the
    golden test and tests/unit/test_simulate.py check the files)."""
    config = SimulationConfig()
    assert config.ramp == () and config.launches == ()
    assert np.isclose(sum(w for _, w in config.weights), 1.0)
