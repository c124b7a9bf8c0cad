-- latest_decisions: per experiment in the warehouse, its latest decision (the last as-of day) and
-- how many days have one. Read by the experiments_overview asset; a handful of rows per experiment.
SELECT
    experiment_id,
    max(as_of_date)                                   AS as_of_date,
    arg_max(decision, as_of_date)                     AS decision,
    arg_max(variant, as_of_date)                      AS variant,
    arg_max(reasons, as_of_date)                      AS reasons,
    arg_max(ramp_action, as_of_date)                  AS ramp_action,
    count(*)                                          AS days_decided
FROM decision
GROUP BY experiment_id
ORDER BY experiment_id;
