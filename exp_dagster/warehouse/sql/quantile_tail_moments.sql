-- The moments of quantile_threshold_moments.sql (per variant, over units: B = observations at or
-- below the arm's estimated quantile, P = observations) without summing every bucket of every
-- unit. A unit's observation count N is in unit_metric_rows already (item $position of y: every
-- valid value of the event, maintained day by day). Then P = N - Z, with Z its values at or below
-- 0 ($nonpositive_bucket, left out of the quantile), and B = P - A, with A its values above the
-- threshold: for a p95, some 5 % of the observations. So the first statement sums N and N² over
-- all units, and the second, over the few units with a value above the lowest threshold or at
-- or below 0, the differences (P - N, P² - N², B - N, B² - N², P·B - N²) that turn them into the
-- sums of P and B. All are exact integers; the caller adds them, and checks that the sum of P
-- equals the arm's histogram total (else it falls back to quantile_threshold_moments.sql).
-- Input: temp table quantile_thresholds(variant, bucket). The units: those first exposed from
-- $first_from to $first_until (all of them, or one allocation period's: a ramp phase, a bandit
-- day).
-- The second statement takes units in $chunks slices by hash of unit_id (see
-- quantile_threshold_moments.sql).
-- Parameters: $experiment_id, $day, $through, $event, $position, $nonpositive_bucket,
-- $lowest_threshold (the lowest bucket in quantile_thresholds: a constant, so that the scan of
-- quantile_facts filters on it before any join), $chunks, $chunk, $first_from, $first_until
SELECT
    u.variant,
    count(*) AS n,
    sum(CAST(u.y[$position] AS BIGINT)) AS sum_n,
    sum(CAST(u.y[$position] AS BIGINT) * CAST(u.y[$position] AS BIGINT)) AS sum_n2
FROM unit_metric_rows AS u
JOIN quantile_thresholds AS t ON t.variant = u.variant
WHERE u.experiment_id = $experiment_id AND u.as_of_date = $day
  AND u.first_exposure_date BETWEEN $first_from AND $first_until
GROUP BY u.variant
ORDER BY u.variant;

WITH tail AS (
    SELECT
        u.variant,
        any_value(CAST(u.y[$position] AS BIGINT)) AS observed,
        coalesce(sum(q.n) FILTER (WHERE q.bucket = $nonpositive_bucket), 0) AS nonpositive,
        coalesce(sum(q.n) FILTER (WHERE q.bucket > t.bucket), 0) AS above
    FROM quantile_counts($experiment_id) AS q
    JOIN unit_metric_rows AS u ON u.unit_id = q.unit_id
    JOIN quantile_thresholds AS t ON t.variant = u.variant
    WHERE q.event = $event
      AND (q.bucket > $lowest_threshold OR q.bucket = $nonpositive_bucket)
      AND ($chunks = 1 OR (hash(q.unit_id) % $chunks = $chunk
                           AND hash(u.unit_id) % $chunks = $chunk))
      AND u.experiment_id = $experiment_id AND u.as_of_date = $day
      AND u.first_exposure_date BETWEEN $first_from AND $first_until
      AND q.event_date BETWEEN u.first_exposure_date AND $through
      AND (NOT q.pre_exposure OR q.event_date = u.first_exposure_date)
    GROUP BY u.unit_id, u.variant
),
terms AS (
    SELECT
        variant,
        observed AS n,
        observed - nonpositive AS p,
        observed - nonpositive - above AS b
    FROM tail
)
SELECT
    variant,
    sum(p - n) AS d_x,
    sum(p * p - n * n) AS d_x2,
    sum(b - n) AS d_y,
    sum(b * b - n * n) AS d_y2,
    sum(p * b - n * n) AS d_xy
FROM terms
GROUP BY variant
ORDER BY variant;
