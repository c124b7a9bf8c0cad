"""The decision policy on hand-built results: each verdict, and reasons people can read."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from typing import Any

import pytest

from exp_dagster.decision import Verdict, decide
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.significance import significance_fields
from exp_dagster.spec import ResolvedExperiment, load_experiment, load_metric_catalog

END = dt.date(2026, 10, 14)
BALANCED = {"control": 10_000, "treatment": 10_050}


@functools.cache
def ranker_v2() -> ResolvedExperiment:
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return load_experiment(PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml", catalog)


@pytest.fixture(scope="module")
def experiment() -> ResolvedExperiment:
    return ranker_v2()


def row(
    metric: str,
    rel: float,
    low: float,
    high: float,
    p: float,
    *,
    judged_by: ResolvedExperiment | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A hand-built overall row, judged significant or not as the analysis would judge it under
    ``judged_by`` (ranker_v2 by default; without sequential fields: on its fixed-horizon
    p-value)."""
    base = {
        "metric": metric,
        "segment": "all",
        "variant": "treatment",
        "control": "control",
        "direction": "decrease" if metric == "latency_p95" else "increase",
        "rel_effect": rel,
        "rel_ci_low": low,
        "rel_ci_high": high,
        "abs_ci_low": low,
        "abs_ci_high": high,
        "p_value": p,
        "ni_margin": None,
        "ni_margin_type": None,
        "ni_bound": None,
        "ni_passed": None,
    }
    built = {**base, **extra}
    return {**built, **significance_fields(judged_by or ranker_v2(), built)}


def latency(rel: float, low: float, high: float, bound: float) -> dict[str, Any]:
    return row(
        "latency_p95",
        rel,
        low,
        high,
        0.01,
        ni_margin=0.05,
        ni_margin_type="relative",
        ni_bound=bound,
        ni_passed=bound < 0.05,
    )


def test_ship_at_the_end_when_primary_wins_and_guardrail_holds(
    experiment: ResolvedExperiment,
) -> None:
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.03, 0.02, 0.04, 0.038)]
    decision = decide(experiment, END, results, BALANCED)
    assert decision.decision == Verdict.SHIP and decision.variant == "treatment"
    text = " ".join(decision.reasons)
    assert "Primary metric ctr: treatment +4.00% [+2.00%, +6.00%]" in text
    assert "non-inferior" in text and "+5.00%" in text


def test_no_ship_before_the_end_date(experiment: ResolvedExperiment) -> None:
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.03, 0.02, 0.04, 0.038)]
    decision = decide(experiment, END - dt.timedelta(days=3), results, BALANCED)
    assert decision.decision == Verdict.KEEP_RUNNING
    assert "peeking" in decision.reasons[0]


def test_rollback_when_primary_is_significantly_worse(experiment: ResolvedExperiment) -> None:
    results = [row("ctr", -0.05, -0.07, -0.03, 0.0001), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(experiment, END - dt.timedelta(days=5), results, BALANCED)
    assert decision.decision == Verdict.ROLLBACK
    assert "significantly worse" in " ".join(decision.reasons)


def test_rollback_when_a_guardrail_is_breached_beyond_its_margin(
    experiment: ResolvedExperiment,
) -> None:
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.09, 0.07, 0.11, 0.105)]
    decision = decide(experiment, END, results, BALANCED)
    assert decision.decision == Verdict.ROLLBACK
    assert "harm beyond the +5.00% margin" in " ".join(decision.reasons)


def test_inconclusive_at_the_end_when_guardrail_not_shown_non_inferior(
    experiment: ResolvedExperiment,
) -> None:
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.04, 0.0, 0.08, 0.07)]
    decision = decide(experiment, END, results, BALANCED)
    assert decision.decision == Verdict.INCONCLUSIVE
    assert "not yet shown non-inferior" in " ".join(decision.reasons)


def test_inconclusive_at_the_end_when_primary_is_flat(experiment: ResolvedExperiment) -> None:
    results = [row("ctr", 0.002, -0.01, 0.014, 0.7), latency(0.0, -0.01, 0.01, 0.008)]
    assert decide(experiment, END, results, BALANCED).decision == Verdict.INCONCLUSIVE
    assert (
        decide(experiment, END - dt.timedelta(days=1), results, BALANCED).decision
        == Verdict.KEEP_RUNNING
    )


def test_sample_ratio_mismatch_is_invalid_whatever_the_effects(
    experiment: ResolvedExperiment,
) -> None:
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.03, 0.02, 0.04, 0.038)]
    decision = decide(experiment, END, results, {"control": 10_000, "treatment": 9_400})
    assert decision.decision == Verdict.INVALID
    assert decision.srm_p_value is not None and decision.srm_p_value < 0.001
    assert decision.reasons[0].startswith("Sample ratio mismatch: 10,000 control / 9,400 treatment")


