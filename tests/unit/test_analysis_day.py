"""The default analysis date comes from valid rows: what ``exp-dagster analyze`` is as of."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from exp_dagster.cli import analysis_day
from exp_dagster.warehouse.coverage import last_covered_day
from exp_dagster.warehouse.landing import InputError, LogSource
from tests.faults.corpus import START, events, experiment, exposures, hive, single, write

WINDOW_END = START + dt.timedelta(days=13)  # a 14-day experiment, two weeks of logs expected


def day(n: int) -> dt.date:
    """The experiment's n-th day, from 1."""
    return START + dt.timedelta(days=n - 1)


def spread(days: int) -> pd.DataFrame:
    """Exposures spread over the first ``days`` days of the window (some units each day)."""
    return pd.concat([exposures(day(n)).iloc[(n - 1) * 20 : n * 20] for n in range(1, days + 1)])


def event_days(days: int) -> pd.DataFrame:
    return pd.concat([events(day(n)) for n in range(1, days + 1)])


def test_a_quarantined_row_dated_2100_does_not_move_the_last_day(tmp_path: Path) -> None:
    spec = experiment(end=WINDOW_END.isoformat()).spec
    rows = spread(4)
    stray = rows.iloc[[0]].assign(unit_id="user-late", exposed_at="2100-01-01T00:00:00Z")
    # Rows that are not valid for this experiment, dated after the real data: none may count.
    other = rows.iloc[[1]].assign(experiment_id="another_test", exposed_at=f"{day(9)}T01:00:00Z")
    unknown = rows.iloc[[2]].assign(variant="treatment_b", exposed_at=f"{day(8)}T01:00:00Z")
    garbled = rows.iloc[[3]].assign(exposed_at="not a time")
    source = single(tmp_path, "exposures", pd.concat([stray, rows, other, unknown, garbled]))
    no_events = single(tmp_path, "events", events(day(1)).iloc[:0])
    assert last_covered_day(spec, source, no_events) == day(4)


def test_events_after_the_last_exposure_extend_the_covered_days(tmp_path: Path) -> None:
    """Units exposed early keep generating events: those days are data, not missing days."""
    spec = experiment(end=WINDOW_END.isoformat()).spec
    exposed = single(tmp_path, "exposures", spread(2))
    frame = event_days(6)
    bad = frame.iloc[[0]].assign(event_time=f"{day(10)}T01:00:00Z", value="n/a")
    blank = frame.iloc[[1]].assign(event_time=f"{day(11)}T01:00:00Z", unit_id=" ")
    after = frame.iloc[[2]].assign(event_time=f"{WINDOW_END + dt.timedelta(days=1)}T01:00:00Z")
    logged = single(tmp_path, "events", pd.concat([frame, bad, blank, after]), fmt="jsonl")
    assert last_covered_day(spec, exposed, logged) == day(6)


def test_hive_folders_count_only_with_a_valid_row_of_their_own_day(tmp_path: Path) -> None:
    spec = experiment(end=WINDOW_END.isoformat()).spec
    for n in (1, 2, 3):
        hive(tmp_path, "exposures", exposures(day(n)).iloc[:30], day=day(n))
    # day 5's folder holds only a row dated another day (quarantined as outside its folder),
    # and a folder far in the future is outside the window.
    hive(tmp_path, "exposures", exposures(day(2)).iloc[:1], day=day(5))
    hive(tmp_path, "exposures", exposures(day(3)).iloc[:1], day=dt.date(2100, 1, 1))
    source = LogSource("exposures", tmp_path / "exposures")
    no_events = single(tmp_path, "events", events(day(1)).iloc[:0])
    assert last_covered_day(spec, source, no_events) == day(3)


def test_a_hive_log_covers_no_day_after_its_last_folder(tmp_path: Path) -> None:
    """Event folders through day 4, exposures through day 6: days 5 and 6 lack their event
    folders, so they are missing (not analysed as days without events), and the other way round."""
    spec = experiment(end=WINDOW_END.isoformat()).spec
    exposed = single(tmp_path, "exposures", spread(6))
    for n in range(1, 5):
        hive(tmp_path, "events", events(day(n)), day=day(n))
    in_folders = LogSource("events", tmp_path / "events")
    assert last_covered_day(spec, exposed, in_folders) == day(4)
    for n in (1, 2):
        hive(tmp_path / "b", "exposures", exposures(day(n)).iloc[:30], day=day(n))
    folders = LogSource("exposures", tmp_path / "b" / "exposures")
    logged = single(tmp_path, "events", event_days(6), fmt="jsonl")
    assert last_covered_day(spec, folders, logged) == day(2)


def test_logs_without_a_valid_row_cover_nothing(tmp_path: Path) -> None:
    spec = experiment().spec
    empty = single(tmp_path, "exposures", exposures().iloc[:0])
    assert last_covered_day(spec, empty, single(tmp_path, "events", events().iloc[:0])) is None


def test_a_file_without_a_contract_column_is_named(tmp_path: Path) -> None:
    spec = experiment().spec
    broken = single(tmp_path, "exposures", exposures().drop(columns="variant"))
    no_events = LogSource("events", write(events().iloc[:0], tmp_path / "events.csv"))
    with pytest.raises(InputError, match=r"exposures\.csv: missing column\(s\) variant"):
        last_covered_day(spec, broken, no_events)


@pytest.mark.parametrize(
    ("requested", "covered", "as_of", "missing", "basis"),
    [
        (None, day(14), day(14), 0, "the experiment's end date"),
        (None, day(4), day(4), 10, "the last day with valid exposure or event rows"),
        (day(9), day(4), day(4), 10, "--as-of 2026-03-10 is after it"),
        (day(3), day(4), day(3), 10, "as requested with --as-of"),
        (dt.date(2027, 1, 1), day(14), day(14), 0, "--as-of 2027-01-01 is after it"),
        (None, None, day(1), 13, "no valid exposure or event row in the window"),
    ],
)
def test_the_analysis_date_is_capped_by_the_data_and_says_why(
    requested: dt.date | None, covered: dt.date | None, as_of: dt.date, missing: int, basis: str
) -> None:
    chosen = analysis_day(START, WINDOW_END, requested, covered)
    assert chosen.as_of == as_of
    assert basis in chosen.basis
    assert len(chosen.missing) == missing
    if missing:
        assert chosen.missing[-1] == WINDOW_END
        assert chosen.missing[0] == (covered or START) + dt.timedelta(days=1)
        assert f"({missing} day(s) of the window)" in chosen.notes()[-1]
    else:
        assert chosen.notes() == [chosen.basis]
