"""One self-contained HTML report per experiment and day, and its Markdown twin for the UI.

The file has no external reference of any kind: CSS is inline, charts are ``data:`` PNG URIs,
there is no script, font or icon to fetch, so it opens offline, in a mail client or pasted into
a launch review exactly as it was rendered. Sections, in order: the decision and its reasons,
the headline numbers, the primary metric over time, the experiment's facts and traffic (with a
ramp, its phases: planned and actual split, each phase's sample-ratio test, the ramp action), every
metric by role, the forest plot, segments, model evaluation (when there are model logs), CUPED,
data quality, and the spec and conventions.
An INVALID report leads with why and shows effects only folded away, marked untrustworthy.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from exp_dagster.decision import (
    launch_periods,
    p_text,
    pct,
    sample_ratio,
    shown_non_inferior,
    srm_method_label,
)
from exp_dagster.report import charts
from exp_dagster.report.data import ReportData, report_path
from exp_dagster.report.summary import ROLE_ORDER, results_markdown
from exp_dagster.significance import spending_label
from exp_dagster.spec import LAUNCH_PERIOD_SEGMENT

# How each ``analysis.sequential_information`` measures a daily look's information.
INFORMATION_TEXT = {
    "relative": "(pooled mean / se)² per look, scale-free, so cumulative metrics accrue it",
    "absolute": "1/se² per look",
}

Row = Mapping[str, Any]

VERDICT_STYLE = {
    # verdict: (banner colour, text colour, what it means in one sentence)
    "SHIP": (charts.GREEN, "#FFFFFF", "The new variant is better and harms no guardrail."),
    "ROLLBACK": (charts.VERMILLION, "#FFFFFF", "The new variant makes things worse."),
    "KEEP_RUNNING": (
        charts.BLUE,
        "#FFFFFF",
        "Not enough evidence yet; the experiment should keep running.",
    ),
    "INCONCLUSIVE": (
        charts.GREY,
        "#FFFFFF",
        "The experiment ended without a clear answer.",
    ),
    "INVALID": (
        "#1A1A1A",
        "#FFFFFF",
        "The data cannot be trusted, so no conclusion can be drawn from this experiment as it "
        "stands.",
    ),
}

MULTIPLICITY_SHORT = {
    "holm": "Holm",
    "benjamini-hochberg": "BH",
    "bonferroni": "Bonf.",
    "none": "",
    "sidak": "Šidák",
    "holm-sidak": "Holm-Šidák",
    "hochberg": "Hochberg",
    "benjamini-yekutieli": "BY",
}

CSS = """
:root { --ink: #1f1f1f; --muted: #5f5f5f; --rule: #dddddd; --soft: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
       sans-serif; color: var(--ink); background: #ffffff; }
main { max-width: 1060px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 2px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--rule); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p.sub, .muted { color: var(--muted); }
p.sub { margin: 0 0 18px; }
.banner { border-radius: 8px; padding: 16px 22px; margin: 8px 0 14px; }
.banner .verdict { font-size: 30px; font-weight: 800; letter-spacing: 0.5px; }
.banner .meaning { font-size: 16px; margin-top: 2px; }
.banner ul { margin: 10px 0 0; padding-left: 20px; }
.banner li { margin: 3px 0; }
.warning { border-left: 5px solid #D55E00; background: #fff3ea; padding: 10px 14px;
           margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px;
         margin: 14px 0; }
.card { background: var(--soft); border-radius: 8px; padding: 10px 14px; }
.card .label { font-size: 12.5px; color: var(--muted); text-transform: uppercase;
               letter-spacing: 0.4px; }
.card .value { font-size: 22px; font-weight: 700; }
.card .note { font-size: 12.5px; color: var(--muted); }
figure { margin: 10px 0 18px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule);
             border-radius: 6px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--rule);
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.role-primary td:first-child { font-weight: 700; }
.good { color: #00704f; font-weight: 600; }
.bad { color: #b34700; font-weight: 600; }
.pill { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
        background: var(--soft); }
.bar { background: #e7eef5; border-radius: 3px; height: 10px; width: 160px; display: inline-block;
       vertical-align: middle; }
.bar span { display: block; height: 10px; border-radius: 3px; background: #0072B2; }
.scroll { overflow-x: auto; }
details { margin: 10px 0; }
summary { cursor: pointer; font-weight: 600; }
code { font-size: 13px; background: var(--soft); padding: 1px 4px; border-radius: 3px; }
footer { margin-top: 40px; font-size: 12.5px; color: var(--muted); }
"""


@dataclass(frozen=True)
class RenderedReport:
    """A rendered report.

    Attributes:
        html: the self-contained HTML document.
        markdown: the summary for the Dagster UI, with the main chart embedded.
        main_chart: the main chart as PNG bytes (None when there is nothing to plot yet).
        charts: every chart of the report by name, as PNG bytes.
    """

    html: str
    markdown: str
    main_chart: bytes | None
    charts: Mapping[str, bytes]


# ── formatting ───────────────────────────────────────────────────────────────────────────────


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> str:
    if not _finite(value):
        return "–"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    return f"{value:.4g}"


def _p(value: Any) -> str:
    if not _finite(value):
        return "–"
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _p_text(value: Any) -> str:
    """``p = 0.0123`` or ``p &lt; 0.0001``, escaped for HTML."""
    text = _p(value)
    return escape(f"p {text}" if text.startswith("<") else f"p = {text}")


def _test_note(row: Row) -> str:
    """The test behind a row's p-value: its statistic (t with its degrees of freedom, or z) and
    the absolute effect's standard error; "" for a row without one (not estimable, or written
    before results carried the statistic)."""
    statistic = row.get("statistic")
    if not _finite(statistic):
        return ""
    df = row.get("df")
    test = f"t = {statistic:.2f}, df {df:,.0f}" if _finite(df) else f"z = {statistic:.2f}"
    return f"{test}; SE {_number(row.get('std_error'))}"


def _share(value: Any) -> str:
    return f"{value * 100:.0f}%" if _finite(value) else "–"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(png: bytes | None, alt: str, caption: str) -> str:
    if png is None:
        return ""
    return (
        f'<figure><img src="{data_uri(png)}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    """An HTML table; cells are already-escaped HTML; ``numeric`` columns align right."""
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _verdict_label(data: ReportData) -> str:
    verdict = data.verdict
    variant = data.decision.get("variant")
    return verdict.replace("_", " ") + (f" {variant}" if variant and verdict == "SHIP" else "")


def _overall(data: ReportData) -> list[Row]:
    rows = [r for r in data.results if r["segment"] == "all"]
    return sorted(rows, key=lambda r: (ROLE_ORDER.get(r["role"], 9), r["metric"], r["variant"]))


def _primary_rows(data: ReportData) -> list[Row]:
    primary = data.experiment.spec.metrics.primary
    return [r for r in _overall(data) if r["metric"] == primary]


def _effect_class(row: Row) -> str:
    colour = charts.effect_colour(row)
    return {charts.GREEN: "good", charts.VERMILLION: "bad"}.get(colour, "")


# ── sections ─────────────────────────────────────────────────────────────────────────────────


def _banner(data: ReportData) -> str:
    background, ink, meaning = VERDICT_STYLE.get(data.verdict, VERDICT_STYLE["INVALID"])
    reasons = [str(r) for r in data.decision.get("reasons") or []]
    items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    return (
        f'<section class="banner" id="decision" style="background:{background};color:{ink}">'
        f'<div class="verdict">{escape(_verdict_label(data))}</div>'
        f'<div class="meaning">{escape(meaning)}</div>'
        f"<ul>{items}</ul></section>"
    )


def _cards(data: ReportData) -> str:
    spec = data.experiment.spec
    cards: list[tuple[str, str, str]] = []
    for row in _primary_rows(data):
        suffix = f" · {row['variant']}" if len(spec.treatments) > 1 else ""
        cards.append(
            (
                f"{row['metric']} lift{suffix}",
                pct(row["rel_effect"]),
                f"{1 - spec.alpha:.0%} CI [{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}]",
            )
        )
        if _finite(row.get("prob_better")):
            cards.append(
                (
                    "chance it is better",
                    f"{row['prob_better'] * 100:.1f}%",
                    f"expected loss if shipped {pct(row.get('expected_loss'), signed=False)}",
                )
            )
        if _finite(row.get("power")):
            days = row.get("days_needed")
            more = (
                "no more days needed"
                if _finite(days) and days <= 0
                else f"≈ {math.ceil(days)} more day(s) for {spec.power:.0%}"
                if _finite(days)
                else "more days will not help"
            )
            cards.append(
                (f"power for a {pct(spec.mde, signed=False)} lift", _share(row["power"]), more)
            )
    units = data.units
    srm = data.decision.get("srm_p_value")
    cards.append(
        (
            "units analysed",
            f"{sum(units.values()):,}" if units else "–",
            " / ".join(f"{units.get(v.name, 0):,} {v.name}" for v in spec.variants),
        )
    )
    cards.append(
        (
            "sample ratio test",
            "mismatch" if _finite(srm) and srm < spec.srm_alpha else "ok" if _finite(srm) else "–",
            f"{srm_method_label(data.experiment)} {p_text(srm)}"
            if _finite(srm)
            else "none: not randomised"
            if spec.did is not None
            else "not computed",
        )
    )
    body = "".join(
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="note">{escape(note)}</div></div>'
        for label, value, note in cards
    )
    return f'<div class="cards">{body}</div>'


def _facts(data: ReportData, traffic: bytes | None) -> str:
    spec = data.experiment.spec
    units = data.units
    total = sum(units.values())
    look = (data.as_of - spec.start).days + 1
    planned = (spec.end - spec.start).days + 1
    srm = data.decision.get("srm_p_value")
    facts = [
        ("Description", escape(spec.description or "–")),
        ("Owner", escape(spec.owner or "–")),
        ("Randomisation unit", escape(spec.unit)),
        (
            "Dates",
            f"{spec.start} to {spec.end} ({planned} days planned); this report is as of "
            f"{data.as_of}, day {min(look, planned)} of {planned}",
        ),
        ("Pre-period for CUPED", f"{spec.pre_period_days} day(s) before each unit's exposure"),
        (
            "Sample ratio (SRM) test",
            escape(
                f"{srm_method_label(data.experiment)} {p_text(srm)} against the planned weights; "
                f"a mismatch is declared "
                f"below {spec.srm_alpha:g}"
                if _finite(srm)
                else "none: a rollout by cluster that was not randomised has no planned split"
                if spec.did is not None
                else "not computed (an arm has no units)"
            ),
        ),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
    variant_rows = [
        [
            escape(v.name) + (' <span class="pill">control</span>' if v.control else ""),
            _share(v.weight),
            f"{units.get(v.name, 0):,}",
            _share(units.get(v.name, 0) / total) if total else "–",
        ]
        for v in spec.variants
    ]
    return (
        '<h2 id="facts">Experiment facts</h2>'
        f"<table>{rows}</table>"
        "<h3>Variants and traffic</h3>"
        + _table(
            ["variant", "planned weight", f"units (to {data.as_of})", "actual share"],
            variant_rows,
            {1, 2, 3},
        )
        + _ramp_table(data)
        + _figure(
            traffic,
            "Share of units per variant by day",
            "Each variant's share of the units first exposed on each day, against the planned "
            "weights of the ramp phase in force (dashed steps; the dotted lines mark the phase "
            "starts). A day drifting away from its phase's weight is a broken split."
            if spec.ramp is not None
            else "Each variant's share of the units first exposed on each day, against the "
            "split the bandit set for that day (dashed steps; the planned weights before its "
            "first split). A day drifting away from its split means the serving system did not "
            "follow bandit_allocations."
            if spec.bandit is not None
            else "Each variant's share of the exposed units, cumulative to each day; the dashed "
            "lines are the planned weights. A line drifting away from its weight is a broken "
            "split.",
        )
    )


def _planned_by_day(data: ReportData) -> dict[dt.date, dict[str, float]]:
    """A bandit's split of each day it set one for (``applies_to``); empty otherwise."""
    planned: dict[dt.date, dict[str, float]] = {}
    for row in data.bandit_allocations:
        applies = row.get("applies_to")
        if applies is not None and row.get("weight") is not None:
            planned.setdefault(applies, {})[str(row["variant"])] = float(row["weight"])
    return planned


def new_units_by_phase(data: ReportData) -> dict[str, dict[str, int]]:
    """Units first exposed in each ramp phase (its start date, ISO) per variant, to the
    report's day: the day-to-day differences of the cumulative units, summed by phase."""
    spec = data.experiment.spec
    if spec.ramp is None:
        return {}
    by_phase = {p.start.isoformat(): dict.fromkeys(spec.weights, 0) for p in spec.ramp}
    previous: Mapping[str, int] = {}
    for day in sorted(d for d in data.units_by_day if d <= data.as_of):
        phase = spec.ramp[spec.phase_index(day) or 0].start.isoformat()
        for variant in spec.weights:
            units = data.units_by_day[day].get(variant, 0)
            by_phase[phase][variant] += units - previous.get(variant, 0)
        previous = data.units_by_day[day]
    return by_phase


def _ramp_table(data: ReportData) -> str:
    """A ramp's phases: dates, planned split, the units first exposed in each and their split,
    each phase's sample-ratio test, and the day's ramp action."""
    spec = data.experiment.spec
    if spec.ramp is None:
        return ""
    by_phase = new_units_by_phase(data)
    srm = sample_ratio(data.experiment, data.units, by_phase)
    tests = getattr(srm, "phases", ())
    rows = []
    for index, phase in enumerate(spec.ramp):
        last = (
            spec.ramp[index + 1].start - dt.timedelta(days=1)
            if index + 1 < len(spec.ramp)
            else spec.end
        )
        units = by_phase[phase.start.isoformat()]
        total = sum(units.values())
        test = tests[index] if index < len(tests) else None
        if phase.start > data.as_of:
            status = "not started"
        elif last >= data.as_of:
            status = "in force"
        else:
            status = "done"
        rows.append(
            [
                f"{phase.start:%b %d} – {last:%b %d}",
                status,
                " / ".join(f"{escape(v)} {_share(w)}" for v, w in phase.weights.items()),
                f"{total:,}",
                " / ".join(f"{escape(v)} {_share(n / total)}" for v, n in units.items())
                if total
                else "–",
                p_text(test.p_value) if test is not None else "not tested (no units)",
            ]
        )
    action = data.decision.get("ramp_action")
    return (
        "<h3>Ramp</h3>"
        "<p>The planned split changes by phase; each unit keeps the phase of its first exposure. "
        "The sample-ratio test is run per phase against that phase's weights, and the overall "
        "effects are stratified by phase, so the changing split does not bias them."
        + (
            f" Ramp action on {data.as_of}: <b>{escape(str(action).replace('_', ' '))}</b>."
            if action
            else ""
        )
        + "</p>"
        + _table(
            [
                "phase",
                "status",
                "planned split",
                "units first exposed",
                "actual split",
                "sample ratio",
            ],
            rows,
            {3},
        )
    )


def _sequential_cell(row: Row) -> str:
    method = row.get("sequential_method")
    if method == "group_sequential" and _finite(row.get("sequential_boundary")):
        z = charts._z(row)
        crossed = " crossed" if row.get("significant") else ""
        return f"|z| {z:.2f} / {row['sequential_boundary']:.2f}{crossed}" if z else "–"
    if method == "always_valid" and _finite(row.get("sequential_p_value")):
        return f"p {_p(row['sequential_p_value'])}"
    return "–"


def _metrics_table(data: ReportData) -> str:
    spec = data.experiment.spec
    level = f"{1 - spec.alpha:.0%}"
    several = len(spec.treatments) > 1
    rows = []
    for r in _overall(data):
        effect_class = _effect_class(r)
        power = _share(r.get("power")) if r["role"] == "primary" else "–"
        days = r.get("days_needed")
        days_text = (
            ("0" if days <= 0 else f"{math.ceil(days)}")
            if _finite(days) and r["role"] == "primary"
            else "–"
        )
        guard = ""
        if r["role"] == "guardrail":
            # as the decision reads it: the sequential test under a sequential design
            guard = (
                ' <span class="pill good">non-inferior</span>'
                if shown_non_inferior(r)
                else ' <span class="pill bad">not shown non-inferior</span>'
            )
        adjusted = _p(r.get("p_value_adjusted"))
        method = str(r.get("multiplicity_method") or "")
        if method and adjusted != "–":
            short = MULTIPLICITY_SHORT.get(method, method)
            adjusted += f" <span class='muted'>{escape(short)}</span>"
        rows.append(
            [
                f"<b>{escape(str(r['metric']))}</b>"
                + (f"<br><span class='muted'>{escape(str(r['variant']))}</span>" if several else "")
                + guard,
                escape(str(r["role"])),
                f"{_number(r.get('mean_control'))} → {_number(r.get('mean_treatment'))}",
                f"{_number(r.get('abs_effect'))}<br><span class='muted'>"
                f"[{_number(r.get('abs_ci_low'))}, {_number(r.get('abs_ci_high'))}]</span>",
                f"<span class='muted'>{escape(str(r['not_estimable']))}</span>"
                if r.get("not_estimable")
                else f"<span class='{effect_class}'>{pct(r.get('rel_effect'))}</span><br>"
                f"<span class='muted'>[{pct(r.get('rel_ci_low'))}, "
                f"{pct(r.get('rel_ci_high'))}]</span>",
                _p(r.get("p_value"))
                + (
                    f"<br><span class='muted'>{escape(note)}</span>"
                    if (note := _test_note(r))
                    else ""
                ),
                adjusted,
                escape(_sequential_cell(r)),
                power,
                days_text,
            ]
        )
    headers = [
        "metric",
        "role",
        f"{spec.control} → treatment",
        f"abs effect [{level} CI]",
        f"rel lift [{level} CI]",
        "p-value",
        "adjusted p",
        "sequential |z| / bound",
        "power",
        "days needed",
    ]
    return _table(headers, rows, {2, 3, 4, 5, 6, 7, 8, 9})


def _segments(data: ReportData, chart: bytes | None) -> str:
    spec = data.experiment.spec
    primary = spec.metrics.primary
    rows = [
        r
        for r in data.results
        if r["segment"] not in ("all", LAUNCH_PERIOD_SEGMENT) and r["metric"] == primary
    ]
    if not rows:
        return ""
    by_segment: dict[tuple[str, str], Row] = {}
    for r in rows:
        by_segment.setdefault((str(r["segment"]), str(r["variant"])), r)
    alpha = spec.analysis.heterogeneity_alpha
    summary = []
    for (segment, variant), r in sorted(by_segment.items()):
        reversals = sorted(
            str(x["segment_value"])
            for x in rows
            if x["segment"] == segment and x["variant"] == variant and x.get("segment_reversal")
        )
        het = r.get("heterogeneity_p_value")
        verdict = (
            "<span class='bad'>differs across values</span>"
            if _finite(het) and het < alpha
            else "no evidence it differs"
        )
        summary.append(
            [
                escape(segment) + (f" ({escape(variant)})" if len(spec.treatments) > 1 else ""),
                _p(het),
                verdict,
                escape(", ".join(reversals) or "none"),
            ]
        )
    return (
        '<h2 id="segments">Segments</h2>'
        + _figure(
            chart,
            f"{primary} lift by segment",
            f"The lift in {primary} within each segment value, against the overall lift (dashed). "
            f"Segment values are many small tests: read them as hints, not verdicts.",
        )
        + _table(
            [
                "segment",
                "heterogeneity p (Cochran's Q)",
                f"at {alpha:g}",
                "reversals (significantly opposite)",
            ],
            summary,
            {1},
        )
    )


def _interval(row: Row, low: str = "ci_low", high: str = "ci_high") -> str:
    """``[low, high]`` in the value's own scale, or an empty string without an interval."""
    if not (_finite(row.get(low)) and _finite(row.get(high))):
        return ""
    return f"<br><span class='muted'>[{_number(row[low])}, {_number(row[high])}]</span>"


def _lift(
    row: Row, key: str = "rel_effect", low: str = "rel_ci_low", high: str = "rel_ci_high"
) -> str:
    if not _finite(row.get(key)):
        return "–"
    return (
        f"{pct(row[key])}<br><span class='muted'>[{pct(row.get(low))}, {pct(row.get(high))}]</span>"
    )


def _overall_of(rows: Sequence[Row], kind: str) -> list[Row]:
    return [r for r in rows if r["kind"] == kind and r.get("segment", "all") == "all"]


def _parity_table(data: ReportData) -> str:
    rows = []
    for r in data.parity:
        interleaving = r["evidence"] == "interleaving"
        lift = (
            f"{_number(r.get('lift'))}{_interval(r)}"
            if interleaving
            else _lift(r, "lift", "ci_low", "ci_high")
        )
        agrees = r.get("agrees_with_online")
        rows.append(
            [
                escape(str(r["variant"])),
                f"<b>{escape(str(r['evidence']))}</b>",
                escape(str(r["metric"])),
                lift,
                _p(r.get("p_value")),
                "–" if agrees is None else "yes" if agrees else "<span class='bad'>no</span>",
            ]
        )
    return _table(
        ["variant", "evidence", "metric", "lift [CI]", "p-value", "same sign as online"],
        rows,
        {3, 4},
    )


def _estimates_table(rows: Sequence[Row], *, comparison: bool = False) -> str:
    """Estimates (model, metric, value with CI, n, detail) or comparisons (candidate against
    baseline, difference with CI, relative lift, p)."""
    body = []
    for r in rows:
        value = f"{_number(r.get('value'))}{_interval(r)}"
        if comparison:
            body.append(
                [
                    escape(str(r["metric"])),
                    f"{escape(str(r['model']))} − {escape(str(r.get('baseline') or ''))}",
                    value,
                    _lift(r),
                    _p(r.get("p_value")),
                    escape(str(r.get("detail") or "")),
                ]
            )
        else:
            notes = []
            if _finite(r.get("effective_sample_size")):
                notes.append(f"ESS {r['effective_sample_size']:,.0f}")
            if r.get("detail"):
                notes.append(escape(str(r["detail"])))
            body.append(
                [
                    escape(str(r["metric"])),
                    escape(str(r["model"])),
                    value,
                    f"{int(r['n']):,}" if _finite(r.get("n")) else "–",
                    "; ".join(notes),
                ]
            )
    headers = (
        ["metric", "comparison", "difference [CI]", "relative [CI]", "p-value", "detail"]
        if comparison
        else ["metric", "model", "estimate [CI]", "n", "detail"]
    )
    return _table(headers, body, {2, 3, 4} if comparison else {2, 3})


def _segment_comparisons(data: ReportData) -> str:
    """The primary ranking metric's and the AUC's comparison per segment value, folded away."""
    rows = [
        r
        for r in data.model_evaluation
        if r.get("segment", "all") != "all"
        and (
            (r["kind"] == "ranking_comparison" and str(r["metric"]).startswith("ndcg@"))
            or r["kind"] == "classifier_comparison"
        )
    ]
    if not rows:
        return ""
    body = [
        [
            escape(f"{r['segment']} = {r['segment_value']}"),
            escape(str(r["metric"])),
            f"{escape(str(r['model']))} − {escape(str(r.get('baseline') or ''))}",
            f"{_number(r.get('value'))}{_interval(r)}",
            _p(r.get("p_value")),
            f"{int(r['n']):,}" if _finite(r.get("n")) else "–",
        ]
        for r in sorted(rows, key=lambda r: (r["kind"], str(r["segment"]), str(r["segment_value"])))
    ]
    return (
        "<details><summary>By segment (the requesting unit's value at first exposure; "
        "read as hints, not verdicts)</summary>"
        + _table(
            ["segment", "metric", "comparison", "difference [CI]", "p-value", "n"], body, {3, 4, 5}
        )
        + "</details>"
    )


def _model_evaluation(data: ReportData) -> str:
    """Offline metrics, counterfactual estimates, interleaving and the parity table."""
    rows = data.model_evaluation
    if not rows and not data.parity:
        return ""
    # The spec's level: the pipeline computes the model-evaluation intervals at it too.
    level = f"{1 - data.experiment.spec.alpha:.0%}"
    parts = [
        '<h2 id="model-evaluation">Model evaluation</h2>',
        "<p>What the models' logs said before and beside the A/B test: offline ranking and "
        "classifier metrics, counterfactual (off-policy) estimates from the production model's "
        f"logs, and team-draft interleaving, with {level} intervals. This is supporting "
        "evidence: the online primary metric decides.</p>",
    ]
    if data.parity:
        parts.append("<h3>Offline against online</h3>" + _parity_table(data))
    sections = (
        ("Offline ranking comparison", "ranking_comparison", True),
        ("Offline ranking metrics", "ranking", False),
        ("Counterfactual estimates", "off_policy", False),
        ("Interleaving (team draft)", "interleaving", True),
        ("Classifier comparison (DeLong's paired test)", "classifier_comparison", True),
        ("Classifier metrics and calibration", "classifier", False),
        ("Drift against the pre-period (PSI)", "drift", False),
    )
    for title, kind, comparison in sections:
        chosen = _overall_of(rows, kind)
        if chosen:
            parts.append(
                f"<h3>{escape(title)}</h3>" + _estimates_table(chosen, comparison=comparison)
            )
    parts.append(_segment_comparisons(data))
    return "".join(parts)


def _cuped(data: ReportData) -> str:
    rows = []
    for r in _overall(data):
        if r["role"] == "oec":
            continue  # a combination of metrics, never CUPED-adjusted
        if not r.get("cuped") or not _finite(r.get("variance_reduction")):
            rows.append([escape(str(r["metric"])), "not applied", "", "–"])
            continue
        reduction = max(0.0, float(r["variance_reduction"]))
        equivalent = reduction / (1 - reduction) if reduction < 1 else math.inf
        rows.append(
            [
                escape(str(r["metric"])),
                pct(reduction, signed=False),
                f'<span class="bar"><span style="width:{min(reduction, 1) * 100:.0f}%">'
                "</span></span>",
                f"+{equivalent * 100:.0f}% units" if math.isfinite(equivalent) else "–",
            ]
        )
    unique = {row[0]: row for row in rows}
    return (
        '<h2 id="cuped">CUPED variance reduction</h2>'
        "<p>CUPED subtracts what each unit's pre-period already predicts, which shrinks the "
        "noise without biasing the effect. A 20% variance reduction is worth 25% more units.</p>"
        + _table(["metric", "variance reduction", "", "worth"], list(unique.values()), {1, 3})
    )


def _quality(data: ReportData) -> str:
    quality = data.quality
    parts = ['<h2 id="quality">Data quality</h2>']
    if quality is not None:
        exposure_q = sum(quality.exposure_quarantine.values())
        event_q = sum(quality.event_quarantine.values())
        parts.append(
            _table(
                ["input", "rows validated", "rows quarantined", "quarantined share"],
                [
                    [
                        f"exposure logs ({data.experiment.spec.start} to {data.as_of})",
                        f"{quality.exposure_rows:,}",
                        f"{exposure_q:,}",
                        _percent_of(exposure_q, quality.exposure_rows + exposure_q),
                    ],
                    [
                        f"event logs ({quality.first_event_day} to {data.as_of}, all experiments)",
                        f"{quality.event_rows:,}",
                        f"{event_q:,}",
                        _percent_of(event_q, quality.event_rows + event_q),
                    ],
                ],
                {1, 2, 3},
            )
        )
        reasons = [
            ["exposures", escape(reason), f"{count:,}"]
            for reason, count in quality.exposure_quarantine.items()
        ] + [
            ["events", escape(reason), f"{count:,}"]
            for reason, count in quality.event_quarantine.items()
        ]
        parts.append(
            "<h3>Quarantine reasons</h3>"
            + (
                _table(["log", "reason", "rows"], reasons, {2})
                if reasons
                else "<p>No row was quarantined.</p>"
            )
        )
    if data.gates:
        parts.append(
            "<h3>Gates (blocking pandera checks)</h3>"
            + _table(
                ["gate", "asset", "result", "detail"],
                [
                    [
                        f"<code>{escape(g.name)}</code>",
                        escape(g.asset),
                        f"<span class='{'good' if g.status == 'passed' else 'bad'}'>"
                        f"{escape(g.status)}</span>",
                        escape(g.detail),
                    ]
                    for g in data.gates
                ],
                set(),
            )
        )
    return "".join(parts)


def _percent_of(part: int, whole: int) -> str:
    return f"{part / whole * 100:.2f}%" if whole else "–"


def _conventions(data: ReportData) -> str:
    experiment = data.experiment
    spec = experiment.spec
    analysis = spec.analysis
    versions = sorted({str(r["spec_version"]) for r in data.results if r.get("spec_version")})
    stale = [v for v in versions if v != experiment.version]
    policy = [
        ("spec version", f"<code>{escape(experiment.version)}</code>"),
        ("spec file", f"<code>{escape(experiment.source)}</code>"),
        ("alpha / power / MDE", f"{spec.alpha:g} / {spec.power:g} / {pct(spec.mde, signed=False)}"),
        (
            "sequential design",
            escape(
                analysis.sequential.replace("_", " ")
                + (
                    f", {spending_label(analysis)} spending at "
                    + (
                        "the smaller share of planned days or of the information the mde needs"
                        if analysis.sequential_information == "relative"
                        else "the share of planned days"
                    )
                    if analysis.sequential == "group_sequential"
                    else ""
                )
                + (
                    f", information {INFORMATION_TEXT[analysis.sequential_information]}"
                    if analysis.sequential != "fixed_horizon"
                    else ""
                )
            ),
        ),
        (
            "multiplicity",
            escape(
                f"primary {analysis.primary_multiplicity}, secondary "
                f"{analysis.secondary_multiplicity}, guardrails {analysis.guardrail_multiplicity}, "
                f"segments {analysis.segment_multiplicity}"
            ),
        ),
        (
            "relative CI",
            escape(
                {
                    "fieller": "fieller: Fieller's theorem, the absolute test inverted; it "
                    "excludes 0 exactly when the absolute CI does (unbounded when the control "
                    "mean is not significantly different from 0: the p-value decides)",
                    "delta": "delta: delta method, symmetric; it can cover 0 while the p-value "
                    "is significant (the p-value decides)",
                    "log": "log: delta method on the log of the ratio (as tea-tasting), "
                    "asymmetric; it can disagree with the p-value (the p-value decides)",
                    "divided": "divided: the absolute CI divided by the control mean (as "
                    "spotify-confidence), ignoring the control mean's noise",
                }[analysis.relative_ci]
            ),
        ),
    ]
    methods = {}
    for r in _overall(data):
        methods.setdefault(str(r["metric"]), str(r["method"]))
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in policy)
    warning = (
        f'<div class="warning">These results were computed from spec version(s) '
        f"{escape(', '.join(stale))}, not the current {escape(experiment.version)}: re-run the "
        f"experiment's partitions to bring them up to date.</div>"
        if stale
        else "<p class='muted'>Every number in this report was computed from this spec version.</p>"
    )
    return (
        '<h2 id="conventions">Spec and conventions</h2>'
        + warning
        + f"<table>{rows}</table>"
        + _table(
            ["metric", "method"],
            [[escape(m), escape(text)] for m, text in methods.items()],
            set(),
        )
    )


# ── the document ─────────────────────────────────────────────────────────────────────────────


def render_charts(data: ReportData) -> dict[str, bytes]:
    """Every chart the report shows, by name (an INVALID report plots no effect)."""
    spec = data.experiment.spec
    drawn: dict[str, bytes | None] = {
        "traffic": charts.traffic_chart(data.units_by_day, spec, _planned_by_day(data)),
        "bandit": charts.bandit_chart(data.bandit_allocations, spec),
    }
    if data.verdict != "INVALID":
        drawn["cumulative"] = charts.cumulative_chart(data.history, spec)
        drawn["forest"] = charts.forest_chart(data.results, spec)
        drawn["segments"] = charts.segment_chart(data.results, spec)
        drawn["event_study"] = charts.event_study_chart(data.did_effects, spec)
    return {name: png for name, png in drawn.items() if png is not None}


def main_chart_name(data: ReportData) -> str:
    return "traffic" if data.verdict == "INVALID" else "cumulative"


def render_html(data: ReportData, pngs: Mapping[str, bytes] | None = None) -> str:
    """The whole report as one self-contained HTML document."""
    pngs = render_charts(data) if pngs is None else pngs
    spec = data.experiment.spec
    invalid = data.verdict == "INVALID"
    level = f"{1 - spec.alpha:.0%}"
    parts = [
        f"<h1>{escape(spec.id)}: experiment report</h1>",
        f"<p class='sub'>{escape(spec.description or '')} · as of {data.as_of} · "
        f"spec version <code>{escape(data.experiment.version)}</code></p>",
        _banner(data),
    ]
    if invalid:
        parts.append(
            '<div class="warning"><b>Do not act on any effect of this experiment.</b> Fix the '
            "cause above, then re-run its partitions; this report will be rewritten.</div>"
        )
        parts.append(_facts(data, pngs.get("traffic")))
        parts.append(_bandit(data, pngs.get("bandit")))
        parts.append(_quality(data))
        parts.append(
            '<h2 id="metrics">Metrics</h2><details><summary>Effects as computed (not '
            "trustworthy while the data is invalid)</summary>" + _metrics_table(data) + "</details>"
        )
    else:
        parts.append(_cards(data))
        parts.append(_did(data, pngs.get("event_study")))
        parts.append(
            '<h2 id="over-time">Primary metric over time</h2>'
            + _figure(
                pngs.get("cumulative"),
                f"Cumulative lift in {spec.metrics.primary} by day",
                f"Top: the lift from the start to each day, with its {level} fixed-horizon CI "
                "(band) and the sequential interval (dashed), which stays valid however often "
                "the results are looked at. Bottom: the evidence against the sequential "
                "boundary; crossing the naive threshold alone would be a false alarm from "
                "peeking. A lift that shrinks over the days hints at a novelty effect.",
            )
            + _holdout_table(data)
            + _timeline(data)
        )
        parts.append(_facts(data, pngs.get("traffic")))
        parts.append(_bandit(data, pngs.get("bandit")))
        parts.append('<h2 id="metrics">Metrics by role</h2>' + _metrics_table(data))
        parts.append(
            _figure(
                pngs.get("forest"),
                "Relative lift of every metric with its confidence interval",
                f"Point estimates with {level} CIs; a guardrail's dashed line is its "
                "non-inferiority margin, which the CI must stay on the safe side of.",
            )
        )
        parts.append(_oec_and_tree(data))
        parts.append(_segments(data, pngs.get("segments")))
        parts.append(_model_evaluation(data))
        parts.append(_cuped(data))
        parts.append(_quality(data))
    parts.append(_conventions(data))
    parts.append(
        f"<footer>exp_dagster report for {escape(spec.id)} as of {data.as_of}. Self-contained: "
        "no external resources.</footer>"
    )
    title = f"{spec.id} as of {data.as_of}: {_verdict_label(data)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty icon: otherwise browsers ask the page's origin for /favicon.ico.
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )


