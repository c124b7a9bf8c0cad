-- unit_metrics(experiment, day): per unit, each metric's value cumulated from the unit's first
-- exposure (its timestamp; the day's midnight with metric_window_start exposure_day) through the
-- day (or the end date, if earlier), with its pre-period covariate.
-- Units seen under two variants on different days (cross-day crossovers) are left out; the asset
-- reports how many.
-- Stored one row per unit in unit_metric_rows, the metrics' values as lists in the order of
-- $metric_names (the spec's metric names, sorted; recorded in unit_metric_names); the view
-- unit_metrics unnests them to one row per unit and metric. A row per unit writes the unit's id,
-- variant and segments once rather than once per metric: less than half the cost of the write.
-- With $extend, the rows of day - 1 plus the day's facts alone, computed only for the units with
-- facts on the day or first exposed on it, the others' rows copied (a day's work; valid only when
-- day - 1's rows were built from the inputs as they are now: build_unit_metrics checks the
-- lineage digest and that day - 1's crossovers were recorded in unit_crossovers); without,
-- every day since each unit's first exposure. Sums are added as DECIMAL(38, 6) either way, so
-- both give the same rows.
-- The @...@ markers are filled in per experiment by build_unit_metrics (_unit_metric_terms): one
-- column per event ($event_0, $event_1, ...: n_0, t_0, ...) and one list item per metric.
-- A metric with window_days [d0, d1] counts only the unit's events in
-- [anchor + d0 days, anchor + (d1 + 1) days), anchor = its first exposure timestamp (its day's
-- midnight with metric_window_start exposure_day), and only once that window has elapsed by the
-- end of $through: until then its value is NULL (the unit is not analysed for that metric).
-- The value is computed once, when the window has elapsed (window_spans: the units whose window
-- may have elapsed since day - 1 with $extend, every unit without), from the whole days inside
-- the window (event_facts) and the timestamped events of its first and last day (event_times);
-- with $extend the rows then keep it. Windows are numbered in the temp table metric_windows
-- (window_index, first_day, last_day); wn_k_j and wt_k_j are a unit's count and DECIMAL total
-- of event j in window k.
-- The first statement builds assigned_units from every exposure through the day; with $extend,
-- build_unit_metrics builds the same table from day - 1 instead (assigned_units_extended.sql).
-- Parameters: $experiment_id, $day, $start, $through, $extend, $events, $metric_names,
--             $spec_version, $event_0 ..., $from_timestamp, $window_events, $window_units_from,
--             $window_units_through, $window_facts_from (the first day of facts a window of
--             those units can hold)
CREATE OR REPLACE TEMP TABLE assigned_units AS
SELECT
    unit_id,
    min(exposure_date) AS first_exposure_date,
    min(variant) AS variant,
    -- min <> max rather than count(DISTINCT variant): the same answer, a third of the cost
    min(variant) <> max(variant) AS crossed_over,
    arg_min(segments, first_exposed_at) AS segments
FROM exposures
WHERE experiment_id = $experiment_id AND exposure_date BETWEEN $start AND $day
GROUP BY unit_id;

DELETE FROM unit_crossovers WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO unit_crossovers
SELECT $experiment_id, $day, unit_id, first_exposure_date, variant, segments
FROM assigned_units
WHERE crossed_over;

DELETE FROM unit_metric_rows WHERE experiment_id = $experiment_id AND as_of_date = $day;

DELETE FROM unit_metric_names WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO unit_metric_names VALUES ($experiment_id, $day, $metric_names);

INSERT INTO unit_metric_rows
WITH units AS (
    SELECT * FROM assigned_units WHERE NOT crossed_over
),
post AS (
    -- per unit and event, the facts not yet in the previous rows: the day's with $extend, else
    -- every day's
    SELECT f.unit_id, @post_columns@
    FROM exposure_facts($experiment_id) AS f
    JOIN units AS u ON u.unit_id = f.unit_id
    WHERE f.event_date BETWEEN (CASE WHEN $extend THEN $day ELSE u.first_exposure_date END)
                           AND $through
      AND (NOT f.pre_exposure OR f.event_date = u.first_exposure_date)
      AND list_contains($events, f.event)
    GROUP BY f.unit_id
),
window_spans AS (
    -- per unit and metric window that has elapsed by the end of $through: its bounds
    SELECT
        a.unit_id,
        w.window_index,
        a.anchor + to_days(w.first_day) AS window_start,
        a.anchor + to_days(w.last_day + 1) AS window_end
    FROM (
        SELECT
            u.unit_id,
            CASE WHEN $from_timestamp THEN e.first_exposed_at
                 ELSE CAST(u.first_exposure_date AS TIMESTAMP) END AS anchor
        FROM units AS u
        JOIN exposures AS e
            ON e.experiment_id = $experiment_id AND e.exposure_date = u.first_exposure_date
           AND e.unit_id = u.unit_id
        WHERE u.first_exposure_date BETWEEN $window_units_from AND $window_units_through
    ) AS a
    CROSS JOIN metric_windows AS w
    WHERE a.anchor + to_days(w.last_day + 1) <= CAST($through + 1 AS TIMESTAMP)
),
window_facts AS (
    -- the window's whole days from event_facts, its first and last day's events by timestamp
    SELECT s.unit_id, s.window_index, f.event, f.n, CAST(f.total AS DECIMAL(38, 6)) AS total
    FROM window_spans AS s
    JOIN event_facts AS f ON f.unit_id = s.unit_id
    WHERE f.event_date BETWEEN $window_facts_from AND $through
      AND f.event_date > CAST(s.window_start AS DATE)
      AND f.event_date < CAST(s.window_end AS DATE)
      AND list_contains($window_events, f.event)
    UNION ALL
    SELECT s.unit_id, s.window_index, t.event, 1, CAST(t.value AS DECIMAL(38, 6))
    FROM window_spans AS s
    JOIN event_times AS t ON t.unit_id = s.unit_id
    WHERE t.event_date BETWEEN $window_facts_from AND $through
      AND t.event_date IN (CAST(s.window_start AS DATE), CAST(s.window_end AS DATE))
      AND t.event_at >= s.window_start AND t.event_at < s.window_end
      AND list_contains($window_events, t.event)
),
windowed AS (
    SELECT s.unit_id, @window_columns@
    FROM window_spans AS s
    LEFT JOIN window_facts AS f ON f.unit_id = s.unit_id AND f.window_index = s.window_index
    GROUP BY s.unit_id
),
touched AS (
    -- the units whose rows are computed: with $extend, those with facts on the day, first
    -- exposed on it or whose metric window may have elapsed on it (the others' rows are the
    -- previous day's, copied below); without, all
    SELECT unit_id FROM units WHERE NOT $extend OR first_exposure_date = $day
    UNION
    SELECT unit_id FROM post WHERE $extend
    UNION
    SELECT unit_id FROM windowed WHERE $extend
),
previous AS (
    SELECT r.unit_id, r.y, r.x, r.covariate, r.covariate_x
    FROM unit_metric_rows AS r
    SEMI JOIN touched AS t ON t.unit_id = r.unit_id
    WHERE $extend AND r.experiment_id = $experiment_id AND r.as_of_date = $day - 1
),
pre AS (
    -- covariates of the units without previous rows (with $extend: those first exposed today)
    SELECT c.unit_id, @pre_columns@
    FROM pre_period_covariates AS c
    JOIN units AS u ON u.unit_id = c.unit_id AND u.first_exposure_date = c.exposure_date
    WHERE c.experiment_id = $experiment_id AND (NOT $extend OR c.exposure_date = $day)
      AND list_contains($events, c.event)
    GROUP BY c.unit_id
)
SELECT
    $experiment_id,
    $day,
    u.unit_id,
    u.variant,
    u.first_exposure_date,
    u.segments,
    @y@,
    @x@,
    @covariate@,
    @covariate_x@,
    $spec_version
FROM units AS u
SEMI JOIN touched AS t ON t.unit_id = u.unit_id
LEFT JOIN previous AS p ON p.unit_id = u.unit_id
LEFT JOIN post ON post.unit_id = u.unit_id
LEFT JOIN pre ON pre.unit_id = u.unit_id
LEFT JOIN windowed AS w ON w.unit_id = u.unit_id
UNION ALL
-- With $extend, the units without facts on the day keep their rows of day - 1 as they are (the
-- rows computed above would equal them: y + 0, x + 0 and the same covariates), except units
-- that crossed over on the day.
SELECT
    $experiment_id,
    $day,
    p.unit_id,
    p.variant,
    p.first_exposure_date,
    p.segments,
    p.y,
    p.x,
    p.covariate,
    p.covariate_x,
    $spec_version
FROM unit_metric_rows AS p
WHERE $extend AND p.experiment_id = $experiment_id AND p.as_of_date = $day - 1
  -- NOT IN rather than ANTI JOIN: DuckDB then hashes the day's few touched units and probes
  -- with the copied rows, instead of hashing every copied row with its lists (1.8 s a day at a
  -- million units). unit_id is never NULL in either.
  AND p.unit_id NOT IN (SELECT unit_id FROM touched)
  AND p.unit_id NOT IN (SELECT unit_id FROM assigned_units WHERE crossed_over);
-- (no ORDER BY: every reader sums exactly or sorts what it reads, and sorting the rows costs
-- about a second a day at a million units)
