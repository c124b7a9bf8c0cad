-- exposures(experiment, day): validated first exposures of the day, and quarantine with reasons.
-- Input: temp table typed_exposures(experiment_id_raw, unit_id, variant, exposed_at_read,
-- segment_0 .. segment_<k> (the spec's segment columns as text), source_file, source_row,
-- duplicate_of, copy_elsewhere), the raw rows that may be this experiment's and may belong to the
-- day. @segments@: the MAP of a unit's segments from its earliest row (build_exposures).
-- With a ramp, $upper_bounds are the bounds of the phase in force on $day, and $earlier_bounds those
-- of the phases before it (empty without a ramp): a unit first exposed in an earlier phase keeps
-- that phase's variant of its bucket (sticky assignment), so either is accepted; a system that
-- moves it to the day's variant instead makes it a crossover, left out by unit_metrics.
-- Parameters: $experiment_id, $day, $start, $end, $salt, $check_hash, $is_hive,
--             $variant_names, $upper_bounds, $earlier_bounds, $phase_note, $spec_version
CREATE OR REPLACE TEMP TABLE classified_exposures AS
WITH hashed AS (
    SELECT
        *,
        utc_timestamp(TRY_CAST(exposed_at_read AS TIMESTAMPTZ)) AS exposed_ts,
        -- The deterministic assignment, bit-for-bit as exp_dagster.assignment: the unit's bucket
        -- (hashed once a row: only when the spec has a salt) ...
        CASE WHEN $check_hash
            THEN ('0x' || substr(md5($salt || '.' || unit_id), 1, 15))::UBIGINT % 10000
        END AS hash_bucket
    FROM typed_exposures
),
typed AS (
    SELECT
        *,
        -- ... and the variant whose range of buckets holds it
        list_extract(
            $variant_names,
            list_position(list_transform($upper_bounds, lambda b: hash_bucket < b), true)
        ) AS expected_variant
    FROM hashed
),
owned AS (
    -- A hive folder's rows belong to its day; a single file's rows to the day of their timestamp,
    -- clamped to the window (rows before the start to the first day, after the end to the last,
    -- without a usable timestamp to the first), so every row is counted exactly once.
    SELECT *
    FROM typed
    WHERE $is_hive OR least(greatest(coalesce(exposed_ts::DATE, $start), $start), $end) = $day
),
checked AS (
    SELECT
        *,
        CASE
            WHEN duplicate_of IS NOT NULL
                THEN 'the file is a byte-identical copy of ' || duplicate_of
                     || ' (delivered twice): its rows count once, from that file'
            WHEN lower(trim(experiment_id_raw)) = 'experiment_id' AND unit_id = 'unit_id'
                THEN 'a repeated header line (files concatenated with their headers?)'
            WHEN is_blank(experiment_id_raw)
                THEN 'experiment_id is missing'
            WHEN experiment_id_raw <> $experiment_id
                THEN 'experiment_id ''' || experiment_id_raw || ''' differs from the spec id '''
                     || $experiment_id || ''' in case or spaces'
            WHEN is_blank(unit_id) THEN 'unit_id is missing'
            WHEN exposed_ts IS NULL THEN 'exposed_at is missing or not a timestamp'
            WHEN variant IS NULL OR NOT list_contains($variant_names, variant)
                THEN 'unknown variant ''' || coalesce(variant, 'NULL') || ''' (the spec has '
                     || array_to_string($variant_names, ', ') || ')'
            WHEN $is_hive AND exposed_ts::DATE <> $day
                THEN 'exposed_at ' || exposed_ts::DATE || ' is outside its date=' || $day || ' folder'
                     || coalesce(
                         ' (the file is a byte-identical copy of ' || copy_elsewhere || ')', ''
                     )
            WHEN exposed_ts::DATE < $start OR exposed_ts::DATE > $end
                THEN 'exposed outside the experiment window ' || $start || ' .. ' || $end
            WHEN $check_hash AND variant <> expected_variant
                 AND NOT list_contains(
                     list_transform(
                         $earlier_bounds,
                         lambda bounds: list_extract(
                             $variant_names,
                             list_position(list_transform(bounds, lambda b: hash_bucket < b), true)
                         )
                     ),
                     variant
                 )
                THEN 'variant ''' || variant || ''' disagrees with the deterministic hash (expected '''
                     || expected_variant || '''' || $phase_note || ')'
        END AS reason
    FROM owned
),
-- A unit seen under several valid variants on one day has crossed over: none of its rows count.
-- (min <> max finds them at a fraction of the cost of count(DISTINCT); the few found are listed)
crossed AS (
    SELECT unit_id
    FROM checked
    WHERE reason IS NULL
    GROUP BY unit_id
    HAVING min(variant) <> max(variant)
),
crossovers AS (
    SELECT unit_id, string_agg(DISTINCT variant, ', ' ORDER BY variant) AS variants
    FROM checked
    SEMI JOIN crossed USING (unit_id)
    WHERE reason IS NULL
    GROUP BY unit_id
)
SELECT
    c.* EXCLUDE (reason, experiment_id_raw, duplicate_of, copy_elsewhere, hash_bucket),
    coalesce(
        c.reason,
        'unit exposed to several variants on one day (' || x.variants || ')'
    ) AS reason
FROM checked AS c
LEFT JOIN crossovers AS x
    ON c.reason IS NULL AND x.unit_id = c.unit_id;

DELETE FROM exposures WHERE experiment_id = $experiment_id AND exposure_date = $day;

INSERT INTO exposures
SELECT
    $experiment_id,
    $day,
    unit_id,
    any_value(variant),
    min(exposed_ts),
    count(*),
    @segments@,
    $spec_version
FROM classified_exposures
WHERE reason IS NULL
GROUP BY unit_id;

DELETE FROM exposure_quarantine WHERE experiment_id = $experiment_id AND exposure_date = $day;

INSERT INTO exposure_quarantine
SELECT
    $experiment_id, $day, source_file, source_row, unit_id, variant,
    CAST(exposed_at_read AS VARCHAR), reason
FROM classified_exposures
WHERE reason IS NOT NULL
ORDER BY source_file, source_row, unit_id;
