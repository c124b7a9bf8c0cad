"""The metric-kind seam (exp_dagster.metric_kinds): the registry agrees with the spec, each kind
validates its fields, and each analysis option reaches the test it names, checked through
``analysis.estimate`` and ``compute_results`` on hand-built statistics rows against scipy,
statsmodels or the formula written out."""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import re
import typing
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest

from exp_dagster.analysis import compute_results, estimate
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.metric_kinds import (
    KINDS,
    OPTION_NAMES,
    AnalysisOptions,
    KindName,
    Reduction,
    resolve_options,
)
from exp_dagster.spec import (
    VERSION_NEUTRAL_METRIC_FIELDS,
    AnalysisPolicy,
    MetricCatalog,
    MetricSpec,
    load_experiment,
    load_metric_catalog,
    parse_experiment,
    spec_version,
)
from exp_dagster.warehouse.unit_state import REDUCTIONS

START = dt.date(2026, 10, 1)


def metric(**fields: Any) -> MetricSpec:
    base: dict[str, Any] = {"name": "m", "type": "mean", "direction": "increase", "event": "e"}
    return MetricSpec.model_validate({**base, **fields})


def value_row(variant: str, y: np.ndarray, c: np.ndarray | None = None) -> dict[str, Any]:
    """One arm's ``metric_statistics`` row of per-unit values ``y`` (and covariates ``c``)."""
    row: dict[str, Any] = {
        "as_of_date": START,
        "metric": "m",
        "variant": variant,
        "segment": "all",
        "segment_value": "all",
        "n": int(y.size),
        "sum_y": float(y.sum()),
        "sum_y2": float(y @ y),
        "sum_x": None,
        "sum_x2": None,
        "sum_xy": None,
        "sum_c": None,
        "sum_c2": None,
        "sum_yc": None,
    }
    if c is not None:
        row.update(sum_c=float(c.sum()), sum_c2=float(c @ c), sum_yc=float(y @ c))
    return row


def ratio_row(variant: str, y: np.ndarray, x: np.ndarray, c: np.ndarray, cx: np.ndarray) -> dict:
    """A ratio arm with its pre-period numerator ``c`` and denominator ``cx``."""
    return {
        "variant": variant,
        "n": int(y.size),
        "sum_y": float(y.sum()),
        "sum_x": float(x.sum()),
        "sum_y2": float(y @ y),
        "sum_x2": float(x @ x),
        "sum_xy": float(y @ x),
        "sum_c": float(c.sum()),
        "sum_cx": float(cx.sum()),
        "sum_c2": float(c @ c),
        "sum_cx2": float(cx @ cx),
        "sum_yc": float(y @ c),
        "sum_ycx": float(y @ cx),
        "sum_xc": float(x @ c),
        "sum_xcx": float(x @ cx),
        "sum_ccx": float(c @ cx),
    }


@pytest.fixture(scope="module")
def arms() -> dict[str, np.ndarray]:
    """Skewed per-unit values with a correlated pre-period covariate, unequal arms and spreads."""
    rng = np.random.default_rng(19)
    c_control, c_treatment = rng.gamma(2.0, 5.0, 300), rng.gamma(2.0, 5.0, 220)
    return {
        "c_control": c_control,
        "c_treatment": c_treatment,
        "y_control": 0.8 * c_control + rng.normal(0.0, 4.0, 300),
        "y_treatment": 0.8 * c_treatment + 1.5 + rng.normal(0.0, 7.0, 220),
    }


# ── the registry ────────────────────────────────────────────────────────────────────────────


def test_the_spec_types_are_the_registered_kinds() -> None:
    assert set(typing.get_args(KindName)) == set(KINDS)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.options <= set(OPTION_NAMES)
    assert set(OPTION_NAMES) <= set(AnalysisPolicy.model_fields)
    assert set(OPTION_NAMES) <= set(MetricSpec.model_fields)
    # The experiment's options and the kinds' options are declared twice (a pydantic model, a
    # dataclass): their defaults must agree, or a metric without overrides would differ.
    policy, options = AnalysisPolicy(), AnalysisOptions()
    assert {n: getattr(policy, n) for n in OPTION_NAMES} == {
        n: getattr(options, n) for n in OPTION_NAMES
    }


def test_every_catalog_metric_reads_its_kinds_events() -> None:
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    ctr = catalog.get("ctr")
    assert ctr.events == ("click", "impression") == ctr.kind.covariate_events(ctr)
    latency = catalog.get("latency_p95")
    assert latency.events == ("latency_ms",) and latency.kind.covariate_events(latency) == ()
    assert latency.kind.keeps_histograms and not ctr.kind.keeps_histograms
    assert catalog.get("conversion").kind.binary_unit_values


