"""The landing zone: where users' exposure and event logs are read from.

A log source is a single file or a folder. In a folder, hive-style ``date=YYYY-MM-DD/`` sub-folders
are read one day at a time (only that day's files are scanned); any other folder or single file is
read whole and filtered by the timestamp's UTC date. Parquet, CSV and JSON Lines are recognised by
extension and may be mixed.

In a folder, names starting with ``.`` or ``_`` (``_SUCCESS``, ``_temporary/``, ``.crc`` files)
are skipped, as Spark and Hive do, and so are empty (0-byte) files, which hold no rows. Every
other file must be one the readers can read and, in a hive-style folder, sit in a
``date=YYYY-MM-DD/`` folder: anything else stops the read with the file's name, so no rows go
unread silently. A file byte-identical to another file of the same read (delivered twice) has its
rows quarantined with the name of the first copy, so they count once.

The readers are DuckDB table functions chosen from a fixed list; file names are bound parameters
(or, in a view, which takes none, quoted literals), so no SQL is ever built from a path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, NoReturn

import duckdb

LogKind = Literal["exposures", "events", "ranking", "predictions", "interleaving"]

REQUIRED_COLUMNS: dict[LogKind, tuple[str, ...]] = {
    "exposures": ("experiment_id", "unit_id", "variant", "exposed_at"),
    "events": ("unit_id", "event_time", "event", "value"),
    # Model-evaluation logs (optional sources, see docs/input.md).
    "ranking": (
        "request_id",
        "unit_id",
        "variant",
        "item_id",
        "position",
        "score",
        "label",
        "event_time",
    ),
    "predictions": ("unit_id", "model", "score", "label"),
    "interleaving": ("request_id", "unit_id", "item_id", "position", "team", "click", "event_time"),
}
TIMESTAMP_COLUMN: dict[LogKind, str] = {
    "exposures": "exposed_at",
    "events": "event_time",
    "ranking": "event_time",
    "predictions": "event_time",
    "interleaving": "event_time",
}
# Columns read when a file has them (NULL otherwise): an ``event_id`` lets the event gate tell an
# SDK's retried row from a genuine repeat.
OPTIONAL_COLUMNS: dict[LogKind, tuple[str, ...]] = {
    "exposures": (),
    "events": ("event_id",),
    "ranking": ("propensity",),
    "predictions": ("event_time",),
    "interleaving": (),
}
# unit_id must be text or an integer: a floating-point id (pandas turns an integer column with
# gaps into float64) prints as "123.0" and would never match the same unit elsewhere.
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

_FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}
# Compressions and archives the readers cannot open, with how to make the file readable.
_UNREADABLE: dict[str, str] = {
    ".bz2": "bzip2-compressed: decompress it (bunzip2) or re-compress it with gzip or zstd",
    ".xz": "xz-compressed: decompress it (unxz) or re-compress it with gzip or zstd",
    ".lz4": "lz4-compressed: decompress it or re-compress it with gzip or zstd",
    ".lzma": "lzma-compressed: decompress it or re-compress it with gzip or zstd",
    ".br": "brotli-compressed: decompress it or re-compress it with gzip or zstd",
    ".z": "compress(1)-compressed: decompress it or re-compress it with gzip or zstd",
    ".zip": "a zip archive: unpack its files into the folder",
    ".7z": "a 7-Zip archive: unpack its files into the folder",
    ".rar": "a RAR archive: unpack its files into the folder",
    ".tar": "a tar archive: unpack its files into the folder",
    ".tgz": "a tar archive: unpack its files into the folder",
}
# One fixed reader per format. Text formats are read as text and cast with TRY_CAST downstream,
# so a malformed value quarantines its row instead of failing the whole file. The file's name and
# row number are not asked of the reader (its ``filename`` and ``file_row_number`` columns would
# collide with the user's columns of those names): each file is read by its own SELECT, which
# names the file itself.
_READERS: dict[str, str] = {
    "parquet": "read_parquet($files, hive_partitioning = false)",
    "csv": "read_csv($files, all_varchar = true, header = true, hive_partitioning = false)",
    "json": "read_json($files, format = 'auto', records = true, hive_partitioning = false)",
}
# JSON has no all_varchar: the columns read are declared, so that types sniffed from the first
# rows (a timestamp, an integer) cannot fail the file on a later row that differs. Numeric
# columns are declared JSON (a cast to DOUBLE then reads true as 1, as for a typed column, and a
# bad value becomes NULL for its row), the others text.
_JSON_NUMERIC = frozenset({"value", "score", "label", "position", "click", "propensity"})
_JSON_DECLARED = (
    "read_json($files, format = 'auto', records = true, hive_partitioning = false, "
    "columns = {columns})"
)
_DATE_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_HASH_CHUNK = 1 << 20


class InputError(ValueError):
    """An input log cannot be read; the message names the file, the column and the fix."""


def _format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".zst"}:
        suffixes = suffixes[:-1]
    return _FORMATS.get(suffixes[-1]) if suffixes else None


def _date_of_folder(name: str) -> dt.date | None:
    """The day a ``date=YYYY-MM-DD`` folder name stands for (None for any other name)."""
    match = _DATE_FOLDER.match(name)
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:  # date=2026-02-30
        return None


def _is_hidden(path: Path, folder: Path) -> bool:
    """Whether a name on the way from ``folder`` to ``path`` starts with ``.`` or ``_``: Spark's
    and Hive's hidden files (``_SUCCESS``, ``_temporary/``, ``.part-0.crc``)."""
    return any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)


