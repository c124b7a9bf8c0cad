"""The scale benchmark's report: medians, ratios and Dagster's overhead per step.

``benchmarks/`` runs by hand (minutes to an hour), so its arithmetic is checked here on made-up
measurements whose medians and ratios are known.
"""

from __future__ import annotations

from typing import Any

from benchmarks.run import summary


def _run(seconds: float, rss: float = 100.0, **outcome: Any) -> dict[str, Any]:
    return {"seconds": seconds, "peak_rss_mb": rss, "outcome": outcome}


def _runs() -> dict[str, list[dict[str, Any]]]:
    return {
        "scan": [_run(2.0), _run(9.0), _run(4.0)],  # median 4.0
        "tea_tasting": [_run(40.0), _run(20.0), _run(30.0)],  # median 30.0
        "exp_dagster": [
            _run(130.0, 500.0, seconds_by_step={"a": 60.0, "b": 40.0, "c": 5.0}),
            _run(120.0, 700.0, seconds_by_step={"a": 50.0, "b": 44.0, "c": 7.0}),
            _run(125.0, 600.0, seconds_by_step={"a": 55.0, "b": 42.0}),  # no step c
        ],
        "exp_dagster_direct": [
            _run(100.0, seconds_by_asset={"a": 48.0, "b": 40.0, "c": 1.0}),
            _run(104.0, seconds_by_asset={"a": 52.0, "b": 38.0, "c": 2.0}),
            _run(90.0, seconds_by_asset={"a": 50.0, "b": 36.0, "c": 3.0}),
        ],
    }


def test_medians_and_ratios_to_the_scan_and_to_tea_tasting() -> None:
    lines = summary(1000, 3, _runs(), [])
    assert lines[0] == "1,000 units, medians of 3 (wall time of the whole process)"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    assert rows["scan"] == ["4.0", "100", "1.00", "0.13"]
    assert rows["tea_tasting"] == ["30.0", "100", "7.50", "1.00"]
    assert rows["exp_dagster"] == ["125.0", "600", "31.25", "4.17"]
    assert rows["exp_dagster_direct"] == ["100.0", "100", "25.00", "3.33"]


def test_dagster_overhead_in_total_inside_the_steps_and_per_step() -> None:
    lines = summary(1000, 3, _runs(), [])
    overhead = next(line for line in lines if line.startswith("Dagster overhead"))
    assert overhead.endswith("1.25× (+25.0 s)")
    # medians per step through Dagster: a 55, b 42, c 5 (a missing step counts as 0 s);
    # without: a 50, b 38, c 2; inside the steps 102 - 90 = 12 s, outside 25 - 12 = 13 s
    at = lines.index(overhead)
    assert "inside the steps +12.0 s, outside them (runs) +13.0 s" in lines[at + 1]
    per_step = [line.split() for line in lines[at + 2 :]]
    assert per_step == [["a", "55.0", "50.0"], ["b", "42.0", "38.0"], ["c", "5.0", "2.0"]]


def test_add_a_day_ratio_and_missing_contenders() -> None:
    runs = {"exp_dagster": _runs()["exp_dagster"]}
    day = {"outcome": {"add_day_seconds": 9.0, "full_seconds": 300.0, "identical": True}}
    lines = summary(10, 3, runs, [day])
    assert lines[2].split() == ["exp_dagster", "125.0", "600", "–", "–"]
    assert not any(line.startswith("Dagster overhead") for line in lines)
    assert lines[-1] == (
        "adding day 15: 9.0 s against 300.0 s for all 15 days from scratch = 0.030× "
        "(same results: True)"
    )
