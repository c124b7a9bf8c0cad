-- pre_exposure_facts(experiment, day): for every unit exposed on the day, its events of that day
-- before its exposure timestamp (first_exposed_at), per event: what unit_metrics and the
-- statistics subtract from the day's facts when it is the unit's first exposure day, so that
-- metrics count from the exposure timestamp. An event at the exposure timestamp itself counts.
-- Reads the day's event_times only for the units exposed on the day, and only their events
-- before exposure: a day's work.
-- Parameters: $experiment_id, $day, $events, $quantile_events, $log_gamma, $nonpositive_bucket
CREATE OR REPLACE TEMP TABLE pre_exposure_events AS
SELECT t.unit_id, t.event, t.value
FROM event_times AS t
JOIN exposures AS e
    ON e.unit_id = t.unit_id AND e.experiment_id = $experiment_id AND e.exposure_date = $day
WHERE t.event_date = $day AND t.event_at < e.first_exposed_at
  AND list_contains($events, t.event);

DELETE FROM pre_exposure_facts WHERE experiment_id = $experiment_id AND exposure_date = $day;

INSERT INTO pre_exposure_facts
SELECT
    $experiment_id, $day, unit_id, event, count(*), exact_sum(value), exact_sum(value * value)
FROM pre_exposure_events
GROUP BY unit_id, event
ORDER BY unit_id, event;

DELETE FROM pre_exposure_quantile_facts
WHERE experiment_id = $experiment_id AND exposure_date = $day;

-- bucketed as event_facts.sql buckets quantile_facts
INSERT INTO pre_exposure_quantile_facts
SELECT
    $experiment_id,
    $day,
    unit_id,
    event,
    CASE WHEN value > 0 THEN round(ln(value) / $log_gamma)::INTEGER
         ELSE $nonpositive_bucket END AS bucket,
    count(*)
FROM pre_exposure_events
WHERE list_contains($quantile_events, event)
GROUP BY unit_id, event, bucket
ORDER BY unit_id, event, bucket;
