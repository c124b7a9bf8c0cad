"""Daily looks at cumulative metrics, with exposures spread over the window.

A per-unit sum, an "ever converted" proportion, a ratio of sums and a CUPED-adjusted sum are
recomputed every day from each exposed unit's values so far: units keep arriving and every unit's
value keeps growing. Their absolute standard error then grows with the values, so the inverse
variance ``1 / se²`` falls from look to look and a design built on it leaves later looks nothing
to spend (the bug users hit: "|z| = 13.87 against a boundary of inf"). The scale-free information
``(pooled mean / se)²`` (``analysis.sequential_information: relative``, the default) grows with
units and days; these simulations check what the design promises on it: A/A false-positive rate
at most alpha over 14 daily looks, power within 3 points of the fixed-horizon design's 80 %, and
every boundary finite.

Each replicate draws unit-level data (600 units per arm, first exposures uniform over the 14 days
or ramped up) and computes every look with the engine's own tests (Welch, two-proportion, delta
method ratio, CUPED). The boundaries come from the planned information (the replicates' mean), as
in ``tests/unit/stats/test_sequential.py``; a subset checks that each replicate's own observed
information gives the same decisions. Seeds are fixed, so the figures are reproducible.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from exp_dagster.analysis import compute_results, history_by_day, look_scale, spending_times
from exp_dagster.decision import Verdict, decide
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.stats import (
    CovariateMoments,
    EffectEstimate,
    Moments,
    RatioMoments,
    always_valid_test,
    cuped_test,
    group_sequential_boundaries,
    group_sequential_test,
    ratio_test,
    two_proportion_test,
    welch_test,
)

DAYS = 14
UNITS = 600  # per arm
RAMP = np.array([2, 2, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], dtype=float)


def first_days(rng: np.random.Generator, entry: str, units: int) -> np.ndarray:
    if entry == "spread":
        return rng.integers(0, DAYS, size=units)
    return rng.choice(DAYS, size=units, p=RAMP / RAMP.sum())  # a ramp-up: 2 %, 2 %, 5 %, ...


def simulate_arm(
    rng: np.random.Generator, kind: str, lift: float, entry: str, units: int = UNITS
) -> dict[str, Any]:
    """One arm's cumulative per-unit values at the end of each day (0 before exposure)."""
    activity = rng.gamma(2.0, 0.5, size=units)  # heterogeneous, persistent unit activity
    active = np.arange(DAYS)[None, :] >= first_days(rng, entry, units)[:, None]
    arm: dict[str, Any] = {"active": active}
    if kind in ("sum", "cuped"):
        sessions = rng.random((units, DAYS)) < 0.5
        seconds = rng.gamma(2.0, 15.0, size=(units, DAYS)) * activity[:, None] * (1.0 + lift)
        arm["y"] = np.cumsum(sessions * seconds * active, axis=1)
        if kind == "cuped":  # the same activity over 7 pre-period days
            pre = (rng.random((units, 7)) < 0.5) * rng.gamma(2.0, 15.0, size=(units, 7))
            arm["c"] = (pre * activity[:, None]).sum(axis=1)
    elif kind == "proportion":
        converts = rng.random((units, DAYS)) < 0.08 * activity[:, None] * (1.0 + lift)
        arm["y"] = np.maximum.accumulate(converts & active, axis=1).astype(float)
    else:  # ratio: clicks over impressions
        impressions = rng.poisson(4.0 * activity[:, None], size=(units, DAYS)) * active
        clicks = rng.binomial(impressions, 0.1 * (1.0 + lift))
        arm["y"], arm["x"] = np.cumsum(clicks, axis=1), np.cumsum(impressions, axis=1)
    return arm


def look(
    kind: str, control: dict[str, Any], treatment: dict[str, Any], k: int
) -> EffectEstimate | None:
    """The engine's test on the units exposed by the end of day ``k`` (``None`` where the effect
    cannot be estimated yet, e.g. no conversion in either arm: the pipeline skips such a look)."""
    if min(control["active"][:, k].sum(), treatment["active"][:, k].sum()) < 2:
        return None
    if kind == "proportion" and not (control["y"][:, k].any() or treatment["y"][:, k].any()):
        return None
    arms = []
    for arm in (control, treatment):
        seen = arm["active"][:, k]
        y = arm["y"][seen, k].astype(float)
        if kind == "ratio":
            x = arm["x"][seen, k].astype(float)
            arms.append(RatioMoments(y.size, y.sum(), x.sum(), y @ y, x @ x, x @ y))
        elif kind == "cuped":
            c = arm["c"][seen]
            arms.append(CovariateMoments(y.size, y.sum(), y @ y, c.sum(), c @ c, y @ c))
        else:
            arms.append(Moments(y.size, y.sum(), y @ y))
    if kind == "ratio":
        if min(arm.sum_x for arm in arms) <= 0:  # no impression yet in an arm
            return None
        effect = ratio_test(*arms)
    elif kind == "cuped":
        effect = cuped_test(*arms)
    elif kind == "proportion":
        (c, t) = arms
        effect = two_proportion_test(round(c.sum_y), c.n, round(t.sum_y), t.n)
    else:
        effect = welch_test(*arms)
    return effect if effect.std_error > 0 else None


