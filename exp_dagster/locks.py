"""One ``exp-dagster`` run at a time per home folder, and reads that wait for DuckDB's writer.

``exp-dagster analyze --home DIR`` and ``exp-dagster demo`` materialise partitions into the
warehouse of a home folder and read their results back at the end. Two such runs on one home
would interleave: the second replaces the first's partitions (its ``event_facts`` of a day, say)
between the first's writes and its final read, and the first prints numbers computed partly from
the other's input. So each takes an exclusive advisory lock (``fcntl.flock``) on
``<home>/.exp-dagster.lock`` from its first write through its last read. A second run waits,
saying for whom, up to ``wait_seconds``, then stops with :class:`HomeBusyError`. The kernel
releases the lock when the process ends however it ends, so a crashed or killed run leaves no
stale lock; the file itself stays (deleting it would let a third run lock a new file while the
second still holds the old one).

Dagster's own runs (``make ui``, the daemon) do not take this lock: they queue on the run tag
limit and the ``duckdb_writer`` pool of dagster.yaml (one run at a time), and a run's first
warehouse step waits on DuckDB's file lock (:class:`exp_dagster.resources.Warehouse`), which the
run then holds until it ends: its steps share one connection. The CLI's final reads wait on that
file lock too (:func:`read_only_connection`), so a UI run writing the demo's warehouse delays
them, until that run ends, instead of failing them.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

LOCK_FILE = ".exp-dagster.lock"
WAIT_SECONDS = 900.0
_POLL_SECONDS = 0.2


class HomeBusyError(RuntimeError):
    """Another run held the home folder (or its warehouse) for longer than this one waits."""


def _holder(lock_path: Path) -> str:
    """Who holds the lock, as its holder wrote it (empty while it is being written)."""
    try:
        text = lock_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return text[0][:200] if text else ""


@contextmanager
def exclusive_home(
    home: Path,
    command: str,
    *,
    wait_seconds: float | None = None,
    say: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold ``home``'s run lock for the ``with`` block, waiting for another holder if need be.

    Args:
        home: the home folder (created if missing).
        command: what this run is, for the message another run shows while it waits.
        wait_seconds: how long to wait for another run before giving up (default
            :data:`WAIT_SECONDS`).
        say: where the one "waiting for …" line goes (stderr by default).

    Raises:
        HomeBusyError: another run still held the lock after ``wait_seconds``.
    """
    wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
    report = say or (lambda message: print(message, file=sys.stderr, flush=True))
    home.mkdir(parents=True, exist_ok=True)
    lock_path = home / LOCK_FILE
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        waited = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(lock_path) or "pid unknown"
                if time.monotonic() >= deadline:
                    raise HomeBusyError(
                        f"another exp-dagster run ({holder}) still holds {home} after "
                        f"{wait_seconds:g} s; let it finish (or stop it) and run this again, or "
                        f"give this run a home of its own (--home; EXP_DAGSTER_HOME for demo)."
                    ) from None
                if not waited:
                    report(
                        f"waiting for another exp-dagster run on {home} ({holder}) to finish "
                        f"(up to {wait_seconds:g} s) …"
                    )
                    waited = True
                time.sleep(_POLL_SECONDS)
        since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}, {command} since {since}\n".encode(), 0)
        if waited:
            report(f"the other run on {home} has finished; this one goes on.")
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def read_only_connection(
    database: Path,
    *,
    wait_seconds: float | None = None,
    say: Callable[[str], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only DuckDB connection, waiting while another process writes ``database``.

    Raises:
        HomeBusyError: the file stayed locked for ``wait_seconds`` (default
            :data:`WAIT_SECONDS`).
    """
    wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
    report = say or (lambda message: print(message, file=sys.stderr, flush=True))

    def busy(_: str) -> Exception:
        return HomeBusyError(
            f"{database} stayed locked by another process for {wait_seconds:g} s; let "
            f"that run finish (or stop it) and run this again."
        )

    conn = connect_when_free(
        str(database),
        read_only=True,
        wait_seconds=wait_seconds,
        on_wait=lambda: report(
            f"waiting for another process writing {database} (up to {wait_seconds:g} s) …"
        ),
        busy=busy,
    )
    try:
        yield conn
    finally:
        conn.close()


def connect_when_free(
    database: str,
    *,
    read_only: bool,
    wait_seconds: float,
    on_wait: Callable[[], None],
    busy: Callable[[str], Exception],
    config: dict[str, object] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``database``, retrying with backoff (50 ms doubling to 1 s) while
    another process holds the file's lock.

    ``on_wait`` is called once, when the first attempt finds the file locked; after
    ``wait_seconds`` the error ``busy(first line of DuckDB's message)`` is raised. Errors other
    than the lock propagate at once.
    """
    import duckdb

    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    waited = False
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise busy(str(exc).splitlines()[0]) from None
            if not waited:
                on_wait()
                waited = True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, 1.0)
