-- event_facts(day): per unit and event, the day's count, sum and sum of squares; quantile_facts:
-- log-bucketed histograms of the events that quantile metrics read; event_times: the valid rows
-- with their timestamps (for the exposure day's split at each unit's exposure timestamp,
-- pre_exposure_facts.sql); event_quarantine: the rest.
-- One pass over the day's files: classified_events is a view over them, read once into the
-- narrow temp table checked_events (what the facts need, and whether the row is valid); only a
-- day with quarantined rows reads the files a second time, for those rows' raw values (the last
-- statement, which build_event_facts runs only then). No copy of every column of tens of millions
-- of rows is kept in memory, or spilled.
-- Input: temp view raw_events. Parameters: $day, $is_hive, $first_day (a single file's first
-- day, NULL for a hive folder), $first_analysable, $last_analysable (the days any run can read:
-- a single file's rows dated outside them belong to $first_day), $quantile_events,
-- $timed_events (NULL: every event), $log_gamma, $nonpositive_bucket, $max_abs_value (larger
-- values are corrupt or in the wrong unit, and would overflow exact sums).
-- A view takes no parameters: the first statement keeps those the view needs in the one-row temp
-- table event_facts_parameters.
CREATE OR REPLACE TEMP TABLE event_facts_parameters AS
SELECT $day AS day, $is_hive AS is_hive, $first_day::DATE AS first_day,
    $first_analysable::DATE AS first_analysable, $last_analysable::DATE AS last_analysable,
    $max_abs_value::DOUBLE AS max_abs_value;

CREATE OR REPLACE TEMP VIEW classified_events AS
WITH typed AS (
    SELECT
        unit_id,
        CAST(event AS VARCHAR) AS event,
        -- as read (text only for quarantined rows: formatting every timestamp costs more than
        -- the rest of the step)
        event_time AS event_time_read,
        value AS value_read,
        CAST(event_id AS VARCHAR) AS event_id,
        utc_timestamp(TRY_CAST(event_time AS TIMESTAMPTZ)) AS event_ts,
        TRY_CAST(value AS DOUBLE) AS value_num,
        source_file,
        source_row,
        duplicate_of,
        copy_elsewhere
    FROM raw_events
),
owned AS (
    -- A hive folder's rows belong to its day; a single file's rows to the day of their timestamp
    -- (rows without a usable timestamp, or dated where no run reads, to the file's first day, so
    -- they are counted once).
    SELECT *
    FROM typed CROSS JOIN event_facts_parameters AS p
    WHERE p.is_hive
       OR CASE WHEN event_ts::DATE BETWEEN p.first_analysable AND p.last_analysable
               THEN event_ts::DATE ELSE p.first_day END = p.day
),
numbered AS (
    -- An SDK that retries logs the same event_id twice: only the first row of an id counts.
    -- Only rows with an id are numbered: a window over the others would sort every row. (Rows of
    -- a file delivered twice are quarantined as such, and not numbered.)
    SELECT *, NULL::BIGINT AS event_id_copy
    FROM owned
    WHERE event_id IS NULL OR duplicate_of IS NOT NULL
    UNION ALL
    SELECT
        *,
        row_number() OVER (
            PARTITION BY event_id
            ORDER BY source_file, source_row, CAST(event_time_read AS VARCHAR), unit_id, event,
                CAST(value_read AS VARCHAR)
        ) AS event_id_copy
    FROM owned
    WHERE event_id IS NOT NULL AND duplicate_of IS NULL
)
SELECT
    * EXCLUDE (
        event_id_copy, day, is_hive, first_day, first_analysable, last_analysable, max_abs_value,
        duplicate_of, copy_elsewhere
    ),
    CASE
        WHEN duplicate_of IS NOT NULL
            THEN 'the file is a byte-identical copy of ' || duplicate_of
                 || ' (delivered twice): its rows count once, from that file'
        WHEN unit_id = 'unit_id' AND event = 'event'
            THEN 'a repeated header line (files concatenated with their headers?)'
        WHEN is_blank(unit_id) THEN 'unit_id is missing'
        WHEN is_blank(event) THEN 'event is missing'
        WHEN event_ts IS NULL THEN 'event_time is missing or not a timestamp'
        WHEN event_ts::DATE <> day AND is_hive
            THEN 'event_time ' || event_ts::DATE || ' is outside its date=' || day || ' folder'
                 || coalesce(
                     ' (the file is a byte-identical copy of ' || copy_elsewhere || ')', ''
                 )
        WHEN event_ts::DATE <> day
            THEN 'event_time ' || event_ts::DATE || ' is outside the days that can be analysed, '
                 || first_analysable || ' .. ' || last_analysable
                 || ' (EXP_DAGSTER_FIRST_DATE through tomorrow)'
        WHEN value_num IS NULL OR isnan(value_num) OR isinf(value_num)
            THEN 'value is missing, not a number, NaN or infinite'
        WHEN abs(value_num) >= max_abs_value
            THEN 'value ' || CAST(value_read AS VARCHAR) || ' is beyond +/-' || max_abs_value::BIGINT
                 || ' (corrupt, or logged in the wrong unit)'
        WHEN event_id_copy > 1
            THEN 'duplicate event_id ''' || event_id || ''' (a retried log row): only its first row counts'
    END AS reason
FROM numbered;

CREATE OR REPLACE TEMP TABLE checked_events AS
SELECT unit_id, event, event_ts, value_num, reason IS NULL AS valid
FROM classified_events;

DELETE FROM event_facts WHERE event_date = $day;

-- (no ORDER BY here or below: readers filter by day and unit, and sum exactly or sort what they
-- read; sorting a day's rows cost a third of the aggregation)
INSERT INTO event_facts
SELECT
    $day,
    unit_id,
    event,
    count(*),
    exact_sum(value_num),
    exact_sum(value_num * value_num)
FROM checked_events
WHERE valid
GROUP BY unit_id, event;

DELETE FROM event_times WHERE event_date = $day;

INSERT INTO event_times
SELECT $day, unit_id, event, event_ts, value_num
FROM checked_events
WHERE valid AND ($timed_events::VARCHAR[] IS NULL OR list_contains($timed_events, event));

DELETE FROM quantile_facts WHERE event_date = $day;

-- Values at or below 0 have no log bucket: they are counted in $nonpositive_bucket, which
-- histograms leave out.
INSERT INTO quantile_facts
SELECT
    $day,
    unit_id,
    event,
    CASE WHEN value_num > 0 THEN round(ln(value_num) / $log_gamma)::INTEGER
         ELSE $nonpositive_bucket END AS bucket,
    count(*)
FROM checked_events
WHERE valid AND list_contains($quantile_events, event)
GROUP BY unit_id, event, bucket;

DELETE FROM event_quarantine WHERE event_date = $day;

-- (last: run only when checked_events has invalid rows)
INSERT INTO event_quarantine
SELECT
    $day, source_file, source_row, unit_id, event, CAST(event_time_read AS VARCHAR),
    CAST(value_read AS VARCHAR), reason
FROM classified_events
WHERE reason IS NOT NULL
ORDER BY source_file, source_row, unit_id;