def test_empty_arm_and_failed_gates_are_invalid(experiment: ResolvedExperiment) -> None:
    empty = decide(experiment, END, [], {"control": 500, "treatment": 0})
    assert empty.decision == Verdict.INVALID and "No exposed units in treatment" in empty.reasons[0]
    gated = decide(
        experiment, END, [], BALANCED, gate_failures=["exposures failed its schema gate"]
    )
    assert gated.decision == Verdict.INVALID and gated.reasons == (
        "exposures failed its schema gate",
    )


def test_segment_cells_without_a_defined_effect_are_skipped(
    experiment: ResolvedExperiment,
) -> None:
    """A segment value without an effect has no row; each metric's overall row is there, with
    the reason it is not estimable (here: no overall statistics at all)."""
    from exp_dagster.analysis import compute_results

    def cell(variant: str, n: int, sum_x: float) -> dict[str, Any]:
        return {
            "metric": "ctr",
            "variant": variant,
            "segment": "platform",
            "segment_value": "web",
            "n": n,
            "sum_y": 3.0,
            "sum_y2": 5.0,
            "sum_x": sum_x,
            "sum_x2": sum_x * 2,
            "sum_xy": 4.0,
            "sum_c": None,
            "sum_c2": None,
            "sum_yc": None,
        }

    no_impressions = [cell("control", 40, 0.0), cell("treatment", 40, 60.0)]
    one_unit = [cell("control", 1, 10.0), cell("treatment", 40, 60.0)]
    fine = [cell("control", 40, 50.0), cell("treatment", 40, 60.0)]
    day = dt.date(2026, 10, 5)

    def estimated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        overall = [r for r in rows if r["segment"] == "all"]
        assert {r["metric"] for r in overall} == set(experiment.spec.metric_names)
        assert all(r["not_estimable"].startswith("not estimable: ") for r in overall)
        return [r for r in rows if r["segment"] != "all"]

    assert estimated(compute_results(experiment, day, no_impressions)) == []
    assert estimated(compute_results(experiment, day, one_unit)) == []
    (row,) = estimated(compute_results(experiment, day, fine))
    assert row["segment_value"] == "web" and row["metric_type"] == "ratio"


def test_an_unbounded_relative_interval_says_why_and_the_p_value_decides(
    experiment: ResolvedExperiment,
) -> None:
    """Fieller's interval is unbounded when the control mean is not significantly different
    from 0; the sentence says so next to the p-value, which decides."""
    inf = float("inf")
    results = [row("ctr", 0.5, -inf, inf, 0.01), latency(0.03, 0.02, 0.04, 0.038)]
    decision = decide(experiment, END, results, BALANCED)
    assert decision.decision == Verdict.SHIP
    assert (
        "Primary metric ctr: treatment +50.00% [−∞, +∞] against control (p = 0.0100; relative "
        "interval unbounded: the control mean is not significantly different from 0)"
    ) in " ".join(decision.reasons)


@pytest.mark.parametrize(
    ("method", "correction", "label"),
    [("g-test", False, "g-test"), ("exact", False, "exact"), ("chi-square", True, "(Yates)")],
)
def test_the_spec_chooses_the_srm_test(
    experiment: ResolvedExperiment, method: str, correction: bool, label: str
) -> None:
    from exp_dagster.stats import srm_test

    spec = experiment.spec.model_copy(update={"srm_method": method, "srm_correction": correction})
    chosen = experiment.model_copy(update={"spec": spec})
    split = {"control": 10_000, "treatment": 9_400}
    decision = decide(chosen, END, [row("ctr", 0.04, 0.02, 0.06, 0.0001)], split)
    expected = srm_test([10_000, 9_400], [0.5, 0.5], method=method, correction=correction)  # type: ignore[arg-type]
    assert decision.decision == Verdict.INVALID
    assert decision.srm_p_value == expected.p_value
    assert label in decision.reasons[0]
    assert expected.p_value != srm_test([10_000, 9_400], [0.5, 0.5]).p_value


def test_power_spending_is_named_in_the_reason(experiment: ResolvedExperiment) -> None:
    analysis = experiment.spec.analysis.model_copy(
        update={"spending": "power", "spending_rho": 2.0}
    )
    chosen = experiment.model_copy(
        update={"spec": experiment.spec.model_copy(update={"analysis": analysis})}
    )
    primary = row(
        "ctr",
        0.04,
        0.02,
        0.06,
        0.0001,
        sequential_method="group_sequential",
        sequential_significant=True,
        sequential_look=14,
        sequential_boundary=2.0,
        sequential_p_value=0.0001,
        information_fraction=1.0,
        judged_by=chosen,
    )
    decision = decide(chosen, END, [primary, latency(0.03, 0.02, 0.04, 0.038)], BALANCED)
    assert any("power (rho = 2) spending" in reason for reason in decision.reasons)


