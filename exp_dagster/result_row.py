"""The contract of a ``results`` row: one typed field per column of the table (schema.sql).

:func:`exp_dagster.analysis.compute_results` returns :class:`ResultRow` objects, which cannot be
built with a missing or an extra key (a ``TypeError`` names it) nor changed afterwards, and
:func:`exp_dagster.warehouse.partitions.replace_partition` still refuses any row whose keys differ
from the table's columns. A new estimate therefore needs its field here and its column in
schema.sql (a test compares the two) before it can be written, instead of being dropped on the
way to the warehouse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ResultRow(Mapping[str, Any]):
    """One metric × treatment × segment value as of a day; ``None`` is a NULL (an estimate the
    row does not have: overall-only fields on segment rows, every estimate of a metric that is
    not estimable). Column meanings are in schema.sql and docs/cli.md.

    Read it like the dict of a row read back from the warehouse (``row["p_value"]``,
    ``row.get("power")``, ``dict(row)``): the decision and the report take either. It compares
    equal to a mapping with the same keys and values.
    """

    experiment_id: str
    as_of_date: dt.date
    metric: str
    metric_type: str
    role: str
    direction: str
    segment: str
    segment_value: str
    control: str
    variant: str
    n_control: int
    n_treatment: int
    mean_control: float | None
    mean_treatment: float | None
    abs_effect: float | None
    abs_ci_low: float | None
    abs_ci_high: float | None
    rel_effect: float | None
    rel_ci_low: float | None
    rel_ci_high: float | None
    p_value: float | None
    cuped: bool
    variance_reduction: float | None
    method: str
    alpha: float
    ni_margin: float | None
    ni_margin_type: str | None
    ni_bound: float | None
    ni_passed: bool | None
    spec_version: str
    std_error: float | None
    ni_p_value: float | None
    sequential_method: str | None
    sequential_look: int | None
    information_fraction: float | None
    sequential_boundary: float | None
    sequential_p_value: float | None
    sequential_ci_low: float | None
    sequential_ci_high: float | None
    sequential_significant: bool | None
    p_value_adjusted: float | None
    multiplicity_family: str | None
    multiplicity_method: str | None
    prob_better: float | None
    expected_loss: float | None
    credible_low: float | None
    credible_high: float | None
    power: float | None
    mde_rel: float | None
    days_needed: float | None
    heterogeneity_p_value: float | None
    segment_reversal: bool | None
    novelty_slope: float | None
    novelty_p_value: float | None
    ni_sequential_passed: bool | None
    required_units: int | None
    required_units_pre_period: int | None
    not_estimable: str | None
    # Judged once, by exp_dagster.significance; NULL when not estimable.
    significant: bool | None
    significance_test: str | None
    significance_basis: str | None
    # What a reviewer checks the test by (NULL when not estimable; test_options always set).
    statistic: float | None
    df: float | None
    rel_std_error: float | None
    sd_control: float | None
    sd_treatment: float | None
    cuped_theta: float | None
    test_options: str | None
    # Each arm's own value with its two-sided 1 - alpha interval, before CUPED (NULL: quantiles).
    control_ci_low: float | None
    control_ci_high: float | None
    treatment_ci_low: float | None
    treatment_ci_high: float | None

    def __getitem__(self, key: str) -> Any:
        if key not in _COLUMN_SET:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(RESULT_COLUMNS)

    def __len__(self) -> int:
        return len(RESULT_COLUMNS)


# The keys of ResultRow, in the order of the table's columns.
RESULT_COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(ResultRow))
_COLUMN_SET = frozenset(RESULT_COLUMNS)