def _did(data: ReportData, chart: bytes | None) -> str:
    """A rollout that was not randomised: each did metric's difference in differences, its
    parallel-trends check (a failed one as a warning), and the event study ("" without)."""
    spec = data.experiment.spec
    did = spec.did
    if did is None:
        return ""
    level = f"{1 - spec.alpha:.0%}"
    rows = [r for r in data.did_effects if r["row_type"] == "did"]
    parts = [
        f"<p>Not randomised: the treatment went to the <b>{escape(did.cluster)}</b> clusters "
        f"{escape(', '.join(did.treated))} on {did.rollout_date}; every other "
        f"{escape(did.cluster)} is a control cluster. The effect is how much more the treated "
        "clusters' mean per unit-day moved from before to after the rollout than the control "
        f"clusters' did (2×2 difference in differences, {level} CI with CR1 standard errors "
        "clustered by cluster, t with G − 1 df). It is the effect only if the trends were "
        "parallel: the pre-rollout days of the event study below check that. The variant "
        "comparison under “Metrics by role” is confounded by the choice of clusters.</p>"
    ]
    warnings = []
    table = []
    for row in rows:
        metric = escape(row["metric"])
        if row.get("not_estimable"):
            table.append([metric, escape(row["not_estimable"]), *[""] * 7])
            continue
        passed = row.get("pre_trend_passed")
        check = (
            f"F = {_number(row['pre_trend_statistic'])}, {_p_text(row['pre_trend_p_value'])}: "
            + ("passed" if passed else "<b>failed</b>")
            if passed is not None
            else escape(row.get("pre_trend_note") or "not tested")
        )
        if passed is False:
            warnings.append(
                f'<div class="warning"><b>{metric}: parallel trends fail before the rollout</b> '
                f"({_p_text(row['pre_trend_p_value'])} &lt; {row['alpha']:g}): the treated "
                "clusters already moved differently from the control clusters, so this "
                "difference in differences is not credible.</div>"
            )
        table.append(
            [
                metric,
                _number(row["effect"]),
                f"[{_number(row['ci_low'])}, {_number(row['ci_high'])}]",
                _p(row["p_value"]),
                f"{row['n_clusters']} ({row['n_treated_clusters']} treated)",
                f"{row['n_observations']:,}",
                f"{_number(row['treated_pre'])} → {_number(row['treated_post'])}",
                f"{_number(row['control_pre'])} → {_number(row['control_post'])}",
                check,
            ]
        )
    parts.extend(warnings)
    parts.append(
        _table(
            [
                "metric",
                "effect",
                f"{level} CI",
                "p",
                "clusters",
                "unit-days",
                "treated pre → post",
                "control pre → post",
                "parallel trends (pre-period)",
            ],
            table,
            {1, 2, 3, 5},
        )
    )
    # Nothing is lost: the unit-days the panel left out for want of a cluster value (the same
    # units for every metric, so one sentence).
    notes = sorted({f"{r['note']}." for r in rows if r.get("note")})
    if notes:
        parts.append("".join(f"<p class='muted'>{escape(n)}</p>" for n in notes))
    parts.append(
        _figure(
            chart,
            "Event study: the effect of each day relative to the last day before the rollout",
            f"Each day's treated − control difference relative to the last pre-rollout day, with "
            f"its {level} CI. Before the rollout the points should scatter around 0 (parallel "
            "trends); after it they are the effect day by day.",
        )
    )
    return '<h2 id="did">Difference in differences</h2>' + "".join(parts)


