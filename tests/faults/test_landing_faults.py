"""How files reach the readers: deliveries repeated, Spark output folders, files no reader can
read, and columns that collide with the reader's own. Every row of every file read ends up
validated or quarantined; a file that would not be read stops the read with its name."""

from __future__ import annotations

import bz2
import datetime as dt
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from exp_dagster.warehouse.landing import InputError, LogSource, duplicate_files
from exp_dagster.warehouse.queries import (
    EventCounts,
    ExposureCounts,
    build_event_facts,
    build_exposures,
    ensure_schema,
)
from tests.faults.corpus import (
    DAY,
    Format,
    day_folder,
    events,
    experiment,
    exposures,
    unit_ids,
    write,
)

NEXT = DAY + dt.timedelta(days=1)
COPY_REASON = "the file is a byte-identical copy of"


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    ensure_schema(connection)
    return connection


def _facts(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT event_date, unit_id, event, n, total FROM event_facts ORDER BY ALL"
    ).fetchall()


def _read_events(conn: duckdb.DuckDBPyConnection, source: LogSource, day: dt.date) -> EventCounts:
    counts = build_event_facts(conn, source, day, ["latency_ms"])
    assert counts.rows_in == counts.rows_validated + counts.rows_quarantined
    quarantined = conn.execute(
        "SELECT count(*) FROM event_quarantine WHERE event_date = ?", [day]
    ).fetchone()
    assert quarantined == (counts.rows_quarantined,)
    return counts


def _read_exposures(
    conn: duckdb.DuckDBPyConnection, source: LogSource, day: dt.date = DAY
) -> ExposureCounts:
    counts = build_exposures(conn, experiment(), source, day)
    assert counts.rows_in == counts.rows_validated + counts.rows_quarantined
    return counts


def _no_rows_written(conn: duckdb.DuckDBPyConnection) -> bool:
    tables = ("exposures", "exposure_quarantine", "event_facts", "event_quarantine")
    return all(conn.execute(f"SELECT count(*) FROM {t}").fetchone() == (0,) for t in tables)


# ── files delivered twice ───────────────────────────────────────────────────────────────────


