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
WHERE f.event_date BETWEEN $day - $pre_days::INTEGER AND $day - 1
  AND list_contains($events, f.event)
GROUP BY f.unit_id, f.event;
