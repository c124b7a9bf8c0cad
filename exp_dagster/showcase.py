"""The showcase experiments beside the demo's ``ranker_v2``: small simulated experiments, one per
feature of issue 21, each with its spec in ``catalog/experiments/<id>.yaml`` and here the
simulation of its logs, whose ``truth.json`` holds the effects the analysis must find.

``exp-dagster demo --experiment <id>`` (or ``--all``) simulates and materialises one in its own
home folder, ``<home>/showcase/<id>``, so the demo's own logs and tables stay as they are.
"""

from __future__ import annotations

from datetime import date

from exp_dagster.simulate import (
    SimulatedLaunch,
    SimulatedPhase,
    SimulationConfig,
    TreatmentEffects,
)
from exp_dagster.simulate_models import ModelLogSizes

# Effects the showcases leave alone: conversion, revenue and latency do not move.
_NO_EFFECT = TreatmentEffects(
    ctr_by_platform=(), watch_time=0.0, conversion=0.0, revenue_per_purchase=0.0, latency=0.0
)


def _ctr(lift: float) -> tuple[tuple[str, float], ...]:
    return (("ios", lift), ("android", lift), ("web", lift))


SHOWCASE: dict[str, SimulationConfig] = {
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
}
