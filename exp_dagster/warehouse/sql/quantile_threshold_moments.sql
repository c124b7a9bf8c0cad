-- Per variant, the unit-level moments of (observations at or below the arm's estimated quantile,
-- observations): the clustered proportion behind the Deng-Knoblich-Lu quantile interval.
-- Input: temp table quantile_thresholds(variant, bucket).
-- The units are taken in $chunks slices by hash of unit_id ($chunk is one of 0 .. $chunks - 1):
-- the per-unit grouping is the memory-hungry part, and the moments of the slices add up. The sums
-- are exact integers (observation counts), summed again exactly by the caller.
-- Every bucket of every unit is summed: quantile_tail_moments.sql gives the same sums from the
-- few observations above the thresholds, and this query is its fallback.
-- The units: those first exposed from $first_from to $first_until (all, or one allocation
-- period's: a ramp phase, a bandit day).
-- Parameters: $experiment_id, $day, $through, $event, $nonpositive_bucket, $chunks, $chunk,
-- $first_from, $first_until
WITH per_unit AS (
    SELECT
        u.unit_id,
        u.variant,
        coalesce(sum(q.n), 0) AS observations,
        coalesce(sum(CASE WHEN q.bucket <= t.bucket THEN q.n ELSE 0 END), 0) AS below
    FROM unit_metric_rows AS u
    JOIN quantile_thresholds AS t ON t.variant = u.variant
    LEFT JOIN quantile_counts($experiment_id) AS q
        ON q.unit_id = u.unit_id AND q.event = $event
       AND q.event_date BETWEEN u.first_exposure_date AND $through
       AND (NOT q.pre_exposure OR q.event_date = u.first_exposure_date)
       AND q.bucket <> $nonpositive_bucket
    WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day
      AND u.first_exposure_date BETWEEN $first_from AND $first_until
      AND ($chunks = 1 OR hash(u.unit_id) % $chunks = $chunk)
    GROUP BY u.unit_id, u.variant
)
SELECT
    variant,
    count(*) AS n,
    sum(below) AS sum_y,
    sum(below * below) AS sum_y2,
    sum(observations) AS sum_x,
    sum(observations * observations) AS sum_x2,
    sum(observations * below) AS sum_xy
FROM per_unit
GROUP BY variant
ORDER BY variant;
