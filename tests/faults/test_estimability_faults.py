"""Metrics that cannot be estimated on real logs, end to end through ``exp-dagster analyze``:
the run goes on, each such metric's row says why, and every day gets a decision."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml

from exp_dagster.cli import main
from tests.faults.corpus import START, events, exposures, unit_ids, write, write_catalog

DAYS = [START + dt.timedelta(days=i) for i in range(3)]


def _analyze(
    root: Path,
    *,
    edit_events: Callable[[pd.DataFrame, int], pd.DataFrame] = lambda frame, _: frame,
    catalog_metrics: dict[str, Any] | None = None,
    **spec: Any,
) -> tuple[int, dict[str, Any]]:
    """Three days, 100 new units a day (exposures spread over the window), and analyze."""
    population = unit_ids(300)
    for i, day in enumerate(DAYS):
        new = population[100 * i : 100 * (i + 1)]
        write(exposures(day, new), root / "exposures" / f"date={day}" / "part-0.csv")
        logged = edit_events(events(day, population[: 100 * (i + 1)], lift=0.5), i)
        write(logged, root / "events" / f"date={day}" / "part-0.csv")
    path = write_catalog(root / "catalog", end=DAYS[-1].isoformat(), **spec)
    if catalog_metrics:
        catalog = yaml.safe_load((root / "catalog" / "metrics.yaml").read_text())
        catalog["metrics"].update(catalog_metrics)
        (root / "catalog" / "metrics.yaml").write_text(yaml.safe_dump(catalog))
    code = main(
        [
            *("analyze", "--experiment", str(path)),
            *("--exposures", str(root / "exposures"), "--events", str(root / "events")),
            *("--json", str(root / "out.json"), "--home", str(root / "home")),
        ]
    )
    document = json.loads((root / "out.json").read_text()) if code == 0 else {}
    return code, document


def _rows(home: Path) -> list[tuple[dt.date, str, str | None]]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT as_of_date, metric, not_estimable FROM results WHERE segment = 'all' "
            "ORDER BY ALL"
        ).fetchall()


def test_no_purchase_on_launch_day_and_a_misspelt_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Revenue is primary under group_sequential and nobody buys on day 1 (the run stopped with
    `std_errors must be positive`); a secondary counts 'purchse', which no log has."""
    no_purchase_on_day_1 = lambda frame, i: frame[(frame.event != "purchase") | (i > 0)]  # noqa: E731
    code, document = _analyze(
        tmp_path,
        edit_events=no_purchase_on_day_1,
        catalog_metrics={
            "buys": {
                "description": "Purchases per user.",
                "type": "mean",
                "event": "purchse",
                "aggregate": "count",
                "direction": "increase",
            }
        },
        metrics={"primary": "revenue", "secondary": ["conversion", "buys"]},
        analysis={"sequential": "group_sequential"},
    )
    assert code == 0, capsys.readouterr().err
    output = capsys.readouterr().out
    typo = "not estimable: no events named 'purchse' in the logs — did you mean 'purchase'?"
    assert f"buys (treatment): {typo}" in output
    rows = _rows(tmp_path / "home")
    assert len(rows) == 3 * len(DAYS)
    # On day 1 no log has a purchase yet, so nothing is near 'purchse' either.
    nothing_yet = "not estimable: no '{}' events in the logs yet (logged: click, impression, "
    nothing_yet += "latency_ms, watch_seconds)"
    assert {(d, m): r for d, m, r in rows if r} == {
        (DAYS[0], "revenue"): nothing_yet.format("purchase"),
        (DAYS[0], "conversion"): nothing_yet.format("purchase"),
        (DAYS[0], "buys"): nothing_yet.format("purchse"),
        **{(day, "buys"): typo for day in DAYS[1:]},
    }
    (revenue,) = [r for r in document["results"] if r["metric"] == "revenue"]
    assert revenue["sequential_look"] == 2  # day 1 was no look
    assert document["decision"] in ("SHIP", "INCONCLUSIVE")


def test_header_only_event_files_are_no_traffic_on_every_metric_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Header-only event files (exposures fine) with a quantile primary: the run stopped with
    `executemany requires a non-empty list`; now every metric's row says there is no traffic."""
    code, document = _analyze(
        tmp_path,
        edit_events=lambda frame, _: frame.iloc[0:0],
        metrics={
            "primary": "latency_p95",
            "secondary": ["watch_time", "conversion", "ctr"],
        },
    )
    assert code == 0, capsys.readouterr().err
    no_traffic = "not estimable: no event rows in the logs yet (no traffic)"
    rows = _rows(tmp_path / "home")
    assert len(rows) == 4 * len(DAYS) and {r for _, _, r in rows} == {no_traffic}
    assert document["decision"] == "INCONCLUSIVE"
    assert f"Primary metric latency_p95 for treatment: {no_traffic}." in document["reasons"]