def _bandit(data: ReportData, chart: bytes | None) -> str:
    """A bandit's allocation: the algorithm, reward, floor and burn-in, the weights of each day
    as a chart and a table, and the latest posterior probabilities ("" without a bandit)."""
    spec = data.experiment.spec
    bandit = spec.bandit
    if bandit is None:
        return ""
    reward = bandit.metric or spec.metrics.primary
    algorithm = (
        f"top-two Thompson sampling (the leader played with probability {bandit.top_two_beta:g})"
        if bandit.algorithm == "top_two_thompson"
        else "Thompson sampling"
    )
    intro = (
        f"<p>The split is set each day by {escape(algorithm)} on <b>{escape(reward)}</b>: each "
        f"day's statistics set the next day's weights (table <code>bandit_allocations</code>), "
        f"every variant keeping at least the floor of {bandit.floor:g}; the first "
        f"{bandit.burn_in_days} day(s) (burn-in) use the planned weights. Effects are "
        "stratified by the day of first exposure, and the sample ratio is tested per day "
        "against that day's split.</p>"
    )
    if not data.bandit_allocations:
        return (
            '<h2 id="bandit">Bandit allocation</h2>'
            + intro
            + "<p class='muted'>No split set yet: the bandit writes the next day's split at the "
            "end of each analysed day.</p>"
        )
    names = [v.name for v in spec.variants]
    by_day: dict[dt.date, dict[str, Row]] = {}
    for row in data.bandit_allocations:
        by_day.setdefault(row["applies_to"], {})[str(row["variant"])] = row
    table = [
        [
            str(day),
            *(f"{cells[name]['weight']:.1%}" if name in cells else "–" for name in names),
            escape(str(next(iter(cells.values()))["basis"])),
        ]
        for day, cells in sorted(by_day.items())
    ]
    latest = by_day[max(by_day)]
    best = ", ".join(
        f"{escape(name)} {latest[name]['probability_best']:.3f}"
        for name in names
        if name in latest and latest[name].get("probability_best") is not None
    )
    return (
        '<h2 id="bandit">Bandit allocation</h2>'
        + intro
        + _figure(
            chart,
            "Bandit allocation: each variant's share of the traffic by day",
            "Each variant's weight on each day, the start day at the planned weights; the dotted "
            "line is the floor.",
        )
        + _table(["applies to", *names, "basis"], table, set(range(1, len(names) + 1)))
        + (
            f"<p>Posterior probability of being the best arm, from the statistics through "
            f"{next(iter(latest.values()))['as_of_date']}: {best}.</p>"
            if best
            else ""
        )
    )


