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
    SimulationConfig,
    simulate,
)
from exp_dagster.spec import earliest_event_day, load_experiments, load_metric_catalog

CATALOG = PROJECT_ROOT / "catalog"


def test_the_showcase_simulations_agree_with_their_specs() -> None:
    experiments = load_experiments(
        CATALOG / "experiments", load_metric_catalog(CATALOG / "metrics.yaml")
    )
    assert set(SHOWCASE) == set(cli.SHOWCASE_EXPERIMENTS) < set(experiments)
    ranker = experiments[cli.DEMO_EXPERIMENT].spec
    for name, config in SHOWCASE.items():
        spec = experiments[name].spec
        assert (config.experiment_id, config.salt) == (spec.id, spec.hash_salt)
        assert config.weights == tuple((v.name, v.weight) for v in spec.variants)
        assert (config.start, config.end) == (spec.start, spec.end)
        assert config.pre_days == spec.pre_period_days
        # Inside the demo's days: the partition grid starts where it did.
        assert spec.first_event_day >= ranker.first_event_day
        phases = [(p.start, p.weights) for p in spec.ramp or ()]
        assert [(p.start, dict(p.weights)) for p in config.ramp] == phases
        launches = [(x.name, x.date) for x in spec.holdout.launches] if spec.holdout else []
        assert [(x.name, x.date) for x in config.launches] == launches


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
            "not both",
        ),
    ],
)
def test_bad_phases_and_launches_are_explained(change: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SimulationConfig(start=dt.date(2026, 10, 1), **change)  # type: ignore[arg-type]


def test_without_phases_or_launches_nothing_changes() -> None:
    """The defaults are the demo's: no ramp, no launches (its logs stay byte-identical; the
    golden test and tests/unit/test_simulate.py check the files)."""
    config = SimulationConfig()
    assert config.ramp == () and config.launches == ()
    assert np.isclose(sum(w for _, w in config.weights), 1.0)
