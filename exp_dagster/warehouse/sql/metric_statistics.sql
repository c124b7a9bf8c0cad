-- metric_statistics(experiment, day): sufficient statistics per metric, variant and segment value.
-- Ratio metrics with a pre-period also get the cross-products CUPED for ratios needs.
-- Quantile metrics get theirs from quantiles.quantile_statistics. A winsorised metric's values are
-- capped first at its pooled cap (winsorize_cap.sql), in every segment alike.
-- One grouping set per segment of the spec beside 'all' (:func:`statistics._segment_terms` fills
-- the @...@ markers; segment k is column s_k, its name the parameter $segment_k): each unit's
-- products are computed once, not once per segment, and a unit without the segment's key counts
-- under '(missing)'. A windowed metric (window_days) counts only the units whose window has
-- elapsed (the others' values are NULL in unit_metrics).
-- Input: temp table winsorize_caps(metric, level, cap).
-- Parameters: $experiment_id, $day, $moment_metrics, $segment_1 .. $segment_k, $spec_version
DELETE FROM metric_statistics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO metric_statistics
WITH capped AS (
    SELECT
        u.metric, u.variant,
        @segment_columns@
        CASE WHEN w.cap IS NOT NULL AND u.y > w.cap THEN w.cap ELSE u.y END AS y,
        u.x, u.covariate AS c, u.covariate_x AS cx
    FROM unit_metrics AS u
    LEFT JOIN winsorize_caps AS w ON w.metric = u.metric
    WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day
      AND list_contains($moment_metrics, u.metric)
      AND u.y IS NOT NULL  -- NULL: a metric window that has not elapsed for the unit yet
)
SELECT
    $experiment_id, $day, metric, variant,
    @segment@,
    @segment_value@,
    count(*),
    exact_sum(y), exact_sum(y * y), exact_sum(x), exact_sum(x * x), exact_sum(x * y),
    exact_sum(c), exact_sum(c * c), exact_sum(y * c),
    NULL,
    $spec_version,
    -- ratio metrics with a pre-period: the cross-products of (y, x, c, cx) for CUPED
    exact_sum(cx), exact_sum(cx * cx), exact_sum(x * c), exact_sum(x * cx), exact_sum(y * cx),
    exact_sum(c * cx)
FROM capped
GROUP BY GROUPING SETS (@grouping_sets@)
ORDER BY ALL;
