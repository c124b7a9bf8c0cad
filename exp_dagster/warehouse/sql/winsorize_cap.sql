-- winsorize_cap(experiment, day, metric): the cap of one winsorised metric, the $level quantile
-- (linear interpolation) of the day's per-unit values with both arms pooled, so the cap does not
-- depend on the treatment. One statement per metric: the level must be a constant.
-- Input: temp table winsorize_caps(metric, level, cap).
-- Parameters: $experiment_id, $day, $metric, $level
INSERT INTO winsorize_caps
SELECT $metric, $level, quantile_cont(y, $level)
FROM unit_metrics
WHERE experiment_id = $experiment_id AND as_of_date = $day AND metric = $metric
  AND y IS NOT NULL  -- a metric window that has not elapsed
HAVING count(*) > 0;
