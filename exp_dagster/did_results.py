"""The spec's ``did`` block as ``did_effects`` rows, from the panel ``did_cluster_days``
(docs/statistics.md, "Difference in differences").

Per metric of the block, one ``did`` row: the 2 × 2 difference-in-differences effect of the
rollout (:func:`~exp_dagster.stats.did_test`: OLS ``y ~ treated * post`` on the unit-days, CR1
standard errors clustered by cluster, t with ``G - 1`` degrees of freedom), with the parallel-
trends check of the pre-period (:func:`~exp_dagster.stats.event_study`'s joint Wald F-test of the
pre-rollout days' effects relative to the last pre-rollout day); and one ``event_study`` row per
day with that day's effect and interval, what the report plots. A metric that cannot be
estimated yet (before the rollout date, a group without clusters) gets a ``did`` row saying why.
A cluster value not listed in ``treated`` is a control cluster. Units whose exposure row has no
cluster value are not in the panel; the ``did`` row's ``note`` says how many unit-days that left
out (their cells in ``did_cluster_days`` have ``cluster`` NULL).

The effect is read as fixed-horizon: ``significant`` is ``p_value < alpha``, and the decision
reads it on or after the end date only (:func:`exp_dagster.decision.decide`). A pre-trend check
with ``p < alpha`` fails (``pre_trend_passed`` false): the decision and the report carry it as a
warning, and the decision does not ship on that effect.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.stats import ClusterPeriodSums, did_test, event_study

Row = Mapping[str, Any]

DID_COLUMNS: tuple[str, ...] = (
    "experiment_id",
    "as_of_date",
    "metric",
    "row_type",
    "period",
    "direction",
    "effect",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "df",
    "significant",
    "control_pre",
    "control_post",
    "treated_pre",
    "treated_post",
    "counterfactual",
    "n_clusters",
    "n_treated_clusters",
    "n_observations",
    "pre_trend_statistic",
    "pre_trend_p_value",
    "pre_trend_passed",
    "pre_trend_note",
    "alpha",
    "method",
    "not_estimable",
    "spec_version",
    "note",
)


def did_panel(rows: Iterable[Row], metric: str) -> ClusterPeriodSums:
    """The metric's cells of ``did_cluster_days`` rows as the library's panel (period: the day);
    the cells of units without a cluster (``cluster`` NULL) are not in it."""
    cells = [
        row
        for row in rows
        if row["metric"] == metric and row["cluster"] is not None and int(row["n"]) > 0
    ]
    return ClusterPeriodSums(
        cluster=tuple(row["cluster"] for row in cells),
        treated=tuple(bool(row["treated"]) for row in cells),
        period=tuple(row["as_of_date"] for row in cells),
        n=tuple(int(row["n"]) for row in cells),
        total=tuple(float(row["sum_y"]) for row in cells),
    )


def without_cluster_note(rows: Iterable[Row], metric: str, cluster: str) -> str | None:
    """The sentence naming the metric's unit-days left out for want of a cluster value (summed
    over the days' NULL-cluster cells), or None when there are none."""
    left_out = sum(
        int(row["n"]) for row in rows if row["metric"] == metric and row["cluster"] is None
    )
    if not left_out:
        return None
    return (
        f"{left_out:,} unit-days had no {cluster} and are not in the panel (units exposed on a "
        f"day whose exposure row has no {cluster} value, counted once per such day)"
    )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def did_rows(
    experiment: ResolvedExperiment, day: dt.date, panel_rows: Iterable[Row]
) -> list[dict[str, Any]]:
    """The ``did_effects`` rows of the day (module docstring); empty without a ``did`` block.

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        panel_rows: the panel's cells from the start through the day (``read_did_panel``).
    """
    spec = experiment.spec
    did = spec.did
    if did is None:
        return []
    cells = list(panel_rows)
    rows: list[dict[str, Any]] = []
    for metric in did.metrics:
        base = {
            **dict.fromkeys(DID_COLUMNS),
            "experiment_id": spec.id,
            "as_of_date": day,
            "metric": metric,
            "direction": experiment.metrics[metric].direction,
            "alpha": spec.alpha,
            "spec_version": experiment.version,
        }
        note = without_cluster_note(cells, metric, did.cluster)
        try:
            panel = did_panel(cells, metric)
            groups = {flag for flag in panel.treated}
            if groups != {False, True}:
                missing = "treated" if True not in groups else "control"
                raise ValueError(
                    f"no {missing} cluster has exposed units yet (treated: "
                    f"{', '.join(did.treated)} of segment '{did.cluster}')"
                )
            if not any(period >= did.rollout_date for period in panel.period):
                raise ValueError(f"no day from the rollout date {did.rollout_date} yet")
            result = did_test(panel, did.rollout_date, alpha=spec.alpha)
        except ValueError as error:
            reason = f"not estimable: difference in differences of {metric}: {error}"
            rows.append(
                {
                    **base,
                    "row_type": "did",
                    "method": reason,
                    "not_estimable": reason,
                    "note": note,
                }
            )
            continue
        did_row = {
            **base,
            "row_type": "did",
            "effect": result.effect,
            "std_error": result.std_error,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "p_value": result.p_value,
            "df": result.df,
            "significant": bool(result.p_value < spec.alpha),
            "control_pre": result.control_pre,
            "control_post": result.control_post,
            "treated_pre": result.treated_pre,
            "treated_post": result.treated_post,
            "counterfactual": result.counterfactual,
            "n_clusters": result.n_clusters,
            "n_treated_clusters": result.n_treated_clusters,
            "n_observations": result.n_observations,
            "method": result.method,
            "note": note,
        }
        try:
            study = event_study(panel, did.rollout_date, alpha=spec.alpha)
        except ValueError as error:
            did_row["pre_trend_note"] = f"event study not estimable: {error}"
            rows.append(did_row)
            continue
        p_value = _finite(study.pre_trend_p_value)
        did_row.update(
            pre_trend_statistic=_finite(study.pre_trend_statistic),
            pre_trend_p_value=p_value,
            pre_trend_passed=None if p_value is None else bool(p_value >= spec.alpha),
            pre_trend_note=study.method.split("; ", 1)[-1],
        )
        rows.append(did_row)
        for index, period in enumerate(study.periods):
            reference = period == study.reference_period
            rows.append(
                {
                    **base,
                    "row_type": "event_study",
                    "period": period,
                    "effect": study.effects[index],
                    "std_error": study.std_errors[index],
                    "ci_low": study.ci_lows[index],
                    "ci_high": study.ci_highs[index],
                    "p_value": None if reference else _finite(study.p_values[index]),
                    "df": study.df,
                    "n_clusters": study.n_clusters,
                    "n_observations": study.n_observations,
                    "method": study.method
                    + ("; the reference day (0 by construction)" if reference else ""),
                }
            )
    return rows
