-- The histogram of a quantile metric's observations per variant, from each unit's first exposure
-- day through the day. Parameters: $experiment_id, $day, $metric, $event
SELECT u.variant, q.bucket, sum(q.n) AS n
FROM unit_metrics AS u
JOIN quantile_facts AS q
    ON q.unit_id = u.unit_id AND q.event = $event
   AND q.event_date BETWEEN u.first_exposure_date AND $through
WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day AND u.metric = $metric
GROUP BY u.variant, q.bucket
ORDER BY u.variant, q.bucket;
