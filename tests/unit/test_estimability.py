"""A decision is never absent: metrics that cannot be estimated at a look get a row saying why,
and the other metrics, the later looks and the decision go on (issue 17, item 2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import numpy as np
import pytest

from exp_dagster.analysis import compute_results, history_by_day
from exp_dagster.decision import Verdict, decide
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.warehouse.queries import ensure_schema, replace_partition

START = dt.date(2026, 10, 1)
DAYS = 7


@pytest.fixture(scope="module")
def catalog() -> MetricCatalog:
    return load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")


def experiment(catalog: MetricCatalog, **analysis: Any) -> ResolvedExperiment:
    """Revenue per user as primary (a sum that is 0 until someone buys), conversion and
    impressions as secondaries, latency as guardrail; exposures spread over the days."""
    spec: dict[str, Any] = {
        "id": "shop_test",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {
            "primary": "revenue",
            "secondary": ["conversion", "impressions"],
            "guardrails": [{"metric": "latency_p95", "margin": 0.05}],
        },
        "mde": 0.05,
        "analysis": analysis,
    }
    return parse_experiment(spec, "shop_test.yaml", catalog)


def mean_row(day: dt.date, metric: str, variant: str, values: np.ndarray) -> dict[str, Any]:
    return {
        "as_of_date": day,
        "metric": metric,
        "variant": variant,
        "segment": "all",
        "segment_value": "all",
        "n": int(values.size),
        "sum_y": float(values.sum()),
        "sum_y2": float(values @ values),
        "sum_x": None,
        "sum_x2": None,
        "sum_xy": None,
        "sum_c": None,
        "sum_c2": None,
        "sum_yc": None,
    }


def quantile_rows(day: dt.date, variant: str, values: np.ndarray) -> tuple[dict, list[dict]]:
    """The latency guardrail's statistics row and histogram (one bucket per distinct value)."""
    buckets, counts = np.unique(np.round(values), return_counts=True)
    statistics = {
        **mean_row(day, "latency_p95", variant, values),
        "n": int(values.size),
        "sum_y": float(values.size * 0.05),
        "sum_y2": float(values.size * 0.05),
        "sum_x": float(values.size),
        "sum_x2": float(values.size),
        "sum_xy": float(values.size * 0.05),
    }
    histogram = [
        {"as_of_date": day, "metric": "latency_p95", "variant": variant, "bucket": i, "value": v}
        | {"n": int(c)}
        for i, (v, c) in enumerate(zip(buckets, counts, strict=True))
    ]
    return statistics, histogram


def simulate(
    rng: np.random.Generator, *, lift: float, buyers_from: int = 1, impressions: float | None = None
) -> dict[dt.date, tuple[list[dict], list[dict]]]:
    """Cumulative statistics per day; 300 new units a day; nobody buys before day
    ``buyers_from`` (0-based); ``impressions`` makes every unit's impressions that constant."""
    by_day: dict[dt.date, tuple[list[dict], list[dict]]] = {}
    revenue = {"control": np.zeros(0), "treatment": np.zeros(0)}
    for k in range(DAYS):
        day = START + dt.timedelta(days=k)
        statistics: list[dict] = []
        histograms: list[dict] = []
        for variant, scale in (("control", 1.0), ("treatment", 1.0 + lift)):
            new = np.zeros(150)
            revenue[variant] = np.concatenate([revenue[variant], new])
            if k >= buyers_from:
                buys = rng.random(revenue[variant].size) < 0.1
                revenue[variant] = revenue[variant] + buys * rng.exponential(20 * scale, buys.size)
            values = revenue[variant]
            statistics.append(mean_row(day, "revenue", variant, values))
            statistics.append(mean_row(day, "conversion", variant, (values > 0).astype(float)))
            shown = (
                np.full(values.size, impressions)
                if impressions is not None
                else rng.poisson(5.0, values.size).astype(float)
            )
            statistics.append(mean_row(day, "impressions", variant, shown))
            latency, histogram = quantile_rows(day, variant, rng.gamma(4, 20, values.size))
            statistics.append(latency)
            histograms += histogram
        by_day[day] = (statistics, histograms)
    return by_day


