"""Bad rows are quarantined with a reason and every input row is accounted for."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from exp_dagster.assignment import assign_variant, ramp_variants
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_experiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.warehouse.landing import InputError, LogSource
from exp_dagster.warehouse.queries import (
    LOG_GAMMA,
    NONPOSITIVE_BUCKET,
    build_event_facts,
    build_exposures,
    ensure_schema,
)

DAY = dt.date(2026, 10, 2)


@pytest.fixture(scope="module")
def experiment() -> ResolvedExperiment:
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return load_experiment(PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml", catalog)


def exposure(unit: str, variant: str | None, when: str = "2026-10-02T08:00:00Z") -> dict:
    return {
        "experiment_id": "ranker_v2",
        "unit_id": unit,
        "variant": variant,
        "exposed_at": when,
        "platform": "ios",
        "country": "US",
        "is_new_user": "false",
    }


def test_exposure_faults_are_quarantined_with_reasons(
    tmp_path: Path, experiment: ResolvedExperiment
) -> None:
    weights = experiment.spec.weights
    salt = str(experiment.spec.hash_salt)
    good = [f"g{i}" for i in range(20)]
    right = {u: assign_variant(salt, u, weights) for u in good}
    wrong = next(
        u for u in (f"w{i}" for i in range(100)) if assign_variant(salt, u, weights) == "control"
    )
    rows = [exposure(u, right[u]) for u in good]
    rows += [exposure(good[0], right[good[0]], "2026-10-02T09:00:00Z")]  # a repeat: collapsed
    rows += [
        exposure("", "control"),  # missing unit
        exposure("u-bad-time", "control", "yesterday-ish"),  # unparseable timestamp
        exposure("u-unknown", "variant_c"),  # unknown variant
        exposure(wrong, "treatment"),  # disagrees with the hash
        exposure("u-late", "control", "2026-10-03T01:00:00Z"),  # outside its date folder
        exposure("u-offset", "control", "2026-10-02T01:30:00+02:00"),  # 2026-10-01 23:30 UTC
    ]
    folder = tmp_path / "exposures" / f"date={DAY}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "part-0.csv", index=False)

    conn = duckdb.connect()
    ensure_schema(conn)
    counts = build_exposures(conn, experiment, LogSource("exposures", tmp_path / "exposures"), DAY)
    assert counts.rows_in == len(rows)
    assert counts.rows_in == counts.rows_validated + counts.rows_quarantined
    assert counts.units == len(good) and counts.rows_validated == len(good) + 1
    first = conn.execute("SELECT min(first_exposed_at) FROM exposures").fetchone()
    assert first is not None and str(first[0]) == "2026-10-02 08:00:00"  # UTC, naive
    reasons = conn.execute(
        "SELECT unit_id, reason FROM exposure_quarantine ORDER BY source_row"
    ).fetchall()
    text = dict((unit or "", reason) for unit, reason in reasons)
    assert text[""] == "unit_id is missing"
    assert text["u-bad-time"] == "exposed_at is missing or not a timestamp"
    assert text["u-unknown"] == "unknown variant 'variant_c' (the spec has control, treatment)"
    assert "disagrees with the deterministic hash (expected 'control')" in text[wrong]
    assert text["u-late"] == f"exposed_at 2026-10-03 is outside its date={DAY} folder"
    assert text["u-offset"] == f"exposed_at 2026-10-01 is outside its date={DAY} folder"
    sources = conn.execute("SELECT DISTINCT source_file FROM exposure_quarantine").fetchall()
    assert sources == [(str(folder / "part-0.csv"),)]


def test_segments_come_from_the_earliest_row_whole(
    tmp_path: Path, experiment: ResolvedExperiment
) -> None:
    """A unit's segments are those of its earliest exposure row of the day, NULLs included, and
    all from one row even when two rows share the earliest timestamp."""
    weights, salt = experiment.spec.weights, str(experiment.spec.hash_salt)
    units = [f"s{i}" for i in range(3)]
    right = {u: assign_variant(salt, u, weights) for u in units}

    def row(unit: str, when: str, platform: str | None, country: str, new: str) -> dict:
        return {
            **exposure(unit, right[unit], when),
            "platform": platform,
            "country": country,
            "is_new_user": new,
        }

    rows = [
        row("s0", "2026-10-02T09:00:00Z", "web", "DE", "true"),
        row("s0", "2026-10-02T08:00:00Z", None, "FR", "false"),  # earliest, platform unknown
        row("s1", "2026-10-02T07:00:00Z", "ios", "US", "false"),
        row("s1", "2026-10-02T07:00:00Z", "android", "BR", "true"),  # a tie
        row("s2", "2026-10-02T10:00:00Z", "web", "JP", "false"),
    ]
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    pd.DataFrame(rows).to_json(folder / "part-0.jsonl", orient="records", lines=True)
    conn = duckdb.connect()
    ensure_schema(conn)
    build_exposures(conn, experiment, LogSource("exposures", tmp_path), DAY)
    segments = dict(
        conn.execute("SELECT unit_id, segments FROM exposures ORDER BY unit_id").fetchall()
    )
    assert segments["s0"] == {"platform": None, "country": "FR", "is_new_user": "false"}
    assert segments["s1"] in (
        {"platform": "ios", "country": "US", "is_new_user": "false"},
        {"platform": "android", "country": "BR", "is_new_user": "true"},
    )
    assert segments["s2"] == {"platform": "web", "country": "JP", "is_new_user": "false"}


def test_same_day_crossovers_without_hash_check(
    tmp_path: Path, experiment: ResolvedExperiment
) -> None:
    external = experiment.model_copy(
        update={"spec": experiment.spec.model_copy(update={"hash_salt": None})}
    )
    rows = [exposure("x1", "control"), exposure("x1", "treatment"), exposure("ok", "treatment")]
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    pd.DataFrame(rows).to_json(folder / "part-0.jsonl", orient="records", lines=True)
    conn = duckdb.connect()
    ensure_schema(conn)
    counts = build_exposures(conn, external, LogSource("exposures", tmp_path), DAY)
    assert not counts.hash_checked
    assert counts.units == 1 and counts.rows_quarantined == 2
    assert counts.reasons == {"unit exposed to several variants on one day (control, treatment)": 2}


RAMP = [
    {"start": "2026-10-01", "weights": {"control": 0.99, "treatment": 0.01}},
    {"start": "2026-10-03", "weights": {"control": 0.95, "treatment": 0.05}},
    {"start": "2026-10-06", "weights": {"control": 0.5, "treatment": 0.5}},
]


def test_a_ramp_checks_each_day_against_its_phase_and_the_earlier_ones(
    tmp_path: Path, experiment: ResolvedExperiment
) -> None:
    """On a day of the last phase an exposure may carry its bucket's variant under that phase or
    under an earlier one (a unit first exposed then keeps it); on the first phase's day only that
    phase's variant is right. The expected variants come from exp_dagster.assignment."""
    data = experiment.spec.model_dump(mode="json")
    ramped = parse_experiment(
        {**data, "ramp": RAMP}, "ramp.yaml", MetricCatalog(metrics=experiment.metrics)
    )
    salt = str(ramped.spec.hash_salt)
    phases = [phase["weights"] for phase in RAMP]
    moved = [
        u
        for u in (f"m{i}" for i in range(200))
        if ramp_variants(salt, u, phases)[0] == "control"
        and ramp_variants(salt, u, phases)[2] == "treatment"
    ][:4]
    kept = [
        u
        for u in (f"k{i}" for i in range(200))
        if set(ramp_variants(salt, u, phases)) == {"control"}
    ][:2]
    assert len(moved) == 4 and len(kept) == 2
    last, first = dt.date(2026, 10, 6), dt.date(2026, 10, 1)
    rows = {
        last: [
            exposure(moved[0], "control", "2026-10-06T08:00:00Z"),  # sticky: phase 0's variant
            exposure(moved[1], "treatment", "2026-10-06T08:00:00Z"),  # the day's phase
            exposure(kept[0], "treatment", "2026-10-06T08:00:00Z"),  # no phase's variant
        ],
        first: [
            exposure(moved[2], "control", "2026-10-01T08:00:00Z"),
            exposure(moved[3], "treatment", "2026-10-01T08:00:00Z"),  # a later phase's variant
            exposure(kept[1], "control", "2026-10-01T08:00:00Z"),
        ],
    }
    conn = duckdb.connect()
    ensure_schema(conn)
    for day, day_rows in rows.items():
        folder = tmp_path / f"date={day}"
        folder.mkdir()
        pd.DataFrame(day_rows).to_csv(folder / "part-0.csv", index=False)
        build_exposures(conn, ramped, LogSource("exposures", tmp_path), day)
    accepted = conn.execute("SELECT unit_id, variant FROM exposures ORDER BY unit_id").fetchall()
    assert accepted == sorted(
        [
            (moved[0], "control"),
            (moved[1], "treatment"),
            (moved[2], "control"),
            (kept[1], "control"),
        ]
    )
    reasons = dict(conn.execute("SELECT unit_id, reason FROM exposure_quarantine").fetchall())
    assert reasons == {
        kept[0]: "variant 'treatment' disagrees with the deterministic hash (expected 'control' "
        "in the ramp phase from 2026-10-06, or an earlier phase's variant of its bucket)",
        moved[3]: "variant 'treatment' disagrees with the deterministic hash (expected 'control' "
        "in the ramp phase from 2026-10-01)",
    }


