"""The decision policy: results of one experiment and day → a verdict with reasons in plain words.

The policy lives in the experiment spec (``alpha``, ``power``, ``mde``, ``srm_alpha``, guardrail
margins and the ``analysis`` block, :class:`~exp_dagster.spec.AnalysisPolicy`):

* INVALID      a gate failed, an arm has no units, or the sample ratio mismatches the planned
               weights (SRM test p below the spec's ``srm_alpha``, 0.001 by default); the
               reasons name the first day the cumulative split mismatched.
* ROLLBACK     the primary metric is significantly worse, or a guardrail's harm is significantly
               beyond its margin (its whole two-sided CI is past it), for every treatment.
* SHIP         the primary metric is significantly better and every guardrail is shown
               non-inferior (one-sided bound within its margin; under a sequential method by
               the guardrail's own sequential non-inferiority test). "Significantly" is the
               result row's ``significant``, judged once by the analysis
               (:mod:`exp_dagster.significance`) with the spec's sequential method, so that a
               daily look is never a peek: ``group_sequential`` — the z statistic crossed its
               Lan-DeMets boundary on some day (ship as soon as it does); ``always_valid`` — the
               always-valid p-value, adjusted across treatments, is at most alpha (any day);
               ``fixed_horizon`` — the adjusted p-value is below alpha, read on or after the
               planned end date only (``significance_test``).
* KEEP_RUNNING before the end date otherwise, with the power reached and the days still needed.
* INCONCLUSIVE on or after the end date otherwise; an underpowered test says so.

With ``oec.decides`` in the spec, the OEC's result row takes the primary metric's place above
(judged by the same sequential test over the daily looks); guardrails are as before.

While a ramp is in progress (the day is before the last phase's start) the decision also says
what to do with the ramp (``ramp_action``; ``None`` without a ramp or once it is complete), from
the guardrails' sequential tests at the current look, which stay valid however often they are
read:

* roll_back      the verdict is ROLLBACK, or a guardrail of some treatment is significantly
                 worse by its own sequential test (``significant`` under ``group_sequential`` or
                 ``always_valid``, in the harmful direction) and not shown non-inferior: harm is
                 shown and not shown tolerable (a deterioration test, as Schultzberg et al.
                 2024 use for guardrails). A significant harm shown within the margin is
                 tolerated, as SHIP tolerates it.
* hold           the verdict is INVALID (a phase's split, a gate, an empty arm: nothing can be
                 trusted), or some guardrail is not yet shown non-inferior by its sequential test
                 (no result, not estimable, or the test has not crossed), or the spec's method is
                 ``fixed_horizon``, which has no sequential guardrail test to read at each phase.
* continue_ramp  every guardrail of every treatment is shown non-inferior by its sequential
                 non-inferiority test (``ni_sequential_passed``).

The verdict itself is unchanged by the ramp action; the action's sentence is the second reason.

With a long-term holdout (the spec's ``holdout`` block: the control is kept off a series of
dated launches the other variants get) the verdict answers "do the launches' gains last?", not
"ship this variant?". The vocabulary stays, with these meanings:

* INVALID      as above (a holdout's split is tested like any other).
* KEEP_RUNNING every day before the planned end date, whatever the effects: a holdout is read
               at its end; an earlier significant result is reported (and a harmful one named
               in the lead), never acted on by the verdict.
* SHIP         on or after the end date, when the usual SHIP rule holds: the launches' gains
               last (keep them, release the holdout). ``variant`` is the launched variant.
* ROLLBACK     on or after the end date, when the usual ROLLBACK rule holds: the launches hurt
               the primary metric or a guardrail against the holdout; review them.
* INCONCLUSIVE on or after the end date otherwise: the gains are not shown to last.

The holdout's lead is followed by the cumulative effect of the launches so far on the primary
metric, naming them with their dates, the days of each launch period the cumulative effect
averages, the effect at the last look of each earlier launch period (each day is a look), and
the effect over the days since each launch alone (the ``launch_period`` result rows).

A rollout that was not randomised (the spec's ``did`` block) is decided by the difference in
differences of its primary metric (``did_effects``, :mod:`exp_dagster.did_results`), not by the
variant comparison, which is confounded by the choice of clusters; there is no sample-ratio test
(no split was planned) and no guardrail judgement (guardrails are variant comparisons; list them
in ``did.metrics`` to see their effects in the reasons):

* INVALID      a gate failed.
* KEEP_RUNNING before the end date (the effect is a fixed-horizon test), or at any time while the
               primary metric's effect is not estimable.
* SHIP         on or after the end date: the primary metric's effect is significant (p < alpha)
               in its direction and the parallel-trends check did not fail.
* ROLLBACK     on or after the end date: significant against its direction, and the check did
               not fail.
* INCONCLUSIVE on or after the end date otherwise; a failed parallel-trends check says the
               effect is not credible.

Every did metric's effect is a reason, and each failed parallel-trends check a warning reason.

A primary metric that is not estimable at the look (its result row says why: no variance, no
events, no units in an arm) is neither better nor worse: KEEP_RUNNING before the end date,
INCONCLUSIVE on or after it, with the reason. A guardrail that is not estimable is not shown
non-inferior, so it blocks SHIP.

Reasons also carry the Bayesian probability that the treatment is better, segment reversals
(a segment whose effect is significantly opposite to the overall one, with a significant
heterogeneity test; never a bandit's allocation day, see :func:`_reversal_sentences`), and the
segment values whose own split mismatches.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from exp_dagster.significance import p_text
from exp_dagster.spec import ALLOCATION_DAY_SEGMENT, LAUNCH_PERIOD_SEGMENT, ResolvedExperiment
from exp_dagster.stats import (
    PhasedSRMResult,
    SRMResult,
    first_srm_day,
    srm_by_phase,
    srm_by_segment,
    srm_test,
)

Row = Mapping[str, Any]


class Verdict(StrEnum):
    SHIP = "SHIP"
    ROLLBACK = "ROLLBACK"
    KEEP_RUNNING = "KEEP_RUNNING"
    INCONCLUSIVE = "INCONCLUSIVE"
    INVALID = "INVALID"


class RampAction(StrEnum):
    CONTINUE_RAMP = "continue_ramp"
    HOLD = "hold"
    ROLL_BACK = "roll_back"


@dataclass(frozen=True)
class Decision:
    """A verdict for one experiment and day.

    Attributes:
        decision: the verdict.
        variant: the variant to ship (SHIP only).
        reasons: why, one plain sentence each, most important first.
        srm_p_value: the sample-ratio-mismatch test's p-value (None when it could not run).
        ramp_action: while a ramp is in progress, its next step (continue_ramp, hold,
            roll_back; module docstring); None without a ramp or once its last phase started.
    """

    decision: Verdict
    variant: str | None
    reasons: tuple[str, ...]
    srm_p_value: float | None
    ramp_action: RampAction | None = None


def pct(value: float | None, *, signed: bool = True) -> str:
    """A relative value as a percentage for people: ``0.0412`` → ``+4.12%``."""
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("+∞" if value > 0 else "−∞")
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def _effect_sentence(row: Row) -> str:
    low, high = row["rel_ci_low"], row["rel_ci_high"]
    unbounded = (
        low is not None and high is not None and math.isinf(low) and math.isinf(high)
    ) and math.isfinite(row["rel_effect"])
    # Fieller's set is unbounded when the control mean is not significantly different from 0:
    # the relative lift has no finite interval, and the p-value (absolute test) decides.
    why = (
        "; relative interval unbounded: the control mean is not significantly different from 0"
        if unbounded
        else ""
    )
    return (
        f"{row['variant']} {pct(row['rel_effect'])} "
        f"[{pct(low)}, {pct(high)}] against {row['control']} "
        f"({p_text(row['p_value'])}{why})"
    )


def _is_better(row: Row) -> bool:
    # An OEC whose control value is 0 has no relative lift: its absolute effect has the sign.
    effect = row["rel_effect"] if row["rel_effect"] is not None else row["abs_effect"]
    return effect > 0 if row["direction"] == "increase" else effect < 0


def _breached(row: Row) -> bool:
    """The guardrail's two-sided CI lies entirely beyond its margin on the harmful side."""
    margin = row["ni_margin"] or 0.0
    relative = row["ni_margin_type"] != "absolute"
    low = row["rel_ci_low"] if relative else row["abs_ci_low"]
    high = row["rel_ci_high"] if relative else row["abs_ci_high"]
    return bool(low > margin) if row["direction"] == "decrease" else bool(high < -margin)


