"""Resources: the DuckDB warehouse, the landing zone and the spec catalog.

Each is a ``ConfigurableResource`` with typed fields; ``default_resources()`` fills them from the
environment (see :mod:`exp_dagster.home`), so local and production differ only in configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from exp_dagster import home
from exp_dagster.locks import connect_when_free
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    SpecError,
    check_overlaps,
    load_experiment,
    load_experiments,
    load_metric_catalog,
)
from exp_dagster.warehouse.landing import LogKind, LogSource
from exp_dagster.warehouse.schema import ensure_schema

_log = logging.getLogger(__name__)


class WarehouseBusyError(RuntimeError):
    """Another process held the DuckDB file for longer than the warehouse waits."""


class WarehouseMemoryError(MemoryError):
    """DuckDB needed more memory than its limit and could not spill the rest to disk."""


class WarehouseDiskFullError(OSError):
    """The disk under the DuckDB file or its spill folder is full: the disk, not the input."""


_DISK_FULL = ("no space left on device", "disk full", "max_temp_directory_size", "disk quota")


def is_disk_full(exc: BaseException) -> bool:
    """Whether a DuckDB error is a full disk (the file's, or the spill folder's limit)."""
    return any(phrase in str(exc).lower() for phrase in _DISK_FULL)


class Warehouse(DuckDBResource):
    """The analytical warehouse: a DuckDB file by default.

    ``threads`` and ``memory_limit`` bound what one run may take of the machine (DuckDB's
    defaults: every core, 80 % of the RAM; any DuckDB size such as ``1GB`` or ``50%``). When an
    operation needs more memory than the limit, DuckDB spills to ``temp_directory`` (default:
    ``<database>.tmp`` beside the file) instead of failing where it can (hash aggregates and
    joins; quantiles come from histograms, not from an exact quantile over raw rows); where it
    cannot, the run stops with a :class:`WarehouseMemoryError` naming the setting to raise.
    ``default_resources`` fills the three from ``EXP_DAGSTER_DUCKDB_THREADS``,
    ``EXP_DAGSTER_DUCKDB_MEMORY_LIMIT`` and ``EXP_DAGSTER_DUCKDB_TEMP_DIR``. A DuckDB file has
    one writer at a time: a run that finds it locked by another process waits up to
    ``lock_wait_seconds`` for it (dagster.yaml's writer pool normally queues runs before that).

    One connection per run: inside a Dagster run (its steps share one process: the in-process
    executor) :meth:`connect` opens the connection once, at the first step that asks, and every
    later step of the run reuses it; it is closed, and DuckDB checkpoints the file, once, when the
    run tears its resources down. Opening, reading the schema digest and checkpointing per step
    cost about 21 s of a 14-day analysis at 1M units (issue 18). The run holds the file from
    its first warehouse step to its end, so dagster.yaml admits one run with a writing step at a
    time (``duckdb_writer`` pool at run granularity). Each step still starts as on a fresh
    connection: the temporary tables and views a step made are dropped when it ends. A step that
    fails takes the connection with it (an open transaction rolls back when it closes); the next
    step of the run opens another. Outside a run (the CLI, tests calling :meth:`connect`
    directly) every :meth:`connect` opens and closes its own connection, as before.
    """

    threads: int | None = None
    memory_limit: str | None = None
    temp_directory: str | None = None
    lock_wait_seconds: float = 900.0

    _in_run: bool = PrivateAttr(default=False)
    _run_connection: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)
    _steps_inside: int = PrivateAttr(default=0)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Called once per run (per process): from here on :meth:`connect` shares a connection."""
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Called once when the run ends, however it ends: the run's connection is closed."""
        self._in_run = False
        self._close_run_connection()

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection, waiting while another process holds the file's lock."""
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the schema in place and the session in UTC (the run's, in a run)."""
        if not self._in_run:
            conn = self._open_session()
            try:
                with self._explained_errors(conn):
                    yield conn
            finally:
                conn.close()
            return
        if self._run_connection is None:
            self._run_connection = self._open_session()
        conn = self._run_connection
        self._steps_inside += 1
        try:
            with self._explained_errors(conn):
                yield conn
            if self._steps_inside == 1:
                _drop_temporary_objects(conn)
        except BaseException:
            # Whatever the step left (an open transaction, a connection DuckDB invalidated)
            # goes with the connection; the next step of the run opens a fresh one.
            self._close_run_connection()
            raise
        finally:
            self._steps_inside -= 1

    def _open(self) -> duckdb.DuckDBPyConnection:
        config = {"custom_user_agent": "dagster", **self.connection_config}
        return connect_when_free(
            self.database,
            read_only=False,
            config=config,
            wait_seconds=self.lock_wait_seconds,
            on_wait=lambda: _log.warning(
                "%s is in use by another process; waiting up to %g s for it.",
                self.database,
                self.lock_wait_seconds,
            ),
            busy=lambda message: WarehouseBusyError(
                f"{self.database} stayed locked by another process for "
                f"{self.lock_wait_seconds:g} s ({message}); let that run finish (or stop it) "
                f"and run this one again."
            ),
        )

    def _spill_directory(self) -> str:
        return self.temp_directory or f"{self.database}.tmp"

    def _open_session(self) -> duckdb.DuckDBPyConnection:
        """A new connection with the settings applied and the schema in place."""
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = self._open()
        try:
            with self._explained_errors(conn):
                if self.threads:
                    conn.execute("SET threads = ?", [self.threads])
                if self.memory_limit:
                    conn.execute("SET memory_limit = ?", [self.memory_limit])
                conn.execute("SET temp_directory = ?", [self._spill_directory()])
                ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_run_connection(self) -> None:
        conn, self._run_connection = self._run_connection, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _explained_errors(self, conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """DuckDB's out-of-memory and disk-full errors as sentences that name the fix."""
        spill = self._spill_directory()
        try:
            yield
        except (duckdb.OutOfMemoryException, duckdb.IOException) as exc:
            if is_disk_full(exc):
                raise WarehouseDiskFullError(
                    f"the disk is full: DuckDB could not write {self.database} or spill to "
                    f"{spill} ({str(exc).splitlines()[0]}); free space on that disk, or "
                    f"point EXP_DAGSTER_DUCKDB_TEMP_DIR (spills) or the warehouse at one with "
                    f"room, then re-run. The input logs are not at fault."
                ) from exc
            if not isinstance(exc, duckdb.OutOfMemoryException):
                raise
            limit = conn.execute("SELECT current_setting('memory_limit')").fetchone()
            raise WarehouseMemoryError(
                f"DuckDB ran out of memory under its limit of {limit[0] if limit else '?'} "
                f"({str(exc).splitlines()[0]}). Give it more with "
                f"EXP_DAGSTER_DUCKDB_MEMORY_LIMIT (e.g. 4GB, or 50%), or fewer threads with "
                f"EXP_DAGSTER_DUCKDB_THREADS=1, and check that {spill} has free disk to "
                f"spill to; then re-run the partition."
            ) from exc


def _drop_temporary_objects(conn: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary views and tables of a connection: a step that shares the run's
    connection leaves the next step what a fresh connection would (and frees their memory)."""
    found = conn.execute(
        "SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary AND NOT internal "
        "UNION ALL SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary "
        "ORDER BY 1 DESC"  # views first: they may read the tables
    ).fetchall()
    for kind, name in found:
        quoted = str(name).replace('"', '""')
        conn.execute(f'DROP {kind} IF EXISTS temp.main."{quoted}"')


class LandingZone(dg.ConfigurableResource):
    """Where the exposure and event logs land (files or folders, see docs/input.md).

    The model-evaluation logs (ranking, prediction, interleaving) are optional: a path that is
    unset or does not exist means "no such logs", and the evaluation assets do nothing.
    """

    exposures_path: str
    events_path: str
    ranking_path: str | None = None
    predictions_path: str | None = None
    interleaving_path: str | None = None

    def exposures(self) -> LogSource:
        return LogSource("exposures", Path(self.exposures_path))

    def events(self) -> LogSource:
        return LogSource("events", Path(self.events_path))

    def model_logs(self, kind: LogKind) -> LogSource | None:
        """The ``ranking``, ``predictions`` or ``interleaving`` source, or None when absent."""
        path = {
            "ranking": self.ranking_path,
            "predictions": self.predictions_path,
            "interleaving": self.interleaving_path,
        }.get(kind)
        if not path or not Path(path).exists():
            return None
        return LogSource(kind, Path(path))


class Catalog(dg.ConfigurableResource):
    """The specs: ``metrics.yaml`` and ``experiments/*.yaml`` under ``catalog_dir``.

    ``experiment_files`` adds specs kept elsewhere (``exp-dagster analyze`` uses it);
    ``metrics_file`` overrides the catalog's metric definitions.
    """

    catalog_dir: str
    experiment_files: list[str] = Field(default_factory=list)
    metrics_file: str | None = None

    def metric_catalog(self) -> MetricCatalog:
        path = (
            Path(self.metrics_file)
            if self.metrics_file
            else Path(self.catalog_dir) / "metrics.yaml"
        )
        return load_metric_catalog(path)

    def experiments(self) -> dict[str, ResolvedExperiment]:
        metrics = self.metric_catalog()
        found = {}
        directory = Path(self.catalog_dir) / "experiments"
        if directory.is_dir():
            found = load_experiments(directory, metrics)
        for file in self.experiment_files:
            resolved = load_experiment(Path(file), metrics)
            found[resolved.spec.id] = resolved
        check_overlaps(found.values())
        return found

    def experiment(self, experiment_id: str) -> ResolvedExperiment:
        experiments = self.experiments()
        if experiment_id not in experiments:
            raise SpecError(
                f"experiment '{experiment_id}' has no spec in {self.catalog_dir}/experiments "
                f"(known: {', '.join(sorted(experiments)) or 'none'}); add "
                f"{experiment_id}.yaml or remove the partition."
            )
        return experiments[experiment_id]

    def metric_events(self) -> list[str]:
        """Events read by any metric (numerators, denominators, quantile events): their rows are
        also kept with their timestamps, for the exposure day's split at each unit's exposure."""
        metrics = self.metric_catalog().metrics.values()
        return sorted({event for m in metrics for event in m.events})

    def quantile_events(self) -> list[str]:
        """Events read by any quantile metric: their values are also kept as histograms."""
        metrics = self.metric_catalog().metrics.values()
        return sorted({e for m in metrics if m.kind.keeps_histograms for e in m.events})


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources configured from the environment (see :mod:`exp_dagster.home`)."""
    return {
        "warehouse": Warehouse(database=str(home.warehouse_path()), **home.duckdb_settings()),
        "landing": LandingZone(
            exposures_path=str(home.exposures_path()),
            events_path=str(home.events_path()),
            ranking_path=str(home.model_log_path("ranking")),
            predictions_path=str(home.model_log_path("predictions")),
            interleaving_path=str(home.model_log_path("interleaving")),
        ),
        "catalog": Catalog(catalog_dir=str(home.catalog_dir())),
    }
