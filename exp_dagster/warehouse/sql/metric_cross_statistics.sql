-- metric_cross_statistics(experiment, day): per variant, n, the sums and the sums of products of
-- every pair of the per-unit quantities (components) of the spec's oec and metric_tree metrics,
-- read straight from unit_metric_rows' list columns (one pass, no pivot of the view):
-- :func:`cross_statistics.build_cross_statistics` fills the @...@ markers, component k being
-- y[$index_k] or x[$index_k] (the position of its metric in the partition's unit_metric_names),
-- and pairs k <= l; the rows are unnested from one aggregate row per variant.
-- Parameters: $experiment_id, $day, $index_1 .. $index_K, $component_a, $component_b,
-- $spec_version
DELETE FROM metric_cross_statistics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO metric_cross_statistics
WITH units AS (
    SELECT variant, @component_values@
    FROM unit_metric_rows
    WHERE experiment_id = $experiment_id AND as_of_date = $day
),
arms AS (
    SELECT variant, count(*) AS n, @sums@
    FROM units
    GROUP BY variant
),
pairs AS (
    SELECT
        variant,
        unnest($component_a) AS component_a,
        unnest($component_b) AS component_b,
        n,
        unnest([@sum_a@]) AS sum_a,
        unnest([@sum_b@]) AS sum_b,
        unnest([@sum_ab@]) AS sum_ab
    FROM arms
)
SELECT
    $experiment_id, $day, variant, component_a, component_b, n, sum_a, sum_b, sum_ab,
    $spec_version
FROM pairs
ORDER BY variant, component_a, component_b;