def _oec_and_tree(data: ReportData) -> str:
    """The spec's OEC (its weights, effect and role in the decision) and its metric tree: each
    factor's lift and share of the root's log lift, which says which branch moved."""
    spec = data.experiment.spec
    parts = []
    if spec.oec is not None:
        oec = spec.oec
        weights = ", ".join(f"{w:g} × {m}" for m, w in sorted(oec.components.items()))
        role = (
            "It decides the verdict in place of the primary metric."
            if oec.decides
            else f"It is reported; the primary metric {spec.metrics.primary} decides."
        )
        rows = []
        for row in _overall(data):
            if row["role"] != "oec":
                continue
            if row.get("not_estimable"):
                rows.append([escape(row["variant"]), escape(row["not_estimable"]), "", "", ""])
                continue
            rows.append(
                [
                    escape(row["variant"]),
                    escape(f"{row['mean_control']:.4g} → {row['mean_treatment']:.4g}"),
                    escape(
                        f"{row['abs_effect']:+.4g} [{row['abs_ci_low']:+.4g}, "
                        f"{row['abs_ci_high']:+.4g}]"
                    ),
                    escape(p_text(row["p_value"])),
                    "yes" if row.get("significant") else "no",
                ]
            )
        parts.append(
            f"<p>OEC <b>{escape(oec.name)}</b> = {escape(weights)}, each metric's "
            f"{'relative lift' if oec.normalisation == 'relative' else 'difference of means'}, "
            f"its variance from the metrics' joint covariance within units. "
            f"{escape(role)}</p>"
            + _table(
                ["variant", "OEC control → treatment", "effect [CI]", "p", "significant"],
                rows,
                {1, 2, 3},
            )
        )
    if spec.metric_tree is not None and data.metric_trees:
        rows = []
        for row in sorted(data.metric_trees, key=lambda r: (r["variant"], r["position"])):
            if row.get("not_estimable"):
                rows.append([escape(row["variant"]), escape(row["not_estimable"]), "", "", ""])
                continue
            name = f"{row['factor']} (total)" if row["position"] == 0 else f"× {row['factor']}"
            rows.append(
                [
                    escape(row["variant"]),
                    escape(name),
                    escape(f"{row['value_control']:.4g} → {row['value_treatment']:.4g}"),
                    escape(
                        f"{pct(row['lift'])} [{pct(row['lift_ci_low'])}, "
                        f"{pct(row['lift_ci_high'])}]"
                    ),
                    _share(row["share"]),
                ]
            )
        parts.append(
            f"<p>Metric tree: <b>{escape(spec.metric_tree.root)}</b> = "
            f"{escape(' × '.join(spec.metric_tree.factors))}. Each factor's share of the root's "
            f"log lift says which branch moved (shares add up to 100 %; one above 100 % or below "
            f"0 means another factor moved the other way).</p>"
            + _table(
                ["variant", "factor", "control → treatment", "lift [CI]", "share"],
                rows,
                {2, 3, 4},
            )
        )
    if not parts:
        return ""
    return '<h2 id="oec">OEC and metric tree</h2>' + "".join(parts)


