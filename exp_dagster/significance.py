"""Whether a result is significant: judged once, when the result row is built, and read after.

:func:`significance` is the one place that decides it. :func:`exp_dagster.analysis.compute_results`
writes its answer into every row (``significant``, ``significance_test``,
``significance_basis``); the decision and the report read those columns instead of comparing
p-values with alpha themselves.

The rule, for a row with an effect (a row that is not estimable has NULL in all three):

* the test is the spec's sequential method when the row carries that method's result (overall
  rows: ``sequential_significant`` under ``group_sequential``, ``sequential_p_value`` under
  ``always_valid``), and the fixed-horizon test otherwise (segment rows, ``fixed_horizon``
  specs);
* ``group_sequential``: the z statistic crossed its Lan-DeMets boundary on some look (for the
  primary metric at alpha / treatments, Bonferroni; ``sequential_significant``);
* ``always_valid``: the always-valid p-value is at most alpha;
* ``fixed_horizon``: the two-sided p-value is below alpha: ``p_value``, which tests the absolute
  difference, or the relative lift for a metric analysed with ``p_value_scale: relative`` (the
  basis then says "of the relative lift"); the sequential tests stay on the absolute effect;
* a p-value is the one adjusted within the row's multiplicity family when that family adjusts
  that very p-value (:func:`adjusted_p_key`): the primary family adjusts the primary metric's
  p-values across treatments (the always-valid ones under ``always_valid``), the secondary and
  segment families adjust fixed-horizon p-values, the guardrail family adjusts non-inferiority
  p-values. So under a sequential method a secondary metric or a guardrail is judged by its own
  sequential test, unadjusted, and a guardrail's effect always on its own p-value.

Significance is two-sided and says nothing of the direction: the decision reads the sign of the
effect against the metric's ``direction``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from exp_dagster.metric_kinds import resolve_options
from exp_dagster.spec import AnalysisPolicy, ResolvedExperiment, SequentialMethod

Row = Mapping[str, Any]


class Significance(NamedTuple):
    """How a result row was judged.

    Attributes:
        significant: whether the effect is significant; None when the row has no effect.
        test: which test judged it (``group_sequential``, ``always_valid``, ``fixed_horizon``):
            a sequential test's verdict holds at any look, a fixed-horizon one only at the
            planned end (read earlier it is a peek).
        basis: the evidence in words, e.g. ``fixed-horizon p = 0.0123``.
    """

    significant: bool | None
    test: SequentialMethod | None
    basis: str | None


NOT_JUDGED = Significance(None, None, None)


def p_text(p_value: float | None) -> str:
    """A p-value for people: ``p = 0.0123``, ``p < 0.0001``, ``p = n/a``."""
    if p_value is None or math.isnan(p_value):
        return "p = n/a"
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.4f}"


def spending_label(analysis: AnalysisPolicy) -> str:
    """The alpha-spending function as reports name it: ``obrien-fleming``, ``pocock``,
    ``power (rho = 3)``."""
    if analysis.spending == "power":
        return f"power (rho = {analysis.spending_rho:g})"
    return analysis.spending


def adjusted_p_key(policy: AnalysisPolicy, family: str) -> str:
    """The p-value column that the multiplicity family ``family`` adjusts into
    ``p_value_adjusted``: ``p_value``, ``sequential_p_value`` (the primary and OEC families under
    ``always_valid``) or ``ni_p_value`` (guardrails)."""
    if family in ("primary", "oec"):  # the OEC across treatments, as the primary metric
        return "sequential_p_value" if policy.sequential == "always_valid" else "p_value"
    if family == "guardrail":
        return "ni_p_value"
    return "p_value"  # secondary, and segment:<metric>:<variant>


def _tested_p_value(policy: AnalysisPolicy, row: Row, key: str) -> tuple[float, bool]:
    """The p-value in column ``key``, adjusted when the row's family adjusts that column; and
    whether it is the adjusted one."""
    adjusted, family = row.get("p_value_adjusted"), row.get("multiplicity_family")
    if adjusted is not None and family is not None and adjusted_p_key(policy, family) == key:
        return float(adjusted), True
    return float(row[key]), False


def significance(experiment: ResolvedExperiment, row: Row) -> Significance:
    """Judge one result row by the rule of the module docstring.

    Args:
        experiment: the resolved spec (its ``alpha``, sequential method and treatments).
        row: a result row with its estimates, sequential fields and adjusted p-value filled
            in (a row without ``not_estimable`` has an effect).

    Returns:
        Whether the row is significant, by which test, and the evidence in words.
    """
    if row.get("not_estimable") is not None:
        return NOT_JUDGED
    spec = experiment.spec
    policy = spec.analysis
    if policy.sequential == "group_sequential" and row.get("sequential_significant") is not None:
        boundary = row.get("sequential_boundary")
        boundary_text = f"{boundary:.3f}" if boundary is not None else "n/a"
        statistic = abs(row["abs_effect"]) / row["std_error"] if row.get("std_error") else 0.0
        return Significance(
            bool(row["sequential_significant"]),
            "group_sequential",
            f"group-sequential ({spending_label(policy)} spending) |z| = {statistic:.2f} "
            f"against a boundary of {boundary_text} on look {row.get('sequential_look')}",
        )
    if policy.sequential == "always_valid" and row.get("sequential_p_value") is not None:
        p_value, _ = _tested_p_value(policy, row, "sequential_p_value")
        return Significance(
            p_value <= spec.alpha, "always_valid", f"always-valid {p_text(p_value)}"
        )
    p_value, adjusted = _tested_p_value(policy, row, "p_value")
    # The primary family of a single treatment holds one p-value: adjusting changes nothing.
    several = row.get("multiplicity_family") != "primary" or len(spec.treatments) > 1
    label = "adjusted " if adjusted and several else ""
    metric = experiment.metrics.get(row["metric"])
    relative = metric is not None and resolve_options(metric, policy).p_value_scale == "relative"
    scale = " of the relative lift" if relative else ""
    return Significance(
        p_value < spec.alpha, "fixed_horizon", f"fixed-horizon {label}{p_text(p_value)}{scale}"
    )


def significance_fields(experiment: ResolvedExperiment, row: Row) -> dict[str, Any]:
    """The row's ``significant``, ``significance_test`` and ``significance_basis`` columns."""
    judged = significance(experiment, row)
    return {
        "significant": judged.significant,
        "significance_test": judged.test,
        "significance_basis": judged.basis,
    }
