"""The statistics engine of exp_dagster: A/B tests on sufficient statistics.

Every test takes a few numbers per arm (counts, sums, sums of squares and cross-products) that any
warehouse computes with one ``GROUP BY variant``, and returns an :class:`EffectEstimate`: the arm
summaries, the absolute effect ``treatment - control`` and the relative lift
``treatment / control - 1`` with confidence intervals, the test statistic and the p-value. The
functions are pure and deterministic and depend only on numpy and scipy, so a data scientist can
call them in a notebook on numbers from any source and get exactly what the pipeline reports.

* :func:`welch_test`: means (Welch's t-test, unequal variances); :func:`student_t_test` (pooled
  variance) and :func:`paired_t_test` (within-unit designs) for the conventions of other tools.
* :func:`two_proportion_test`: proportions (z-test, pooled p-value, unpooled Wald interval;
  optional Yates correction); :func:`fisher_exact_test`: Fisher's exact test for small samples.
* :func:`ratio_test`: ratio metrics such as clicks per impression (delta method at the unit).
* :func:`cuped_test`: means with a pre-period covariate (CUPED, then Welch).
* :func:`quantile_test`: quantiles of clustered observations (Deng-Knoblich-Lu interval).
* :func:`srm_test`: sample ratio mismatch (chi-square against the planned weights).

Beyond the tests, each in its own module:

* :mod:`~exp_dagster.stats.regression`: CUPED with several covariates (regression adjustment,
  CUPAC) and CUPED for ratio metrics; :mod:`~exp_dagster.stats.stratification`:
  post-stratification on a categorical segment, and the stratified combination of any tests'
  per-stratum effects (ramped rollouts: strata are the phases of first exposure).
* :mod:`~exp_dagster.stats.sequential`: group-sequential alpha spending (Lan-DeMets O'Brien-Fleming
  and Pocock types), the design's power and inflation factor, and always-valid inference
  (mixture SPRT confidence sequences).
* :mod:`~exp_dagster.stats.multiplicity`: Bonferroni, Šidák, Holm, Holm-Šidák, Hochberg,
  Benjamini-Hochberg and Benjamini-Yekutieli adjustments.
* :mod:`~exp_dagster.stats.arms`: each arm's own interval (t for means; Wilson, Wald,
  Clopper-Pearson, Jeffreys for proportions).
* :mod:`~exp_dagster.stats.rank`: Mann-Whitney U with P(T > C) and its interval (per-unit values).
* :mod:`~exp_dagster.stats.noninferiority`: one-sided non-inferiority tests for guardrails.
* :mod:`~exp_dagster.stats.oec`: an overall evaluation criterion (weighted combination of
  several metrics, variance from their joint covariance) and metric trees (a product of factors
  whose log lifts add up to the total's).
* :mod:`~exp_dagster.stats.power`: sample size, MDE, achieved power, days still needed.
* :mod:`~exp_dagster.stats.bayes`: posterior of the lift, probability to beat control, expected
  loss.
* :mod:`~exp_dagster.stats.heterogeneity`: segment × treatment heterogeneity (Cochran's Q, or
  the robust Wald test of the interaction with an HC0-HC3 covariance from cell moments) and
  the trend of the effect over days since exposure (novelty).
* :mod:`~exp_dagster.stats.did`: difference-in-differences for rollouts that were not randomised
  (per market, per store): the 2×2 effect and the event study with its parallel-trends check,
  CR1 cluster-robust, from counts and sums per cluster × period.
* :mod:`~exp_dagster.stats.srm`: sample ratio mismatch overall, per segment, over days and per
  ramp phase.

Conventions shared by all tests: ``alternative`` is ``"two-sided"``, ``"greater"`` (the
alternative is ``treatment - control > 0``) or ``"less"``; intervals have level ``1 - alpha`` and
are one-sided for one-sided alternatives (the other bound infinite), consistent with the p-value;
variances use ``ddof=1``; the relative lift's interval is by the delta method on the natural scale
with the same critical value as the absolute interval, and is ``nan`` when the control summary is 0.
Every two-arm test also takes ``distribution`` (``"default"``: its own reference; ``"normal"``;
``"t"``, with Welch-Satterthwaite df where it has none) and ``p_value_scale`` (``"absolute"``, or
``"relative"``: the p-value of the relative lift, :func:`relative_lift_test`), the conventions of
the peer libraries (docs/statistics.md).

Examples:
    >>> from exp_dagster.stats import Moments, welch_test
    >>> control = Moments.from_values([3.1, 2.9, 3.4, 3.0, 2.8, 3.3])
    >>> treatment = Moments.from_values([3.6, 3.2, 3.9, 3.4, 3.5, 3.8])
    >>> result = welch_test(control, treatment)
    >>> round(result.abs_effect, 4), round(result.rel_effect, 4), round(result.p_value, 4)
    (0.4833, 0.1568, 0.0067)
"""

