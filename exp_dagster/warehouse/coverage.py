"""Which days of an experiment's window the logs cover: where a default analysis date comes from.

An analysis is as of a day whose data has arrived. The last day the logs *cover* is the last day of
the window ``start .. end`` on which the exposure logs have a valid row of the experiment or the
event logs have a valid row, and, for a log in hive-style ``date=`` folders, no later than its last
folder (there a day's folder is how a day is delivered: a later day without one is missing, not a
day without traffic). "Valid" applies the row checks of ``exposures.sql`` and
``event_facts.sql`` that decide a row's day (a parseable timestamp inside the window and, in a
``date=`` folder, inside its folder; an exposure's experiment id, unit and known variant; an
event's unit, name and finite value), so a quarantined row, e.g. one dated 2100, never moves it.
The checks that need more than the row (the deterministic hash, crossovers, duplicate event ids,
the value cut-off) are left to the pipeline: a day whose only rows fail those still counts.

Cost: a single file or plain folder is scanned once per log; a hive source reads its ``date=``
folders from the end of the window backwards and stops at the first one with a valid row, which
is normally the last folder. The event logs are read only for days after the last exposure day.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from exp_dagster.spec import ExperimentSpec
from exp_dagster.warehouse.landing import LogSource, raise_unreadable, stage_raw
from exp_dagster.warehouse.schema import ensure_schema

# The day of each valid row of the staged view ``raw_rows`` (what ``stage_raw`` makes), for rows
# dated after $after and on or before $end; $folder_day is the day of a hive folder (NULL for a
# single file or plain folder), whose rows must be dated that day.
_LAST_VALID_EXPOSURE_DAY = """
SELECT max(day) FROM (
    SELECT TRY_CAST(exposed_at AS TIMESTAMPTZ)::DATE AS day
    FROM raw_rows
    WHERE CAST(experiment_id AS VARCHAR) = $experiment_id
      AND NOT is_blank(CAST(unit_id AS VARCHAR))
      AND list_contains($variant_names, CAST(variant AS VARCHAR))
)
WHERE day > $after::DATE AND day <= $end::DATE
  AND ($folder_day::DATE IS NULL OR day = $folder_day::DATE)
"""
_LAST_VALID_EVENT_DAY = """
SELECT max(day) FROM (
    SELECT
        TRY_CAST(event_time AS TIMESTAMPTZ)::DATE AS day,
        TRY_CAST(value AS DOUBLE) AS value_number
    FROM raw_rows
    WHERE NOT is_blank(CAST(unit_id AS VARCHAR)) AND NOT is_blank(CAST(event AS VARCHAR))
)
WHERE day > $after::DATE AND day <= $end::DATE
  AND ($folder_day::DATE IS NULL OR day = $folder_day::DATE)
  AND value_number IS NOT NULL AND NOT isnan(value_number) AND NOT isinf(value_number)
"""


def _last_valid_day(
    conn: duckdb.DuckDBPyConnection,
    source: LogSource,
    query: str,
    params: dict[str, object],
    after: dt.date,
    end: dt.date,
) -> dt.date | None:
    """The last day in ``(after, end]`` on which ``source`` has a row ``query`` finds valid."""
    if source.is_hive:
        folders = [day for day in source.dates() if after < day <= end]
        days: list[dt.date | None] = list(reversed(folders))
    else:
        days = [None]  # one scan of the whole source
    for folder_day in days:
        stage_raw(conn, source, folder_day or end, "raw_rows", as_view=True)
        try:
            row = conn.execute(
                query, {**params, "after": after, "end": end, "folder_day": folder_day}
            ).fetchone()
        except duckdb.Error as exc:  # the files are read here (raw_rows is a view)
            raise_unreadable(conn, source, folder_day or end, exc)
        if row is not None and row[0] is not None:
            return row[0]
    return None


def last_covered_day(
    spec: ExperimentSpec, exposures: LogSource, events: LogSource
) -> dt.date | None:
    """The last day of the experiment's window with a valid exposure or event row, or None.

    Args:
        spec: the experiment (its id, variants and window).
        exposures: the exposure logs.
        events: the event logs (shared by every experiment).

    Returns:
        A day in ``spec.start .. spec.end``, or None when neither log has a valid row there (or a
        hive-style log has no folder there).

    Raises:
        InputError: a file cannot be read or lacks a contract column (the pipeline's message).
    """
    before_start = spec.start - dt.timedelta(days=1)
    with duckdb.connect() as conn:
        ensure_schema(conn)  # the session in UTC, and the is_blank macro
        last = _last_valid_day(
            conn,
            exposures,
            _LAST_VALID_EXPOSURE_DAY,
            {"experiment_id": spec.id, "variant_names": [v.name for v in spec.variants]},
            before_start,
            spec.end,
        )
        if last != spec.end:
            last = (
                _last_valid_day(
                    conn, events, _LAST_VALID_EVENT_DAY, {}, last or before_start, spec.end
                )
                or last
            )
    for source in (exposures, events):
        if last is not None and source.is_hive:
            delivered = [day for day in source.dates() if spec.start <= day <= spec.end]
            last = min(last, delivered[-1]) if delivered else None
    return last