def _margin_text(row: Row) -> str:
    margin = row["ni_margin"] or 0.0
    sign = "+" if row["direction"] == "decrease" else "−"
    if row["ni_margin_type"] == "absolute":
        return f"{sign}{margin:g}"
    return f"{sign}{margin * 100:.2f}%"


def _bound_text(row: Row) -> str:
    if row["ni_margin_type"] == "absolute":
        return f"{row['ni_bound']:+.4g}"
    return pct(row["ni_bound"])


def shown_non_inferior(row: Row) -> bool:
    """Whether a guardrail row is shown non-inferior the way the decision reads it: by its
    sequential non-inferiority test when the spec's method has one (read daily, the fixed
    one-sided bound alone would be a peek), else by that bound (``ni_passed``)."""
    sequential = row.get("ni_sequential_passed")
    if sequential is not None:
        return bool(sequential)
    return bool(row.get("ni_passed"))


def srm_method_label(experiment: ResolvedExperiment) -> str:
    """The SRM test as reports name it: ``chi-square``, ``g-test``, ``exact``, with " (Yates)"
    when the continuity correction applies (the same label :class:`SRMResult` carries)."""
    spec = experiment.spec
    yates = spec.srm_correction and spec.srm_method != "exact" and len(spec.variants) == 2
    label = spec.srm_method + (" (Yates)" if yates else "")
    if spec.ramp is not None:
        label += f" per ramp phase (Bonferroni over its {len(spec.ramp)} phases)"
    elif spec.bandit is not None:
        label += " per allocation day (against each day's bandit split, Bonferroni over the days)"
    return label


def allocation_periods(
    experiment: ResolvedExperiment,
    units_by_phase: Mapping[str, Mapping[str, int]],
    planned_by_day: Mapping[str, Mapping[str, float]] | None = None,
) -> list[tuple[str, dict[str, float]]]:
    """The allocation periods with their planned splits, in order, by first day (ISO): a ramp's
    phases with their weights; a bandit's days with units, each with the split its
    ``bandit_allocations`` row set for it (``planned_by_day``, by ``applies_to``), or the
    variants' weights on a day no row applies to (the start day, burn-in rows included)."""
    spec = experiment.spec
    if spec.ramp is not None:
        return [(p.start.isoformat(), dict(p.weights)) for p in spec.ramp]
    planned = planned_by_day or {}
    return [
        (day, {v.name: float(planned.get(day, spec.weights)[v.name]) for v in spec.variants})
        for day in sorted(units_by_phase)
    ]


def sample_ratio(
    experiment: ResolvedExperiment,
    units_by_variant: Mapping[str, int],
    units_by_phase: Mapping[str, Mapping[str, int]] | None = None,
    planned_by_day: Mapping[str, Mapping[str, float]] | None = None,
) -> SRMResult | PhasedSRMResult:
    """The sample-ratio-mismatch test of exposed units against the planned weights (the spec's
    ``srm_method``, chi-square by default, and ``srm_correction``). With a ramp, each phase's
    units (by phase of first exposure, ``units_by_phase``: phase start date → variant → units)
    against that phase's weights, Bonferroni over the phases (:func:`srm_by_phase`). With a
    bandit, each allocation day's units (by first exposure day) against the split the bandit set
    for that day (``planned_by_day``, :func:`allocation_periods`), Bonferroni over the days."""
    spec = experiment.spec
    if spec.allocation_segment is not None:
        if not units_by_phase:
            what = "a ramp" if spec.ramp is not None else "a bandit"
            period, _ = spec.allocation_period_words
            unit = period.split()[-1]
            raise ValueError(
                f"experiment '{spec.id}' has {what}, and its sample-ratio test needs the units "
                f"of each {period}; none were given (no metric has per-{unit} statistics)"
            )
        periods = allocation_periods(experiment, units_by_phase, planned_by_day)
        return srm_by_phase(
            [
                [int(units_by_phase.get(start, {}).get(v.name, 0)) for v in spec.variants]
                for start, _ in periods
            ],
            [[weights[v.name] for v in spec.variants] for _, weights in periods],
            period=spec.allocation_period_words[0],
            alpha=spec.srm_alpha,
            method=spec.srm_method,
            correction=spec.srm_correction,
        )
    observed = [int(units_by_variant.get(v.name, 0)) for v in spec.variants]
    return srm_test(
        observed,
        [v.weight for v in spec.variants],
        method=spec.srm_method,
        correction=spec.srm_correction,
    )


