-- metric_statistics(experiment, day): sufficient statistics per metric, variant and segment value.
-- Ratio metrics with a pre-period also get the cross-products CUPED for ratios needs.
-- Quantile metrics get theirs from quantile_statistics.sql. Parameters: $experiment_id, $day,
-- $moment_metrics, $spec_version
DELETE FROM metric_statistics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO metric_statistics
WITH unit_rows AS (
    SELECT metric, variant, 'all' AS segment, 'all' AS segment_value, y, x, covariate AS c,
        covariate_x AS cx
    FROM unit_metrics
    WHERE experiment_id = $experiment_id AND as_of_date = $day AND list_contains($moment_metrics, metric)
    UNION ALL
    SELECT metric, variant, s.entry.key, coalesce(s.entry.value, '(missing)'), y, x, covariate,
        covariate_x
    FROM unit_metrics, unnest(map_entries(segments)) AS s(entry)
    WHERE experiment_id = $experiment_id AND as_of_date = $day AND list_contains($moment_metrics, metric)
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
