"""The report's charts as static PNG bytes (matplotlib, Agg canvas, no global pyplot state).

Every chart uses the Okabe–Ito palette, which stays distinguishable under the common forms of
colour blindness, and says with shape or line style what it says with colour. Each function
returns ``None`` when it has nothing to draw, so a report of a young experiment simply has fewer
charts.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from exp_dagster import home
from exp_dagster.spec import LAUNCH_PERIOD_SEGMENT, ExperimentSpec

# matplotlib is imported where a chart is drawn, not here: this module's palette is imported with
# the code location (by the report's HTML), and every run process and code server would otherwise
# pay half a second for matplotlib before doing anything else.
if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

Row = Mapping[str, Any]

# Okabe & Ito (2008), "Color Universal Design".
BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#6E6E6E"
SERIES = (BLUE, ORANGE, GREEN, PURPLE, SKY_BLUE, VERMILLION)

WIDTH_INCHES = 9.0
DPI = 110
ROLE_ORDER = {"primary": 0, "oec": 1, "secondary": 2, "guardrail": 3}
SEQUENTIAL_TESTS = frozenset({"group_sequential", "always_valid"})
STYLE = {
    "font.size": 10.5,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#444444",
    "axes.grid": True,
    "grid.color": "#E4E4E4",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 9.5,
    "savefig.facecolor": "white",
}


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def _percent(axis_value: float, _position: float) -> str:
    if not axis_value:
        return "0%"
    return f"{axis_value:+.0f}%".replace("-", "\N{MINUS SIGN}")


@contextmanager
def _figure(height: float, rows: int = 1, **kwargs: Any) -> Iterator[tuple[Figure, Any]]:
    home.contain_caches()  # before matplotlib's first import, which reads MPLCONFIGDIR
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, 1, squeeze=True, **kwargs)
        yield figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" or time stamp chunk: re-rendering the same rows gives the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def effect_colour(row: Row) -> str:
    """Green when the CI shows an improvement, vermillion when it shows harm, grey otherwise."""
    low, high = row.get("rel_ci_low"), row.get("rel_ci_high")
    if not (_finite(low) and _finite(high)) or low <= 0 <= high:
        return GREY
    better = (low > 0) == (row.get("direction") == "increase")
    return GREEN if better else VERMILLION


def _marker(colour: str) -> str:
    return {GREEN: "^", VERMILLION: "v"}.get(colour, "o")


def _relative_margin(row: Row) -> float | None:
    """A guardrail's margin as a relative lift on its harmful side (absolute margins scaled by
    the control mean), or None."""
    margin = row.get("ni_margin")
    if not _finite(margin):
        return None
    if row.get("ni_margin_type") == "absolute":
        control = row.get("mean_control")
        if not _finite(control) or control == 0:
            return None
        margin = margin / abs(control)
    return float(margin) if row.get("direction") == "decrease" else -float(margin)


def _interval_rows(
    axes: Axes, rows: Sequence[Row], labels: Sequence[str], *, limit: float | None = None
) -> None:
    """Points with horizontal CIs, one per row from the top; unbounded ends drawn as arrows."""
    from matplotlib.ticker import FuncFormatter

    for index, row in enumerate(rows):
        y = -index
        effect, low, high = row.get("rel_effect"), row.get("rel_ci_low"), row.get("rel_ci_high")
        if not _finite(effect):
            continue
        colour = effect_colour(row)
        left = low * 100 if _finite(low) else (-limit if limit else effect * 100)
        right = high * 100 if _finite(high) else (limit if limit else effect * 100)
        axes.plot([left, right], [y, y], color=colour, linewidth=2.4, solid_capstyle="butt")
        axes.plot(effect * 100, y, marker=_marker(colour), color=colour, markersize=8, linestyle="")
    axes.set_yticks([-i for i in range(len(rows))], labels)
    axes.set_ylim(-len(rows) + 0.4, 0.6)
    axes.grid(axis="y", visible=False)
    axes.axvline(0, color=BLACK, linewidth=1.0)
    axes.xaxis.set_major_formatter(FuncFormatter(_percent))


def _legend_handles() -> list[Line2D]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color=GREEN, marker="^", linewidth=2.4, label="better, CI excludes 0"),
        Line2D([], [], color=VERMILLION, marker="v", linewidth=2.4, label="worse, CI excludes 0"),
        Line2D([], [], color=GREY, marker="o", linewidth=2.4, label="CI includes 0"),
    ]


def forest_chart(results: Sequence[Row], spec: ExperimentSpec) -> bytes | None:
    """Relative lift with its CI for every metric and treatment, by role; guardrail margins."""
    from matplotlib.lines import Line2D

    rows = sorted(
        (r for r in results if r["segment"] == "all" and _finite(r.get("rel_effect"))),
        key=lambda r: (ROLE_ORDER.get(r["role"], 9), r["metric"], r["variant"]),
    )
    if not rows:
        return None
    several = len(spec.treatments) > 1
    labels = [
        f"{r['metric']} ({r['role']})" + (f"\n{r['variant']}" if several else "") for r in rows
    ]
    level = f"{1 - spec.alpha:.0%}"
    with _figure(1.6 + 0.5 * len(rows)) as (figure, axes):
        _interval_rows(axes, rows, labels)
        handles = _legend_handles()
        for index, row in enumerate(rows):
            margin = _relative_margin(row) if row["role"] == "guardrail" else None
            if margin is None:
                continue
            axes.plot(
                [margin * 100] * 2,
                [-index - 0.38, -index + 0.38],
                color=ORANGE,
                linewidth=2.2,
                linestyle=(0, (3, 2)),
            )
            axes.annotate(
                f"margin {margin * 100:+.1f}%",
                (margin * 100, -index - 0.38),
                textcoords="offset points",
                xytext=(4, 0),
                va="bottom",
                fontsize=9,
                color="#8A5A00",
            )
        if any(r["role"] == "guardrail" for r in rows):
            handles.append(
                Line2D([], [], color=ORANGE, linestyle=(0, (3, 2)), label="guardrail margin")
            )
        for boundary in range(1, len(rows)):
            if rows[boundary]["role"] != rows[boundary - 1]["role"]:
                axes.axhline(-boundary + 0.5, color="#BBBBBB", linewidth=0.8)
        axes.set_xlabel(f"relative lift vs {spec.control}, % (point estimate and {level} CI)")
        axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=4)
        axes.set_title(f"Effect of {', '.join(spec.treatments)} on every metric", pad=28)
        return _png(figure)


def sequential_relative_interval(row: Row) -> tuple[float, float] | None:
    """The sequential interval of ``abs_effect`` carried over to the relative lift.

    The repeated CI (or confidence sequence) is the fixed-horizon interval widened by a larger
    critical value on the same standard error, so the relative CI is widened by the same factor
    on each side.
    """
    keys = ("abs_effect", "abs_ci_low", "abs_ci_high", "sequential_ci_low", "sequential_ci_high")
    keys += ("rel_effect", "rel_ci_low", "rel_ci_high")
    if not all(_finite(row.get(k)) for k in keys):
        return None
    below = row["abs_effect"] - row["abs_ci_low"]
    above = row["abs_ci_high"] - row["abs_effect"]
    if below <= 0 or above <= 0:
        return None
    widen_low = (row["abs_effect"] - row["sequential_ci_low"]) / below
    widen_high = (row["sequential_ci_high"] - row["abs_effect"]) / above
    rel = row["rel_effect"]
    return (
        rel - (rel - row["rel_ci_low"]) * widen_low,
        rel + (row["rel_ci_high"] - rel) * widen_high,
    )


def _z(row: Row) -> float | None:
    effect, error = row.get("abs_effect"), row.get("std_error")
    if not (_finite(effect) and _finite(error)) or error <= 0:
        return None
    return abs(effect) / error


def _date_axis(axes: Axes) -> None:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    axes.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=10))
    axes.xaxis.set_major_formatter(DateFormatter("%b %d"))


def cumulative_chart(history: Sequence[Row], spec: ExperimentSpec) -> bytes | None:
    """The primary metric's cumulative lift by day with its fixed-horizon and sequential
    intervals (top), and the evidence against the sequential boundary (bottom)."""
    from matplotlib.ticker import FuncFormatter

    rows = [r for r in history if r["segment"] == "all" and _finite(r.get("rel_effect"))]
    if not rows:
        return None
    method = spec.analysis.sequential
    level = f"{1 - spec.alpha:.0%}"
    with _figure(6.4, rows=2, sharex=True, height_ratios=(3, 2)) as (figure, (top, bottom)):
        for index, variant in enumerate(spec.treatments):
            mine = [r for r in rows if r["variant"] == variant]
            if not mine:
                continue
            colour = SERIES[index % len(SERIES)]
            days = [r["as_of_date"] for r in mine]
            top.fill_between(
                days,
                [r["rel_ci_low"] * 100 for r in mine],
                [r["rel_ci_high"] * 100 for r in mine],
                color=colour,
                alpha=0.18,
                linewidth=0,
                label=f"{level} CI (fixed horizon)",
            )
            sequential = [sequential_relative_interval(r) for r in mine]
            if method != "fixed_horizon" and any(s is not None for s in sequential):
                kept = [(d, s) for d, s in zip(days, sequential, strict=True) if s is not None]
                for bound in (0, 1):
                    top.plot(
                        [d for d, _ in kept],
                        [s[bound] * 100 for _, s in kept],
                        color=colour,
                        linestyle="--",
                        linewidth=1.4,
                        label="sequential interval (valid at every look)" if bound == 0 else None,
                    )
            top.plot(
                days,
                [r["rel_effect"] * 100 for r in mine],
                color=colour,
                marker="o",
                linewidth=2.2,
                label=f"{variant}: cumulative lift",
            )
            _evidence(bottom, mine, spec, colour, variant)
        top.axhline(0, color=BLACK, linewidth=1.0)
        good = spec.mde * (100 if _primary_direction(rows) == "increase" else -100)
        top.axhline(good, color=GREY, linewidth=1.0, linestyle=":")
        top.annotate(
            f"MDE {good:+.1f}%",
            (0.0, good),
            xycoords=("axes fraction", "data"),
            xytext=(4, 3),
            textcoords="offset points",
            va="bottom",
            fontsize=9,
            color=GREY,
        )
        top.yaxis.set_major_formatter(FuncFormatter(_percent))
        top.set_ylabel(f"lift in {spec.metrics.primary}\nvs {spec.control}, %")
        top.set_title(f"Primary metric {spec.metrics.primary}: cumulative lift by day")
        top.legend(loc="upper right", ncol=1)
        _launch_markers((top, bottom), spec, max(r["as_of_date"] for r in rows))
        crossed = _first_significant_day(rows)
        if crossed is not None:
            for axes in (top, bottom):
                axes.axvline(crossed, color=GREEN, linewidth=1.2, alpha=0.8)
            top.annotate(
                f"boundary crossed on {crossed:%b %d}",
                (crossed, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=9,
                color=GREEN,
            )
        _date_axis(bottom)
        bottom.set_xlabel("analysis day (each day is one look at the data)")
        return _png(figure)


def _launch_markers(axes: Sequence[Axes], spec: ExperimentSpec, last: dt.date) -> None:
    """A holdout's launches up to ``last``: a dotted vertical line each, named at the top."""
    if spec.holdout is None:
        return
    for launch in spec.holdout.launches:
        if launch.date > last:
            continue
        for each in axes:
            each.axvline(launch.date, color=GREY, linewidth=1.0, linestyle=":")
        axes[0].annotate(
            f"{launch.name} launched",
            (launch.date, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, 4),
            textcoords="offset points",
            fontsize=9,
            color=GREY,
            rotation=90,
            va="bottom",
        )


