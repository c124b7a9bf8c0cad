-- metric_outliers(experiment, day): per mean metric (its value) and ratio metric (its numerator
-- and its denominator: the kinds' outlier_quantities), the units whose value lies beyond a
-- robust fence, from the logged values.
-- The fence is 10 × the 99.9th percentile of the non-zero absolute values, or 10 × the
-- 11th-largest absolute value when that is smaller (fewer than about 10,000 units), so that up
-- to ten extreme units cannot hide by raising the percentile. Zeros are left out so that a
-- sparse metric (revenue: most users buy nothing) still has a fence. Fewer than 20 non-zero
-- units: no fence. Units whose metric window has not elapsed (NULL values) are not analysed.
-- Input: temp table winsorize_caps(metric, level, cap) (empty when no metric is winsorised).
-- Parameters: $experiment_id, $day, $value_metrics, $numerator_metrics, $denominator_metrics
--             (the metrics whose kind fences that quantity), $spec_version
DELETE FROM metric_outliers WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO metric_outliers
WITH unit_values AS (
    SELECT metric, 'value' AS quantity, unit_id, y AS value
    FROM unit_metrics
    WHERE experiment_id = $experiment_id AND as_of_date = $day
      AND list_contains($value_metrics, metric)
      AND y IS NOT NULL
    UNION ALL
    SELECT metric, 'numerator', unit_id, y
    FROM unit_metrics
    WHERE experiment_id = $experiment_id AND as_of_date = $day
      AND list_contains($numerator_metrics, metric)
      AND y IS NOT NULL
    UNION ALL
    SELECT metric, 'denominator', unit_id, x
    FROM unit_metrics
    WHERE experiment_id = $experiment_id AND as_of_date = $day
      AND list_contains($denominator_metrics, metric)
      AND y IS NOT NULL
),
summary AS (
    SELECT
        metric,
        quantity,
        count(*) AS units,
        count(*) FILTER (WHERE value <> 0) AS nonzero_units,
        quantile_cont(value, 0.5) AS median,
        quantile_cont(abs(value), 0.999) FILTER (WHERE value <> 0) AS p999,
        max(abs(value), 11) AS largest
    FROM unit_values
    GROUP BY metric, quantity
),
fences AS (
    SELECT
        *,
        CASE
            WHEN nonzero_units >= 20 THEN 10 * CASE
                WHEN largest[11] < p999 THEN largest[11] ELSE p999
            END
        END AS fence
    FROM summary
),
beyond AS (
    SELECT
        f.metric,
        f.quantity,
        count(v.unit_id) AS outlier_units,
        list(v.value ORDER BY abs(v.value) DESC, v.unit_id) FILTER (WHERE v.unit_id IS NOT NULL) AS top_values,
        list(v.unit_id ORDER BY abs(v.value) DESC, v.unit_id) FILTER (WHERE v.unit_id IS NOT NULL) AS top_units
    FROM fences AS f
    LEFT JOIN unit_values AS v
        ON v.metric = f.metric AND v.quantity = f.quantity AND abs(v.value) > f.fence
    GROUP BY f.metric, f.quantity
),
capped AS (
    SELECT v.metric, count(*) FILTER (WHERE v.value > w.cap) AS capped_units
    FROM unit_values AS v
    JOIN winsorize_caps AS w ON w.metric = v.metric
    WHERE v.quantity = 'value'
    GROUP BY v.metric
)
SELECT
    $experiment_id,
    $day,
    f.metric,
    f.quantity,
    f.units,
    f.nonzero_units,
    f.median,
    f.p999,
    f.fence,
    b.outlier_units,
    coalesce(b.top_values[1:5], []),
    coalesce(b.top_units[1:5], []),
    w.level,
    w.cap,
    c.capped_units,
    $spec_version
FROM fences AS f
JOIN beyond AS b ON b.metric = f.metric AND b.quantity = f.quantity
LEFT JOIN winsorize_caps AS w ON w.metric = f.metric AND f.quantity = 'value'
LEFT JOIN capped AS c ON c.metric = f.metric AND f.quantity = 'value'
ORDER BY f.metric, f.quantity;
