-- unit_metrics(experiment, day): per unit and metric, the value cumulated from the unit's first
-- exposure day through the day (or the end date, if earlier), with its pre-period covariate. Units seen under two variants on
-- different days (cross-day crossovers) are left out; the asset reports how many.
-- Input: temp table metric_definitions(metric, kind, event, aggregate, denominator_event).
-- Parameters: $experiment_id, $day, $start, $has_pre_period, $spec_version
CREATE OR REPLACE TEMP TABLE assigned_units AS
SELECT
    unit_id,
    min(exposure_date) AS first_exposure_date,
    min(variant) AS variant,
    count(DISTINCT variant) AS n_variants,
    arg_min(segments, first_exposed_at) AS segments
FROM exposures
WHERE experiment_id = $experiment_id AND exposure_date BETWEEN $start AND $day
GROUP BY unit_id;

DELETE FROM unit_metrics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO unit_metrics
WITH units AS (
    SELECT * FROM assigned_units WHERE n_variants = 1
),
post AS (
    SELECT f.unit_id, f.event, sum(f.n) AS n, exact_sum(f.total) AS total
    FROM event_facts AS f
    JOIN units AS u ON u.unit_id = f.unit_id
    WHERE f.event_date BETWEEN u.first_exposure_date AND $through
      AND f.event IN (
          SELECT event FROM metric_definitions
          UNION
          SELECT denominator_event FROM metric_definitions WHERE denominator_event IS NOT NULL
      )
    GROUP BY f.unit_id, f.event
),
pre AS (
    SELECT c.unit_id, c.event, c.n, c.total
    FROM pre_period_covariates AS c
    JOIN units AS u ON u.unit_id = c.unit_id AND u.first_exposure_date = c.exposure_date
    WHERE c.experiment_id = $experiment_id
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
        WHEN d.kind = 'proportion' THEN (coalesce(post_y.n, 0) > 0)::DOUBLE
        WHEN d.kind = 'quantile' OR d.aggregate = 'count' THEN coalesce(post_y.n, 0)
        ELSE coalesce(post_y.total, 0)
    END AS y,
    CASE WHEN d.kind = 'ratio' THEN coalesce(post_x.total, 0) ELSE 1 END AS x,
    CASE
        WHEN NOT $has_pre_period OR d.kind = 'quantile' THEN NULL
        WHEN d.kind = 'proportion' THEN (coalesce(pre_y.n, 0) > 0)::DOUBLE
        WHEN d.aggregate = 'count' THEN coalesce(pre_y.n, 0)
        ELSE coalesce(pre_y.total, 0)
    END AS covariate,
    CASE WHEN $has_pre_period AND d.kind = 'ratio' THEN coalesce(pre_x.total, 0) END AS covariate_x,
    $spec_version
FROM units AS u
CROSS JOIN metric_definitions AS d
LEFT JOIN post AS post_y ON post_y.unit_id = u.unit_id AND post_y.event = d.event
LEFT JOIN post AS post_x ON post_x.unit_id = u.unit_id AND post_x.event = d.denominator_event
LEFT JOIN pre AS pre_y ON pre_y.unit_id = u.unit_id AND pre_y.event = d.event
LEFT JOIN pre AS pre_x ON pre_x.unit_id = u.unit_id AND pre_x.event = d.denominator_event
ORDER BY d.metric, u.unit_id;
