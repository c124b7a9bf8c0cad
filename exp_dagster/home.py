"""Where exp_dagster keeps its state: one home folder, set by ``EXP_DAGSTER_HOME``.

The default is ``.exp_dagster_home`` inside the project, so ``make demo`` and ``make ui`` share
it and a fresh clone starts from nothing. Everything local and production differ in is an
environment variable:

=========================== ===================================== ==============================
variable                    meaning                               default
=========================== ===================================== ==============================
``EXP_DAGSTER_HOME``        the home folder                       ``<project>/.exp_dagster_home``
``EXP_DAGSTER_WAREHOUSE``   the DuckDB file                       ``<home>/warehouse.duckdb``
``EXP_DAGSTER_EXPOSURES``   exposure logs (file or folder)        ``<home>/landing/exposures``
``EXP_DAGSTER_EVENTS``      event logs (file or folder)           ``<home>/landing/events``
``EXP_DAGSTER_RANKING``     ranking logs (optional)               ``<home>/landing/ranking``
``EXP_DAGSTER_PREDICTIONS`` prediction logs (optional)            ``<home>/landing/predictions``
``EXP_DAGSTER_INTERLEAVING`` interleaving logs (optional)         ``<home>/landing/interleaving``
``EXP_DAGSTER_CATALOG``     the catalog folder                    ``<project>/catalog``
``EXP_DAGSTER_REPORTS``     HTML reports                          ``reports`` beside the warehouse
``DAGSTER_HOME``            Dagster's instance (dagster.yaml)     ``<home>/dagster``
``EXP_DAGSTER_DUCKDB_THREADS`` DuckDB worker threads per run      DuckDB's (the machine's cores)
``EXP_DAGSTER_DUCKDB_MEMORY_LIMIT`` DuckDB memory, e.g. ``1GB``    DuckDB's (80 % of RAM)
``EXP_DAGSTER_DUCKDB_TEMP_DIR`` where DuckDB spills when memory   ``<warehouse>.tmp``
                            is short
=========================== ===================================== ==============================
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def home_dir() -> Path:
    default = PROJECT_ROOT / ".exp_dagster_home"
    return Path(os.environ.get("EXP_DAGSTER_HOME", default)).resolve()


def warehouse_path() -> Path:
    return Path(os.environ.get("EXP_DAGSTER_WAREHOUSE", home_dir() / "warehouse.duckdb"))


def exposures_path() -> Path:
    return Path(os.environ.get("EXP_DAGSTER_EXPOSURES", home_dir() / "landing" / "exposures"))


def events_path() -> Path:
    return Path(os.environ.get("EXP_DAGSTER_EVENTS", home_dir() / "landing" / "events"))


def model_log_path(kind: str) -> Path:
    """Where the optional ``ranking``, ``predictions`` or ``interleaving`` logs land."""
    return Path(os.environ.get(f"EXP_DAGSTER_{kind.upper()}", home_dir() / "landing" / kind))


def duckdb_settings() -> dict[str, str | int | None]:
    """DuckDB's thread count, memory limit and spill folder from the environment (None: DuckDB's
    default: every core, 80 % of the RAM; the spill folder beside the warehouse).

    A 1 GB limit keeps a million-unit run under 1.5 GB of resident memory at the same speed, and
    a ten-million-unit run completes under it (1.56 GB peak), though the quantile moments then
    run in slices and take longer (README "Scale and benchmarks"); the default stays DuckDB's own.

    Raises:
        ValueError: ``EXP_DAGSTER_DUCKDB_THREADS`` is not a positive whole number.
    """
    threads_text = os.environ.get("EXP_DAGSTER_DUCKDB_THREADS", "").strip()
    threads: int | None = None
    if threads_text:
        if not threads_text.isdigit() or int(threads_text) < 1:
            raise ValueError(
                f"EXP_DAGSTER_DUCKDB_THREADS={threads_text!r} is not a positive whole number "
                f"of threads; set it to e.g. 2, or unset it for DuckDB's default (all cores)."
            )
        threads = int(threads_text)
    return {
        "threads": threads,
        "memory_limit": os.environ.get("EXP_DAGSTER_DUCKDB_MEMORY_LIMIT", "").strip() or None,
        "temp_directory": os.environ.get("EXP_DAGSTER_DUCKDB_TEMP_DIR", "").strip() or None,
    }


def landing_dir() -> Path:
    return home_dir() / "landing"


def reports_dir(warehouse: Path | str | None = None) -> Path:
    """Where HTML reports go: ``EXP_DAGSTER_REPORTS``, else ``reports/`` beside the warehouse
    (``<home>/reports`` by default), so a report always sits with the data it was made from."""
    if "EXP_DAGSTER_REPORTS" in os.environ:
        return Path(os.environ["EXP_DAGSTER_REPORTS"])
    return Path(warehouse if warehouse is not None else warehouse_path()).parent / "reports"


def catalog_dir() -> Path:
    return Path(os.environ.get("EXP_DAGSTER_CATALOG", PROJECT_ROOT / "catalog"))


def ensure_dagster_home() -> Path:
    """Point ``DAGSTER_HOME`` at ``<home>/dagster`` (unless set) with the project's dagster.yaml."""
    dagster_home = Path(os.environ.get("DAGSTER_HOME", home_dir() / "dagster"))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = PROJECT_ROOT / "dagster.yaml"
    target = dagster_home / "dagster.yaml"
    if config.exists() and (not target.exists() or target.read_bytes() != config.read_bytes()):
        shutil.copyfile(config, target)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