def analyse(
    exp: ResolvedExperiment,
    by_day: dict[dt.date, tuple[list[dict], list[dict]]],
    day: dt.date,
    event_names: Any = None,
) -> list[dict[str, Any]]:
    history = history_by_day(
        [r for d, (s, _) in by_day.items() if d < day for r in s],
        [r for d, (_, h) in by_day.items() if d < day for r in h],
    )
    statistics, histograms = by_day[day]
    return compute_results(exp, day, statistics, histograms, history, event_names=event_names)


def by_metric(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in rows if r["segment"] == "all"}


@pytest.mark.parametrize("sequential", ["fixed_horizon", "group_sequential", "always_valid"])
def test_no_purchase_on_launch_day_is_a_row_not_a_crash(
    catalog: MetricCatalog, sequential: str
) -> None:
    """Day 1 has no purchase: revenue and conversion have no variance that day. Their rows say
    so, impressions and latency are estimated, and every later day is analysed with day 1 left
    out of the sequential looks (today: `std_errors must be positive` on every later day)."""
    exp = experiment(catalog, sequential=sequential)
    by_day = simulate(np.random.default_rng(1), lift=0.5)
    first = by_metric(analyse(exp, by_day, START))
    for metric in ("revenue", "conversion"):
        assert first[metric]["not_estimable"] == (
            "not estimable: no variance (no 'purchase' events from the exposed units yet)"
        )
        assert first[metric]["p_value"] is None and first[metric]["n_control"] == 150
    assert first["impressions"]["not_estimable"] is None
    assert first["latency_p95"]["not_estimable"] is None
    last_day = START + dt.timedelta(days=DAYS - 1)
    last = by_metric(analyse(exp, by_day, last_day))
    assert all(row["not_estimable"] is None for row in last.values())
    if sequential != "fixed_horizon":
        # Looks of days 2..7: day 1 had no estimate.
        assert last["revenue"]["sequential_look"] == DAYS - 1
        assert last["revenue"]["sequential_significant"] is not None
    if sequential == "group_sequential":
        # A +50% lift concludes (p = 0.0003 at the last look) once day 1 is no look.
        assert last["revenue"]["sequential_significant"] is True


def test_a_constant_metric_is_not_estimable_in_every_look(catalog: MetricCatalog) -> None:
    """Every unit has 3 impressions in both arms: no variance, a row saying so on every day,
    and the primary metric's sequential test is unaffected."""
    exp = experiment(catalog, sequential="group_sequential")
    by_day = simulate(np.random.default_rng(2), lift=0.5, buyers_from=0, impressions=3.0)
    for k in range(DAYS):
        rows = by_metric(analyse(exp, by_day, START + dt.timedelta(days=k)))
        assert rows["impressions"]["not_estimable"] == (
            "not estimable: no variance (every unit's value is 3)"
        )
        assert rows["revenue"]["sequential_look"] == k + 1


def test_a_metric_without_statistics_still_gets_its_row(catalog: MetricCatalog) -> None:
    """A quantile whose event no unit has (no statistics rows, no histogram), and no units in
    an arm: each metric of the spec has an overall row, and multiplicity skips them."""
    exp = experiment(catalog)
    by_day = simulate(np.random.default_rng(3), lift=0.0, buyers_from=0)
    statistics, _ = by_day[START]
    without_latency = [r for r in statistics if r["metric"] != "latency_p95"]
    without_treatment = [
        r
        for r in without_latency
        if not (r["metric"] == "impressions" and r["variant"] != "control")
    ]
    rows = by_metric(compute_results(exp, START, without_treatment))
    assert rows["latency_p95"]["not_estimable"] == (
        "not estimable: no 'latency_ms' values from the units of control yet"
    )
    assert rows["impressions"]["not_estimable"] == (
        "not estimable: 0 units in treatment (a variance needs 2)"
    )
    assert rows["conversion"]["multiplicity_family"] == "secondary"
    assert rows["impressions"]["multiplicity_family"] is None