def _visible_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` that is not hidden, in path order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not _is_hidden(p, folder))


def _files_of_size(folder: str, sizes: set[int]) -> list[Path]:
    """The visible data files under ``folder`` whose size is one of ``sizes``: the candidates
    for a copy of a file of that size, found with one ``stat`` per file and no other work (every
    other day's folder is scanned)."""
    found: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir(follow_symlinks=False):
                found += _files_of_size(entry.path, sizes)
            elif entry.is_file() and entry.stat().st_size in sizes:
                path = Path(entry.path)
                if _format_of(path) is not None:
                    found.append(path)
    return found


def _unknown_type(path: Path) -> InputError:
    what = next((_UNREADABLE[s.lower()] for s in path.suffixes if s.lower() in _UNREADABLE), None)
    if what is not None:
        return InputError(
            f"{path}: the file is {what}, since exp_dagster reads .parquet, .csv and .jsonl "
            f"files (plain, .gz or .zst); its rows are not read until then."
        )
    return InputError(
        f"{path}: unknown file type, so its rows would not be read; use .parquet, .csv or .jsonl "
        f"(plain, .gz or .zst), or move the file out of the landing zone (names starting with "
        f"'_' or '.' are skipped)."
    )


def _data_files(folder: Path, zone: Path | None = None, *, strict: bool = False) -> list[Path]:
    """The data files under ``folder``. With ``strict``, a visible file of a type the readers
    cannot read stops the read (otherwise it is left out, as for a sensor's fingerprint)."""
    files: list[Path] = []
    for path in _visible_files(folder):
        if _format_of(path) is None:
            if strict:
                raise _unknown_type(path)
        elif path.stat().st_size > 0:  # an empty file (Spark's for an empty task) has no rows
            files.append(path)
    root = (zone or folder).resolve()
    for path in files:
        # A symlink must not lead the reader out of the landing zone (e.g. to /etc).
        if not path.resolve().is_relative_to(root):
            raise InputError(
                f"{path}: links outside the landing zone {zone or folder}; copy the file into the "
                f"landing zone instead of linking to it."
            )
    return files


def _digest(path: Path) -> str:
    """The file's content hash, read in chunks (files can be larger than memory)."""
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def duplicate_files(
    files: Sequence[Path], others: Sequence[Path] = ()
) -> tuple[dict[Path, Path], dict[Path, Path]]:
    """The files of ``files`` that are byte-identical to another file.

    Only files of equal size are hashed (in chunks), so a read without copies costs one ``stat``
    per file.

    Args:
        files: the files of one read.
        others: files of other reads (another day's folder) to compare them with.

    Returns:
        The files byte-identical to an earlier one of ``files`` (in path-text order), each mapped
        to that first copy; and the files byte-identical to one of ``others``, mapped to it.
    """
    sizes = {path: path.stat().st_size for path in [*files, *others]}
    wanted = {sizes[path] for path in files}
    by_size: dict[int, list[Path]] = {}
    for path in sorted(set(sizes), key=str):
        if sizes[path] in wanted:
            by_size.setdefault(sizes[path], []).append(path)
    own = set(files)
    copies: dict[Path, Path] = {}
    elsewhere: dict[Path, Path] = {}
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        digests = {path: _digest(path) for path in same_size}
        for path in (p for p in same_size if p in own):
            first = next(p for p in same_size if p in own and digests[p] == digests[path])
            if first != path:
                copies[path] = first
            other = next(
                (p for p in same_size if p not in own and digests[p] == digests[path]), None
            )
            if other is not None:
                elsewhere[path] = other
    return copies, elsewhere


class FilesToRead(NamedTuple):
    """The files a read of one day takes, and what is known of them before reading.

    Attributes:
        files: the data files, in path order.
        is_hive: whether they hold only that day (a ``date=`` folder).
        copies: files byte-identical to an earlier one of ``files``, mapped to that first copy.
        copies_elsewhere: files byte-identical to a file in another ``date=`` folder, mapped to
            it (the rows of the copy that is not in its day's folder are quarantined as outside
            it, so each row still counts once).
    """

    files: list[Path]
    is_hive: bool
    copies: dict[Path, Path]
    copies_elsewhere: dict[Path, Path]


@dataclass(frozen=True)
class LogSource:
    """A file or folder of exposure or event logs.

    Attributes:
        kind: ``exposures`` or ``events``.
        path: a file, or a folder (hive ``date=YYYY-MM-DD/`` sub-folders or plain files).
    """

    kind: LogKind
    path: Path

    @property
    def is_hive(self) -> bool:
        return self.path.is_dir() and any(
            _DATE_FOLDER.match(p.name) for p in self.path.iterdir() if p.is_dir()
        )

    def dates(self) -> list[dt.date]:
        """The days a hive-style source has folders for (empty for other layouts)."""
        if not self.path.is_dir():
            return []
        found = (_date_of_folder(p.name) for p in self.path.iterdir() if p.is_dir())
        return sorted(day for day in found if day is not None)

    def _check_hive_layout(self) -> None:
        """Stop on a visible file outside the ``date=`` folders of a hive-style source: no day
        reads it, so its rows would be silently left out."""
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir() and _date_of_folder(entry.name) is not None:
                continue
            stray = next(iter(_visible_files(entry)), None) if entry.is_dir() else entry
            if stray is None:
                continue
            raise InputError(
                f"{stray}: a file outside the date=YYYY-MM-DD folders of {self.path}, so no day "
                f"reads it; move it into the folder of its day (date=YYYY-MM-DD, a valid date), "
                f"or out of the landing zone."
            )

    def files_for(self, day: dt.date, *, strict: bool = False) -> tuple[list[Path], bool]:
        """The files that may hold ``day``'s rows, and whether they hold only that day (hive).

        With ``strict`` (a read, not a sensor's listing), a visible file of a type the readers
        cannot read (``.csv.bz2``, ``.zip``), or a file next to the ``date=`` folders of a
        hive-style source, raises :class:`InputError` instead of being left out.
        """
        if not self.path.exists():
            raise InputError(
                f"{self.kind} source {self.path} does not exist; point the landing zone at the "
                f"folder or file holding your {self.kind} logs."
            )
        if self.path.is_file():
            if _format_of(self.path) is None:
                raise _unknown_type(self.path)
            return ([self.path] if self.path.stat().st_size > 0 else []), False
        if self.is_hive:
            if strict:
                self._check_hive_layout()
            folder = self.path / f"date={day.isoformat()}"
            return _data_files(folder, self.path, strict=strict), True
        return _data_files(self.path, strict=strict), False

    def files_to_read(self, day: dt.date) -> FilesToRead:
        """:meth:`files_for` a read (``strict``), and the byte-identical copies among them and,
        for a hive-style source, in its other ``date=`` folders."""
        files, is_hive = self.files_for(day, strict=True)
        others: list[Path] = []
        if is_hive and files:
            sizes = {path.stat().st_size for path in files}
            own_folder = f"date={day.isoformat()}"
            for entry in os.scandir(self.path):
                if entry.name != own_folder and entry.is_dir() and _date_of_folder(entry.name):
                    others += _files_of_size(entry.path, sizes)
        copies, elsewhere = duplicate_files(files, others)
        return FilesToRead(files, is_hive, copies, elsewhere)


def _columns(conn: duckdb.DuckDBPyConnection, reader: str, files: Sequence[Path]) -> dict[str, str]:
    rows = conn.execute(f"DESCRIBE SELECT * FROM {reader}", {"files": [str(f) for f in files]})
    return {str(row[0]): str(row[1]) for row in rows.fetchall()}


def _unreadable(path: Path, fmt: str, exc: duckdb.Error, column: str | None = None) -> InputError:
    """The error for a file DuckDB cannot read, with the fix its cause suggests.

    Raises:
        duckdb.Error: ``exc`` itself when the machine, not the file, is at fault (out of memory,
            a full disk): the warehouse turns it into an error naming the setting to change.
    """
    if isinstance(exc, duckdb.OutOfMemoryException) or "no space left" in str(exc).lower():
        raise exc
    cause = str(exc).splitlines()[0]
    if "not utf-8" in str(exc).lower() or "invalid unicode" in str(exc).lower():
        fix = "it is not UTF-8 text: re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
    elif "non-record json" in cause.lower():
        fix = 'each line must be one JSON object, e.g. {"unit_id": "u1", ...}; fix the export.'
    elif column is not None and "column" in cause.lower() and column in cause:
        fix = f"it has no usable '{column}' column (see docs/input.md)."
    else:
        fix = (
            f"the file may be truncated or not {fmt}. Re-export it or move it out of the "
            f"landing zone."
        )
    return InputError(f"{path}: cannot be read as {fmt} ({cause}); {fix}")


def common_columns(conn: duckdb.DuckDBPyConnection, source: LogSource, day: dt.date) -> list[str]:
    """The columns every file of ``day`` has, in the first file's order: how a caller finds an
    optional family of columns (a prediction log's ``feature_*``) to pass to :func:`stage_raw`."""
    files, _ = source.files_for(day)
    found: list[str] | None = None
    for path in files:
        fmt = str(_format_of(path))
        try:
            present = _columns(conn, _READERS[fmt], [path])
        except duckdb.Error as exc:
            raise _unreadable(path, fmt, exc) from exc
        found = list(present) if found is None else [c for c in found if c in present]
    return found or []


def _literal(text: str) -> str:
    """``text`` as a SQL string literal (a view cannot take bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


def stage_raw(
    conn: duckdb.DuckDBPyConnection,
    source: LogSource,
    day: dt.date,
    table: str,
    extra_columns: Sequence[str] = (),
    *,
    as_view: bool = False,
) -> bool:
    """Stage the raw rows that may belong to ``day`` as the temporary table ``table`` (a copy,
    or with ``as_view`` a view over the files).

    Every column is kept as read; the contract's columns are checked per file first, so a missing
    column is reported with the file that lacks it. Rows get ``source_file``, ``source_row``,
    ``duplicate_of`` (for a file byte-identical to an earlier one of the read, see
    :func:`duplicate_files`, that first copy's path: the caller quarantines its rows) and
    ``copy_elsewhere`` (for a file byte-identical to one in another ``date=`` folder, that file:
    the caller names it in the reason of the rows outside this folder).

    Args:
        conn: an open DuckDB connection.
        source: where to read.
        day: the UTC day wanted.
        table: the name of the temporary table to (re)create; a constant of the caller's.
        extra_columns: more columns the caller needs (e.g. an experiment's segment columns).
        as_view: make ``table`` a temporary view over the files instead of a copy, for a caller
            that reads the rows in one pass per statement (the day's events: copying tens of
            millions of rows would cost memory, and spilling, that the reads do not). A file
            that turns out unreadable then fails the caller's statement: the caller passes the
            error to :func:`raise_unreadable`.

    Returns:
        Whether the source is a hive-style day folder (its rows then belong to ``day``).
    """
    files, is_hive, copies, elsewhere = source.files_to_read(day)
    for name in extra_columns:
        if not _IDENTIFIER.match(name):  # the spec already enforces this; never trust callers
            raise ValueError(f"invalid column name {name!r}")
    required = [*REQUIRED_COLUMNS[source.kind], *extra_columns]
    optional = OPTIONAL_COLUMNS[source.kind]
    selects: list[str] = []
    params: dict[str, list[str]] = {}
    # One SELECT per file: files of one day may differ in optional columns and column order.
    for index, path in enumerate(files):
        fmt = str(_format_of(path))
        reader = _READERS[fmt]
        try:
            present = _columns(conn, reader, [path])
        except duckdb.Error as exc:
            raise _unreadable(path, fmt, exc) from exc
        missing = [c for c in required if c not in present]
        if missing:
            raise InputError(
                f"{path}: missing column(s) {', '.join(missing)}; {source.kind} logs need "
                f"{', '.join(required)} (see docs/input.md). "
                f"Found: {', '.join(present)}. Rename the column(s) in the export."
            )
        if present["unit_id"].startswith(_FLOAT_TYPES):
            raise InputError(
                f"{path}: column unit_id is {present['unit_id']}, so ids would read as '123.0'; "
                f"write unit_id as text or as an integer column."
            )
        if fmt == "json":
            declared = [c for c in [*required, *optional] if c in present]
            reader = _JSON_DECLARED.format(
                columns="{"
                + ", ".join(
                    f"{_literal(c)}: "
                    + ("'JSON'" if c in _JSON_NUMERIC or c.startswith("feature_") else "'VARCHAR'")
                    for c in declared
                )
                + "}"
            )
        # source_row: the record's 0-based index in its file. Parquet reads it (its virtual
        # column, unless the file has a column of that name); for the others a window with an
        # empty OVER numbers rows in file order (DuckDB guarantees the order for a single-table
        # FROM; see its "Order Preservation" page).
        row_number = (
            "file_row_number"
            if fmt == "parquet" and "file_row_number" not in present
            else "row_number() OVER () - 1"
        )
        projected = ", ".join(
            [f'"{c}"' for c in required]
            + [f'"{c}"' if c in present else f'NULL::VARCHAR AS "{c}"' for c in optional]
        )
        # Paths are parameters (one-element lists, as the readers take): $file_0[1] is the path.
        params[f"file_{index}"] = [str(path)]
        found: dict[str, str] = {}
        for name, copy in (
            ("duplicate_of", copies.get(path)),
            ("copy_elsewhere", elsewhere.get(path)),
        ):
            found[name] = "NULL::VARCHAR"
            if copy is not None:
                params[f"{name}_{index}"] = [str(copy)]
                found[name] = f"${name}_{index}[1]"
        selects.append(
            f"SELECT {projected}, $file_{index}[1] AS source_file, "
            f"{row_number}::BIGINT AS source_row, {found['duplicate_of']} AS duplicate_of, "
            f"{found['copy_elsewhere']} AS copy_elsewhere "
            f"FROM {reader.replace('$files', f'$file_{index}')}"
        )
    if not selects:
        # (a view when asked for one: a connection that staged a view under this name before
        # cannot drop it as a table)
        columns = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in [*required, *optional])
        kind = "VIEW" if as_view else "TABLE"
        conn.execute(
            f"CREATE OR REPLACE TEMP {kind} {table} AS SELECT {columns}, "
            f"NULL::VARCHAR AS source_file, NULL::BIGINT AS source_row, "
            f"NULL::VARCHAR AS duplicate_of, NULL::VARCHAR AS copy_elsewhere WHERE false"
        )
        return is_hive
    # unit_id is text in the contract but an integer in some files; the validation SQL casts the
    # other columns with TRY_CAST, so a bad value quarantines its row instead of the file.
    unified = " UNION ALL BY NAME ".join(
        f"SELECT * REPLACE (CAST(unit_id AS VARCHAR) AS unit_id) FROM ({select})"
        for select in selects
    )
    if as_view:
        unified = re.sub(
            r"\$((?:file|duplicate_of|copy_elsewhere)_\d+)\b",
            lambda m: f"[{_literal(params[m.group(1)][0])}]",
            unified,
        )
        try:
            conn.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS {unified}")
        except duckdb.Error as exc:  # e.g. files whose columns cannot be unified
            raise_unreadable(conn, source, day, exc)
        return is_hive
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        conn.execute(f"CREATE TEMP TABLE {table} AS {unified}", params)
    except duckdb.Error as exc:
        raise_unreadable(conn, source, day, exc)
    return is_hive


def raise_unreadable(
    conn: duckdb.DuckDBPyConnection, source: LogSource, day: dt.date, exc: duckdb.Error
) -> NoReturn:
    """Raise the :class:`InputError` for a read of ``day``'s files that failed with ``exc``.

    Readers sniff a sample; a fault further into a file shows up only when the rows are read.
    Each file is read on its own to name the one at fault. When every file reads, an error that
    is not the files' (DuckDB out of memory, the spill disk full) is raised as it is.
    """
    files, _ = source.files_for(day)
    for path in files:
        fmt = str(_format_of(path))
        try:
            conn.execute(f"SELECT count(*) FROM {_READERS[fmt]}", {"files": [str(path)]}).fetchall()
        except duckdb.Error as file_exc:
            raise _unreadable(path, fmt, file_exc) from exc
    if isinstance(exc, duckdb.OutOfMemoryException | duckdb.IOException):
        raise exc
    names = ", ".join(str(p) for p in files)
    raise InputError(
        f"{source.kind} files for {day} could not be read ({str(exc).splitlines()[0]}): "
        f"{names}. Check that the files are complete and of one schema."
    ) from exc


def experiment_ids(
    conn: duckdb.DuckDBPyConnection,
    source: LogSource,
    *,
    stop_at: str | None = None,
    first_days: Sequence[dt.date] = (),
) -> dict[str, int] | None:
    """The ``experiment_id`` values of an exposure source and their row counts: what to show a
    user whose spec id matches none of them.

    Args:
        conn: an open DuckDB connection.
        source: the exposure logs.
        stop_at: return as soon as a file holds this id (the counts are then partial): checking
            that a spec's id is in the logs reads one file when it is.
        first_days: for date folders, read these days' folders first (the experiment's window).

    Returns:
        The counts, or None when a file cannot be read this way (the pipeline then names it).
    """
    if not source.path.exists():
        return None
    if source.path.is_file():
        files = [source.path]
    else:
        preferred = [source.path / f"date={day.isoformat()}" for day in first_days]
        files = [f for folder in preferred if folder.is_dir() for f in _data_files(folder)]
        first = set(files)
        files += [f for f in _data_files(source.path) if f not in first]
    found: dict[str, int] = {}
    for path in files:
        fmt = _format_of(path)
        if fmt is None:
            continue
        try:
            rows = conn.execute(
                f"SELECT CAST(experiment_id AS VARCHAR), count(*) FROM {_READERS[fmt]} GROUP BY 1",
                {"files": [str(path)]},
            ).fetchall()
        except duckdb.Error:
            return None
        for key, count in rows:
            if key is not None:
                found[key] = found.get(key, 0) + int(count)
        if stop_at is not None and stop_at in found:
            break
    return found
