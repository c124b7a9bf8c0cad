"""Experiment and metric specs: validated YAML with errors that name the file and the field.

Specs are data (docs/architecture.md, decision 4): adding an experiment is adding a YAML file to
``catalog/experiments/``; metrics live in ``catalog/metrics.yaml``. Every result row records the
spec version, a hash of the experiment spec together with the definitions of the metrics it uses,
so a changed metric definition is a new version too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from exp_dagster.metric_kinds import (
    KINDS,
    OPTION_NAMES,
    CupedOption,
    CupedThetaOption,
    CupedVarianceOption,
    KindName,
    MeanTestOption,
    MetricKind,
    ProportionCIOption,
    ProportionTestOption,
    PValueScaleOption,
    ReferenceDistributionOption,
    RelativeCIOption,
    kind_of,
)
from exp_dagster.text import printable

# Names become partition keys, table values and column labels: keep them to a safe alphabet.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
# A day of a metric window, counted in 24-hour periods from each unit's exposure.
WindowDay = Annotated[int, Field(ge=0, le=365)]


class SpecError(ValueError):
    """A spec file is invalid; the message names the file, the field and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ── metrics ──────────────────────────────────────────────────────────────────────────────────


class MetricSpec(_Strict):
    """One metric of the catalog.

    Attributes:
        name: the metric's key in the catalog.
        type: ``mean``, ``proportion``, ``ratio`` or ``quantile``.
        direction: ``increase`` when a higher value is better, ``decrease`` otherwise.
        event: the event a mean, proportion or quantile metric is computed from.
        aggregate: for ``mean`` (and a ``ratio``'s numerator), sum the event's values per unit
            (``sum``) or count its rows (``count``); ``count`` is rejected on a proportion or a
            quantile, where it would be ignored.
        numerator: for ``ratio``, the event summed in the numerator.
        denominator: for ``ratio``, the event summed in the denominator.
        level: for ``quantile``, the quantile level in (0, 1), e.g. 0.95.
        winsorize: for ``mean``, cap each unit's value at this quantile (e.g. 0.999) of the
            day's per-unit values, both arms pooled, before the statistics are summed. The cap
            is computed on both arms together, so it does not depend on the treatment, but it
            changes the estimand: the effect is on the capped metric. ``None``: no cap.
        description: one line for the report.
        relative_ci: this metric's relative lift interval (``fieller``, ``delta``, ``log`` or
            ``divided``), overriding the experiment's ``analysis.relative_ci``; ``null``
            (default): the experiment's.
        cuped: ``auto`` (CUPED whenever the units have a pre-period covariate) or ``off``
            (never, even with a pre-period), overriding the experiment's ``analysis.cuped``;
            mean, proportion and ratio metrics (a quantile has no covariate). ``null``: the
            experiment's.
        cuped_theta: CUPED's θ for a mean or proportion metric: ``within`` (the within-arm
            pooled slope) or ``pooled`` (over all units ignoring the arm, as GrowthBook and
            tea-tasting), overriding ``analysis.cuped_theta``. ``null``: the experiment's.
        cuped_variance: for a proportion with CUPED, the arms' variances and covariance:
            ``sample`` (divisor n - 1) or ``population`` (divisor n, ``p (1 - p)``: GrowthBook's
            CUPED for proportions together with ``cuped_theta: pooled``), overriding
            ``analysis.cuped_variance``. ``null``: the experiment's.
        proportion_test: for a proportion without CUPED, the z statistic's variance: ``pooled``
            (under the null, as statsmodels' proportions_ztest) or ``unpooled`` (Wald),
            overriding ``analysis.proportion_test``; the interval's variance is
            ``proportion_ci``'s. ``null``: the experiment's.
        continuity: for a proportion without CUPED, Yates' continuity correction of the test
            and the absolute interval, overriding ``analysis.continuity``. ``null``: the
            experiment's.
        mean_test: for a mean without CUPED, ``welch`` (unequal variances) or ``student``
            (pooled variance, as scipy's ttest_ind(equal_var=True)), overriding
            ``analysis.mean_test``. ``null``: the experiment's.
        reference_distribution: this metric's reference distribution (``default``, ``t`` or
            ``normal``), overriding ``analysis.reference_distribution``. ``null``: the
            experiment's.
        p_value_scale: whether this metric's p-value tests the absolute difference or the
            relative lift, overriding ``analysis.p_value_scale``. ``null``: the experiment's.
        proportion_ci: for a proportion without CUPED, the intervals' variance (``unpooled``
            or ``pooled``), overriding ``analysis.proportion_ci``. ``null``: the experiment's.
        proportion_ci_clip: for a proportion without CUPED, clip the interval of the
            difference to [-1, 1], overriding ``analysis.proportion_ci_clip``. ``null``: the
            experiment's.
        window_days: ``[d0, d1]``: the metric counts only each unit's events in days d0 to d1
            (inclusive) after its exposure, e.g. ``[0, 6]`` for the first week, ``[7, 13]`` for
            the second; mean, proportion and ratio metrics. A day is a 24-hour period from the
            unit's first exposure timestamp (the anchor of ``analysis.metric_window_start``: its
            timestamp, or with ``exposure_day`` that day's UTC midnight), so the window is
            ``[anchor + d0 × 24 h, anchor + (d1 + 1) × 24 h)``. Only units whose window has
            fully elapsed by the analysis day (or the end date, if earlier; events after it are
            not read) are analysed, as GrowthBook's "exclude in-progress conversions" and
            LaunchDarkly's metric measurement windows do: the metric's units grow as units
            mature, and units exposed less than ``d1 + 1`` days before the end never count.
            ``null`` (default): every event from exposure through the day.
    """

    name: Identifier
    type: KindName
    direction: Literal["increase", "decrease"]
    event: str | None = None
    aggregate: Literal["sum", "count"] = "sum"
    numerator: str | None = None
    denominator: str | None = None
    level: float | None = Field(default=None, gt=0, lt=1)
    winsorize: float | None = Field(default=None, ge=0.9, lt=1)
    description: str = ""
    relative_ci: RelativeCIOption | None = None
    cuped: CupedOption | None = None
    cuped_theta: CupedThetaOption | None = None
    proportion_test: ProportionTestOption | None = None
    continuity: bool | None = None
    mean_test: MeanTestOption | None = None
    cuped_variance: CupedVarianceOption | None = None
    reference_distribution: ReferenceDistributionOption | None = None
    p_value_scale: PValueScaleOption | None = None
    proportion_ci: ProportionCIOption | None = None
    proportion_ci_clip: bool | None = None
    window_days: tuple[WindowDay, WindowDay] | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> MetricSpec:
        self.kind.validate(self)
        return self

    @model_validator(mode="after")
    def _window_ordered(self) -> MetricSpec:
        if self.window_days is not None and self.window_days[1] < self.window_days[0]:
            first, last = self.window_days
            raise ValueError(
                f"'window_days' is [{first}, {last}]: its last day comes before its first; "
                f"write [first, last] with first <= last, e.g. [0, 6] for the first 7 days"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_unset_options(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when unset, so the spec versions of metrics without them did not change when
        # the options were added (a new version would restart their sequential looks).
        data: dict[str, Any] = handler(self)
        for field in VERSION_NEUTRAL_METRIC_FIELDS:
            if data.get(field) is None:
                data.pop(field, None)
        return data

    @property
    def kind(self) -> MetricKind:
        """What kind of metric this is (:mod:`exp_dagster.metric_kinds`): its events, its test."""
        return kind_of(self.type)

    @property
    def winsorize_note(self) -> str:
        """How the values were capped, for a result row's ``method`` ("" when they were not)."""
        if self.winsorize is None:
            return ""
        return (
            f"; winsorised: each unit's value capped at the {self.winsorize * 100:g}th "
            f"percentile of the day's units, both arms pooled"
        )

    @property
    def window_text(self) -> str:
        """The metric's window in words ("" without one)."""
        if self.window_days is None:
            return ""
        first, last = self.window_days
        return f"days {first}-{last} after each unit's exposure, in 24-hour periods from it"

    @property
    def window_note(self) -> str:
        """The window, for a result row's ``method`` ("" without one)."""
        if self.window_days is None:
            return ""
        return (
            f"; window: {self.window_text}; only units whose window has elapsed by the "
            f"analysis day are counted (n_control, n_treatment)"
        )

    @property
    def events(self) -> tuple[str, ...]:
        """The events this metric reads."""
        return self.kind.events(self)


class MetricCatalog(_Strict):
    """All metrics, by name."""

    metrics: dict[str, MetricSpec]

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            metrics = {
                key: {**value, "name": key} if isinstance(value, dict) else value
                for key, value in data["metrics"].items()
            }
            data = {**data, "metrics": metrics}
        return data

    def get(self, name: str) -> MetricSpec:
        return self.metrics[name]


# ── experiments ──────────────────────────────────────────────────────────────────────────────


class VariantSpec(_Strict):
    """One arm of the experiment.

    Attributes:
        name: the variant's name, as the exposure logs' ``variant`` column writes it.
        weight: its planned share of the traffic, in (0, 1]; the weights sum to 1.
        control: ``true`` for the one control arm the others are compared with.
    """

    name: Name
    weight: float = Field(gt=0, le=1)
    control: bool = False


# The derived segment of a ramped experiment: the ramp phase in force on each unit's first exposure
# day (its value is the phase's start date). Not an exposure-log column, so not a spec segment.
RAMP_PHASE_SEGMENT = "ramp_phase"
# The derived segment of a bandit experiment: each unit's first exposure day, the allocation period
# whose split (that day's bandit_allocations weights) assigned it.
ALLOCATION_DAY_SEGMENT = "allocation_day"

# With a holdout, the segment of the effects since each launch (value: the launch's name), from
# each unit's value over the days since the launch. Not an exposure-log column.
LAUNCH_PERIOD_SEGMENT = "launch_period"

# The derived segments of allocation periods (ExperimentSpec.allocation_segment).
ALLOCATION_SEGMENTS = (RAMP_PHASE_SEGMENT, ALLOCATION_DAY_SEGMENT)

# With allocation periods (a ramp's phases, a bandit's days), metric_statistics also holds each
# spec segment's statistics per period of first exposure: segment "<segment>|ramp_phase" (or
# "<segment>|allocation_day"), values "<value>|<period's first day>". They are the cells a segment
# row's period-stratified effect combines, not result rows of their own. Spec segments are
# identifiers (no "|"), and the period is the value's last part, so the split is unambiguous.
PHASE_CROSS_SEPARATOR = "|"


def phase_cross_segment(segment: str, period: str = RAMP_PHASE_SEGMENT) -> str:
    """The metric_statistics segment holding ``segment``'s values per allocation period
    (``period``: the spec's :attr:`~ExperimentSpec.allocation_segment`)."""
    return f"{segment}{PHASE_CROSS_SEPARATOR}{period}"


def is_phase_cross_segment(segment: str) -> bool:
    """Whether a metric_statistics segment is a spec segment crossed with an allocation period
    (a ramp phase or a bandit's allocation day)."""
    return segment.endswith(tuple(f"{PHASE_CROSS_SEPARATOR}{s}" for s in ALLOCATION_SEGMENTS))


class RampPhase(_Strict):
    """One allocation phase of a ramped rollout: from ``start`` (until the next phase's start,
    or the experiment's end) units are assigned by these weights.

    Attributes:
        start: the phase's first day (UTC); the first phase starts on the experiment's start.
        weights: each variant's share of the traffic in this phase, every variant of the spec
            named once, each > 0, summing to 1, e.g. ``{control: 0.99, treatment: 0.01}``.
    """

    start: dt.date
    weights: dict[Name, float]

    @field_validator("weights")
    @classmethod
    def _weights_valid(cls, weights: dict[str, float]) -> dict[str, float]:
        bad = {name: w for name, w in weights.items() if not (0.0 < w <= 1.0)}
        if bad:
            raise ValueError(
                f"every weight must be in (0, 1] (a variant with no traffic cannot be tested for "
                f"a sample ratio mismatch); got {bad}"
            )
        total = sum(weights.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the weights must sum to 1, they sum to {total:g}")
        return weights


class HoldoutLaunch(_Strict):
    """One change launched to everyone outside the holdout group.

    Attributes:
        name: the launch's name as reports say it, e.g. ``ranker_v2``.
        date: the day (UTC) it reached the launched variant(s), inside the experiment's window.
    """

    name: Name
    date: dt.date


class HoldoutSpec(_Strict):
    """A long-term holdout: one variant kept off a series of launched changes.

    Attributes:
        group: the variant kept off the launches; it must be the spec's control variant (the
            launched variants are compared against it), e.g. ``holdout``.
        launches: the changes the other variant(s) received, in date order, e.g.
            ``[{name: ranker_v2, date: 2026-10-01}, {name: notif_v3, date: 2026-11-15}]``.
    """

    group: Name
    launches: list[HoldoutLaunch] = Field(min_length=1)


class BanditSpec(_Strict):
    """Adaptive allocation: each day's statistics of a reward metric set the next day's traffic
    split (the ``bandit_allocations`` table, for the serving system to read).

    Attributes:
        algorithm: ``thompson`` (each arm's weight is its posterior probability of being the
            best: least regret) or ``top_two_thompson`` (Russo 2016: the best arm with
            probability ``top_two_beta``, else the runner-up of a fresh posterior draw: finds the
            best arm with fewer units, at more regret).
        metric: the reward, one of the experiment's metrics of type ``proportion``
            (Beta-Bernoulli, prior Beta(1, 1)) or ``mean`` (Student-t posterior of the mean);
            its ``direction`` says whether higher is better. ``null`` (default): the primary.
        floor: every variant's minimum weight, e.g. 0.01 (default): the weights are mixed with
            the uniform split, ``floor + (1 - K floor) w``, so every arm keeps traffic and stays
            estimable; at most each variant's ``weight`` (the burn-in split) and below 1 / K.
        burn_in_days: the days from ``start`` on which the planned split (the variants'
            ``weight``s) is used; the start day always is (no statistics exist before it).
            Default 1: the bandit sets the split from the second day.
        top_two_beta: top-two Thompson's probability of playing the leader, in (0, 1); 0.5
            (default, Russo's).
    """

    algorithm: Literal["thompson", "top_two_thompson"] = "thompson"
    metric: Identifier | None = None
    floor: float = Field(default=0.01, ge=0, lt=0.5)
    burn_in_days: int = Field(default=1, ge=1, le=365)
    top_two_beta: float = Field(default=0.5, gt=0, lt=1)


class GuardrailSpec(_Strict):
    """A guardrail metric judged by a one-sided non-inferiority test.

    Attributes:
        metric: the metric's name in the catalog.
        margin: the largest harm tolerated, in the metric's bad direction (≥ 0).
        margin_type: ``relative`` (a share of the control value, 0.05 = 5 %) or ``absolute``.
    """

    metric: Identifier
    margin: float = Field(ge=0)
    margin_type: Literal["relative", "absolute"] = "relative"


class MetricRoles(_Strict):
    """Each metric has one role: the primary decides, secondaries are reported, guardrails are
    tested for non-inferiority. A metric listed twice would silently keep one role (and a
    guardrail on the primary would never apply its margin), so it is rejected.

    Attributes:
        primary: the metric that decides SHIP or ROLLBACK (a name in the metric catalog).
        secondary: metrics reported with their effects (Benjamini-Hochberg across them by
            default), not deciding.
        guardrails: metrics that must not get worse by more than a margin for a SHIP.
    """

    primary: Identifier
    secondary: list[Identifier] = Field(default_factory=list)
    guardrails: list[GuardrailSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_role_each(self) -> MetricRoles:
        guarded = [g.metric for g in self.guardrails]
        if self.primary in guarded:
            raise ValueError(
                f"'{self.primary}' is both the primary metric and a guardrail; the primary "
                f"already decides the ship (a significant gain implies non-inferiority), so the "
                f"guardrail would never apply: remove it from 'guardrails' or guard another metric"
            )
        if self.primary in self.secondary:
            raise ValueError(
                f"'{self.primary}' is both the primary metric and a secondary one; remove it "
                f"from 'secondary'"
            )
        for role, names in (("secondary", self.secondary), ("guardrails", guarded)):
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ValueError(
                    f"{', '.join(repeated)} listed more than once in '{role}'; list each once"
                )
        both = [name for name in self.secondary if name in guarded]
        if both:
            raise ValueError(
                f"{', '.join(both)} is both a secondary metric and a guardrail; keep it under "
                f"'guardrails' only (a guardrail's effect is reported too)"
            )
        return self


class OECSpec(_Strict):
    """An overall evaluation criterion: one weighted combination of several metrics' effects,
    tested with its variance from the joint covariance of the metrics within units
    (docs/statistics.md, "OEC and metric trees").

    Attributes:
        name: the OEC's name in the results (its row's ``metric``), e.g. ``oec_engagement``; it
            must differ from every metric's name.
        components: metric → weight, e.g. ``{watch_time: 0.5, conversion: 0.3, ctr: 0.2}``:
            metrics of the experiment (primary, secondary or guardrails) of kind mean,
            proportion or ratio, without ``window_days`` or ``winsorize``. The OEC's direction
            is ``increase``, so a weight carries its metric's direction: positive for a metric
            whose direction is ``increase``, negative for ``decrease``. A ratio metric enters by
            its per-unit linearisation (its effect is the difference, or relative lift, of the
            ratios of sums).
        normalisation: ``relative`` (default): each metric's relative lift ``m_t / m_c - 1``
            (metrics on different scales can be weighted; the control's noise is in the
            variance, delta method); ``absolute``: each metric's difference of means, in its own
            unit.
        decides: ``true``: the decision judges the OEC in place of the primary metric (SHIP,
            ROLLBACK ...; guardrails as before), by the same sequential test over the daily
            looks (``analysis.sequential``). ``false`` (default): the OEC is reported, and the
            primary metric decides.
    """

    name: Identifier
    components: dict[Identifier, float] = Field(min_length=1)
    normalisation: Literal["absolute", "relative"] = "relative"
    decides: bool = False

    @field_validator("components")
    @classmethod
    def _weights_valid(cls, components: dict[str, float]) -> dict[str, float]:
        bad = {name: w for name, w in components.items() if not math.isfinite(w) or w == 0.0}
        if bad:
            raise ValueError(
                f"every weight must be a finite number other than 0 (leave a metric out "
                f"instead of weighting it 0); got {bad}"
            )
        return components


class MetricTreeSpec(_Strict):
    """A metric tree: a root metric that is the product of factor metrics, e.g. revenue per
    user = impressions per user × revenue per impression; the results say which factor (branch)
    moved, by each factor's share of the root's log lift (docs/statistics.md, "OEC and metric
    trees").

    Attributes:
        root: the metric decomposed, a metric of the experiment.
        factors: the metrics whose product is ``root``, in the order the report lists them,
            each a mean, proportion or ratio metric of the experiment, without ``window_days`` or
            ``winsorize``. A factor is the ratio of the means of its numerator and denominator
            (a mean or proportion: of its value, per unit). Their product must be ``root``
            identically, each numerator cancelling the next denominator (e.g. ``impressions``
            (impressions per unit) × ``revenue_per_impression`` (revenue / impressions) =
            ``revenue`` (per unit)): the spec is rejected otherwise.
    """

    root: Identifier
    factors: list[Identifier] = Field(min_length=1)


class DiDSpec(_Strict):
    """A rollout that was not randomised, analysed by difference in differences: the new model
    went to every unit of some clusters (markets, regions) on one date, and the effect is how
    much more those clusters' metrics moved than the other clusters' did (docs/statistics.md,
    "Difference in differences").

    There is no random assignment, so the spec has no ``hash_salt`` (no exposure is checked
    against the hash) and no sample-ratio test: the variants in the logs are whatever the
    serving system logged, and the analysis reads each unit's cluster, not its variant.

    Attributes:
        cluster: the segment (a column of the exposure logs, listed in ``segments``) whose values
            are the clusters, e.g. ``market``; a unit's cluster is its value on its first
            exposure of the day. Standard errors are clustered by it.
        treated: the cluster values that got the new model on ``rollout_date``, e.g.
            ``[de, fr]``; every other value is a control cluster.
        rollout_date: the first day the treated clusters had the new model (every treated
            cluster on the same day: staggered adoption is not supported). The window's days
            before it are the pre-period, at least one; with two or more the parallel-trends
            check runs.
        metrics: the metrics analysed (mean or proportion metrics of the experiment, the primary
            metric among them): each observation is one unit's value of the metric on one day it
            was exposed. The decision reads the primary metric's effect (docs/statistics.md).
        period: the period of the panel; ``day`` (the only one for now).
    """

    cluster: Identifier
    treated: list[str] = Field(min_length=1)
    rollout_date: dt.date
    metrics: list[Identifier] = Field(min_length=1)
    period: Literal["day"] = "day"

    @field_validator("treated", "metrics")
    @classmethod
    def _listed_once(cls, values: list[str]) -> list[str]:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"lists {repeated} more than once; list each once")
        return values


SequentialMethod = Literal["group_sequential", "always_valid", "fixed_horizon"]
# The methods of exp_dagster.stats.multiplicity (a test checks the two lists agree).
MultiplicityMethod = Literal[
    "holm",
    "bonferroni",
    "benjamini-hochberg",
    "none",
    "sidak",
    "holm-sidak",
    "hochberg",
    "benjamini-yekutieli",
]


class AnalysisPolicy(_Strict):
    """How the experiment is analysed and decided; every field has a documented default.

    Attributes:
        sequential: how daily looks at the primary metric stay valid. ``group_sequential``
            (default): Lan-DeMets alpha spending over the planned days, so a large effect can
            ship before the end date and the final day spends what is left. ``always_valid``:
            mixture SPRT confidence sequences, valid at any stopping time, for experiments
            without a planned horizon. ``fixed_horizon``: one test on the end date; earlier
            days only report (KEEP_RUNNING).
        spending: the alpha-spending function of ``group_sequential``: ``obrien-fleming``
            (conservative early, close to the fixed test at the end), ``pocock``, or ``power``
            (``alpha * t**spending_rho``, Kim & DeMets; as spotify-confidence offers).
        spending_rho: the exponent of ``power`` spending (3: about O'Brien-Fleming; 1: about
            Pocock); ignored by the other functions.
        msprt_tau: the mixture standard deviation of ``always_valid``, as a relative lift
            (0.02 = 2 %); default: the spec's ``mde``.
        sequential_information: what measures the information of a daily look, which sets
            how the looks' statistics are correlated (``group_sequential``) and the scale of
            the mixture (``always_valid``). ``relative`` (default): the scale-free
            ``(pooled mean / se)²``, which grows with the units exposed and with time even
            when per-unit values accumulate (sums, counts, "ever converted"), so every look
            can conclude. ``absolute``: ``1 / se²``, right only for metrics whose scale does
            not change with time (averages, ratios); on a cumulative metric it falls as the
            values grow and later looks only repeat earlier boundaries. The spending time is
            the share of the planned days elapsed in both cases.
        primary_multiplicity: correction across treatments for the primary metric (FWER).
            Under ``group_sequential`` the boundaries use Bonferroni (alpha / treatments).
        secondary_multiplicity: correction across secondary metrics × treatments.
        guardrail_multiplicity: correction of the non-inferiority p-values across guardrails ×
            treatments (reported; shipping needs every guardrail non-inferior, an
            intersection-union test that needs no correction).
        segment_multiplicity: correction across the segment values of each metric × treatment.
        relative_ci: the relative lift's interval: ``fieller`` (default: it excludes 0 exactly
            when the absolute interval does, so it never contradicts the test), ``delta``
            (delta method, symmetric; it can cover 0 while the p-value is significant),
            ``log`` (delta method on the log of the ratio, tea-tasting's) or ``divided`` (the
            absolute interval over the control mean, spotify-confidence's; it ignores the
            control mean's noise). A metric may override it in the catalog.
        cuped: ``auto`` (default): CUPED for every mean, proportion and ratio metric whose units
            have a pre-period covariate (``pre_period_days`` > 0); ``off``: never. A metric may
            override it in the catalog (e.g. ``cuped: off`` on one metric).
        cuped_theta: CUPED's θ for mean and proportion metrics: ``within`` (default: the
            within-arm pooled slope, the OLS coefficient of ``y ~ arm + covariate``) or
            ``pooled`` (over all units ignoring the arm, as GrowthBook and tea-tasting). Ratio
            CUPED always uses the within-arm slope. A metric may override it.
        cuped_variance: the arms' variances and covariance in CUPED of proportion metrics:
            ``sample`` (default: divisor n - 1, as for mean metrics) or ``population`` (divisor
            n, the Bernoulli ``p (1 - p)``; with ``cuped_theta: pooled`` this is GrowthBook's
            CUPED for proportion metrics, estimate, standard error, df and p-value). The
            adjusted effect is the same either way. A metric may override it.
        proportion_test: the two-proportion z statistic's variance (proportions without CUPED):
            ``pooled`` (default: under the null, as statsmodels' proportions_ztest) or
            ``unpooled`` (Wald, as spotify-confidence); the interval's variance is
            ``proportion_ci``'s. A metric may override it.
        proportion_ci: the variance of a proportion's intervals (without CUPED): ``unpooled``
            (default: each arm's ``p (1 - p)``, the Wald interval of statsmodels, R's prop.test,
            GrowthBook and spotify-confidence) or ``pooled`` (the overall ``p (1 - p)`` in
            both arms: with ``proportion_test: pooled`` the interval excludes 0 exactly when
            the p-value is below alpha, but it takes its spread from the null hypothesis and
            undercovers when the proportions differ much). It sets the absolute and the
            relative intervals, ``std_error`` and ``rel_std_error``. A metric may override it.
        proportion_ci_clip: clip the interval of a difference of proportions (without CUPED)
            to [-1, 1], and the open side of a one-sided interval to -1 or 1, as R's prop.test
            (default ``false``: statsmodels, GrowthBook and spotify-confidence do not clip).
            The relative interval is not clipped. A metric may override it.
        continuity: Yates' continuity correction of the two-proportion test and its absolute
            interval (default ``false``; ``true`` equals scipy's chi2_contingency with
            correction). A metric may override it.
        mean_test: the t-test of mean metrics without CUPED: ``welch`` (default, unequal
            variances) or ``student`` (pooled variance, as scipy's ttest_ind(equal_var=True)).
            A metric may override it.
        reference_distribution: what every test statistic and interval is referred to.
            ``default``: each test's own: Student t for mean metrics (Welch-Satterthwaite df,
            or n - 2 with ``mean_test: student``) and for CUPED and post-stratified tests of
            means and proportions, the standard normal for proportions, ratios (CUPED or not)
            and quantiles. ``normal``: the standard normal for every metric (spotify-confidence's
            z-tests, tea-tasting's ``use_t: false``). ``t``: Student t for every metric, with the
            test's own df where it has them and the Welch-Satterthwaite df of the two arms'
            variances of the mean otherwise (GrowthBook's frequentist engine refers every test
            to t with Welch df; tea-tasting's default ``use_t: true``). The ``statistic`` and
            ``df`` columns follow (``df`` is null for the normal). A metric may override it.
        p_value_scale: which effect ``p_value`` (and so ``statistic``, fixed-horizon
            significance and the multiplicity adjustments of ``p_value``) tests. ``absolute``
            (default): the difference ``treatment - control``. ``relative``: the relative
            lift, ``lift / se`` with the delta-method standard error (GrowthBook's frequentist
            test), or ``log(ratio) / se_log`` when ``relative_ci: log`` (the test matching
            tea-tasting's interval), on the same reference distribution. The relative p-value
            agrees with the ``delta`` and ``log`` intervals; with ``fieller`` or ``divided`` the
            interval may cover 0 while the p-value is below alpha, or the reverse. The
            sequential tests (``group_sequential`` boundaries, ``always_valid`` p-values) stay
            on the absolute effect. While the lift has no p-value (the control's value is 0)
            the metric's row is not estimable and says why. A metric may override it.
        prior_sd: the Bayesian summary's normal prior sd on the relative lift, centred on 0;
            ``null`` (default) is the improper flat prior.
        heterogeneity_alpha: level of the segment × treatment heterogeneity test whose
            reversals are named as reasons.
        heterogeneity_covariance: the standard errors of the heterogeneity test. ``test``
            (default): each segment value's own test (Welch for means, which is HC2; the
            unpooled Wald variance for proportions; CUPED, delta-method and quantile tests as
            they ran). ``HC0``, ``HC1``, ``HC2`` or ``HC3``: for mean and proportion metrics, the
            robust Wald test of the interaction in the least-squares model
            ``y ~ segment * treatment`` on the per-unit values (not CUPED-adjusted) with that
            covariance, as statsmodels' ``cov_type`` (``HC1``: Stata's ``robust``); ratio and
            quantile metrics keep their tests' standard errors.
        power_scale: the scale of the power, MDE and required units in the results:
            ``absolute`` (default): the relative ``mde`` times ``|control mean|`` as an absolute
            difference of means, one variance for both arms; ``relative``: the lift tested on its
            own scale with its delta-method variance at the target, GrowthBook's power
            convention (a positive lift needs a few per cent more units; ``mde_rel`` is NULL
            while no lift is detectable).
        novelty_alpha: level of the test for a trend of the effect over the experiment's days.
        novelty_period: what "day k since exposure" means in the novelty trend.
            ``calendar_day`` (default): the k-th UTC calendar day from the unit's first exposure
            day (day 0 is the rest of that day from its exposure, so it is shorter than the
            others); a unit counts on day k once that day has ended. ``24h``: the k-th 24-hour
            period from its exposure (the anchor of ``metric_window_start``), events in
            ``[anchor + k × 24 h, anchor + (k + 1) × 24 h)``; a unit counts in period k once
            that period has ended by the end of the analysis day (or the end date), so every
            period is a full 24 hours.
        stratify_by: a segment column to post-stratify mean and proportion metrics on when they
            have no CUPED covariate (``null``: no post-stratification).
        metric_window_start: where a unit's metrics start counting. ``exposure`` (default): at
            its first exposure timestamp; events earlier on the exposure day count in neither the
            metric nor the CUPED covariate (whose pre-period is whole days before the exposure
            day). ``exposure_day``: from the start (UTC midnight) of the first exposure day, as
            releases before this option did; only right when the logs' exposure times are not
            trustworthy, since the treatment cannot have caused the events before exposure.
    """

    sequential: SequentialMethod = "group_sequential"
    spending: Literal["obrien-fleming", "pocock", "power"] = "obrien-fleming"
    spending_rho: float = Field(default=3.0, gt=0, le=20)
    msprt_tau: float | None = Field(default=None, gt=0)
    sequential_information: Literal["relative", "absolute"] = "relative"
    primary_multiplicity: MultiplicityMethod = "holm"
    secondary_multiplicity: MultiplicityMethod = "benjamini-hochberg"
    guardrail_multiplicity: MultiplicityMethod = "holm"
    segment_multiplicity: MultiplicityMethod = "benjamini-hochberg"
    relative_ci: RelativeCIOption = "fieller"
    cuped: CupedOption = "auto"
    cuped_theta: CupedThetaOption = "within"
    proportion_test: ProportionTestOption = "pooled"
    continuity: bool = False
    mean_test: MeanTestOption = "welch"
    cuped_variance: CupedVarianceOption = "sample"
    reference_distribution: ReferenceDistributionOption = "default"
    p_value_scale: PValueScaleOption = "absolute"
    proportion_ci: ProportionCIOption = "unpooled"
    proportion_ci_clip: bool = False
    prior_sd: float | None = Field(default=None, gt=0)
    heterogeneity_alpha: float = Field(default=0.01, gt=0, lt=0.5)
    heterogeneity_covariance: Literal["test", "HC0", "HC1", "HC2", "HC3"] = "test"
    power_scale: Literal["absolute", "relative"] = "absolute"
    novelty_alpha: float = Field(default=0.01, gt=0, lt=0.5)
    novelty_period: Literal["calendar_day", "24h"] = "calendar_day"
    stratify_by: Identifier | None = None
    metric_window_start: Literal["exposure", "exposure_day"] = "exposure"


class ExperimentSpec(_Strict):
    """An experiment, as written in ``catalog/experiments/<id>.yaml``.

    Attributes:
        id: the experiment id; it must equal ``experiment_id`` in the exposure logs.
        description: what is being tested, in a sentence.
        owner: who to ask.
        unit: the randomisation unit (the logs' ``unit_id`` is of this kind), e.g. ``user``.
        hash_salt: the salt of the deterministic assignment; when set, every exposure's variant is
            recomputed and disagreeing exposures are quarantined. Leave it out when the logs come
            from another assignment system.
        variants: names and planned traffic weights (summing to 1); exactly one is the control.
        start, end: the first and last day (UTC, inclusive) of the experiment.
        pre_period_days: days before each unit's first exposure used as CUPED covariates (0: none).
        metrics: one primary metric, secondary metrics, guardrails with non-inferiority margins.
        segments: exposure-log columns to break results down by.
        alpha: two-sided significance level of the primary and secondary tests.
        power, mde: the design's power and relative minimum detectable effect.
        srm_alpha: the sample-ratio-mismatch test's level; below it the decision is INVALID.
        srm_method: the sample-ratio-mismatch test: ``chi-square`` (Pearson, default),
            ``g-test`` (likelihood ratio) or ``exact`` (binomial; two variants, small samples).
        srm_correction: Yates' continuity correction for the SRM test (two variants).
        ramp: allocation phases of a ramped rollout (:class:`RampPhase`, in date order), e.g.
            ``[{start: 2026-10-01, weights: {control: 0.99, treatment: 0.01}}, {start:
            2026-10-06, weights: {control: 0.5, treatment: 0.5}}]``: the first starts on
            ``start``, every one inside the window, and the last one's weights are the variants'
            ``weight``s. A unit's variant follows the phase in force on its first exposure day;
            the sample ratio is tested per phase against that phase's weights, and effects are
            stratified by the phase of first exposure (docs/statistics.md, "Ramped rollouts").
            ``null`` (default): one split, the variants' weights, for the whole window.
        holdout: a long-term holdout (:class:`HoldoutSpec`): the control variant ``group`` is
            kept off the ``launches`` that every other variant gets. The verdict is then about
            whether the launches' gains last, not a ship decision: KEEP_RUNNING until ``end``,
            then SHIP (the gains last), ROLLBACK (the launches hurt) or INCONCLUSIVE (not shown
            to last); the reasons give the cumulative effect of the launches so far
            (docs/statistics.md, "Long-term holdouts"). ``null`` (default): no holdout.
        oec: an overall evaluation criterion over the experiment's metrics (:class:`OECSpec`),
            reported as one more result row (and deciding, with ``decides: true``). ``null``
            (default): none.
        metric_tree: a product decomposition of one of the experiment's metrics
            (:class:`MetricTreeSpec`), reported as the table ``metric_trees``. ``null``
            (default): none.
        did: a rollout that was not randomised, analysed by difference in differences per
            cluster (:class:`DiDSpec`), reported in the table ``did_effects``. ``null``
            (default): a randomised experiment.
        bandit: adaptive allocation (:class:`BanditSpec`): Thompson or top-two Thompson sampling
            on a reward metric writes each next day's traffic split to ``bandit_allocations``
            (docs/statistics.md, "Bandit allocation"). ``null`` (default): the split is fixed.
        analysis: the analysis and decision policy (:class:`AnalysisPolicy`).
    """

    id: Name
    description: str = ""
    owner: str = ""
    unit: str = "user"
    hash_salt: str | None = None
    variants: list[VariantSpec] = Field(min_length=2)
    start: dt.date
    end: dt.date
    pre_period_days: int = Field(default=7, ge=0, le=90)
    metrics: MetricRoles
    segments: list[Identifier] = Field(default_factory=list)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0, lt=1)
    mde: float = Field(default=0.02, gt=0)
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    srm_method: Literal["chi-square", "g-test", "exact"] = "chi-square"
    srm_correction: bool = False
    ramp: list[RampPhase] | None = Field(default=None, min_length=1)
    holdout: HoldoutSpec | None = None
    oec: OECSpec | None = None
    metric_tree: MetricTreeSpec | None = None
    did: DiDSpec | None = None
    bandit: BanditSpec | None = None
    analysis: AnalysisPolicy = Field(default_factory=AnalysisPolicy)

    @field_validator("variants")
    @classmethod
    def _variants_valid(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        controls = [v.name for v in variants if v.control]
        if len(controls) != 1:
            raise ValueError(
                f"exactly one variant must have 'control: true', got {controls or 'none'}"
            )
        total = sum(v.weight for v in variants)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"variant weights must sum to 1, they sum to {total:g}")
        return variants

    @model_validator(mode="after")
    def _window_valid(self) -> ExperimentSpec:
        if self.end < self.start:
            raise ValueError(f"'end' ({self.end}) is before 'start' ({self.start})")
        return self

    @model_validator(mode="after")
    def _exact_srm_has_two_variants(self) -> ExperimentSpec:
        if self.srm_method == "exact" and len(self.variants) != 2:
            raise ValueError(
                f"srm_method 'exact' is the binomial test of two variants; this experiment has "
                f"{len(self.variants)}. Use 'chi-square' or 'g-test'"
            )
        return self

    @model_validator(mode="after")
    def _stratum_is_a_segment(self) -> ExperimentSpec:
        stratum = self.analysis.stratify_by
        if stratum is not None and stratum not in self.segments:
            raise ValueError(
                f"analysis.stratify_by is '{stratum}', which is not one of the spec's segments "
                f"{self.segments}; add it to 'segments' or remove stratify_by"
            )
        return self

    @field_validator("ramp")
    @classmethod
    def _ramp_valid(
        cls, ramp: list[RampPhase] | None, info: ValidationInfo
    ) -> list[RampPhase] | None:
        variants, start, end = (info.data.get(key) for key in ("variants", "start", "end"))
        if ramp is None or variants is None or start is None or end is None:
            return ramp  # the missing field has its own error
        names = [v.name for v in variants]
        for index, phase in enumerate(ramp):
            where = f"phase {index} (start {phase.start})"
            if sorted(phase.weights) != sorted(names):
                raise ValueError(
                    f"{where}: 'weights' names {sorted(phase.weights)}, but the spec's variants "
                    f"are {names}; give every variant a weight, and only those"
                )
            if not start <= phase.start <= end:
                raise ValueError(
                    f"{where} starts outside the experiment's window {start} .. {end}; move it "
                    f"inside or remove it"
                )
            if index > 0 and phase.start <= ramp[index - 1].start:
                raise ValueError(
                    f"{where}: phases must be in increasing date order, and this one starts on "
                    f"or before the previous one ({ramp[index - 1].start})"
                )
        if ramp[0].start != start:
            raise ValueError(
                f"the first phase starts on {ramp[0].start}, but it must start on the "
                f"experiment's start ({start}): units exposed before it would have no split"
            )
        last = ramp[-1].weights
        differing = [v.name for v in variants if abs(last[v.name] - v.weight) > 1e-9]
        if differing:
            planned = {v.name: v.weight for v in variants}
            raise ValueError(
                f"the last phase's weights {last} differ from the variants' weights {planned} "
                f"for {', '.join(differing)}; the variants' 'weight' is the split the ramp "
                f"reaches: make them equal"
            )
        segments = info.data.get("segments") or []
        if RAMP_PHASE_SEGMENT in segments:
            raise ValueError(
                f"'{RAMP_PHASE_SEGMENT}' is the ramp's own segment (the phase of each unit's "
                f"first exposure), so it cannot also be a segment column; rename that "
                f"exposure-log column or leave it out of 'segments'"
            )
        return ramp

    @model_validator(mode="after")
    def _ramp_not_stratified_otherwise(self) -> ExperimentSpec:
        if self.ramp is not None and self.analysis.stratify_by is not None:
            raise ValueError(
                f"analysis.stratify_by ('{self.analysis.stratify_by}') cannot be combined with "
                f"'ramp' yet: with a ramp the overall effects are stratified by ramp phase; "
                f"remove stratify_by"
            )
        return self

    @staticmethod
    def _listed_metrics(info: ValidationInfo) -> list[str] | None:
        roles = info.data.get("metrics")
        if roles is None:
            return None  # 'metrics' has its own error
        names = [roles.primary, *roles.secondary, *(g.metric for g in roles.guardrails)]
        return list(dict.fromkeys(names))

    @field_validator("oec")
    @classmethod
    def _oec_valid(cls, oec: OECSpec | None, info: ValidationInfo) -> OECSpec | None:
        names = cls._listed_metrics(info)
        if oec is None or names is None:
            return oec
        unknown = [m for m in oec.components if m not in names]
        if unknown:
            raise ValueError(
                f"'components' names {unknown}, not metrics of this experiment (its metrics are "
                f"{names}: primary, secondary and guardrails); add them to 'metrics' (e.g. as "
                f"secondary) or remove them from the OEC"
            )
        if oec.name in names:
            raise ValueError(
                f"'name' '{oec.name}' is also a metric of this experiment; the OEC's result row "
                f"needs a name of its own, e.g. 'oec_{oec.name}'"
            )
        if oec.decides and info.data.get("holdout") is not None:
            raise ValueError(
                "'decides' cannot be true with a 'holdout': a holdout's verdict is about the "
                "primary metric's cumulative effect; set decides: false"
            )
        if info.data.get("ramp") is not None:
            raise ValueError(
                "an OEC cannot be combined with 'ramp' yet: its moments are pooled over the "
                "ramp's phases, which biases effects when the split changes; remove one of them"
            )
        return oec

    @field_validator("metric_tree")
    @classmethod
    def _tree_valid(
        cls, tree: MetricTreeSpec | None, info: ValidationInfo
    ) -> MetricTreeSpec | None:
        names = cls._listed_metrics(info)
        if tree is None or names is None:
            return tree
        unknown = [m for m in (tree.root, *tree.factors) if m not in names]
        if unknown:
            raise ValueError(
                f"names {unknown}, not metrics of this experiment (its metrics are {names}: "
                f"primary, secondary and guardrails); add them to 'metrics' (e.g. as secondary) "
                f"or fix the names"
            )
        if tree.root in tree.factors:
            raise ValueError(
                f"'factors' includes the root '{tree.root}'; list the metrics whose product is "
                f"the root"
            )
        repeated = sorted({f for f in tree.factors if tree.factors.count(f) > 1})
        if repeated:
            raise ValueError(f"'factors' lists {repeated} more than once; list each once")
        if info.data.get("ramp") is not None:
            raise ValueError(
                "a metric tree cannot be combined with 'ramp' yet: its moments are pooled over "
                "the ramp's phases, which biases effects when the split changes; remove one"
            )
        return tree

    @field_validator("did")
    @classmethod
    def _did_valid(cls, did: DiDSpec | None, info: ValidationInfo) -> DiDSpec | None:
        names = cls._listed_metrics(info)
        start, end = info.data.get("start"), info.data.get("end")
        if did is None or names is None or start is None or end is None:
            return did  # the missing field has its own error
        segments = info.data.get("segments") or []
        if did.cluster not in segments:
            raise ValueError(
                f"'cluster' is '{did.cluster}', which is not one of the spec's segments "
                f"{segments}; the clusters are read from that exposure-log column: add it to "
                f"'segments'"
            )
        unknown = [m for m in did.metrics if m not in names]
        if unknown:
            raise ValueError(
                f"'metrics' names {unknown}, not metrics of this experiment (its metrics are "
                f"{names}); add them to the experiment's 'metrics' or remove them here"
            )
        primary = info.data["metrics"].primary
        if primary not in did.metrics:
            raise ValueError(
                f"'metrics' must include the primary metric '{primary}': the decision of a "
                f"rollout that was not randomised reads its difference in differences"
            )
        if not start < did.rollout_date <= end:
            raise ValueError(
                f"'rollout_date' {did.rollout_date} must be after the start {start} (the days "
                f"before it are the pre-period) and on or before the end {end}"
            )
        if info.data.get("hash_salt") is not None:
            raise ValueError(
                "a rollout analysed by difference in differences is not randomised, so its "
                "exposures cannot be checked against the deterministic hash; remove 'hash_salt'"
            )
        for other in ("ramp", "holdout", "oec", "metric_tree"):
            if info.data.get(other) is not None:
                raise ValueError(
                    f"'did' cannot be combined with '{other}' yet: those compare randomised "
                    f"variants; remove one of them"
                )
        return did

    @field_validator("holdout")
    @classmethod
    def _holdout_valid(
        cls, holdout: HoldoutSpec | None, info: ValidationInfo
    ) -> HoldoutSpec | None:
        variants, start, end = (info.data.get(key) for key in ("variants", "start", "end"))
        if holdout is None or variants is None or start is None or end is None:
            return holdout  # the missing field has its own error
        control = next(v.name for v in variants if v.control)
        if holdout.group != control:
            known = any(v.name == holdout.group for v in variants)
            where = "is not the control" if known else "is not a variant"
            raise ValueError(
                f"'group' is '{holdout.group}', which {where}; the holdout group is the variant "
                f"kept off the launches, and the launched variants are compared with it: name "
                f"the control variant ('{control}') or mark '{holdout.group}' 'control: true'"
            )
        if info.data.get("ramp") is not None:
            raise ValueError(
                "a holdout cannot be combined with 'ramp' yet: a holdout's split is fixed for "
                "its whole window; remove one of them"
            )
        if LAUNCH_PERIOD_SEGMENT in (info.data.get("segments") or []):
            raise ValueError(
                f"'{LAUNCH_PERIOD_SEGMENT}' is the holdout's own segment (the effect since each "
                f"launch), so it cannot also be a segment column; rename that exposure-log "
                f"column or leave it out of 'segments'"
            )
        seen: set[str] = set()
        for index, launch in enumerate(holdout.launches):
            where = f"launch {index} ({launch.name} on {launch.date})"
            if launch.name in seen:
                raise ValueError(
                    f"{where}: the name '{launch.name}' is used twice; launch names must be unique"
                )
            seen.add(launch.name)
            if not start <= launch.date <= end:
                raise ValueError(
                    f"{where} is outside the experiment's window {start} .. {end}; move the "
                    f"date inside or widen the window"
                )
            previous = holdout.launches[index - 1] if index > 0 else None
            if previous is not None and launch.date <= previous.date:
                raise ValueError(
                    f"{where}: launches must be in increasing date order, and this one is on or "
                    f"before the previous one ({previous.name} on {previous.date})"
                )
        return holdout

    @field_validator("bandit")
    @classmethod
    def _bandit_valid(cls, bandit: BanditSpec | None, info: ValidationInfo) -> BanditSpec | None:
        variants, metrics = info.data.get("variants"), info.data.get("metrics")
        if bandit is None or variants is None or metrics is None:
            return bandit  # the missing field has its own error
        names = [metrics.primary, *metrics.secondary, *(g.metric for g in metrics.guardrails)]
        if bandit.metric is not None and bandit.metric not in names:
            raise ValueError(
                f"'metric' is '{bandit.metric}', which is not one of this experiment's metrics "
                f"{names}; name one of them (or leave 'metric' out for the primary)"
            )
        if bandit.floor * len(variants) >= 1.0:
            raise ValueError(
                f"'floor' {bandit.floor:g} times {len(variants)} variants is "
                f"{bandit.floor * len(variants):g}, which leaves the bandit no traffic to "
                f"allocate; lower it below {1 / len(variants):g}"
            )
        low = [v.name for v in variants if v.weight < bandit.floor]
        if low:
            raise ValueError(
                f"'floor' {bandit.floor:g} is above the planned weight of {', '.join(low)}, the "
                f"split used during burn-in; lower the floor or raise those weights"
            )
        if info.data.get("hash_salt") is not None:
            raise ValueError(
                "a bandit cannot be combined with 'hash_salt': the serving system assigns units "
                "by each day's bandit_allocations weights, not by the hash of the planned split, "
                "so the hash check would quarantine them; remove hash_salt"
            )
        if ALLOCATION_DAY_SEGMENT in (info.data.get("segments") or []):
            raise ValueError(
                f"'{ALLOCATION_DAY_SEGMENT}' is the bandit's own segment (each unit's first "
                f"exposure day), so it cannot also be a segment column; rename that exposure-log "
                f"column or leave it out of 'segments'"
            )
        why = {
            "did": "a rollout by cluster is not randomised, so there is no split to allocate",
            "ramp": "the bandit sets the split every day",
            "holdout": "the bandit sets the split every day",
            "oec": "its moments are pooled over the days, which the bandit's changing split biases",
            "metric_tree": (
                "its moments are pooled over the days, which the bandit's changing split biases"
            ),
        }
        for other, reason in why.items():
            if info.data.get(other) is not None:
                raise ValueError(
                    f"a bandit cannot be combined with '{other}' yet: {reason}; remove one of them"
                )
        return bandit

    @model_validator(mode="after")
    def _bandit_not_stratified_otherwise(self) -> ExperimentSpec:
        if self.bandit is not None and self.analysis.stratify_by is not None:
            raise ValueError(
                f"analysis.stratify_by ('{self.analysis.stratify_by}') cannot be combined with "
                f"'bandit': a bandit's split changes every day; remove stratify_by"
            )
        return self

    @property
    def allocation_segment(self) -> str | None:
        """The derived segment of the periods whose splits differ by design: ``ramp_phase`` with
        a ramp, ``allocation_day`` with a bandit, else None. Overall effects are stratified by
        it and the sample ratio is tested within each of its values."""
        if self.ramp is not None:
            return RAMP_PHASE_SEGMENT
        if self.bandit is not None:
            return ALLOCATION_DAY_SEGMENT
        return None

    @property
    def allocation_starts(self) -> list[dt.date]:
        """The first days of the allocation periods: the ramp's phases, or with a bandit every
        day of the window (each day has its own split); empty otherwise."""
        if self.ramp is not None:
            return [phase.start for phase in self.ramp]
        if self.bandit is not None:
            return self.days()
        return []

    @property
    def allocation_period_words(self) -> tuple[str, str]:
        """The allocation period in words, singular and plural."""
        if self.bandit is not None:
            return "allocation day", "allocation days"
        return "ramp phase", "ramp phases"

    @property
    def bandit_metric(self) -> str | None:
        """The bandit's reward metric (the primary unless named); None without a bandit."""
        if self.bandit is None:
            return None
        return self.bandit.metric or self.metrics.primary

    def launches_by(self, day: dt.date) -> list[HoldoutLaunch]:
        """The holdout's launches on or before ``day`` (empty without a holdout)."""
        if self.holdout is None:
            return []
        return [launch for launch in self.holdout.launches if launch.date <= day]

    def phase_index(self, day: dt.date) -> int | None:
        """The index in ``ramp`` of the phase in force on ``day`` (None without a ramp)."""
        if self.ramp is None:
            return None
        return max(i for i, phase in enumerate(self.ramp) if phase.start <= day or i == 0)

    def weights_on(self, day: dt.date) -> dict[str, float]:
        """The planned split in force on ``day``: its ramp phase's weights, else the variants'
        weights; in the variants' order."""
        index = self.phase_index(day)
        if index is None or self.ramp is None:
            return self.weights
        return {v.name: self.ramp[index].weights[v.name] for v in self.variants}

    @property
    def control(self) -> str:
        return next(v.name for v in self.variants if v.control)

    @property
    def treatments(self) -> list[str]:
        return [v.name for v in self.variants if not v.control]

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    @property
    def metric_names(self) -> list[str]:
        names = [self.metrics.primary, *self.metrics.secondary]
        names += [g.metric for g in self.metrics.guardrails]
        return list(dict.fromkeys(names))

    @property
    def deciding_metric(self) -> str:
        """The result row the decision judges: the OEC's when ``oec.decides``, else the primary
        metric's."""
        if self.oec is not None and self.oec.decides:
            return self.oec.name
        return self.metrics.primary

    def role_of(self, metric: str) -> str:
        if metric == self.metrics.primary:
            return "primary"
        if any(g.metric == metric for g in self.metrics.guardrails):
            return "guardrail"
        return "secondary"

    def guardrail(self, metric: str) -> GuardrailSpec | None:
        return next((g for g in self.metrics.guardrails if g.metric == metric), None)

    @property
    def first_event_day(self) -> dt.date:
        """The first day whose events the experiment reads: its start less its pre-period."""
        return self.start - dt.timedelta(days=self.pre_period_days)

    def days(self, through: dt.date | None = None) -> list[dt.date]:
        """The experiment's days from ``start`` to ``end`` (or ``through``, if earlier)."""
        last = min(self.end, through) if through else self.end
        return [self.start + dt.timedelta(days=i) for i in range((last - self.start).days + 1)]


class ResolvedExperiment(BaseModel):
    """An experiment spec with the catalog definitions of its metrics and its version hash."""

    model_config = ConfigDict(frozen=True)

    spec: ExperimentSpec
    metrics: dict[str, MetricSpec]
    source: str
    version: str

    @property
    def cross_component_names(self) -> tuple[str, ...]:
        """:attr:`cross_components` as ``metric_cross_statistics`` names them: ``metric`` for a
        value, ``metric.numerator`` and ``metric.denominator`` for a ratio's parts."""
        return tuple(
            metric if quantity == "value" else f"{metric}.{quantity}"
            for metric, quantity in self.cross_components
        )

    @property
    def cross_components(self) -> tuple[tuple[str, str], ...]:
        """The per-unit quantities ``metric_cross_statistics`` sums the cross-moments of, as
        ``(metric, quantity)``: ``value`` for a mean or proportion, ``numerator`` and
        ``denominator`` for a ratio, for every metric of the OEC and the metric tree, sorted;
        empty without either (the step then costs nothing)."""
        spec = self.spec
        names: set[str] = set()
        if spec.oec is not None:
            names.update(spec.oec.components)
        if spec.metric_tree is not None:
            names.update(spec.metric_tree.factors)
        components = []
        for name in sorted(names):
            if self.metrics[name].kind.unit_terms(self.metrics[name]).denominator is None:
                components.append((name, "value"))
            else:
                components += [(name, "numerator"), (name, "denominator")]
        return tuple(components)


# ── loading ──────────────────────────────────────────────────────────────────────────────────


def _format_validation_error(path: Path | str, error: ValidationError) -> str:
    lines = [f"{path}: invalid spec ({error.error_count()} problem(s)):"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(printable(f"  - field '{field}': {item['msg']}"))  # a key may hold "\n"
    return "\n".join(lines)


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"key {key!r} on line {line} repeats the one on line {first_line}")
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key repeated in one mapping is an error: PyYAML
    keeps the last value silently, so a spec could say one thing and run another."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *defaults" merges keys that the mapping may then override
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first_line = seen.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key: the base loader reports it
            if first_line != line:
                raise _DuplicateKeyError(key, line, first_line)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: file not found; check the path.") from exc
    except IsADirectoryError as exc:
        raise SpecError(f"{path}: is a folder; pass the spec's YAML file.") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text; save the spec as UTF-8.") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKeyError as exc:
        raise SpecError(
            f"{path}, line {exc.line}: key '{exc.key}' appears twice in the same mapping (first "
            f"on line {exc.first_line}); YAML would silently keep the last one. Keep one of them."
        ) from exc
    except yaml.MarkedYAMLError as exc:
        where = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        problem = exc.problem or exc.context or "unreadable"
        raise SpecError(
            f"{path}{where}: not valid YAML ({problem}); fix the syntax there (quote values "
            f"holding ':' or '#', close brackets and quotes)."
        ) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc}); fix the syntax.") from exc