@pytest.mark.parametrize(
    ("logged", "quarantined", "reason"),
    [
        (
            {"purchse", "impression", "latency_ms"},
            {},
            "not estimable: no events named 'purchase' in the logs — did you mean 'purchse'?",
        ),
        (
            {"impression", "latency_ms"},
            {"purchase": 12},
            "not estimable: every 'purchase' event was quarantined (12 row(s); see "
            "event_quarantine for the reasons)",
        ),
        ((), {}, "not estimable: no event rows in the logs yet (no traffic)"),
        (
            {"purchase", "impression"},
            {},
            "not estimable: no variance (no 'purchase' events from the exposed units yet)",
        ),
    ],
    ids=["typo", "all-quarantined", "no-traffic", "no-buyer-yet"],
)
def test_a_metric_without_events_says_what_the_logs_hold(
    catalog: MetricCatalog, logged: set[str], quarantined: dict[str, int], reason: str
) -> None:
    exp = experiment(catalog)
    by_day = simulate(np.random.default_rng(4), lift=0.0, buyers_from=3)
    calls: list[int] = []

    def event_names() -> tuple[set[str], dict[str, int]]:
        calls.append(1)
        return set(logged), quarantined

    rows = by_metric(analyse(exp, by_day, START, event_names))
    assert rows["revenue"]["not_estimable"] == reason == rows["revenue"]["method"]
    assert rows["conversion"]["not_estimable"] == reason
    assert calls == [1]  # asked once, for both metrics
    later = analyse(exp, by_day, START + dt.timedelta(days=4), event_names)
    assert all(r.get("not_estimable") is None for r in later) and calls == [1]


def test_a_primary_metric_that_is_not_estimable_keeps_running_then_is_inconclusive(
    catalog: MetricCatalog,
) -> None:
    exp = experiment(catalog, sequential="group_sequential")
    by_day = simulate(np.random.default_rng(5), lift=0.5, buyers_from=DAYS)
    units = {"control": 150, "treatment": 150}
    early = decide(exp, START, analyse(exp, by_day, START), units)
    assert early.decision == Verdict.KEEP_RUNNING
    assert (
        "Primary metric revenue for treatment: not estimable: no variance (no 'purchase' events "
        "from the exposed units yet)." in early.reasons
    )
    end = START + dt.timedelta(days=DAYS - 1)
    late = decide(exp, end, analyse(exp, by_day, end), {"control": 1050, "treatment": 1050})
    assert late.decision == Verdict.INCONCLUSIVE


def test_a_guardrail_that_is_not_estimable_blocks_ship(catalog: MetricCatalog) -> None:
    exp = experiment(catalog)
    by_day = simulate(np.random.default_rng(6), lift=0.5, buyers_from=0)
    end = START + dt.timedelta(days=DAYS - 1)
    statistics, histograms = by_day[end]
    rows = compute_results(exp, end, statistics, [])  # no latency histogram
    units = {"control": 1050, "treatment": 1050}
    blocked = decide(exp, end, rows, units)
    assert blocked.decision == Verdict.INCONCLUSIVE
    assert any(
        r.startswith("Guardrail latency_p95 for treatment: not estimable") for r in blocked.reasons
    )
    shipped = decide(exp, end, compute_results(exp, end, statistics, histograms), units)
    assert shipped.decision == Verdict.SHIP


def test_sample_sizes_beyond_bigint_are_left_empty(catalog: MetricCatalog) -> None:
    """Values up to the 1e12 cut-off around a mean near 0 need more units than a BIGINT holds
    (about 1e28 here): the column is NULL and the row is written (it overflowed before)."""
    exp = experiment(catalog)
    values = np.array([1e12, -1e12] * 3 + [5.0])
    statistics = [mean_row(START, "revenue", v, values) for v in ("control", "treatment")]
    rows = compute_results(exp, START, statistics)
    (row,) = [r for r in rows if r["metric"] == "revenue"]
    assert row["not_estimable"] is None and row["power"] is not None
    assert row["required_units"] is None
    with duckdb.connect() as conn:
        ensure_schema(conn)
        replace_partition(conn, "results", exp.spec.id, START, rows)
        ((written,),) = conn.execute("SELECT count(*) FROM results").fetchall()
    assert written == len(rows)


def test_constant_arms_with_different_values_are_not_estimable(catalog: MetricCatalog) -> None:
    """Every control unit has 2 impressions and every treatment unit 3: a difference with no
    sampling noise is not an infinitely significant effect (it had p = 0 and |z| = inf)."""
    exp = experiment(catalog)
    statistics = [
        mean_row(START, "impressions", "control", np.full(50, 2.0)),
        mean_row(START, "impressions", "treatment", np.full(50, 3.0)),
    ]
    (row,) = [r for r in compute_results(exp, START, statistics) if r["metric"] == "impressions"]
    assert row["not_estimable"] == (
        "not estimable: no variance (every unit's value is 2 in control and 3 in treatment)"
    )
