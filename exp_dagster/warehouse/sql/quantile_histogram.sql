-- quantile_histograms(experiment, day): a quantile metric's observations per variant and bucket,
-- from each unit's first exposure day through the day (or the end date, if earlier).
-- With $extend, the histogram of day - 1 plus the day's observations (a day's work; valid when
-- day - 1 was summed from the inputs as they are now and no unit crossed over on the day, the
-- condition of novelty_statistics.sql); without, every day since each unit's first exposure.
-- Counts are integers, so both give the same rows.
-- Values at or below 0 ($nonpositive_bucket) are left out: the quantile is of the positive values.
-- The units are those first exposed from $first_from to $first_until: every unit for the metric's
-- histogram ($allocation_period NULL), with allocation periods (a ramp's phases, a bandit's days)
-- also those of each period (its first day as $allocation_period), whose histogram extends the
-- same period's of day - 1.
-- Parameters: $experiment_id, $day, $through, $metric, $event, $log_gamma, $extend,
-- $nonpositive_bucket, $allocation_period, $first_from, $first_until
INSERT INTO quantile_histograms
WITH added AS (
    SELECT u.variant, q.bucket, sum(q.n) AS n
    FROM unit_metric_rows AS u
    JOIN quantile_counts($experiment_id) AS q
        ON q.unit_id = u.unit_id AND q.event = $event
       AND q.event_date BETWEEN (CASE WHEN $extend THEN $day ELSE u.first_exposure_date END)
                            AND $through
       AND (NOT q.pre_exposure OR q.event_date = u.first_exposure_date)
       AND q.bucket <> $nonpositive_bucket
    WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day
      AND u.first_exposure_date BETWEEN $first_from AND $first_until
    GROUP BY u.variant, q.bucket
    UNION ALL
    SELECT variant, bucket, n
    FROM quantile_histograms
    WHERE $extend AND experiment_id = $experiment_id AND as_of_date = $day - 1
      AND metric = $metric
      AND allocation_period IS NOT DISTINCT FROM CAST($allocation_period AS VARCHAR)
)
SELECT
    $experiment_id,
    $day,
    $metric,
    variant,
    bucket,
    exp(bucket * $log_gamma),
    sum(n),
    CAST($allocation_period AS VARCHAR)
FROM added
GROUP BY variant, bucket
HAVING sum(n) > 0  -- a bucket whose only observations were before exposure
ORDER BY variant, bucket;