def _holdout_table(data: ReportData) -> str:
    """A holdout's launch periods: the cumulative effect against the holdout at each period's
    last look (the day before the next launch, or the report's day)."""
    spec = data.experiment.spec
    periods = launch_periods(data.experiment, data.as_of)
    if not periods:
        return ""
    by_look = {(r["as_of_date"], r["variant"]): r for r in data.history}
    since = {
        (r["segment_value"], r["variant"]): r
        for r in data.results
        if r["segment"] == LAUNCH_PERIOD_SEGMENT and r["metric"] == spec.metrics.primary
    }

    def lift(row: Row | None) -> str:
        if row is None or not _finite(row.get("rel_effect")):
            return "n/a"
        return escape(
            f"{pct(row['rel_effect'])} [{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}]"
        )

    rows = []
    for period in periods:
        cells = [escape(period.label), f"{period.first:%b %d} – {period.last:%b %d}"]
        for variant in spec.treatments:
            cells.append(lift(by_look.get((period.last, variant))))
        for variant in spec.treatments:
            # the effect since this period's launch, through the report's day
            launch = period.launches[-1] if period.launches else None
            cells.append(lift(since.get((launch, variant))) if launch else "")
        rows.append(cells)
    headers = [
        "launches in force",
        "days",
        *(f"{v}: cumulative lift on the last day" for v in spec.treatments),
        *(f"{v}: lift since the launch, to {data.as_of:%b %d}" for v in spec.treatments),
    ]
    return (
        f"<p>Long-term holdout: <b>{escape(spec.control)}</b> is kept off the launches. Each "
        f"row is the cumulative lift in {escape(spec.metrics.primary)} at the last look of a "
        "launch period; a unit's metric runs from its first exposure, so each lift averages "
        "every day before it, launches and all. The last columns are the lift over the days "
        "since the period's launch alone, to the report's day (each unit's metric from the "
        "launch on).</p>" + _table(headers, rows, numeric=set(range(2, len(headers))))
    )