def test_an_event_file_delivered_twice_in_its_day_folder_counts_once(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """An uploader retried under the next part number: part-00000.parquet and
    part-00001.parquet are the same bytes. The facts are those of one delivery; the copy's rows
    (the later name in path order) are quarantined, naming the first."""
    once = tmp_path / "once"
    write(events(), day_folder(once, "events") / "part-00000.parquet")
    _read_events(conn, LogSource("events", once / "events"), DAY)
    expected = _facts(conn)

    twice = tmp_path / "twice"
    first = write(events(), day_folder(twice, "events") / "part-00000.parquet")
    shutil.copyfile(first, first.with_name("part-00001.parquet"))
    counts = _read_events(conn, LogSource("events", twice / "events"), DAY)
    rows = len(events())
    assert (counts.rows_in, counts.rows_validated, counts.rows_quarantined) == (
        2 * rows,
        rows,
        rows,
    )
    assert counts.reasons == {
        f"{COPY_REASON} {first} (delivered twice): its rows count once, from that file": rows
    }
    assert _facts(conn) == expected
    copies = conn.execute("SELECT DISTINCT source_file FROM event_quarantine").fetchall()
    assert copies == [(str(first.with_name("part-00001.parquet")),)]


def test_event_ids_of_a_copied_file_are_not_taken_for_retries(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """With event ids, the copy's rows are quarantined as a copy, and the first delivery's rows
    all count (none is mistaken for a retry of the copy's)."""
    frame = events().assign(event_id=lambda f: [f"ev-{i}" for i in range(len(f))])
    first = write(frame, day_folder(tmp_path, "events") / "b.csv")
    shutil.copyfile(first, first.with_name("a.csv"))  # the copy sorts first
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert counts.rows_validated == len(frame)
    assert list(counts.reasons) == [
        f"{COPY_REASON} {first.with_name('a.csv')} (delivered twice): its rows count once, "
        f"from that file"
    ]


def test_exposures_delivered_twice_under_two_names_count_once(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    first = write(exposures(), day_folder(tmp_path, "exposures") / "exposures.csv")
    shutil.copyfile(first, first.with_name("exposures2.csv"))
    counts = _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert (counts.rows_in, counts.rows_validated, counts.units) == (400, 200, 200)
    assert counts.rows_quarantined == 200 and len(counts.reasons) == 1
    assert next(iter(counts.reasons)).startswith(f"{COPY_REASON} {first} (delivered twice)")
    repeated = conn.execute("SELECT max(exposure_rows) FROM exposures").fetchone()
    assert repeated == (1,)  # no unit's exposure is counted as seen twice


def test_a_flat_folder_with_a_file_delivered_twice_counts_it_once(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """A plain folder of daily exports (no date= folders), one day exported twice; the folder's
    name has a quote (paths reach the SQL as parameters, or quoted)."""
    folder = tmp_path / "o'brien's events"
    write(events(day=DAY), folder / "2026-03-03.jsonl")
    write(events(day=NEXT), folder / "2026-03-04.jsonl")
    shutil.copyfile(folder / "2026-03-03.jsonl", folder / "2026-03-03-again.jsonl")
    source = LogSource("events", folder)
    first = _read_events(conn, source, DAY)
    second = _read_events(conn, source, NEXT)
    assert first.rows_validated == len(events(day=DAY))
    assert first.reasons == {
        f"{COPY_REASON} {folder / '2026-03-03-again.jsonl'} (delivered twice): its rows count "
        "once, from that file": len(events(day=DAY))
    }
    assert (second.rows_validated, second.rows_quarantined) == (len(events(day=NEXT)), 0)


def test_a_file_copied_into_the_next_days_folder_is_counted_in_its_own_day_only(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """A copy in another day's folder holds that other day's timestamps: its rows are
    quarantined there as outside their folder, naming the file it copies, so each row counts
    once, in its own day."""
    first = write(events(day=DAY), day_folder(tmp_path, "events", DAY) / "part-0.parquet")
    write(events(day=NEXT), day_folder(tmp_path, "events", NEXT) / "part-0.parquet")
    shutil.copyfile(first, day_folder(tmp_path, "events", NEXT) / "part-0-redelivered.parquet")
    source = LogSource("events", tmp_path / "events")
    day, next_day = _read_events(conn, source, DAY), _read_events(conn, source, NEXT)
    rows_in = len(events(day=DAY)) * 2 + len(events(day=NEXT))
    assert day.rows_in + next_day.rows_in == rows_in
    assert day.rows_validated == len(events(day=DAY))
    assert next_day.rows_validated == len(events(day=NEXT))
    assert next_day.reasons == {
        f"event_time {DAY} is outside its date={NEXT} folder (the file is a byte-identical copy "
        f"of {first})": len(events(day=DAY))
    }
    assert day.reasons == {}  # the first delivery, in its own day's folder, counts in full


def test_only_files_of_equal_size_are_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicate detection reads no file whose size no other file shares."""
    from exp_dagster.warehouse import landing

    hashed: list[Path] = []
    digest = landing._digest
    monkeypatch.setattr(landing, "_digest", lambda path: hashed.append(path) or digest(path))
    files = []
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "f.csv").write_text("123456")
    for name, text in {"a": "1234", "b": "12345", "c": "1234", "d": "abcd", "e": "x"}.items():
        files.append(tmp_path / f"{name}.csv")
        files[-1].write_text(text)
    other = tmp_path / "other" / "b.csv"
    other.write_text("12345")
    copies, elsewhere = duplicate_files(files, [other, tmp_path / "other" / "f.csv"])
    assert copies == {tmp_path / "c.csv": tmp_path / "a.csv"}
    assert elsewhere == {tmp_path / "b.csv": other}
    assert sorted(p.name for p in hashed) == ["a.csv", "b.csv", "b.csv", "c.csv", "d.csv"]


# ── Spark and Hive output folders ───────────────────────────────────────────────────────────


def _spark_output(folder: Path, frame: pd.DataFrame) -> None:
    """``frame`` as a Spark job writes it: two part files and the job's bookkeeping, plus what
    a job still running (or killed) leaves: _temporary attempt files and checksums."""
    half = len(frame) // 2
    write(frame.iloc[:half], folder / "part-00000-7c1a.c000.snappy.parquet")
    write(frame.iloc[half:], folder / "part-00001-7c1a.c000.snappy.parquet")
    (folder / "_SUCCESS").write_text("")
    (folder / "_committed_7c1a").write_text('{"added": []}')
    (folder / ".part-00000-7c1a.c000.snappy.parquet.crc").write_bytes(b"crc\x00")
    attempt = folder / "_temporary" / "0" / "_temporary" / "attempt_202603030000_0001_m_000001_1"
    write(frame.iloc[half:], attempt / "part-00001-7c1a.c000.snappy.parquet")
    write(frame.iloc[:5], folder / ".spark-staging-7c1a" / "part-00002.parquet")


def test_spark_output_in_date_folders_reads_only_the_committed_part_files(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    _spark_output(day_folder(tmp_path, "events"), events())
    _spark_output(day_folder(tmp_path, "exposures"), exposures())
    (tmp_path / "events" / "_SUCCESS").write_text("")
    (tmp_path / "events" / ".DS_Store").write_bytes(b"\x00\x01")
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert (counts.rows_in, counts.rows_quarantined) == (len(events()), 0)
    exposed = _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert (exposed.rows_in, exposed.units, exposed.rows_quarantined) == (200, 200, 0)


def test_a_flat_spark_output_folder_reads_only_the_committed_part_files(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    _spark_output(tmp_path / "events", events())
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert (counts.rows_in, counts.rows_quarantined) == (len(events()), 0)


def test_empty_part_files_hold_no_rows(tmp_path: Path, conn: duckdb.DuckDBPyConnection) -> None:
    """A job whose tasks had nothing to write leaves 0-byte part files (and header-only CSVs):
    they add no rows and are not taken for files delivered twice, or missing their columns."""
    folder = day_folder(tmp_path, "events")
    write(events(), folder / "part-00000.csv")
    for name in ("part-00001.csv", "part-00002.csv", "part-00003.jsonl", "part-00004.csv.gz"):
        (folder / name).write_bytes(b"")
    for name in ("part-00005.csv", "part-00006.csv"):
        (folder / name).write_text("unit_id,event_time,event,value\n")
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert (counts.rows_in, counts.rows_quarantined) == (len(events()), 0)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert _read_events(conn, LogSource("events", empty), DAY).rows_in == 0


def test_a_landing_zone_under_a_hidden_folder_is_still_read(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """Only names inside the source count: a source kept under ~/.data or /_landing is read."""
    root = tmp_path / "_landing" / ".data"
    write(events(), day_folder(root, "events") / "part-0.parquet")
    counts = _read_events(conn, LogSource("events", root / "events"), DAY)
    assert counts.rows_in == len(events())


# ── files no day would read ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "stray",
    [
        "events-2026-03-03.parquet",  # next to the date= folders
        "backfill/part-0.parquet",  # in a folder that is not a date
        "date=2026-02-30/part-0.parquet",  # a date that does not exist
    ],
)
def test_a_file_outside_the_date_folders_stops_the_read_with_its_name(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection, stray: str
) -> None:
    write(events(), day_folder(tmp_path, "events") / "part-0.parquet")
    write(events(), tmp_path / "events" / stray)
    source = LogSource("events", tmp_path / "events")
    with pytest.raises(InputError) as error:
        build_event_facts(conn, source, DAY, [])
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'events' / stray}: a file outside the date=")
    assert "move it into the folder of its day" in message and "\n" not in message
    assert _no_rows_written(conn)
    assert source.dates() == [DAY]  # an impossible date is no day


def _bz2(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress(frame.to_csv(index=False).encode()))
    return path


def _zip(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("part-0.csv", frame.to_csv(index=False))
    return path


@pytest.mark.parametrize(
    ("name", "make", "phrase"),
    [
        ("part-1.csv.bz2", _bz2, "the file is bzip2-compressed: decompress it (bunzip2)"),
        ("part-1.zip", _zip, "the file is a zip archive: unpack its files into the folder"),
        ("part-1.xlsx", lambda p, f: write(f, p, "csv"), "unknown file type"),
    ],
)
def test_a_file_no_reader_can_read_stops_the_read_with_its_name(
    tmp_path: Path,
    conn: duckdb.DuckDBPyConnection,
    name: str,
    make: Callable[[Path, pd.DataFrame], Path],
    phrase: str,
) -> None:
    """Next to a readable part file, one the readers cannot open is never read as zero rows."""
    write(exposures(), day_folder(tmp_path, "exposures") / "part-0.csv")
    path = day_folder(tmp_path, "exposures") / name
    make(path, exposures())
    with pytest.raises(InputError) as error:
        _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert str(error.value).startswith(f"{path}: ") and phrase in str(error.value)
    assert _no_rows_written(conn)


def test_a_compressed_single_file_the_reader_cannot_open_names_it(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    path = _bz2(tmp_path / "events.csv.bz2", events())
    with pytest.raises(InputError, match=r"events\.csv\.bz2: the file is bzip2-compressed"):
        build_event_facts(conn, LogSource("events", path), DAY, [])


def test_gzip_and_zstd_files_are_read(tmp_path: Path, conn: duckdb.DuckDBPyConnection) -> None:
    folder = day_folder(tmp_path, "events")
    folder.mkdir(parents=True)
    frame = events()
    frame.iloc[:300].to_csv(folder / "part-0.csv.gz", index=False, compression="gzip")
    conn.register("rest", frame.iloc[300:])
    conn.execute(f"COPY rest TO '{folder / 'part-1.csv.zst'}' (HEADER, COMPRESSION zstd)")
    conn.unregister("rest")
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert (counts.rows_in, counts.rows_quarantined) == (len(frame), 0)


# ── types sniffed from the first rows ───────────────────────────────────────────────────────


def test_json_rows_unlike_the_first_ones_are_quarantined_not_the_file(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """JSON readers sniff types from the first rows (here 25,000 rows with timestamps and
    integer values): a later row with a text timestamp or value is quarantined with its reason,
    and every other row counts. Values keep JSON's meaning: true is 1, "12,5" is not a number."""
    good = {"unit_id": "u1", "event_time": f"{DAY}T01:00:00Z", "event": "click", "value": 1}
    rows = [dict(good, unit_id=f"u{i}") for i in range(25_000)]
    rows += [
        dict(good, event_time="yesterday"),
        dict(good, value="12,5"),
        dict(good, unit_id=17, value=2.5),  # an integer id, a float value
        dict(good, event_time=f"{DAY} 23:59:59", value={"amount": 3}),
        dict(good, unit_id="flag", value=True),  # a JSON true counts 1, as in a typed column
    ]
    path = day_folder(tmp_path, "events") / "part-0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert (counts.rows_in, counts.rows_validated) == (25_005, 25_002)
    assert counts.reasons == {
        "event_time is missing or not a timestamp": 1,
        "value is missing, not a number, NaN or infinite": 2,
    }
    where = conn.execute(
        "SELECT source_row, event_time, value FROM event_quarantine ORDER BY source_row"
    ).fetchall()
    assert where == [
        (25_000, "yesterday", "1"),
        (25_001, f"{DAY}T01:00:00Z", '"12,5"'),  # a value as written: a JSON string
        (25_003, f"{DAY} 23:59:59", '{"amount":3}'),
    ]
    totals = conn.execute(
        "SELECT unit_id, total FROM event_facts WHERE unit_id IN ('17', 'flag') ORDER BY 1"
    ).fetchall()
    assert totals == [("17", 2.5), ("flag", 1.0)]


def test_a_first_row_with_an_absurd_date_does_not_mistype_the_rest(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """A first exposure dated 0001-01-01 (an unset date), as JSON and CSV: it is quarantined,
    and the rest of the file is validated."""
    frame = exposures()
    frame.loc[0, "exposed_at"] = "0001-01-01T00:00:00Z"
    write(frame.iloc[:100], day_folder(tmp_path, "exposures") / "part-0.jsonl")
    write(frame.iloc[100:], day_folder(tmp_path, "exposures") / "part-1.csv")
    counts = _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert (counts.rows_in, counts.rows_validated) == (200, 199)
    assert counts.reasons == {f"exposed_at 0001-01-01 is outside its date={DAY} folder": 1}


# ── the user's own filename and file_row_number columns ─────────────────────────────────────


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_columns_named_filename_and_file_row_number_are_the_users(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection, fmt: Format
) -> None:
    """An export that keeps its own file name and row number as columns is read; the
    quarantine still names the file read and the record's index in it."""
    frame = exposures().assign(
        filename="export-17.csv", file_row_number=lambda f: range(1000, 1000 + len(f))
    )
    frame.loc[7, "variant"] = "variant_c"
    path = write(frame, day_folder(tmp_path, "exposures") / f"part-0.{fmt}", fmt)
    counts = _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert (counts.rows_in, counts.units, counts.rows_quarantined) == (200, 199, 1)
    where = conn.execute("SELECT source_file, source_row FROM exposure_quarantine").fetchall()
    assert where == [(str(path), 7)]


def test_a_missing_column_lists_only_the_files_columns(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """The "Found:" list names the file's columns, none of the reader's own."""
    write(
        exposures().drop(columns=["variant"]),
        day_folder(tmp_path, "exposures") / "part-0.jsonl",
    )
    with pytest.raises(InputError) as error:
        _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert (
        str(error.value)
        .split("Found: ")[1]
        .startswith("experiment_id, unit_id, exposed_at, platform. ")
    )


def test_every_unit_of_a_large_day_is_read(tmp_path: Path, conn: duckdb.DuckDBPyConnection) -> None:
    """A sanity check of the accounting above on a day split over many part files."""
    ids = unit_ids(2000)
    folder = day_folder(tmp_path, "exposures")
    for part in range(8):
        write(exposures(units=ids[part::8]), folder / f"part-{part:05d}.parquet")
    counts = _read_exposures(conn, LogSource("exposures", tmp_path / "exposures"))
    assert (counts.rows_in, counts.units, counts.rows_quarantined) == (2000, 2000, 0)


def test_a_single_event_file_starting_with_an_absurd_date_loses_no_row(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """One file for the whole test (no date= folders), whose first row is dated 1900-01-01 (an
    unset clock) and which has a row from 2100 and one without a timestamp. Those three rows
    belong to the file's first day that a run can read, where they are quarantined; before,
    they went to 1900 or 2100, days no run reads, and were never seen."""
    frame = events()
    frame.loc[0, "event_time"] = "1900-01-01T00:00:00Z"
    frame.loc[1, "event_time"] = "2100-01-01T00:00:00Z"
    frame.loc[2, "event_time"] = None
    later = events(day=NEXT)
    path = write(pd.concat([frame, later], ignore_index=True), tmp_path / "events.csv")
    source = LogSource("events", path)
    days = (dt.date(2025, 1, 1), dt.date(2026, 12, 31))
    first = build_event_facts(conn, source, DAY, [], analysable_days=days)
    second = build_event_facts(conn, source, NEXT, [], analysable_days=days)
    assert first.rows_in + second.rows_in == len(frame) + len(later)
    assert (first.rows_validated, second.rows_validated) == (len(frame) - 3, len(later))
    outside = "is outside the days that can be analysed, 2025-01-01 .. 2026-12-31"
    assert first.reasons == {
        f"event_time 1900-01-01 {outside} (EXP_DAGSTER_FIRST_DATE through tomorrow)": 1,
        f"event_time 2100-01-01 {outside} (EXP_DAGSTER_FIRST_DATE through tomorrow)": 1,
        "event_time is missing or not a timestamp": 1,
    }


def test_a_json_array_file_is_read_and_lines_that_are_not_objects_name_the_file(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    """A ``.json`` export holding one array of records is read like JSON Lines; JSON Lines with
    lines that are not objects (a bare number) stop the read, naming the file and the fix,
    instead of failing on a made-up column ``json``."""
    records = events().to_dict(orient="records")
    array = day_folder(tmp_path, "events") / "part-0.json"
    array.parent.mkdir(parents=True)
    array.write_text(json.dumps(records, indent=2))
    counts = _read_events(conn, LogSource("events", tmp_path / "events"), DAY)
    assert (counts.rows_in, counts.rows_validated) == (len(records), len(records))

    lines = tmp_path / "events.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records) + "42\n")
    with pytest.raises(InputError) as error:
        build_event_facts(conn, LogSource("events", lines), DAY, [])
    assert str(error.value).startswith(f"{lines}: cannot be read as json")
    assert "each line must be one JSON object" in str(error.value)