def replicates(
    rng: np.random.Generator, kind: str, reps: int, lift: float, entry: str
) -> list[list[EffectEstimate | None]]:
    out = []
    for _ in range(reps):
        control = simulate_arm(rng, kind, 0.0, entry)
        treatment = simulate_arm(rng, kind, lift, entry)
        out.append([look(kind, control, treatment, k) for k in range(DAYS)])
    return out


def z_and_information(
    runs: list[list[EffectEstimate | None]],
) -> tuple[np.ndarray, np.ndarray]:
    """z statistics (0 where a look was skipped: it cannot cross) and scale-free information
    (NaN where skipped) of every replicate and look."""
    z = np.array([[e.abs_effect / e.std_error if e else 0.0 for e in run] for run in runs])
    information = np.array(
        [[(look_scale(e) / e.std_error) ** 2 if e else np.nan for e in run] for run in runs]
    )
    return z, information


@functools.cache
def design(mde: float) -> ResolvedExperiment:
    """A 14-day spec whose planned information is that of a fixed test of ``mde``."""
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return parse_experiment(
        {
            "id": "design",
            "variants": [
                {"name": "control", "weight": 0.5, "control": True},
                {"name": "treatment", "weight": 0.5},
            ],
            "start": "2026-10-01",
            "end": "2026-10-14",
            "pre_period_days": 0,
            "metrics": {"primary": "watch_time"},
            "mde": mde,
        },
        "design.yaml",
        catalog,
    )


def rejections(z: np.ndarray, planned_information: np.ndarray, design_lift: float) -> np.ndarray:
    """Crossings of the boundaries the pipeline uses: spending time from
    ``analysis.spending_times`` for a spec whose ``mde`` is the design's lift."""
    experiment = design(design_lift)
    days = [experiment.spec.start + dt.timedelta(days=k) for k in range(DAYS)]
    times = spending_times(experiment, days, list(planned_information))
    bounds = np.array(
        group_sequential_boundaries(
            times, list(planned_information), alpha=0.05, kind="obrien-fleming"
        )
    )
    # No look is left without a boundary, but the first few of a slow start, where O'Brien-
    # Fleming spends less than 1e-300 (a boundary beyond 37 standard errors).
    assert np.isfinite(bounds[3:]).all(), bounds
    return (np.abs(z) >= bounds).any(axis=1)


KINDS = ["sum", "proportion", "ratio", "cuped"]


@pytest.mark.parametrize("entry", ["spread", "ramp"])
@pytest.mark.parametrize("kind", KINDS)
def test_daily_looks_at_cumulative_metrics_hold_alpha_and_keep_the_design_power(
    kind: str, entry: str
) -> None:
    rng = np.random.default_rng([17, KINDS.index(kind), entry == "ramp"])
    reps = 2000
    null = replicates(rng, kind, reps, 0.0, entry)
    null_z, null_information = z_and_information(null)
    planned = np.nanmean(null_information, axis=0)
    assert (np.diff(planned) > 0).all()  # the scale-free information grows every day
    if kind == "sum":
        # The absolute information 1 / se² of a per-unit sum falls before the end: on it, the
        # last looks would only repeat an earlier boundary.
        absolute = np.mean([[e.std_error**-2 for e in run] for run in null], axis=0)
        assert absolute[-1] < absolute.max()
    # The design: a fixed-horizon test at the last look with 80 % power for the relative lift
    # (the spec's mde) whose expected final z is z_{0.975} + z_{0.8} = 2.80.
    mde = 2.8016 / np.sqrt(planned[-1])
    false_positive_rate = rejections(null_z, planned, mde).mean()
    # Monte Carlo SE at 2000 replicates: sqrt(0.05 * 0.95 / 2000) = 0.0049; 0.015 is 3 SE.
    assert false_positive_rate <= 0.05 + 0.015, false_positive_rate
    assert false_positive_rate >= 0.02, false_positive_rate  # not bought by never concluding

    # The lifted arm: a pilot finds the lift of the simulated behaviour that moves the metric
    # by about mde (a lifted daily conversion rate moves "ever converted" by less).
    pilot_z, _ = z_and_information(replicates(rng, kind, 150, mde, entry))
    lift = mde * 2.8016 / pilot_z[:, -1].mean()
    alt_z, _ = z_and_information(replicates(rng, kind, 1200, lift, entry))
    power = rejections(alt_z, planned, mde).mean()
    design_power = (np.abs(alt_z[:, -1]) >= 1.959964).mean()
    assert 0.72 <= design_power <= 0.88, design_power
    # Daily looks may cost at most 3 points of the design's power. Paired on the same
    # replicates, the difference has a Monte Carlo SE of about 0.005.
    assert abs(power - design_power) <= 0.03 + 0.01, (power, design_power)