def _timeline(data: ReportData) -> str:
    if len(data.decisions_by_day) < 2:
        return ""
    cells = "".join(
        f"<td class='num'>{day:%b %d}<br><b>{escape(verdict.replace('_', ' '))}</b></td>"
        for day, verdict in sorted(data.decisions_by_day.items())
    )
    return (
        "<details><summary>Decision on each day</summary>"
        f"<table><tbody><tr>{cells}</tr></tbody></table></details>"
    )


def render_markdown(data: ReportData, main_chart: bytes | None, path: Path | None = None) -> str:
    """The summary for the asset page in the Dagster UI: decision, reasons, main chart, table."""
    spec = data.experiment.spec
    lines = [f"## {spec.id} as of {data.as_of}: **{_verdict_label(data)}**", ""]
    lines += [f"- {reason}" for reason in data.decision.get("reasons") or []]
    if main_chart is not None:
        alt = "traffic split" if data.verdict == "INVALID" else "cumulative lift"
        lines += ["", f"![{alt}]({data_uri(main_chart)})"]
    overall = [r for r in data.results if r["segment"] == "all"]
    if overall and data.verdict != "INVALID":
        lines += ["", results_markdown(overall)]
    if path is not None:
        lines += ["", f"Full report: `{path}`"]
    return "\n".join(lines)


def render_report(data: ReportData, path: Path | None = None) -> RenderedReport:
    """Charts, HTML and Markdown of one report."""
    pngs = render_charts(data)
    main = pngs.get(main_chart_name(data))
    return RenderedReport(
        html=render_html(data, pngs),
        markdown=render_markdown(data, main, path),
        main_chart=main,
        charts=pngs,
    )


def write_report(data: ReportData, reports_dir: Path) -> tuple[Path, RenderedReport]:
    """Render the report and write it to ``<reports_dir>/<experiment>/<day>.html`` (replacing
    any earlier rendering of the same day atomically)."""
    path = report_path(reports_dir, data.experiment.spec.id, data.as_of)
    rendered = render_report(data, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".html.partial")
    partial.write_text(rendered.html, encoding="utf-8")
    partial.replace(path)
    return path, rendered
