-- novelty_statistics(experiment, day): per moment metric, variant and day since first exposure
-- (0 = the unit's first day), the sufficient statistics of the metric's value on that day alone,
-- over the units whose k-th day falls on or before the day. A treatment effect that fades (or
-- grows) with days since exposure is a novelty (or primacy) effect.
-- The sums are kept exactly in novelty_sums: with $extend, day D's values are added to the sums of
-- D - 1 (a day's work); without, every day since each unit's first exposure is summed again.
-- With analysis.novelty_period 24h ($by_period), day k is the k-th 24-hour period since the unit's
-- exposure: build_metric_statistics runs novelty_sums_24h.sql instead of the second statement (both
-- write the day's per-unit values to the temp table novelty_unit_days, which the third statement
-- adds to the sums), and a unit counts in period k once it has ended.
-- Input: temp tables assigned_units (the day's analysed units: unit_id, variant,
-- first_exposure_date, crossed_over) and metric_definitions (the metrics with novelty, by their
-- kind's per-unit terms: the event's reduction any / count / sum, the denominator event summed).
-- Parameters: $experiment_id, $day, $start, $through, $extend, $crossover_units, $inputs_digest,
--             $spec_version, $by_period, $from_timestamp
DELETE FROM novelty_sums WHERE experiment_id = $experiment_id AND as_of_date = $day;

CREATE OR REPLACE TEMP TABLE novelty_unit_days AS
WITH units AS (
    SELECT unit_id, variant, first_exposure_date FROM assigned_units WHERE NOT crossed_over
),
unit_days AS (
    SELECT
        d.metric,
        u.variant,
        u.unit_id,
        datediff('day', u.first_exposure_date, f.event_date) AS day_index,
        CASE
            WHEN d.reduction = 'any'
                THEN (sum(CASE WHEN f.event = d.event THEN f.n ELSE 0 END) > 0)::INTEGER
            WHEN d.reduction = 'count' THEN sum(CASE WHEN f.event = d.event THEN f.n ELSE 0 END)
            ELSE sum(CASE WHEN f.event = d.event THEN f.total ELSE 0 END)
        END AS y,
        CASE
            WHEN d.denominator_event IS NOT NULL
                THEN sum(CASE WHEN f.event = d.denominator_event THEN f.total ELSE 0 END)
            ELSE 1
        END AS x
    FROM exposure_facts($experiment_id) AS f
    JOIN units AS u ON u.unit_id = f.unit_id
    JOIN metric_definitions AS d ON f.event = d.event OR f.event = d.denominator_event
    WHERE f.event_date BETWEEN (CASE WHEN $extend THEN $day ELSE u.first_exposure_date END)
                           AND $through
      AND (NOT f.pre_exposure OR f.event_date = u.first_exposure_date)
    GROUP BY d.metric, d.reduction, d.denominator_event, u.variant, u.unit_id, day_index
)
SELECT metric, variant, unit_id, day_index, y, x FROM unit_days;

-- (either path) the day's unit values added to the sums of day - 1 with $extend
INSERT INTO novelty_sums
WITH added AS (
    SELECT
        metric, variant, day_index,
        sum(CAST(y AS DECIMAL(38, 6))) AS sum_y, sum(CAST(y * y AS DECIMAL(38, 6))) AS sum_y2,
        sum(CAST(x AS DECIMAL(38, 6))) AS sum_x, sum(CAST(x * x AS DECIMAL(38, 6))) AS sum_x2,
        sum(CAST(x * y AS DECIMAL(38, 6))) AS sum_xy
    FROM novelty_unit_days
    GROUP BY metric, variant, day_index
    UNION ALL
    SELECT metric, variant, day_index, sum_y, sum_y2, sum_x, sum_x2, sum_xy
    FROM novelty_sums
    WHERE $extend AND experiment_id = $experiment_id AND as_of_date = $day - 1
)
SELECT
    $experiment_id, $day, metric, variant, day_index::INTEGER,
    sum(sum_y), sum(sum_y2), sum(sum_x), sum(sum_x2), sum(sum_xy),
    $crossover_units, $inputs_digest
FROM added
GROUP BY metric, variant, day_index;

DELETE FROM novelty_statistics WHERE experiment_id = $experiment_id AND as_of_date = $day;

INSERT INTO novelty_statistics
WITH units AS (
    SELECT unit_id, variant, first_exposure_date FROM assigned_units WHERE NOT crossed_over
),
cohorts AS (
    SELECT variant, first_exposure_date, count(*) AS units
    FROM units
    GROUP BY variant, first_exposure_date
),
periods AS (
    -- with $by_period: per variant, how many whole 24-hour periods since exposure each unit has
    -- had by the end of $through (counted by that number, not unit by unit)
    SELECT
        u.variant,
        datediff(
            'microsecond',
            CASE WHEN $from_timestamp THEN e.first_exposed_at
                 ELSE CAST(u.first_exposure_date AS TIMESTAMP) END,
            CAST($through + 1 AS TIMESTAMP)
        ) // 86400000000 AS ended,
        count(*) AS units
    FROM units AS u
    JOIN exposures AS e
        ON e.experiment_id = $experiment_id AND e.exposure_date = u.first_exposure_date
       AND e.unit_id = u.unit_id
    WHERE $by_period
    GROUP BY ALL
),
observed AS (
    -- units whose k-th day is on or before the day: a unit without events that day counts as 0
    -- (counted by cohort of first exposure day, not unit by unit); with $by_period, units whose
    -- k-th 24-hour period has ended
    SELECT
        d.metric, d.denominator_event IS NOT NULL AS has_denominator, c.variant, k.day_index,
        sum(c.units)::BIGINT AS n
    FROM cohorts AS c
    CROSS JOIN range(0, datediff('day', $start, $through) + 1) AS k(day_index)
    CROSS JOIN metric_definitions AS d
    WHERE c.first_exposure_date + k.day_index::INTEGER <= $through AND NOT $by_period
    GROUP BY d.metric, d.denominator_event, c.variant, k.day_index
    UNION ALL
    SELECT
        d.metric, d.denominator_event IS NOT NULL AS has_denominator, c.variant, k.day_index,
        sum(c.units)::BIGINT AS n
    FROM periods AS c
    CROSS JOIN range(0, datediff('day', $start, $through) + 1) AS k(day_index)
    CROSS JOIN metric_definitions AS d
    WHERE k.day_index < c.ended
    GROUP BY d.metric, d.denominator_event, c.variant, k.day_index
),
sums AS (
    SELECT metric, variant, day_index, sum_y, sum_y2, sum_x, sum_x2, sum_xy
    FROM novelty_sums
    WHERE experiment_id = $experiment_id AND as_of_date = $day
)
SELECT
    $experiment_id, $day, o.metric, o.variant, o.day_index::INTEGER, o.n,
    coalesce(s.sum_y, 0)::DOUBLE,
    coalesce(s.sum_y2, 0)::DOUBLE,
    -- units with no events that day still count one unit (x = 1) for metrics without denominator
    CASE WHEN o.has_denominator THEN coalesce(s.sum_x, 0)::DOUBLE ELSE o.n END,
    CASE WHEN o.has_denominator THEN coalesce(s.sum_x2, 0)::DOUBLE ELSE o.n END,
    CASE WHEN o.has_denominator THEN coalesce(s.sum_xy, 0)::DOUBLE ELSE coalesce(s.sum_y, 0)::DOUBLE END,
    $spec_version
FROM observed AS o
LEFT JOIN sums AS s USING (metric, variant, day_index)
ORDER BY o.metric, o.variant, o.day_index;