def test_event_faults_are_quarantined_and_facts_are_exact(tmp_path: Path) -> None:
    events = pd.DataFrame(
        {
            "unit_id": ["a", "a", "a", "b", None, "c", "d"],
            "event_time": [
                "2026-10-02T01:00:00Z",
                "2026-10-02T02:00:00Z",
                "2026-10-02T03:00:00Z",
                "2026-10-02T04:00:00Z",
                "2026-10-02T05:00:00Z",
                "not a time",
                "2026-10-02T06:00:00Z",
            ],
            "event": [
                "watch_seconds",
                "watch_seconds",
                "click",
                "latency_ms",
                "click",
                "click",
                "click",
            ],
            "value": ["1.5", "2.25", "1", "120.0", "1", "1", "NaN"],
        }
    )
    events.to_json(tmp_path / "events.jsonl", orient="records", lines=True)
    conn = duckdb.connect()
    ensure_schema(conn)
    counts = build_event_facts(
        conn, LogSource("events", tmp_path / "events.jsonl"), DAY, ["latency_ms"]
    )
    assert counts.rows_in == 7
    assert counts.rows_validated + counts.rows_quarantined == counts.rows_in
    assert counts.reasons == {
        "event_time is missing or not a timestamp": 1,
        "unit_id is missing": 1,
        "value is missing, not a number, NaN or infinite": 1,
    }
    facts = conn.execute(
        "SELECT unit_id, event, n, total, total_sq FROM event_facts ORDER BY ALL"
    ).fetchall()
    assert facts == [
        ("a", "click", 1, 1.0, 1.0),
        ("a", "watch_seconds", 2, 3.75, 1.5**2 + 2.25**2),
        ("b", "latency_ms", 1, 120.0, 14400.0),
    ]
    bucket = conn.execute("SELECT bucket, n FROM quantile_facts").fetchall()
    assert len(bucket) == 1 and abs(1.001 ** bucket[0][0] / 120.0 - 1) < 0.0005
    # every quarantined row names its file and its record (0-based, as Parquet's row numbers)
    where = conn.execute(
        "SELECT source_file, source_row, reason FROM event_quarantine ORDER BY source_row"
    ).fetchall()
    assert [(Path(f).name, r) for f, r, _ in where] == [
        ("events.jsonl", 4),
        ("events.jsonl", 5),
        ("events.jsonl", 6),
    ]


