"""SQL over the model-evaluation logs: staging, and the per-request reductions.

The ranking, prediction and interleaving logs (docs/input.md) are read one day at a time
like the other logs, typed with ``TRY_CAST`` (a malformed value becomes NULL, which the asset's
pandera gate then reports with its row), and reduced in SQL to what the evaluation library takes:
one row per request and model with its labels in ranked order and the unit's segments, one row
per logged first slot for the off-policy estimate, one row per interleaved request with each
team's clicks, the two models' aligned predictions of the same outcomes for DeLong's paired test,
and the values of the scores and ``feature_*`` columns that drift compares. Python never sees
the item-level rows except the gate's sample.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb

from exp_dagster.warehouse.landing import LogSource, common_columns, stage_raw
from exp_dagster.warehouse.partitions import replace_partition
from exp_dagster.warehouse.statements import fetch_dicts

if TYPE_CHECKING:  # pandas is imported by duckdb when a query returns a frame
    import pandas as pd

# The typed logs of one day, one temporary table per kind. ``$is_hive``: a date= folder holds
# only that day's rows; otherwise the timestamp's UTC date decides.
TYPED_SQL: dict[str, str] = {
    "ranking": """
        CREATE OR REPLACE TEMP TABLE ranking_logs AS
        SELECT
            CAST(request_id AS VARCHAR)               AS request_id,
            CAST(unit_id AS VARCHAR)                  AS unit_id,
            CAST(variant AS VARCHAR)                  AS variant,
            CAST(item_id AS VARCHAR)                  AS item_id,
            TRY_CAST(position AS INTEGER)             AS position,
            TRY_CAST(score AS DOUBLE)                 AS score,
            TRY_CAST(propensity AS DOUBLE)            AS propensity,
            TRY_CAST(label AS DOUBLE)                 AS label,
            source_file,
            source_row
        FROM raw_model_logs
        WHERE $is_hive OR TRY_CAST(event_time AS TIMESTAMPTZ)::DATE = $day
    """,
    "predictions": """
        CREATE OR REPLACE TEMP TABLE predictions_logs AS
        SELECT
            CAST(unit_id AS VARCHAR)                  AS unit_id,
            CAST(model AS VARCHAR)                    AS model,
            TRY_CAST(score AS DOUBLE)                 AS score,
            TRY_CAST(label AS DOUBLE)                 AS label,
            source_file,
            source_row /* feature columns */
        FROM raw_model_logs
        WHERE $is_hive OR TRY_CAST(event_time AS TIMESTAMPTZ)::DATE = $day
    """,
    "interleaving": """
        CREATE OR REPLACE TEMP TABLE interleaving_logs AS
        SELECT
            CAST(request_id AS VARCHAR)               AS request_id,
            CAST(unit_id AS VARCHAR)                  AS unit_id,
            CAST(item_id AS VARCHAR)                  AS item_id,
            TRY_CAST(position AS INTEGER)             AS position,
            CAST(team AS VARCHAR)                     AS team,
            TRY_CAST(click AS DOUBLE)                 AS click,
            source_file,
            source_row
        FROM raw_model_logs
        WHERE $is_hive OR TRY_CAST(event_time AS TIMESTAMPTZ)::DATE = $day
    """,
}

# A prediction log's optional numeric feature columns (docs/input.md), typed like the
# rest; only names matching FEATURE_COLUMN reach raw_model_logs, so the regex is the contract's.
FEATURE_COLUMN = re.compile(r"^feature_[A-Za-z0-9_]{1,56}$")
FEATURE_COLUMNS_SQL = """,
            TRY_CAST(COLUMNS('^feature_[A-Za-z0-9_]+$') AS DOUBLE)"""

# Each unit's segments at its first exposure to the experiment up to the day (as unit_metrics
# carries them): the segment of every request and prediction of that unit. Units not exposed by
# then have no segment and count only in the overall ('all') rows.
UNIT_SEGMENTS_SQL = """
    CREATE OR REPLACE TEMP TABLE unit_segments AS
    SELECT unit_id, arg_min(segments, first_exposed_at) AS segments
    FROM exposures
    WHERE experiment_id = $experiment_id AND exposure_date <= $day
    GROUP BY unit_id
"""

# One row per (request, model): the labels in the model's ranked order and the requesting unit's
# segments. Only requests every model ranked are kept, so the comparison is paired on the same
# requests.
RANKING_REQUESTS_SQL = """
    WITH per_model AS (
        SELECT request_id, variant, any_value(unit_id) AS unit_id,
               list(label ORDER BY position) AS labels
        FROM ranking_logs
        GROUP BY request_id, variant
    ),
    complete AS (
        SELECT request_id FROM per_model GROUP BY request_id
        HAVING count(*) = $n_models
    )
    SELECT p.request_id, p.variant, p.unit_id, p.labels, s.segments
    FROM per_model AS p JOIN complete USING (request_id)
    LEFT JOIN unit_segments AS s USING (unit_id)
    ORDER BY p.request_id, p.variant