def test_report_and_decision_read_a_guardrail_alike() -> None:
    from exp_dagster.decision import shown_non_inferior

    # Under a sequential design the sequential test decides, even when the fixed bound passes.
    assert not shown_non_inferior({"ni_passed": True, "ni_sequential_passed": False})
    assert shown_non_inferior({"ni_passed": False, "ni_sequential_passed": True})
    # Without a sequential test (fixed horizon), the one-sided bound decides.
    assert shown_non_inferior({"ni_passed": True, "ni_sequential_passed": None})
    assert not shown_non_inferior({"ni_passed": None, "ni_sequential_passed": None})


RAMP = [
    {"start": "2026-10-01", "weights": {"control": 0.99, "treatment": 0.01}},
    {"start": "2026-10-03", "weights": {"control": 0.95, "treatment": 0.05}},
    {"start": "2026-10-06", "weights": {"control": 0.5, "treatment": 0.5}},
]


def ramped() -> ResolvedExperiment:
    from exp_dagster.spec import MetricCatalog, parse_experiment

    base = ranker_v2()
    data = base.spec.model_dump(mode="json")
    return parse_experiment(
        {**data, "ramp": RAMP}, "ramp.yaml", MetricCatalog(metrics=base.metrics)
    )


def test_a_ramp_tests_each_phase_against_its_own_weights() -> None:
    from scipy import stats

    experiment = ramped()
    phases = {
        "2026-10-01": {"control": 9_900, "treatment": 104},
        "2026-10-03": {"control": 14_230, "treatment": 760},
        "2026-10-06": {"control": 25_100, "treatment": 24_950},
    }
    total = {v: sum(p[v] for p in phases.values()) for v in ("control", "treatment")}
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(experiment, END, results, total, units_by_phase=phases)
    assert decision.decision == Verdict.SHIP
    p_values = [
        stats.chisquare(
            [p["control"], p["treatment"]],
            [sum(p.values()) * w for w in RAMP[i]["weights"].values()],
        ).pvalue
        for i, p in enumerate(phases.values())
    ]
    assert decision.srm_p_value == pytest.approx(min(1.0, 3 * min(p_values)), rel=1e-9)
    assert "per ramp phase (Bonferroni over 3)" in decision.reasons[-1]
    # The same units against the final 50/50 split alone: a gross mismatch.
    assert decide(ranker_v2(), END, results, total).decision == Verdict.INVALID


def test_a_broken_ramp_phase_is_invalid_and_named() -> None:
    phases = {
        "2026-10-01": {"control": 9_900, "treatment": 104},
        "2026-10-03": {"control": 14_230, "treatment": 560},  # treatment exposures lost
        "2026-10-06": {"control": 25_100, "treatment": 24_950},
    }
    total = {v: sum(p[v] for p in phases.values()) for v in ("control", "treatment")}
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001)]
    decision = decide(ramped(), END, results, total, units_by_phase=phases)
    assert decision.decision == Verdict.INVALID
    assert decision.reasons[0].startswith(
        "Sample ratio mismatch in the ramp phase from 2026-10-03: 14,230 control / 560 "
        "treatment units first exposed in it against its planned weights 0.95 / 0.05 (chi-square"
    )
    assert len(decision.reasons) == 2 and "The split is broken" in decision.reasons[1]
    with pytest.raises(ValueError, match="needs the units of each ramp phase"):
        decide(ramped(), END, results, total)


def test_segments_are_not_tested_against_one_split_under_a_ramp() -> None:
    phases = {
        "2026-10-01": {"control": 9_900, "treatment": 104},
        "2026-10-03": {"control": 14_230, "treatment": 760},
        "2026-10-06": {"control": 25_100, "treatment": 24_950},
    }
    total = {v: sum(p[v] for p in phases.values()) for v in ("control", "treatment")}
    # the platform's units pooled over the phases: far from 50/50, as the whole experiment
    segments = {"platform=ios": {"control": 20_000, "treatment": 10_000}}
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001)]
    decision = decide(
        ramped(), END, results, total, units_by_phase=phases, units_by_segment=segments
    )
    assert not any("within segment" in reason for reason in decision.reasons)
    plain = decide(ranker_v2(), END, results, BALANCED, units_by_segment=segments)
    assert any("within segment platform=ios" in reason for reason in plain.reasons)


def with_bandit() -> ResolvedExperiment:
    from exp_dagster.spec import MetricCatalog, parse_experiment

    base = ranker_v2()
    data = base.spec.model_dump(mode="json")
    data.pop("hash_salt")
    return parse_experiment(
        {**data, "bandit": {"metric": "conversion", "burn_in_days": 1}},
        "bandit.yaml",
        MetricCatalog(metrics=base.metrics),
    )