def test_blank_ids_and_events_are_missing(tmp_path: Path) -> None:
    """Blank means empty after trimming spaces, Unicode spaces included; a tab or a leading
    space before text is not blank."""
    units = ["", "   ", "\u00a0", " \u3000 ", " a", "\tb", "é", "c", "d"]
    events = ["click"] * 7 + ["  ", "\u2003"]
    frame = pd.DataFrame(
        {
            "unit_id": units,
            "event_time": ["2026-10-02T01:00:00Z"] * len(units),
            "event": events,
            "value": ["1"] * len(units),
        }
    )
    frame.to_json(tmp_path / "events.jsonl", orient="records", lines=True)
    conn = duckdb.connect()
    ensure_schema(conn)
    counts = build_event_facts(
        conn, LogSource("events", tmp_path / "events.jsonl"), DAY, ["latency_ms"]
    )
    assert counts.reasons == {"unit_id is missing": 4, "event is missing": 2}
    valid = conn.execute("SELECT unit_id FROM event_facts ORDER BY ALL").fetchall()
    assert [u for (u,) in valid] == sorted([" a", "\tb", "é"])


def test_quantile_values_at_or_below_zero_share_one_bucket(tmp_path: Path) -> None:
    """Latencies of 0 or below have no log bucket: quantile_facts counts them in
    NONPOSITIVE_BUCKET (histograms leave it out), so that every valid value is in the facts."""
    events = pd.DataFrame(
        {
            "unit_id": ["a", "a", "a", "b"],
            "event_time": ["2026-10-02T01:00:00Z"] * 4,
            "event": ["latency_ms"] * 4,
            "value": ["0", "-3.5", "120.0", "0.0"],
        }
    )
    events.to_json(tmp_path / "events.jsonl", orient="records", lines=True)
    conn = duckdb.connect()
    ensure_schema(conn)
    build_event_facts(conn, LogSource("events", tmp_path / "events.jsonl"), DAY, ["latency_ms"])
    rows = conn.execute("SELECT unit_id, bucket, n FROM quantile_facts ORDER BY ALL").fetchall()
    assert rows == [
        ("a", NONPOSITIVE_BUCKET, 2),
        ("a", round(math.log(120.0) / LOG_GAMMA), 1),
        ("b", NONPOSITIVE_BUCKET, 1),
    ]
    counts = conn.execute("SELECT unit_id, n FROM event_facts ORDER BY ALL").fetchall()
    assert counts == [("a", 3), ("b", 1)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_quarantined_rows_name_their_record_in_every_format(
    tmp_path: Path, experiment: ResolvedExperiment, fmt: str
) -> None:
    """The row number is the record's 0-based index in its file, whatever the format and
    however many files a day has (here 3,000 rows, enough for DuckDB to read in parallel)."""
    weights, salt = experiment.spec.weights, str(experiment.spec.hash_salt)
    folder = tmp_path / "exposures" / f"date={DAY}"
    folder.mkdir(parents=True)
    bad_rows = {0: [17, 1500, 2999], 1: [3, 2048]}
    for part, bad in bad_rows.items():
        units = [f"p{part}-u{i}" for i in range(3000)]
        rows = [exposure(u, assign_variant(salt, u, weights)) for u in units]
        for index in bad:
            rows[index] = exposure(units[index], "variant_c")  # unknown variant
        frame = pd.DataFrame(rows)
        path = folder / f"part-{part}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_parquet(path, index=False)
    conn = duckdb.connect()
    ensure_schema(conn)
    conn.execute("SET threads = 4")
    counts = build_exposures(conn, experiment, LogSource("exposures", tmp_path / "exposures"), DAY)
    assert counts.rows_quarantined == 5
    found = conn.execute(
        "SELECT source_file, source_row, unit_id FROM exposure_quarantine ORDER BY ALL"
    ).fetchall()
    assert [(Path(f).name, row) for f, row, _ in found] == [
        (f"part-{part}.{fmt}", index) for part, bad in bad_rows.items() for index in bad
    ]
    # the number points at the row that was quarantined
    assert [unit for _, _, unit in found] == [
        f"p{part}-u{index}" for part, bad in bad_rows.items() for index in bad
    ]


def test_missing_column_names_the_file(tmp_path: Path, experiment: ResolvedExperiment) -> None:
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    pd.DataFrame([exposure("u1", "control")]).drop(columns=["platform"]).to_parquet(
        folder / "part-0.parquet"
    )
    conn = duckdb.connect()
    ensure_schema(conn)
    with pytest.raises(InputError, match=r"part-0.parquet: missing column\(s\) platform"):
        build_exposures(conn, experiment, LogSource("exposures", tmp_path), DAY)


def test_truncated_parquet_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / f"date={DAY}"
    folder.mkdir()
    pd.DataFrame(
        {
            "unit_id": ["a"],
            "event_time": ["2026-10-02T01:00:00Z"],
            "event": ["click"],
            "value": [1.0],
        }
    ).to_parquet(folder / "part-0.parquet")
    data = (folder / "part-0.parquet").read_bytes()
    (folder / "part-0.parquet").write_bytes(data[: len(data) // 2])
    conn = duckdb.connect()
    ensure_schema(conn)
    with pytest.raises(InputError, match=r"part-0.parquet: cannot be read as parquet"):
        build_event_facts(conn, LogSource("events", tmp_path), DAY, [])


def _good_and_faulty_csv(root: Path, rows: pd.DataFrame) -> None:
    """The day's folder under ``root`` with ``rows`` as part-0.csv and as part-1.csv, the latter
    with an extra field on its line 25,002: past the rows the CSV reader sniffs."""
    folder = root / f"date={DAY}"
    folder.mkdir()
    rows.to_csv(folder / "part-0.csv", index=False)
    text = (folder / "part-0.csv").read_text().splitlines()
    text[25000] += ',"an extra field"'
    (folder / "part-1.csv").write_text("\n".join(text) + "\n")


def test_a_fault_deep_in_an_event_file_names_the_file(tmp_path: Path) -> None:
    """The day's events are read while the facts are written (not when the files are staged):
    a fault past what the reader sniffs still stops the day with the file's name, and nothing
    of the day is written."""
    good = pd.DataFrame(
        {
            "unit_id": [f"u{i}" for i in range(30000)],
            "event_time": ["2026-10-02T01:00:00Z"] * 30000,
            "event": ["click"] * 30000,
            "value": ["1"] * 30000,
        }
    )
    _good_and_faulty_csv(tmp_path, good)
    conn = duckdb.connect()
    ensure_schema(conn)
    with pytest.raises(InputError, match=r"part-1\.csv: cannot be read as csv"):
        build_event_facts(conn, LogSource("events", tmp_path), DAY, [])
    assert conn.execute("SELECT count(*) FROM event_facts").fetchone() == (0,)


def test_a_fault_deep_in_an_exposure_file_names_the_file(
    tmp_path: Path, experiment: ResolvedExperiment
) -> None:
    """Exposure files are read when the experiment's rows are typed (raw_exposures is a view):
    a fault past what the CSV reader sniffs names the file, and nothing of the day is written."""
    _good_and_faulty_csv(
        tmp_path, pd.DataFrame([exposure(f"u{i}", "control") for i in range(30000)])
    )
    conn = duckdb.connect()
    ensure_schema(conn)
    with pytest.raises(InputError, match=r"part-1\.csv: cannot be read as csv"):
        build_exposures(conn, experiment, LogSource("exposures", tmp_path), DAY)
    assert conn.execute("SELECT count(*) FROM exposures").fetchone() == (0,)
