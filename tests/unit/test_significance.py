"""Significance is judged once, when a result row is built, and the decision reads it: at the
alpha where a row turns significant, its decision turns with it, under every sequential method."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from exp_dagster.analysis import DayStatistics, compute_results
from exp_dagster.decision import Verdict, decide
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.result_row import RESULT_COLUMNS, ResultRow
from exp_dagster.significance import significance
from exp_dagster.spec import MetricCatalog, ResolvedExperiment, load_metric_catalog
from tests.unit.test_analysis import DAYS, START, analyse, experiment, simulate_days

END = START + dt.timedelta(days=DAYS - 1)
MIDDLE = START + dt.timedelta(days=9)
TWO_TREATMENTS = [
    {"name": "control", "weight": 1 / 3, "control": True},
    {"name": "ranker_b", "weight": 1 / 3},
    {"name": "ranker_c", "weight": 1 / 3},
]


@pytest.fixture(scope="module")
def catalog() -> MetricCatalog:
    return load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")


def _primary(rows: Sequence[ResultRow], variant: str) -> ResultRow:
    return next(
        r
        for r in rows
        if r["metric"] == "ctr" and r["segment"] == "all" and r["variant"] == variant
    )


def _flip(judge: Callable[[float], bool]) -> tuple[float, float]:
    """Alphas either side of where ``judge`` (significance at a spec's alpha, monotone) turns
    True, within a relative 1e-7: (not significant, significant)."""
    low, high = 1e-6, 0.499  # a spec's alpha lies below 0.5
    assert not judge(low) and judge(high), "the flip must lie inside (1e-6, 0.499)"
    while high - low > 1e-7 * high:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if judge(middle) else (middle, high)
    return low, high


@pytest.mark.parametrize(
    ("method", "variants", "day", "rate", "tested"),
    [
        ("fixed_horizon", None, END, 0.0515, "p_value"),
        ("fixed_horizon", TWO_TREATMENTS, END, 0.0515, "p_value_adjusted"),
        ("always_valid", None, MIDDLE, 0.053, "sequential_p_value"),
        ("always_valid", TWO_TREATMENTS, MIDDLE, 0.053, "p_value_adjusted"),
        ("group_sequential", None, MIDDLE, 0.053, None),
        ("group_sequential", TWO_TREATMENTS, MIDDLE, 0.053, None),
    ],
    ids=["fixed", "fixed-holm", "always-valid", "always-valid-holm", "group-seq", "group-seq-2"],
)
def test_the_row_and_the_decision_turn_significant_at_the_same_alpha(
    catalog: MetricCatalog,
    method: str,
    variants: list[dict[str, Any]] | None,
    day: dt.date,
    rate: float,
    tested: str | None,
) -> None:
    """Move the spec's alpha across the point where the primary row turns significant: the
    row's ``significant`` and the decision agree on both sides, with the same wording; where
    the rule is a p-value against alpha, the point is that p-value (adjusted by Holm with two
    treatments): strictly below alpha for fixed-horizon, at most alpha for always-valid."""
    treatments = ["treatment"] if variants is None else ["ranker_b", "ranker_c"]
    rates = {"control": 0.05, treatments[0]: rate}
    if variants is not None:
        rates[treatments[1]] = 0.05
    statistics = simulate_days(np.random.default_rng(21), rates)
    units = DayStatistics(statistics[day]).units

    def resolved(alpha: float) -> ResolvedExperiment:
        overrides: dict[str, Any] = {"alpha": alpha, "analysis": {"sequential": method}}
        return experiment(catalog, **overrides, **({"variants": variants} if variants else {}))

    def primary(alpha: float) -> ResultRow:
        return _primary(analyse(resolved(alpha), statistics, day), treatments[0])

    not_yet, significant = _flip(lambda alpha: bool(primary(alpha)["significant"]))
    if tested is not None:
        p_value = primary(0.05)[tested]
        assert not_yet <= p_value <= significant
        if tested == "p_value_adjusted":
            assert p_value > primary(0.05)["p_value"]  # Holm moved the flip
        at_p = primary(p_value)
        assert at_p["significant"] is (method == "always_valid")  # p <= alpha against p < alpha
    for alpha, expected in ((not_yet, False), (significant, True)):
        spec = resolved(alpha)
        rows = analyse(spec, statistics, day)
        row = _primary(rows, treatments[0])
        assert row["significant"] is expected
        assert row["significance_test"] == method
        verdict = decide(spec, day, rows, units(spec))
        ships = verdict.decision == Verdict.SHIP and verdict.variant == treatments[0]
        assert ships is expected, verdict.reasons
        said = "a significant improvement" if expected else "not significant"
        sentence = next(
            r for r in verdict.reasons if r.startswith("Primary metric ctr: " + treatments[0])
        )
        assert sentence.endswith(f": {said} ({row['significance_basis']}).")


def _row(**fields: Any) -> dict[str, Any]:
    base = {
        "metric": "ctr",
        "segment": "all",
        "role": "primary",
        "abs_effect": 0.01,
        "std_error": 0.004,
        "p_value": 0.03,
        "not_estimable": None,
    }
    return {**base, **fields}


def test_each_family_is_judged_on_the_p_value_it_adjusts(catalog: MetricCatalog) -> None:
    """Secondary and segment rows on their adjusted p-value; a guardrail, whose family adjusts
    the non-inferiority p-value, on its own p-value; the primary metric's always-valid p-value
    only through the primary family."""
    fixed = experiment(catalog, analysis={"sequential": "fixed_horizon"})
    secondary = _row(role="secondary", p_value_adjusted=0.06, multiplicity_family="secondary")
    assert significance(fixed, secondary) == (
        False,
        "fixed_horizon",
        "fixed-horizon adjusted p = 0.0600",
    )
    segment = _row(
        segment="platform", p_value_adjusted=0.01, multiplicity_family="segment:ctr:treatment"
    )
    assert significance(fixed, segment).significant is True
    guardrail = _row(role="guardrail", p_value_adjusted=0.9, multiplicity_family="guardrail")
    assert significance(fixed, guardrail) == (True, "fixed_horizon", "fixed-horizon p = 0.0300")
    # One treatment: the primary family's adjusted value is its p-value, said without "adjusted".
    primary = _row(p_value_adjusted=0.03, multiplicity_family="primary")
    assert significance(fixed, primary).basis == "fixed-horizon p = 0.0300"

    always_valid = experiment(catalog, analysis={"sequential": "always_valid"})
    sequential = {"sequential_p_value": 0.04}
    assert significance(
        always_valid, _row(**sequential, p_value_adjusted=0.08, multiplicity_family="primary")
    ) == (False, "always_valid", "always-valid p = 0.0800")
    # A secondary family adjusts the fixed-horizon p-value, not the always-valid one.
    assert significance(
        always_valid,
        _row(role="secondary", **sequential, p_value_adjusted=0.5, multiplicity_family="secondary"),
    ) == (True, "always_valid", "always-valid p = 0.0400")
    # A segment row has no sequential test: fixed-horizon, whatever the spec's method.
    assert significance(always_valid, _row(segment="platform")).test == "fixed_horizon"

    group = experiment(catalog)  # group_sequential by default
    crossed = _row(sequential_significant=True, sequential_boundary=2.5, sequential_look=3)
    assert significance(group, crossed) == (
        True,
        "group_sequential",
        "group-sequential (obrien-fleming spending) |z| = 2.50 against a boundary of 2.500 on "
        "look 3",
    )
    assert significance(group, _row(not_estimable="not estimable: no variance")) == (None,) * 3


def test_a_result_row_is_built_with_exactly_its_columns_and_not_changed() -> None:
    fields = dict.fromkeys(RESULT_COLUMNS)
    with pytest.raises(TypeError, match="unexpected keyword argument 'signifcant'"):
        ResultRow(**fields, signifcant=True)
    del fields["significant"]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'significant'"):
        ResultRow(**fields)
    row = ResultRow(**dict.fromkeys(RESULT_COLUMNS))
    with pytest.raises(AttributeError):
        row.significant = True  # type: ignore[misc]
    assert dict(row) == dict.fromkeys(RESULT_COLUMNS) and list(row) == list(RESULT_COLUMNS)
    with pytest.raises(KeyError):
        row["keys"]  # a method, not a column


def test_compute_results_judges_every_row_once(catalog: MetricCatalog) -> None:
    """Every row compute_results returns is a ResultRow, judged exactly as
    :func:`significance` judges it (and not estimable rows are not judged)."""
    spec = experiment(
        catalog,
        segments=["platform"],
        metrics={"primary": "ctr", "secondary": ["watch_time"]},  # watch_time: no statistics
    )
    segments = {
        "ios": {"control": 0.05, "treatment": 0.056},
        "web": {"control": 0.05, "treatment": 0.05},
    }
    statistics = simulate_days(
        np.random.default_rng(3), {"control": 0.0, "treatment": 0.0}, segments=segments
    )
    rows = compute_results(spec, END, statistics[END])
    assert rows and all(isinstance(r, ResultRow) for r in rows)
    for row in rows:
        assert (row["significant"], row["significance_test"], row["significance_basis"]) == (
            significance(spec, row)
        )
    judged = {(r["segment"], r["not_estimable"] is None, r["significance_test"]) for r in rows}
    assert judged == {
        ("all", True, "group_sequential"),
        ("all", False, None),
        ("platform", True, "fixed_horizon"),
    }
