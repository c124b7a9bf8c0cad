"""From sufficient statistics to result rows: which test each metric gets, and guardrail margins.

Conventions (also printed in every result row's ``method``):

* mean metrics: Welch t-test on per-unit values; with a pre-period, CUPED with θ pooled over arms
  (Deng et al. 2013) and Welch on the adjusted values.
* proportion metrics: two-proportion z-test, pooled variance for the p-value and unpooled (Wald)
  for the CI; with a pre-period, CUPED on the 0/1 unit values.
* ratio metrics: ratio of sums per arm, delta-method variance at the randomisation unit
  (Deng, Knoblich & Lu 2018), z-test.
* quantile metrics: Deng-Knoblich-Lu clustered interval read from the arm's histogram.
* every test two-sided at the spec's alpha; relative lift = treatment / control − 1 with a
  delta-method CI (not log-scale).
* guardrails: additionally a one-sided non-inferiority test at level alpha: the (1 − alpha) bound
  of the effect in the harmful direction must stay within the margin.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from exp_dagster.spec import MetricSpec, ResolvedExperiment
from exp_dagster.stats import (
    CovariateMoments,
    EffectEstimate,
    Moments,
    QuantileArm,
    RatioMoments,
    cuped_test,
    quantile_test,
    ratio_test,
    two_proportion_test,
    welch_test,
)

Row = Mapping[str, Any]


def _moments(row: Row) -> Moments:
    return Moments(n=int(row["n"]), sum_y=float(row["sum_y"]), sum_y2=float(row["sum_y2"]))


def _ratio_moments(row: Row) -> RatioMoments:
    return RatioMoments(
        n=int(row["n"]),
        sum_y=float(row["sum_y"]),
        sum_x=float(row["sum_x"]),
        sum_y2=float(row["sum_y2"]),
        sum_x2=float(row["sum_x2"]),
        sum_xy=float(row["sum_xy"]),
    )


def _covariate_moments(row: Row) -> CovariateMoments:
    return CovariateMoments(
        n=int(row["n"]),
        sum_y=float(row["sum_y"]),
        sum_y2=float(row["sum_y2"]),
        sum_c=float(row["sum_c"]),
        sum_c2=float(row["sum_c2"]),
        sum_yc=float(row["sum_yc"]),
    )


def _quantile_arm(row: Row, histogram: Sequence[Row]) -> QuantileArm:
    ordered = sorted(histogram, key=lambda r: r["bucket"])
    return QuantileArm(
        values=tuple(float(r["value"]) for r in ordered),
        counts=tuple(int(r["n"]) for r in ordered),
        threshold_moments=_ratio_moments(row),
    )


def uses_cuped(metric: MetricSpec, control: Row, treatment: Row) -> bool:
    """CUPED applies to mean and proportion metrics whose units have a pre-period covariate."""
    return (
        metric.type in ("mean", "proportion")
        and control.get("sum_c") is not None
        and treatment.get("sum_c") is not None
    )


def estimate(
    metric: MetricSpec,
    control: Row,
    treatment: Row,
    *,
    alpha: float,
    alternative: str = "two-sided",
    histograms: Mapping[str, Sequence[Row]] | None = None,
) -> EffectEstimate:
    """The effect of one metric for one treatment against control, by the metric's method."""
    kwargs: dict[str, Any] = {"alpha": alpha, "alternative": alternative}
    if metric.type == "quantile":
        histograms = histograms or {}
        return quantile_test(
            _quantile_arm(control, histograms.get(str(control["variant"]), [])),
            _quantile_arm(treatment, histograms.get(str(treatment["variant"]), [])),
            level=float(metric.level or 0.5),
            **kwargs,
        )
    if metric.type == "ratio":
        return ratio_test(_ratio_moments(control), _ratio_moments(treatment), **kwargs)
    if uses_cuped(metric, control, treatment):
        return cuped_test(_covariate_moments(control), _covariate_moments(treatment), **kwargs)
    if metric.type == "proportion":
        return two_proportion_test(
            round(float(control["sum_y"])),
            int(control["n"]),
            round(float(treatment["sum_y"])),
            int(treatment["n"]),
            **kwargs,
        )
    return welch_test(_moments(control), _moments(treatment), **kwargs)