@pytest.mark.parametrize(
    ("fields", "event", "reduction", "denominator"),
    [
        ({}, "e", "sum", None),
        ({"aggregate": "count"}, "e", "count", None),
        ({"type": "proportion"}, "e", "any", None),
        ({"type": "ratio", "event": None, "numerator": "a", "denominator": "b"}, "a", "sum", "b"),
        (
            {"type": "ratio", "numerator": "a", "denominator": "b", "aggregate": "count"},
            "a",
            "count",
            "b",
        ),
        ({"type": "quantile", "level": 0.9}, "e", "count", None),
    ],
)
def test_unit_terms_are_the_kinds_events_reduced_as_the_warehouse_can(
    fields: dict[str, Any], event: str, reduction: str, denominator: str | None
) -> None:
    """What unit_metrics keeps per unit: a proportion is 1 once the event occurs, a quantile
    counts its observations (their values are in histograms), a ratio sums its denominator."""
    m = metric(**fields)
    terms = m.kind.unit_terms(m)
    assert (terms.event, terms.reduction, terms.denominator) == (event, reduction, denominator)
    assert {terms.event, terms.denominator} - {None} <= set(m.events)
    assert terms.covariate == m.kind.has_covariate
    assert m.kind.histogram_events(m) == (m.events if m.kind.keeps_histograms else ())
    assert m.kind.moment_statistics != m.kind.keeps_histograms


def test_every_reduction_of_the_seam_is_one_the_warehouse_computes() -> None:
    assert set(typing.get_args(Reduction)) == set(REDUCTIONS)


# ── the type string is matched in metric_kinds.py alone ─────────────────────────────────────

SOURCE_ROOTS = (PROJECT_ROOT / "exp_dagster", PROJECT_ROOT / "assets")
SEAM = PROJECT_ROOT / "exp_dagster" / "metric_kinds.py"
# names under which a metric's type travels: spec.type, a result row's metric_type, ...
TYPE_NAMES = {"type", "metric_type", "type_name", "kind", "kind_name"}
# SQL that tests a value against a quoted kind name, or a column named kind against anything
SQL_KIND_TEST = re.compile(r"(=|<>|!=|\bIN\s*\()\s*'(" + "|".join(KINDS) + r")'", re.I)
SQL_KIND_COLUMN = re.compile(r"\bkind\s*(=|<>|!=|\bIN\b)", re.I)


def _named(node: ast.expr) -> set[str]:
    """The names an operand goes by: ``m.type`` → type, ``row["metric_type"]`` → metric_type."""
    if isinstance(node, ast.Attribute):
        return {node.attr}
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return {str(node.slice.value)}
    return set()


def _kind_names(node: ast.AST) -> set[str]:
    """The kind names an operand or a match pattern spells out as string constants."""
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in KINDS
    }


def type_comparisons(source: str, *, sql: bool = False) -> list[int]:
    """The lines of ``source`` (Python, or SQL) that compare a metric's type.

    Python: a comparison of ``<x>.type`` with anything, a comparison or ``match`` of a value
    named like a type (``type``, ``metric_type``, ``kind``, ...) with a kind name, and SQL in a
    string constant that tests a value against a quoted kind name. SQL: the same test, or a
    ``kind`` column compared with anything. A ``Literal[...]`` of kind names compares nothing."""
    if sql:
        return [
            n
            for n, line in enumerate(source.splitlines(), 1)
            if SQL_KIND_TEST.search(line) or SQL_KIND_COLUMN.search(line)
        ]
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            named = set().union(*(_named(o) for o in operands))
            dotted_type = any(isinstance(o, ast.Attribute) and o.attr == "type" for o in operands)
            if dotted_type or (named & TYPE_NAMES and _kind_names(node)):
                lines.append(node.lineno)
        elif isinstance(node, ast.Match) and _named(node.subject) & TYPE_NAMES:
            if any(_kind_names(case.pattern) for case in node.cases):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_KIND_TEST.search(node.value)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_type_comparison_detector_finds_what_it_looks_for() -> None:
    flagged = [
        'if m.type == "ratio": pass',
        'x = "quantile" != metric.type',
        'x = metric.type in ("mean", "ratio")',
        'x = row["metric_type"] == "proportion"',
        "x = m.type == OTHER",
        'match m.type:\n    case "ratio":\n        pass',
        "q = \"SELECT CASE WHEN d.kind = 'ratio' THEN 1 END\"",
    ]
    for source in flagged:
        assert type_comparisons(source), source
    clean = [
        'KindName = Literal["mean", "proportion", "ratio", "quantile"]',
        'if binning == "quantile": pass',
        'ratio = stats.contingency.odds_ratio(table, kind="conditional")',
        'x = {"metric_type": metric.type}',
        "return kind_of(self.type)",
    ]
    for source in clean:
        assert not type_comparisons(source), source
    assert type_comparisons("WHEN d.kind = 'proportion' THEN 1", sql=True) == [1]
    assert type_comparisons("AND d.kind <> x", sql=True) == [1]
    assert not type_comparisons("WHEN d.reduction = 'any' THEN 1", sql=True)


