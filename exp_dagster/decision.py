"""The decision policy: results of one experiment and day → a verdict with reasons in plain words.

First cut (fixed-horizon tests; sequential methods come with the statistics engine's next step):

* INVALID      a gate failed, an arm has no units, or the sample ratio mismatches the planned
               weights (chi-square p below the spec's ``srm_alpha``, 0.001 by default).
* ROLLBACK     the primary metric is significantly worse (two-sided test at ``alpha``), or a
               guardrail's harm is significantly beyond its margin (its whole CI is past it).
* SHIP         the primary metric is significantly better and every guardrail is shown
               non-inferior (one-sided bound within its margin), on or after the planned end
               date. Before the end date the fixed-horizon p-value would be a peek, so a
               significant improvement keeps the experiment running instead of shipping early.
* KEEP_RUNNING before the end date otherwise.
* INCONCLUSIVE on or after the end date otherwise.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.stats import SRMResult, srm_test

Row = Mapping[str, Any]


class Verdict(StrEnum):
    SHIP = "SHIP"
    ROLLBACK = "ROLLBACK"
    KEEP_RUNNING = "KEEP_RUNNING"
    INCONCLUSIVE = "INCONCLUSIVE"
    INVALID = "INVALID"


@dataclass(frozen=True)
class Decision:
    """A verdict for one experiment and day.

    Attributes:
        decision: the verdict.
        variant: the variant to ship (SHIP only).
        reasons: why, one plain sentence each, most important first.
        srm_p_value: the sample-ratio-mismatch test's p-value (None when it could not run).
    """

    decision: Verdict
    variant: str | None
    reasons: tuple[str, ...]
    srm_p_value: float | None


def pct(value: float | None, *, signed: bool = True) -> str:
    """A relative value as a percentage for people: ``0.0412`` → ``+4.12%``."""
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("+∞" if value > 0 else "−∞")
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def p_text(p_value: float | None) -> str:
    if p_value is None or math.isnan(p_value):
        return "p = n/a"
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.4f}"


def _effect_sentence(row: Row) -> str:
    return (
        f"{row['variant']} {pct(row['rel_effect'])} "
        f"[{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}] against {row['control']} "
        f"({p_text(row['p_value'])})"
    )


def _is_better(row: Row) -> bool:
    return row["rel_effect"] > 0 if row["direction"] == "increase" else row["rel_effect"] < 0


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


def sample_ratio(experiment: ResolvedExperiment, units_by_variant: Mapping[str, int]) -> SRMResult:
    """The chi-square sample-ratio-mismatch test of exposed units against the planned weights."""
    spec = experiment.spec
    observed = [int(units_by_variant.get(v.name, 0)) for v in spec.variants]
    return srm_test(observed, [v.weight for v in spec.variants])


def decide(
    experiment: ResolvedExperiment,
    day: dt.date,
    results: Sequence[Row],
    units_by_variant: Mapping[str, int],
    gate_failures: Sequence[str] = (),
) -> Decision:
    """Apply the policy (module docstring) to the overall results of one experiment and day.

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        results: result rows; only ``segment == 'all'`` rows are used.
        units_by_variant: analysed units per variant, for the sample-ratio test.
        gate_failures: sentences describing failed data gates, if any.

    Returns:
        The decision with its reasons.
    """
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
    srm = sample_ratio(experiment, units_by_variant)
    if gate_failures:
        return Decision(Verdict.INVALID, None, tuple(gate_failures), srm.p_value)
    if srm.p_value < spec.srm_alpha:
        split = " / ".join(f"{units_by_variant[v]:,} {v}" for v in spec.weights)
        planned = " / ".join(f"{w:g}" for w in spec.weights.values())
        return Decision(
            Verdict.INVALID,
            None,
            (
                f"Sample ratio mismatch: {split} units against planned weights {planned} "
                f"(chi-square {p_text(srm.p_value)} < {spec.srm_alpha:g}). The split is broken, "
                f"so no effect can be trusted; look for assignment or exposure-logging bugs.",
            ),
            srm.p_value,
        )

    reasons: list[str] = []
    candidates: list[tuple[float, str]] = []
    harmful: list[str] = []
    ended = day >= spec.end
    for variant in spec.treatments:
        rows = {r["metric"]: r for r in overall if r["variant"] == variant}
        primary = rows.get(spec.metrics.primary)
        if primary is None:
            reasons.append(
                f"Primary metric {spec.metrics.primary} has no result for {variant} yet "
                f"(too few units)."
            )
            continue
        significant = primary["p_value"] < spec.alpha
        better = significant and _is_better(primary)
        worse = significant and not _is_better(primary)
        sentence = f"Primary metric {primary['metric']}: {_effect_sentence(primary)}"
        if better:
            reasons.append(f"{sentence}: a significant improvement at alpha = {spec.alpha:g}.")
        elif worse:
            reasons.append(f"{sentence}: significantly worse at alpha = {spec.alpha:g}.")
        else:
            reasons.append(f"{sentence}: not significant at alpha = {spec.alpha:g}.")

        guardrails_ok = True
        breached = False
        for guardrail in spec.metrics.guardrails:
            row = rows.get(guardrail.metric)
            if row is None:
                guardrails_ok = False
                reasons.append(f"Guardrail {guardrail.metric} has no result for {variant} yet.")
                continue
            head = f"Guardrail {row['metric']}: {_effect_sentence(row)}"
            bound = f"one-sided {1 - spec.alpha:.0%} bound {_bound_text(row)}"
            if _breached(row):
                breached = True
                reasons.append(f"{head}; harm beyond the {_margin_text(row)} margin ({bound}).")
            elif row["ni_passed"]:
                reasons.append(f"{head}; non-inferior: {bound} is within {_margin_text(row)}.")
            else:
                guardrails_ok = False
                reasons.append(
                    f"{head}; not yet shown non-inferior: {bound} crosses {_margin_text(row)}."
                )
        if worse or breached:
            harmful.append(variant)
        elif better and guardrails_ok:
            candidates.append((abs(float(primary["rel_effect"])), variant))

    srm_note = f"Sample ratio matches the plan (chi-square {p_text(srm.p_value)})."
    if candidates and ended:
        best = max(candidates)[1]
        return Decision(Verdict.SHIP, best, (f"Ship {best}.", *reasons, srm_note), srm.p_value)
    if harmful and len(harmful) == len(spec.treatments):
        return Decision(
            Verdict.ROLLBACK,
            None,
            (f"Roll back {', '.join(harmful)}.", *reasons, srm_note),
            srm.p_value,
        )
    if not ended:
        lead = f"Keep running until the planned end date {spec.end}."
        if candidates:
            lead += (
                " The improvement is significant at a fixed-horizon test, but reading it before "
                "the end date would be peeking; shipping waits for the planned horizon."
            )
        if harmful:
            lead += f" Consider stopping {', '.join(harmful)} early: it is harmful."
        return Decision(Verdict.KEEP_RUNNING, None, (lead, *reasons, srm_note), srm.p_value)
    return Decision(
        Verdict.INCONCLUSIVE,
        None,
        (
            f"The planned end date {spec.end} is reached without a significant improvement "
            f"that clears every guardrail.",
            *reasons,
            srm_note,
        ),
        srm.p_value,
    )
