-- The warehouse tables, one per asset (plus quarantines). Partition columns are DATEs, never text.

-- Sums of doubles depend on the order rows are added in, which parallel aggregation varies from
-- run to run. Every sum goes through this macro: each term rounded to 1e-6, then added exactly,
-- so re-running a partition gives bit-identical tables whatever the threads did.
CREATE OR REPLACE MACRO exact_sum(x) AS sum(CAST(x AS DECIMAL(38, 6)))::DOUBLE;
-- A TIMESTAMPTZ as the naive UTC TIMESTAMP the tables keep: its microseconds since the epoch,
-- which are UTC whatever the session's time zone. The same value as CAST(t AS TIMESTAMP) in a
-- session pinned to UTC (ensure_schema), at a fifth of the cost: that cast goes through ICU's
-- calendar row by row, which was half of reading a day's events. (infinity and -infinity have no
-- epoch: they take the cast.)
CREATE OR REPLACE MACRO utc_timestamp(t) AS
    CASE WHEN isfinite(t) THEN make_timestamp(epoch_us(t)) ELSE CAST(t AS TIMESTAMP) END;
-- A missing text: NULL, or nothing that shows: spaces (Unicode ones such as U+00A0 too, and
-- tabs), control characters and invisible format characters (zero-width space U+200B, BOM,
-- word joiner, soft hyphen...), so an id that only looks present is missing. Only a text that
-- is empty or starts below '!' or beyond ASCII can be blank, so the comparison comes first and
-- spares matching every row of a day's logs.
CREATE OR REPLACE MACRO is_blank(x) AS
    x IS NULL OR ((x < '!' OR x >= chr(128)) AND regexp_full_match(x, '[\s\p{Z}\p{Cf}\p{Cc}]*'));