def test_no_module_but_the_seam_compares_a_metric_type() -> None:
    """Adding a metric kind touches metric_kinds.py and its tests only (docs/development.md):
    the rest of the code asks ``metric.kind``."""
    sources = [p for root in SOURCE_ROOTS for p in sorted(root.rglob("*.py")) if p != SEAM]
    sql = [p for root in SOURCE_ROOTS for p in sorted(root.rglob("*.sql"))]
    assert len(sources) > 50 and sql
    found = {
        f"{path.relative_to(PROJECT_ROOT)}:{line}"
        for path in [*sources, *sql]
        for line in type_comparisons(path.read_text(), sql=path.suffix == ".sql")
    }
    assert not found, f"a metric's type is compared outside metric_kinds.py at {sorted(found)}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "ratio", "event": None, "numerator": "a"}, "needs both 'numerator'"),
        ({"type": "proportion", "event": None}, "a proportion metric needs an 'event'"),
        ({"type": "quantile"}, r"needs a 'level' in \(0, 1\)"),
        ({"type": "ratio", "numerator": "a", "denominator": "b", "winsorize": 0.99}, "mean"),
        ({"type": "proportion", "mean_test": "student"}, "'mean_test' applies to mean metrics"),
        ({"mean_test": "student", "continuity": True}, "'continuity' applies to proportion"),
        ({"type": "quantile", "level": 0.9, "cuped": "off"}, "a quantile; remove it"),
        (
            {"type": "ratio", "numerator": "a", "denominator": "b", "cuped_theta": "pooled"},
            "'cuped_theta' applies to mean and proportion metrics only",
        ),
        ({"cuped_variance": "population"}, "'cuped_variance' applies to proportion metrics"),
        ({"proportion_ci": "pooled"}, "'proportion_ci' applies to proportion metrics"),
        ({"proportion_ci_clip": True}, "'proportion_ci_clip' applies to proportion metrics"),
    ],
)
def test_each_kind_validates_its_fields(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        metric(**fields)


def test_a_guardrail_margin_type_is_the_kinds_to_allow() -> None:
    catalog = MetricCatalog.model_validate(
        {
            "metrics": {
                "p95": {"type": "quantile", "event": "e", "level": 0.95, "direction": "decrease"},
                "mean": {"type": "mean", "event": "e", "direction": "increase"},
            }
        }
    )
    spec: dict[str, Any] = {
        "id": "x",
        "variants": [{"name": "a", "weight": 0.5, "control": True}, {"name": "b", "weight": 0.5}],
        "start": "2026-10-01",
        "end": "2026-10-02",
        "metrics": {
            "primary": "mean",
            "guardrails": [{"metric": "p95", "margin": 0.05, "margin_type": "absolute"}],
        },
    }
    with pytest.raises(ValueError, match=r"quantile guardrails take a relative margin \(p95\)"):
        parse_experiment(spec, "x.yaml", catalog)


# ── options: resolution and the spec version ────────────────────────────────────────────────


def test_a_metric_overrides_the_experiments_options_and_inherits_the_rest() -> None:
    policy = AnalysisPolicy(relative_ci="delta", mean_test="student", cuped_theta="pooled")
    options = resolve_options(metric(relative_ci="log", cuped="off"), policy)
    assert options == AnalysisOptions(
        relative_ci="log", cuped="off", cuped_theta="pooled", mean_test="student"
    )
    assert resolve_options(metric()) == AnalysisOptions()
    assert resolve_options(metric(), AnalysisPolicy()) == AnalysisOptions()


def test_options_at_their_defaults_keep_ranker_v2s_version() -> None:
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    experiment = load_experiment(
        PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml", catalog
    )
    # main's version before the options existed (fa169b7): its sequential looks stand.
    assert experiment.version == "d5a7eab2877b"
    for field in VERSION_NEUTRAL_METRIC_FIELDS:
        assert all(field not in m.model_dump() for m in experiment.metrics.values())
    metrics = experiment.metrics.values()
    for option, value in [
        ("cuped", "off"),
        ("cuped_theta", "pooled"),
        ("proportion_test", "unpooled"),
        ("continuity", True),
        ("mean_test", "student"),
        ("cuped_variance", "population"),
        ("reference_distribution", "t"),
        ("reference_distribution", "normal"),
        ("p_value_scale", "relative"),
        ("proportion_ci", "pooled"),
        ("proportion_ci_clip", True),
    ]:
        analysis = experiment.spec.analysis.model_copy(update={option: value})
        changed = experiment.spec.model_copy(update={"analysis": analysis})
        assert spec_version(changed, metrics) != experiment.version, option
    ctr = experiment.metrics["ctr"]
    overridden = {**experiment.metrics, "ctr": ctr.model_copy(update={"cuped": "off"})}
    assert spec_version(experiment.spec, overridden.values()) != experiment.version


# ── options: the test each one selects, against independent references ─────────────────────


def test_mean_test_student_is_scipys_pooled_t_test(arms: dict[str, np.ndarray]) -> None:
    control, treatment = value_row("a", arms["y_control"]), value_row("b", arms["y_treatment"])
    for option, equal_var in (("welch", False), ("student", True)):
        options = resolve_options(metric(), AnalysisPolicy(mean_test=option))
        effect = estimate(metric(), control, treatment, alpha=0.05, options=options)
        reference = scipy_stats.ttest_ind(
            arms["y_treatment"], arms["y_control"], equal_var=equal_var
        )
        assert effect.statistic == pytest.approx(reference.statistic, rel=1e-10)
        assert effect.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert (
        "Student"
        in estimate(
            metric(mean_test="student"),
            control,
            treatment,
            alpha=0.05,
            options=resolve_options(metric(mean_test="student")),
        ).method
    )


def test_proportion_test_and_continuity_match_statsmodels_and_scipy() -> None:
    conversion = metric(type="proportion")
    y_control = np.r_[np.ones(130), np.zeros(870)]
    y_treatment = np.r_[np.ones(162), np.zeros(838)]
    control, treatment = value_row("a", y_control), value_row("b", y_treatment)

    def run(**policy: Any) -> Any:
        options = resolve_options(conversion, AnalysisPolicy(**policy))
        return estimate(conversion, control, treatment, alpha=0.05, options=options)

    counts, nobs = np.array([162, 130]), np.array([1000, 1000])
    pooled = proportions_ztest(counts, nobs)
    unpooled_z = (0.162 - 0.130) / math.sqrt(0.13 * 0.87 / 1000 + 0.162 * 0.838 / 1000)
    assert run().p_value == pytest.approx(pooled[1], rel=1e-10)
    assert run(proportion_test="unpooled").statistic == pytest.approx(unpooled_z, rel=1e-12)
    assert run(proportion_test="unpooled").p_value == pytest.approx(
        2 * scipy_stats.norm.sf(unpooled_z), rel=1e-10
    )
    table = [[162, 838], [130, 870]]
    yates = scipy_stats.chi2_contingency(table, correction=True).pvalue
    assert run(continuity=True).p_value == pytest.approx(yates, rel=1e-9)
    # A metric's own setting wins over the experiment's.
    own = metric(type="proportion", continuity=False)
    options = resolve_options(own, AnalysisPolicy(continuity=True))
    assert estimate(own, control, treatment, alpha=0.05, options=options).p_value == run().p_value


@pytest.mark.parametrize("theta", ["within", "pooled"])
def test_cuped_theta_is_welch_on_the_adjusted_values(
    arms: dict[str, np.ndarray], theta: str
) -> None:
    control = value_row("a", arms["y_control"], arms["c_control"])
    treatment = value_row("b", arms["y_treatment"], arms["c_treatment"])
    options = resolve_options(metric(), AnalysisPolicy(cuped_theta=theta))
    effect = estimate(metric(), control, treatment, alpha=0.05, options=options)
    y = np.r_[arms["y_control"], arms["y_treatment"]]
    c = np.r_[arms["c_control"], arms["c_treatment"]]
    if theta == "pooled":  # over all units, ignoring the arm
        slope = np.cov(y, c, ddof=1)[0, 1] / np.var(c, ddof=1)
    else:  # OLS of y ~ arm + c
        design = np.c_[np.ones_like(y), np.r_[np.zeros(300), np.ones(220)], c]
        slope = np.linalg.lstsq(design, y, rcond=None)[0][2]
    adjusted = y - slope * (c - c.mean())
    reference = scipy_stats.ttest_ind(adjusted[300:], adjusted[:300], equal_var=False)
    assert effect.abs_effect == pytest.approx(adjusted[300:].mean() - adjusted[:300].mean())
    assert effect.p_value == pytest.approx(reference.pvalue, rel=1e-8)


def test_cuped_variance_population_is_growthbooks_binomial_cuped() -> None:
    """A proportion with a binary pre-period covariate, ``cuped_theta: pooled`` and
    ``cuped_variance: population``: GrowthBook's regression-adjusted proportion test (Bernoulli
    variances, θ over all units, Welch df), written out; an experiment-level value leaves a mean
    metric's CUPED as it was."""
    rng = np.random.default_rng(11)
    conversion = metric(type="proportion")
    arms = {}
    for variant, n, lift in (("a", 1800, 0.0), ("b", 1900, 0.03)):
        c = (rng.random(n) < 0.35).astype(float)
        arms[variant] = ((rng.random(n) < 0.08 + 0.3 * c + lift).astype(float), c)
    control, treatment = value_row("a", *arms["a"]), value_row("b", *arms["b"])
    policy = AnalysisPolicy(cuped_theta="pooled", cuped_variance="population")
    effect = estimate(
        conversion, control, treatment, alpha=0.05, options=resolve_options(conversion, policy)
    )
    y, c = np.r_[arms["a"][0], arms["b"][0]], np.r_[arms["a"][1], arms["b"][1]]
    theta = (np.mean(y * c) - y.mean() * c.mean()) / (c.mean() * (1 - c.mean()))
    parts = []
    for y_arm, c_arm in arms.values():
        p, q = y_arm.mean(), c_arm.mean()
        covariance = np.mean(y_arm * c_arm) - p * q
        variance = p * (1 - p) + theta**2 * q * (1 - q) - 2 * theta * covariance
        parts.append((p - theta * q, variance / y_arm.size, y_arm.size))
    (mean_a, v_a, n_a), (mean_b, v_b, n_b) = parts
    se = math.sqrt(v_a + v_b)
    df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    assert effect.abs_effect == pytest.approx(mean_b - mean_a, rel=1e-12)
    assert effect.std_error == pytest.approx(se, rel=1e-12)
    assert effect.p_value == pytest.approx(
        2 * scipy_stats.t.sf(abs(mean_b - mean_a) / se, df), rel=1e-9
    )
    assert "ddof 0" in effect.method
    # the default keeps sample variances; a mean metric ignores the experiment's value
    default = estimate(conversion, control, treatment, alpha=0.05, options=AnalysisOptions())
    assert default.std_error > effect.std_error and "ddof 0" not in default.method
    mean = metric()
    for options in (AnalysisOptions(), resolve_options(mean, policy)):
        assert (
            "ddof 0" not in estimate(mean, control, treatment, alpha=0.05, options=options).method
        )
    assert (
        estimate(
            mean, control, treatment, alpha=0.05, options=resolve_options(mean, policy)
        ).std_error
        == estimate(
            mean, control, treatment, alpha=0.05, options=AnalysisOptions(cuped_theta="pooled")
        ).std_error
    )


def test_cuped_off_ignores_the_covariate(arms: dict[str, np.ndarray]) -> None:
    control = value_row("a", arms["y_control"], arms["c_control"])
    treatment = value_row("b", arms["y_treatment"], arms["c_treatment"])
    off = resolve_options(metric(cuped="off"), AnalysisPolicy())
    effect = estimate(metric(cuped="off"), control, treatment, alpha=0.05, options=off)
    reference = scipy_stats.ttest_ind(arms["y_treatment"], arms["y_control"], equal_var=False)
    assert effect.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert "CUPED" not in effect.method
    auto = estimate(metric(), control, treatment, alpha=0.05, options=AnalysisOptions())
    assert "CUPED" in auto.method and auto.std_error < effect.std_error


def test_ratio_cuped_off_is_the_delta_method_written_out() -> None:
    rng = np.random.default_rng(5)
    ctr = metric(type="ratio", event=None, numerator="click", denominator="impression")
    rows = []
    for variant, rate, n in (("a", 0.10, 400), ("b", 0.11, 380)):
        x, cx = rng.poisson(8.0, n).astype(float) + 1, rng.poisson(8.0, n).astype(float) + 1
        rows.append(
            (ratio_row(variant, rng.binomial(x.astype(int), rate) * 1.0, x, cx * rate, cx), x)
        )
    (control, x_c), (treatment, x_t) = rows

    def delta_variance(row: dict[str, Any], x: np.ndarray) -> float:
        n, r, mean_x = row["n"], row["sum_y"] / row["sum_x"], row["sum_x"] / row["n"]
        var_y = (row["sum_y2"] - row["sum_y"] ** 2 / n) / (n - 1)
        var_x = (row["sum_x2"] - row["sum_x"] ** 2 / n) / (n - 1)
        cov = (row["sum_xy"] - row["sum_y"] * row["sum_x"] / n) / (n - 1)
        return (var_y - 2 * r * cov + r**2 * var_x) / (n * mean_x**2)

    off = resolve_options(ctr, AnalysisPolicy(cuped="off"))
    effect = estimate(ctr, control, treatment, alpha=0.05, options=off)
    se = math.sqrt(delta_variance(control, x_c) + delta_variance(treatment, x_t))
    diff = treatment["sum_y"] / treatment["sum_x"] - control["sum_y"] / control["sum_x"]
    assert effect.std_error == pytest.approx(se, rel=1e-10)
    assert effect.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(diff) / se), rel=1e-9)
    assert "CUPED" in estimate(ctr, control, treatment, alpha=0.05).method


