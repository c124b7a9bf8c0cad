"""The home's run lock and the waiting read-only connection, across real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from exp_dagster.locks import LOCK_FILE, HomeBusyError, exclusive_home, read_only_connection

HOLD_THE_HOME = """
import sys, time
from pathlib import Path
from exp_dagster.locks import exclusive_home
with exclusive_home(Path(sys.argv[1]), "exp-dagster analyze holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""
HOLD_THE_WAREHOUSE = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS x")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


@contextmanager
def holder(script: str, target: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``target`` for ``seconds`` (killed at the end if still alive)."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_second_run_waits_then_gives_up_naming_the_holder(tmp_path: Path) -> None:
    said: list[str] = []
    with holder(HOLD_THE_HOME, tmp_path, 30) as process:
        started = time.monotonic()
        with (
            pytest.raises(HomeBusyError) as error,
            exclusive_home(tmp_path, "second", wait_seconds=0.6, say=said.append),
        ):
            pytest.fail("the lock was taken while another process held it")
        assert 0.6 <= time.monotonic() - started < 5
        pid = process.pid
    assert said == [
        f"waiting for another exp-dagster run on {tmp_path} (pid {pid}, exp-dagster analyze "
        f"holder since {said[0].split(' since ')[1].split(')')[0]}) to finish (up to 0.6 s) …"
    ]
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"another exp-dagster run (pid {pid}, exp-dagster analyze holder")
    assert message.endswith(
        f"still holds {tmp_path} after 0.6 s; let it finish (or stop it) and "
        "run this again, or give this run a home of its own (--home; EXP_DAGSTER_HOME for demo)."
    )


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    said: list[str] = []
    with holder(HOLD_THE_HOME, tmp_path, 60) as process:
        process.kill()  # SIGKILL: no finally block of the holder runs
        process.wait()
        started = time.monotonic()
        with exclusive_home(tmp_path, "next", wait_seconds=5, say=said.append):
            assert (tmp_path / LOCK_FILE).read_text().startswith("pid ")
        assert time.monotonic() - started < 1 and said == []


def test_a_waiting_run_goes_on_when_the_holder_finishes(tmp_path: Path) -> None:
    said: list[str] = []
    with (
        holder(HOLD_THE_HOME, tmp_path, 1.0),
        exclusive_home(tmp_path, "second", wait_seconds=30, say=said.append),
    ):
        pass
    assert len(said) == 2 and said[0].startswith("waiting for another exp-dagster run on")
    assert said[1] == f"the other run on {tmp_path} has finished; this one goes on."


def test_the_final_read_waits_for_a_writer_of_the_warehouse(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    said: list[str] = []
    with (
        holder(HOLD_THE_WAREHOUSE, database, 1.0),
        read_only_connection(database, wait_seconds=30, say=said.append) as conn,
    ):
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert said == [f"waiting for another process writing {database} (up to 30 s) …"]
    with (
        holder(HOLD_THE_WAREHOUSE, database, 30),
        pytest.raises(HomeBusyError, match=r"stayed locked by another process for 0\.3 s"),
        read_only_connection(database, wait_seconds=0.3, say=said.append),
    ):
        pass
    with duckdb.connect(str(database), read_only=True) as conn:  # released by the kill
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