def test_observed_information_gives_the_planned_decisions() -> None:
    # group_sequential_test on each replicate's own scale-free information and spending times
    # (what the pipeline runs) against the planned boundaries used above for speed.
    rng = np.random.default_rng(23)
    runs = replicates(rng, "sum", 60, 0.1, "spread")
    z, information = z_and_information(runs)
    planned = rejections(z, information.mean(axis=0), 0.1)
    experiment = design(0.1)
    days = [experiment.spec.start + dt.timedelta(days=k) for k in range(DAYS)]
    observed = np.array(
        [
            group_sequential_test(
                [e.abs_effect for e in run],
                [e.std_error for e in run],
                spending_times(experiment, days, list(info)),
                information=list(info),
            ).crossed
            for run, info in zip(runs, information, strict=True)
        ]
    )
    assert 0.2 < observed.mean() < 0.95
    assert np.mean(planned == observed) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_always_valid_on_the_relative_scale_holds_alpha(kind: str) -> None:
    rng = np.random.default_rng([29, KINDS.index(kind)])
    runs = replicates(rng, kind, 400, 0.0, "spread")
    rejected = [
        always_valid_test(
            [e.abs_effect / look_scale(e) for e in run],
            [e.std_error / look_scale(e) for e in run],
            tau=0.05,
        ).rejected
        for run in runs
    ]
    # Ville's inequality makes the mixture SPRT conservative: seen well under 0.01 here.
    assert np.mean(rejected) <= 0.05


# ── the user's case: a +50 % lift on a per-user sum, through compute_results and decide ─────


@pytest.fixture(scope="module")
def catalog() -> MetricCatalog:
    return load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")


def watch_time_experiment(catalog: MetricCatalog, sequential: str) -> ResolvedExperiment:
    start = dt.date(2026, 10, 1)
    return parse_experiment(
        {
            "id": "sum_test",
            "variants": [
                {"name": "control", "weight": 0.5, "control": True},
                {"name": "treatment", "weight": 0.5},
            ],
            "start": start.isoformat(),
            "end": (start + dt.timedelta(days=DAYS - 1)).isoformat(),
            "pre_period_days": 0,
            "metrics": {"primary": "watch_time"},
            "mde": 0.05,
            "analysis": {"sequential": sequential},
        },
        "sum_test.yaml",
        catalog,
    )


def statistics_rows(arms: dict[str, dict[str, Any]], start: dt.date) -> dict[dt.date, list[Any]]:
    rows: dict[dt.date, list[Any]] = {}
    for k in range(DAYS):
        day = start + dt.timedelta(days=k)
        rows[day] = []
        for variant, arm in arms.items():
            y = arm["y"][arm["active"][:, k], k]
            rows[day].append(
                {
                    "as_of_date": day,
                    "metric": "watch_time",
                    "variant": variant,
                    "segment": "all",
                    "segment_value": "all",
                    "n": int(y.size),
                    "sum_y": float(y.sum()),
                    "sum_y2": float(y @ y),
                    "sum_c": None,
                    "sum_c2": None,
                    "sum_yc": None,
                }
            )
    return rows


Analysis = Callable[[ResolvedExperiment, dt.date], list[dict[str, Any]]]


@pytest.mark.parametrize("sequential", ["group_sequential", "always_valid"])
def test_a_large_lift_on_a_per_user_sum_ships_before_the_end(
    catalog: MetricCatalog, sequential: str
) -> None:
    rng = np.random.default_rng(31)
    # The user's report: |z| = 13.87 on look 7 against a boundary of inf, INCONCLUSIVE.
    arms = {
        "control": simulate_arm(rng, "sum", 0.0, "spread", units=8000),
        "treatment": simulate_arm(rng, "sum", 0.5, "spread", units=8000),
    }
    resolved = watch_time_experiment(catalog, sequential)
    rows = statistics_rows(arms, resolved.spec.start)
    day = resolved.spec.start + dt.timedelta(days=6)
    history = history_by_day([r for d, day_rows in rows.items() if d < day for r in day_rows])
    results = compute_results(resolved, day, rows[day], history=history)
    row = next(r for r in results if r["segment"] == "all")
    assert row["rel_effect"] == pytest.approx(0.5, abs=0.1)
    assert row["abs_effect"] / row["std_error"] > 10
    assert row["sequential_significant"] is True
    if sequential == "group_sequential":
        assert np.isfinite(row["sequential_boundary"])
    else:
        assert row["sequential_p_value"] < 0.05
        assert row["sequential_ci_low"] > 0 and row["sequential_ci_high"] > row["abs_effect"]
    units = {"control": int(rows[day][0]["n"]), "treatment": int(rows[day][1]["n"])}
    verdict = decide(resolved, day, results, units)
    assert verdict.decision == Verdict.SHIP, verdict.reasons