def load_metric_catalog(path: Path) -> MetricCatalog:
    """Load and validate ``metrics.yaml``; raise :class:`SpecError` naming the file and field."""
    data = _read_yaml(path)
    try:
        return MetricCatalog.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(path, exc)) from exc


def parse_experiment(data: Any, source: str, catalog: MetricCatalog) -> ResolvedExperiment:
    """Validate an experiment spec against the metric catalog and compute its version."""
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(source, exc)) from exc
    missing = [name for name in spec.metric_names if name not in catalog.metrics]
    if missing:
        known = ", ".join(sorted(catalog.metrics))
        raise SpecError(
            f"{source}: field 'metrics' names metric(s) not in the catalog: {', '.join(missing)}. "
            f"Known metrics: {known}. Add them to metrics.yaml or fix the name."
        )
    wrong = [
        g
        for g in spec.metrics.guardrails
        if g.margin_type not in catalog.get(g.metric).kind.guardrail_margin_types
    ]
    if wrong:
        kind = catalog.get(wrong[0].metric).kind
        allowed = " or ".join(sorted(kind.guardrail_margin_types))
        names = [g.metric for g in wrong if catalog.get(g.metric).kind is kind]
        raise SpecError(
            f"{source}: field 'metrics.guardrails': {kind.name} guardrails take a {allowed} "
            f"margin ({', '.join(names)}); write e.g. 'margin: 0.05, margin_type: {allowed}'."
        )
    metrics = {name: catalog.get(name) for name in spec.metric_names}
    if spec.ramp is not None and not any(m.kind.moment_statistics for m in metrics.values()):
        raise SpecError(
            f"{source}: field 'ramp': no metric of this experiment has statistics per ramp phase "
            f"(a quantile has none), so neither the per-phase sample-ratio test nor the "
            f"phase-stratified effects can run; add a mean, proportion or ratio metric."
        )
    _check_cross_metrics(spec, metrics, source)
    _check_did_metrics(spec, metrics, source)
    reward = spec.bandit_metric
    if reward is not None and metrics[reward].kind.bandit_posterior is None:
        rewards = sorted(k.name for k in KINDS.values() if k.bandit_posterior is not None)
        raise SpecError(
            f"{source}: field 'bandit.metric': '{reward}' is a {metrics[reward].kind.name} "
            f"metric; a bandit's reward must be a {' or '.join(rewards)} metric (a posterior "
            f"from each arm's n, sum and sum of squares); name one in 'bandit.metric'."
        )
    return ResolvedExperiment(
        spec=spec, metrics=metrics, source=source, version=spec_version(spec, metrics.values())
    )


