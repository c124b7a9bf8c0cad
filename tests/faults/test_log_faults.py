"""One test per fault in the exposure and event logs: the outcome owed, and every row counted."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from assets._common import run_gate
from exp_dagster.schemas import EVENT_FACTS_SCHEMA, exposures_schema
from exp_dagster.warehouse.landing import InputError
from exp_dagster.warehouse.queries import build_event_facts, build_exposures, ensure_schema
from tests.faults.corpus import EVENT_FAULTS, EXPOSURE_FAULTS, Fault, experiment


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    ensure_schema(connection)
    return connection


def _table_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _assert_rejected(fault: Fault, error: InputError, conn: duckdb.DuckDBPyConnection) -> None:
    message = str(error)
    for phrase in fault.error:
        assert phrase in message, f"{fault.name}: {phrase!r} not in {message!r}"
    assert "Traceback" not in message and "\n" not in message.strip()
    tables = ("exposures", "exposure_quarantine", "event_facts", "event_quarantine")
    assert all(_table_count(conn, table) == 0 for table in tables), "a rejected read wrote rows"


def _assert_reasons(fault: Fault, reasons: dict[str, int], quarantined: int) -> None:
    assert quarantined == fault.quarantined, reasons
    if fault.reason is None:
        assert reasons == {}
    else:
        assert all(fault.reason in reason for reason in reasons), reasons
        assert sum(reasons.values()) == fault.quarantined


@pytest.mark.parametrize("fault", EXPOSURE_FAULTS, ids=lambda f: f"{f.outcome}:{f.name}")
def test_exposure_fault(fault: Fault, tmp_path: Path, conn: duckdb.DuckDBPyConnection) -> None:
    resolved = experiment(**fault.spec)
    source = fault.make(tmp_path)
    if fault.error:
        with pytest.raises(InputError) as error:
            build_exposures(conn, resolved, source, fault.day)
        _assert_rejected(fault, error.value, conn)
        return
    counts = build_exposures(conn, resolved, source, fault.day)
    assert counts.rows_in == fault.rows_in
    assert counts.rows_in == counts.rows_validated + counts.rows_quarantined
    _assert_reasons(fault, counts.reasons, counts.rows_quarantined)
    # The tables agree with the counts, and every quarantined row names its file.
    validated = conn.execute("SELECT coalesce(sum(exposure_rows), 0) FROM exposures").fetchone()
    assert validated is not None and validated[0] == counts.rows_validated
    assert _table_count(conn, "exposure_quarantine") == counts.rows_quarantined
    unnamed = conn.execute(
        "SELECT count(*) FROM exposure_quarantine WHERE source_file IS NULL"
    ).fetchone()
    assert unnamed == (0,)
    # What passed is what the gate accepts.
    schema = exposures_schema(list(resolved.spec.weights))
    frame = conn.execute(f"SELECT {', '.join(schema.columns)} FROM exposures").fetchdf()
    assert run_gate("check_exposures_schema", "exposures", frame, schema, len(frame)).passed


@pytest.mark.parametrize("fault", EVENT_FAULTS, ids=lambda f: f"{f.outcome}:{f.name}")
def test_event_fault(fault: Fault, tmp_path: Path, conn: duckdb.DuckDBPyConnection) -> None:
    source = fault.make(tmp_path)
    if fault.error:
        with pytest.raises(InputError) as error:
            build_event_facts(conn, source, fault.day, ["latency_ms"])
        _assert_rejected(fault, error.value, conn)
        return
    counts = build_event_facts(conn, source, fault.day, ["latency_ms"])
    assert counts.rows_in == fault.rows_in
    assert counts.rows_in == counts.rows_validated + counts.rows_quarantined
    _assert_reasons(fault, counts.reasons, counts.rows_quarantined)
    assert _table_count(conn, "event_quarantine") == counts.rows_quarantined
    frame = conn.execute(
        f"SELECT {', '.join(EVENT_FACTS_SCHEMA.columns)} FROM event_facts"
    ).fetchdf()
    assert run_gate("check_event_facts_schema", "event_facts", frame, EVENT_FACTS_SCHEMA, 0).passed
