"""The next day's split of a bandit experiment from a day's statistics rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from exp_dagster.allocation import BANDIT_ALLOCATION_COLUMNS, next_day_allocation
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.stats import allocation_seed, bandit_allocation, mean_posterior

START = dt.date(2026, 10, 1)


def experiment(**bandit: Any) -> ResolvedExperiment:
    catalog: MetricCatalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    spec: dict[str, Any] = {
        "id": "bandit_unit",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": "2026-10-10",
        "metrics": {
            "primary": "watch_time",
            "guardrails": [{"metric": "latency_p95", "margin": 0.1}],
        },
    }
    if bandit:
        spec["bandit"] = bandit
    return parse_experiment(spec, "x.yaml", catalog)


def statistics(
    n: int, sum_y: float, sum_y2: float, n_treatment: int | None = None
) -> list[dict[str, Any]]:
    rows = [
        {
            "metric": "watch_time",
            "variant": "control",
            "segment": "all",
            "n": n,
            "sum_y": sum_y,
            "sum_y2": sum_y2,
        },
        {
            "metric": "watch_time",
            "variant": "treatment",
            "segment": "all",
            "n": n if n_treatment is None else n_treatment,
            "sum_y": 1.2 * sum_y,
            "sum_y2": 1.44 * sum_y2,
        },
        # another segment and another metric are not read
        {
            "metric": "watch_time",
            "variant": "control",
            "segment": "platform",
            "n": 1,
            "sum_y": 0.0,
            "sum_y2": 0.0,
        },
        {
            "metric": "impressions",
            "variant": "control",
            "segment": "all",
            "n": 1,
            "sum_y": 0.0,
            "sum_y2": 0.0,
        },
    ]
    return rows


def test_without_a_bandit_or_on_the_last_day_nothing_is_written() -> None:
    plain = next_day_allocation(experiment(), START, statistics(100, 5_000.0, 400_000.0))
    assert plain.rows == () and "no bandit block" in plain.note
    last = next_day_allocation(
        experiment(algorithm="thompson"), dt.date(2026, 10, 10), statistics(100, 5e3, 4e5)
    )
    assert last.rows == () and "last day" in last.note


def test_a_mean_reward_uses_the_t_posterior_and_the_seed_of_the_day() -> None:
    resolved = experiment(algorithm="top_two_thompson", floor=0.05)
    day = START + dt.timedelta(days=2)
    outcome = next_day_allocation(resolved, day, statistics(200, 10_000.0, 700_000.0), draws=5_000)
    assert [r["variant"] for r in outcome.rows] == ["control", "treatment"]
    assert all(set(r) == set(BANDIT_ALLOCATION_COLUMNS) for r in outcome.rows)
    expected = bandit_allocation(
        ["control", "treatment"],
        [mean_posterior(200, 10_000.0, 700_000.0), mean_posterior(200, 12_000.0, 1_008_000.0)],
        algorithm="top_two_thompson",
        floor=0.05,
        draws=5_000,
        seed=allocation_seed("bandit_unit", day),
    )
    assert [r["weight"] for r in outcome.rows] == pytest.approx(list(expected.weights), abs=1e-15)
    assert outcome.rows[1]["applies_to"] == day + dt.timedelta(days=1)
    assert outcome.rows[0]["mean"] == pytest.approx(50.0)
    assert outcome.rows[0]["basis"] == "posterior"
    assert outcome.rows[0]["top_two_probability"] is not None


def test_a_mean_reward_without_two_units_keeps_the_planned_split() -> None:
    resolved = experiment(algorithm="thompson", burn_in_days=1)
    outcome = next_day_allocation(
        resolved, START + dt.timedelta(days=1), statistics(5, 10.0, 30.0, 1)
    )
    assert [r["weight"] for r in outcome.rows] == [0.5, 0.5]
    assert outcome.rows[0]["basis"].startswith(
        "planned: a mean reward's posterior needs at least 2"
    )
    assert outcome.rows[0]["probability_best"] is None


def test_burn_in_writes_the_planned_split() -> None:
    resolved = experiment(burn_in_days=3)
    burn_in = next_day_allocation(resolved, START + dt.timedelta(days=1), statistics(100, 5e3, 4e5))
    after = next_day_allocation(resolved, START + dt.timedelta(days=2), statistics(100, 5e3, 4e5))
    assert [r["basis"] for r in burn_in.rows] == ["burn-in", "burn-in"]
    assert [r["weight"] for r in burn_in.rows] == [0.5, 0.5]
    assert [r["basis"] for r in after.rows] == ["posterior", "posterior"]