def test_a_metrics_relative_ci_overrides_the_experiments(arms: dict[str, np.ndarray]) -> None:
    """The log-scale interval (tea-tasting's), written out, for one metric in an experiment whose
    other metrics keep Fieller's."""
    y_c, y_t = arms["y_control"] + 20, arms["y_treatment"] + 20
    control, treatment = value_row("a", y_c), value_row("b", y_t)
    own = metric(relative_ci="log")
    options = resolve_options(own, AnalysisPolicy(relative_ci="fieller"))
    effect = estimate(own, control, treatment, alpha=0.05, options=options)
    vc, vt = y_c.var(ddof=1) / y_c.size, y_t.var(ddof=1) / y_t.size
    log_se = math.sqrt(vt / y_t.mean() ** 2 + vc / y_c.mean() ** 2)
    crit = scipy_stats.t.ppf(0.975, effect.df)
    centre = math.log(y_t.mean() / y_c.mean())
    assert effect.rel_ci_low == pytest.approx(math.expm1(centre - crit * log_se), rel=1e-10)
    assert effect.rel_ci_high == pytest.approx(math.expm1(centre + crit * log_se), rel=1e-10)


def test_options_reach_compute_results() -> None:
    """Through the pipeline path: the experiment's ``analysis:`` and a catalog override decide
    the test of each metric's row (conversion unpooled by the experiment, revenue Student's by
    its own setting), with the numbers of the reference tests."""
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    revenue = catalog.get("revenue").model_copy(update={"mean_test": "student"})
    catalog = catalog.model_copy(update={"metrics": {**catalog.metrics, "revenue": revenue}})
    spec: dict[str, Any] = {
        "id": "options",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": START.isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "conversion", "secondary": ["revenue"]},
        "analysis": {"proportion_test": "unpooled", "sequential": "fixed_horizon"},
    }
    experiment = parse_experiment(spec, "options.yaml", catalog)
    rng = np.random.default_rng(3)
    buy_c, buy_t = rng.binomial(1, 0.12, 900) * 1.0, rng.binomial(1, 0.14, 950) * 1.0
    rev_c, rev_t = rng.gamma(2.0, 10.0, 900), rng.gamma(2.0, 11.0, 950)
    rows = []
    for name, c, t in (("conversion", buy_c, buy_t), ("revenue", rev_c, rev_t)):
        rows += [
            {**value_row("control", c), "metric": name},
            {**value_row("treatment", t), "metric": name},
        ]
    results = compute_results(experiment, START, rows)
    by_metric = {r["metric"]: r for r in results if r["segment"] == "all"}
    pc, pt = buy_c.mean(), buy_t.mean()
    z = (pt - pc) / math.sqrt(pc * (1 - pc) / 900 + pt * (1 - pt) / 950)
    assert by_metric["conversion"]["p_value"] == pytest.approx(
        2 * scipy_stats.norm.sf(abs(z)), rel=1e-10
    )
    assert "unpooled" in by_metric["conversion"]["method"]
    student = scipy_stats.ttest_ind(rev_t, rev_c, equal_var=True)
    assert by_metric["revenue"]["p_value"] == pytest.approx(student.pvalue, rel=1e-9)
    assert "Student" in by_metric["revenue"]["method"]
    # The row says which statistic, df and options it was computed with.
    assert by_metric["revenue"]["statistic"] == pytest.approx(student.statistic, rel=1e-10)
    assert by_metric["revenue"]["df"] == student.df == 900 + 950 - 2
    assert by_metric["conversion"]["statistic"] == pytest.approx(z, rel=1e-10)
    assert by_metric["conversion"]["df"] is None
    assert json.loads(by_metric["revenue"]["test_options"])["mean_test"] == "student"
    assert json.loads(by_metric["conversion"]["test_options"]) == {
        "continuity": False,
        "cuped": "auto",
        "cuped_theta": "within",
        "cuped_variance": "sample",
        "p_value_scale": "absolute",
        "proportion_ci": "unpooled",
        "proportion_ci_clip": False,
        "proportion_test": "unpooled",
        "reference_distribution": "default",
        "relative_ci": "fieller",
    }


