"""The spec's ``oec`` as a result row and its ``metric_tree`` as ``metric_trees`` rows, from the
day's ``metric_cross_statistics`` (docs/statistics.md, "OEC and metric trees").

The OEC row is a ``results`` row like a metric's (``metric`` = the OEC's name, ``metric_type`` and
``role`` ``oec``, ``direction`` ``increase``), tested by :func:`~exp_dagster.stats.oec_test` at
each look, with the spec's sequential test over the looks as the primary metric has it, and
judged significant by :mod:`exp_dagster.significance` with the other rows; the decision reads
it in place of the primary metric when the spec says ``oec.decides``. A ratio metric enters the
OEC by its per-unit linearisation around each arm's own ratio
(:func:`~exp_dagster.stats.linearise_ratio`), so its component effect is the difference (or
relative lift) of the ratios of sums, with its delta-method variance and its
covariances with the other metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from exp_dagster.result_row import RESULT_COLUMNS
from exp_dagster.spec import ResolvedExperiment
from exp_dagster.stats import (
    CrossMoments,
    EffectEstimate,
    OECResult,
    linearise_ratio,
    metric_tree,
    oec_test,
)
from exp_dagster.warehouse.cross_statistics import cross_moments_by_variant

Row = Mapping[str, Any]

OEC_ROLE = "oec"
OEC_TYPE = "oec"


def cross_arms(experiment: ResolvedExperiment, rows: Iterable[Row]) -> dict[str, CrossMoments]:
    """Each variant's cross-moments over the spec's components (``cross_components``), named
    ``metric`` (a value) or ``metric.numerator`` / ``metric.denominator`` (a ratio)."""
    names = experiment.cross_component_names
    return {
        variant: CrossMoments(n=n, sums=sums, products=products, names=tuple(names))
        for variant, (n, sums, products) in cross_moments_by_variant(rows, names).items()
    }


def _select(arm: CrossMoments, names: list[str]) -> CrossMoments:
    index = [arm.names.index(name) for name in names]
    products = np.asarray(arm.products)[np.ix_(index, index)]
    return CrossMoments(
        n=arm.n,
        sums=tuple(arm.sums[k] for k in index),
        products=tuple(map(tuple, products.tolist())),
        names=tuple(names),
    )


def oec_arm(experiment: ResolvedExperiment, arm: CrossMoments) -> CrossMoments:
    """One arm's cross-moments over the OEC's metrics, one component per metric, named by it:
    a mean's or proportion's value, a ratio's linearisation."""
    assert experiment.spec.oec is not None
    metrics = sorted(experiment.spec.oec.components)
    ratios = [m for m in metrics if f"{m}.numerator" in arm.names]
    selected = _select(
        arm,
        [
            n
            for m in metrics
            for n in ((f"{m}.numerator", f"{m}.denominator") if m in ratios else (m,))
        ],
    )
    for metric in ratios:
        selected = linearise_ratio(selected, f"{metric}.numerator", f"{metric}.denominator", metric)
    return selected


def oec_effect(
    experiment: ResolvedExperiment, arms: Mapping[str, CrossMoments], variant: str
) -> tuple[OECResult, EffectEstimate] | str:
    """The OEC's test of ``variant`` against the control, and the same as an
    :class:`~exp_dagster.stats.EffectEstimate` (what the sequential tests read); or why it cannot
    be tested (an arm without units, fewer than 2 units, no variance, a weighted metric whose
    control mean is 0 under relative normalisation)."""
    spec = experiment.spec
    assert spec.oec is not None
    try:
        if spec.control not in arms or variant not in arms:
            raise ValueError("an arm has no units yet")
        result = oec_test(
            oec_arm(experiment, arms[spec.control]),
            oec_arm(experiment, arms[variant]),
            dict(spec.oec.components),
            normalisation=spec.oec.normalisation,
            alpha=spec.alpha,
        )
        if not (result.std_error > 0.0 and math.isfinite(result.std_error)):
            raise ValueError(
                "the OEC has no variance yet (every unit has the same value in both arms)"
            )
    except ValueError as error:
        return f"not estimable: OEC {spec.oec.name}: {error}"
    scale = abs(result.value_control)
    relative = (
        (result.effect / scale, result.ci_low / scale, result.ci_high / scale)
        if scale > 0
        else (math.nan, math.nan, math.nan)
    )
    effect = EffectEstimate(
        mean_control=result.value_control,
        mean_treatment=result.value_treatment,
        abs_effect=result.effect,
        abs_ci_low=result.ci_low,
        abs_ci_high=result.ci_high,
        rel_effect=relative[0],
        rel_ci_low=relative[1],
        rel_ci_high=relative[2],
        p_value=result.p_value,
        statistic=result.statistic,
        std_error=result.std_error,
        n_control=arms[spec.control].n,
        n_treatment=arms[variant].n,
        method=result.method,
        rel_std_error=result.std_error / scale if scale > 0 else math.nan,
        df=result.df,
    )
    return result, effect


def _base_row(
    experiment: ResolvedExperiment, day: dt.date, variant: str, arms: Mapping[str, CrossMoments]
) -> dict[str, Any]:
    spec = experiment.spec
    assert spec.oec is not None
    control, treatment = arms.get(spec.control), arms.get(variant)
    return {
        **dict.fromkeys(RESULT_COLUMNS),
        "experiment_id": spec.id,
        "as_of_date": day,
        "metric": spec.oec.name,
        "metric_type": OEC_TYPE,
        "role": OEC_ROLE,
        "direction": "increase",
        "segment": "all",
        "segment_value": "all",
        "control": spec.control,
        "variant": variant,
        "n_control": control.n if control else 0,
        "n_treatment": treatment.n if treatment else 0,
        "cuped": False,
        "alpha": spec.alpha,
        "spec_version": experiment.version,
        "sequential_method": spec.analysis.sequential,
        "test_options": json.dumps(
            {
                "normalisation": spec.oec.normalisation,
                "reference_distribution": "t",
                "weights": dict(sorted(spec.oec.components.items())),
            },
            sort_keys=True,
            separators=(",", ":"),
        ),
    }


