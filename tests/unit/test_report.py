"""The HTML report on hand-built rows: decision first, INVALID leads with why, nothing external,
every chart a real PNG, the same bytes on every rendering."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.report.charts import (
    _first_significant_day,
    forest_chart,
    sequential_relative_interval,
    traffic_chart,
)
from exp_dagster.report.data import DataQuality, GateResult, ReportData, report_path
from exp_dagster.report.html import RenderedReport, _sequential_cell, render_report, write_report
from exp_dagster.significance import significance_fields
from exp_dagster.spec import ResolvedExperiment, load_experiment, load_metric_catalog

START = dt.date(2026, 10, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(5)]
AS_OF = DAYS[-1]
SHIP_REASONS = (
    "Ship treatment.",
    "Primary metric ctr: treatment +4.00% [+2.00%, +6.00%] against control (p < 0.0001): "
    "a significant improvement.",
    "Guardrail latency_p95: non-inferior <script>alert(1)</script>.",
)
SRM_REASON = (
    "Sample ratio mismatch: 10,000 control / 7,500 treatment units against planned weights "
    "0.5 / 0.5 (chi-square p < 0.0001 < 0.001). The split is broken, so no effect can be trusted."
)


@functools.cache
def ranker_v2() -> ResolvedExperiment:
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    return load_experiment(PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml", catalog)


@pytest.fixture(scope="module")
def experiment() -> ResolvedExperiment:
    return ranker_v2()


def result(
    metric: str,
    role: str,
    rel: float,
    half_width: float,
    *,
    day: dt.date = AS_OF,
    segment: str = "all",
    value: str = "all",
    version: str = "",
    **extra: Any,
) -> dict[str, Any]:
    mean = 0.05 if metric == "ctr" else 100.0
    look = (day - START).days + 1
    row = {
        "experiment_id": "ranker_v2",
        "as_of_date": day,
        "metric": metric,
        "metric_type": "ratio" if metric == "ctr" else "mean",
        "role": role,
        "direction": "decrease" if metric == "latency_p95" else "increase",
        "segment": segment,
        "segment_value": value,
        "control": "control",
        "variant": "treatment",
        "n_control": 1000 * look,
        "n_treatment": 1010 * look,
        "mean_control": mean,
        "mean_treatment": mean * (1 + rel),
        "abs_effect": mean * rel,
        "abs_ci_low": mean * (rel - half_width),
        "abs_ci_high": mean * (rel + half_width),
        "rel_effect": rel,
        "rel_ci_low": rel - half_width,
        "rel_ci_high": rel + half_width,
        "p_value": 0.00001 if abs(rel) > half_width else 0.4,
        "cuped": metric != "latency_p95",
        "variance_reduction": 0.2 if metric != "latency_p95" else None,
        "method": f"two-sided test of {metric}",
        "alpha": 0.05,
        "ni_margin": 0.05 if role == "guardrail" else None,
        "ni_margin_type": "relative" if role == "guardrail" else None,
        "ni_bound": rel + half_width if role == "guardrail" else None,
        "ni_passed": (rel + half_width < 0.05) if role == "guardrail" else None,
        "spec_version": version,
        "std_error": mean * half_width / 1.96,
        "sequential_method": "group_sequential" if segment == "all" else None,
        "sequential_look": look if segment == "all" else None,
        "sequential_boundary": 8.0 / look**0.5 if segment == "all" else None,
        "sequential_ci_low": mean * (rel - 1.5 * half_width),
        "sequential_ci_high": mean * (rel + 1.5 * half_width),
        "sequential_significant": look >= 4,
        "p_value_adjusted": 0.0001,
        "multiplicity_method": "holm",
        "prob_better": 0.99,
        "expected_loss": 0.0001,
        "power": 0.5 + 0.08 * look,
        "days_needed": max(0.0, 4.0 - look),
        "heterogeneity_p_value": 0.003 if segment != "all" else None,
        "segment_reversal": value == "web",
    }
    built = {**row, **extra}
    return {**built, **significance_fields(ranker_v2(), built)}  # as the analysis judges it


def evaluation_row(
    kind: str, model: str, metric: str, value: float, **extra: Any
) -> dict[str, Any]:
    """An ``offline_evaluation`` row (overall unless ``segment`` is given)."""
    return {
        "kind": kind,
        "model": model,
        "metric": metric,
        "value": value,
        "segment": "all",
        "segment_value": "all",
        **extra,
    }


NDCG = "ndcg@10 (exponential gain)"
MODEL_EVALUATION = (
    evaluation_row(
        "ranking_comparison",
        "treatment",
        NDCG,
        0.0123,
        baseline="control",
        ci_low=0.0081,
        ci_high=0.0165,
        rel_effect=0.021,
        rel_ci_low=0.014,
        rel_ci_high=0.028,
        p_value=0.00002,
        n=900,
        detail="0.6000 against 0.5877 on the same requests",
    ),
    evaluation_row("ranking", "treatment", NDCG, 0.6, ci_low=0.59, ci_high=0.61, n=900),
    evaluation_row(
        "off_policy",
        "treatment",
        "top-slot click rate (doubly robust)",
        0.3456,
        ci_low=0.3012,
        ci_high=0.3899,
        n=1000,
        effective_sample_size=1234.0,
        detail="max weight 9 <weights>",
    ),
    evaluation_row(
        "interleaving",
        "treatment",
        "preference",
        0.0612,
        baseline="control",
        ci_low=0.021,
        ci_high=0.101,
        p_value=0.003,
        n=400,
        detail="150 wins, 110 losses, 20 ties; 120 requests without clicks",
    ),
    evaluation_row("classifier", "treatment", "auc", 0.7884, ci_low=0.77, ci_high=0.81, n=2000),
    evaluation_row(
        "classifier_comparison",
        "treatment",
        "auc",
        0.0253,
        baseline="control",
        ci_low=0.005,
        ci_high=0.0456,
        p_value=0.0147,
        n=2000,
        detail="0.7884 against 0.7631 on the same outcomes, correlation 0.613",
    ),
    evaluation_row(
        "drift", "treatment", "psi of feature_session_minutes", 0.3216, n=2000, detail="major"
    ),
    # A segment's comparison: only in the folded per-segment table.
    evaluation_row(
        "ranking_comparison",
        "treatment",
        NDCG,
        0.0777,
        baseline="control",
        ci_low=0.031,
        ci_high=0.124,
        p_value=0.001,
        n=120,
        segment="platform",
        segment_value="ios",
    ),
)
PARITY = tuple(
    {
        "variant": "treatment",
        "baseline": "control",
        "evidence": evidence,
        "metric": metric,
        "lift": lift,
        "ci_low": low,
        "ci_high": high,
        "p_value": 0.001,
        "agrees_with_online": agrees,
    }
    for evidence, metric, lift, low, high, agrees in (
        ("offline ranking", NDCG, 0.021, 0.014, 0.028, True),
        ("counterfactual", "top-slot click rate lift (doubly robust)", -0.05, -0.09, -0.01, False),
        ("interleaving", "team-draft preference", 0.0612, 0.021, 0.101, True),
        ("online A/B", "ctr", 0.04, 0.02, 0.06, None),
    )
)


def report_data(experiment: ResolvedExperiment, verdict: str, reasons: tuple[str, ...]) -> Any:
    version = experiment.version
    today = [
        result("ctr", "primary", 0.04, 0.02, version=version),
        result("watch_time", "secondary", 0.05, 0.04, version=version),
        result("conversion", "secondary", -0.01, 0.05, version=version),
        result("latency_p95", "guardrail", 0.02, 0.01, version=version),
        *(
            result("ctr", "primary", rel, 0.03, segment="platform", value=value, version=version)
            for value, rel in (("ios", 0.07), ("android", 0.03), ("web", -0.04))
        ),
    ]
    history = [
        result("ctr", "primary", 0.05 - 0.002 * i, 0.06 / (i + 1) ** 0.5, day=day)
        for i, day in enumerate(DAYS)
    ]
    lost = verdict == "INVALID"
    units = {
        day: {"control": 1000 * (i + 1), "treatment": int(1000 * (i + 1) * (0.75 if lost else 1))}
        for i, day in enumerate(DAYS)
    }
    return ReportData(
        experiment=experiment,
        as_of=AS_OF,
        decision={
            "decision": verdict,
            "variant": "treatment" if verdict == "SHIP" else None,
            "reasons": list(reasons),
            "srm_p_value": 1e-9 if lost else 0.43,
        },
        results=today,
        history=history,
        # Earlier days said SHIP: an INVALID report must still never show it.
        decisions_by_day={day: "SHIP" if i >= 3 else "KEEP_RUNNING" for i, day in enumerate(DAYS)},
        units_by_day=units,
        quality=DataQuality(
            exposure_rows=12_000,
            exposure_units=9_000,
            exposure_quarantine={"unknown variant": 12, "hash mismatch": 3},
            event_rows=500_000,
            event_quarantine={"missing value": 7},
            first_event_day=START - dt.timedelta(days=7),
        ),
        gates=(
            GateResult("check_exposures_schema", "exposures", "passed", "9,000 rows validated"),
            GateResult("check_results_schema", "results", "passed", "11 rows validated"),
        ),
        model_evaluation=MODEL_EVALUATION,
        parity=PARITY,
    )


@pytest.fixture(scope="module")
def shipped(experiment: ResolvedExperiment) -> RenderedReport:
    return render_report(report_data(experiment, "SHIP", SHIP_REASONS), Path("/r/x.html"))


@pytest.fixture(scope="module")
def invalid(experiment: ResolvedExperiment) -> RenderedReport:
    return render_report(report_data(experiment, "INVALID", (SRM_REASON,)))


class _References(HTMLParser):
    """Every URL-bearing attribute and every <img> source of a document."""

    URL_ATTRIBUTES: ClassVar[set[str]] = {
        "src",
        "href",
        "srcset",
        "action",
        "poster",
        "data",
        "background",
        "xlink:href",
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES:
                self.urls.append(value or "")
            if tag == "img" and name == "src":
                self.images.append(value or "")


def references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


def assert_self_contained(html: str) -> None:
    """No URL but ``data:``, no scheme-relative or absolute URL anywhere in the text, nothing
    that would load: no script, no external stylesheet, no CSS url() or @import."""
    found = references(html)
    assert found.urls, "the parser found no URL attribute at all: the test would prove nothing"
    assert all(url.startswith("data:") for url in found.urls), [
        u[:60] for u in found.urls if not u.startswith("data:")
    ]
    without_data = re.sub(r"data:[^\"')\s]*", "data:", html)
    for needle in ("http://", "https://", "//", "url(", "@import", "<script", "<iframe"):
        assert needle not in without_data.lower(), needle
    assert {"script", "iframe", "object", "embed", "link"} & set(found.tags) <= {"link"}


def assert_png(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix) and len(uri) > len(prefix) + 1000
    raw = base64.b64decode(uri[len(prefix) :], validate=True)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    Image.open(io.BytesIO(raw)).verify()
    image = Image.open(io.BytesIO(raw))
    assert image.width >= 600 and image.height >= 200
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is None or len(colours) > 10, "a chart of one or a few colours is empty"
    return image


def test_decision_and_its_reasons_come_first(shipped: RenderedReport) -> None:
    html = shipped.html
    banner = html.index('id="decision"')
    assert banner < html.index("<figure") and banner < html.index("<table")
    assert "SHIP treatment" in html[banner : banner + 400]
    positions = [html.index(r.split("<")[0][:40]) for r in SHIP_REASONS]
    assert positions == sorted(positions) and positions[0] > banner
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_sections_in_the_documented_order(shipped: RenderedReport) -> None:
    order = [
        "decision",
        "over-time",
        "facts",
        "metrics",
        "segments",
        "model-evaluation",
        "cuped",
        "quality",
    ]
    positions = [shipped.html.index(f'id="{section}"') for section in order]
    assert positions == sorted(positions)
    assert positions[-1] < shipped.html.index('id="conventions"')
    for text in ("latency_p95", "non-inferior", "unknown variant", "check_results_schema"):
        assert text in shipped.html


def test_invalid_leads_with_why_and_never_shows_ship(invalid: RenderedReport) -> None:
    html = invalid.html
    banner = html.index('id="decision"')
    assert "INVALID" in html[banner : banner + 300]
    assert html.index("Sample ratio mismatch") < html.index("<figure")
    assert "SHIP" not in html and "SHIP" not in invalid.markdown
    assert set(invalid.charts) == {"traffic"}, "no effect is plotted on a broken split"
    assert "not trustworthy" in html


def test_report_is_self_contained(shipped: RenderedReport, invalid: RenderedReport) -> None:
    assert_self_contained(shipped.html)
    assert_self_contained(invalid.html)


def test_every_chart_is_an_embedded_png(shipped: RenderedReport) -> None:
    images = references(shipped.html).images
    assert len(images) == len(shipped.charts) == 4
    for uri in images:
        assert_png(uri)


def test_markdown_has_the_decision_the_main_chart_and_the_path(shipped: RenderedReport) -> None:
    markdown = shipped.markdown
    assert markdown.startswith("## ranker_v2 as of 2026-10-05: **SHIP treatment**")
    uris = re.findall(r"!\[[^\]]*\]\((data:image/png;base64,[^)]+)\)", markdown)
    assert len(uris) == 1
    assert_png(uris[0])
    assert "/r/x.html" in markdown and "| ctr |" in markdown


def test_writing_twice_gives_the_same_file(experiment: ResolvedExperiment, tmp_path: Path) -> None:
    data = report_data(experiment, "KEEP_RUNNING", ("Keep running until 2026-10-14.",))
    path, _ = write_report(data, tmp_path)
    first = path.read_bytes()
    again, _ = write_report(data, tmp_path)
    assert again == path == report_path(tmp_path, "ranker_v2", AS_OF)
    assert again.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["2026-10-05.html"]


def test_stale_spec_version_is_called_out(experiment: ResolvedExperiment) -> None:
    data = report_data(experiment, "KEEP_RUNNING", ("Keep running.",))
    stale = [{**row, "spec_version": "0123abcd"} for row in data.results]
    html = render_report(ReportData(**{**data.__dict__, "results": stale})).html
    assert "spec version(s) 0123abcd, not the current" in html


def test_the_report_reads_significance_from_the_rows(experiment: ResolvedExperiment) -> None:
    """The sequential cell's "crossed" and the chart's first significant day come from the rows'
    ``significant``; a fixed-horizon one marks no crossing (before the end it is a peek)."""
    data = report_data(experiment, "SHIP", SHIP_REASONS)
    assert [r["significant"] for r in data.history] == [False, False, False, True, True]
    assert _first_significant_day(data.history) == DAYS[3]
    later = [{**r, "significant": r["as_of_date"] == AS_OF} for r in data.history]
    assert _first_significant_day(later) == AS_OF
    fixed = [{**r, "significance_test": "fixed_horizon"} for r in data.history]
    assert _first_significant_day(fixed) is None
    primary = data.results[0]
    assert _sequential_cell(primary).endswith(" crossed")
    assert not _sequential_cell({**primary, "significant": False}).endswith(" crossed")


def test_sequential_interval_is_widened_like_the_absolute_one() -> None:
    row = result("ctr", "primary", 0.04, 0.02)
    low, high = sequential_relative_interval(row) or (0.0, 0.0)
    assert low == pytest.approx(0.04 - 1.5 * 0.02) and high == pytest.approx(0.04 + 1.5 * 0.02)
    assert sequential_relative_interval({**row, "sequential_ci_low": None}) is None


def test_charts_with_nothing_to_draw_are_left_out(experiment: ResolvedExperiment) -> None:
    assert forest_chart([], experiment.spec) is None
    assert traffic_chart({}, experiment.spec) is None


def _model_section(html: str) -> str:
    return html[html.index('id="model-evaluation"') : html.index('id="cuped"')]


def test_model_evaluation_sets_offline_evidence_beside_the_online_lift(
    shipped: RenderedReport,
) -> None:
    section = _model_section(shipped.html)
    assert "the online primary metric decides" in section
    parity = section[section.index("Offline against online") :]
    # Relative lifts with their CIs, the interleaving preference on its own scale, the verdict
    # of agreement (the counterfactual disagrees) and the online row itself.
    for text in (
        "+2.10%",
        "[+1.40%, +2.80%]",
        "-5.00%",
        "0.0612",
        "[0.021, 0.101]",
        "online A/B",
        "<span class='bad'>no</span>",
    ):
        assert text in parity, text
    for text in (
        "0.0123",  # the NDCG difference
        "0.3456",  # the doubly robust estimate
        "ESS 1,234",
        "max weight 9 &lt;weights&gt;",
        "150 wins, 110 losses",
        "0.7884 against 0.7631",
        "psi of feature_session_minutes",
        "major",
    ):
        assert text in section, text
    # The segment row appears once, in the folded per-segment table only.
    assert section.count("0.0777") == 1
    assert section.index("0.0777") > section.index("<details>")
    assert "platform = ios" in section


def test_no_model_logs_no_model_evaluation_section(
    experiment: ResolvedExperiment, invalid: RenderedReport
) -> None:
    data = report_data(experiment, "KEEP_RUNNING", ("Keep running.",))
    html = render_report(ReportData(**{**data.__dict__, "model_evaluation": (), "parity": ()})).html
    assert 'id="model-evaluation"' not in html and 'id="cuped"' in html
    assert 'id="model-evaluation"' not in invalid.html, "an INVALID report shows no evidence"


def test_model_evaluation_states_the_spec_level(experiment: ResolvedExperiment) -> None:
    """The pipeline computes the model-evaluation intervals at the spec's alpha: the text says
    so, 95% by default and 99% for a spec with alpha 0.01."""
    assert "with 95% intervals" in _model_section(
        render_report(report_data(experiment, "SHIP", SHIP_REASONS)).html
    )
    strict = experiment.model_copy(
        update={"spec": experiment.spec.model_copy(update={"alpha": 0.01})}
    )
    section = _model_section(render_report(report_data(strict, "SHIP", SHIP_REASONS)).html)
    assert "with 99% intervals" in section and "95%" not in section


def test_the_metrics_table_names_each_tests_statistic(experiment: ResolvedExperiment) -> None:
    """Under each p-value: t with its degrees of freedom, or z, and the standard error; nothing
    for a row without a statistic (written before results carried one)."""
    data = report_data(experiment, "KEEP_RUNNING", ("Keep running.",))
    welch = {"statistic": 2.345, "df": 811.6, "std_error": 0.01234}
    rows = [
        {**data.results[0], **welch},
        {**data.results[1], "statistic": -1.5, "df": None, "std_error": 0.5},
        *data.results[2:],
    ]
    html = render_report(ReportData(**{**data.__dict__, "results": rows})).html
    metrics = html[html.index('id="metrics"') : html.index('id="segments"')]
    assert "t = 2.35, df 812; SE 0.01234" in metrics
    assert "z = -1.50; SE 0.5" in metrics
    assert metrics.count("; SE ") == 2


def holdout_experiment(experiment: ResolvedExperiment) -> ResolvedExperiment:
    from exp_dagster.spec import MetricCatalog, parse_experiment

    data = experiment.spec.model_dump(mode="json")
    data["holdout"] = {
        "group": "control",
        "launches": [
            {"name": "ranker_v2", "date": "2026-10-03"},
            {"name": "notif_v3", "date": "2026-10-05"},
        ],
    }
    return parse_experiment(data, "holdout.yaml", MetricCatalog(metrics=experiment.metrics))


def test_a_holdout_report_reads_each_launch_period_at_its_last_look(
    experiment: ResolvedExperiment,
) -> None:
    from exp_dagster.decision import pct
    from exp_dagster.report.charts import cumulative_chart
    from exp_dagster.report.html import render_html

    held = holdout_experiment(experiment)
    data = ReportData(**{**report_data(held, "KEEP_RUNNING", ("Keep the holdout.",)).__dict__})
    html = render_html(data)
    assert "Long-term holdout: <b>control</b> is kept off the launches" in html
    body = html.split("Long-term holdout:", 1)[1].split("</table>", 1)[0]
    by_day = {r["as_of_date"]: r for r in data.history}
    for label, first, last in (
        ("no launch yet", "Oct 01", dt.date(2026, 10, 2)),
        ("ranker_v2", "Oct 03", dt.date(2026, 10, 4)),
        ("ranker_v2 + notif_v3", "Oct 05", dt.date(2026, 10, 5)),
    ):
        row = by_day[last]
        lift = f"{pct(row['rel_effect'])} [{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}]"
        assert f'<td>{label}</td><td>{first} – {last:%b %d}</td><td class="num">{lift}</td>' in (
            body
        ), body
    assert body.count("<tr>") == 4  # the header and three periods
    # The effect since each launch alone (its launch_period row) in the period it opened.
    primary = next(
        r
        for r in data.results
        if r["segment"] == "all" and r["metric"] == held.spec.metrics.primary
    )
    since = {
        **primary,
        "segment": "launch_period",
        "segment_value": "ranker_v2",
        "rel_effect": 0.05,
        "rel_ci_low": 0.01,
        "rel_ci_high": 0.09,
    }
    with_since = render_html(ReportData(**{**data.__dict__, "results": [*data.results, since]}))
    body = with_since.split("Long-term holdout:", 1)[1].split("</table>", 1)[0]
    ranker = body.split("<td>ranker_v2</td>", 1)[1].split("</tr>", 1)[0]
    assert ranker.endswith('<td class="num">+5.00% [+1.00%, +9.00%]</td>'), ranker
    assert "lift since the launch, to" in body
    assert "launch_period" not in with_since  # not shown as a segment of the units
    # The chart marks the launches: the same history draws a different picture.
    with_marks = cumulative_chart(data.history, held.spec)
    assert with_marks is not None and with_marks != cumulative_chart(data.history, experiment.spec)
    assert "Long-term holdout" not in render_html(report_data(experiment, "SHIP", SHIP_REASONS))


def ramp_experiment(experiment: ResolvedExperiment) -> ResolvedExperiment:
    from exp_dagster.spec import MetricCatalog, parse_experiment

    data = experiment.spec.model_dump(mode="json")
    data["ramp"] = [
        {"start": "2026-10-01", "weights": {"control": 0.9, "treatment": 0.1}},
        {"start": "2026-10-03", "weights": {"control": 0.5, "treatment": 0.5}},
    ]
    return parse_experiment(data, "ramp.yaml", MetricCatalog(metrics=experiment.metrics))


def test_a_ramp_report_shows_each_phase_its_split_and_its_sample_ratio(
    experiment: ResolvedExperiment,
) -> None:
    from exp_dagster.report.charts import traffic_chart
    from exp_dagster.report.html import new_units_by_phase, render_html
    from exp_dagster.stats import srm_test

    ramped = ramp_experiment(experiment)
    # new units a day: 900 / 100 in the 10 % phase, then 1000 / 900 (a short treatment arm)
    new = [(900, 100), (900, 100), (1000, 900), (1000, 900), (1000, 900)]
    cumulative, total = {}, [0, 0]
    for day, (c, t) in zip(DAYS, new, strict=True):
        total = [total[0] + c, total[1] + t]
        cumulative[day] = {"control": total[0], "treatment": total[1]}
    base = report_data(ramped, "KEEP_RUNNING", ("Keep running.",))
    data = ReportData(
        **{
            **base.__dict__,
            "units_by_day": cumulative,
            "decision": {**base.decision, "ramp_action": "hold"},
        }
    )
    assert new_units_by_phase(data) == {
        "2026-10-01": {"control": 1800, "treatment": 200},
        "2026-10-03": {"control": 3000, "treatment": 2700},
    }
    html = render_html(data)
    section = html.split("<h3>Ramp</h3>", 1)[1].split("</table>", 1)[0]
    assert "Ramp action on 2026-10-05: <b>hold</b>" in section
    first, second = section.split("<tr>")[2:4]
    assert "Oct 01 – Oct 02" in first and "done" in first and "control 90" in first
    assert "2,000" in first and "treatment 10" in first
    assert "Oct 03 – " in second and "in force" in second and "5,700" in second
    # each phase tested against its own weights (scipy's chi-square as the reference)
    from scipy import stats as scipy_stats

    expected = scipy_stats.chisquare([3000, 2700], [5700 * 0.5, 5700 * 0.5]).pvalue
    assert abs(srm_test([3000, 2700], [0.5, 0.5]).p_value - expected) < 1e-12
    from exp_dagster.decision import p_text

    assert p_text(expected) in second
    assert p_text(1.0) in first or p_text(srm_test([1800, 200], [0.9, 0.1]).p_value) in first
    # the traffic chart plots each day's new units against the phase's weights
    ramp_chart = traffic_chart(cumulative, ramped.spec)
    assert ramp_chart is not None and ramp_chart != traffic_chart(cumulative, experiment.spec)
    assert "<h3>Ramp</h3>" not in render_html(report_data(experiment, "SHIP", SHIP_REASONS))


def test_a_bandit_traffic_chart_draws_each_day_against_the_split_the_bandit_set(
    experiment: ResolvedExperiment,
) -> None:
    from exp_dagster.report.charts import traffic_chart
    from exp_dagster.report.html import _planned_by_day
    from exp_dagster.spec import MetricCatalog, parse_experiment

    data = experiment.spec.model_dump(mode="json")
    data.pop("hash_salt", None)
    data["bandit"] = {"metric": "conversion"}
    bandit = parse_experiment(data, "bandit.yaml", MetricCatalog(metrics=experiment.metrics))
    cumulative = {
        day: {"control": 500 * (i + 1), "treatment": 500 * (i + 1) + 300 * i}
        for i, day in enumerate(DAYS)
    }
    rows = [
        {"applies_to": day, "variant": v, "weight": w}
        for day in DAYS[1:]
        for v, w in (("control", 0.4), ("treatment", 0.6))
    ]
    base = report_data(bandit, "KEEP_RUNNING", ("Keep running.",))
    planned = _planned_by_day(ReportData(**{**base.__dict__, "bandit_allocations": rows}))
    assert planned == {day: {"control": 0.4, "treatment": 0.6} for day in DAYS[1:]}
    with_split = traffic_chart(cumulative, bandit.spec, planned)
    assert with_split is not None
    assert with_split != traffic_chart(cumulative, bandit.spec, {})