def test_conventions_reach_compute_results() -> None:
    """The reference distribution and the relative p-value through the pipeline path: the
    experiment asks for GrowthBook's conventions (Student t with Welch df, the relative lift's
    p-value with its delta interval), revenue overrides them with spotify-confidence's z-test of
    the difference; the rows' statistic, df, p-value, significance and test_options follow."""
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    revenue = catalog.get("revenue").model_copy(
        update={"reference_distribution": "normal", "p_value_scale": "absolute"}
    )
    catalog = catalog.model_copy(update={"metrics": {**catalog.metrics, "revenue": revenue}})
    spec: dict[str, Any] = {
        "id": "conventions",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": START.isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "conversion", "secondary": ["revenue"]},
        "analysis": {
            "sequential": "fixed_horizon",
            "reference_distribution": "t",
            "p_value_scale": "relative",
            "relative_ci": "delta",
            "proportion_test": "unpooled",
        },
    }
    experiment = parse_experiment(spec, "conventions.yaml", catalog)
    rng = np.random.default_rng(31)
    buy_c, buy_t = rng.binomial(1, 0.12, 900) * 1.0, rng.binomial(1, 0.15, 950) * 1.0
    rev_c, rev_t = rng.gamma(2.0, 10.0, 900), rng.gamma(2.0, 11.0, 950)
    rows = []
    for name, c, t in (("conversion", buy_c, buy_t), ("revenue", rev_c, rev_t)):
        rows += [
            {**value_row("control", c), "metric": name},
            {**value_row("treatment", t), "metric": name},
        ]
    by_metric = {
        r["metric"]: r for r in compute_results(experiment, START, rows) if r["segment"] == "all"
    }
    # conversion: gbstats' TTest on ProportionStatistics (variance p (1 - p)), written out
    conversion = by_metric["conversion"]
    pc, pt, nc, nt = buy_c.mean(), buy_t.mean(), 900, 950
    vc, vt = pc * (1 - pc), pt * (1 - pt)
    variance = vt / (pc**2 * nt) + vc * pt**2 / (pc**4 * nc)
    statistic = (pt - pc) / pc / math.sqrt(variance)
    dof = (vt / nt + vc / nc) ** 2 / (vt**2 / (nt**2 * (nt - 1)) + vc**2 / (nc**2 * (nc - 1)))
    p_value = 2 * scipy_stats.t.sf(abs(statistic), dof)
    assert conversion["statistic"] == pytest.approx(statistic, rel=1e-10)
    assert conversion["df"] == pytest.approx(dof, rel=1e-10)
    assert conversion["p_value"] == pytest.approx(p_value, rel=1e-9)
    width = scipy_stats.t.ppf(0.975, dof) * math.sqrt(variance)
    assert conversion["rel_ci_low"] == pytest.approx((pt - pc) / pc - width, rel=1e-9)
    assert conversion["significant"] == (p_value < 0.05)
    assert conversion["significance_basis"].endswith(" of the relative lift")
    assert json.loads(conversion["test_options"])["reference_distribution"] == "t"
    assert json.loads(conversion["test_options"])["p_value_scale"] == "relative"
    # revenue: Welch's statistic referred to the normal, the absolute difference's p-value
    revenue_row = by_metric["revenue"]
    welch = scipy_stats.ttest_ind(rev_t, rev_c, equal_var=False)
    assert revenue_row["statistic"] == pytest.approx(welch.statistic, rel=1e-10)
    assert revenue_row["df"] is None
    assert revenue_row["p_value"] == pytest.approx(
        2 * scipy_stats.norm.sf(abs(welch.statistic)), rel=1e-9
    )
    assert "relative lift" not in revenue_row["significance_basis"]
    assert json.loads(revenue_row["test_options"])["reference_distribution"] == "normal"


