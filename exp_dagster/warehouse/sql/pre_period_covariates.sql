-- pre_period_covariates(experiment, day): for every unit exposed on the day, its events in the
-- pre_period_days whole days before it. unit_metrics uses the row of each unit's first exposure day,
-- so the covariate is never touched by the treatment.
-- Parameters: $experiment_id, $day, $pre_days, $events, $spec_version
DELETE FROM pre_period_covariates WHERE experiment_id = $experiment_id AND exposure_date = $day;

INSERT INTO pre_period_covariates
SELECT $experiment_id, $day, f.unit_id, f.event, sum(f.n), exact_sum(f.total), $spec_version
FROM event_facts AS f
SEMI JOIN exposures AS e
    ON e.unit_id = f.unit_id AND e.experiment_id = $experiment_id AND e.exposure_date = $day
-- (the covariate events by a join: a fifth cheaper than list_contains on every row of the week)
SEMI JOIN (SELECT unnest($events::VARCHAR[]) AS event) AS wanted ON wanted.event = f.event
WHERE f.event_date BETWEEN $day - $pre_days::INTEGER AND $day - 1
GROUP BY f.unit_id, f.event;
