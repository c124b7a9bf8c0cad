"""``exp-dagster demo --experiment <showcase>`` end to end: each showcase experiment of the
catalog (exp_dagster.showcase) is simulated and materialised in its own home on its small logs,
and its decision, ramp actions and holdout rows agree with the simulation's truth (issue 21)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exp_dagster.cli import main
from exp_dagster.simulate import SimulationTruth, load_truth


def _demo(
    home: Path, experiment: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[SimulationTruth, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the showcase's demo; its truth, results (every day) and decisions."""
    monkeypatch.setenv("EXP_DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home.parent / "dagster"))
    for name in (
        "EXP_DAGSTER_WAREHOUSE",
        "EXP_DAGSTER_REPORTS",
        "EXP_DAGSTER_EXPOSURES",
        "EXP_DAGSTER_EVENTS",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["demo", "--experiment", experiment]) == 0
    showcase = home / "showcase" / experiment
    assert not (home / "warehouse.duckdb").exists()  # the demo's own home is left alone
    with duckdb.connect(str(showcase / "warehouse.duckdb"), read_only=True) as conn:
        results = conn.execute("SELECT * FROM results ORDER BY ALL").fetchdf()
        decisions = conn.execute("SELECT * FROM decision ORDER BY as_of_date").fetchdf()
    report = showcase / "reports" / experiment
    assert sorted(p.name for p in report.glob("*.html"))
    return (
        load_truth(showcase / "landing"),
        results.to_dict("records"),
        decisions.to_dict("records"),
    )


def _row(
    results: list[dict[str, Any]], day: dt.date, metric: str, segment: str, value: str
) -> dict[str, Any]:
    (row,) = [
        r
        for r in results
        if r["as_of_date"].date() == day
        and (r["metric"], r["segment"], r["segment_value"]) == (metric, segment, value)
    ]
    return row


def _covers(row: dict[str, Any], truth: float) -> bool:
    return row["not_estimable"] is None and row["rel_ci_low"] <= truth <= row["rel_ci_high"]


@pytest.mark.parametrize("experiment", ["ramp_demo", "holdout_demo"])
def test_a_showcase_finds_its_truth(
    experiment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    truth, results, decisions = _demo(tmp_path / "home", experiment, monkeypatch)
    end = truth.end
    final = decisions[-1]
    assert final["as_of_date"].date() == end
    # The truth: watch time (primary) improves, latency (the guardrail) does not move: SHIP.
    assert truth.relative_effects["watch_time"] > 0 == truth.relative_effects["latency_p95"]
    assert final["decision"] == "SHIP", final["reasons"]
    for metric in ("watch_time", "ctr"):
        assert _covers(_row(results, end, metric, "all", "all"), truth.relative_effects[metric])
    strata = {
        label: effect
        for label, effect in truth.segment_relative_effects["watch_time"].items()
        if label.startswith(("ramp_phase=", "launch_period="))
    }
    assert len(strata) == (3 if experiment == "ramp_demo" else 2)
    for label, effect in strata.items():
        segment, value = label.split("=", 1)
        assert _covers(_row(results, end, "watch_time", segment, value), effect), label
    if experiment == "ramp_demo":
        # The ramp's next step while it lasts: never roll back (latency's truth is 0, within the
        # 15 % margin); held until the guardrail's sequential test clears the margin, and
        # continued by the day before the last phase; none once the last phase has started.
        actions = {d["as_of_date"].date(): d["ramp_action"] for d in decisions}
        last_phase = dt.date(2026, 10, 5)
        during = [a for day, a in actions.items() if day < last_phase]
        assert set(during) <= {"hold", "continue_ramp"} and during[-1] == "continue_ramp"
        assert all(a is None for day, a in actions.items() if day >= last_phase)
        # The overall row is stratified by phase; each platform's too.
        overall = _row(results, end, "watch_time", "all", "all")
        assert "strata: the ramp phases of first exposure" in overall["method"]
        ios = _row(results, end, "watch_time", "platform", "ios")
        assert "strata: the ramp phases of first exposure" in ios["method"]
    else:
        # Read at its end only: KEEP_RUNNING on every earlier day; the reasons give the effect
        # since each launch.
        assert {d["decision"] for d in decisions[:-1]} == {"KEEP_RUNNING"}
        assert final["reasons"][0].startswith("The launches' gains last")
        assert any(r.startswith("Over the days since each launch alone") for r in final["reasons"])