@pytest.mark.parametrize("relative_ci", ["delta", "log"])
def test_a_relative_p_value_that_does_not_exist_makes_the_row_not_estimable(
    relative_ci: str,
) -> None:
    """No unit of control bought yet (or, on the log scale, none of treatment): the lift has no
    p-value, and the row says why instead of carrying nan into significance and the gate."""
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    spec: dict[str, Any] = {
        "id": "lift",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": START.isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "conversion"},
        "analysis": {"sequential": "fixed_horizon", "relative_ci": relative_ci},
    }
    zero, some = np.zeros(200), np.r_[np.ones(12), np.zeros(188)]
    control, treatment = (zero, some) if relative_ci == "delta" else (some, zero)
    rows = [
        {**value_row("control", control), "metric": "conversion"},
        {**value_row("treatment", treatment), "metric": "conversion"},
    ]
    for scale in ("absolute", "relative"):
        analysis = {**spec["analysis"], "p_value_scale": scale}
        experiment = parse_experiment({**spec, "analysis": analysis}, "lift.yaml", catalog)
        (row,) = compute_results(experiment, START, rows)
        if scale == "absolute":
            assert row["not_estimable"] is None and 0.0 <= row["p_value"] < 0.05
            continue
        assert row["not_estimable"].startswith("not estimable: its p-value tests the relative")
        assert row["p_value"] is None and row["significant"] is None