def _check_cross_metrics(
    spec: ExperimentSpec, metrics: Mapping[str, MetricSpec], source: str
) -> None:
    """The catalog's side of ``oec`` and ``metric_tree``: kinds whose per-unit values are summed
    as cross-moments, weights whose sign follows the metric's direction, and a tree whose
    factors multiply to its root."""
    fields = []
    if spec.oec is not None:
        fields.append(("oec.components", list(spec.oec.components)))
    if spec.metric_tree is not None:
        fields.append(("metric_tree", [spec.metric_tree.root, *spec.metric_tree.factors]))
    for field, names in fields:
        for name in names:
            metric = metrics[name]
            problem = (
                f"a {metric.kind.name} metric has no per-unit value to combine (only its histogram)"
                if not metric.kind.moment_statistics
                else "it has 'window_days' (its units differ from the other metrics')"
                if metric.window_days is not None
                else "it is winsorised (the OEC and trees read each unit's logged value)"
                if metric.winsorize is not None
                else None
            )
            if problem:
                raise SpecError(
                    f"{source}: field '{field}': metric '{name}' cannot be used: {problem}; "
                    f"use a mean, proportion or ratio metric without window_days or winsorize."
                )
    if spec.oec is not None:
        wrong = {
            name: weight
            for name, weight in spec.oec.components.items()
            if (weight > 0) != (metrics[name].direction == "increase")
        }
        if wrong:
            raise SpecError(
                f"{source}: field 'oec.components': the weights {wrong} go against their "
                f"metrics' direction; the OEC is better when higher, so give a metric whose "
                f"direction is 'increase' a positive weight and one whose direction is "
                f"'decrease' a negative weight."
            )
    if spec.metric_tree is not None:
        tree = spec.metric_tree
        above = [*unit_term_names(metrics[tree.root])[:1]]
        below = [*unit_term_names(metrics[tree.root])[1:]]
        for factor in tree.factors:
            numerator, denominator = unit_term_names(metrics[factor])
            above.append(denominator)
            below.append(numerator)
        if sorted(above) != sorted(below):
            product = " × ".join(
                "({} / {})".format(*unit_term_names(metrics[f])) for f in tree.factors
            )
            root = "{} / {}".format(*unit_term_names(metrics[tree.root]))
            raise SpecError(
                f"{source}: field 'metric_tree.factors': the factors' product {product} is not "
                f"the root '{tree.root}' ({root}): each factor's numerator must cancel another's "
                f"denominator, leaving the root's. Add or change factors, e.g. root revenue = "
                f"impressions × revenue_per_impression."
            )