def reversed_rows(segment: str, values: list[str]) -> list[dict[str, Any]]:
    """Segment rows of ctr: the last value's effect significantly opposite to the others', with
    a significant heterogeneity test (as apply_heterogeneity marks a reversal)."""
    return [
        {
            **row("ctr", -0.05 if value == values[-1] else 0.04, -0.08, -0.02, 0.001),
            "segment": segment,
            "segment_value": value,
            "segment_reversal": value == values[-1],
            "heterogeneity_p_value": 1e-6,
        }
        for value in values
    ]


def test_a_bandits_allocation_days_give_no_reversal_reason() -> None:
    """A bandit's days are strata of an adaptive split, not groups of users: a day whose effect
    turned is not a decision reason (its rows stay in the results); a platform still is, and a
    ramp's phase still is (few planned phases, an effect that turns between them matters)."""
    experiment = with_bandit()
    days = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
    results = [
        row("ctr", 0.04, 0.02, 0.06, 0.0001, judged_by=experiment),
        *reversed_rows("allocation_day", days),
        *reversed_rows("platform", ["ios", "android", "web"]),
    ]
    by_day = {d: {"control": 5_000, "treatment": 5_020} for d in days}
    units = {"control": 20_000, "treatment": 20_080}
    decision = decide(experiment, END, results, units, units_by_phase=by_day)
    reversals = [r for r in decision.reasons if r.startswith("Segment reversal")]
    assert len(reversals) == 1 and reversals[0].startswith("Segment reversal: platform = web")
    assert not any("allocation_day" in r or "2026-10-04" in r for r in decision.reasons)

    phases = [phase["start"] for phase in RAMP]
    ramp_results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), *reversed_rows("ramp_phase", phases)]
    by_phase = {
        "2026-10-01": {"control": 9_900, "treatment": 104},
        "2026-10-03": {"control": 14_230, "treatment": 760},
        "2026-10-06": {"control": 25_100, "treatment": 24_950},
    }
    total = {v: sum(p[v] for p in by_phase.values()) for v in ("control", "treatment")}
    ramp = decide(ramped(), END, ramp_results, total, units_by_phase=by_phase)
    assert any(r.startswith("Segment reversal: ramp_phase = 2026-10-06") for r in ramp.reasons)


# ── guarded ramp decisions: continue, hold or roll back while the ramp is in progress ─────────

IN_RAMP = dt.date(2026, 10, 4)  # the 5 % phase (from 2026-10-03); 50 % from 2026-10-06
PHASES_SO_FAR = {
    "2026-10-01": {"control": 9_900, "treatment": 104},
    "2026-10-03": {"control": 14_230, "treatment": 760},
}
UNITS_SO_FAR = {"control": 24_130, "treatment": 864}


def sequential_latency(
    rel: float,
    low: float,
    high: float,
    bound: float,
    *,
    crossed: bool,
    ni_sequential: bool | None,
    experiment: ResolvedExperiment,
) -> dict[str, Any]:
    """A guardrail row as the analysis writes it under group_sequential: its own sequential
    test of the effect (``crossed``) and its sequential non-inferiority test."""
    return row(
        "latency_p95",
        rel,
        low,
        high,
        0.001 if crossed else 0.4,
        ni_margin=0.05,
        ni_margin_type="relative",
        ni_bound=bound,
        ni_passed=bound < 0.05,
        ni_sequential_passed=ni_sequential,
        abs_effect=rel * 80.0,
        std_error=abs(rel) * 80.0 / 3.1 if crossed else 10.0,
        sequential_method="group_sequential",
        sequential_significant=crossed,
        sequential_boundary=3.0,
        sequential_look=4,
        judged_by=experiment,
    )


def flat_primary(experiment: ResolvedExperiment) -> dict[str, Any]:
    return row(
        "ctr",
        0.002,
        -0.01,
        0.014,
        0.7,
        sequential_method="group_sequential",
        sequential_significant=False,
        sequential_boundary=3.0,
        sequential_look=4,
        judged_by=experiment,
    )


def decide_in_ramp(
    results: list[dict[str, Any]],
    experiment: ResolvedExperiment | None = None,
    day: dt.date = IN_RAMP,
    phases: dict[str, dict[str, int]] = PHASES_SO_FAR,
) -> Any:
    units = {v: sum(p[v] for p in phases.values()) for v in ("control", "treatment")}
    return decide(experiment or ramped(), day, results, units, units_by_phase=phases)


