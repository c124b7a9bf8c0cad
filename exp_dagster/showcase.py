"""The showcase experiments beside the demo's ``ranker_v2``: small simulated experiments, one per
feature of issue 21, each with its spec in ``catalog/experiments/<id>.yaml`` and here the
simulation of its logs, whose ``truth.json`` holds the effects the analysis must find.

``exp-dagster demo --experiment <id>`` (or ``--all``) simulates and materialises one in its own
home folder, ``<home>/showcase/<id>``, so the demo's own logs and tables stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from exp_dagster.simulate import (
    SimulatedLaunch,
    SimulatedOEC,
    SimulatedPhase,
    SimulatedRollout,
    SimulationConfig,
    SimulationTruth,
    TreatmentEffects,
    simulate,
)
from exp_dagster.simulate_bandit import BanditSimulationConfig, simulate_bandit
from exp_dagster.simulate_models import ModelLogSizes

# Effects the showcases leave alone: conversion, revenue and latency do not move.
_NO_EFFECT = TreatmentEffects(
    ctr_by_platform=(), watch_time=0.0, conversion=0.0, revenue_per_purchase=0.0, latency=0.0
)


def _ctr(lift: float) -> tuple[tuple[str, float], ...]:
    return (("ios", lift), ("android", lift), ("web", lift))


SHOWCASE: dict[str, SimulationConfig | BanditSimulationConfig] = {
    # A ramp 10 % -> 30 % -> 50 % whose effect on watch time falls as it widens (early units
    # respond more), while the early units also watch more: the pooled comparison is biased,
    # the phase-stratified one is not. Latency does not move: the guardrail never rolls back.
    "ramp_demo": SimulationConfig(
        experiment_id="ramp_demo",
        salt="ramp_demo-2026-10",
        weights=(("control", 0.5), ("treatment", 0.5)),
        n_units=6_000,
        start=date(2026, 10, 1),
        days=8,
        pre_days=0,
        seed=21,
        messy=False,
        effects=_NO_EFFECT,
        model_logs=ModelLogSizes(0, 0, 0),
        ramp=(
            SimulatedPhase(
                date(2026, 10, 1), (("control", 0.9), ("treatment", 0.1)), _ctr(0.08), 0.25
            ),
            SimulatedPhase(
                date(2026, 10, 3), (("control", 0.7), ("treatment", 0.3)), _ctr(0.06), 0.15
            ),
            SimulatedPhase(
                date(2026, 10, 5), (("control", 0.5), ("treatment", 0.5)), _ctr(0.04), 0.08
            ),
        ),
    ),
    # A 20 % holdout: no effect before the first launch, then ranker_v2's, then ranker_v2's
    # and notif_v3's together.
    "holdout_demo": SimulationConfig(
        experiment_id="holdout_demo",
        salt="holdout_demo-2026-10",
        weights=(("holdout", 0.2), ("launched", 0.8)),
        n_units=6_000,
        start=date(2026, 10, 1),
        days=10,
        pre_days=0,
        seed=22,
        messy=False,
        effects=_NO_EFFECT,
        model_logs=ModelLogSizes(0, 0, 0),
        launches=(
            SimulatedLaunch("ranker_v2", date(2026, 10, 3), _ctr(0.05), 0.10),
            SimulatedLaunch("notif_v3", date(2026, 10, 6), _ctr(0.05), 0.25),
        ),
    ),
    # Watch time +20 %, conversion +15 %, CTR +10 % (items shown unmoved): the OEC (0.3, 0.2
    # and 0.5 of the relative lifts) moves by +14 %; the tree clicks = items shown x ctr shows
    # the CTR branch moved, not the items shown. Latency does not move.
    "oec_demo": SimulationConfig(
        experiment_id="oec_demo",
        salt="oec_demo-2026-10",
        weights=(("control", 0.5), ("treatment", 0.5)),
        n_units=8_000,
        start=date(2026, 10, 1),
        days=6,
        pre_days=0,
        seed=23,
        messy=False,
        effects=TreatmentEffects(
            ctr_by_platform=_ctr(0.10),
            watch_time=0.20,
            conversion=0.15,
            revenue_per_purchase=0.0,
            latency=0.0,
        ),
        model_logs=ModelLogSizes(0, 0, 0),
        oec=SimulatedOEC(
            "oec_engagement", (("watch_time", 0.3), ("conversion", 0.2), ("ctr", 0.5))
        ),
    ),
    # 8 of 20 markets get the new ranker on 2026-10-06, not at random: their users already
    # watched 15 % more. Watch time +20 % once treated; every market's trend the same.
    "did_demo": SimulationConfig(
        experiment_id="did_demo",
        salt="did_demo-2026-10",
        weights=(("control", 0.5), ("treatment", 0.5)),
        n_units=6_000,
        start=date(2026, 10, 1),
        days=10,
        pre_days=0,
        seed=24,
        messy=False,
        effects=_NO_EFFECT,
        model_logs=ModelLogSizes(0, 0, 0),
        rollout=SimulatedRollout(
            markets=20,
            treated=8,
            date=date(2026, 10, 6),
            ctr_by_platform=_ctr(0.05),
            watch_time=0.20,
            treated_level=1.15,
        ),
    ),
    # Three banners converting 20 %, 22 % and 27 %: Thompson sampling on conversion moves the
    # traffic to c after two days of burn-in, every arm keeping at least 10 %.
    "bandit_demo": BanditSimulationConfig(
        experiment_id="bandit_demo",
        salt="bandit_demo-2026-10",
        weights=(("control", 0.34), ("b", 0.33), ("c", 0.33)),
        conversion=(("control", 0.20), ("b", 0.22), ("c", 0.27)),
        n_units=3_600,
        start=date(2026, 10, 1),
        days=6,
        seed=25,
        algorithm="thompson",
        floor=0.1,
        burn_in_days=2,
    ),
}


def simulate_showcase(
    out_dir: Path,
    config: SimulationConfig | BanditSimulationConfig,
    *,
    progress: Callable[[str], None] | None = None,
) -> SimulationTruth:
    """Write a showcase's logs and ``truth.json``: the bandit's closed loop
    (:func:`exp_dagster.simulate_bandit.simulate_bandit`), else :func:`simulate`."""
    if isinstance(config, BanditSimulationConfig):
        return simulate_bandit(out_dir, config, progress=progress)
    return simulate(out_dir, config, progress=progress)
