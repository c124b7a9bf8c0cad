-- unit_metrics(experiment, day): per unit and metric, the value cumulated from the unit's first
-- exposure day through the day (or the end date, if earlier), with its pre-period covariate. Units
-- seen under two variants on different days (cross-day crossovers) are left out; the asset
-- reports how many.
-- With $extend, the rows of day - 1 plus the day's facts alone (a day's work; valid only when
-- day - 1's rows were built from the inputs as they are now: build_unit_metrics checks the
-- lineage digest and that every unit exposed before the day has its previous rows); without,
-- every day since each unit's first exposure. Sums are added as DECIMAL(38, 6) either way, so
-- both give the same rows.
-- Input: temp table metric_definitions(metric, kind, event, aggregate, denominator_event).
-- Parameters: $experiment_id, $day, $start, $through, $extend, $has_pre_period, $spec_version
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

DELETE FROM unit_metrics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO unit_metrics
WITH units AS (
    SELECT * FROM assigned_units WHERE NOT crossed_over
),
post AS (
    -- the facts not yet in the previous rows: the day's with $extend, else every day's
    SELECT
        f.unit_id, f.event, sum(f.n) AS n, sum(CAST(f.total AS DECIMAL(38, 6))) AS total
    FROM event_facts AS f
    JOIN units AS u ON u.unit_id = f.unit_id
    WHERE f.event_date BETWEEN (CASE WHEN $extend THEN $day ELSE u.first_exposure_date END)
                           AND $through
      AND f.event IN (
          SELECT event FROM metric_definitions
          UNION
          SELECT denominator_event FROM metric_definitions WHERE denominator_event IS NOT NULL
      )
    GROUP BY f.unit_id, f.event
),
previous AS (
    SELECT unit_id, metric, y, x, covariate, covariate_x
    FROM unit_metrics
    WHERE $extend AND experiment_id = $experiment_id AND as_of_date = $day - 1
),
pre AS (
    -- covariates of the units without previous rows (with $extend: those first exposed today)
    SELECT c.unit_id, c.event, c.n, c.total
    FROM pre_period_covariates AS c
    JOIN units AS u ON u.unit_id = c.unit_id AND u.first_exposure_date = c.exposure_date
    WHERE c.experiment_id = $experiment_id AND (NOT $extend OR c.exposure_date = $day)
)
SELECT
    $experiment_id,
    $day,
    u.unit_id,
    u.variant,
    u.first_exposure_date,
    u.segments,
    d.metric,
    CASE
        WHEN d.kind = 'proportion'
            THEN greatest(coalesce(p.y, 0), (coalesce(post_y.n, 0) > 0)::DOUBLE)
        WHEN d.kind = 'quantile' OR d.aggregate = 'count'
            THEN coalesce(p.y, 0) + coalesce(post_y.n, 0)
        ELSE (CAST(coalesce(p.y, 0) AS DECIMAL(38, 6)) + coalesce(post_y.total, 0))::DOUBLE
    END AS y,
    CASE
        WHEN d.kind = 'ratio'
            THEN (CAST(coalesce(p.x, 0) AS DECIMAL(38, 6)) + coalesce(post_x.total, 0))::DOUBLE
        ELSE 1
    END AS x,
    CASE
        WHEN $extend AND u.first_exposure_date < $day THEN p.covariate
        WHEN NOT $has_pre_period OR d.kind = 'quantile' THEN NULL
        WHEN d.kind = 'proportion' THEN (coalesce(pre_y.n, 0) > 0)::DOUBLE
        WHEN d.aggregate = 'count' THEN coalesce(pre_y.n, 0)
        ELSE coalesce(pre_y.total, 0)
    END AS covariate,
    CASE
        WHEN $extend AND u.first_exposure_date < $day THEN p.covariate_x
        WHEN $has_pre_period AND d.kind = 'ratio' THEN coalesce(pre_x.total, 0)
    END AS covariate_x,
    $spec_version
FROM units AS u
CROSS JOIN metric_definitions AS d
LEFT JOIN previous AS p ON p.unit_id = u.unit_id AND p.metric = d.metric
LEFT JOIN post AS post_y ON post_y.unit_id = u.unit_id AND post_y.event = d.event
LEFT JOIN post AS post_x ON post_x.unit_id = u.unit_id AND post_x.event = d.denominator_event
LEFT JOIN pre AS pre_y ON pre_y.unit_id = u.unit_id AND pre_y.event = d.event
LEFT JOIN pre AS pre_x ON pre_x.unit_id = u.unit_id AND pre_x.event = d.denominator_event;
-- (no ORDER BY: every reader sums exactly or sorts what it reads, and sorting 4M rows per day
-- at a million units costs a second)