def _check_did_metrics(
    spec: ExperimentSpec, metrics: Mapping[str, MetricSpec], source: str
) -> None:
    """The catalog's side of ``did``: each metric has one per-unit value a day (a mean or a
    proportion), the unit's logged value (no ``window_days``, no ``winsorize``)."""
    if spec.did is None:
        return
    for name in spec.did.metrics:
        metric = metrics[name]
        problem = (
            f"a {metric.kind.name} metric has no per-unit daily value to sum by cluster"
            if not metric.kind.moment_statistics
            or metric.kind.unit_terms(metric).denominator is not None
            else "it has 'window_days' (the panel has every unit's value on each day)"
            if metric.window_days is not None
            else "it is winsorised (the panel sums each unit's logged daily value)"
            if metric.winsorize is not None
            else None
        )
        if problem:
            raise SpecError(
                f"{source}: field 'did.metrics': metric '{name}' cannot be used: {problem}; use "
                f"a mean or proportion metric without window_days or winsorize."
            )


def unit_term_names(metric: MetricSpec) -> tuple[str, str]:
    """The metric's per-unit numerator and denominator in words, for a metric tree's identity:
    ``sum(purchase)``, ``count(impression)``, ``any(purchase)``, and ``units`` for a mean or
    proportion (whose denominator is the unit)."""
    terms = metric.kind.unit_terms(metric)
    denominator = "units" if terms.denominator is None else f"sum({terms.denominator})"
    return f"{terms.reduction}({terms.event})", denominator


