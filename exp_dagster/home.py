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
``EXP_DAGSTER_FIRST_DATE``  the first day partition (YYYY-MM-DD)  the catalog's (below)
``EXP_DAGSTER_SENSOR_INTERVAL`` seconds between sensor ticks      ``30``
``EXP_DAGSTER_VERBOSE``     any value: show Dagster's event log   unset
=========================== ===================================== ==============================

Unset, the first day partition is the first day any catalog experiment reads (its start less its
pre-period), so the UI's partition bars start where the data does; 2025-01-01 without a valid
spec. ``exp-dagster analyze`` dates it from the spec it analyses.

A bad value (a date that is not one, a home that is a file, a memory limit DuckDB cannot read)
raises :class:`SettingError`, a sentence naming the variable; :func:`check_settings` checks them
all at once, before anything runs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FIRST_DATE = "2025-01-01"
DEFAULT_SENSOR_INTERVAL = 30


class SettingError(ValueError):
    """An ``EXP_DAGSTER_*`` environment variable has a value that cannot work; the message names
    the variable, its value and what to set instead."""


def _setting(name: str) -> str:
    """The variable's value without surrounding spaces ("" when unset)."""
    return os.environ.get(name, "").strip()


def first_date() -> str | None:
    """The first day partition as set by ``EXP_DAGSTER_FIRST_DATE`` (ISO text), or None when
    unset: then :func:`exp_dagster.partitions.first_date` dates it from the catalog.

    Raises:
        SettingError: the value is not a YYYY-MM-DD date.
    """
    text = _setting("EXP_DAGSTER_FIRST_DATE")
    if not text:
        return None
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise SettingError(
            f"EXP_DAGSTER_FIRST_DATE={text!r} is not a date; set it to a day in YYYY-MM-DD form "
            f"(e.g. {DEFAULT_FIRST_DATE}), or unset it."
        ) from None
    return text


def sensor_interval() -> int:
    """Seconds between sensor ticks, ``EXP_DAGSTER_SENSOR_INTERVAL`` (default 30).

    Raises:
        SettingError: the value is not a positive whole number.
    """
    text = _setting("EXP_DAGSTER_SENSOR_INTERVAL")
    if not text:
        return DEFAULT_SENSOR_INTERVAL
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise SettingError(
            f"EXP_DAGSTER_SENSOR_INTERVAL={text!r} is not a positive whole number of seconds; "
            f"set it to e.g. {DEFAULT_SENSOR_INTERVAL}, or unset it."
        )
    return int(text)


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
    run in slices and take longer (docs/scale.md); the default stays DuckDB's own.

    Raises:
        SettingError: ``EXP_DAGSTER_DUCKDB_THREADS`` is not a positive whole number,
            ``EXP_DAGSTER_DUCKDB_MEMORY_LIMIT`` is not a size DuckDB reads, or
            ``EXP_DAGSTER_DUCKDB_TEMP_DIR`` is a file.
    """
    threads_text = _setting("EXP_DAGSTER_DUCKDB_THREADS")
    threads: int | None = None
    if threads_text:
        if not threads_text.isascii() or not threads_text.isdigit() or int(threads_text) < 1:
            raise SettingError(
                f"EXP_DAGSTER_DUCKDB_THREADS={threads_text!r} is not a positive whole number "
                f"of threads; set it to e.g. 2, or unset it for DuckDB's default (all cores)."
            )
        threads = int(threads_text)
    memory_limit = _setting("EXP_DAGSTER_DUCKDB_MEMORY_LIMIT") or None
    if memory_limit is not None:
        _check_memory_limit(memory_limit)
    temp_directory = _setting("EXP_DAGSTER_DUCKDB_TEMP_DIR") or None
    if temp_directory is not None:
        _check_folder("EXP_DAGSTER_DUCKDB_TEMP_DIR", Path(temp_directory))
    return {"threads": threads, "memory_limit": memory_limit, "temp_directory": temp_directory}


def _check_memory_limit(text: str) -> None:
    """Let DuckDB itself read the size, so what passes here is what a run will accept."""
    import duckdb

    with duckdb.connect() as conn:
        try:
            conn.execute("SET memory_limit = ?", [text])
        except duckdb.Error:
            raise SettingError(
                f"EXP_DAGSTER_DUCKDB_MEMORY_LIMIT={text!r} is not a size DuckDB reads; set it to "
                f"e.g. 1GB, 512MB or 50% (of the RAM), or unset it for DuckDB's default (80 %)."
            ) from None


def _check_folder(name: str, path: Path) -> None:
    """A folder setting must name a folder, or a path one can be created at."""
    if path.exists() and not path.is_dir():
        raise SettingError(
            f"{name}={str(path)!r} is a file, not a folder; point {name} at a folder (it is "
            f"created if missing), or unset it."
        )
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise SettingError(
            f"{name}={str(path)!r} cannot be a folder: {parent} is a file; point {name} at a "
            f"folder, or unset it."
        )


def check_settings() -> None:
    """Check every ``EXP_DAGSTER_*`` setting at once, before a command starts any work.

    Raises:
        SettingError: the first setting that cannot work, named with the fix.
    """
    first_date()
    sensor_interval()
    duckdb_settings()
    for name in ("EXP_DAGSTER_HOME", "EXP_DAGSTER_REPORTS"):
        if _setting(name):
            _check_folder(name, Path(_setting(name)))
    warehouse = _setting("EXP_DAGSTER_WAREHOUSE")
    if warehouse and Path(warehouse).is_dir():
        raise SettingError(
            f"EXP_DAGSTER_WAREHOUSE={warehouse!r} is a folder; point it at a DuckDB file "
            f"(e.g. {Path(warehouse) / 'warehouse.duckdb'}), or unset it."
        )
    catalog = _setting("EXP_DAGSTER_CATALOG")
    if catalog and not Path(catalog).is_dir():
        raise SettingError(
            f"EXP_DAGSTER_CATALOG={catalog!r} is not a folder; point it at the folder holding "
            f"metrics.yaml and experiments/, or unset it for the project's catalog."
        )


def contain_caches() -> None:
    """Keep what libraries cache inside the home, not in the user's home folder.

    matplotlib (the report's charts) writes its font cache to ``MPLCONFIGDIR``, by default
    ``~/.config/matplotlib``; it reads the variable once, at import, so this runs before the
    first import. A value the user set is kept.
    """
    os.environ.setdefault("MPLCONFIGDIR", str(home_dir() / "cache" / "matplotlib"))


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
