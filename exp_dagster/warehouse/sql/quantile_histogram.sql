-- quantile_histograms(experiment, day): a quantile metric's observations per variant and bucket,
-- from each unit's first exposure day through the day (or the end date, if earlier).
-- Parameters: $experiment_id, $day, $through, $metric, $event, $log_gamma
INSERT INTO quantile_histograms
SELECT
    $experiment_id,
    $day,
    $metric,
    u.variant,
    q.bucket,
    exp(q.bucket * $log_gamma),
    sum(q.n)
FROM unit_metrics AS u
JOIN quantile_facts AS q
    ON q.unit_id = u.unit_id AND q.event = $event
   AND q.event_date BETWEEN u.first_exposure_date AND $through
WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day AND u.metric = $metric
GROUP BY u.variant, q.bucket
ORDER BY u.variant, q.bucket;
