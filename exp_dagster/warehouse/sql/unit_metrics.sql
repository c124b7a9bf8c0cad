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
-- The first statement builds assigned_units from every exposure through the day; with $extend,
-- build_unit_metrics builds the same table from day - 1 instead (assigned_units_extended.sql).
-- Parameters: $experiment_id, $day, $start, $through, $extend, $events, $metric_names,
--             $spec_version, $event_0 ...
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
touched AS (
    -- the units whose rows are computed: with $extend, those with facts on the day or first
    -- exposed on it (the others' rows are the previous day's, copied below); without, all
    SELECT unit_id FROM units WHERE NOT $extend OR first_exposure_date = $day
    UNION
    SELECT unit_id FROM post WHERE $extend
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
ANTI JOIN touched AS t ON t.unit_id = p.unit_id
ANTI JOIN (SELECT unit_id FROM assigned_units WHERE crossed_over) AS c ON c.unit_id = p.unit_id
WHERE $extend AND p.experiment_id = $experiment_id AND p.as_of_date = $day - 1;
-- (no ORDER BY: every reader sums exactly or sorts what it reads, and sorting the rows costs
-- about a second a day at a million units)