"""

# The logging policy's first slot per request, and the candidate's first item in the same request:
# the candidate "takes the logged action" when both are the same item. The control score of the
# candidate's item feeds the reward model of the doubly robust estimate.
OFF_POLICY_SQL = """
    WITH logged AS (
        SELECT request_id, unit_id, item_id, label, propensity, score
        FROM ranking_logs
        WHERE variant = $logging AND position = 1 AND propensity IS NOT NULL
    ),
    target AS (
        SELECT request_id, item_id FROM ranking_logs WHERE variant = $target AND position = 1
    ),
    target_score AS (
        SELECT t.request_id, c.score
        FROM target AS t
        JOIN ranking_logs AS c
          ON c.request_id = t.request_id AND c.item_id = t.item_id AND c.variant = $logging
    )
    SELECT
        l.request_id,
        l.unit_id,
        CASE WHEN l.label > 0 THEN 1.0 ELSE 0.0 END   AS reward,
        l.propensity                                   AS logging_propensity,
        CASE WHEN l.item_id = t.item_id THEN 1.0 ELSE 0.0 END AS target_probability,
        l.score                                        AS logged_score,
        s.score                                        AS target_item_score
    FROM logged AS l
    JOIN target AS t USING (request_id)
    JOIN target_score AS s USING (request_id)
    ORDER BY l.request_id
"""

# Clicks credited to each team per interleaved request.
INTERLEAVING_SQL = """
    SELECT request_id, any_value(unit_id) AS unit_id,
           coalesce(sum(click) FILTER (WHERE team = $baseline), 0) AS baseline_clicks,
           coalesce(sum(click) FILTER (WHERE team = $candidate), 0) AS candidate_clicks
    FROM interleaving_logs
    GROUP BY request_id
    ORDER BY request_id
"""

PREDICTIONS_SQL = """
    SELECT model, list(score ORDER BY unit_id, source_file, source_row) AS scores,
           list(label ORDER BY unit_id, source_file, source_row) AS labels,
           list(s.segments ORDER BY unit_id, source_file, source_row) AS segments
    FROM predictions_logs LEFT JOIN unit_segments AS s USING (unit_id)
    GROUP BY model
    ORDER BY model
"""

# The baseline's and the candidate's predictions of the same outcome, for DeLong's paired test:
# a unit's k-th prediction row of one model (in file order) is paired with its k-th row of the
# other. Pairs whose labels disagree are not the same outcome and are dropped (and counted).
PAIRED_PREDICTIONS_SQL = """
    WITH numbered AS (
        SELECT unit_id, model, score, label,
               row_number() OVER (PARTITION BY unit_id, model ORDER BY source_file, source_row)
                   AS occurrence
        FROM predictions_logs
        WHERE model IN ($baseline, $candidate)
    ),
    pairs AS (
        SELECT b.unit_id, b.occurrence, b.score AS baseline_score, c.score AS candidate_score,
               b.label, b.label IS NOT DISTINCT FROM c.label AS same_label
        FROM numbered AS b
        JOIN numbered AS c
          ON c.unit_id = b.unit_id AND c.occurrence = b.occurrence AND c.model = $candidate
        WHERE b.model = $baseline
    )
    SELECT
        list(baseline_score ORDER BY unit_id, occurrence) FILTER (WHERE same_label)
            AS baseline_scores,
        list(candidate_score ORDER BY unit_id, occurrence) FILTER (WHERE same_label)
            AS candidate_scores,
        list(label ORDER BY unit_id, occurrence) FILTER (WHERE same_label) AS labels,
        list(s.segments ORDER BY unit_id, occurrence) FILTER (WHERE same_label) AS segments,
        count(*) FILTER (WHERE NOT same_label) AS label_mismatches
    FROM pairs LEFT JOIN unit_segments AS s USING (unit_id)
