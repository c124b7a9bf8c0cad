-- assigned_units(experiment, day) from day - 1: the units of unit_metrics(day - 1) and its
-- crossovers (together, every unit exposed through day - 1, as assigned_units had them then)
-- merged with the day's exposures. The same table as unit_metrics.sql's first statement builds
-- from every exposure, for a day's work; valid when day - 1 was built from the inputs as they are
-- now (build_unit_metrics checks the lineage digest and that the crossovers were recorded).
-- A unit keeps its first exposure date and segments (its earliest exposure was before the day);
-- its variant is the smaller of the two, as min(variant) over every exposure; it has crossed over
-- if it had, or if the day shows it under another variant.
-- Parameters: $experiment_id, $day
CREATE OR REPLACE TEMP TABLE assigned_units AS
WITH today AS (
    SELECT
        unit_id,
        min(variant) AS variant,
        min(variant) <> max(variant) AS crossed_over,
        arg_min(segments, first_exposed_at) AS segments
    FROM exposures
    WHERE experiment_id = $experiment_id AND exposure_date = $day
    GROUP BY unit_id
),
before AS (
    SELECT unit_id, first_exposure_date, variant, false AS crossed_over, segments
    FROM unit_metric_rows
    WHERE experiment_id = $experiment_id AND as_of_date = $day - 1
    UNION ALL
    SELECT unit_id, first_exposure_date, variant, true AS crossed_over, segments
    FROM unit_crossovers
    WHERE experiment_id = $experiment_id AND as_of_date = $day - 1
)
SELECT
    coalesce(b.unit_id, t.unit_id) AS unit_id,
    coalesce(b.first_exposure_date, $day) AS first_exposure_date,
    CASE
        WHEN b.unit_id IS NULL THEN t.variant
        WHEN t.unit_id IS NULL THEN b.variant
        ELSE least(b.variant, t.variant)
    END AS variant,
    coalesce(b.crossed_over, false) OR coalesce(t.crossed_over, false)
        OR coalesce(b.variant <> t.variant, false) AS crossed_over,
    CASE WHEN b.unit_id IS NULL THEN t.segments ELSE b.segments END AS segments
FROM before AS b
FULL OUTER JOIN today AS t ON t.unit_id = b.unit_id;
