-- metric_statistics(experiment, day): sufficient statistics per metric, variant and segment value.
-- Ratio metrics with a pre-period also get the cross-products CUPED for ratios needs.
-- Quantile metrics get theirs from quantile_statistics.sql. A winsorised metric's values are
-- capped first at its pooled cap (winsorize_cap.sql), in every segment alike.
-- Input: temp table winsorize_caps(metric, level, cap).
-- Parameters: $experiment_id, $day, $moment_metrics, $segment_names, $spec_version
DELETE FROM metric_statistics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO metric_statistics
WITH capped AS (
    SELECT
        u.metric, u.variant, u.segments,
        CASE WHEN w.cap IS NOT NULL AND u.y > w.cap THEN w.cap ELSE u.y END AS y,
        u.x, u.covariate, u.covariate_x
    FROM unit_metrics AS u
    LEFT JOIN winsorize_caps AS w ON w.metric = u.metric
    WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day
      AND list_contains($moment_metrics, u.metric)
),
unit_rows AS (
    SELECT metric, variant, 'all' AS segment, 'all' AS segment_value, y, x, covariate AS c,
        covariate_x AS cx
    FROM capped
    UNION ALL
    -- one row per segment of the spec (a lookup by key: unnesting the map's entries is two
    -- orders of magnitude slower)
    SELECT metric, variant, s.name, coalesce(segments[s.name], '(missing)'), y, x, covariate,
        covariate_x
    FROM capped CROSS JOIN (SELECT unnest($segment_names::VARCHAR[]) AS name) AS s
)
SELECT
    $experiment_id, $day, metric, variant, segment, segment_value,
    count(*),
    exact_sum(y), exact_sum(y * y), exact_sum(x), exact_sum(x * x), exact_sum(x * y),
    exact_sum(c), exact_sum(c * c), exact_sum(y * c),
    NULL,
    $spec_version,
    -- ratio metrics with a pre-period: the cross-products of (y, x, c, cx) for CUPED
    exact_sum(cx), exact_sum(cx * cx), exact_sum(x * c), exact_sum(x * cx), exact_sum(y * cx),
    exact_sum(c * cx)
FROM unit_rows
GROUP BY metric, variant, segment, segment_value
ORDER BY metric, variant, segment, segment_value;