def _guardrail_fields(
    experiment: ResolvedExperiment,
    metric: MetricSpec,
    control: Row,
    treatment: Row,
    histograms: Mapping[str, Sequence[Row]],
) -> dict[str, Any]:
    guardrail = experiment.spec.guardrail(metric.name)
    if guardrail is None:
        return {"ni_margin": None, "ni_margin_type": None, "ni_bound": None, "ni_passed": None}
    # Harm is a decrease for metrics that should increase, an increase for the others; the
    # non-inferiority bound is the one-sided (1 - alpha) bound on the side of harm.
    alternative = "greater" if metric.direction == "increase" else "less"
    one_sided = estimate(
        metric,
        control,
        treatment,
        alpha=experiment.spec.alpha,
        alternative=alternative,
        histograms=histograms,
    )
    relative = guardrail.margin_type == "relative"
    if metric.direction == "increase":
        bound = one_sided.rel_ci_low if relative else one_sided.abs_ci_low
        passed = bound > -guardrail.margin
    else:
        bound = one_sided.rel_ci_high if relative else one_sided.abs_ci_high
        passed = bound < guardrail.margin
    return {
        "ni_margin": guardrail.margin,
        "ni_margin_type": guardrail.margin_type,
        "ni_bound": bound,
        "ni_passed": bool(passed),
    }


def estimable(
    metric: MetricSpec, control: Row, treatment: Row, histograms: Mapping[str, Sequence[Row]]
) -> bool:
    """Whether both arms carry enough to define the effect: two units each, a non-zero ratio
    denominator, observations for a quantile. Cells that are not (e.g. a tiny segment) are skipped.
    """
    if min(int(control["n"]), int(treatment["n"])) < 2:
        return False
    if metric.type == "ratio":
        return float(control["sum_x"]) > 0 and float(treatment["sum_x"]) > 0
    if metric.type == "quantile":
        return bool(histograms.get(str(control["variant"]))) and bool(
            histograms.get(str(treatment["variant"]))
        )
    return True


def compute_results(
    experiment: ResolvedExperiment,
    day: dt.date,
    statistics: Iterable[Row],
    histograms: Iterable[Row] = (),
) -> list[dict[str, Any]]:
    """Result rows for every metric × treatment × segment value with both arms present.

    Args:
        experiment: the resolved spec.
        day: the as-of date.
        statistics: rows of ``metric_statistics`` for the partition.
        histograms: rows of ``quantile_histograms`` for the partition.

    Returns:
        Rows in the layout of the ``results`` table.
    """
    spec = experiment.spec
    cells: dict[tuple[str, str, str], dict[str, Row]] = defaultdict(dict)
    for row in statistics:
        cells[(row["metric"], row["segment"], row["segment_value"])][row["variant"]] = row
    histograms_by: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in histograms:
        histograms_by[row["metric"]][row["variant"]].append(row)

    results: list[dict[str, Any]] = []
    for (metric_name, segment, segment_value), arms in sorted(cells.items()):
        metric = experiment.metrics[metric_name]
        control = arms.get(spec.control)
        for variant in spec.treatments:
            treatment = arms.get(variant)
            hist = histograms_by[metric_name]
            if (
                control is None
                or treatment is None
                or not estimable(metric, control, treatment, hist)
            ):
                continue
            effect = estimate(metric, control, treatment, alpha=spec.alpha, histograms=hist)
            is_overall = segment == "all"
            results.append(
                {
                    "experiment_id": spec.id,
                    "as_of_date": day,
                    "metric": metric_name,
                    "metric_type": metric.type,
                    "role": spec.role_of(metric_name),
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
                    "rel_effect": effect.rel_effect,
                    "rel_ci_low": effect.rel_ci_low,
                    "rel_ci_high": effect.rel_ci_high,
                    "p_value": effect.p_value,
                    "cuped": effect.variance_reduction is not None,
                    "variance_reduction": effect.variance_reduction,
                    "method": effect.method,
                    "alpha": spec.alpha,
                    **(
                        _guardrail_fields(experiment, metric, control, treatment, hist)
                        if is_overall
                        else {
                            "ni_margin": None,
                            "ni_margin_type": None,
                            "ni_bound": None,
                            "ni_passed": None,
                        }
                    ),
                    "spec_version": experiment.version,
                }
            )
    return results