def test_proportion_ci_options_reach_the_estimate() -> None:
    """``proportion_ci: pooled`` and ``proportion_ci_clip`` on a proportion row, against the
    pooled standard error of statsmodels' score test and R's prop.test clipping."""
    conversion = metric(type="proportion")
    control = value_row("a", np.array([1.0] + [0.0] * 9))
    treatment = value_row("b", np.array([1.0] * 9 + [0.0]))
    policy = AnalysisPolicy(proportion_ci="pooled", proportion_ci_clip=True)
    effect = estimate(
        conversion, control, treatment, alpha=0.05, options=resolve_options(conversion, policy)
    )
    z, _ = proportions_ztest([9, 1], [10, 10])
    half = scipy_stats.norm.ppf(0.975) * 0.8 / z
    assert effect.abs_ci_low == pytest.approx(0.8 - half, rel=1e-10)
    assert effect.abs_ci_high == 1.0 < 0.8 + half
    assert (
        KINDS["proportion"]
        .options_text(resolve_options(conversion, policy))
        .count('"proportion_ci":"pooled","proportion_ci_clip":true')
    )


# ── what a result row reports beside the test ───────────────────────────────────────────────


def test_unit_std_dev_is_of_the_value_each_kind_analyses(arms: dict[str, np.ndarray]) -> None:
    """ddof=1, before CUPED: the values themselves (mean, and the 0/1 values of a proportion),
    the linearised values of a ratio; none for a quantile."""
    y = arms["y_control"]
    assert KINDS["mean"].unit_std_dev(value_row("a", y, arms["c_control"])) == pytest.approx(
        np.std(y, ddof=1), rel=1e-10
    )
    converted = (y > np.median(y)).astype(float)
    assert KINDS["proportion"].unit_std_dev(value_row("a", converted)) == pytest.approx(
        np.std(converted, ddof=1), rel=1e-12
    )
    rng = np.random.default_rng(8)
    x = rng.poisson(6.0, 250).astype(float)
    clicks = rng.binomial(x.astype(int), 0.2).astype(float)
    ratio = clicks.sum() / x.sum()
    row = ratio_row("a", clicks, x, clicks, x)
    assert KINDS["ratio"].unit_std_dev(row) == pytest.approx(
        np.std((clicks - ratio * x) / x.mean(), ddof=1), rel=1e-9
    )
    assert KINDS["quantile"].unit_std_dev(row) is None


