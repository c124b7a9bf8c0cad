"""From sufficient statistics to result rows: which test each metric gets, and what surrounds it.

Conventions (also printed in every result row's ``method``):

* mean metrics: Welch t-test on per-unit values; with a pre-period, CUPED with θ pooled over arms
  (Deng et al. 2013) and Welch on the adjusted values.
* proportion metrics: two-proportion z-test, pooled variance for the p-value and unpooled (Wald)
  for the CI; with a pre-period, CUPED on the 0/1 unit values (sample variances; with
  ``cuped_theta: pooled`` and ``cuped_variance: population``, GrowthBook's binomial CUPED).
* ratio metrics: ratio of sums per arm, delta-method variance at the randomisation unit
  (Deng, Knoblich & Lu 2018), z-test; with a pre-period, CUPED on the linearised ratio with the
  same ratio before exposure as covariate.
* quantile metrics: Deng-Knoblich-Lu clustered interval read from the arm's histogram.
* these are the defaults; which test a metric gets is its kind's (:mod:`exp_dagster.metric_kinds`),
  and the options ``relative_ci``, ``cuped`` (``auto`` | ``off``), ``cuped_theta``
  (``within`` | ``pooled``), ``cuped_variance`` (``sample`` | ``population``),
  ``proportion_test`` (``pooled`` | ``unpooled``), ``continuity``, ``mean_test`` (``welch`` |
  ``student``), ``reference_distribution`` (``default`` | ``t`` | ``normal``), ``p_value_scale``
  (``absolute`` | ``relative``), ``proportion_ci`` (``unpooled`` | ``pooled``) and
  ``proportion_ci_clip`` in the spec's ``analysis``, overridable per metric in the catalog,
  choose among the library's conventions.
* every test two-sided at the spec's alpha; relative lift = treatment / control − 1 with
  Fieller's CI by default (``analysis.relative_ci: fieller``): the set of ratios r for which
  the test of ``treatment = r × control`` with the absolute test's variances and critical value
  does not reject. At r = 1 that is the absolute test itself, so the relative CI excludes 0
  exactly when the absolute CI does, and for every test but the two-proportion one (pooled
  p-value, unpooled intervals) exactly when the p-value is below alpha. When the control mean
  is not significantly different from 0 the set is unbounded and reported as (−∞, +∞); the
  p-value then decides (the relative lift has no finite interval). ``relative_ci: delta`` gives
  the symmetric delta-method CI instead, which can cover 0 while the p-value is significant;
  ``log`` the log-scale delta method (tea-tasting) and ``divided`` the absolute CI over the
  control mean (spotify-confidence), for teams reproducing those tools' numbers.
* sequential (overall rows): the day's estimate is one look of a sequence that starts on the first
  day. Each look's information is scale-free by default (``analysis.sequential_information:
  relative``): ``(m / se)²`` with ``m`` the pooled mean of both arms at that look, so that a
  cumulative metric (a per-unit sum, a count, "ever converted"), whose values and standard error
  grow day by day, still gains information as units and days accrue; ``absolute`` is ``1 / se²``.
  ``group_sequential``: Lan-DeMets alpha spending at the share of planned days elapsed, the
  boundaries' correlations ``sqrt(I_j / I_k)`` from that information; the sequential CI is the
  repeated confidence interval. ``always_valid``: mixture SPRT on the relative scale
  (``effect / m`` with standard error ``se / m``) with a normal mixture of sd ``msprt_tau``; the
  always-valid p-value, and the confidence sequence carried back to the metric's scale at the
  current look.
* multiplicity: adjusted p-values within explicit families: the primary metric across
  treatments, secondary metrics × treatments, guardrail non-inferiority p-values, and each metric
  × treatment's segment values.
* significance: every row with an effect is judged significant or not once, here
  (:mod:`exp_dagster.significance`: the spec's sequential test where the row carries it, the
  fixed-horizon one otherwise, on the p-value adjusted within the row's family where that family
  adjusts it); the decision and the report read ``significant`` and ``significance_basis``.
* guardrails: additionally a one-sided non-inferiority test at level alpha: the (1 − alpha) bound
  of the effect in the harmful direction must stay within the margin; under a sequential method
  also a sequential non-inferiority test over the looks (``ni_sequential_passed``), which is what
  the decision uses, so that reading the guardrail daily is not a peek either: a one-sided
  Lan-DeMets test of the shifted effect (``group_sequential``) or the one-sided, half-normal
  mixture confidence sequence at level alpha (``always_valid``; Howard et al. 2021).
* Bayesian summary: normal approximation of the relative lift (delta-method standard error)
  under a flat prior or the spec's normal prior centred on 0.
* power: per-unit variance implied by the test's standard error (CUPED-reduced when CUPED ran),
  normal approximation, at the spec's relative ``mde`` and ``power``, on the absolute scale
  (``mde × |control mean|``) or with ``analysis.power_scale: relative`` the lift over its
  delta-method standard error (GrowthBook); days still needed at the
  last day's rate of new units; units per arm a design needs from that variance and from the
  metric's own pre-period variance (the plan one would have made without CUPED).
* post-stratification (``analysis.stratify_by``): mean and proportion metrics without a CUPED
  covariate are estimated within the values of that segment column and weighted by their pooled
  share of units (Miratrix, Sekhon & Yu 2013); CUPED takes precedence where a pre-period exists.
* novelty: weighted least-squares trend of the daily relative lift over days since first
  exposure (a screening test; the daily cohorts share units); days are calendar days from the
  exposure day, or with ``analysis.novelty_period: 24h`` 24-hour periods from the exposure.
* metric windows (``window_days: [d0, d1]`` on a metric): each unit's value counts its events in
  ``[exposure + d0 × 24 h, exposure + (d1 + 1) × 24 h)``, and only units whose window has elapsed
  by the analysis day (or the end date) are analysed, so the metric's units grow as units mature;
  the row's ``method`` says so, and a metric whose window has elapsed for no unit is not
  estimable, with that reason.
* segments: Cochran's Q test of segment × treatment heterogeneity across the values of each
  segment column; a reversal is a segment value whose CI excludes 0 on the other side. Its
  standard errors are the segment tests' own by default (``analysis.heterogeneity_covariance:
  test``), or for mean and proportion metrics an HC0-HC3 covariance of the regression
  ``y ~ segment * treatment`` on the per-unit values.
* ramped rollouts (the spec's ``ramp``): the overall effect is the metric's own test within each
  ramp phase of first exposure (the derived segment ``ramp_phase``), combined with the phases'
  pooled shares of units (:func:`~exp_dagster.stats.stratified_effect`), because the traffic
  weights change between phases; a segment value's row likewise, from the segment's cells per
  phase (``<segment>|ramp_phase``); a quantile metric's is the phase-weighted average of the
  within-phase quantile differences. Statistics without per-phase cells get the pooled test, and
  their ``method`` says so.
* bandit experiments (the spec's ``bandit``): the same, each day of first exposure its own
  allocation period (the derived segment ``allocation_day``; segment cells
  ``<segment>|allocation_day``, quantile histograms per day), since the bandit changes the split
  every day (docs/statistics.md, "Bandit allocation").
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from exp_dagster.metric_kinds import (
    AnalysisOptions,
    NotEstimable,
    covariate_moments,
    launch_period_unsupported,
    moments,
    resolve_options,
)
from exp_dagster.oec_results import OEC_ROLE, oec_rows
from exp_dagster.result_row import RESULT_COLUMNS, ResultRow
from exp_dagster.significance import adjusted_p_key, significance_fields
from exp_dagster.spec import (
    ALLOCATION_SEGMENTS,
    LAUNCH_PERIOD_SEGMENT,
    PHASE_CROSS_SEPARATOR,
    AnalysisPolicy,
    ExperimentSpec,
    MetricSpec,
    ResolvedExperiment,
    is_phase_cross_segment,
    phase_cross_segment,
)
from exp_dagster.stats import (
    EffectEstimate,
    Moments,
    adjust_p_values,
    always_valid_test,
    bayesian_summary,
    group_sequential_test,
    heterogeneity_test,
    interaction_test,
    non_inferiority_test,
    post_stratified_test,
    power_summary,
    required_information,
    sample_size,
    stratified_effect,
    trend_test,
)

Row = Mapping[str, Any]
Cell = tuple[str, str, str]  # metric, segment, segment value

# The end of a row's method under a ramp when its cell has no per-phase statistics.
RAMP_POOLED_NOTE = (
    "; pooled over the ramp phases, not stratified by them: biased if the metric's level or the "
    "effect changes between phases"
)


def _pooled_note(spec: ExperimentSpec) -> str:
    """The end of a row's method when the spec has allocation periods (a ramp's phases, a
    bandit's days) but the row's cell has no per-period statistics (statistics written before
    they existed), so its effect is pooled over the periods."""
    if spec.bandit is None:
        return RAMP_POOLED_NOTE
    return (
        "; pooled over the allocation days, not stratified by them: biased under the bandit's "
        "changing split if the metric's level or the effect changes between days"
    )


NO_GUARDRAIL: dict[str, Any] = {
    "ni_margin": None,
    "ni_margin_type": None,
    "ni_bound": None,
    "ni_p_value": None,
    "ni_passed": None,
    "ni_sequential_passed": None,
}


def uses_cuped(
    metric: MetricSpec, control: Row, treatment: Row, options: AnalysisOptions | None = None
) -> bool:
    """Whether the metric's effect is CUPED-adjusted: its kind has a pre-period covariate, the
    ``cuped`` option allows it, and both arms carry the covariate (for a ratio, with some
    pre-period denominator)."""
    return metric.kind.uses_cuped(options or AnalysisOptions(), control, treatment)


def estimate(
    metric: MetricSpec,
    control: Row,
    treatment: Row,
    *,
    alpha: float,
    alternative: str = "two-sided",
    histograms: Mapping[str, Sequence[Row]] | None = None,
    options: AnalysisOptions | None = None,
) -> EffectEstimate:
    """The effect of one metric for one treatment against control, by the test its kind and
    its options (:func:`~exp_dagster.metric_kinds.resolve_options`; default: the platform's
    conventions) choose."""
    return metric.kind.estimate(
        metric,
        control,
        treatment,
        options=options or AnalysisOptions(),
        alpha=alpha,
        alternative=alternative,  # type: ignore[arg-type]
        histograms=histograms or {},
    )


def estimable(
    metric: MetricSpec, control: Row, treatment: Row, histograms: Mapping[str, Sequence[Row]]
) -> bool:
    """Whether both arms carry enough to define the effect: two units each, a non-zero ratio
    denominator, observations for a quantile. Cells that are not (e.g. a tiny segment) are skipped.
    """
    return _missing_data(metric, control, treatment, histograms) is None


def _missing_data(
    metric: MetricSpec,
    control: Row | None,
    treatment: Row | None,
    histograms: Mapping[str, Sequence[Row]],
    arm_names: tuple[str, str] = ("control", "treatment"),
) -> NotEstimable | None:
    """What is missing for the effect to be defined, before any test runs (None: nothing)."""
    kind = metric.kind
    for name, arm in zip(arm_names, (control, treatment), strict=True):
        missing = kind.missing_observations(metric, arm, name, histograms)
        if missing is not None:
            return missing
        units = 0 if arm is None else int(arm["n"])
        if units < 2 and metric.window_days is not None:
            return _window_not_elapsed(metric, units, name)
        if units < 2:
            return NotEstimable(
                f"not estimable: {units} unit{'' if units == 1 else 's'} in {name} "
                f"(a variance needs 2)"
            )
    for name, arm in zip(arm_names, (control, treatment), strict=True):
        assert arm is not None  # two units each, checked above
        missing = kind.missing_denominator(metric, arm, name)
        if missing is not None:
            return missing
    return None


def _window_not_elapsed(metric: MetricSpec, units: int, name: str) -> NotEstimable:
    """Why a windowed metric has too few units in an arm: too few have been exposed long enough
    for their window to elapse (only those are analysed)."""
    assert metric.window_days is not None
    hours = (metric.window_days[1] + 1) * 24
    if units == 0:
        return NotEstimable(
            f"not estimable: the metric's window ({metric.window_text}) has elapsed for no unit "
            f"of {name} yet: a unit counts once {hours} h have passed since its exposure, by the "
            f"end of the analysis day (or of the end date)"
        )
    return NotEstimable(
        f"not estimable: 1 unit in {name} whose window ({metric.window_text}) has elapsed "
        f"(a variance needs 2)"
    )


def _no_variance(
    metric: MetricSpec, effect: EffectEstimate, arm_names: tuple[str, str]
) -> NotEstimable | None:
    """A test whose standard error is 0 (every unit has the same value in both arms) or not a
    number says nothing: the effect is not estimable rather than infinitely significant."""
    if math.isfinite(effect.std_error) and effect.std_error > 0.0:
        return None
    no_events = metric.kind.no_events(metric, effect)
    if no_events is not None:
        return no_events
    values = (
        f"{effect.mean_control:g}"
        if effect.mean_treatment == effect.mean_control
        else f"{effect.mean_control:g} in {arm_names[0]} and {effect.mean_treatment:g} in "
        f"{arm_names[1]}"
    )
    return NotEstimable(f"not estimable: no variance (every unit's value is {values})")


def _undefined_p_value(effect: EffectEstimate, arm_names: tuple[str, str]) -> NotEstimable | None:
    """A p-value of the relative lift (``p_value_scale: relative``) does not exist while the
    control's value is 0, nor on the log scale (``relative_ci: log``) while the arms' values have
    opposite signs or one is 0: the row says so rather than carry a p-value of ``nan``, which no
    significance, multiplicity or results gate could read."""
    if not math.isnan(effect.p_value):
        return None
    if effect.mean_control == 0.0:
        why = f"{arm_names[0]}'s value is 0, so the relative lift is undefined"
    else:
        why = (
            f"the log of the ratio {effect.mean_treatment:g} / {effect.mean_control:g} is undefined"
        )
    return NotEstimable(
        f"not estimable: its p-value tests the relative lift (p_value_scale: relative) and {why}; "
        f"set p_value_scale: absolute on this metric to test the difference instead"
    )


def name_missing_events(
    reason: NotEstimable, logged: Collection[str], quarantined: Mapping[str, int]
) -> str:
    """The reason, sharpened by what the logs hold: an event name no log row has (a typo, with
    the closest names logged) or one whose every row was quarantined.

    Args:
        reason: why the metric is not estimable.
        logged: the event names of the validated event rows (``event_facts``) so far.
        quarantined: rows in ``event_quarantine`` by event name so far.
    """
    event = reason.missing_event
    if event is None or event in logged:
        return reason.reason
    if not logged and not quarantined:
        return "not estimable: no event rows in the logs yet (no traffic)"
    if quarantined.get(event):
        return (
            f"not estimable: every '{event}' event was quarantined ({quarantined[event]:,} "
            f"row(s); see event_quarantine for the reasons)"
        )
    close = difflib.get_close_matches(event, sorted(logged), n=3, cutoff=0.6)
    if close:
        names = " or ".join(f"'{name}'" for name in close)
        return f"not estimable: no events named '{event}' in the logs — did you mean {names}?"
    # Not a near miss: perhaps nobody did it yet, perhaps another name; show what is logged.
    shown = sorted(logged)[:8]
    more = f" and {len(logged) - len(shown)} more" if len(logged) > len(shown) else ""
    return f"not estimable: no '{event}' events in the logs yet (logged: {', '.join(shown)}{more})"


# ── one day's statistics, arranged ──────────────────────────────────────────────────────────


class DayStatistics:
    """One day's ``metric_statistics`` and ``quantile_histograms`` rows, indexed for lookups."""

    def __init__(self, statistics: Iterable[Row], histograms: Iterable[Row] = ()) -> None:
        self.cells: dict[Cell, dict[str, Row]] = defaultdict(dict)
        for row in statistics:
            key = (str(row["metric"]), str(row["segment"]), str(row["segment_value"]))
            self.cells[key][str(row["variant"])] = row
        # A quantile metric's histograms per variant: of all its units (allocation_period NULL),
        # and with allocation periods (a ramp's phases, a bandit's days) of the units of each
        # period of first exposure.
        self.histograms: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
        self.phase_histograms: dict[tuple[str, str], dict[str, list[Row]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for row in histograms:
            phase = row.get("allocation_period")
            if phase is None:
                self.histograms[str(row["metric"])][str(row["variant"])].append(row)
            else:
                key = (str(row["metric"]), str(phase))
                self.phase_histograms[key][str(row["variant"])].append(row)

    def histograms_of(self, cell: Cell) -> Mapping[str, Sequence[Row]]:
        """The quantile histograms of a cell's units per variant: an allocation period's own (a
        ramp phase's, a bandit's day's), else the metric's pooled ones (a quantile metric has no
        other segment cells)."""
        if cell[1] in ALLOCATION_SEGMENTS:
            return self.phase_histograms[(cell[0], cell[2])]
        return self.histograms[cell[0]]

    def phase_cells(self, cell: Cell, period: str | None) -> dict[str, Cell]:
        """The cells of ``cell``'s units per allocation period of first exposure (``period``:
        the spec's allocation segment, ``ramp_phase`` or ``allocation_day``), by the period's
        first day: the ``period`` cells for the overall cell, the segment crossed with the period
        (:func:`~exp_dagster.spec.phase_cross_segment`) for a segment value; empty when the
        statistics have none (no ramp or bandit, a quantile metric's segment)."""
        metric, segment, value = cell
        if period is None:
            return {}
        if segment == "all":
            return {v: (m, s, v) for (m, s, v) in self.cells if m == metric and s == period}
        crossed = phase_cross_segment(segment, period)
        prefix = f"{value}{PHASE_CROSS_SEPARATOR}"
        return {
            v[len(prefix) :]: (m, s, v)
            for (m, s, v) in self.cells
            if m == metric
            and s == crossed
            and v.startswith(prefix)
            # the phase is the last part: a value "a|b" must not take "a"'s cells
            and PHASE_CROSS_SEPARATOR not in v[len(prefix) :]
        }

    def effect(
        self,
        experiment: ResolvedExperiment,
        cell: Cell,
        variant: str,
        *,
        alternative: str = "two-sided",
    ) -> EffectEstimate | None:
        """The effect of ``variant`` in ``cell``, or None when the cell is not estimable."""
        outcome = self.outcome(experiment, cell, variant, alternative=alternative)
        return outcome if isinstance(outcome, EffectEstimate) else None

    def outcome(
        self,
        experiment: ResolvedExperiment,
        cell: Cell,
        variant: str,
        *,
        alternative: str = "two-sided",
    ) -> EffectEstimate | NotEstimable:
        """The effect of ``variant`` in ``cell``, or why it is not estimable: an arm without two
        units, a ratio without denominator, a quantile without observations, no variance."""
        spec = experiment.spec
        metric = experiment.metrics[cell[0]]
        arms = self.cells.get(cell, {})
        control, treatment = arms.get(spec.control), arms.get(variant)
        hist = self.histograms_of(cell)
        missing = _missing_data(metric, control, treatment, hist, (spec.control, variant))
        if missing is not None:
            return missing
        assert control is not None and treatment is not None  # checked by _missing_data
        stratum = spec.analysis.stratify_by
        options = resolve_options(metric, spec.analysis)
        if spec.allocation_segment is not None and cell[1] != spec.allocation_segment:
            return self._ramp_stratified(experiment, cell, variant, alternative)
        if (
            stratum
            and cell[1] == "all"
            and metric.kind.post_stratifiable
            and not uses_cuped(metric, control, treatment, options)
        ):
            effect = self._post_stratified(experiment, cell[0], stratum, variant, alternative)
        else:
            effect = estimate(
                metric,
                control,
                treatment,
                alpha=spec.alpha,
                alternative=alternative,
                histograms=hist,
                options=options,
            )
        return (
            _no_variance(metric, effect, (spec.control, variant))
            or _undefined_p_value(effect, (spec.control, variant))
            or effect
        )

    def _ramp_stratified(
        self, experiment: ResolvedExperiment, cell: Cell, variant: str, alternative: str
    ) -> EffectEstimate | NotEstimable:
        """The effect in a cell of an experiment with allocation periods (a ramp's phases, a
        bandit's days; overall, or a segment value): the metric's own test within each period of
        first exposure (the cell's :meth:`phase_cells`), combined with the periods' pooled shares
        of units (:func:`~exp_dagster.stats.stratified_effect`), so that the changing traffic
        weights do not confound the treatment with the period. A quantile metric's per-period
        effect is the difference of the period's quantiles, so its estimand is the
        period-weighted average of within-period quantile differences (not the difference of
        pooled quantiles). A period whose effect is not estimable yet (fewer than two units in an
        arm) is left out, and ``method`` says so. A cell without per-period statistics
        (statistics written before they existed) gets the pooled test, and ``method`` says that
        it is not stratified."""
        spec = experiment.spec
        metric_name = cell[0]
        metric = experiment.metrics[metric_name]
        options = resolve_options(metric, spec.analysis)
        period, periods = spec.allocation_period_words
        unit, units = period.split()[-1], periods.split()[-1]  # "phase(s)" or "day(s)"
        phase_cells = self.phase_cells(cell, spec.allocation_segment)
        phases = sorted(phase_cells)
        if not phases:
            arms = self.cells[cell]
            plain = estimate(
                metric,
                arms[spec.control],
                arms[variant],
                alpha=spec.alpha,
                alternative=alternative,
                histograms=self.histograms_of(cell),
                options=options,
            )
            pooled = replace(plain, method=plain.method + _pooled_note(spec))
            return (
                _no_variance(metric, pooled, (spec.control, variant))
                or _undefined_p_value(pooled, (spec.control, variant))
                or pooled
            )
        strata: list[EffectEstimate] = []
        used: list[str] = []
        left_out: list[str] = []
        for phase in phases:
            arms = self.cells[phase_cells[phase]]
            hist = self.histograms_of((metric_name, spec.allocation_segment, phase))
            control, treatment = arms.get(spec.control), arms.get(variant)
            missing = _missing_data(metric, control, treatment, hist, (spec.control, variant))
            if missing is None:
                assert control is not None and treatment is not None
                effect = estimate(
                    metric,
                    control,
                    treatment,
                    alpha=spec.alpha,
                    alternative=alternative,
                    histograms=hist,
                    options=options,
                )
                missing = _no_variance(metric, effect, (spec.control, variant)) or (
                    _undefined_p_value(effect, (spec.control, variant))
                )
            if missing is not None:
                left_out.append(f"{phase} ({missing.reason.removeprefix('not estimable: ')})")
                continue
            strata.append(effect)
            used.append(phase)
        if not strata:
            return NotEstimable(
                f"not estimable: no {period} has an estimable effect yet: {'; '.join(left_out)}"
            )
        combined = stratified_effect(
            strata,
            alpha=spec.alpha,
            alternative=alternative,  # type: ignore[arg-type]
            relative_ci=options.relative_ci,
            p_value_scale=options.p_value_scale,
        )
        within = strata[0].method.split("; ")[0]
        method = (
            f"{combined.method}; strata: the {periods} of first exposure (from "
            f"{', '.join(used)}), weighted by their shares of units; within each "
            f"{unit}: {within}"
        )
        if metric.kind.keeps_histograms:
            method += (
                f"; the estimand is the {unit}-weighted average of the within-{unit} quantile "
                f"differences (each {unit}'s arms randomised alike), not the difference of the "
                f"pooled quantiles"
            )
        if left_out:
            method += f"; {units} left out, not estimable yet: {', '.join(left_out)}"
        combined = replace(combined, method=method)
        return _undefined_p_value(combined, (spec.control, variant)) or combined

    def phase_units(self, experiment: ResolvedExperiment) -> dict[str, dict[str, int]]:
        """Units per variant in each allocation period of first exposure (a ramp phase, by its
        start date; a bandit's day), from the first metric with per-period statistics (the
        primary's, unless it is a quantile); empty without a ramp or a bandit."""
        spec = experiment.spec
        if spec.allocation_segment is None:
            return {}
        for name in [spec.metrics.primary, *spec.metric_names]:
            cells = {
                value: arms
                for (metric, segment, value), arms in self.cells.items()
                if metric == name and segment == spec.allocation_segment
            }
            if cells:
                return {
                    value: {v: int(arms[v]["n"]) if v in arms else 0 for v in spec.weights}
                    for value, arms in sorted(cells.items())
                }
        return {}

    def _post_stratified(
        self,
        experiment: ResolvedExperiment,
        metric_name: str,
        stratum: str,
        variant: str,
        alternative: str,
    ) -> EffectEstimate:
        """Post-stratification on the segment column ``stratum`` (the spec's ``stratify_by``).

        Strata are the column's values, weighted by their pooled share of units. A stratum with
        fewer than two units in an arm cannot carry a variance; the plain test is used instead
        and its ``method`` says why.
        """
        spec = experiment.spec
        metric = experiment.metrics[metric_name]
        options = resolve_options(metric, spec.analysis)
        values = sorted(v for (m, s, v) in self.cells if m == metric_name and s == stratum)
        controls, treatments = [], []
        for value in values:
            arms = self.cells[(metric_name, stratum, value)]
            control, treatment = arms.get(spec.control), arms.get(variant)
            controls.append(moments(control) if control else Moments(0, 0.0, 0.0))
            treatments.append(moments(treatment) if treatment else Moments(0, 0.0, 0.0))
        try:
            return post_stratified_test(
                controls,
                treatments,
                alpha=spec.alpha,
                alternative=alternative,  # type: ignore[arg-type]
                relative_ci=options.relative_ci,
                distribution=options.reference_distribution,
                p_value_scale=options.p_value_scale,
            )
        except ValueError as error:
            arms = self.cells[(metric_name, "all", "all")]
            plain = estimate(
                metric,
                arms[spec.control],
                arms[variant],
                alpha=spec.alpha,
                alternative=alternative,
                options=options,
            )
            return replace(plain, method=f"{plain.method} (not post-stratified: {error})")

    def units(self, experiment: ResolvedExperiment) -> dict[str, int]:
        """Units per variant in the primary metric's overall cell; when it has none (a quantile
        metric whose event no unit has yet), in the first other overall cell that has them."""
        names = [experiment.spec.metrics.primary, *experiment.spec.metric_names]
        for name in names:
            arms = self.cells.get((name, "all", "all"), {})
            if len(arms) == len(experiment.spec.weights):
                return {variant: int(row["n"]) for variant, row in arms.items()}
        arms = self.cells.get((experiment.spec.metrics.primary, "all", "all"), {})
        return {variant: int(row["n"]) for variant, row in arms.items()}

    def segment_units(self, experiment: ResolvedExperiment) -> dict[str, dict[str, int]]:
        """Units per variant within each ``segment=value`` of the primary metric (the ramp
        phases are not segments here: their splits differ by design, see :meth:`phase_units`)."""
        primary = experiment.spec.metrics.primary
        return {
            f"{segment}={value}": {variant: int(row["n"]) for variant, row in arms.items()}
            for (metric, segment, value), arms in sorted(self.cells.items())
            if metric == primary
            # the spec's own derived segments (a spec without a bandit may have a column
            # named allocation_day)
            and segment not in ("all", experiment.spec.allocation_segment, LAUNCH_PERIOD_SEGMENT)
            and not is_phase_cross_segment(segment)
        }


def history_by_day(
    statistics: Iterable[Row], histograms: Iterable[Row] = (), spec_version: str | None = None
) -> dict[dt.date, DayStatistics]:
    """Rows of several days (``as_of_date`` in each row) arranged per day.

    With ``spec_version``, statistics computed under another version of the spec are left out,
    so one day's sequential analysis never mixes versions: after a spec change, earlier days
    count as looks again once they are re-run under the new version (a backfill).
    """
    statistics_by: dict[dt.date, list[Row]] = defaultdict(list)
    histograms_by: dict[dt.date, list[Row]] = defaultdict(list)
    for row in statistics:
        if spec_version is not None and row.get("spec_version") != spec_version:
            continue
        statistics_by[row["as_of_date"]].append(row)
    for row in histograms:
        histograms_by[row["as_of_date"]].append(row)
    return {
        day: DayStatistics(rows, histograms_by.get(day, []))
        for day, rows in sorted(statistics_by.items())
    }


# ── the pieces of a result row ──────────────────────────────────────────────────────────────


def _guardrail_fields(
    experiment: ResolvedExperiment, metric: MetricSpec, effect: EffectEstimate
) -> dict[str, Any]:
    """The one-sided non-inferiority test on the margin's scale: the absolute effect, or the
    relative lift with its delta-method standard error, on the effect's own reference
    distribution (t with its df, or z)."""
    guardrail = experiment.spec.guardrail(metric.name)
    if guardrail is None:
        return dict(NO_GUARDRAIL)
    relative = guardrail.margin_type == "relative"
    estimate = effect.rel_effect if relative else effect.abs_effect
    std_error = effect.rel_std_error if relative else effect.std_error
    fields = {"ni_margin": guardrail.margin, "ni_margin_type": guardrail.margin_type}
    if not (math.isfinite(estimate) and math.isfinite(std_error)):
        return {**NO_GUARDRAIL, **fields, "ni_passed": False}
    test = non_inferiority_test(
        estimate,
        std_error,
        guardrail.margin,
        direction=metric.direction,
        alpha=experiment.spec.alpha,
        df=effect.df,
    )
    return {
        **fields,
        "ni_bound": test.bound,
        "ni_p_value": test.p_value,
        "ni_passed": bool(test.passed),
    }


def _sequential_guardrail_fields(
    experiment: ResolvedExperiment,
    metric: MetricSpec,
    looks: Sequence[tuple[dt.date, EffectEstimate]],
) -> dict[str, Any]:
    """Non-inferiority that stays valid under daily looks (``ni_sequential_passed``).

    The guardrail is judged every day, and shipping needs it non-inferior on the day the primary
    metric wins, so a fixed-horizon non-inferiority test read daily would be a peek too. Under
    ``group_sequential`` the shifted estimates ``effect + margin`` (harm = decrease) or
    ``effect − margin`` (harm = increase) get their own one-sided Lan-DeMets test at level alpha
    on the same spending times; under ``always_valid`` the one-sided confidence sequence of the
    relative or absolute lift (half-normal mixture SPRT at level alpha, valid for the composite
    null "harm ≥ margin") must clear the margin. One side of the two-sided sequence at level
    1 − 2·alpha, used before, has an error of alpha plus half the chance of crossing both sides,
    not guaranteed below alpha.
    """
    spec = experiment.spec
    guardrail = spec.guardrail(metric.name)
    method = spec.analysis.sequential
    if guardrail is None or method == "fixed_horizon" or not looks:
        return {"ni_sequential_passed": None}
    relative = guardrail.margin_type == "relative"
    estimates = [e.rel_effect if relative else e.abs_effect for _, e in looks]
    std_errors = [e.rel_std_error if relative else e.std_error for _, e in looks]
    usable = [
        (day, estimate, se)
        for (day, _), estimate, se in zip(looks, estimates, std_errors, strict=True)
        if math.isfinite(estimate) and math.isfinite(se) and se > 0
    ]
    if not usable or usable[-1][0] != looks[-1][0]:
        return {"ni_sequential_passed": None}
    harm_is_decrease = metric.direction == "increase"
    if method == "group_sequential":
        shift = guardrail.margin if harm_is_decrease else -guardrail.margin
        # A relative lift is scale-free already; an absolute one takes the looks' scales.
        scales = None if relative else sequential_scales(spec.analysis, looks)
        scale_of = dict(zip([day for day, _ in looks], scales or [], strict=False))
        result = group_sequential_test(
            [estimate + shift for _, estimate, _ in usable],
            [se for _, _, se in usable],
            [information_time(experiment, day) for day, _, _ in usable],
            alpha=spec.alpha,
            kind=spec.analysis.spending,
            rho=spec.analysis.spending_rho,
            alternative="greater" if harm_is_decrease else "less",
            information=None
            if scales is None
            else [(scale_of[day] / se) ** 2 for day, _, se in usable],
        )
        return {"ni_sequential_passed": bool(result.crossed)}
    tau = spec.analysis.msprt_tau or spec.mde
    if not relative:
        first_control = looks[0][1].mean_control
        tau *= abs(first_control) if first_control != 0.0 else 1.0
    sequence = always_valid_test(
        [estimate for _, estimate, _ in usable],
        [se for _, _, se in usable],
        alpha=spec.alpha,
        tau=tau,
        alternative="greater" if harm_is_decrease else "less",
        null_value=-guardrail.margin if harm_is_decrease else guardrail.margin,
    )
    passed = (
        sequence.ci_low > -guardrail.margin
        if harm_is_decrease
        else sequence.ci_high < guardrail.margin
    )
    return {"ni_sequential_passed": bool(passed)}


def information_time(experiment: ResolvedExperiment, day: dt.date) -> float:
    """Share of the planned days elapsed by ``day``: the spending time of a group-sequential
    look (calendar time, which Lan & DeMets allow when fixed in advance); 1 from the end date."""
    spec = experiment.spec
    planned = (spec.end - spec.start).days + 1
    return min(1.0, ((day - spec.start).days + 1) / planned)


def look_scale(effect: EffectEstimate) -> float:
    """The metric's scale at a look: the mean of both arms, weighted by their units."""
    units = effect.n_control + effect.n_treatment
    return (
        effect.n_control * effect.mean_control + effect.n_treatment * effect.mean_treatment
    ) / units


def sequential_scales(
    policy: AnalysisPolicy, looks: Sequence[tuple[dt.date, EffectEstimate]]
) -> list[float] | None:
    """The scale ``m`` of each look for the scale-free information ``(m / se)²``, or ``None``
    for ``1 / se²`` (asked for, or a metric centred on 0 whose pooled mean is 0 at some look)."""
    if policy.sequential_information == "absolute":
        return None
    scales = [abs(look_scale(effect)) for _, effect in looks]
    if all(math.isfinite(scale) and scale > 0.0 for scale in scales):
        return scales
    return None


def spending_times(
    experiment: ResolvedExperiment,
    days: Sequence[dt.date],
    information: Sequence[float] | None,
) -> list[float]:
    """The spending time of each look: the share of the planned days elapsed, or, when it is
    smaller, the share of the planned information gathered (``information``, as a running
    maximum, over :func:`~exp_dagster.stats.required_information` of the spec's ``mde``,
    ``alpha`` and ``power``).

    Calendar time alone spends too early when information arrives late (a ramp-up, a metric
    that accrues), and costs power at the end; information alone could reach 1 before the end
    date and leave later looks nothing. The smaller of the two never passes either, reaches 1
    on the end date, and depends on the data only through its information (Lan & DeMets 1983).
    With ``information`` ``None`` (``sequential_information: absolute``) it is calendar time.
    """
    calendar = [information_time(experiment, day) for day in days]
    if information is None:
        return calendar
    spec = experiment.spec
    target = required_information(spec.mde, alpha=spec.alpha, power=spec.power)
    gathered = list(itertools.accumulate(information, max))
    return [
        1.0 if time >= 1.0 else min(time, info / target)
        for time, info in zip(calendar, gathered, strict=True)
    ]


def _sequential_fields(
    experiment: ResolvedExperiment,
    looks: Sequence[tuple[dt.date, EffectEstimate]],
    *,
    alpha: float,
) -> dict[str, Any]:
    """Sequential boundary, p-value and interval of the absolute effect at the last look."""
    policy = experiment.spec.analysis
    empty = {
        "sequential_method": policy.sequential,
        "sequential_look": len(looks),
        "information_fraction": None,
        "sequential_boundary": None,
        "sequential_p_value": None,
        "sequential_ci_low": None,
        "sequential_ci_high": None,
        "sequential_significant": None,
    }
    if policy.sequential == "fixed_horizon" or not looks:
        return empty
    estimates = [e.abs_effect for _, e in looks]
    std_errors = [e.std_error for _, e in looks]
    scales = sequential_scales(policy, looks)
    if policy.sequential == "group_sequential":
        information = (
            None
            if scales is None
            else [(m / se) ** 2 for m, se in zip(scales, std_errors, strict=True)]
        )
        times = spending_times(experiment, [day for day, _ in looks], information)
        result = group_sequential_test(
            estimates,
            std_errors,
            times,
            alpha=alpha,
            kind=policy.spending,
            rho=policy.spending_rho,
            information=information,
        )
        return {
            **empty,
            "information_fraction": times[-1],
            "sequential_boundary": result.boundary,
            "sequential_ci_low": result.ci_low,
            "sequential_ci_high": result.ci_high,
            "sequential_significant": bool(result.crossed),
        }
    tau_relative = policy.msprt_tau or experiment.spec.mde
    if scales is not None:
        # On the relative scale the effect of a cumulative metric stays put while its absolute
        # size grows, so one mixture sd fits every look and the running intersection of the
        # intervals is meaningful; the sequence is carried back at the current look's scale.
        result = always_valid_test(
            [e / m for e, m in zip(estimates, scales, strict=True)],
            [se / m for se, m in zip(std_errors, scales, strict=True)],
            alpha=alpha,
            tau=tau_relative,
        )
        ci_low, ci_high = result.ci_low * scales[-1], result.ci_high * scales[-1]
    else:
        # The mixture sd must not change from look to look, or earlier looks' evidence would
        # be re-weighed: it is the relative tau times the control mean of the first look.
        first_control = looks[0][1].mean_control
        scale = abs(first_control) if first_control != 0.0 else 1.0
        result = always_valid_test(estimates, std_errors, alpha=alpha, tau=tau_relative * scale)
        ci_low, ci_high = result.ci_low, result.ci_high
    return {
        **empty,
        "information_fraction": information_time(experiment, looks[-1][0]),
        "sequential_p_value": result.p_value,
        "sequential_ci_low": ci_low,
        "sequential_ci_high": ci_high,
        "sequential_significant": bool(result.rejected),
    }


def _bayesian_fields(
    experiment: ResolvedExperiment, metric: MetricSpec, effect: EffectEstimate
) -> dict[str, Any]:
    se = effect.rel_std_error
    if not math.isfinite(effect.rel_effect) or not math.isfinite(se):
        return {
            "prob_better": None,
            "expected_loss": None,
            "credible_low": None,
            "credible_high": None,
        }
    summary = bayesian_summary(
        effect.rel_effect,
        se,
        direction=metric.direction,
        prior_sd=experiment.spec.analysis.prior_sd,
        credible_level=1.0 - experiment.spec.alpha,
    )
    return {
        "prob_better": summary.prob_better,
        "expected_loss": summary.expected_loss,
        "credible_low": summary.credible_low,
        "credible_high": summary.credible_high,
    }


def _power_fields(
    experiment: ResolvedExperiment,
    effect: EffectEstimate,
    new_units_per_day: float,
    n_comparisons: int,
    arms: tuple[Row, Row] | None = None,
) -> dict[str, Any]:
    """Power now, and the units per arm a design would need: from the variance the test saw
    (``required_units``) and, where a pre-period exists, from the metric's pre-period variance
    without CUPED (``required_units_pre_period``, what one would have planned with)."""
    spec = experiment.spec
    fields: dict[str, Any] = {
        "power": None,
        "mde_rel": None,
        "days_needed": None,
        "required_units": None,
        "required_units_pre_period": None,
    }
    if arms is not None and all(arm.get("sum_c") is not None for arm in arms):
        pre = [covariate_moments(arm) for arm in arms]
        pooled_n = sum(m.n for m in pre)
        pre_mean = sum(m.sum_c for m in pre) / pooled_n if pooled_n else 0.0
        pre_variance = sum((m.n - 1) * m.var_c for m in pre) / max(1, pooled_n - 2)
        if pre_mean != 0.0 and pre_variance > 0.0:
            relative = spec.analysis.power_scale == "relative"
            fields["required_units_pre_period"] = _units_or_none(
                sample_size(
                    spec.mde if relative else spec.mde * abs(pre_mean),
                    pre_variance,
                    alpha=spec.alpha,
                    power=spec.power,
                    n_comparisons=n_comparisons,
                    effect_scale=spec.analysis.power_scale,
                    control_mean=pre_mean if relative else None,
                ).n_control
            )
    if effect.std_error <= 0.0 or effect.mean_control == 0.0:
        return fields
    # The per-unit variance the test's standard error implies, the same in both arms:
    # se² = σ² (1/n_c + 1/n_t). With CUPED it is the adjusted (reduced) variance.
    variance = effect.std_error**2 / (1.0 / effect.n_control + 1.0 / effect.n_treatment)
    summary = power_summary(
        control_mean=effect.mean_control,
        variance_control=variance,
        variance_treatment=variance,
        n_control=effect.n_control,
        n_treatment=effect.n_treatment,
        target_relative_mde=spec.mde,
        alpha=spec.alpha,
        power=spec.power,
        new_units_per_day=new_units_per_day,
        n_comparisons=n_comparisons,
        effect_scale=spec.analysis.power_scale,
    )
    required = [summary.required_n_control, summary.required_n_treatment]
    return {
        **fields,
        "power": summary.power_at_target,
        # On the relative scale no lift may be detectable yet (an infinite MDE): NULL.
        "mde_rel": summary.mde_rel if math.isfinite(summary.mde_rel) else None,
        "days_needed": summary.days_needed,
        "required_units": _units_or_none(max(required)) if None not in required else None,
    }


BIGINT_MAX = 2**63 - 1


def _units_or_none(units: int | None) -> int | None:
    """A number of units for a BIGINT column: None beyond its range (more than 9.2e18 units,
    no experiment's reach; values up to the 1e12 cut-off and a tiny mde get there)."""
    return units if units is not None and units <= BIGINT_MAX else None


def novelty_fields(
    experiment: ResolvedExperiment,
    metric: MetricSpec,
    variant: str,
    novelty: Sequence[Row],
) -> dict[str, Any]:
    """Trend of the relative lift over days since first exposure (novelty or primacy).

    Each day since exposure ``k`` gets the metric's effect on that day alone, over the units
    observed on their ``k``-th day (a calendar day, or with ``analysis.novelty_period: 24h``
    the k-th 24-hour period since the unit's exposure, once it has ended); the trend is a
    weighted least-squares slope with known variances (:func:`~exp_dagster.stats.trend_test`), a
    screening test: the daily cohorts share units, so its p-value is optimistic.
    """
    spec = experiment.spec
    # Each day's cohort alone, without its pre-period covariate: the relative lift and its
    # delta-method standard error, which the relative_ci option does not change.
    options = replace(resolve_options(metric, spec.analysis), cuped="off")
    by_day: dict[int, dict[str, Row]] = defaultdict(dict)
    for row in novelty:
        if row["metric"] == metric.name:
            by_day[int(row["day_index"])][str(row["variant"])] = row
    days, lifts, std_errors = [], [], []
    for day_index, arms in sorted(by_day.items()):
        control, treatment = arms.get(spec.control), arms.get(variant)
        if control is None or treatment is None or not estimable(metric, control, treatment, {}):
            continue
        if metric.kind.control_is_zero(control):
            continue
        effect = estimate(metric, control, treatment, alpha=spec.alpha, options=options)
        se = effect.rel_std_error
        if math.isfinite(effect.rel_effect) and math.isfinite(se) and se > 0:
            days.append(float(day_index))
            lifts.append(effect.rel_effect)
            std_errors.append(se)
    if len(set(days)) < 3:
        return {"novelty_slope": None, "novelty_p_value": None}
    trend = trend_test(days, lifts, std_errors)
    return {"novelty_slope": trend.slope, "novelty_p_value": trend.p_value}


# ── multiplicity and heterogeneity over the day's rows ──────────────────────────────────────


def _adjust(rows: list[dict[str, Any]], key: str, family: str, method: str) -> None:
    """Write ``p_value_adjusted`` (from ``rows[i][key]``) for one family of hypotheses."""
    if not rows:
        return
    adjusted = adjust_p_values([_number(row[key]) for row in rows], method)  # type: ignore[arg-type]
    for row, value in zip(rows, adjusted, strict=True):
        row["p_value_adjusted"] = value
        row["multiplicity_family"] = family
        row["multiplicity_method"] = method


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def apply_multiplicity(experiment: ResolvedExperiment, rows: list[dict[str, Any]]) -> None:
    """Adjusted p-values within the spec's families (see :class:`~exp_dagster.spec.AnalysisPolicy`).

    primary: the primary metric across treatments (its always-valid p-values under
    ``always_valid``); secondary: secondary metrics × treatments; guardrail: the non-inferiority
    p-values of guardrails × treatments; oec: the OEC's p-values across treatments (the primary's
    method); segment: the segment values of each metric × treatment; launch: a holdout's
    launch periods of each metric × treatment. Rows that are not estimable are in no family
    (they have no p-value to adjust).
    """
    policy = experiment.spec.analysis
    rows = [r for r in rows if r.get("not_estimable") is None]
    overall = [r for r in rows if r["segment"] == "all"]
    primary = [r for r in overall if r["role"] == "primary"]
    _adjust(primary, adjusted_p_key(policy, "primary"), "primary", policy.primary_multiplicity)
    secondary = [r for r in overall if r["role"] == "secondary"]
    _adjust(secondary, "p_value", "secondary", policy.secondary_multiplicity)
    guardrails = [r for r in overall if r["role"] == "guardrail"]
    _adjust(guardrails, "ni_p_value", "guardrail", policy.guardrail_multiplicity)
    # The OEC across treatments, like the primary metric (one treatment: nothing to adjust).
    oec = [r for r in overall if r["role"] == OEC_ROLE]
    if len(oec) > 1:
        _adjust(oec, adjusted_p_key(policy, OEC_ROLE), OEC_ROLE, policy.primary_multiplicity)
    families: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["segment"] != "all":
            # a holdout's launch periods are a family of their own, not segments of the units
            kind = "launch" if row["segment"] == LAUNCH_PERIOD_SEGMENT else "segment"
            families[(kind, row["metric"], row["variant"])].append(row)
    for (kind, metric, variant), family in families.items():
        _adjust(family, "p_value", f"{kind}:{metric}:{variant}", policy.segment_multiplicity)


def apply_heterogeneity(
    experiment: ResolvedExperiment,
    rows: list[dict[str, Any]],
    cells: Mapping[Cell, Mapping[str, Row]] | None = None,
) -> None:
    """Cochran's Q across the values of each segment column, per metric × treatment.

    With ``analysis.heterogeneity_covariance`` ``test`` (default) it takes each segment value's
    effect and standard error as its test computed them. With ``HC0``-``HC3`` a mean or
    proportion metric instead gets the robust Wald test of the interaction of
    ``y ~ segment * treatment`` on its per-unit values, from the arms' moments in ``cells``
    (:func:`~exp_dagster.stats.interaction_test`).
    """
    policy = experiment.spec.analysis
    alpha = policy.heterogeneity_alpha
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["segment"] in ("all", LAUNCH_PERIOD_SEGMENT) or row.get("not_estimable") is not None:
            continue  # launch periods overlap (each runs to the day): no heterogeneity test
        usable = math.isfinite(row["abs_effect"]) and math.isfinite(row["std_error"])
        if usable and row["std_error"] > 0:
            groups[(row["metric"], row["variant"], row["segment"])].append(row)
    for (metric, variant, segment), group in groups.items():
        if len(group) < 2:
            continue
        labels = [r["segment_value"] for r in group]
        if (
            policy.heterogeneity_covariance != "test"
            and cells is not None
            and experiment.metrics[metric].kind.unit_mean_effect
        ):
            arms = [cells[(metric, segment, label)] for label in labels]
            result = interaction_test(
                [moments(arm[experiment.spec.control]) for arm in arms],
                [moments(arm[variant]) for arm in arms],
                labels,
                covariance=policy.heterogeneity_covariance,
                alpha=alpha,
            )
        else:
            result = heterogeneity_test(
                [r["abs_effect"] for r in group],
                [r["std_error"] for r in group],
                labels=labels,
                alpha=alpha,
            )
        for row in group:
            row["heterogeneity_p_value"] = result.p_value
            row["segment_reversal"] = row["segment_value"] in result.reversals


# ── the day's result rows ───────────────────────────────────────────────────────────────────


def compute_results(
    experiment: ResolvedExperiment,
    day: dt.date,
    statistics: Iterable[Row],
    histograms: Iterable[Row] = (),
    history: Mapping[dt.date, DayStatistics] | None = None,
    novelty: Sequence[Row] = (),
    event_names: Callable[[], tuple[Collection[str], Mapping[str, int]]] | None = None,
    cross_statistics: Iterable[Row] = (),
    cross_history: Mapping[dt.date, Iterable[Row]] | None = None,
) -> list[ResultRow]:
    """Result rows for every metric × treatment × segment value with both arms present, and the
    spec's OEC's row per treatment (:mod:`exp_dagster.oec_results`).

    A metric that is not estimable at this look (no units in an arm, no variance, no events,
    a ratio without denominator) still gets its overall row, with every estimate NULL and the
    reason in ``not_estimable``; its look is left out of the sequential tests.

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        statistics: rows of ``metric_statistics`` for the partition.
        histograms: rows of ``quantile_histograms`` for the partition.
        history: earlier days' overall statistics of the same experiment, by date, for the
            sequential tests (each day is one look) and the rate of new units. Days missing
            from it are looks not taken.
        novelty: rows of ``novelty_statistics`` for the partition (effects by day since first
            exposure).
        event_names: called at most once, when a metric lacks events: the event names logged
            so far and the quarantined rows by event name (see :func:`name_missing_events`).
        cross_statistics: rows of ``metric_cross_statistics`` for the partition (the OEC's
            metrics' cross-moments; none without an ``oec``).
        cross_history: earlier days' ``metric_cross_statistics`` rows under the same spec
            version, by date: the looks of the OEC's sequential test.

    Returns:
        One :class:`~exp_dagster.result_row.ResultRow` per row of the ``results`` table, each
        judged significant or not once, here (:mod:`exp_dagster.significance`).
    """
    spec = experiment.spec
    today = DayStatistics(statistics, histograms)
    past = {d: s for d, s in (history or {}).items() if spec.start <= d < day}
    previous_units = past[max(past)].units(experiment) if past else {}
    current_units = today.units(experiment)
    new_units = sum(current_units.values()) - sum(previous_units.values())
    elapsed = max(1, (min(day, spec.end) - spec.start).days + 1)
    # Units can also leave the overall cell (a unit seen in two variants is a crossover and
    # dropped, e.g. a rollout's treated units on its first day), so a day's change can be
    # negative: then no new units, not a negative rate.
    new_units_per_day = max(
        0.0,
        (new_units if previous_units else sum(current_units.values()) / elapsed)
        / max(1, len(spec.variants)),
    )
    n_treatments = len(spec.treatments)

    results: list[dict[str, Any]] = []
    missing: list[tuple[dict[str, Any], NotEstimable]] = []
    # Every metric of the spec gets an overall row, estimable or not; a segment value that is
    # not estimable (a tiny segment) is left out.
    cells = {cell for cell in today.cells if not is_phase_cross_segment(cell[1])}
    cells |= {(name, "all", "all") for name in spec.metric_names}
    # A holdout: every metric gets a row per launch so far, the effect since the launch.
    cells |= {
        (name, LAUNCH_PERIOD_SEGMENT, launch.name)
        for launch in spec.launches_by(min(day, spec.end))
        for name in spec.metric_names
    }
    for cell in sorted(cells):
        metric_name, segment, segment_value = cell
        metric = experiment.metrics[metric_name]
        role = spec.role_of(metric_name)
        for variant in spec.treatments:
            effect = (
                _launch_period_missing(experiment, cell)
                if segment == LAUNCH_PERIOD_SEGMENT and cell not in today.cells
                else today.outcome(experiment, cell, variant)
            )
            if isinstance(effect, NotEstimable):
                if segment in ("all", LAUNCH_PERIOD_SEGMENT):
                    row = _not_estimable_row(experiment, day, cell, variant, today, effect)
                    results.append(row)
                    missing.append((row, effect))
                continue
            row: dict[str, Any] = {
                # Fields a row does not set (overall-only ones on segment rows) are NULL.
                **dict.fromkeys(RESULT_COLUMNS),
                "experiment_id": spec.id,
                "as_of_date": day,
                "metric": metric_name,
                "metric_type": metric.type,
                "role": role,
                "direction": metric.direction,
                "segment": segment,
                "segment_value": segment_value,
                "control": spec.control,
                "variant": variant,
                "n_control": effect.n_control,
                "n_treatment": effect.n_treatment,
                "mean_control": effect.mean_control,
                "mean_treatment": effect.mean_treatment,
                "abs_effect": effect.abs_effect,
                "abs_ci_low": effect.abs_ci_low,
                "abs_ci_high": effect.abs_ci_high,
                "std_error": effect.std_error,
                "rel_effect": effect.rel_effect,
                "rel_ci_low": effect.rel_ci_low,
                "rel_ci_high": effect.rel_ci_high,
                "p_value": effect.p_value,
                # CUPED ran (it sets θ); post-stratification reduces variance without it.
                "cuped": effect.cuped_theta is not None,
                "variance_reduction": effect.variance_reduction,
                # A winsorised or windowed metric says so (both applied in SQL, before the sums).
                "method": effect.method + metric.winsorize_note + metric.window_note,
                "alpha": spec.alpha,
                **NO_GUARDRAIL,
                "spec_version": experiment.version,
                "not_estimable": None,
                **_reviewer_fields(experiment, metric, effect, today.cells[cell], variant),
            }
            if segment == "all":
                looks = [
                    (d, e)
                    for d in sorted(past)
                    if (e := past[d].effect(experiment, cell, variant)) is not None
                ]
                looks.append((day, effect))
                sequential_alpha = spec.alpha
                if role == "primary" and spec.analysis.sequential == "group_sequential":
                    sequential_alpha = spec.alpha / n_treatments  # Bonferroni across treatments
                row.update(_sequential_fields(experiment, looks, alpha=sequential_alpha))
                row.update(_bayesian_fields(experiment, metric, effect))
                row.update(
                    _power_fields(
                        experiment,
                        effect,
                        new_units_per_day,
                        n_treatments if role == "primary" else 1,
                        (today.cells[cell][spec.control], today.cells[cell][variant]),
                    )
                )
                if role == "guardrail":
                    row.update(_guardrail_fields(experiment, metric, effect))
                    row.update(_sequential_guardrail_fields(experiment, metric, looks))
                if metric.kind.has_novelty:
                    row.update(novelty_fields(experiment, metric, variant, novelty))
            results.append(row)
    if missing and event_names is not None:
        logged, quarantined = event_names()
        for row, reason in missing:
            row["not_estimable"] = row["method"] = name_missing_events(reason, logged, quarantined)
    # The OEC's looks are tested like the primary metric's: Bonferroni across treatments under
    # group_sequential, then adjusted across treatments (apply_multiplicity).
    oec_alpha = (
        spec.alpha / n_treatments if spec.analysis.sequential == "group_sequential" else spec.alpha
    )
    results.extend(
        oec_rows(
            experiment,
            day,
            cross_statistics,
            cross_history,
            lambda looks: _sequential_fields(experiment, looks, alpha=oec_alpha),
        )
    )
    apply_multiplicity(experiment, results)
    apply_heterogeneity(experiment, results, today.cells)
    # After multiplicity: a row is judged on its adjusted p-value where its family has one.
    return [ResultRow(**{**row, **significance_fields(experiment, row)}) for row in results]


def _launch_period_missing(experiment: ResolvedExperiment, cell: Cell) -> NotEstimable:
    """Why a holdout's launch period has no statistics: the metric's value does not add up
    over days, or the day before the launch has no current ``unit_metrics``."""
    metric = experiment.metrics[cell[0]]
    launch = next(x for x in experiment.spec.launches_by(dt.date.max) if x.name == cell[2])
    why = launch_period_unsupported(metric) or (
        f"unit_metrics of {launch.date - dt.timedelta(days=1)} (the day before the launch) is "
        f"missing or was computed from other inputs or spec; re-run that day, then this one"
    )
    return NotEstimable(f"not estimable since the launch of {launch.name}: {why}")


def _not_estimable_row(
    experiment: ResolvedExperiment,
    day: dt.date,
    cell: Cell,
    variant: str,
    today: DayStatistics,
    reason: NotEstimable,
) -> dict[str, Any]:
    """The result row of a metric without an effect at this look: units, and the reason in
    ``not_estimable`` (and ``method``); every estimate is NULL."""
    spec = experiment.spec
    metric = experiment.metrics[cell[0]]
    arms = today.cells.get(cell, {})
    control, treatment = arms.get(spec.control), arms.get(variant)
    return {
        **dict.fromkeys(RESULT_COLUMNS),
        "experiment_id": spec.id,
        "as_of_date": day,
        "metric": cell[0],
        "metric_type": metric.type,
        "role": spec.role_of(cell[0]),
        "direction": metric.direction,
        "segment": cell[1],
        "segment_value": cell[2],
        "control": spec.control,
        "variant": variant,
        "n_control": int(control["n"]) if control else 0,
        "n_treatment": int(treatment["n"]) if treatment else 0,
        "cuped": False,
        "method": reason.reason,
        "not_estimable": reason.reason,
        "alpha": spec.alpha,
        "sequential_method": spec.analysis.sequential,
        "spec_version": experiment.version,
        "test_options": _test_options(experiment, metric),
    }


def _test_options(experiment: ResolvedExperiment, metric: MetricSpec) -> str:
    """The analysis options in force for ``metric``, as compact JSON (``test_options``)."""
    policy = experiment.spec.analysis
    return metric.kind.options_text(resolve_options(metric, policy), policy.stratify_by)


def _reviewer_fields(
    experiment: ResolvedExperiment,
    metric: MetricSpec,
    effect: EffectEstimate,
    arms: Mapping[str, Row],
    variant: str,
) -> dict[str, Any]:
    """What a reviewer checks the test by: its statistic and degrees of freedom (None for a
    z-test), the relative lift's delta-method standard error (whichever interval
    ``relative_ci`` chose), each arm's per-unit standard deviation on the scale the test
    analyses, before CUPED (:meth:`~exp_dagster.metric_kinds.MetricKind.unit_std_dev`), CUPED's
    θ, the options in force, and each arm's own interval
    (:meth:`~exp_dagster.metric_kinds.MetricKind.arm_interval`)."""
    kind = metric.kind
    alpha = experiment.spec.alpha
    control = kind.arm_interval(arms[experiment.spec.control], alpha) or (None, None)
    treatment = kind.arm_interval(arms[variant], alpha) or (None, None)
    return {
        "control_ci_low": control[0],
        "control_ci_high": control[1],
        "treatment_ci_low": treatment[0],
        "treatment_ci_high": treatment[1],
        "statistic": effect.statistic,
        "df": effect.df if math.isfinite(effect.df) else None,
        "rel_std_error": effect.rel_std_error,
        "sd_control": kind.unit_std_dev(arms[experiment.spec.control]),
        "sd_treatment": kind.unit_std_dev(arms[variant]),
        "cuped_theta": effect.cuped_theta,
        "test_options": _test_options(experiment, metric),
    }
