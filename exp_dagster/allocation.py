"""A bandit experiment's next-day traffic split from the day's statistics of its reward metric
(the ``bandit_allocations`` table; conventions: :mod:`exp_dagster.stats.bandit` and
docs/statistics.md, "Bandit allocation").

The allocation written on day D applies to D + 1 and reads the cumulative statistics of every unit
exposed through D (``metric_statistics``, segment ``all``). Its seed is derived from (experiment,
D), so a re-run writes the same weights.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.stats.bandit import (
    DEFAULT_DRAWS,
    ArmPosterior,
    BanditAllocation,
    allocation_seed,
    bandit_allocation,
    mean_posterior,
    proportion_posterior,
)

BANDIT_ALLOCATION_COLUMNS: tuple[str, ...] = (
    "experiment_id",
    "as_of_date",
    "applies_to",
    "variant",
    "weight",
    "probability_best",
    "top_two_probability",
    "algorithm",
    "basis",
    "floor",
    "metric",
    "n",
    "mean",
    "draws",
    "monte_carlo_se",
    "seed",
    "spec_version",
)


@dataclass(frozen=True)
class AllocationOutcome:
    """What the step writes for one experiment and day.

    Attributes:
        rows: the ``bandit_allocations`` rows (one per variant), or none.
        note: why there are none, or how the weights were set (for the asset's metadata).
        allocation: the library's result, when the posterior was used.
    """

    rows: tuple[dict[str, Any], ...]
    note: str
    allocation: BanditAllocation | None


def _arm_statistics(
    statistics: Sequence[Mapping[str, Any]], metric: str, variants: Sequence[str]
) -> dict[str, tuple[int, float, float]]:
    """(n, Σy, Σy²) per variant from the overall rows of ``metric``; (0, 0, 0) for an arm with
    no row yet."""
    found = {
        str(row["variant"]): (
            int(row["n"]),
            float(row["sum_y"] or 0.0),
            float(row["sum_y2"] or 0.0),
        )
        for row in statistics
        if row["metric"] == metric and row["segment"] == "all"
    }
    return {variant: found.get(variant, (0, 0.0, 0.0)) for variant in variants}


def next_day_allocation(
    experiment: ResolvedExperiment,
    day: dt.date,
    statistics: Sequence[Mapping[str, Any]],
    *,
    draws: int = DEFAULT_DRAWS,
) -> AllocationOutcome:
    """The allocation for ``day + 1`` from ``day``'s statistics rows.

    Without a ``bandit`` block, or on the last day (no next day in the window), nothing. During
    burn-in, the planned split (basis ``burn-in``). With a mean reward whose arm has fewer than
    two units or no variance yet, the planned split too (basis ``planned: <reason>``), and no
    probabilities. Otherwise the posterior's weights, floored (basis ``posterior``).
    """
    spec = experiment.spec
    reward = spec.bandit_metric
    if spec.bandit is None or reward is None:
        return AllocationOutcome((), "no bandit block in the spec: the split is fixed", None)
    applies_to = day + dt.timedelta(days=1)
    if applies_to > spec.end:
        return AllocationOutcome(
            (), f"{day} is the experiment's last day: there is no next day to allocate", None
        )
    bandit = spec.bandit
    metric = experiment.metrics[reward]
    variants = list(spec.weights)
    arms = _arm_statistics(statistics, reward, variants)
    seed = allocation_seed(spec.id, day)
    burn_in = (applies_to - spec.start).days < bandit.burn_in_days
    posteriors: list[ArmPosterior] | None = None
    reason = ""
    try:
        if metric.kind.bandit_posterior == "beta":
            posteriors = [proportion_posterior(n, sy) for n, sy, _ in arms.values()]
        else:
            posteriors = [mean_posterior(n, sy, sy2) for n, sy, sy2 in arms.values()]
    except ValueError as error:
        reason = str(error)
    allocation = None
    if posteriors is not None:
        allocation = bandit_allocation(
            variants,
            posteriors,
            algorithm=bandit.algorithm,
            floor=bandit.floor,
            top_two_beta=bandit.top_two_beta,
            draws=draws,
            seed=seed,
            higher_is_better=metric.direction == "increase",
            burn_in_split=spec.weights if burn_in else None,
        )
    if allocation is not None:
        weights = dict(zip(variants, allocation.weights, strict=True))
        basis: str = allocation.basis
        best = dict(zip(variants, allocation.probability_best, strict=True))
        top_two = dict(zip(variants, allocation.top_two or (), strict=False))
        note = (
            f"{bandit.algorithm} on {reward} ({basis}); P(best): "
            + ", ".join(f"{v} {best[v]:.3f}" for v in variants)
            + f"; Monte Carlo se <= {allocation.monte_carlo_se:.4f} ({draws:,} draws)"
        )
    else:
        weights, best, top_two = dict(spec.weights), {}, {}
        basis = "burn-in" if burn_in else f"planned: {reason}"
        note = f"the planned split for {applies_to} ({basis}); no posterior yet: {reason}"
    rows = tuple(
        {
            "experiment_id": spec.id,
            "as_of_date": day,
            "applies_to": applies_to,
            "variant": variant,
            "weight": float(weights[variant]),
            "probability_best": best.get(variant),
            "top_two_probability": top_two.get(variant),
            "algorithm": bandit.algorithm,
            "basis": basis,
            "floor": bandit.floor,
            "metric": reward,
            "n": arms[variant][0],
            "mean": arms[variant][1] / arms[variant][0] if arms[variant][0] else None,
            "draws": draws if allocation is not None else None,
            "monte_carlo_se": allocation.monte_carlo_se if allocation is not None else None,
            "seed": seed,
            "spec_version": experiment.version,
        }
        for variant in variants
    )
    return AllocationOutcome(rows, note, allocation)