def test_continue_the_ramp_when_every_guardrail_is_non_inferior_sequentially() -> None:
    from exp_dagster.decision import RampAction

    experiment = ramped()
    guardrail = sequential_latency(
        0.004, -0.01, 0.018, 0.012, crossed=False, ni_sequential=True, experiment=experiment
    )
    decision = decide_in_ramp([flat_primary(experiment), guardrail])
    assert decision.decision == Verdict.KEEP_RUNNING  # the verdict is the ramp's own business
    assert decision.ramp_action == RampAction.CONTINUE_RAMP
    assert decision.reasons[1] == (
        "Continue the ramp to 50 % on 2026-10-06: every guardrail non-inferior by the "
        "sequential test (latency_p95 bound +1.20% within +5.00%)."
    )
    assert decision.reasons[0].startswith("Keep running until the planned end date")


def test_hold_the_ramp_while_a_guardrail_is_not_yet_non_inferior() -> None:
    from exp_dagster.decision import RampAction

    experiment = ramped()
    # The fixed one-sided bound is within the margin; the sequential test has not crossed yet.
    guardrail = sequential_latency(
        0.01, -0.01, 0.03, 0.027, crossed=False, ni_sequential=False, experiment=experiment
    )
    decision = decide_in_ramp([flat_primary(experiment), guardrail])
    assert decision.ramp_action == RampAction.HOLD
    assert decision.reasons[1] == (
        "Hold the ramp at 5 % (the phase from 2026-10-03), do not move to 50 % on 2026-10-06 "
        "yet: latency_p95 not yet shown non-inferior by the sequential test (one-sided bound "
        "+2.70% against +5.00%)."
    )
    missing = decide_in_ramp([flat_primary(experiment)])
    assert missing.ramp_action == RampAction.HOLD
    assert "latency_p95 has no result yet" in missing.reasons[1]


def test_roll_back_the_ramp_when_a_guardrail_is_significantly_worse_sequentially() -> None:
    from exp_dagster.decision import RampAction

    experiment = ramped()
    # latency up 4 %: significant by its group-sequential test, not shown within +5 %, and its
    # CI not wholly beyond the margin (so the verdict is no ROLLBACK).
    harmful = sequential_latency(
        0.04, 0.01, 0.07, 0.065, crossed=True, ni_sequential=False, experiment=experiment
    )
    assert harmful["significant"] and harmful["significance_test"] == "group_sequential"
    decision = decide_in_ramp([flat_primary(experiment), harmful])
    assert decision.decision == Verdict.KEEP_RUNNING
    assert decision.ramp_action == RampAction.ROLL_BACK
    assert decision.reasons[1].startswith(
        "Roll back the ramp at 5 % (the phase from 2026-10-03) instead of moving to 50 % on "
        "2026-10-06: latency_p95 +4.00% is significantly worse (group-sequential "
        "(obrien-fleming spending) |z| = 3.10 against a boundary of 3.000 on look 4) and not "
        "shown within its +5.00% margin."
    )
    # A significant harm shown within the margin is tolerated, as SHIP tolerates it.
    tolerated = sequential_latency(
        0.01, 0.005, 0.015, 0.014, crossed=True, ni_sequential=True, experiment=experiment
    )
    assert tolerated["significant"]
    kept = decide_in_ramp([flat_primary(experiment), tolerated])
    assert kept.ramp_action == RampAction.CONTINUE_RAMP


def test_a_fixed_horizon_significance_is_no_evidence_of_harm_during_a_ramp() -> None:
    """Without its sequential result a guardrail row falls back to the fixed-horizon p-value,
    which read daily would be a peek: it holds the ramp, never rolls it back."""
    from exp_dagster.decision import RampAction

    experiment = ramped()
    peeked = row(
        "latency_p95",
        0.04,
        0.01,
        0.07,
        0.001,
        ni_margin=0.05,
        ni_margin_type="relative",
        ni_bound=0.065,
        ni_passed=False,
        ni_sequential_passed=False,
        judged_by=experiment,
    )
    assert peeked["significant"] and peeked["significance_test"] == "fixed_horizon"
    decision = decide_in_ramp([flat_primary(experiment), peeked])
    assert decision.ramp_action == RampAction.HOLD


def test_a_rollback_verdict_rolls_the_ramp_back() -> None:
    from exp_dagster.decision import RampAction

    experiment = ramped()
    worse = row(
        "ctr",
        -0.05,
        -0.07,
        -0.03,
        0.0001,
        sequential_method="group_sequential",
        sequential_significant=True,
        sequential_boundary=3.0,
        sequential_look=4,
        judged_by=experiment,
    )
    guardrail = sequential_latency(
        0.004, -0.01, 0.018, 0.012, crossed=False, ni_sequential=True, experiment=experiment
    )
    decision = decide_in_ramp([worse, guardrail])
    assert decision.decision == Verdict.ROLLBACK
    assert decision.ramp_action == RampAction.ROLL_BACK
    assert decision.reasons[1].endswith("the decision is ROLLBACK.")