def _primary_direction(rows: Sequence[Row]) -> str:
    return str(rows[0].get("direction") or "increase")


def _first_significant_day(rows: Sequence[Row]) -> dt.date | None:
    """The first day the primary metric was significant by a sequential test (the rows'
    ``significant``): a fixed-horizon reading before the end date is a peek, not a crossing."""
    days = [
        r["as_of_date"]
        for r in rows
        if r.get("significant") and r.get("significance_test") in SEQUENTIAL_TESTS
    ]
    return min(days) if days else None


def _evidence(
    axes: Axes, rows: Sequence[Row], spec: ExperimentSpec, colour: str, name: str
) -> None:
    """Bottom panel: |z| against the group-sequential boundary, or the always-valid /
    fixed-horizon p-value against alpha."""
    from matplotlib.ticker import MaxNLocator

    days = [r["as_of_date"] for r in rows]
    method = spec.analysis.sequential
    if method == "group_sequential":
        z = [_z(r) for r in rows]
        axes.plot(days, z, color=colour, marker="o", linewidth=2.0, label=f"{name}: |z|")
        boundary = [r.get("sequential_boundary") for r in rows]
        if any(_finite(b) for b in boundary):
            axes.plot(
                days,
                boundary,
                color=VERMILLION,
                linestyle="--",
                linewidth=1.8,
                label=f"{spec.analysis.spending} boundary",
            )
        naive = abs(_normal_quantile(spec.alpha / 2))
        axes.axhline(naive, color=GREY, linestyle=":", linewidth=1.2)
        axes.annotate(
            f"naive daily threshold {naive:.2f} (peeking)",
            (0.0, naive),
            xycoords=("axes fraction", "data"),
            xytext=(4, -3),
            textcoords="offset points",
            va="top",
            fontsize=9,
            color=GREY,
        )
        axes.set_ylabel("|z| statistic")
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_locator(MaxNLocator(5))
    else:
        key = "sequential_p_value" if method == "always_valid" else "p_value"
        values = [max(float(r[key]), 1e-6) if _finite(r.get(key)) else None for r in rows]
        label = "always-valid p-value" if method == "always_valid" else "p-value"
        axes.plot(days, values, color=colour, marker="o", linewidth=2.0, label=f"{name}: {label}")
        axes.axhline(spec.alpha, color=VERMILLION, linestyle="--", label=f"alpha {spec.alpha:g}")
        axes.set_yscale("log")
        axes.set_ylabel(f"{label} (log scale)")
    axes.legend(loc="upper center")


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def segment_chart(results: Sequence[Row], spec: ExperimentSpec) -> bytes | None:
    """The primary metric's lift within each segment value, against the overall lift."""
    primary = spec.metrics.primary
    overall = {r["variant"]: r for r in results if r["segment"] == "all" and r["metric"] == primary}
    rows = sorted(
        (
            r
            for r in results
            if r["segment"] not in ("all", LAUNCH_PERIOD_SEGMENT)
            and r["metric"] == primary
            and _finite(r.get("rel_effect"))
        ),
        key=lambda r: (r["segment"], r["variant"], str(r["segment_value"])),
    )
    if not rows:
        return None
    several = len(spec.treatments) > 1
    labels = [
        f"{r['segment']} = {r['segment_value']}" + (f" ({r['variant']})" if several else "")
        for r in rows
    ]
    level = f"{1 - spec.alpha:.0%}"
    with _figure(1.5 + 0.36 * len(rows)) as (figure, axes):
        _interval_rows(axes, rows, labels)
        for index, variant in enumerate(spec.treatments):
            row = overall.get(variant)
            if row is not None and _finite(row.get("rel_effect")):
                axes.axvline(
                    row["rel_effect"] * 100,
                    color=SERIES[index % len(SERIES)],
                    linestyle="--",
                    linewidth=1.4,
                    label=f"overall lift ({variant}) {row['rel_effect'] * 100:+.2f}%",
                )
        for boundary in range(1, len(rows)):
            if rows[boundary]["segment"] != rows[boundary - 1]["segment"]:
                axes.axhline(-boundary + 0.5, color="#BBBBBB", linewidth=0.8)
        handles = [*_legend_handles(), *axes.get_legend_handles_labels()[0]]
        axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=4)
        axes.set_xlabel(f"relative lift in {primary} vs {spec.control}, % ({level} CI)")
        axes.set_title(f"{primary} by segment", pad=30)
        return _png(figure)