def _significance(experiment: ResolvedExperiment, day: dt.date, row: Row) -> tuple[bool, str, bool]:
    """Whether the primary result is significant, how to say so, and whether that evidence
    stays valid before the end date (a sequential test) or not (a fixed-horizon p-value, which
    would be a peek): read from the row, where the analysis judged it once."""
    significant = row.get("significant")
    if significant is None:
        raise ValueError(
            f"The results row of {row['metric']} ({row['variant']}) for experiment "
            f"'{experiment.spec.id}' as of {day} has no 'significant' value: it was computed "
            f"before results carried one. Materialise that day's results partition again "
            f"(exp-dagster analyze, or the Dagster UI), then its decision."
        )
    return (
        bool(significant),
        str(row["significance_basis"]),
        row["significance_test"] != "fixed_horizon",
    )


def _power_sentence(experiment: ResolvedExperiment, row: Row) -> str | None:
    spec = experiment.spec
    power = row.get("power")
    if power is None or (isinstance(power, float) and math.isnan(power)):
        return None
    days = row.get("days_needed")
    sentence = (
        f"Power for a {pct(spec.mde, signed=False)} lift in {row['metric']} is "
        f"{power * 100:.0f}% at the current sample (target {spec.power * 100:.0f}%)"
    )
    if power >= spec.power:
        return sentence + "."
    if days is None or not math.isfinite(float(days)):
        return sentence + "; no new units arrive, so more days will not help: underpowered."
    return sentence + f"; about {math.ceil(float(days))} more day(s) at the current traffic."


def _bayes_sentence(row: Row) -> str | None:
    prob = row.get("prob_better")
    if prob is None or (isinstance(prob, float) and math.isnan(prob)):
        return None
    return (
        f"Bayesian view of {row['metric']} ({row['variant']}): probability better than "
        f"{row['control']} {prob * 100:.1f}%, expected loss if shipped "
        f"{pct(row.get('expected_loss'), signed=False)}."
    )


def _novelty_sentence(experiment: ResolvedExperiment, row: Row) -> str | None:
    p_value = row.get("novelty_p_value")
    slope = row.get("novelty_slope")
    if p_value is None or slope is None or not p_value < experiment.spec.analysis.novelty_alpha:
        return None
    fading = (slope < 0) == (row["rel_effect"] > 0)
    kind = "fades" if fading else "grows"
    label = "a novelty effect" if fading else "a primacy (learning) effect"
    return (
        f"The lift in {row['metric']} {kind} with days since first exposure "
        f"({pct(slope)} per day, trend {p_text(p_value)}): {label}; the long-run effect may "
        f"differ from the average so far."
    )


def _reversal_sentences(
    experiment: ResolvedExperiment, results: Sequence[Row], variant: str
) -> list[str]:
    """A sentence per segment value whose effect on the primary metric is significantly opposite
    to the pooled one, with a significant heterogeneity test.

    Not for a bandit's derived segment ``allocation_day``: its values are days, one per day of
    the experiment, each a stratum of a split the outcomes so far chose (a variant at the floor
    has a handful of units that day), so a "reversal" on one day is a day's noise, not a group of
    users to act on; the day-stratified overall effect already averages over them, and a lift
    that changes over time is the novelty test's to report. Their rows stay in ``results``. A
    ramp's ``ramp_phase`` keeps its sentence: its few planned phases differ in the treatment's
    share, and an effect that turns between them is something to stop a ramp for.
    """
    alpha = experiment.spec.analysis.heterogeneity_alpha
    # only the bandit's own segment: a spec without a bandit may name a segment allocation_day
    days = ALLOCATION_DAY_SEGMENT if experiment.spec.bandit is not None else None
    sentences = []
    for row in results:
        if (
            row["segment"] not in ("all", days)
            and row["variant"] == variant
            and row["metric"] == experiment.spec.metrics.primary
            and row.get("segment_reversal")
            and (row.get("heterogeneity_p_value") or 1.0) < alpha
        ):
            sentences.append(
                f"Segment reversal: {row['segment']} = {row['segment_value']} moves "
                f"{row['metric']} the other way, {_effect_sentence(row)}; the effect differs "
                f"across {row['segment']} (heterogeneity {p_text(row['heterogeneity_p_value'])})."
            )
    return sentences


def _srm_history_sentence(
    experiment: ResolvedExperiment, units_history: Mapping[dt.date, Mapping[str, int]]
) -> str | None:
    spec = experiment.spec
    days = sorted(units_history)
    if not days:
        return None
    counts = [[int(units_history[d].get(v.name, 0)) for v in spec.variants] for d in days]
    over_time = first_srm_day(
        counts,
        [v.weight for v in spec.variants],
        alpha=spec.srm_alpha,
        cumulative=False,
        method=spec.srm_method,
        correction=spec.srm_correction,
    )
    if over_time.first_day_index is None:
        return None
    return f"The split first mismatched on {days[over_time.first_day_index]}."


def _phase_srm_sentences(
    experiment: ResolvedExperiment,
    srm: PhasedSRMResult,
    periods: Sequence[tuple[str, Mapping[str, float]]],
) -> tuple[str, ...]:
    """Why a ramped (or bandit) experiment is INVALID: each mismatched allocation period with its
    split and plan (``periods``: :func:`allocation_periods`)."""
    spec = experiment.spec
    where = "the ramp phase from" if spec.ramp is not None else "the allocation day"
    words = "phases" if spec.ramp is not None else "days"
    sentences = []
    for index in srm.mismatched:
        (start, weights), result = periods[index], srm.phases[index]
        assert result is not None
        split = " / ".join(
            f"{n:,} {v.name}" for n, v in zip(result.observed, spec.variants, strict=True)
        )
        planned = " / ".join(f"{weights[v.name]:g}" for v in spec.variants)
        sentences.append(
            f"Sample ratio mismatch in {where} {start}: {split} units first "
            f"exposed in it against its planned weights {planned} ({result.method} "
            f"{p_text(result.p_value)} < {spec.srm_alpha:g} / {len(periods)} {words})."
        )
    served = (
        "a ramp in the spec that differs from the one served"
        if spec.ramp is not None
        else "a serving system that did not follow bandit_allocations"
    )
    sentences.append(
        f"The split is broken ({srm.method}, adjusted {p_text(srm.p_value)}), so no effect can "
        f"be trusted; look for assignment or exposure-logging bugs, or {served}."
    )
    return tuple(sentences)


