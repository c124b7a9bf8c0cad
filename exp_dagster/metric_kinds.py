"""The metric-kind seam: everything that depends on what kind of metric a metric is.

A metric's ``type`` in the catalog (``mean``, ``proportion``, ``ratio``, ``quantile``) names one
:class:`MetricKind` in :data:`KINDS`. The kind declares, in one place:

* its spec fields and their validation (:meth:`MetricKind.validate`): the events it needs, the
  optional fields and analysis options that apply to it;
* the events it reads (:meth:`MetricKind.events`) and whether a pre-period covariate (CUPED)
  exists for it (:attr:`MetricKind.has_covariate`), whether its unit values are 0/1, whether its
  event's values are kept as histograms;
* what the warehouse keeps per unit for it (:meth:`MetricKind.unit_terms`: the event and
  reduction of its value, its denominator), whether its statistics are sums of those values'
  moments or read from histograms, and which of its values the outlier report fences;
* how an arm's row of ``metric_statistics`` becomes the statistics library's moments, which test
  applies with which options (:meth:`MetricKind.estimate`), and why an effect is not estimable;
* what a result row reports beside the test: each arm's per-unit standard deviation on the scale
  the test analyses (:meth:`MetricKind.unit_std_dev`) and the options in force
  (:meth:`MetricKind.options_text`).

The rest of the code asks the kind (``metric.kind``) instead of matching the type string, so a new
kind is a new class here, registered in :data:`KINDS`, with its tests (docs/development.md).

Analysis options (:class:`AnalysisOptions`) are the conventions of the peer libraries: the
experiment's ``analysis:`` block sets them for every metric and a metric in the catalog may
override them (:func:`resolve_options`); the defaults are the platform's own conventions.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

if TYPE_CHECKING:
    from exp_dagster.spec import AnalysisPolicy, MetricSpec
    from exp_dagster.stats import (
        Alternative,
        CovariateMoments,
        CrossMoments,
        EffectEstimate,
        Moments,
        QuantileArm,
        RatioMoments,
    )

Row = Mapping[str, Any]


def _stats() -> Any:
    """``exp_dagster.stats``, imported when a test runs rather than with the spec: the spec (and
    ``exp-dagster --help``) must load without numpy and scipy (test_code_location_import)."""
    import exp_dagster.stats

    return exp_dagster.stats


# The spec's ``type`` values; a test checks they equal the keys of KINDS.
KindName = Literal["mean", "proportion", "ratio", "quantile"]
RelativeCIOption = Literal["delta", "fieller", "log", "divided"]
CupedOption = Literal["auto", "off"]
CupedThetaOption = Literal["within", "pooled"]
CupedVarianceOption = Literal["sample", "population"]
ProportionTestOption = Literal["pooled", "unpooled"]
MeanTestOption = Literal["welch", "student"]
ReferenceDistributionOption = Literal["default", "t", "normal"]
PValueScaleOption = Literal["absolute", "relative"]
ProportionCIOption = Literal["unpooled", "pooled"]
# How a unit's rows of one event make a per-unit value (UnitTerms.reduction).
Reduction = Literal["any", "count", "sum"]
# The per-unit values metric_outliers fences: a value, or a ratio's numerator and denominator.
OutlierQuantity = Literal["value", "numerator", "denominator"]


@dataclass(frozen=True)
class AnalysisOptions:
    """The conventions one metric is analysed with: the experiment's ``analysis:`` values,
    overridden by the metric's own (:func:`resolve_options`). Each option applies to the kinds
    whose :attr:`MetricKind.options` name it and is ignored by the others.

    Attributes:
        relative_ci: the relative lift's interval: ``fieller``, ``delta``, ``log`` or ``divided``.
        cuped: ``auto`` (CUPED whenever the units have a pre-period covariate) or ``off``.
        cuped_theta: CUPED's θ: ``within`` (the within-arm pooled slope) or ``pooled`` (over
            all units, ignoring the arm). Ratio CUPED has the within-arm slope only.
        proportion_test: the z statistic's variance: ``pooled`` (under the null) or
            ``unpooled`` (Wald); the interval's variance is ``proportion_ci``'s.
        cuped_variance: a proportion's CUPED variances: ``sample`` (divisor ``n - 1``) or
            ``population`` (divisor ``n``: ``p (1 - p)``, GrowthBook's).
        continuity: Yates' continuity correction of the two-proportion test and its interval.
        mean_test: ``welch`` (unequal variances) or ``student`` (pooled variance) t-test.
        reference_distribution: what the statistic (and the intervals' critical value) is
            referred to: ``default`` (each test's own: t for means and for CUPED, the normal
            for proportions, ratios and quantiles), ``normal`` (z for every kind) or ``t``
            (Student t for every kind, with Welch-Satterthwaite df where the test has none).
        p_value_scale: whether ``p_value`` tests the absolute difference (``absolute``) or the
            relative lift (``relative``: delta method, on the log scale with ``relative_ci:
            log``).
        proportion_ci: the variance of a proportion's intervals: ``unpooled`` (each arm's
            ``p (1 - p)``, Wald) or ``pooled`` (the overall ``p (1 - p)`` in both arms).
        proportion_ci_clip: clip a difference of proportions' interval to ``[-1, 1]``.
    """

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


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(AnalysisOptions))
# The options every kind takes: each kind's test has a reference distribution and a relative lift.
_EVERY_KIND_OPTIONS = ("reference_distribution", "p_value_scale")


def resolve_options(metric: MetricSpec, policy: AnalysisPolicy | None = None) -> AnalysisOptions:
    """The options ``metric`` is analysed with: its own where it sets them, else the
    experiment's (``policy``; the defaults of :class:`AnalysisOptions` when None)."""
    base = AnalysisOptions() if policy is None else policy
    chosen = {}
    for name in OPTION_NAMES:
        own = getattr(metric, name)
        chosen[name] = getattr(base, name) if own is None else own
    return AnalysisOptions(**chosen)


class NotEstimable(NamedTuple):
    """Why a metric has no effect at a look.

    Attributes:
        reason: the sentence for people, starting with ``not estimable:``.
        missing_event: the event the metric needs of which no exposed unit has a row yet, when
            that is why; :func:`exp_dagster.analysis.name_missing_events` checks it against the
            logs' event names.
    """

    reason: str
    missing_event: str | None = None


class UnitTerms(NamedTuple):
    """What the warehouse keeps per unit for one metric (``unit_metrics``' ``y``, ``x`` and
    covariates), in the words of its SQL: ``exp_dagster/warehouse/`` turns them into the
    expressions of unit_metrics.sql (cumulated from exposure, or over a metric window) and of
    the novelty sums (a day's values), so that the SQL stays in the warehouse, in one dialect.

    Attributes:
        event: the event of the unit's value ``y``.
        reduction: how the unit's rows of ``event`` make ``y``: ``any`` (1 once it occurs, else
            0), ``count`` (its rows) or ``sum`` (the exact total of its values).
        denominator: the event whose exact total of values per unit is ``x`` (a ratio's
            denominator); None: ``x = 1``.
        covariate: whether the same terms over the pre-period make the unit's CUPED covariate
            (``covariate``, and ``covariate_x`` with a denominator).
    """

    event: str
    reduction: Reduction
    denominator: str | None = None
    covariate: bool = True


# ── an arm's statistics row as the library's moments ────────────────────────────────────────


def _arm(kind: str, row: Row, *sums: str) -> Any:
    """The library's ``kind`` of moments from one arm's statistics row: ``n`` and ``sums``."""
    return getattr(_stats(), kind)(n=int(row["n"]), **{name: float(row[name]) for name in sums})


def moments(row: Row) -> Moments:
    """``(n, Σy, Σy²)`` of one arm."""
    return _arm("Moments", row, "sum_y", "sum_y2")


def ratio_moments(row: Row) -> RatioMoments:
    """``(n, Σy, Σx, Σy², Σx², Σxy)`` of one arm: numerator ``y``, denominator ``x``."""
    return _arm("RatioMoments", row, "sum_y", "sum_x", "sum_y2", "sum_x2", "sum_xy")


def covariate_moments(row: Row) -> CovariateMoments:
    """The metric ``y`` and its pre-period covariate ``c`` of one arm."""
    return _arm("CovariateMoments", row, "sum_y", "sum_y2", "sum_c", "sum_c2", "sum_yc")


def ratio_cross_moments(row: Row) -> CrossMoments:
    """``(y, x, y_pre, x_pre)`` per unit: a ratio metric and the same ratio in the pre-period."""
    y, x, c, cx = "y", "x", "c", "cx"
    sums = {y: row["sum_y"], x: row["sum_x"], c: row["sum_c"], cx: row["sum_cx"]}
    products = {
        (y, y): row["sum_y2"],
        (x, x): row["sum_x2"],
        (c, c): row["sum_c2"],
        (cx, cx): row["sum_cx2"],
        (y, x): row["sum_xy"],
        (y, c): row["sum_yc"],
        (y, cx): row["sum_ycx"],
        (x, c): row["sum_xc"],
        (x, cx): row["sum_xcx"],
        (c, cx): row["sum_ccx"],
    }
    order = (y, x, c, cx)

    def product(a: str, b: str) -> float:
        return float(products.get((a, b), products.get((b, a))))

    return _stats().CrossMoments(
        n=int(row["n"]),
        sums=tuple(float(sums[k]) for k in order),
        products=tuple(tuple(product(a, b) for b in order) for a in order),
        names=("y", "x", "y_pre", "x_pre"),
    )


def quantile_arm(row: Row, histogram: Sequence[Row]) -> QuantileArm:
    """An arm's histogram of its event's values, and the moments of the share of each unit's
    observations at or below the pooled quantile (stored as a ratio's numerator and denominator)."""
    ordered = sorted(histogram, key=lambda r: r["bucket"])
    return _stats().QuantileArm(
        values=tuple(float(r["value"]) for r in ordered),
        counts=tuple(int(r["n"]) for r in ordered),
        threshold_moments=ratio_moments(row),
    )


def _has_covariate(row: Row) -> bool:
    return row.get("sum_c") is not None


# ── the kinds ───────────────────────────────────────────────────────────────────────────────


class MetricKind(ABC):
    """What one kind of metric is: its spec fields, its events, its test.

    Attributes:
        name: the spec's ``type`` value.
        options: the analysis options (:data:`OPTION_NAMES`) that apply to it; a metric of this
            kind may override only these in the catalog.
        has_covariate: whether its units get a pre-period covariate, for CUPED.
        winsorizable: whether ``winsorize`` (capping each unit's value) applies to it.
        binary_unit_values: whether each unit's value is 0 or 1 (checked by the schema).
        keeps_histograms: whether its event's values are also kept as histograms
            (:meth:`histogram_events`).
        moment_statistics: whether ``metric_statistics`` sums the moments of its per-unit values
            (n, Σy, Σy², Σx, …, with the covariates); else they are read from its histograms at
            the metric's ``level`` (the quantile's threshold moments).
        outlier_quantities: the per-unit values ``metric_outliers`` fences: ``value`` (``y``),
            or a ratio's ``numerator`` (``y``) and ``denominator`` (``x``).
        post_stratifiable: whether ``analysis.stratify_by`` applies when CUPED does not.
        unit_mean_effect: whether its unadjusted effect is a difference of per-unit means, so
            that ``analysis.heterogeneity_covariance`` (a robust covariance of the regression
            ``y ~ segment * treatment`` on the unit values) applies to its segments.
        has_novelty: whether the trend of its daily effect (novelty) is estimated.
        counts_rows: whether ``aggregate: count`` (count the event's rows rather than sum their
            values) applies to it.
        windowable: whether ``window_days`` (days d0..d1 after each unit's exposure) applies.
        guardrail_margin_types: the ``margin_type`` values a guardrail on it accepts.
        bandit_posterior: the posterior of an arm's expected value when it is a bandit's
            reward (:mod:`exp_dagster.stats.bandit`): ``beta`` (Beta-Bernoulli on 0/1 values),
            ``student_t`` (the mean under the reference prior), or ``None``: not a reward.
    """

    name: ClassVar[str]
    options: ClassVar[frozenset[str]]
    has_covariate: ClassVar[bool] = True
    winsorizable: ClassVar[bool] = False
    binary_unit_values: ClassVar[bool] = False
    keeps_histograms: ClassVar[bool] = False
    moment_statistics: ClassVar[bool] = True
    outlier_quantities: ClassVar[tuple[OutlierQuantity, ...]] = ()
    post_stratifiable: ClassVar[bool] = False
    unit_mean_effect: ClassVar[bool] = False
    has_novelty: ClassVar[bool] = True
    counts_rows: ClassVar[bool] = True
    windowable: ClassVar[bool] = True
    guardrail_margin_types: ClassVar[frozenset[str]] = frozenset({"relative", "absolute"})
    bandit_posterior: ClassVar[Literal["beta", "student_t"] | None] = None

    # ── spec ──

    def validate(self, metric: MetricSpec) -> None:
        """Raise ValueError, as a sentence, when ``metric`` lacks a field its kind needs or sets
        one that does not apply to it."""
        self.require_fields(metric)
        if metric.winsorize is not None and not self.winsorizable:
            raise ValueError(
                f"'winsorize' applies to mean metrics only, and this one is a {self.name}: a "
                f"proportion is bounded already, a quantile is robust already, and capping a "
                f"ratio's numerator and denominator apart changes what it measures; remove it"
            )
        if metric.aggregate == "count" and not self.counts_rows:
            kinds = [k.name for k in KINDS.values() if k.counts_rows]
            raise ValueError(
                f"'aggregate: count' applies to {' and '.join(kinds)} metrics, and this one is a "
                f"{self.name} (a proportion is 1 once the unit has the event, however often; a "
                f"quantile reads every value); remove it"
            )
        if metric.window_days is not None and not self.windowable:
            kinds = [k.name for k in KINDS.values() if k.windowable]
            raise ValueError(
                f"'window_days' applies to {', '.join(kinds)} metrics, and this one is a "
                f"{self.name} (its histograms are kept per day, not per window since exposure); "
                f"remove it"
            )
        self._validate_options(metric)

    def require_fields(self, metric: MetricSpec) -> None:
        """Raise ValueError when a field the kind needs is missing (by default: the event)."""
        if not metric.event:
            raise ValueError(f"a {self.name} metric needs an 'event'")

    def _validate_options(self, metric: MetricSpec) -> None:
        for option in OPTION_NAMES:
            if getattr(metric, option) is not None and option not in self.options:
                kinds = [k.name for k in KINDS.values() if option in k.options]
                raise ValueError(
                    f"'{option}' applies to {' and '.join(kinds)} metrics only, and this one is "
                    f"a {self.name}; remove it"
                )

    def events(self, metric: MetricSpec) -> tuple[str, ...]:
        """The events the metric reads."""
        return (str(metric.event),)

    def covariate_events(self, metric: MetricSpec) -> tuple[str, ...]:
        """The events whose pre-period values make its CUPED covariate (none without one)."""
        return self.events(metric) if self.has_covariate else ()

    def histogram_events(self, metric: MetricSpec) -> tuple[str, ...]:
        """The events whose values are kept as histograms for it (none unless
        :attr:`keeps_histograms`)."""
        return self.events(metric) if self.keeps_histograms else ()

    # ── per-unit values in the warehouse ──

    def unit_terms(self, metric: MetricSpec) -> UnitTerms:
        """What ``unit_metrics`` keeps per unit for the metric. By default the unit's count of
        its event's rows (``aggregate: count``) or the exact total of their values."""
        return UnitTerms(
            event=str(metric.event),
            reduction="count" if metric.aggregate == "count" else "sum",
            covariate=self.has_covariate,
        )

    # ── statistics ──

    def uses_cuped(self, options: AnalysisOptions, control: Row, treatment: Row) -> bool:
        """Whether the effect is CUPED-adjusted: the option allows it and both arms carry the
        pre-period covariate."""
        return (
            self.has_covariate
            and options.cuped == "auto"
            and _has_covariate(control)
            and _has_covariate(treatment)
        )

    @abstractmethod
    def estimate(
        self,
        metric: MetricSpec,
        control: Row,
        treatment: Row,
        *,
        options: AnalysisOptions,
        alpha: float,
        alternative: Alternative,
        histograms: Mapping[str, Sequence[Row]],
    ) -> EffectEstimate:
        """The effect of treatment against control from the arms' ``metric_statistics`` rows."""

    def missing_observations(
        self,
        metric: MetricSpec,
        arm: Row | None,
        name: str,
        histograms: Mapping[str, Sequence[Row]],
    ) -> NotEstimable | None:
        """Checked per arm before its unit count: observations the kind needs besides units."""
        return None

    def missing_denominator(self, metric: MetricSpec, arm: Row, name: str) -> NotEstimable | None:
        """Checked per arm once both have two units: a denominator the effect divides by."""
        return None

    def no_events(self, metric: MetricSpec, effect: EffectEstimate) -> NotEstimable | None:
        """When a test has no variance: whether that is because no unit has the event yet."""
        return None

    def control_is_zero(self, control: Row) -> bool:
        """Whether the control's value is 0, so that no relative lift exists (novelty skips
        such days)."""
        return False

    # ── what a result row reports beside the test ──

    def unit_std_dev(self, arm: Row) -> float | None:
        """The sample standard deviation (``ddof=1``) across one arm's units of the per-unit
        value the test compares, before any CUPED adjustment; None where no such value exists.

        By default the metric's own value per unit (after winsorisation, where the metric is
        winsorised; for a proportion, of the units' 0/1 values: ``sqrt(p (1 - p) n / (n - 1))``).
        """
        return math.sqrt(moments(arm).var)

    def arm_interval(self, arm: Row, alpha: float) -> tuple[float, float] | None:
        """The two-sided ``1 - alpha`` interval of one arm's own value, before CUPED (a single
        arm's interval involves no comparison, so no adjustment): by default Student's t on the
        per-unit values (``stats.mean_interval``); None with fewer than 2 units."""
        arm_moments = moments(arm)
        if arm_moments.n < 2:
            return None
        return _stats().mean_interval(arm_moments, alpha=alpha)

    def options_text(self, options: AnalysisOptions, stratify_by: str | None = None) -> str:
        """The analysis options in force for a metric of this kind, as compact JSON with sorted
        keys (the ``test_options`` of its result rows): the options the kind takes
        (:attr:`options`), resolved from the experiment's ``analysis:`` block and the metric's
        overrides, and ``stratify_by`` when the experiment sets it and the kind is
        post-stratifiable. Which of them bore on a row follows from the row's ``cuped`` (CUPED
        ran: ``cuped_theta``; it did not: ``mean_test``, ``proportion_test``, ``continuity``,
        ``proportion_ci``, ``proportion_ci_clip``) and its ``method``, which names the test that
        ran and says when ``reference_distribution`` or ``p_value_scale`` changed it.

        Examples:
            >>> KINDS["ratio"].options_text(AnalysisOptions())
            '{"cuped":"auto","p_value_scale":"absolute","reference_distribution":"default","relative_ci":"fieller"}'
            >>> KINDS["quantile"].options_text(AnalysisOptions(relative_ci="delta"), "platform")
            '{"p_value_scale":"absolute","reference_distribution":"default","relative_ci":"delta"}'
        """
        chosen: dict[str, Any] = {name: getattr(options, name) for name in self.options}
        if stratify_by is not None and self.post_stratifiable:
            chosen["stratify_by"] = stratify_by
        return json.dumps(chosen, sort_keys=True, separators=(",", ":"))


class _ValueKind(MetricKind):
    """Kinds whose per-unit value is one number with a pre-period covariate: mean, proportion."""

    post_stratifiable = True
    unit_mean_effect = True

    def no_events(self, metric: MetricSpec, effect: EffectEstimate) -> NotEstimable | None:
        if effect.mean_control == 0.0 and effect.mean_treatment == 0.0:
            return NotEstimable(
                f"not estimable: no variance (no '{metric.event}' events from the exposed units "
                f"yet)",
                metric.event,
            )
        return None

    def control_is_zero(self, control: Row) -> bool:
        return float(control["sum_y"]) == 0.0

    def _cuped(
        self,
        control: Row,
        treatment: Row,
        options: AnalysisOptions,
        alpha: float,
        alternative: Alternative,
    ) -> EffectEstimate:
        return _stats().cuped_test(
            covariate_moments(control),
            covariate_moments(treatment),
            alpha=alpha,
            alternative=alternative,
            relative_ci=options.relative_ci,
            distribution=options.reference_distribution,
            p_value_scale=options.p_value_scale,
            theta=options.cuped_theta,
            # only the kinds that take the option read it (an experiment's value leaves means be)
            ddof=0
            if "cuped_variance" in self.options and options.cuped_variance == "population"
            else 1,
        )


class MeanKind(_ValueKind):
    """Per-unit sums or counts of an event; Welch's (or Student's) t-test, CUPED with a
    pre-period; optional winsorisation."""

    name = "mean"
    bandit_posterior = "student_t"
    options = frozenset({"relative_ci", "cuped", "cuped_theta", "mean_test", *_EVERY_KIND_OPTIONS})
    winsorizable = True
    outlier_quantities = ("value",)

    def estimate(
        self,
        metric: MetricSpec,
        control: Row,
        treatment: Row,
        *,
        options: AnalysisOptions,
        alpha: float,
        alternative: Alternative,
        histograms: Mapping[str, Sequence[Row]],
    ) -> EffectEstimate:
        if self.uses_cuped(options, control, treatment):
            return self._cuped(control, treatment, options, alpha, alternative)
        test = _stats().student_t_test if options.mean_test == "student" else _stats().welch_test
        return test(
            moments(control),
            moments(treatment),
            alpha=alpha,
            alternative=alternative,
            relative_ci=options.relative_ci,
            distribution=options.reference_distribution,
            p_value_scale=options.p_value_scale,
        )


class ProportionKind(_ValueKind):
    """Whether each unit had the event (0/1); the two-proportion z-test, CUPED on the 0/1 values
    with a pre-period."""

    name = "proportion"
    counts_rows = False
    bandit_posterior = "beta"
    options = frozenset(
        {
            "relative_ci",
            "cuped",
            "cuped_theta",
            "cuped_variance",
            "proportion_test",
            "continuity",
            "proportion_ci",
            "proportion_ci_clip",
            *_EVERY_KIND_OPTIONS,
        }
    )
    binary_unit_values = True

    def unit_terms(self, metric: MetricSpec) -> UnitTerms:
        """1 once the unit has the event, else 0 (whatever its ``aggregate``)."""
        return UnitTerms(event=str(metric.event), reduction="any", covariate=self.has_covariate)

    def arm_interval(self, arm: Row, alpha: float) -> tuple[float, float] | None:
        """Wilson's score interval of the arm's proportion (``stats.proportion_interval``,
        statsmodels' ``proportion_confint(method="wilson")``); None without units."""
        arm_moments = moments(arm)
        if arm_moments.n < 1:
            return None
        successes = min(arm_moments.n, max(0, round(arm_moments.sum_y)))
        return _stats().proportion_interval(successes, arm_moments.n, alpha=alpha)

    def estimate(
        self,
        metric: MetricSpec,
        control: Row,
        treatment: Row,
        *,
        options: AnalysisOptions,
        alpha: float,
        alternative: Alternative,
        histograms: Mapping[str, Sequence[Row]],
    ) -> EffectEstimate:
        if self.uses_cuped(options, control, treatment):
            return self._cuped(control, treatment, options, alpha, alternative)
        return _stats().two_proportion_test(
            round(float(control["sum_y"])),
            int(control["n"]),
            round(float(treatment["sum_y"])),
            int(treatment["n"]),
            alpha=alpha,
            alternative=alternative,
            relative_ci=options.relative_ci,
            pooled=options.proportion_test == "pooled",
            continuity=options.continuity,
            pooled_ci=options.proportion_ci == "pooled",
            clip=options.proportion_ci_clip,
            distribution=options.reference_distribution,
            p_value_scale=options.p_value_scale,
        )


class RatioKind(MetricKind):
    """A ratio of per-unit sums (numerator / denominator event); delta method at the unit,
    CUPED on the linearised ratio with the same ratio before exposure."""

    name = "ratio"
    options = frozenset({"relative_ci", "cuped", *_EVERY_KIND_OPTIONS})
    outlier_quantities = ("numerator", "denominator")

    def require_fields(self, metric: MetricSpec) -> None:
        if not metric.numerator or not metric.denominator:
            raise ValueError("a ratio metric needs both 'numerator' and 'denominator' events")

    def events(self, metric: MetricSpec) -> tuple[str, ...]:
        return (str(metric.numerator), str(metric.denominator))

    def unit_terms(self, metric: MetricSpec) -> UnitTerms:
        """The numerator's count (``aggregate: count``) or exact total, over the exact total of
        the denominator's values; the same ratio over the pre-period is the covariate."""
        return UnitTerms(
            event=str(metric.numerator),
            reduction="count" if metric.aggregate == "count" else "sum",
            denominator=str(metric.denominator),
            covariate=self.has_covariate,
        )

    def uses_cuped(self, options: AnalysisOptions, control: Row, treatment: Row) -> bool:
        """CUPED for a ratio needs a pre-period with some denominator in both arms."""
        return options.cuped == "auto" and all(
            arm.get("sum_cx") is not None and _has_covariate(arm) and float(arm["sum_cx"]) > 0
            for arm in (control, treatment)
        )

    def estimate(
        self,
        metric: MetricSpec,
        control: Row,
        treatment: Row,
        *,
        options: AnalysisOptions,
        alpha: float,
        alternative: Alternative,
        histograms: Mapping[str, Sequence[Row]],
    ) -> EffectEstimate:
        if self.uses_cuped(options, control, treatment):
            return _stats().cuped_ratio_test(
                ratio_cross_moments(control),
                ratio_cross_moments(treatment),
                alpha=alpha,
                alternative=alternative,
                relative_ci=options.relative_ci,
                distribution=options.reference_distribution,
                p_value_scale=options.p_value_scale,
            )
        return _stats().ratio_test(
            ratio_moments(control),
            ratio_moments(treatment),
            alpha=alpha,
            alternative=alternative,
            relative_ci=options.relative_ci,
            distribution=options.reference_distribution,
            p_value_scale=options.p_value_scale,
        )

    def unit_std_dev(self, arm: Row) -> float | None:
        """Of the linearised per-unit values ``(y_i - R x_i) / mean(x)``, ``R`` the arm's ratio
        of sums: the per-unit spread the delta method's standard error is built from
        (``sd / sqrt(n)`` is the standard error of the arm's ratio); None without denominator."""
        variance = ratio_moments(arm).linearised_var
        return math.sqrt(variance) if math.isfinite(variance) else None

    def arm_interval(self, arm: Row, alpha: float) -> tuple[float, float] | None:
        """The arm's ratio of sums ``R`` -/+ ``z sqrt(linearised_var / n)``: the delta-method
        normal interval (the standard error the ratio test uses for one arm); None without a
        denominator or with fewer than 2 units."""
        arm_moments = ratio_moments(arm)
        variance = arm_moments.linearised_var
        if arm_moments.n < 2 or not math.isfinite(variance) or not math.isfinite(arm_moments.ratio):
            return None
        from exp_dagster.stats._common import critical_value

        half = critical_value(alpha, "two-sided") * math.sqrt(variance / arm_moments.n)
        return arm_moments.ratio - half, arm_moments.ratio + half

    def missing_denominator(self, metric: MetricSpec, arm: Row, name: str) -> NotEstimable | None:
        if float(arm["sum_x"] or 0.0) <= 0.0:
            return NotEstimable(
                f"not estimable: no '{metric.denominator}' events from the units of {name} yet "
                f"(the ratio's denominator is 0)",
                metric.denominator,
            )
        return None


class QuantileKind(MetricKind):
    """A quantile of an event's values over all observations; the Deng-Knoblich-Lu clustered
    interval read from each arm's histogram. No pre-period covariate."""

    name = "quantile"
    options = frozenset({"relative_ci", *_EVERY_KIND_OPTIONS})
    has_covariate = False
    counts_rows = False
    keeps_histograms = True
    moment_statistics = False
    has_novelty = False
    windowable = False
    # A relative margin keeps the guardrail's meaning when the quantile's scale is unknown.
    guardrail_margin_types = frozenset({"relative"})

    def require_fields(self, metric: MetricSpec) -> None:
        super().require_fields(metric)
        if metric.level is None:
            raise ValueError("a quantile metric needs a 'level' in (0, 1), e.g. 0.95")

    def unit_terms(self, metric: MetricSpec) -> UnitTerms:
        """The unit's observations of the event (their count; the values are in histograms),
        which the clustered interval's per-unit moments need; no covariate."""
        return UnitTerms(event=str(metric.event), reduction="count", covariate=False)

    def estimate(
        self,
        metric: MetricSpec,
        control: Row,
        treatment: Row,
        *,
        options: AnalysisOptions,
        alpha: float,
        alternative: Alternative,
        histograms: Mapping[str, Sequence[Row]],
    ) -> EffectEstimate:
        return _stats().quantile_test(
            quantile_arm(control, histograms.get(str(control["variant"]), [])),
            quantile_arm(treatment, histograms.get(str(treatment["variant"]), [])),
            level=float(metric.level or 0.5),
            alpha=alpha,
            alternative=alternative,
            relative_ci=options.relative_ci,
            distribution=options.reference_distribution,
            p_value_scale=options.p_value_scale,
        )

    def unit_std_dev(self, arm: Row) -> float | None:
        """None: a quantile is read from the arm's pooled observations, not from a value per
        unit (its standard error comes from the clustered indicator of being at or below it)."""
        return None

    def arm_interval(self, arm: Row, alpha: float) -> tuple[float, float] | None:
        """None: the quantile's interval is of the difference between arms (its clustered
        standard error needs both arms' histograms at the threshold)."""
        return None

    def missing_observations(
        self,
        metric: MetricSpec,
        arm: Row | None,
        name: str,
        histograms: Mapping[str, Sequence[Row]],
    ) -> NotEstimable | None:
        if arm is None or not histograms.get(str(arm["variant"])):
            return NotEstimable(
                f"not estimable: no '{metric.event}' values from the units of {name} yet",
                metric.event,
            )
        return None


KINDS: dict[str, MetricKind] = {
    kind.name: kind for kind in (MeanKind(), ProportionKind(), RatioKind(), QuantileKind())
}


def kind_of(type_name: str) -> MetricKind:
    """The kind a metric's ``type`` names."""
    try:
        return KINDS[type_name]
    except KeyError:
        raise ValueError(
            f"unknown metric type {type_name!r}; the kinds are {', '.join(KINDS)}"
        ) from None


def launch_period_unsupported(metric: MetricSpec) -> str | None:
    """Why a holdout's effect since a launch is not computed for ``metric`` (None: it is).

    The effect since a launch reads each unit's value over the days from the launch as its
    cumulative value less its value on the day before (docs/statistics.md, "Long-term
    holdouts"); that needs a value that adds up over days."""
    if metric.kind.keeps_histograms:
        return (
            "a quantile of the observations since the launch would need the histograms of the "
            "period, which are not kept"
        )
    if metric.kind.unit_terms(metric).reduction == "any":
        return (
            "a unit's value is whether the event ever occurred since exposure, which cannot be "
            "split at the launch"
        )
    if metric.window_days is not None:
        return "its value is over a window from each unit's exposure, not over calendar days"
    if metric.winsorize is not None:
        return "its cap applies to the cumulative values, not to the values since the launch"
    return None
