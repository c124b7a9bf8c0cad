"""The DuckDB settings a run gets: DuckDB's defaults unless the environment says otherwise, a
spill folder beside the warehouse, and a clear error when memory runs out."""

from __future__ import annotations

from pathlib import Path

import pytest

from exp_dagster import home
from exp_dagster.resources import Warehouse, WarehouseMemoryError


def _setting(warehouse: Warehouse, name: str) -> str:
    with warehouse.connect() as conn:
        row = conn.execute("SELECT current_setting(?)", [name]).fetchone()
    assert row is not None
    return str(row[0])


def test_default_settings_are_duckdbs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("THREADS", "MEMORY_LIMIT", "TEMP_DIR"):
        monkeypatch.delenv(f"EXP_DAGSTER_DUCKDB_{name}", raising=False)
    assert home.duckdb_settings() == {
        "threads": None,
        "memory_limit": None,
        "temp_directory": None,
    }


def test_environment_overrides_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXP_DAGSTER_DUCKDB_THREADS", "1")
    monkeypatch.setenv("EXP_DAGSTER_DUCKDB_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("EXP_DAGSTER_DUCKDB_TEMP_DIR", "/tmp/spill")
    assert home.duckdb_settings() == {
        "threads": 1,
        "memory_limit": "512MB",
        "temp_directory": "/tmp/spill",
    }
    monkeypatch.setenv("EXP_DAGSTER_DUCKDB_THREADS", "two")
    with pytest.raises(ValueError, match="EXP_DAGSTER_DUCKDB_THREADS='two'"):
        home.duckdb_settings()


def test_a_connection_applies_the_limit_and_the_spill_folder(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    assert _setting(Warehouse(database=str(database)), "temp_directory") == f"{database}.tmp"
    # DuckDB reports sizes in binary units: 1GB is 953.6 MiB
    assert _setting(Warehouse(database=str(database), memory_limit="1GB"), "memory_limit") == (
        "953.6 MiB"
    )
    limited = Warehouse(database=str(database), memory_limit="512MB", threads=1)
    assert _setting(limited, "memory_limit") == "488.2 MiB"
    assert _setting(limited, "threads") == "1"


def test_running_out_of_memory_says_which_setting_to_change(tmp_path: Path) -> None:
    """An aggregate that cannot spill (a list of 20M strings) under a 64 MB limit: the error
    names the limit, the setting that raises it and the spill folder, not a bare traceback."""
    database = tmp_path / "warehouse.duckdb"
    small = Warehouse(database=str(database), memory_limit="64MB", threads=1)
    with (
        pytest.raises(WarehouseMemoryError, match="EXP_DAGSTER_DUCKDB_MEMORY_LIMIT") as caught,
        small.connect() as conn,
    ):
        conn.execute(
            "SELECT list(range::VARCHAR || 'xxxxxxxxxxxxxxxxxxxx') FROM range(20000000)"
        ).fetchall()
    assert "61.0 MiB" in str(caught.value) and f"{database}.tmp" in str(caught.value)