"""


def stage_model_logs(
    conn: duckdb.DuckDBPyConnection, source: LogSource, day: dt.date
) -> tuple[str, int]:
    """Stage and type one day of a model log; returns the typed table's name and its rows.

    A prediction log's ``feature_*`` columns present in every file of the day are kept, as
    doubles (a malformed value becomes NULL).
    """
    features = (
        [c for c in common_columns(conn, source, day) if FEATURE_COLUMN.match(c)]
        if source.kind == "predictions"
        else []
    )
    is_hive = stage_raw(conn, source, day, "raw_model_logs", extra_columns=features)
    typed = TYPED_SQL[source.kind].replace(
        "/* feature columns */", FEATURE_COLUMNS_SQL if features else ""
    )
    conn.execute(typed, {"is_hive": is_hive, "day": day})
    table = f"{source.kind}_logs"
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return table, int(row[0]) if row else 0


def typed_sample(
    conn: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], limit: int
) -> pd.DataFrame:
    """The typed rows (a seeded sample above ``limit``) of the columns a gate checks."""
    names = ", ".join(f'"{c}"' for c in (*columns, "source_file", "source_row"))
    return conn.execute(
        f"SELECT {names} FROM {table} USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)"
    ).fetchdf()


def stage_unit_segments(conn: duckdb.DuckDBPyConnection, experiment_id: str, day: dt.date) -> None:
    """Each exposed unit's segments up to ``day``: run before the per-request reductions."""
    conn.execute(UNIT_SEGMENTS_SQL, {"experiment_id": experiment_id, "day": day})


def ranking_requests(conn: duckdb.DuckDBPyConnection, n_models: int) -> list[dict[str, Any]]:
    return fetch_dicts(conn, RANKING_REQUESTS_SQL, {"n_models": n_models})


def off_policy_rows(
    conn: duckdb.DuckDBPyConnection, logging: str, target: str
) -> list[dict[str, Any]]:
    return fetch_dicts(conn, OFF_POLICY_SQL, {"logging": logging, "target": target})


def interleaving_requests(
    conn: duckdb.DuckDBPyConnection, baseline: str, candidate: str
) -> list[dict[str, Any]]:
    return fetch_dicts(conn, INTERLEAVING_SQL, {"baseline": baseline, "candidate": candidate})


def prediction_scores(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return fetch_dicts(conn, PREDICTIONS_SQL)


def paired_predictions(
    conn: duckdb.DuckDBPyConnection, baseline: str, candidate: str
) -> dict[str, Any]:
    """The two models' scores of the same outcomes, aligned (see ``PAIRED_PREDICTIONS_SQL``)."""
    rows = fetch_dicts(conn, PAIRED_PREDICTIONS_SQL, {"baseline": baseline, "candidate": candidate})
    return rows[0]


def distributions(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, list[float]]]:
    """Per model, the finite values of ``score`` and of each ``feature_*`` column of the staged
    prediction logs: what drift compares."""
    columns = [
        str(row[0])
        for row in conn.execute("DESCRIBE predictions_logs").fetchall()
        if row[0] == "score" or FEATURE_COLUMN.match(str(row[0]))
    ]
    # Names are "score" or matched FEATURE_COLUMN: safe to quote into the statement.
    lists = ", ".join(
        f'coalesce(list("{c}") FILTER (WHERE isfinite("{c}")), []) AS "{c}"' for c in columns
    )
    found: dict[str, dict[str, list[float]]] = {}
    for row in fetch_dicts(conn, f"SELECT model, {lists} FROM predictions_logs GROUP BY model"):
        model = row.pop("model")
        found[model] = {name: list(values) for name, values in row.items()}
    return found


def reference_distributions(
    conn: duckdb.DuckDBPyConnection, source: LogSource, days: Sequence[dt.date]
) -> dict[str, dict[str, list[float]]]:
    """:func:`distributions` pooled over ``days`` (the pre-period): the drift reference. Stages
    each day over the current ``predictions_logs``: read the day's values first."""
    found: dict[str, dict[str, list[float]]] = {}
    for day in days:
        stage_model_logs(conn, source, day)
        for model, columns in distributions(conn).items():
            for name, values in columns.items():
                found.setdefault(model, {}).setdefault(name, []).extend(values)
    return found


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    experiment_id: str,
    day: dt.date,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Replace one experiment-day of ``offline_evaluation`` or ``offline_online_parity``."""
    if table not in {"offline_evaluation", "offline_online_parity"}:
        raise ValueError(f"{table} is not an evaluation table")
    replace_partition(conn, table, experiment_id, day, rows)


def read_rows(
    conn: duckdb.DuckDBPyConnection, table: str, experiment_id: str, day: dt.date
) -> list[dict[str, Any]]:
    """One experiment-day of ``offline_evaluation`` or ``offline_online_parity``."""
    if table not in {"offline_evaluation", "offline_online_parity"}:
        raise ValueError(f"{table} is not an evaluation table")
    return fetch_dicts(
        conn,
        f"SELECT * FROM {table} WHERE experiment_id = ? AND as_of_date = ? ORDER BY ALL",
        [experiment_id, day],
    )
