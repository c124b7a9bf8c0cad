"""The ingest tables, bit for bit: what exposures, event_facts and pre_period_covariates write on
small, messy inputs is pinned in ``snapshots/ingest_tables.json``.

The snapshot was written by the release before the ingest steps were made faster, so a faster
statement that changes one value, one row or one quarantine reason fails here. A deliberate
change of a table regenerates it with ``UPDATE_SNAPSHOTS=1`` and says why in its commit.

Each table is digested over its rows in sorted order, every float by its exact bits
(``float.hex``) and every path under the test's folder written relative to it. The inputs:

* ``simulated``: a messy simulated experiment (repeated exposure rows, never-exposed units, a
  late day) whose exposures are moved later in the session, so that some events come before
  their unit's exposure (``pre_exposure_facts``); read from ``date=`` folders, then again after
  a day's events file arrives a second time (in its own folder and in another day's), and after
  an exposure file arrives late;
* ``single_file``: the same logs as one CSV file each (rows belong to the day of their
  timestamp), with rows dated where no run reads;
* every fault of the bad-input corpus that is not rejected (``tests/faults/corpus.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb

from exp_dagster.simulate import SimulationConfig, simulate
from exp_dagster.spec import ResolvedExperiment, load_experiment, load_metric_catalog
from exp_dagster.warehouse.landing import LogSource
from exp_dagster.warehouse.queries import (
    build_event_facts,
    build_exposures,
    build_pre_period_covariates,
    ensure_schema,
)
from tests.conftest import write_spec
from tests.faults.corpus import EVENT_FAULTS, EXPOSURE_FAULTS, Fault, experiment

SNAPSHOT = Path(__file__).parent / "snapshots" / "ingest_tables.json"
TABLES = (
    "exposures",
    "exposure_quarantine",
    "event_facts",
    "quantile_facts",
    "event_times",
    "event_quarantine",
    "pre_period_covariates",
    "pre_exposure_facts",
    "pre_exposure_quantile_facts",
)
CONFIG = SimulationConfig(n_units=1500, days=3, pre_days=3, seed=5, messy=True)
# The days any run may read, fixed (the pipeline's run through tomorrow): a single file's rows
# dated outside them belong to its first day, where they are quarantined.
ANALYSABLE = (dt.date(2026, 9, 1), dt.date(2026, 11, 30))


def _exact(value: Any, root: str) -> Any:
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, str):
        return value.replace(root, "<root>")
    if isinstance(value, dict):
        return {_exact(k, root): _exact(v, root) for k, v in value.items()}
    return value


def digests(conn: duckdb.DuckDBPyConnection, root: Path) -> dict[str, dict[str, Any]]:
    """Per table, its row count and the SHA-256 of its rows in sorted order."""
    found: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        digest = hashlib.sha256()
        for row in rows:
            digest.update(repr(tuple(_exact(v, str(root)) for v in row)).encode())
            digest.update(b"\n")
        found[table] = {"rows": len(rows), "sha256": digest.hexdigest()}
    return found


def _later_exposures(folder: Path) -> None:
    """Move every exposure 0 to 3 hours later (by unit), so that events of the session come
    before it; a few move past midnight, out of their date folder (quarantined)."""
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for path in sorted(folder.rglob("*.parquet")):
            moved = path.with_name(f"{path.stem}.moving")
            conn.execute(
                "COPY (SELECT * REPLACE (exposed_at + to_minutes("
                "('0x' || substr(md5(unit_id), 1, 4))::INTEGER % 180) AS exposed_at) "
                f"FROM read_parquet(?)) TO '{moved}' (FORMAT parquet)",
                [str(path)],
            )
            os.replace(moved, path)


def _build(
    conn: duckdb.DuckDBPyConnection,
    resolved: ResolvedExperiment,
    exposures: LogSource,
    events: LogSource,
    event_days: list[dt.date],
) -> None:
    metrics = resolved.metrics.values()
    quantile_events = sorted({str(m.event) for m in metrics if m.type == "quantile"})
    timed_events = sorted({e for m in metrics for e in m.events})
    for day in event_days:
        build_event_facts(conn, events, day, quantile_events, timed_events, ANALYSABLE)
    for day in resolved.spec.days():
        build_exposures(conn, resolved, exposures, day)
        build_pre_period_covariates(conn, resolved, day)


def simulated_scenarios(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The simulated scenarios' digests, in the order they are built."""
    landing = root / "landing"
    simulate(landing, CONFIG)
    _later_exposures(landing / "exposures")
    spec_path = write_spec(root / "catalog", CONFIG)
    catalog = load_metric_catalog(root / "catalog" / "metrics.yaml")
    resolved = load_experiment(spec_path, catalog)
    exposures = LogSource("exposures", landing / "exposures")
    events = LogSource("events", landing / "events")
    event_days = events.dates()
    found: dict[str, dict[str, dict[str, Any]]] = {}

    with duckdb.connect(str(root / "hive.duckdb")) as conn:
        ensure_schema(conn)
        _build(conn, resolved, exposures, events, event_days)
        found["simulated"] = digests(conn, root)
        # Late and repeated deliveries: the second day's events again in its own folder and in
        # the third day's, and a late exposure file for the first day (another copy of its
        # units' rows, an hour later); then every partition is materialised again.
        first, second, third = resolved.spec.days()
        day_file = next((landing / "events" / f"date={second}").glob("*.parquet"))
        shutil.copy(day_file, day_file.with_name("part-again.parquet"))
        shutil.copy(day_file, landing / "events" / f"date={third}" / "part-misfiled.parquet")
        exposure_file = next((landing / "exposures" / f"date={first}").glob("*.parquet"))
        conn.execute(
            "COPY (SELECT * REPLACE (exposed_at + INTERVAL 1 HOUR AS exposed_at) "
            f"FROM read_parquet(?)) TO '{exposure_file.with_name('part-late.parquet')}' "
            "(FORMAT parquet)",
            [str(exposure_file)],
        )
        _build(conn, resolved, exposures, events, event_days)
        found["redelivered"] = digests(conn, root)

    single = root / "single"
    single.mkdir()
    with duckdb.connect(str(root / "single.duckdb")) as conn:
        ensure_schema(conn)
        for kind in ("exposures", "events"):
            column = "exposed_at" if kind == "exposures" else "event_time"
            conn.execute(
                f"COPY (SELECT * EXCLUDE (date) FROM read_parquet(?) UNION ALL "
                f"SELECT * EXCLUDE (date) REPLACE (TIMESTAMPTZ '1999-12-31 10:00:00+00' "
                f"AS {column}) FROM read_parquet(?) WHERE hash(unit_id) % 97 = 0 "
                f"ORDER BY ALL) TO '{single / kind}.csv' (HEADER)",
                [
                    [str(p) for p in sorted((landing / kind).rglob("*.parquet"))],
                    [str(p) for p in sorted((landing / kind).rglob("*.parquet"))],
                ],
            )
        _build(
            conn,
            resolved,
            LogSource("exposures", single / "exposures.csv"),
            LogSource("events", single / "events.csv"),
            event_days,
        )
        found["single_file"] = digests(conn, root)
    return found


