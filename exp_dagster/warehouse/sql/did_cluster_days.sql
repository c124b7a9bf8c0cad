-- did_cluster_days(experiment, day): the day's cell of the difference-in-differences panel, per
-- metric of the spec's did block and cluster (the value of the did.cluster segment on each unit's
-- exposure row of the day): the units exposed that day (n), and the exact sums of their values of
-- the metric that day and of their squares. A unit's daily value is its metric's reduction of the
-- day's event_facts (any: 1 when the event occurred; count: its rows; sum: its values' total),
-- 0 without events. Only the day's exposures and event facts are read: a day adds its own rows.
-- Units whose exposure row has no cluster value belong to no cluster: they are counted, not lost,
-- in one cell per metric with cluster and treated NULL, which the panel leaves out.
-- Parameters: $experiment_id, $day, $cluster, $treated, $metric_names, $reductions, $events,
-- $spec_version
DELETE FROM did_cluster_days WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO did_cluster_days
WITH units AS (
    SELECT unit_id, segments[$cluster] AS cluster
    FROM exposures
    WHERE experiment_id = $experiment_id
      AND exposure_date = $day
),
definitions AS (
    SELECT
        unnest($metric_names) AS metric,
        unnest($reductions) AS reduction,
        unnest($events) AS event
),
facts AS (
    SELECT unit_id, event, n, total
    FROM event_facts
    WHERE event_date = $day AND list_contains($events, event)
),
unit_values AS (
    SELECT
        d.metric,
        u.cluster,
        CASE d.reduction
            WHEN 'any' THEN (coalesce(f.n, 0) > 0)::DOUBLE
            WHEN 'count' THEN coalesce(f.n, 0)::DOUBLE
            ELSE coalesce(f.total, 0)
        END AS y
    FROM units AS u
    CROSS JOIN definitions AS d
    LEFT JOIN facts AS f ON f.unit_id = u.unit_id AND f.event = d.event
)
SELECT
    $experiment_id,
    $day,
    metric,
    cluster,
    CASE WHEN cluster IS NOT NULL THEN list_contains($treated, cluster) END,
    count(*),
    exact_sum(y),
    exact_sum(y * y),
    $spec_version
FROM unit_values
GROUP BY metric, cluster
ORDER BY metric, cluster NULLS LAST;
