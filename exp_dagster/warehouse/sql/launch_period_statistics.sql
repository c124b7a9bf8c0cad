-- metric_statistics of a holdout's launch period (experiment, day, launch): per metric and variant,
-- the sums of each unit's value over the days from the launch through the day, segment
-- 'launch_period', value the launch's name. A unit's value since the launch is its cumulative
-- value on the day less its cumulative value on the day before the launch ($base_day; 0 for a
-- unit first exposed on or after the launch), which holds for values that add up over days
-- (reductions count and sum; for a ratio, numerator and denominator alike): one pass over the
-- day's units and the base day's, whatever the number of days since the launch. The covariate
-- is the unit's pre-period value, as in the overall statistics.
-- Parameters: $experiment_id, $day, $base_day, $launch, $period_metrics, $ratio_metrics,
-- $spec_version
INSERT INTO metric_statistics
WITH base AS (
    SELECT unit_id, metric, y, x
    FROM unit_metrics
    WHERE experiment_id = $experiment_id AND as_of_date = $base_day
      AND list_contains($period_metrics, metric)
),
period AS (
    SELECT
        u.metric, u.variant,
        u.y - coalesce(b.y, 0) AS y,
        CASE WHEN list_contains($ratio_metrics, u.metric) THEN u.x - coalesce(b.x, 0)
             ELSE u.x END AS x,
        u.covariate AS c, u.covariate_x AS cx
    FROM unit_metrics AS u
    LEFT JOIN base AS b ON b.unit_id = u.unit_id AND b.metric = u.metric
    WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day
      AND list_contains($period_metrics, u.metric)
      AND u.y IS NOT NULL
)
SELECT
    $experiment_id, $day, metric, variant,
    'launch_period',
    $launch,
    count(*),
    exact_sum(y), exact_sum(y * y), exact_sum(x), exact_sum(x * x), exact_sum(x * y),
    exact_sum(c), exact_sum(c * c), exact_sum(y * c),
    NULL,
    $spec_version,
    exact_sum(cx), exact_sum(cx * cx), exact_sum(x * c), exact_sum(x * cx), exact_sum(y * cx),
    exact_sum(c * cx)
FROM period
GROUP BY metric, variant
ORDER BY ALL;