def traffic_chart(
    units_by_day: Mapping[dt.date, Mapping[str, int]],
    spec: ExperimentSpec,
    planned_by_day: Mapping[dt.date, Mapping[str, float]] | None = None,
) -> bytes | None:
    """Each variant's share of the exposed units by day, against its planned weight; under a
    ramp or a bandit (whose split of each day is ``planned_by_day``, from bandit_allocations),
    each day's new units against that day's split."""
    days = sorted(units_by_day)
    if not days:
        return None
    if spec.ramp is not None or spec.bandit is not None:
        return _ramp_traffic_chart(units_by_day, spec, planned_by_day or {})
    seen: list[float] = []
    with _figure(3.2) as (figure, axes):
        for index, variant in enumerate(spec.variants):
            colour = SERIES[index % len(SERIES)]
            shares = []
            for day in days:
                total = sum(units_by_day[day].values())
                shares.append(units_by_day[day].get(variant.name, 0) / total * 100 if total else 0)
            seen += [*shares, variant.weight * 100]
            axes.plot(days, shares, color=colour, marker="o", linewidth=2.0, label=variant.name)
            axes.axhline(variant.weight * 100, color=colour, linestyle="--", linewidth=1.2)
        axes.set_ylabel("share of exposed units, %")
        axes.set_xlabel("analysis day (cumulative units)")
        axes.set_title("Traffic split by day (dashed: planned weights)")
        axes.legend(loc="center right")
        # Zoomed on the weights: a few points of drift is a broken split and must be visible.
        axes.set_ylim(max(0.0, min(seen) - 4), min(100.0, max(seen) + 4))
        _date_axis(axes)
        return _png(figure)