from __future__ import annotations

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.arms import mean_interval, proportion_interval
from exp_dagster.stats.bandit import (
    ArmPosterior,
    BanditAllocation,
    StratifiedArmMeans,
    StratumArm,
    allocation_seed,
    apply_floor,
    bandit_allocation,
    mean_posterior,
    proportion_posterior,
    stratified_arm_means,
    top_two_probabilities,
)
from exp_dagster.stats.bayes import (
    BayesianSummary,
    BetaBinomialSummary,
    bayesian_summary,
    beta_binomial_summary,
)
from exp_dagster.stats.cuped import cuped_test
from exp_dagster.stats.did import (
    ClusterPeriodSums,
    DiDResult,
    EventStudyResult,
    did_test,
    event_study,
)
from exp_dagster.stats.effects import EffectEstimate, relative_lift, relative_lift_test
from exp_dagster.stats.heterogeneity import (
    HeterogeneityResult,
    TrendResult,
    heterogeneity_test,
    interaction_test,
    trend_test,
)
from exp_dagster.stats.means import paired_t_test, student_t_test, welch_test
from exp_dagster.stats.moments import CovariateMoments, Moments, RatioMoments
from exp_dagster.stats.multiplicity import (
    AdjustedPValue,
    adjust_family,
    adjust_p_values,
    benjamini_hochberg,
    benjamini_yekutieli,
    bonferroni,
    hochberg,
    holm,
    holm_sidak,
    sidak,
)
from exp_dagster.stats.noninferiority import (
    NonInferiorityResult,
    non_inferiority_from_effect,
    non_inferiority_test,
)
from exp_dagster.stats.oec import (
    MetricTreeResult,
    OECResult,
    TreeFactor,
    linearise_ratio,
    metric_tree,
    oec_test,
)
from exp_dagster.stats.power import (
    PowerSummary,
    SampleSize,
    achieved_power,
    days_needed,
    minimum_detectable_effect,
    power_summary,
    proportion_variance,
    required_information,
    sample_size,
)
from exp_dagster.stats.proportions import (
    FisherExactResult,
    fisher_exact_test,
    two_proportion_test,
)
from exp_dagster.stats.quantile import QuantileArm, quantile_from_histogram, quantile_test
from exp_dagster.stats.rank import MannWhitneyResult, mann_whitney_test
from exp_dagster.stats.ratio import ratio_test
from exp_dagster.stats.regression import CrossMoments, cuped_ratio_test, regression_adjusted_test
from exp_dagster.stats.sequential import (
    AlwaysValidResult,
    GroupSequentialResult,
    SequentialPower,
    always_valid_test,
    group_sequential_boundaries,
    group_sequential_power,
    group_sequential_test,
    sequential_inflation_factor,
    spending_function,
)
from exp_dagster.stats.srm import (
    PhasedSRMResult,
    SRMOverTime,
    SRMResult,
    first_srm_day,
    srm_by_phase,
    srm_by_segment,
    srm_test,
)
from exp_dagster.stats.stratification import post_stratified_test, stratified_effect

__all__ = [
    "AdjustedPValue",
    "Alternative",
    "AlwaysValidResult",
    "ArmPosterior",
    "BanditAllocation",
    "BayesianSummary",
    "BetaBinomialSummary",
    "ClusterPeriodSums",
    "CovariateMoments",
    "CrossMoments",
    "DiDResult",
    "EffectEstimate",
    "EventStudyResult",
    "FisherExactResult",
    "GroupSequentialResult",
    "HeterogeneityResult",
    "MannWhitneyResult",
    "MetricTreeResult",
    "Moments",
    "NonInferiorityResult",
    "OECResult",
    "PhasedSRMResult",
    "PowerSummary",
    "QuantileArm",
    "RatioMoments",
    "SRMOverTime",
    "SRMResult",
    "SampleSize",
    "SequentialPower",
    "StratifiedArmMeans",
    "StratumArm",
    "TreeFactor",
    "TrendResult",
    "achieved_power",
    "adjust_family",
    "adjust_p_values",
    "allocation_seed",
    "always_valid_test",
    "apply_floor",
    "bandit_allocation",
    "bayesian_summary",
    "benjamini_hochberg",
    "benjamini_yekutieli",
    "beta_binomial_summary",
    "bonferroni",
    "cuped_ratio_test",
    "cuped_test",
    "days_needed",
    "did_test",
    "event_study",
    "first_srm_day",
    "fisher_exact_test",
    "group_sequential_boundaries",
    "group_sequential_power",
    "group_sequential_test",
    "heterogeneity_test",
    "hochberg",
    "holm",
    "holm_sidak",
    "interaction_test",
    "linearise_ratio",
    "mann_whitney_test",
    "mean_interval",
    "mean_posterior",
    "metric_tree",
    "minimum_detectable_effect",
    "non_inferiority_from_effect",
    "non_inferiority_test",
    "oec_test",
    "paired_t_test",
    "post_stratified_test",
    "power_summary",
    "proportion_interval",
    "proportion_posterior",
    "proportion_variance",
    "quantile_from_histogram",
    "quantile_test",
    "ratio_test",
    "regression_adjusted_test",
    "relative_lift",
    "relative_lift_test",
    "required_information",
    "sample_size",
    "sequential_inflation_factor",
    "sidak",
    "spending_function",
    "srm_by_phase",
    "srm_by_segment",
    "srm_test",
    "stratified_arm_means",
    "stratified_effect",
    "student_t_test",
    "top_two_probabilities",
    "trend_test",
    "two_proportion_test",
    "welch_test",
]