def load_experiment(path: Path, catalog: MetricCatalog) -> ResolvedExperiment:
    """Load one ``experiments/<id>.yaml`` file; raise :class:`SpecError` naming file and field."""
    data = _read_yaml(path)
    resolved = parse_experiment(data, str(path), catalog)
    if path.stem != resolved.spec.id:
        raise SpecError(
            f"{path}: field 'id' is '{resolved.spec.id}' but the file is named '{path.name}'; "
            f"name the file '{resolved.spec.id}.yaml' so the registry finds it by id."
        )
    return resolved


def load_experiments(directory: Path, catalog: MetricCatalog) -> dict[str, ResolvedExperiment]:
    """Every valid experiment in ``directory``; the first invalid file raises."""
    experiments: dict[str, ResolvedExperiment] = {}
    for path in sorted(directory.glob("*.yaml")):
        resolved = load_experiment(path, catalog)
        experiments[resolved.spec.id] = resolved
    check_overlaps(experiments.values())
    return experiments


def earliest_event_day(directory: Path) -> dt.date | None:
    """The first day any experiment spec in ``directory`` reads (its start less its pre-period),
    or None when there is none. Only the spec fields are validated and a file that does not
    validate is skipped: the registry sensor and the command line name it, this only dates the
    partitions."""
    days = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            days.append(ExperimentSpec.model_validate(_read_yaml(path)).first_event_day)
        except (SpecError, ValidationError):
            continue
    return min(days, default=None)