def _ramp_traffic_chart(
    units_by_day: Mapping[dt.date, Mapping[str, int]],
    spec: ExperimentSpec,
    planned_by_day: Mapping[dt.date, Mapping[str, float]],
) -> bytes | None:
    """Under a ramp or a bandit: each variant's share of the units first exposed on each day,
    against the split in force that day (a step: the ramp phase's weights, or the split the
    bandit set for the day, else the planned weights), a ramp's phase starts marked."""
    days = sorted(units_by_day)
    new: dict[dt.date, dict[str, int]] = {}
    previous: Mapping[str, int] = {}
    for day in days:
        new[day] = {v: units_by_day[day].get(v, 0) - previous.get(v, 0) for v in spec.weights}
        previous = units_by_day[day]
    seen: list[float] = []
    with _figure(3.2) as (figure, axes):
        for index, variant in enumerate(spec.variants):
            colour = SERIES[index % len(SERIES)]
            shown = [d for d in days if sum(new[d].values()) > 0]
            shares = [new[d][variant.name] / sum(new[d].values()) * 100 for d in shown]
            planned = [
                (planned_by_day.get(d) or spec.weights_on(d)).get(variant.name, 0.0) * 100
                for d in days
            ]
            seen += [*shares, *planned]
            axes.plot(shown, shares, color=colour, marker="o", linewidth=2.0, label=variant.name)
            axes.step(days, planned, where="mid", color=colour, linestyle="--", linewidth=1.2)
        for phase in (spec.ramp or [])[1:]:
            if days[0] <= phase.start <= days[-1]:
                # between the last day of the previous phase and the first of this one, where
                # the dashed step changes
                middle = dt.datetime.combine(phase.start, dt.time()) - dt.timedelta(hours=12)
                axes.axvline(middle, color=GREY, linestyle=":", linewidth=1.0)
        axes.set_ylabel("share of new units, %")
        axes.set_xlabel("day of first exposure")
        axes.set_title(
            "Traffic split of each day's new units (dashed: "
            + ("the phase's weights)" if spec.ramp is not None else "the bandit's split)")
        )
        axes.legend(loc="best")
        axes.set_ylim(max(0.0, min(seen) - 4), min(100.0, max(seen) + 4))
        _date_axis(axes)
        return _png(figure)