def test_a_broken_phase_split_is_invalid_and_holds_the_ramp() -> None:
    from exp_dagster.decision import RampAction

    experiment = ramped()
    guardrail = sequential_latency(
        0.004, -0.01, 0.018, 0.012, crossed=False, ni_sequential=True, experiment=experiment
    )
    broken = {
        "2026-10-01": {"control": 9_900, "treatment": 104},
        "2026-10-03": {"control": 14_230, "treatment": 560},  # treatment exposures lost
    }
    decision = decide_in_ramp([flat_primary(experiment), guardrail], phases=broken)
    assert decision.decision == Verdict.INVALID
    assert decision.ramp_action == RampAction.HOLD
    assert decision.reasons[0].startswith("Sample ratio mismatch in the ramp phase from 2026-10-03")
    assert decision.reasons[1].startswith(
        "Hold the ramp at 5 % (the phase from 2026-10-03): the analysis is INVALID"
    )


def test_a_fixed_horizon_ramp_holds_and_says_how_to_guard_it() -> None:
    from exp_dagster.decision import RampAction

    base = ramped()
    analysis = base.spec.analysis.model_copy(update={"sequential": "fixed_horizon"})
    experiment = base.model_copy(
        update={"spec": base.spec.model_copy(update={"analysis": analysis})}
    )
    results = [row("ctr", 0.002, -0.01, 0.014, 0.7), latency(0.004, -0.01, 0.018, 0.012)]
    decision = decide_in_ramp(results, experiment)
    assert decision.ramp_action == RampAction.HOLD
    assert "set analysis.sequential to group_sequential or always_valid" in decision.reasons[1]


def test_no_ramp_action_without_a_ramp_or_once_the_last_phase_started() -> None:
    experiment = ramped()
    guardrail = sequential_latency(
        0.004, -0.01, 0.018, 0.012, crossed=False, ni_sequential=True, experiment=experiment
    )
    results = [flat_primary(experiment), guardrail]
    plain = decide(ranker_v2(), IN_RAMP, results, BALANCED)
    assert plain.ramp_action is None
    assert not any("ramp" in reason for reason in plain.reasons)
    phases = {**PHASES_SO_FAR, "2026-10-06": {"control": 500, "treatment": 510}}
    complete = decide_in_ramp(results, day=dt.date(2026, 10, 6), phases=phases)
    assert complete.ramp_action is None
    assert not any("the ramp" in reason for reason in complete.reasons)
    # The day before the last phase the ramp is still in progress, from the 5 % phase.
    assert decide_in_ramp(results, day=dt.date(2026, 10, 5)).ramp_action is not None


def test_a_failed_gate_during_a_ramp_holds_it() -> None:
    """When a blocking gate stops the pipeline, analyze's INVALID decision holds a ramp in
    progress too, and says nothing of a ramp without one."""
    from types import SimpleNamespace

    from exp_dagster.cli import gate_failure_decision

    failure = SimpleNamespace(failures=["Gate check_unit_metrics_schema failed on unit_metrics."])
    held = gate_failure_decision(failure, ramped(), IN_RAMP)
    assert held["decision"] == "INVALID" and held["ramp_action"] == "hold"
    assert held["reasons"][0] == failure.failures[0]
    assert held["reasons"][1].startswith("Hold the ramp at 5 % (the phase from 2026-10-03)")
    plain = gate_failure_decision(failure, ranker_v2(), IN_RAMP)
    assert plain["ramp_action"] is None and len(plain["reasons"]) == 2


# ── long-term holdouts: the cumulative effect of the launches, read at the end ──────────────

LAUNCHES = [
    {"name": "ranker_v2", "date": "2026-10-03"},
    {"name": "notif_v3", "date": "2026-10-08"},
]


def holdout(**analysis: Any) -> ResolvedExperiment:
    from exp_dagster.spec import MetricCatalog, parse_experiment

    base = ranker_v2()
    data = base.spec.model_dump(mode="json")
    data["holdout"] = {"group": "control", "launches": LAUNCHES}
    data["analysis"] = {**data["analysis"], **analysis}
    return parse_experiment(data, "holdout.yaml", MetricCatalog(metrics=base.metrics))


