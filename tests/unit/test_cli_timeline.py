"""The demo's "Decision by day": one line a day, also with several treatments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from exp_dagster import cli


def test_the_timeline_has_one_line_a_day_with_the_named_variant_or_the_strongest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "warehouse.duckdb"
    day1, day2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
    with duckdb.connect(str(database)) as conn:
        conn.execute(
            "CREATE TABLE decision (experiment_id VARCHAR, as_of_date DATE, decision VARCHAR, "
            "variant VARCHAR)"
        )
        conn.execute(
            "CREATE TABLE results (experiment_id VARCHAR, as_of_date DATE, role VARCHAR, "
            "segment VARCHAR, variant VARCHAR, abs_effect DOUBLE, std_error DOUBLE, "
            "sequential_boundary DOUBLE, power DOUBLE)"
        )
        conn.executemany(
            "INSERT INTO decision VALUES ('x', ?, ?, ?)",
            [(day1, "KEEP_RUNNING", None), (day2, "SHIP", "b")],
        )
        conn.executemany(
            "INSERT INTO results VALUES ('x', ?, 'primary', 'all', ?, ?, 1.0, 2.5, ?)",
            [
                (day1, "b", 1.0, 0.2),
                (day1, "c", -3.0, 0.6),  # no variant named: the largest |z| (c)
                (day2, "b", 2.0, 0.4),  # named by the decision, though c's |z| is larger
                (day2, "c", 4.0, 0.9),
            ],
        )
    cli._print_timeline(database, "x")
    lines = [line for line in capsys.readouterr().out.splitlines() if "2026-10" in line]
    assert len(lines) == 2
    assert "KEEP_RUNNING" in lines[0] and "|z|  3.00" in lines[0] and "power  60%" in lines[0]
    assert "SHIP" in lines[1] and "|z|  2.00" in lines[1] and "power  40%" in lines[1]