def check_overlaps(experiments: Iterable[ResolvedExperiment]) -> None:
    """Reject experiments that would assign the same units identically at the same time.

    Experiments may overlap on the same units (that is how a platform runs many at once) as long
    as their assignments are independent. Two with the same ``unit`` and the same ``hash_salt``
    whose windows overlap put every unit in the same bucket in both, so each one's treatment
    group is the other's: neither effect can be told apart. The check needs every spec, so it
    lives here, where the registry loads them all, rather than in one spec's validation.
    """
    resolved = sorted(experiments, key=lambda e: e.spec.id)
    for i, first in enumerate(resolved):
        for second in resolved[i + 1 :]:
            a, b = first.spec, second.spec
            if (
                a.hash_salt is not None
                and a.hash_salt == b.hash_salt
                and a.unit == b.unit
                and a.start <= b.end
                and b.start <= a.end
            ):
                raise SpecError(
                    f"{second.source}: field 'hash_salt' is the same as in {first.source}, and "
                    f"both experiments assign {a.unit}s between {max(a.start, b.start)} and "
                    f"{min(a.end, b.end)}: the same units would get the same buckets in both, "
                    f"confounding them. Give '{b.id}' its own hash_salt."
                )


# Spec fields added after experiments were versioned, left out of the hash at their default so
# that existing experiments keep their version (a new version restarts their sequential looks).
VERSION_NEUTRAL_DEFAULTS: dict[str, Any] = {
    "srm_method": "chi-square",
    "srm_correction": False,
    "analysis.spending_rho": 3.0,
    "analysis.cuped": "auto",
    "analysis.cuped_theta": "within",
    "analysis.proportion_test": "pooled",
    "analysis.continuity": False,
    "analysis.mean_test": "welch",
    "analysis.cuped_variance": "sample",
    "analysis.novelty_period": "calendar_day",
    "analysis.reference_distribution": "default",
    "analysis.p_value_scale": "absolute",
    "analysis.proportion_ci": "unpooled",
    "analysis.proportion_ci_clip": False,
    "analysis.heterogeneity_covariance": "test",
    "analysis.power_scale": "absolute",
    "ramp": None,
    "holdout": None,
    "oec": None,
    "metric_tree": None,
    "did": None,
    "bandit": None,
}
# Metric fields added after experiments were versioned, left out of the hash when unset (null):
# winsorize, window_days and the per-metric overrides of the experiment's analysis options.
VERSION_NEUTRAL_METRIC_FIELDS: tuple[str, ...] = ("winsorize", "window_days", *OPTION_NAMES)


def spec_version(spec: ExperimentSpec, metrics: Iterable[MetricSpec]) -> str:
    """A short, stable hash of the spec and the metric definitions it uses."""
    experiment = spec.model_dump(mode="json")
    for path, default in VERSION_NEUTRAL_DEFAULTS.items():
        *parents, field = path.split(".")
        holder = experiment
        for parent in parents:
            holder = holder[parent]
        if holder.get(field) == default:
            holder.pop(field)
    payload: Mapping[str, Any] = {
        "experiment": experiment,
        "metrics": sorted((m.model_dump(mode="json") for m in metrics), key=lambda m: m["name"]),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