def _segment_srm_sentences(
    experiment: ResolvedExperiment, units_by_segment: Mapping[str, Mapping[str, int]]
) -> list[str]:
    spec = experiment.spec
    if not units_by_segment or spec.allocation_segment is not None:
        # With allocation periods (a ramp's phases, a bandit's days) a segment's units pooled
        # over the periods follow no single plan; the per-period test stands for it (a segment's
        # per-period counts are not tested yet).
        return []
    counts = {
        label: [int(units.get(v.name, 0)) for v in spec.variants]
        for label, units in units_by_segment.items()
        if sum(units.values()) > 0
    }
    mismatched = srm_by_segment(
        counts,
        [v.weight for v in spec.variants],
        alpha=spec.srm_alpha,
        method=spec.srm_method,
        correction=spec.srm_correction,
    )
    return [
        f"Sample ratio mismatch within segment {label}: "
        f"{' / '.join(f'{n:,}' for n in counts[label])} units ({result.method} "
        f"{p_text(result.p_value)}); its segment results are not trustworthy."
        for label, result in mismatched.items()
    ]


# ── outliers and offline evidence: context in the reasons, never the verdict ──────────────────


def _number_text(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def outlier_sentences(experiment: ResolvedExperiment, outliers: Sequence[Row]) -> list[str]:
    """One sentence per quantity of the primary metric with units beyond its outlier fence.

    Args:
        experiment: the resolved spec.
        outliers: the day's ``metric_outliers`` rows (fence = 10 × the 99.9th percentile of
            the non-zero absolute values, or 10 × the 11th-largest when smaller).

    Returns:
        Sentences saying how many units, how large against the median, and what to do; empty
        when the primary metric has none.
    """
    primary = experiment.spec.metrics.primary
    sentences = []
    for row in outliers:
        count = int(row.get("outlier_units") or 0)
        if row["metric"] != primary or count == 0:
            continue
        what = primary if row["quantity"] == "value" else f"{primary} ({row['quantity']})"
        largest = ", ".join(_number_text(float(v)) for v in row["top_values"][:3])
        head = (
            f"Outliers in the primary metric {what}: {count:,} unit(s) beyond the fence of "
            f"{_number_text(float(row['fence']))} (10 × a robust 99.9th percentile), the largest "
            f"{largest} against a median of {_number_text(float(row['median'] or 0))}"
        )
        cap, level = row.get("cap"), row.get("winsorize")
        if cap is None or level is None:
            advice = (
                "a few units can move the mean: look them up in the metric_outliers table, "
                "and consider 'winsorize: 0.999' for this metric in metrics.yaml"
                if row["quantity"] == "value"
                else "a few units can move the ratio: look them up in the metric_outliers table "
                "(bots, or a logging bug?)"
            )
        elif float(cap) <= float(row["fence"]):
            advice = (
                f"winsorised: every unit's value is capped at {_number_text(float(cap))}, the "
                f"pooled {level * 100:g}th percentile, so the effect is on the capped metric"
            )
        else:
            advice = (
                f"the winsorisation cap {_number_text(float(cap))} (the pooled {level * 100:g}th "
                f"percentile) lies above the fence and does not tame them: too few units for "
                f"that level; lower 'winsorize' or look the units up in metric_outliers"
            )
        sentences.append(f"{head}; {advice}.")
    return sentences


def offline_evidence_sentences(parity: Sequence[Row]) -> list[str]:
    """One sentence per offline evidence row of ``offline_online_parity``, set against the
    online lift of the primary metric. Offline evidence is context: it never changes the verdict.

    Example: "Offline ndcg@10 (exponential gain) +5.1% [1.9%, 8.3%] (treatment) agrees with the
    online ctr lift +4.0% [2.1%, 5.9%]; the online result decides."
    """
    online = {r["variant"]: r for r in parity if r["evidence"] == "online A/B"}
    order = {"offline ranking": 0, "counterfactual": 1, "interleaving": 2}
    sentences = []
    for row in sorted(parity, key=lambda r: (r["variant"], order.get(r["evidence"], 9))):
        reference = online.get(row["variant"])
        if row["evidence"] == "online A/B" or reference is None or row.get("lift") is None:
            continue
        is_preference = row["evidence"] == "interleaving"
        value = (
            f"{row['lift']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
            if is_preference
            else f"{pct(row['lift'])} [{pct(row['ci_low'])}, {pct(row['ci_high'])}]"
        )
        verb = "agrees with" if row.get("agrees_with_online") else "disagrees with"
        sentences.append(
            f"{row['evidence'].capitalize()} {row['metric']} {value} ({row['variant']}) {verb} "
            f"the online {reference['metric']} lift {pct(reference['lift'])} "
            f"[{pct(reference['ci_low'])}, {pct(reference['ci_high'])}]; the online result "
            f"decides."
        )
    return sentences


# ── guarded ramp: continue, hold or roll back at each phase ───────────────────────────────────


def _treatment_share(experiment: ResolvedExperiment, weights: Mapping[str, float]) -> str:
    """The treatments' traffic in a phase: ``50 %``, or ``a 25 % / b 25 %`` with several."""
    treatments = experiment.spec.treatments
    if len(treatments) == 1:
        return f"{weights[treatments[0]] * 100:g} %"
    return " / ".join(f"{name} {weights[name] * 100:g} %" for name in treatments)


def _guardrail_harmful(row: Row) -> bool:
    """Significantly worse by the row's own sequential test, and not shown non-inferior."""
    return (
        bool(row.get("significant"))
        and row.get("significance_test") not in (None, "fixed_horizon")
        and not _is_better(row)
        and not shown_non_inferior(row)
    )


def ramp_action(
    experiment: ResolvedExperiment, day: dt.date, results: Sequence[Row], verdict: Decision
) -> tuple[RampAction, str] | None:
    """The next step of a ramp in progress and its reason (module docstring), or ``None``
    without a ramp or from the day its last phase starts.

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        results: the day's result rows (the overall guardrail rows decide).
        verdict: the day's verdict (INVALID holds the ramp, ROLLBACK rolls it back).

    Returns:
        The action and one plain sentence saying why, naming the current and the next phase.
    """
    spec = experiment.spec
    if spec.ramp is None or day >= spec.ramp[-1].start:
        return None
    index = spec.phase_index(day)
    assert index is not None
    now, ahead = spec.ramp[index], spec.ramp[index + 1]
    step = f"to {_treatment_share(experiment, ahead.weights)} on {ahead.start}"
    at = f"at {_treatment_share(experiment, now.weights)} (the phase from {now.start})"
    if verdict.decision == Verdict.INVALID:
        return RampAction.HOLD, (
            f"Hold the ramp {at}: the analysis is INVALID, so no guardrail can be trusted; fix "
            f"what the reasons name before moving {step}."
        )
    if verdict.decision == Verdict.ROLLBACK:
        return RampAction.ROLL_BACK, (
            f"Roll back the ramp {at} instead of moving {step}: the decision is ROLLBACK."
        )
    if spec.analysis.sequential == "fixed_horizon":
        return RampAction.HOLD, (
            f"Hold the ramp {at}: with analysis.sequential: fixed_horizon the guardrails have "
            f"no sequential non-inferiority test, and their fixed-horizon bound read at each "
            f"phase would be a peek; set analysis.sequential to group_sequential or "
            f"always_valid to guard the move {step}."
        )
    overall = [r for r in results if r["segment"] == "all"]
    harmful: list[str] = []
    pending: list[str] = []
    passed: list[str] = []
    several = len(spec.treatments) > 1
    for variant in spec.treatments:
        rows = {r["metric"]: r for r in overall if r["variant"] == variant}
        for guardrail in spec.metrics.guardrails:
            row = rows.get(guardrail.metric)
            name = f"{guardrail.metric} ({variant})" if several else guardrail.metric
            if row is None:
                pending.append(f"{name} has no result yet")
            elif row.get("not_estimable"):
                pending.append(f"{name} is not estimable ({row['not_estimable']})")
            elif _guardrail_harmful(row):
                harmful.append(
                    f"{name} {pct(row['rel_effect'])} is significantly worse "
                    f"({row['significance_basis']}) and not shown within its "
                    f"{_margin_text(row)} margin"
                )
            elif row.get("ni_sequential_passed"):
                passed.append(f"{name} bound {_bound_text(row)} within {_margin_text(row)}")
            else:
                bound = (
                    ""
                    if row.get("ni_bound") is None
                    else f" (one-sided bound {_bound_text(row)} against {_margin_text(row)})"
                )
                pending.append(f"{name} not yet shown non-inferior by the sequential test{bound}")
    if harmful:
        return RampAction.ROLL_BACK, (
            f"Roll back the ramp {at} instead of moving {step}: {'; '.join(harmful)}."
        )
    if pending:
        return RampAction.HOLD, (
            f"Hold the ramp {at}, do not move {step} yet: {'; '.join(pending)}."
        )
    if not passed:
        return RampAction.CONTINUE_RAMP, (
            f"Continue the ramp {step}: the spec names no guardrail, so nothing holds it back."
        )
    return RampAction.CONTINUE_RAMP, (
        f"Continue the ramp {step}: every guardrail non-inferior by the sequential test "
        f"({'; '.join(passed)})."
    )


def with_ramp_action(
    experiment: ResolvedExperiment, day: dt.date, results: Sequence[Row], verdict: Decision
) -> Decision:
    """``verdict`` with its ramp action, the action's sentence second among the reasons
    (unchanged without a ramp in progress)."""
    step = ramp_action(experiment, day, results, verdict)
    if step is None:
        return verdict
    action, sentence = step
    reasons = (*verdict.reasons[:1], sentence, *verdict.reasons[1:])
    return replace(verdict, reasons=reasons, ramp_action=action)


# ── long-term holdouts: the cumulative effect of the launches against the holdout ─────────────


@dataclass(frozen=True)
class LaunchPeriod:
    """The days between one launch and the next, as seen on an as-of date.

    Attributes:
        launches: the launches in force in the period (empty: before the first launch).
        first, last: its first and last day up to the as-of date (inclusive).
    """

    launches: tuple[str, ...]
    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        return " + ".join(self.launches) if self.launches else "no launch yet"


def launch_periods(experiment: ResolvedExperiment, day: dt.date) -> list[LaunchPeriod]:
    """The launch periods of a holdout from its start to ``day`` (empty without a holdout):
    before the first launch (when it is after the start), then from each launch to the day
    before the next. The last look of each period is its ``last`` day."""
    spec = experiment.spec
    if spec.holdout is None or day < spec.start:
        return []
    bounds = [spec.start, *(launch.date for launch in spec.holdout.launches)]
    periods: list[LaunchPeriod] = []
    for index, first in enumerate(bounds):
        if first > day or (index == 0 and bounds[1] == spec.start):
            continue
        following = bounds[index + 1] if index + 1 < len(bounds) else None
        last = min(day, following - dt.timedelta(days=1)) if following else day
        names = tuple(launch.name for launch in spec.holdout.launches[:index])
        periods.append(LaunchPeriod(names, first, last))
    return periods


def _primary_row(experiment: ResolvedExperiment, rows: Sequence[Row], variant: str) -> Row | None:
    spec = experiment.spec
    return next(
        (
            r
            for r in rows
            if r["segment"] == "all"
            and r["variant"] == variant
            and r["metric"] == spec.metrics.primary
        ),
        None,
    )


def _lift_text(row: Row) -> str:
    return f"{pct(row['rel_effect'])} [{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}]"


def holdout_sentences(
    experiment: ResolvedExperiment,
    day: dt.date,
    results: Sequence[Row],
    earlier_results: Mapping[dt.date, Sequence[Row]] | None = None,
) -> list[str]:
    """What the launches so far did to the primary metric against the holdout (module
    docstring): the cumulative effect at ``day``, the launch periods it averages, and the
    effect at the last look of each earlier period found in ``earlier_results``."""
    spec = experiment.spec
    if spec.holdout is None:
        return []
    launched = spec.launches_by(day)
    periods = launch_periods(experiment, day)
    several = len(spec.treatments) > 1
    sentences: list[str] = []
    for variant in spec.treatments:
        row = _primary_row(experiment, results, variant)
        who = f" in {variant}" if several else ""
        if row is None or row.get("not_estimable") or row.get("rel_effect") is None:
            why = "no result yet" if row is None else (row.get("not_estimable") or "no estimate")
            sentences.append(
                f"The cumulative effect of the launches on {spec.metrics.primary}{who} against "
                f"the holdout has no estimate as of {day} ({why})."
            )
            continue
        if not launched:
            first = spec.holdout.launches[0]
            sentences.append(
                f"No launch yet (the first, {first.name}, is on {first.date}): "
                f"{spec.metrics.primary}{who} is {_lift_text(row)} against the holdout "
                f"({p_text(row['p_value'])}), a check that the groups start alike."
            )
            continue
        names = ", ".join(f"{launch.name} since {launch.date}" for launch in launched)
        sentences.append(
            f"The launches so far ({names}) moved {spec.metrics.primary}{who} by "
            f"{_lift_text(row)} against the holdout ({p_text(row['p_value'])})."
        )
    if launched:
        total = (day - spec.start).days + 1
        spans = "; ".join(f"{period.days} with {period.label}" for period in periods)
        sentences.append(
            f"Each unit's {spec.metrics.primary} is cumulative from its first exposure, so this "
            f"effect averages the {total} days so far ({spans}), not the last launch alone."
        )
        sentences.extend(_since_launch_sentences(experiment, day, results))
    looks: list[str] = []
    for period in periods[:-1]:
        for variant in spec.treatments:
            row = _primary_row(experiment, (earlier_results or {}).get(period.last, ()), variant)
            if row is None or row.get("not_estimable") or row.get("rel_effect") is None:
                continue
            who = f" ({variant})" if several else ""
            looks.append(f"on {period.last}, with {period.label}{who}: {_lift_text(row)}")
    if looks:
        sentences.append(f"At the last look of each earlier launch period: {'; '.join(looks)}.")
    return sentences


def _since_launch_sentences(
    experiment: ResolvedExperiment, day: dt.date, results: Sequence[Row]
) -> list[str]:
    """The primary metric's effect over the days since each launch so far (the
    ``launch_period`` rows: each unit's metric from the launch to the day), per treatment."""
    spec = experiment.spec
    several = len(spec.treatments) > 1
    parts: list[str] = []
    for launch in spec.launches_by(min(day, spec.end)):
        days = (min(day, spec.end) - launch.date).days + 1
        for variant in spec.treatments:
            row = next(
                (
                    r
                    for r in results
                    if r["segment"] == LAUNCH_PERIOD_SEGMENT
                    and r["segment_value"] == launch.name
                    and r["variant"] == variant
                    and r["metric"] == spec.metrics.primary
                ),
                None,
            )
            who = f", {variant}" if several else ""
            where = f"{launch.name} (since {launch.date}, {days} day{'s' if days > 1 else ''}{who})"
            if row is None:  # results written before launch periods existed
                continue
            if row.get("not_estimable") or row.get("rel_effect") is None:
                why = str(row.get("not_estimable") or "no estimate").split(": ", 1)[-1]
                parts.append(f"{where}: no estimate ({why})")
            else:
                parts.append(f"{where}: {_lift_text(row)} ({p_text(row['p_value'])})")
    if not parts:
        return []
    return [
        f"Over the days since each launch alone (each unit's {spec.metrics.primary} from the "
        f"launch on, against the holdout's over the same days): {'; '.join(parts)}."
    ]


def with_holdout(
    experiment: ResolvedExperiment,
    day: dt.date,
    results: Sequence[Row],
    verdict: Decision,
    earlier_results: Mapping[dt.date, Sequence[Row]] | None = None,
) -> Decision:
    """``verdict`` read as a holdout's (module docstring): its lead replaced by the holdout's,
    followed by the cumulative effect of the launches (unchanged without a holdout, or when
    INVALID)."""
    spec = experiment.spec
    if spec.holdout is None or verdict.decision == Verdict.INVALID:
        return verdict
    effect = holdout_sentences(experiment, day, results, earlier_results)
    rest = verdict.reasons[1:]
    if day < spec.end:
        lead = (
            f"Keep the holdout until its planned end date {spec.end}: a holdout is read at its "
            f"end, to see whether the launches' gains last."
        )
        if verdict.decision == Verdict.ROLLBACK:
            lead += " The launches are already significantly worse than the holdout: review them."
        return Decision(Verdict.KEEP_RUNNING, None, (lead, *effect, *rest), verdict.srm_p_value)
    if verdict.decision == Verdict.SHIP:
        lead = (
            f"The launches' gains last: at the end of the holdout ({spec.end}) {verdict.variant} "
            f"is significantly better than the holdout and every guardrail is non-inferior; keep "
            f"the launches and release the holdout."
        )
    elif verdict.decision == Verdict.ROLLBACK:
        lead = (
            f"The launches do not hold up: at the end of the holdout ({spec.end}) they are "
            f"significantly worse than the holdout; review them."
        )
    else:
        lead = (
            f"The launches' gains are not shown to last: at the end of the holdout ({spec.end}) "
            f"no launched variant is significantly better than the holdout with every guardrail "
            f"non-inferior."
        )
    return replace(verdict, reasons=(lead, *effect, *rest))


def decide(
    experiment: ResolvedExperiment,
    day: dt.date,
    results: Sequence[Row],
    units_by_variant: Mapping[str, int],
    gate_failures: Sequence[str] = (),
    *,
    units_history: Mapping[dt.date, Mapping[str, int]] | None = None,
    units_by_segment: Mapping[str, Mapping[str, int]] | None = None,
    outliers: Sequence[Row] = (),
    offline_evidence: Sequence[Row] = (),
    units_by_phase: Mapping[str, Mapping[str, int]] | None = None,
    earlier_results: Mapping[dt.date, Sequence[Row]] | None = None,
    did_effects: Sequence[Row] = (),
    planned_by_day: Mapping[str, Mapping[str, float]] | None = None,
) -> Decision:
    """Apply the policy (module docstring) to the results of one experiment and day.

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        results: result rows of the day (overall rows decide; segment rows add reasons).
        units_by_variant: analysed units per variant, for the sample-ratio test.
        gate_failures: sentences describing failed data gates, if any.
        units_history: cumulative units per variant on each day so far, to date the first
            mismatch of the split.
        units_by_segment: units per variant within each ``segment=value``, for per-segment
            sample-ratio tests.
        outliers: the day's ``metric_outliers`` rows; outliers in the primary metric are named
            in the reasons (they never change the verdict).
        offline_evidence: the day's ``offline_online_parity`` rows; named in the reasons next to
            the online lift (they never change the verdict).
        units_by_phase: with a ramp, units per variant by ramp phase of first exposure (phase
            start date → variant → units), or with a bandit by first exposure day: the sample
            ratio is tested per phase (day).
        earlier_results: with a holdout, the result rows of earlier looks by day (at least the
            last day of each earlier launch period, :func:`launch_periods`); their effects are
            named in the reasons.
        did_effects: with a ``did`` block, the day's ``did_effects`` rows, which decide.
        planned_by_day: with a bandit, the split each day was allocated with, by day (ISO):
            the ``bandit_allocations`` rows that applied to it.

    Returns:
        The decision with its reasons, with a ramp in progress its ramp action, and with a
        holdout the holdout's reading of the verdict.
    """
    if experiment.spec.did is not None:
        return did_verdict(experiment, day, did_effects, gate_failures)
    verdict = _verdict(
        experiment,
        day,
        results,
        units_by_variant,
        gate_failures,
        units_history=units_history,
        units_by_segment=units_by_segment,
        outliers=outliers,
        offline_evidence=offline_evidence,
        units_by_phase=units_by_phase,
        planned_by_day=planned_by_day,
    )
    verdict = with_holdout(experiment, day, results, verdict, earlier_results)
    return with_ramp_action(experiment, day, results, verdict)


def _number(value: float) -> str:
    return f"{value:+.4g}"


def did_sentences(experiment: ResolvedExperiment, did_effects: Sequence[Row]) -> list[str]:
    """Each did metric's effect, and a warning for each failed parallel-trends check."""
    spec = experiment.spec
    assert spec.did is not None
    reasons, warnings = [], []
    for row in did_effects:
        if row["row_type"] != "did":
            continue
        head = f"Difference in differences of {row['metric']}"
        if row.get("not_estimable"):
            reasons.append(f"{head}: {row['not_estimable']}.")
            continue
        level = 1 - float(row["alpha"])
        reasons.append(
            f"{head}: {_number(row['effect'])} per unit-day [{_number(row['ci_low'])}, "
            f"{_number(row['ci_high'])}] ({level:.0%} CI, CR1 clustered by {spec.did.cluster}, "
            f"{row['n_clusters']} clusters of which {row['n_treated_clusters']} treated, "
            f"{p_text(row['p_value'])}); the treated clusters' mean after the rollout is "
            f"{row['treated_post']:.4g} against {row['counterfactual']:.4g} had they followed "
            f"the control clusters' trend."
        )
        if row.get("pre_trend_passed") is False:
            q_df = row["pre_trend_note"] or "the joint pre-period test"
            warnings.append(
                f"Warning: parallel trends fail for {row['metric']} before the rollout "
                f"({q_df}: F = {row['pre_trend_statistic']:.3g}, "
                f"{p_text(row['pre_trend_p_value'])} < {row['alpha']:g}): the treated clusters "
                f"already moved differently from the control clusters, so its difference in "
                f"differences is not credible; see the event study in the report."
            )
        elif row.get("pre_trend_passed") is None:
            note = row.get("pre_trend_note") or "no pre-period check"
            reasons.append(f"Parallel trends of {row['metric']} not checked: {note}.")
    return [*warnings, *reasons]


def did_verdict(
    experiment: ResolvedExperiment,
    day: dt.date,
    did_effects: Sequence[Row],
    gate_failures: Sequence[str] = (),
) -> Decision:
    """The verdict of a rollout that was not randomised (module docstring)."""
    spec = experiment.spec
    assert spec.did is not None
    if gate_failures:
        return Decision(Verdict.INVALID, None, tuple(gate_failures), None)
    reasons = did_sentences(experiment, did_effects)
    note = (
        f"Not randomised: the treatment went to the {spec.did.cluster} clusters "
        f"{', '.join(spec.did.treated)} on {spec.did.rollout_date}, so there is no sample-ratio "
        f"test, and the variant comparison in the results is confounded and not read here."
    )
    primary = next(
        (r for r in did_effects if r["row_type"] == "did" and r["metric"] == spec.metrics.primary),
        None,
    )
    ended = day >= spec.end
    estimable = primary is not None and not primary.get("not_estimable")
    if not ended or not estimable:
        lead = f"Keep running until the planned end date {spec.end}."
        if estimable:
            lead += (
                " The difference in differences is a fixed-horizon test: reading it before the "
                "end date would be peeking."
            )
        verdict = Verdict.INCONCLUSIVE if ended else Verdict.KEEP_RUNNING
        if ended:
            lead = f"The planned end date {spec.end} is reached without an estimable effect."
        return Decision(verdict, None, (lead, *reasons, note), None)
    assert primary is not None
    better = (primary["effect"] > 0) == (primary["direction"] == "increase")
    if primary.get("pre_trend_passed") is False:
        lead = (
            f"The planned end date {spec.end} is reached, but the parallel-trends check of "
            f"{primary['metric']} fails: its effect is not credible."
        )
        return Decision(Verdict.INCONCLUSIVE, None, (lead, *reasons, note), None)
    if primary["significant"] and better:
        variant = spec.treatments[0]
        lead = f"Ship {variant}: the difference in differences of {primary['metric']} is better."
        return Decision(Verdict.SHIP, variant, (lead, *reasons, note), None)
    if primary["significant"]:
        lead = f"Roll back: the difference in differences of {primary['metric']} is worse."
        return Decision(Verdict.ROLLBACK, None, (lead, *reasons, note), None)
    lead = (
        f"The planned end date {spec.end} is reached without a significant difference in "
        f"differences of {primary['metric']}."
    )
    return Decision(Verdict.INCONCLUSIVE, None, (lead, *reasons, note), None)


def _verdict(
    experiment: ResolvedExperiment,
    day: dt.date,
    results: Sequence[Row],
    units_by_variant: Mapping[str, int],
    gate_failures: Sequence[str] = (),
    *,
    units_history: Mapping[dt.date, Mapping[str, int]] | None = None,
    units_by_segment: Mapping[str, Mapping[str, int]] | None = None,
    outliers: Sequence[Row] = (),
    offline_evidence: Sequence[Row] = (),
    units_by_phase: Mapping[str, Mapping[str, int]] | None = None,
    planned_by_day: Mapping[str, Mapping[str, float]] | None = None,
) -> Decision:
    """The verdict of :func:`decide`, before any ramp action."""
    spec = experiment.spec
    overall = [r for r in results if r["segment"] == "all"]
    empty = [v for v in spec.weights if units_by_variant.get(v, 0) == 0]
    if empty:
        return Decision(
            Verdict.INVALID,
            None,
            (
                f"No exposed units in {', '.join(empty)} as of {day}; check that the exposure "
                f"logs of experiment '{spec.id}' reach the landing zone.",
                *gate_failures,
            ),
            None,
        )
    srm = sample_ratio(experiment, units_by_variant, units_by_phase, planned_by_day)
    if gate_failures:
        return Decision(Verdict.INVALID, None, tuple(gate_failures), srm.p_value)
    if isinstance(srm, PhasedSRMResult) and srm.mismatched:
        periods = allocation_periods(experiment, units_by_phase or {}, planned_by_day)
        return Decision(
            Verdict.INVALID, None, _phase_srm_sentences(experiment, srm, periods), srm.p_value
        )
    if srm.p_value < spec.srm_alpha:
        split = " / ".join(f"{units_by_variant[v]:,} {v}" for v in spec.weights)
        planned = " / ".join(f"{w:g}" for w in spec.weights.values())
        first = _srm_history_sentence(experiment, {**(units_history or {}), day: units_by_variant})
        return Decision(
            Verdict.INVALID,
            None,
            (
                f"Sample ratio mismatch: {split} units against planned weights {planned} "
                f"({srm.method} {p_text(srm.p_value)} < {spec.srm_alpha:g}). The split is broken, "
                f"so no effect can be trusted; look for assignment or exposure-logging bugs.",
                *([first] if first else []),
            ),
            srm.p_value,
        )

    reasons: list[str] = []
    notes: list[str] = []
    candidates: list[tuple[float, str]] = []
    harmful: list[str] = []
    underpowered: list[str] = []
    ended = day >= spec.end
    # Shipping before the end date needs sequential evidence for every treatment.
    sequential = spec.analysis.sequential != "fixed_horizon"
    # The spec's OEC decides in place of the primary metric when it says so (oec.decides).
    criterion = spec.deciding_metric
    label = "OEC" if criterion != spec.metrics.primary else "Primary metric"
    for variant in spec.treatments:
        rows = {r["metric"]: r for r in overall if r["variant"] == variant}
        primary = rows.get(criterion)
        if primary is None:
            reasons.append(f"{label} {criterion} has no result for {variant} yet (too few units).")
            continue
        if primary.get("not_estimable"):
            # Neither better nor worse: the verdict is KEEP_RUNNING, or INCONCLUSIVE at the end.
            reasons.append(
                f"{label} {primary['metric']} for {variant}: {primary['not_estimable']}."
            )
            continue
        significant, how, anytime = _significance(experiment, day, primary)
        sequential = sequential and anytime
        better = significant and _is_better(primary)
        worse = significant and not _is_better(primary)
        sentence = f"{label} {primary['metric']}: {_effect_sentence(primary)}"
        if better:
            reasons.append(f"{sentence}: a significant improvement ({how}).")
        elif worse:
            reasons.append(f"{sentence}: significantly worse ({how}).")
        else:
            reasons.append(f"{sentence}: not significant ({how}).")
        power_sentence = _power_sentence(experiment, primary)
        if power_sentence:
            notes.append(power_sentence)
            if primary.get("power") is not None and primary["power"] < spec.power:
                underpowered.append(variant)
        bayes = _bayes_sentence(primary)
        if bayes:
            notes.append(bayes)
        novelty = _novelty_sentence(experiment, primary)
        if novelty:
            notes.append(novelty)
        notes.extend(_reversal_sentences(experiment, results, variant))

        guardrails_ok = True
        breached = False
        for guardrail in spec.metrics.guardrails:
            row = rows.get(guardrail.metric)
            if row is None:
                guardrails_ok = False
                reasons.append(f"Guardrail {guardrail.metric} has no result for {variant} yet.")
                continue
            if row.get("not_estimable"):
                guardrails_ok = False
                reasons.append(
                    f"Guardrail {row['metric']} for {variant}: {row['not_estimable']}; it cannot "
                    f"be shown non-inferior yet."
                )
                continue
            head = f"Guardrail {row['metric']}: {_effect_sentence(row)}"
            bound = f"one-sided {1 - spec.alpha:.0%} bound {_bound_text(row)}"
            sequential_ni = row.get("ni_sequential_passed")
            if _breached(row):
                breached = True
                reasons.append(f"{head}; harm beyond the {_margin_text(row)} margin ({bound}).")
            elif sequential_ni is not None and not sequential_ni:
                # Read daily, the guardrail needs its own sequential test, like the primary.
                guardrails_ok = False
                within = "within" if row["ni_passed"] else "not within"
                reasons.append(
                    f"{head}; not yet shown non-inferior by the sequential test ({bound} is "
                    f"{within} {_margin_text(row)}, which alone would be a peek)."
                )
            elif sequential_ni or row["ni_passed"]:
                how = " by the sequential test" if sequential_ni else ""
                reasons.append(f"{head}; non-inferior{how}: {bound} is within {_margin_text(row)}.")
            else:
                guardrails_ok = False
                reasons.append(
                    f"{head}; not yet shown non-inferior: {bound} crosses {_margin_text(row)}."
                )
        if worse or breached:
            harmful.append(variant)
        elif better and guardrails_ok:
            lift = primary["rel_effect"] if primary["rel_effect"] is not None else 0.0
            candidates.append((abs(float(lift)), variant))

    notes.extend(outlier_sentences(experiment, outliers))
    notes.extend(offline_evidence_sentences(offline_evidence))
    notes.extend(_segment_srm_sentences(experiment, units_by_segment or {}))
    notes.append(f"Sample ratio matches the plan ({srm.method} {p_text(srm.p_value)}).")
    can_ship = ended or sequential
    if candidates and can_ship:
        best = max(candidates)[1]
        lead = f"Ship {best}."
        if not ended:
            lead += (
                f" The {spec.analysis.sequential.replace('_', '-')} test allows stopping before "
                f"the planned end date {spec.end}."
            )
        return Decision(Verdict.SHIP, best, (lead, *reasons, *notes), srm.p_value)
    if harmful and len(harmful) == len(spec.treatments):
        return Decision(
            Verdict.ROLLBACK,
            None,
            (f"Roll back {', '.join(harmful)}.", *reasons, *notes),
            srm.p_value,
        )
    if not ended:
        lead = f"Keep running until the planned end date {spec.end}."
        if candidates and not sequential:
            lead += (
                " The improvement is significant at a fixed-horizon test, but reading it before "
                "the end date would be peeking; shipping waits for the planned horizon."
            )
        if harmful:
            lead += f" Consider stopping {', '.join(harmful)} early: it is harmful."
        return Decision(Verdict.KEEP_RUNNING, None, (lead, *reasons, *notes), srm.p_value)
    lead = (
        f"The planned end date {spec.end} is reached without a significant improvement "
        f"that clears every guardrail."
    )
    if underpowered:
        lead += (
            f" The test is underpowered for a {pct(spec.mde, signed=False)} lift "
            f"({', '.join(underpowered)}): no effect is not evidence of no effect."
        )
    return Decision(Verdict.INCONCLUSIVE, None, (lead, *reasons, *notes), srm.p_value)