def event_study_chart(did_effects: Sequence[Row], spec: ExperimentSpec) -> bytes | None:
    """Each did metric's event study: the effect of each day relative to the last day before the
    rollout, with its CI; the pre-rollout days are the parallel-trends check (near 0 when the
    trends are parallel)."""
    if spec.did is None:
        return None
    metrics = [
        m
        for m in spec.did.metrics
        if any(r["row_type"] == "event_study" and r["metric"] == m for r in did_effects)
    ]
    if not metrics:
        return None
    level = f"{1 - spec.alpha:.0%}"
    rollout = spec.did.rollout_date
    with _figure(1.2 + 2.6 * len(metrics), rows=len(metrics)) as (figure, axes):
        for axis, metric in zip(axes if len(metrics) > 1 else [axes], metrics, strict=True):
            rows = sorted(
                (
                    r
                    for r in did_effects
                    if r["row_type"] == "event_study" and r["metric"] == metric
                ),
                key=lambda r: r["period"],
            )
            for row in rows:
                before = row["period"] < rollout
                colour = BLUE if before else ORANGE
                axis.plot(
                    [row["period"]] * 2,
                    [row["ci_low"], row["ci_high"]],
                    color=colour,
                    linewidth=2.2,
                )
                axis.plot(
                    [row["period"]],
                    [row["effect"]],
                    marker="o" if before else "D",
                    color=colour,
                    markersize=6,
                )
            axis.axhline(0.0, color=GREY, linewidth=1.0)
            # Between the last pre-rollout day and the rollout date.
            boundary = dt.datetime.combine(rollout, dt.time()) - dt.timedelta(hours=12)
            axis.axvline(boundary, color=BLACK, linewidth=1.0, linestyle="--")
            axis.annotate(
                f"rollout {rollout}",
                (boundary, 1.0),
                xycoords=("data", "axes fraction"),
                textcoords="offset points",
                xytext=(4, -12),
                fontsize=9,
            )
            _date_axis(axis)
            axis.set_ylabel(f"{metric}: treated − control")
            axis.set_title(
                f"Event study of {metric}: effect by day with its {level} CI "
                "(● before the rollout, ◆ after)"
            )
        return _png(figure)