def oec_rows(
    experiment: ResolvedExperiment,
    day: dt.date,
    cross_rows: Iterable[Row],
    history: Mapping[dt.date, Iterable[Row]] | None = None,
    sequential: Callable[[Sequence[tuple[dt.date, EffectEstimate]]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The OEC's result row per treatment (none without an ``oec``), before significance; a
    treatment whose OEC cannot be tested yet gets a row saying why (``not_estimable``).

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        cross_rows: the day's ``metric_cross_statistics`` rows.
        history: earlier days' ``metric_cross_statistics`` rows under the same spec version, by
            date: each is a look of the sequential test (a day whose OEC is not estimable is a
            look not taken).
        sequential: the sequential fields of a row from its looks (the analysis's
            group-sequential or always-valid test, as for the primary metric); None: none.
    """
    spec = experiment.spec
    if spec.oec is None:
        return []
    arms = cross_arms(experiment, cross_rows)
    past = {d: cross_arms(experiment, rows) for d, rows in (history or {}).items() if d < day}
    rows = []
    for variant in spec.treatments:
        row = _base_row(experiment, day, variant, arms)
        outcome = oec_effect(experiment, arms, variant)
        if isinstance(outcome, str):
            rows.append({**row, "method": outcome, "not_estimable": outcome})
            continue
        result, effect = outcome
        contributions = ", ".join(
            f"{name} {value:+.4g}"
            for name, value in zip(result.names, result.contributions, strict=True)
        )
        row.update(
            {
                "mean_control": result.value_control,
                "mean_treatment": result.value_treatment,
                "abs_effect": result.effect,
                "abs_ci_low": result.ci_low,
                "abs_ci_high": result.ci_high,
                "std_error": result.std_error,
                "p_value": result.p_value,
                "statistic": result.statistic,
                "df": result.df if math.isfinite(result.df) else None,
                # The OEC's change relative to its control value, that value taken as fixed.
                "rel_effect": _finite(effect.rel_effect),
                "rel_ci_low": _finite(effect.rel_ci_low),
                "rel_ci_high": _finite(effect.rel_ci_high),
                "rel_std_error": _finite(effect.rel_std_error),
                "method": (
                    f"{result.method}; contributions {contributions}; standard error "
                    f"{result.std_error:.4g} (it would be {result.independent_std_error:.4g} "
                    f"were the metrics independent); relative lift: the effect over the "
                    f"control's OEC"
                ),
                "not_estimable": None,
            }
        )
        if sequential is not None:
            looks = []
            for look_day in sorted(past):
                earlier = oec_effect(experiment, past[look_day], variant)
                if not isinstance(earlier, str):
                    looks.append((look_day, earlier[1]))
            looks.append((day, effect))
            row.update(sequential(looks))
        rows.append(row)
    return rows


TREE_COLUMNS: tuple[str, ...] = (
    "experiment_id",
    "as_of_date",
    "root",
    "factor",
    "position",
    "control",
    "variant",
    "value_control",
    "value_treatment",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "log_lift",
    "log_std_error",
    "p_value",
    "share",
    "method",
    "not_estimable",
    "spec_version",
)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def tree_rows(
    experiment: ResolvedExperiment, day: dt.date, cross_rows: Iterable[Row]
) -> list[dict[str, Any]]:
    """The ``metric_trees`` rows: per treatment, the root's total (position 0) and each factor
    (1, 2, ... in spec order) with its lift, interval and share of the root's log lift; one row
    saying why when the tree cannot be decomposed yet. Empty without a ``metric_tree``."""
    spec = experiment.spec
    tree = spec.metric_tree
    if tree is None:
        return []
    arms = cross_arms(experiment, cross_rows)
    factors: dict[str, tuple[str, str | None]] = {}
    for name in tree.factors:
        if f"{name}.numerator" in experiment.cross_component_names:
            factors[name] = (f"{name}.numerator", f"{name}.denominator")
        else:
            factors[name] = (name, None)
    base = {
        "experiment_id": spec.id,
        "as_of_date": day,
        "root": tree.root,
        "control": spec.control,
        "spec_version": experiment.version,
    }
    rows: list[dict[str, Any]] = []
    for variant in spec.treatments:
        try:
            if spec.control not in arms or variant not in arms:
                raise ValueError("an arm has no units yet")
            result = metric_tree(arms[spec.control], arms[variant], factors, alpha=spec.alpha)
        except ValueError as error:
            reason = f"not estimable: metric tree of {tree.root}: {error}"
            rows.append(
                {
                    **dict.fromkeys(TREE_COLUMNS),
                    **base,
                    "factor": tree.root,
                    "position": 0,
                    "variant": variant,
                    "method": reason,
                    "not_estimable": reason,
                }
            )
            continue
        for position, factor in enumerate((result.total, *result.factors)):
            rows.append(
                {
                    **base,
                    "factor": tree.root if position == 0 else factor.name,
                    "position": position,
                    "variant": variant,
                    "value_control": factor.value_control,
                    "value_treatment": factor.value_treatment,
                    "lift": factor.lift,
                    "lift_ci_low": factor.lift_ci_low,
                    "lift_ci_high": factor.lift_ci_high,
                    "log_lift": factor.log_lift,
                    "log_std_error": factor.std_error,
                    "p_value": _finite(factor.p_value),
                    "share": _finite(factor.share),
                    "method": result.method,
                    "not_estimable": None,
                }
            )
    return rows