def test_arm_interval_is_each_arms_own_interval(arms: dict[str, np.ndarray]) -> None:
    """Before CUPED, at the spec's level: Student's t for a mean (scipy), Wilson for a proportion
    (statsmodels), the delta method for a ratio (numpy on the linearised values); none for a
    quantile or an arm too small."""
    from statsmodels.stats.proportion import proportion_confint

    y = arms["y_control"]
    low, high = KINDS["mean"].arm_interval(value_row("a", y, arms["c_control"]), 0.1)
    expected = scipy_stats.t.interval(0.9, len(y) - 1, loc=y.mean(), scale=scipy_stats.sem(y))
    assert (low, high) == pytest.approx(expected, rel=1e-10)
    converted = (y > np.quantile(y, 0.8)).astype(float)
    wilson = proportion_confint(int(converted.sum()), len(converted), 0.05, method="wilson")
    assert KINDS["proportion"].arm_interval(value_row("a", converted), 0.05) == pytest.approx(
        wilson, rel=1e-10
    )
    rng = np.random.default_rng(9)
    x = rng.poisson(6.0, 300).astype(float) + 1.0
    clicks = rng.binomial(x.astype(int), 0.2).astype(float)
    ratio = clicks.sum() / x.sum()
    linearised = (clicks - ratio * x) / x.mean()
    half = scipy_stats.norm.ppf(0.975) * linearised.std(ddof=1) / math.sqrt(len(x))
    row = ratio_row("a", clicks, x, clicks, x)
    assert KINDS["ratio"].arm_interval(row, 0.05) == pytest.approx(
        (ratio - half, ratio + half), rel=1e-9
    )
    assert KINDS["quantile"].arm_interval(row, 0.05) is None
    assert KINDS["mean"].arm_interval(value_row("a", y[:1]), 0.05) is None


def test_result_rows_carry_each_arms_interval() -> None:
    """Through compute_results: the overall row's arm intervals, at the spec's alpha."""
    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    spec: dict[str, Any] = {
        "id": "arms",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": START.isoformat(),
        "pre_period_days": 0,
        "alpha": 0.1,
        "metrics": {"primary": "revenue"},
        "analysis": {"sequential": "fixed_horizon"},
    }
    experiment = parse_experiment(spec, "arms.yaml", catalog)
    rng = np.random.default_rng(4)
    rev_c, rev_t = rng.gamma(2.0, 10.0, 400), rng.gamma(2.0, 11.0, 420)
    rows = [
        {**value_row("control", rev_c), "metric": "revenue"},
        {**value_row("treatment", rev_t), "metric": "revenue"},
    ]
    (row,) = [r for r in compute_results(experiment, START, rows) if r["segment"] == "all"]
    for arm, values in (("control", rev_c), ("treatment", rev_t)):
        expected = scipy_stats.t.interval(
            0.9, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values)
        )
        assert (row[f"{arm}_ci_low"], row[f"{arm}_ci_high"]) == pytest.approx(expected, rel=1e-9)


def test_options_text_is_the_kinds_options_as_stable_json() -> None:
    options = AnalysisOptions(relative_ci="log", mean_test="student", continuity=True)
    for kind in KINDS.values():
        text = kind.options_text(options, stratify_by="platform")
        chosen = json.loads(text)
        assert set(chosen) - {"stratify_by"} == kind.options
        assert all(chosen[name] == getattr(options, name) for name in kind.options)
        assert ("stratify_by" in chosen) == kind.post_stratifiable
        assert text == json.dumps(chosen, sort_keys=True, separators=(",", ":"))
    assert "stratify_by" not in KINDS["mean"].options_text(options)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "proportion", "event": "purchase", "aggregate": "count"},
        {"type": "quantile", "event": "latency_ms", "level": 0.95, "aggregate": "count"},
    ],
)
def test_counting_rows_is_rejected_where_it_would_be_ignored(
    tmp_path: typing.Any, fields: dict[str, Any]
) -> None:
    """A proportion is 1 once the unit has the event and a quantile reads every value: an
    ``aggregate: count`` there would be silently ignored, so the catalog says so instead."""
    from exp_dagster.spec import SpecError

    path = tmp_path / "metrics.yaml"
    path.write_text(json.dumps({"metrics": {"m": {"direction": "increase", **fields}}}))
    with pytest.raises(SpecError) as error:
        load_metric_catalog(path)
    message = str(error.value)
    assert "field 'metrics.m'" in message
    assert "'aggregate: count' applies to mean and ratio metrics" in message
    assert "remove it" in message
    # the default (sum) stays accepted on every kind
    path.write_text(
        json.dumps({"metrics": {"m": {"direction": "increase", **fields, "aggregate": "sum"}}})
    )
    assert load_metric_catalog(path).get("m").aggregate == "sum"