CREATE TABLE IF NOT EXISTS exposures (
    experiment_id     VARCHAR   NOT NULL,
    exposure_date     DATE      NOT NULL,
    unit_id           VARCHAR   NOT NULL,
    variant           VARCHAR   NOT NULL,
    first_exposed_at  TIMESTAMP NOT NULL,   -- UTC; the unit's first exposure of that day
    exposure_rows     BIGINT    NOT NULL,   -- log rows collapsed into this one (repeats, duplicates)
    segments          MAP(VARCHAR, VARCHAR),
    spec_version      VARCHAR   NOT NULL
);
CREATE TABLE IF NOT EXISTS exposure_quarantine (
    experiment_id  VARCHAR NOT NULL,
    exposure_date  DATE    NOT NULL,
    source_file    VARCHAR,
    source_row     BIGINT,
    unit_id        VARCHAR,
    variant        VARCHAR,
    exposed_at     VARCHAR,
    reason         VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS event_facts (
    event_date  DATE    NOT NULL,
    unit_id     VARCHAR NOT NULL,
    event       VARCHAR NOT NULL,
    n           BIGINT  NOT NULL,   -- rows
    total       DOUBLE  NOT NULL,   -- sum of value
    total_sq    DOUBLE  NOT NULL    -- sum of value squared
);
CREATE TABLE IF NOT EXISTS quantile_facts (
    event_date  DATE    NOT NULL,
    unit_id     VARCHAR NOT NULL,
    event       VARCHAR NOT NULL,
    bucket      INTEGER NOT NULL,   -- round(ln(value) / ln(1 + gamma)): relative width gamma
    n           BIGINT  NOT NULL
);
-- Every valid event row of a day with its timestamp (narrow: what event_facts and quantile_facts
-- sum, before summing). Only the exposure day needs it: there, a unit's events before its
-- exposure timestamp are not counted (pre_exposure_facts), and the exposure timestamp depends on
-- the experiment, which the shared daily facts do not know.
CREATE TABLE IF NOT EXISTS event_times (
    event_date  DATE      NOT NULL,
    unit_id     VARCHAR   NOT NULL,
    event       VARCHAR   NOT NULL,
    event_at    TIMESTAMP NOT NULL,   -- UTC
    value       DOUBLE    NOT NULL
);
CREATE TABLE IF NOT EXISTS event_quarantine (
    event_date   DATE    NOT NULL,
    source_file  VARCHAR,
    source_row   BIGINT,
    unit_id      VARCHAR,
    event        VARCHAR,
    event_time   VARCHAR,
    value        VARCHAR,
    reason       VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS pre_period_covariates (
    experiment_id  VARCHAR NOT NULL,
    exposure_date  DATE    NOT NULL,   -- covariates of the units exposed that day
    unit_id        VARCHAR NOT NULL,
    event          VARCHAR NOT NULL,
    n              BIGINT  NOT NULL,
    total          DOUBLE  NOT NULL,
    spec_version   VARCHAR NOT NULL
);
-- The events of the units exposed on a day that happened that day before their exposure
-- timestamp (first_exposed_at), for the experiment's metric events, with analysis
-- metric_window_start 'exposure' (the default; 'exposure_day' leaves this empty). unit_metrics,
-- novelty_statistics and the quantile statistics subtract them from the facts of each unit's first
-- exposure day: a metric counts from the exposure timestamp. They are in no covariate either
-- (the pre-period is the whole days before the exposure day).
CREATE TABLE IF NOT EXISTS pre_exposure_facts (
    experiment_id  VARCHAR NOT NULL,
    exposure_date  DATE    NOT NULL,
    unit_id        VARCHAR NOT NULL,
    event          VARCHAR NOT NULL,
    n              BIGINT  NOT NULL,
    total          DOUBLE  NOT NULL,
    total_sq       DOUBLE  NOT NULL
);
-- The same events of the experiment's quantile metrics, as quantile_facts buckets them.
CREATE TABLE IF NOT EXISTS pre_exposure_quantile_facts (
    experiment_id  VARCHAR NOT NULL,
    exposure_date  DATE    NOT NULL,
    unit_id        VARCHAR NOT NULL,
    event          VARCHAR NOT NULL,
    bucket         INTEGER NOT NULL,
    n              BIGINT  NOT NULL
);
-- An experiment's event facts: event_facts less each unit's events before its exposure timestamp
-- (the negated rows of pre_exposure_facts, none with metric_window_start exposure_day, flagged
-- pre_exposure: readers apply them on the unit's first exposure day only).
CREATE OR REPLACE MACRO exposure_facts(experiment) AS TABLE
    SELECT event_date, unit_id, event, n, total, false AS pre_exposure
    FROM event_facts
    UNION ALL
    SELECT exposure_date, unit_id, event, -n, -total, true
    FROM pre_exposure_facts
    WHERE experiment_id = experiment;
-- An experiment's quantile observations: quantile_facts less each unit's events before its
-- exposure timestamp (the negated rows of pre_exposure_quantile_facts, flagged pre_exposure:
-- readers apply them on the unit's first exposure day only).
CREATE OR REPLACE MACRO quantile_counts(experiment) AS TABLE
    SELECT event_date, unit_id, event, bucket, n, false AS pre_exposure
    FROM quantile_facts
    UNION ALL
    SELECT exposure_date, unit_id, event, bucket, -n, true
    FROM pre_exposure_quantile_facts
    WHERE experiment_id = experiment;
-- Lineage for incremental days: every materialisation of an input partition (exposures,
-- pre_period_covariates per experiment and day; event_facts per day, experiment_id '') gets a
-- fresh write_id, and each unit_metrics partition records a digest of the write_ids it was built
-- from. unit_metrics(D) extends unit_metrics(D - 1) by day D's facts only when D - 1's recorded
-- digest equals the digest of its inputs now; otherwise it is recomputed from every day.
CREATE TABLE IF NOT EXISTS partition_writes (
    table_name      VARCHAR NOT NULL,
    experiment_id   VARCHAR NOT NULL,
    partition_date  DATE    NOT NULL,
    write_id        UUID    NOT NULL
);
CREATE TABLE IF NOT EXISTS unit_metrics_lineage (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,
    spec_version   VARCHAR NOT NULL,
    inputs_digest  VARCHAR NOT NULL,
    incremental    BOOLEAN NOT NULL   -- built from the previous day's rows (else from every day)
);
-- units left out as crossovers (seen under two variants): metric_statistics reads it here rather
-- than aggregating every exposure again (NULL in rows written before the column existed)
ALTER TABLE unit_metrics_lineage ADD COLUMN IF NOT EXISTS crossover_units BIGINT;
-- unit_metrics, stored one row per unit: the metrics' values as lists, in the order of the
-- partition's unit_metric_names.metrics (the spec's metric names, sorted). Read it through the
-- view unit_metrics, one row per unit and metric.
CREATE TABLE IF NOT EXISTS unit_metric_rows (
    experiment_id        VARCHAR  NOT NULL,
    as_of_date           DATE     NOT NULL,
    unit_id              VARCHAR  NOT NULL,
    variant              VARCHAR  NOT NULL,
    first_exposure_date  DATE     NOT NULL,
    segments             MAP(VARCHAR, VARCHAR),
    y                    DOUBLE[] NOT NULL,
    x                    DOUBLE[] NOT NULL,
    covariate            DOUBLE[] NOT NULL,
    covariate_x          DOUBLE[] NOT NULL,
    spec_version         VARCHAR  NOT NULL
);
-- The units a unit_metrics partition left out as crossovers (as assigned_units has them): with the
-- partition's own units, they are every unit exposed through its day, so the next day's units
-- are these plus that day's exposures (assigned_units_extended.sql).
CREATE TABLE IF NOT EXISTS unit_crossovers (
    experiment_id        VARCHAR NOT NULL,
    as_of_date           DATE    NOT NULL,
    unit_id              VARCHAR NOT NULL,
    first_exposure_date  DATE    NOT NULL,
    variant              VARCHAR NOT NULL,
    segments             MAP(VARCHAR, VARCHAR)
);
CREATE TABLE IF NOT EXISTS unit_metric_names (
    experiment_id  VARCHAR   NOT NULL,
    as_of_date     DATE      NOT NULL,
    metrics        VARCHAR[] NOT NULL
);
CREATE OR REPLACE VIEW unit_metrics AS
SELECT
    r.experiment_id,
    r.as_of_date,
    r.unit_id,
    r.variant,
    r.first_exposure_date,
    r.segments,
    n.metric,
    r.y[n.position] AS y,             -- value, or numerator of a ratio, or observations of a quantile
    r.x[n.position] AS x,             -- denominator of a ratio, else 1
    r.covariate[n.position] AS covariate,       -- pre-period y (NULL without a pre-period)
    r.covariate_x[n.position] AS covariate_x,   -- pre-period x
    r.spec_version
FROM unit_metric_rows AS r
-- one row per metric name and its position in the lists: a reader's filter on the metric then
-- applies to the names before the join, and the lists are indexed rather than unnested (at a
-- million units, reading three of four metrics takes 0.36 s instead of 0.5-0.6 s)
JOIN (
    SELECT experiment_id, as_of_date, unnest(metrics) AS metric,
        generate_subscripts(metrics, 1) AS position
    FROM unit_metric_names
) AS n ON n.experiment_id = r.experiment_id AND n.as_of_date = r.as_of_date;
CREATE TABLE IF NOT EXISTS metric_statistics (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,
    metric         VARCHAR NOT NULL,
    variant        VARCHAR NOT NULL,
    segment        VARCHAR NOT NULL,   -- 'all' or a segment column
    segment_value  VARCHAR NOT NULL,
    n              BIGINT  NOT NULL,   -- units
    sum_y DOUBLE, sum_y2 DOUBLE, sum_x DOUBLE, sum_x2 DOUBLE, sum_xy DOUBLE,
    sum_c DOUBLE, sum_c2 DOUBLE, sum_yc DOUBLE,
    threshold      DOUBLE,             -- quantile metrics: the arm's estimated quantile
    spec_version   VARCHAR NOT NULL,
    -- ratio metrics with a pre-period (cx = pre-period denominator): cross-products for CUPED
    sum_cx DOUBLE, sum_cx2 DOUBLE, sum_xc DOUBLE, sum_xcx DOUBLE, sum_ycx DOUBLE, sum_ccx DOUBLE
);
-- Per variant, the cross-moments of the per-unit quantities of the metrics of the spec's oec and
-- metric_tree (a mean's or proportion's value, a ratio's numerator and denominator): one row per
-- pair of components a <= b (in the order of the sorted components; a = b: the squares), with
-- the arm's units n, sum(a), sum(b) and sum(a * b), exact sums. Empty for an experiment with
-- neither block.
CREATE TABLE IF NOT EXISTS metric_cross_statistics (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,
    variant        VARCHAR NOT NULL,
    component_a    VARCHAR NOT NULL,   -- metric (its value) or metric.numerator / .denominator
    component_b    VARCHAR NOT NULL,
    n              BIGINT  NOT NULL,   -- units
    sum_a DOUBLE, sum_b DOUBLE, sum_ab DOUBLE,
    spec_version   VARCHAR NOT NULL
);
-- The panel of a spec's did block (a rollout that was not randomised), one cell per metric,
-- cluster and day: the units exposed that day in the cluster and the exact sums of their values
-- of the metric that day. Each partition holds its own day's cells only; the analysis reads every
-- day from the start. Empty for an experiment without a did block.
CREATE TABLE IF NOT EXISTS did_cluster_days (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,   -- the day of the cell (the panel's period)
    metric         VARCHAR NOT NULL,
    cluster        VARCHAR,            -- the value of the did.cluster segment; NULL: the
                                       -- units with none, counted, not in the panel
    treated        BOOLEAN,            -- the cluster is one of did.treated (NULL: no cluster)
    n              BIGINT  NOT NULL,   -- units exposed that day in the cluster
    sum_y DOUBLE, sum_y2 DOUBLE,
    spec_version   VARCHAR NOT NULL
);
-- A spec's did block per metric, written by the results step (exp_dagster.did_results): the 2x2
-- difference-in-differences effect with the parallel-trends check (row_type 'did', period NULL),
-- and the event study's effect of each day relative to the reference day (row_type
-- 'event_study'). Empty for an experiment without a did block.
CREATE TABLE IF NOT EXISTS did_effects (
    experiment_id        VARCHAR NOT NULL,
    as_of_date           DATE    NOT NULL,
    metric               VARCHAR NOT NULL,
    row_type             VARCHAR NOT NULL,   -- 'did' or 'event_study'
    period               DATE,               -- event_study: the day; did: NULL
    direction            VARCHAR NOT NULL,   -- the metric's: increase or decrease
    effect               DOUBLE,             -- did: (treated post - pre) - (control post - pre)
    std_error            DOUBLE,             -- CR1, clustered by cluster
    ci_low               DOUBLE,             -- two-sided 1 - alpha, t with df
    ci_high              DOUBLE,
    p_value              DOUBLE,             -- two-sided
    df                   INTEGER,            -- G - 1
    significant          BOOLEAN,            -- did: p_value < alpha (fixed horizon)
    control_pre          DOUBLE,             -- did: the four cell means and the counterfactual
    control_post         DOUBLE,
    treated_pre          DOUBLE,
    treated_post         DOUBLE,
    counterfactual       DOUBLE,
    n_clusters           INTEGER,
    n_treated_clusters   INTEGER,
    n_observations       BIGINT,             -- unit-days
    pre_trend_statistic  DOUBLE,             -- did: Wald F of the pre-period event-study effects
    pre_trend_p_value    DOUBLE,
    pre_trend_passed     BOOLEAN,            -- p >= alpha; NULL when not tested
    pre_trend_note       VARCHAR,            -- how the check ran, or why it did not
    alpha                DOUBLE  NOT NULL,
    method               VARCHAR NOT NULL,
    not_estimable        VARCHAR,
    spec_version         VARCHAR NOT NULL,
    note                 VARCHAR             -- did: the unit-days left out (no cluster value)
);
-- A spec's metric_tree, per treatment: the root's total and each factor's lift and share of the
-- root's log lift (exp_dagster.stats.metric_tree), written by the results step.
CREATE TABLE IF NOT EXISTS metric_trees (
    experiment_id    VARCHAR NOT NULL,
    as_of_date       DATE    NOT NULL,
    root             VARCHAR NOT NULL,   -- the tree's root metric
    factor           VARCHAR NOT NULL,   -- a factor metric, or the root for the total's row
    position         INTEGER NOT NULL,   -- 0: the total; 1, 2, ...: the factors in spec order
    control          VARCHAR NOT NULL,
    variant          VARCHAR NOT NULL,
    value_control    DOUBLE,             -- the factor's value (ratio of means) in each arm
    value_treatment  DOUBLE,
    lift             DOUBLE,             -- value_treatment / value_control - 1
    lift_ci_low      DOUBLE,             -- exp of the log lift's interval, minus 1
    lift_ci_high     DOUBLE,
    log_lift         DOUBLE,             -- the factors' log lifts add up to the total's
    log_std_error    DOUBLE,             -- delta-method standard error of log_lift
    p_value          DOUBLE,             -- two-sided, of log_lift = 0
    share            DOUBLE,             -- log_lift / the total's log lift (NULL when it is 0)
    method           VARCHAR NOT NULL,
    not_estimable    VARCHAR,            -- why the tree has no estimate at this look
    spec_version     VARCHAR NOT NULL
);
-- The exact running sums behind novelty_statistics (per metric, variant and day since first
-- exposure, as of a day), with the lineage digest of the unit_metrics partition they were summed
-- from: novelty_statistics(D) adds day D's values to the sums of D - 1 when that digest is still
-- current and no unit crossed over on D (novelty_statistics.sql), else sums every day again.
CREATE TABLE IF NOT EXISTS novelty_sums (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,
    metric         VARCHAR NOT NULL,
    variant        VARCHAR NOT NULL,
    day_index      INTEGER NOT NULL,
    sum_y DECIMAL(38, 6), sum_y2 DECIMAL(38, 6), sum_x DECIMAL(38, 6), sum_x2 DECIMAL(38, 6),
    sum_xy DECIMAL(38, 6),
    crossover_units BIGINT  NOT NULL,
    inputs_digest   VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS novelty_statistics (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,
    metric         VARCHAR NOT NULL,
    variant        VARCHAR NOT NULL,
    day_index      INTEGER NOT NULL,   -- days since the unit's first exposure, 0 = that day
    n              BIGINT  NOT NULL,   -- units observed on their day_index-th day
    sum_y DOUBLE, sum_y2 DOUBLE, sum_x DOUBLE, sum_x2 DOUBLE, sum_xy DOUBLE,
    spec_version   VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS quantile_histograms (
    experiment_id  VARCHAR NOT NULL,
    as_of_date     DATE    NOT NULL,
    metric         VARCHAR NOT NULL,
    variant        VARCHAR NOT NULL,
    bucket         INTEGER NOT NULL,
    value          DOUBLE  NOT NULL,   -- the bucket's representative value
    n              BIGINT  NOT NULL,
    allocation_period VARCHAR          -- NULL: every unit; an allocation period's first day (a
                                       -- ramp phase's start, a bandit's day): its units
);
-- Per mean or ratio metric (ratios: numerator and denominator), the units whose value lies
-- beyond a robust fence, and the winsorisation cap when the metric has one. Written with
-- metric_statistics; the values are the logged ones, before any cap.
CREATE TABLE IF NOT EXISTS metric_outliers (
    experiment_id  VARCHAR  NOT NULL,
    as_of_date     DATE     NOT NULL,
    metric         VARCHAR  NOT NULL,
    quantity       VARCHAR  NOT NULL,   -- 'value' (mean), 'numerator' or 'denominator' (ratio)
    units          BIGINT   NOT NULL,   -- units analysed
    nonzero_units  BIGINT   NOT NULL,
    median         DOUBLE,              -- of every unit's value
    p999           DOUBLE,              -- 99.9th percentile of the non-zero |values|
    fence          DOUBLE,              -- 10 × min(p999, 11th-largest |value|); NULL: < 20 units
    outlier_units  BIGINT   NOT NULL,   -- units with |value| > fence
    top_values     DOUBLE[] NOT NULL,   -- the 5 largest |values| beyond the fence, signed
    top_units      VARCHAR[] NOT NULL,  -- their units
    winsorize      DOUBLE,              -- the metric's winsorize level, NULL when none
    cap            DOUBLE,              -- the pooled quantile the values were capped at
    capped_units   BIGINT,              -- units whose value was above the cap
    spec_version   VARCHAR  NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    experiment_id       VARCHAR NOT NULL,
    as_of_date          DATE    NOT NULL,
    metric              VARCHAR NOT NULL,
    metric_type         VARCHAR NOT NULL,
    role                VARCHAR NOT NULL,
    direction           VARCHAR NOT NULL,
    segment             VARCHAR NOT NULL,
    segment_value       VARCHAR NOT NULL,
    control             VARCHAR NOT NULL,
    variant             VARCHAR NOT NULL,
    n_control           BIGINT  NOT NULL,
    n_treatment         BIGINT  NOT NULL,
    mean_control        DOUBLE,
    mean_treatment      DOUBLE,
    abs_effect          DOUBLE,
    abs_ci_low          DOUBLE,
    abs_ci_high         DOUBLE,
    rel_effect          DOUBLE,
    rel_ci_low          DOUBLE,
    rel_ci_high         DOUBLE,
    p_value             DOUBLE,
    cuped               BOOLEAN NOT NULL,
    variance_reduction  DOUBLE,
    method              VARCHAR NOT NULL,
    alpha               DOUBLE  NOT NULL,
    ni_margin           DOUBLE,            -- guardrails: the relative or absolute margin
    ni_margin_type      VARCHAR,
    ni_bound            DOUBLE,            -- guardrails: one-sided (1 - alpha) bound of the harm
    ni_passed           BOOLEAN,
    spec_version        VARCHAR NOT NULL,
    std_error             DOUBLE,       -- standard error of abs_effect
    ni_p_value            DOUBLE,       -- guardrails: p-value of the non-inferiority test
    sequential_method     VARCHAR,      -- group_sequential | always_valid | fixed_horizon
    sequential_look       INTEGER,      -- 1-based look (day) of the sequence
    information_fraction  DOUBLE,       -- group sequential: share of planned days elapsed
    sequential_boundary   DOUBLE,       -- group sequential: |z| boundary at this look
    sequential_p_value    DOUBLE,       -- always valid: always-valid p-value
    sequential_ci_low     DOUBLE,       -- repeated CI / confidence sequence of abs_effect
    sequential_ci_high    DOUBLE,
    sequential_significant BOOLEAN,      -- boundary crossed / always-valid p <= alpha
    p_value_adjusted      DOUBLE,       -- adjusted within multiplicity_family
    multiplicity_family   VARCHAR,
    multiplicity_method   VARCHAR,
    prob_better           DOUBLE,       -- Bayesian: probability the treatment is better
    expected_loss         DOUBLE,       -- Bayesian: expected relative loss of shipping
    credible_low          DOUBLE,       -- Bayesian credible interval of the relative lift
    credible_high         DOUBLE,
    power                 DOUBLE,       -- power for the spec's mde at the current sample
    mde_rel               DOUBLE,       -- relative MDE detectable now at the spec's power
    days_needed           DOUBLE,       -- more days for the spec's power at the current traffic
    heterogeneity_p_value DOUBLE,       -- segments: Cochran's Q across the segment's values
    segment_reversal      BOOLEAN,      -- segments: effect significantly opposite to overall
    novelty_slope         DOUBLE,       -- change of the relative lift per day since exposure
    novelty_p_value       DOUBLE,       -- its weighted least-squares trend test
    ni_sequential_passed  BOOLEAN,      -- guardrails: non-inferior by a sequential test
    required_units        BIGINT,       -- units per arm for the spec's mde and power
    required_units_pre_period BIGINT,   -- the same from the metric's pre-period variance
    not_estimable         VARCHAR,      -- why the metric has no effect at this look (NULL: it has)
    significant           BOOLEAN,      -- judged once, exp_dagster/significance.py (NULL: no effect)
    significance_test     VARCHAR,      -- group_sequential | always_valid | fixed_horizon
    significance_basis    VARCHAR,      -- the evidence in words: fixed-horizon p = 0.0123
    statistic             DOUBLE,       -- the t or z statistic of the test of abs_effect
    df                    DOUBLE,       -- its t distribution's degrees of freedom (NULL: z-test)
    rel_std_error         DOUBLE,       -- delta-method standard error of rel_effect
    sd_control            DOUBLE,       -- sd (ddof=1) of the per-unit value, before CUPED
    sd_treatment          DOUBLE,       --   (ratios: of the linearised values; quantiles: NULL)
    cuped_theta           DOUBLE,       -- CUPED's coefficient of the covariate (NULL: no CUPED)
    test_options          VARCHAR,      -- the analysis options in force, as JSON (sorted keys)
    control_ci_low        DOUBLE,       -- the control arm's own value: 1 - alpha interval
    control_ci_high       DOUBLE,       --   (means t, proportions Wilson, ratios delta; no CUPED)
    treatment_ci_low      DOUBLE,       -- the same for the treatment arm
    treatment_ci_high     DOUBLE
);
CREATE TABLE IF NOT EXISTS decision (
    experiment_id  VARCHAR   NOT NULL,
    as_of_date     DATE      NOT NULL,
    decision       VARCHAR   NOT NULL,
    variant        VARCHAR,              -- the variant to ship, when SHIP
    reasons        VARCHAR[] NOT NULL,
    srm_p_value    DOUBLE,
    spec_version   VARCHAR   NOT NULL,
    ramp_action    VARCHAR               -- continue_ramp | hold | roll_back while a ramp is in progress
);
-- A bandit experiment's traffic split for the day after as_of_date, from as_of_date's statistics
-- of its reward metric (exp_dagster/allocation.py): what the serving system reads.
CREATE TABLE IF NOT EXISTS bandit_allocations (
    experiment_id        VARCHAR NOT NULL,
    as_of_date           DATE    NOT NULL,
    applies_to           DATE    NOT NULL,   -- as_of_date + 1
    variant              VARCHAR NOT NULL,
    weight               DOUBLE  NOT NULL,   -- share of the traffic, >= floor, summing to 1
    probability_best     DOUBLE,             -- posterior P(best arm), Monte Carlo
    top_two_probability  DOUBLE,             -- top_two_thompson: the arm's top-two probability
    algorithm            VARCHAR NOT NULL,   -- thompson | top_two_thompson
    basis                VARCHAR NOT NULL,   -- posterior | burn-in | planned: <why>
    floor                DOUBLE  NOT NULL,
    metric               VARCHAR NOT NULL,   -- the reward metric
    n                    BIGINT  NOT NULL,   -- the arm's units through as_of_date
    mean                 DOUBLE,             -- the arm's observed mean reward
    draws                INTEGER,            -- Monte Carlo draws of the posterior
    monte_carlo_se       DOUBLE,             -- the largest Monte Carlo se of a probability_best
    seed                 BIGINT  NOT NULL,   -- from (experiment_id, as_of_date)
    spec_version         VARCHAR NOT NULL
);

-- Warehouses created by an earlier version gain the newer columns in place.
ALTER TABLE metric_statistics ADD COLUMN IF NOT EXISTS sum_cx DOUBLE;
ALTER TABLE metric_statistics ADD COLUMN IF NOT EXISTS sum_cx2 DOUBLE;
ALTER TABLE metric_statistics ADD COLUMN IF NOT EXISTS sum_xc DOUBLE;
ALTER TABLE metric_statistics ADD COLUMN IF NOT EXISTS sum_xcx DOUBLE;
ALTER TABLE metric_statistics ADD COLUMN IF NOT EXISTS sum_ycx DOUBLE;
ALTER TABLE metric_statistics ADD COLUMN IF NOT EXISTS sum_ccx DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS std_error DOUBLE;
ALTER TABLE quantile_histograms ADD COLUMN IF NOT EXISTS allocation_period VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS ni_p_value DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_method VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_look INTEGER;
ALTER TABLE results ADD COLUMN IF NOT EXISTS information_fraction DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_boundary DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_p_value DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_ci_low DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_ci_high DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sequential_significant BOOLEAN;
ALTER TABLE results ADD COLUMN IF NOT EXISTS p_value_adjusted DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS multiplicity_family VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS multiplicity_method VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS prob_better DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS expected_loss DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS credible_low DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS credible_high DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS power DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS mde_rel DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS days_needed DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS heterogeneity_p_value DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS segment_reversal BOOLEAN;
ALTER TABLE results ADD COLUMN IF NOT EXISTS novelty_slope DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS novelty_p_value DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS ni_sequential_passed BOOLEAN;
ALTER TABLE results ADD COLUMN IF NOT EXISTS required_units BIGINT;
ALTER TABLE results ADD COLUMN IF NOT EXISTS required_units_pre_period BIGINT;
ALTER TABLE results ADD COLUMN IF NOT EXISTS not_estimable VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS significant BOOLEAN;
ALTER TABLE results ADD COLUMN IF NOT EXISTS significance_test VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS significance_basis VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS statistic DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS df DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS rel_std_error DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sd_control DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS sd_treatment DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS cuped_theta DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS test_options VARCHAR;
ALTER TABLE results ADD COLUMN IF NOT EXISTS control_ci_low DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS control_ci_high DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS treatment_ci_low DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS treatment_ci_high DOUBLE;
ALTER TABLE decision ADD COLUMN IF NOT EXISTS ramp_action VARCHAR;
-- A did panel's cell of the units with no cluster value (cluster and treated NULL).
ALTER TABLE did_cluster_days ALTER COLUMN cluster DROP NOT NULL;
ALTER TABLE did_cluster_days ALTER COLUMN treated DROP NOT NULL;
ALTER TABLE did_effects ADD COLUMN IF NOT EXISTS note VARCHAR;
-- Model evaluation beside the A/B test (issue 6): one long table of every offline estimate of an
-- experiment-day, and the parity table that puts offline, counterfactual and online lifts side by
-- side. kind: ranking | ranking_comparison | off_policy | classifier | reliability |
-- interleaving | drift (see docs/pipeline.md, "Reports" and the model-evaluation assets).
CREATE TABLE IF NOT EXISTS offline_evaluation (
    experiment_id          VARCHAR NOT NULL,
    as_of_date             DATE    NOT NULL,
    kind                   VARCHAR NOT NULL,
    model                  VARCHAR NOT NULL,   -- the model (variant) evaluated; a comparison's candidate
    baseline               VARCHAR,            -- a comparison's baseline (the control)
    metric                 VARCHAR NOT NULL,
    value                  DOUBLE,             -- the estimate (a comparison's absolute difference)
    std_error              DOUBLE,
    ci_low                 DOUBLE,
    ci_high                DOUBLE,
    rel_effect             DOUBLE,             -- comparisons: candidate / baseline - 1
    rel_ci_low             DOUBLE,
    rel_ci_high            DOUBLE,
    p_value                DOUBLE,
    n                      BIGINT,             -- requests, logged rows, units or bin count
    effective_sample_size  DOUBLE,             -- off-policy rows: Kish's ESS of the weights
    mean_predicted         DOUBLE,             -- reliability rows: the bin's mean prediction
    detail                 VARCHAR,            -- warnings, drift status, what the row compares
    method                 VARCHAR,
    spec_version           VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS offline_online_parity (
    experiment_id       VARCHAR NOT NULL,
    as_of_date          DATE    NOT NULL,
    variant             VARCHAR NOT NULL,   -- the candidate
    baseline            VARCHAR NOT NULL,   -- the control
    evidence            VARCHAR NOT NULL,   -- offline ranking | counterfactual | interleaving | online A/B
    metric              VARCHAR NOT NULL,
    lift                DOUBLE,             -- relative lift (interleaving: preference in [-0.5, 0.5])
    ci_low              DOUBLE,
    ci_high             DOUBLE,
    p_value             DOUBLE,
    agrees_with_online  BOOLEAN,            -- same sign as the online primary metric's lift
    detail              VARCHAR,
    spec_version        VARCHAR NOT NULL
);
-- Offline metrics per segment of the exposures' segments map (as in results): 'all' / 'all' for
-- the whole day, else a spec segment and one of its values (the unit's value at first exposure).
ALTER TABLE offline_evaluation ADD COLUMN IF NOT EXISTS segment VARCHAR DEFAULT 'all';
ALTER TABLE offline_evaluation ADD COLUMN IF NOT EXISTS segment_value VARCHAR DEFAULT 'all';