def fault_scenario(fault: Fault, root: Path) -> dict[str, dict[str, Any]]:
    """The digests after reading one fault of the corpus (as tests/faults reads it)."""
    source = fault.make(root)
    with duckdb.connect() as conn:
        ensure_schema(conn)
        if fault.kind == "exposures":
            build_exposures(conn, experiment(**fault.spec), source, fault.day)
        else:
            build_event_facts(conn, source, fault.day, ["latency_ms"])
        return digests(conn, root)


ACCEPTED_FAULTS = [f for f in [*EXPOSURE_FAULTS, *EVENT_FAULTS] if not f.error]


def _snapshot() -> dict[str, Any]:
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}; create it with UPDATE_SNAPSHOTS=1"
    return json.loads(SNAPSHOT.read_text())


def test_ingest_tables_match_the_snapshot(tmp_path: Path) -> None:
    found: dict[str, Any] = dict(simulated_scenarios(tmp_path / "simulated"))
    for fault in ACCEPTED_FAULTS:
        found[f"{fault.kind}:{fault.name}"] = fault_scenario(fault, tmp_path / fault.name)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    expected = _snapshot()
    assert sorted(found) == sorted(expected)
    # The scenarios test what they claim: events before exposure, quarantined rows, a fan of
    # faults (so a silently empty table cannot pass).
    assert found["simulated"]["pre_exposure_facts"]["rows"] > 0
    assert found["redelivered"]["event_quarantine"]["rows"] > 0
    assert found["single_file"]["event_quarantine"]["rows"] > 0
    mismatched = {
        (scenario, table): (found[scenario][table], expected[scenario][table])
        for scenario in expected
        for table in TABLES
        if found[scenario][table] != expected[scenario][table]
    }
    assert not mismatched, mismatched


def test_digest_sees_the_last_bit_of_a_float(tmp_path: Path) -> None:
    """One float one ulp away, or a path outside the test's folder, changes a digest."""
    with duckdb.connect() as conn:
        ensure_schema(conn)
        conn.execute(
            "INSERT INTO event_facts VALUES (DATE '2026-10-01', 'u1', 'click', 1, 0.1, 0.01)"
        )
        before = digests(conn, tmp_path)["event_facts"]
        conn.execute("UPDATE event_facts SET total = nextafter(total, 1.0)")
        after = digests(conn, tmp_path)["event_facts"]
    assert before["rows"] == after["rows"] == 1
    assert before["sha256"] != after["sha256"]
    assert _exact(f"{tmp_path}/events/x.csv", str(tmp_path)) == "<root>/events/x.csv"


def test_utc_timestamp_is_the_cast_in_utc() -> None:
    """utc_timestamp (schema.sql) gives CAST(t AS TIMESTAMP)'s value in the UTC session, at the
    edges too: infinities, NULL, before the epoch and before year 1, to the microsecond."""
    texts = [
        "2026-10-05 12:34:56.789012+02",
        "1969-12-31 23:59:59.999999+00",
        "1900-01-01 00:00:00.000001+00",
        "0001-01-01 00:00:00+00",
        "0044-03-15 12:00:00 BC+00",
        "9999-12-31 23:59:59.999999+00",
        "infinity",
        "-infinity",
        "not a timestamp",
    ]
    with duckdb.connect() as conn:
        ensure_schema(conn)
        rows = conn.execute(
            "SELECT text, utc_timestamp(t) IS NOT DISTINCT FROM CAST(t AS TIMESTAMP), "
            "CAST(utc_timestamp(t) AS VARCHAR) FROM (SELECT text, TRY_CAST(text AS TIMESTAMPTZ) "
            "AS t FROM unnest(?) AS u(text))",
            [texts],
        ).fetchall()
    assert [text for text, same, _ in rows if not same] == []
    shown = {text: value for text, _, value in rows}
    assert shown["2026-10-05 12:34:56.789012+02"] == "2026-10-05 10:34:56.789012"
    assert shown["infinity"] == "infinity" and shown["not a timestamp"] is None