def bandit_chart(allocations: Sequence[Row], spec: ExperimentSpec) -> bytes | None:
    """A bandit's split by day: each variant's weight on each day it applied to (the start day at
    the planned weights, then the ``bandit_allocations`` rows by ``applies_to``), with the floor."""
    if spec.bandit is None or not allocations:
        return None
    weights: dict[dt.date, dict[str, float]] = {spec.start: dict(spec.weights)}
    for row in allocations:
        weights.setdefault(row["applies_to"], {})[str(row["variant"])] = float(row["weight"])
    days = sorted(weights)
    floor = spec.bandit.floor
    with _figure(3.2) as (figure, axes):
        for index, variant in enumerate(spec.variants):
            colour = SERIES[index % len(SERIES)]
            shown = [d for d in days if variant.name in weights[d]]
            axes.step(
                shown,
                [weights[d][variant.name] * 100 for d in shown],
                where="mid",
                color=colour,
                linewidth=2.0,
                marker="os^Dv<>"[index % 7],
                label=variant.name,
            )
        if floor > 0:
            axes.axhline(floor * 100, color=GREY, linestyle=":", linewidth=1.2)
        axes.set_ylim(0.0, 100.0)
        axes.set_ylabel("share of the day's traffic, %")
        axes.set_xlabel("day the split applies to")
        axes.set_title(f"Bandit allocation by day ({spec.bandit.algorithm}; dotted: the floor)")
        axes.legend(loc="center right")
        _date_axis(axes)
        return _png(figure)