def test_a_holdout_names_the_launches_so_far_and_keeps_running_before_its_end() -> None:
    experiment = holdout()
    results = [row("ctr", 0.021, 0.008, 0.034, 0.002), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(experiment, dt.date(2026, 10, 10), results, BALANCED)
    assert decision.decision == Verdict.KEEP_RUNNING and decision.variant is None
    assert decision.reasons[0].startswith("Keep the holdout until its planned end date 2026-10-14")
    assert decision.reasons[1] == (
        "The launches so far (ranker_v2 since 2026-10-03, notif_v3 since 2026-10-08) moved ctr "
        "by +2.10% [+0.80%, +3.40%] against the holdout (p = 0.0020)."
    )
    # 10 days from 2026-10-01: 2 before ranker_v2, 5 with it alone, 3 with both.
    assert (
        "averages the 10 days so far (2 with no launch yet; 5 with ranker_v2; 3 with "
        in (decision.reasons[2])
    )
    assert any(r.startswith("Primary metric ctr: treatment +2.10%") for r in decision.reasons)


def test_a_holdout_names_the_effect_at_the_last_look_of_each_earlier_launch_period() -> None:
    experiment = holdout()
    results = [row("ctr", 0.021, 0.008, 0.034, 0.002), latency(0.0, -0.01, 0.01, 0.008)]
    earlier = {
        dt.date(2026, 10, 2): [row("ctr", 0.001, -0.02, 0.022, 0.9)],
        dt.date(2026, 10, 7): [row("ctr", 0.015, -0.002, 0.032, 0.08)],
        dt.date(2026, 10, 5): [row("ctr", 0.5, 0.4, 0.6, 0.0001)],  # not a period's last look
    }
    decision = decide(experiment, dt.date(2026, 10, 10), results, BALANCED, earlier_results=earlier)
    assert decision.reasons[3] == (
        "At the last look of each earlier launch period: on 2026-10-02, with no launch yet: "
        "+0.10% [-2.00%, +2.20%]; on 2026-10-07, with ranker_v2: +1.50% [-0.20%, +3.20%]."
    )


def test_a_holdout_gives_the_effect_since_each_launch_alone() -> None:
    """The ``launch_period`` rows (each unit's metric from the launch on) follow the cumulative
    effect, one part per launch so far; a period that is not estimable says why."""
    experiment = holdout()
    since = {"segment": "launch_period"}
    results = [
        row("ctr", 0.021, 0.008, 0.034, 0.002),
        latency(0.0, -0.01, 0.01, 0.008),
        row("ctr", 0.03, 0.01, 0.05, 0.004, **since, segment_value="ranker_v2"),
        row(
            "ctr",
            0.0,
            0.0,
            0.0,
            1.0,
            **since,
            segment_value="notif_v3",
            not_estimable="not estimable since the launch of notif_v3: unit_metrics of "
            "2026-10-07 (the day before the launch) is missing",
        ),
    ]
    decision = decide(experiment, dt.date(2026, 10, 10), results, BALANCED)
    assert decision.reasons[3] == (
        "Over the days since each launch alone (each unit's ctr from the launch on, against the "
        "holdout's over the same days): ranker_v2 (since 2026-10-03, 8 days): +3.00% [+1.00%, "
        "+5.00%] (p = 0.0040); notif_v3 (since 2026-10-08, 3 days): no estimate (unit_metrics "
        "of 2026-10-07 (the day before the launch) is missing)."
    )


def test_before_the_first_launch_a_holdout_is_an_a_a_check() -> None:
    results = [row("ctr", 0.001, -0.02, 0.022, 0.9), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(holdout(), dt.date(2026, 10, 2), results, BALANCED)
    assert decision.reasons[1].startswith(
        "No launch yet (the first, ranker_v2, is on 2026-10-03): ctr is +0.10%"
    )
    assert not any("averages" in r for r in decision.reasons)


def test_launch_periods_cover_every_day_once() -> None:
    from exp_dagster.decision import launch_periods

    experiment = holdout()
    for day in (dt.date(2026, 10, d) for d in range(1, 15)):
        periods = launch_periods(experiment, day)
        assert sum(p.days for p in periods) == (day - experiment.spec.start).days + 1
        assert periods[0].first == experiment.spec.start and periods[-1].last == day
        assert all(b.first == a.last + dt.timedelta(days=1) for a, b in itertools.pairwise(periods))
    assert launch_periods(ranker_v2(), END) == []


@pytest.mark.parametrize(
    ("ctr", "verdict", "words"),
    [
        ((0.04, 0.02, 0.06, 0.0001), Verdict.SHIP, "The launches' gains last"),
        ((0.002, -0.01, 0.014, 0.7), Verdict.INCONCLUSIVE, "The launches' gains are not shown"),
        ((-0.05, -0.07, -0.03, 0.0001), Verdict.ROLLBACK, "The launches do not hold up"),
    ],
)
def test_at_its_end_a_holdout_says_whether_the_gains_last(
    ctr: tuple[float, float, float, float], verdict: Verdict, words: str
) -> None:
    results = [row("ctr", *ctr), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(holdout(), END, results, BALANCED)
    assert decision.decision == verdict
    assert decision.reasons[0].startswith(words)
    assert decision.reasons[1].startswith("The launches so far (ranker_v2 since 2026-10-03, ")
    assert (decision.variant == "treatment") == (verdict == Verdict.SHIP)


def test_before_its_end_a_holdout_neither_ships_nor_rolls_back() -> None:
    harmful = [row("ctr", -0.05, -0.07, -0.03, 0.0001), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(holdout(), END - dt.timedelta(days=5), harmful, BALANCED)
    assert decision.decision == Verdict.KEEP_RUNNING
    assert "already significantly worse than the holdout" in decision.reasons[0]
    # A sequential crossing would ship an ordinary experiment early; a holdout keeps running.
    experiment = holdout(sequential="group_sequential")
    winning = row(
        "ctr",
        0.04,
        0.02,
        0.06,
        0.0001,
        sequential_method="group_sequential",
        sequential_significant=True,
        sequential_boundary=3.0,
        sequential_look=4,
        judged_by=experiment,
    )
    guardrail = sequential_latency(
        0.0, -0.01, 0.01, 0.008, crossed=False, ni_sequential=True, experiment=experiment
    )
    early = END - dt.timedelta(days=5)
    assert decide(ranker_like(experiment), early, [winning, guardrail], BALANCED).decision == (
        Verdict.SHIP
    )
    assert decide(experiment, early, [winning, guardrail], BALANCED).decision == (
        Verdict.KEEP_RUNNING
    )


def ranker_like(experiment: ResolvedExperiment) -> ResolvedExperiment:
    """The same experiment without its holdout block."""
    from exp_dagster.spec import MetricCatalog, parse_experiment

    data = experiment.spec.model_dump(mode="json")
    data["holdout"] = None
    return parse_experiment(data, "plain.yaml", MetricCatalog(metrics=experiment.metrics))


def test_an_invalid_split_stays_invalid_under_a_holdout() -> None:
    results = [row("ctr", 0.04, 0.02, 0.06, 0.0001), latency(0.0, -0.01, 0.01, 0.008)]
    decision = decide(holdout(), END, results, {"control": 10_000, "treatment": 11_000})
    assert decision.decision == Verdict.INVALID
    assert not any("launches" in r for r in decision.reasons)


# ── bandit: the sample ratio per allocation day ─────────────────────────────────────────────


def bandit_experiment() -> ResolvedExperiment:
    from exp_dagster.spec import MetricCatalog, parse_experiment

    base = ranker_v2()
    data = base.spec.model_dump(mode="json")
    data.pop("hash_salt")
    data["bandit"] = {"metric": "conversion", "floor": 0.05}
    return parse_experiment(data, "bandit.yaml", MetricCatalog(metrics=base.metrics))


BANDIT_DAYS = {
    "2026-10-01": {"control": 5_020, "treatment": 4_980},  # the planned 50/50 (no row applies)
    "2026-10-02": {"control": 2_010, "treatment": 7_990},
    "2026-10-03": {"control": 1_003, "treatment": 8_997},
}
BANDIT_SPLITS = {
    "2026-10-02": {"control": 0.2, "treatment": 0.8},
    "2026-10-03": {"control": 0.1, "treatment": 0.9},
}


def test_a_bandit_tests_each_day_against_the_split_it_was_allocated() -> None:
    from scipy import stats

    experiment = bandit_experiment()
    total = {v: sum(d[v] for d in BANDIT_DAYS.values()) for v in ("control", "treatment")}
    results = [row("ctr", 0.01, -0.01, 0.03, 0.3, judged_by=experiment)]
    day = dt.date(2026, 10, 3)
    decision = decide(
        experiment,
        day,
        results,
        total,
        units_by_phase=BANDIT_DAYS,
        planned_by_day=BANDIT_SPLITS,
    )
    assert decision.decision != Verdict.INVALID
    planned = {"2026-10-01": {"control": 0.5, "treatment": 0.5}, **BANDIT_SPLITS}
    p_values = [
        stats.chisquare(
            [units["control"], units["treatment"]],
            [sum(units.values()) * planned[d][v] for v in ("control", "treatment")],
        ).pvalue
        for d, units in BANDIT_DAYS.items()
    ]
    assert decision.srm_p_value == pytest.approx(min(1.0, 3 * min(p_values)), rel=1e-9)
    assert any("per allocation day (Bonferroni over 3)" in r for r in decision.reasons)
    # Read against the planned 50/50 on every day (no allocations given): a gross mismatch.
    pooled = decide(experiment, day, results, total, units_by_phase=BANDIT_DAYS)
    assert pooled.decision == Verdict.INVALID
    assert pooled.reasons[0].startswith(
        "Sample ratio mismatch in the allocation day 2026-10-02: 2,010 control / 7,990 treatment "
        "units first exposed in it against its planned weights 0.5 / 0.5 (chi-square"
    )
    assert "a serving system that did not follow bandit_allocations" in pooled.reasons[-1]
    with pytest.raises(ValueError, match="needs the units of each allocation day"):
        decide(experiment, day, results, total)
