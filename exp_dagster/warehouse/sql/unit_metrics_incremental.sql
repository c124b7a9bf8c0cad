-- unit_metrics_incremental(experiment, day): unit_metrics(day) from unit_metrics(day - 1) and the
-- day's facts alone: the same rows unit_metrics.sql computes from every day since each unit's
-- first exposure, at the cost of one day. Valid only when day - 1's rows were built from the
-- inputs as they are now (build_unit_metrics checks the lineage digest and that every unit
-- exposed before the day has its previous rows). Sums are added as DECIMAL(38, 6), exactly as
-- exact_sum adds the days in unit_metrics.sql.
-- Input: temp tables assigned_units (unit_metrics.sql's first statement), metric_definitions.
-- Parameters: $experiment_id, $day, $through, $has_pre_period, $spec_version
DELETE FROM unit_metrics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO unit_metrics
WITH units AS (
    SELECT * FROM assigned_units WHERE n_variants = 1
),
today AS (
    SELECT f.unit_id, f.event, f.n, f.total
    FROM event_facts AS f
    SEMI JOIN units AS u ON u.unit_id = f.unit_id
    WHERE f.event_date = $day AND $day <= $through
      AND f.event IN (
          SELECT event FROM metric_definitions
          UNION
          SELECT denominator_event FROM metric_definitions WHERE denominator_event IS NOT NULL
      )
),
previous AS (
    SELECT unit_id, metric, y, x, covariate, covariate_x
    FROM unit_metrics
    WHERE experiment_id = $experiment_id AND as_of_date = $day - 1
),
pre AS (
    SELECT c.unit_id, c.event, c.n, c.total
    FROM pre_period_covariates AS c
    SEMI JOIN units AS u ON u.unit_id = c.unit_id AND u.first_exposure_date = $day
    WHERE c.experiment_id = $experiment_id AND c.exposure_date = $day
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
            THEN greatest(coalesce(p.y, 0), (coalesce(t_y.n, 0) > 0)::DOUBLE)
        WHEN d.kind = 'quantile' OR d.aggregate = 'count' THEN coalesce(p.y, 0) + coalesce(t_y.n, 0)
        ELSE (CAST(coalesce(p.y, 0) AS DECIMAL(38, 6))
              + CAST(coalesce(t_y.total, 0) AS DECIMAL(38, 6)))::DOUBLE
    END AS y,
    CASE
        WHEN d.kind = 'ratio'
            THEN (CAST(coalesce(p.x, 0) AS DECIMAL(38, 6))
                  + CAST(coalesce(t_x.total, 0) AS DECIMAL(38, 6)))::DOUBLE
        ELSE 1
    END AS x,
    CASE
        WHEN u.first_exposure_date < $day THEN p.covariate
        WHEN NOT $has_pre_period OR d.kind = 'quantile' THEN NULL
        WHEN d.kind = 'proportion' THEN (coalesce(pre_y.n, 0) > 0)::DOUBLE
        WHEN d.aggregate = 'count' THEN coalesce(pre_y.n, 0)
        ELSE coalesce(pre_y.total, 0)
    END AS covariate,
    CASE
        WHEN u.first_exposure_date < $day THEN p.covariate_x
        WHEN $has_pre_period AND d.kind = 'ratio' THEN coalesce(pre_x.total, 0)
    END AS covariate_x,
    $spec_version
FROM units AS u
CROSS JOIN metric_definitions AS d
LEFT JOIN previous AS p ON p.unit_id = u.unit_id AND p.metric = d.metric
LEFT JOIN today AS t_y ON t_y.unit_id = u.unit_id AND t_y.event = d.event
LEFT JOIN today AS t_x ON t_x.unit_id = u.unit_id AND t_x.event = d.denominator_event
LEFT JOIN pre AS pre_y ON pre_y.unit_id = u.unit_id AND pre_y.event = d.event
LEFT JOIN pre AS pre_x ON pre_x.unit_id = u.unit_id AND pre_x.event = d.denominator_event
ORDER BY d.metric, u.unit_id;
