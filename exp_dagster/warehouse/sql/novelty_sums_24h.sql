-- novelty_sums(experiment, day) with analysis.novelty_period 24h: the per-unit values of
-- novelty_statistics.sql's second statement (temp table novelty_unit_days, which its third
-- statement adds to the sums) by 24-hour period since each unit's exposure instead of
-- calendar day: day_index k holds the unit's events in [anchor + k × 24 h, anchor + (k + 1) × 24 h),
-- anchor = its first exposure timestamp (that day's midnight with metric_window_start
-- exposure_day), and only the periods that have ended by the end of $through (a period still
-- running is summed on the day it ends, when novelty_statistics.sql also counts its unit).
-- From event_times (every valid row of the metric events, with its timestamp): with $extend, the
-- sums of day - 1 plus the periods that ended since the end of $through_before (day - 1, or the
-- end date), whose events are on $events_from ($through - 1) or later: a day's work; without,
-- every period of every unit.
-- Input: temp tables assigned_units (the day's analysed units) and metric_definitions.
-- Parameters: $experiment_id, $day, $through, $through_before, $extend, $events_from,
--             $from_timestamp, $crossover_units, $inputs_digest
CREATE OR REPLACE TEMP TABLE novelty_unit_days AS
WITH anchored AS (
    SELECT
        u.unit_id,
        u.variant,
        CASE WHEN $from_timestamp THEN e.first_exposed_at
             ELSE CAST(u.first_exposure_date AS TIMESTAMP) END AS anchor
    FROM assigned_units AS u
    JOIN exposures AS e
        ON e.experiment_id = $experiment_id AND e.exposure_date = u.first_exposure_date
       AND e.unit_id = u.unit_id
    WHERE NOT u.crossed_over
),
timed AS (
    SELECT
        a.unit_id,
        a.variant,
        t.event,
        t.value,
        datediff('microsecond', a.anchor, t.event_at) // 86400000000 AS day_index,
        a.anchor
    FROM event_times AS t
    JOIN anchored AS a ON a.unit_id = t.unit_id
    WHERE t.event_date BETWEEN $events_from AND $through
      AND t.event_at >= a.anchor
),
ended AS (
    SELECT *
    FROM timed
    WHERE anchor + to_days(CAST(day_index + 1 AS INTEGER)) <= CAST($through + 1 AS TIMESTAMP)
      AND (NOT $extend
           OR anchor + to_days(CAST(day_index + 1 AS INTEGER))
              > CAST($through_before + 1 AS TIMESTAMP))
),
unit_days AS (
    SELECT
        d.metric,
        f.variant,
        f.unit_id,
        f.day_index,
        CASE
            WHEN d.reduction = 'any'
                THEN (count(*) FILTER (WHERE f.event = d.event) > 0)::INTEGER
            WHEN d.reduction = 'count' THEN count(*) FILTER (WHERE f.event = d.event)
            -- exact sums of the values rounded to 1e-6, as event_facts' totals
            ELSE coalesce(
                CAST(sum(CAST(f.value AS DECIMAL(38, 6))) FILTER (WHERE f.event = d.event) AS DOUBLE),
                0
            )
        END AS y,
        CASE
            WHEN d.denominator_event IS NOT NULL
                THEN coalesce(
                    CAST(
                        sum(CAST(f.value AS DECIMAL(38, 6))) FILTER (WHERE f.event = d.denominator_event)
                        AS DOUBLE
                    ),
                    0
                )
            ELSE 1
        END AS x
    FROM ended AS f
    JOIN metric_definitions AS d ON f.event = d.event OR f.event = d.denominator_event
    GROUP BY d.metric, d.reduction, d.denominator_event, f.variant, f.unit_id, f.day_index
)
SELECT metric, variant, unit_id, day_index, y, x FROM unit_days;
