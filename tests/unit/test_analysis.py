"""The analysis layer on simulated sufficient statistics: sequential looks, multiplicity families,
power, segments and novelty, and the decisions they lead to."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from exp_dagster.analysis import DayStatistics, compute_results, history_by_day, novelty_fields
from exp_dagster.decision import Verdict, decide
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.result_row import RESULT_COLUMNS
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.stats import group_sequential_boundaries

START = dt.date(2026, 10, 1)
DAYS = 14


@pytest.fixture(scope="module")
def catalog() -> MetricCatalog:
    return load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")


def experiment(catalog: MetricCatalog, **overrides: Any) -> ResolvedExperiment:
    """A CTR experiment of 14 days with no guardrail, modified by ``overrides``."""
    spec: dict[str, Any] = {
        "id": "ctr_test",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "ctr"},
        "mde": 0.02,
    }
    spec.update(overrides)
    return parse_experiment(spec, "test.yaml", catalog)


def ratio_row(
    day: dt.date, variant: str, clicks: np.ndarray, impressions: np.ndarray, **cell: str
) -> dict[str, Any]:
    return {
        "as_of_date": day,
        "metric": "ctr",
        "variant": variant,
        "segment": cell.get("segment", "all"),
        "segment_value": cell.get("segment_value", "all"),
        "n": int(clicks.size),
        "sum_y": float(clicks.sum()),
        "sum_y2": float(clicks @ clicks),
        "sum_x": float(impressions.sum()),
        "sum_x2": float(impressions @ impressions),
        "sum_xy": float(clicks @ impressions),
        "sum_c": None,
        "sum_c2": None,
        "sum_yc": None,
    }


def simulate_days(
    rng: np.random.Generator,
    ctr_by_variant: dict[str, float],
    *,
    units_per_day: int = 400,
    days: int = DAYS,
    segments: dict[str, dict[str, float]] | None = None,
) -> dict[dt.date, list[dict[str, Any]]]:
    """Cumulative per-unit clicks and impressions of units exposed on each day, reduced to the
    statistics rows of every day. ``segments`` maps a platform to per-variant CTRs there."""
    rows: dict[dt.date, list[dict[str, Any]]] = {}
    platforms = list(segments) if segments else ["all"]
    arms: dict[str, dict[str, Any]] = {}
    for variant, ctr in ctr_by_variant.items():
        n = units_per_day * days
        first_day = np.repeat(np.arange(days), units_per_day)
        platform = rng.choice(platforms, size=n)
        rate = np.array([segments[p][variant] if segments else ctr for p in platform], dtype=float)
        daily_impressions = rng.poisson(5.0, size=(n, days)).astype(float)
        daily_clicks = rng.binomial(daily_impressions.astype(int), rate[:, None]).astype(float)
        active = np.arange(days)[None, :] >= first_day[:, None]
        arms[variant] = {
            "first_day": first_day,
            "platform": platform,
            "clicks": np.cumsum(daily_clicks * active, axis=1),
            "impressions": np.cumsum(daily_impressions * active, axis=1),
        }
    for k in range(days):
        day = START + dt.timedelta(days=k)
        day_rows = []
        for variant, arm in arms.items():
            exposed = arm["first_day"] <= k
            clicks, impressions = arm["clicks"][exposed, k], arm["impressions"][exposed, k]
            day_rows.append(ratio_row(day, variant, clicks, impressions))
            if segments:
                platform = arm["platform"][exposed]
                for value in segments:
                    inside = platform == value
                    day_rows.append(
                        ratio_row(
                            day,
                            variant,
                            clicks[inside],
                            impressions[inside],
                            segment="platform",
                            segment_value=value,
                        )
                    )
        rows[day] = day_rows
    return rows


def analyse(
    resolved: ResolvedExperiment, rows: dict[dt.date, list[dict[str, Any]]], day: dt.date
) -> list[dict[str, Any]]:
    history = history_by_day(
        [r for d, day_rows in rows.items() if d < day for r in day_rows if r["segment"] == "all"]
    )
    return compute_results(resolved, day, rows[day], history=history)


def overall(results: list[dict[str, Any]], variant: str = "treatment") -> dict[str, Any]:
    return next(r for r in results if r["segment"] == "all" and r["variant"] == variant)


def test_group_sequential_boundary_matches_the_looks_so_far(catalog: MetricCatalog) -> None:
    resolved = experiment(catalog)
    rows = simulate_days(np.random.default_rng(1), {"control": 0.05, "treatment": 0.05})
    day = START + dt.timedelta(days=4)
    results = analyse(resolved, rows, day)
    row = overall(results)
    assert row["sequential_method"] == "group_sequential"
    # Independently: the boundaries of looks 1-5 from the day-by-day scale-free information
    # (pooled mean / se)², spent at the smaller of the share of days elapsed and the share of
    # the information a fixed test of the 2 % mde at 80 % power needs ((1.96 + 0.84) / mde)²;
    # with ``absolute``, 1 / se² spent by days elapsed.
    looks = [overall(analyse(resolved, rows, START + dt.timedelta(days=k))) for k in range(5)]
    pooled = [
        (r["n_control"] * r["mean_control"] + r["n_treatment"] * r["mean_treatment"])
        / (r["n_control"] + r["n_treatment"])
        for r in looks
    ]
    information = [(m / r["std_error"]) ** 2 for m, r in zip(pooled, looks, strict=True)]
    needed = ((scipy_stats.norm.isf(0.025) + scipy_stats.norm.ppf(0.8)) / 0.02) ** 2
    calendar = [(k + 1) / 14 for k in range(5)]
    times = [min(c, max(information[: k + 1]) / needed) for k, c in enumerate(calendar)]
    assert row["sequential_look"] == 5 and row["information_fraction"] == pytest.approx(times[-1])
    assert times[-1] < calendar[-1]  # 2,000 units a day are far from what a 2 % mde needs
    expected = group_sequential_boundaries(times, information, alpha=0.05, kind="obrien-fleming")
    assert row["sequential_boundary"] == pytest.approx(expected[-1], rel=1e-9)
    absolute = experiment(catalog, analysis={"sequential_information": "absolute"})
    expected_absolute = group_sequential_boundaries(
        calendar, [1 / r["std_error"] ** 2 for r in looks], alpha=0.05, kind="obrien-fleming"
    )
    assert overall(analyse(absolute, rows, day))["sequential_boundary"] == pytest.approx(
        expected_absolute[-1], rel=1e-9
    )
    assert row["sequential_boundary"] > 2.5  # O'Brien-Fleming is strict early on
    half_width = row["sequential_boundary"] * row["std_error"]
    assert row["sequential_ci_low"] == pytest.approx(row["abs_effect"] - half_width)
    assert (
        row["sequential_ci_high"] - row["sequential_ci_low"]
        > row["abs_ci_high"] - row["abs_ci_low"]
    )


def test_a_large_effect_ships_early_under_group_sequential_but_not_fixed_horizon(
    catalog: MetricCatalog,
) -> None:
    rows = simulate_days(np.random.default_rng(2), {"control": 0.05, "treatment": 0.06})
    # Day 8 of 14: a 20 % lift crosses once the information spent by (8 % of what the 2 % mde
    # needs by day 7, 11 % by day 8) lets O'Brien-Fleming's boundary fall below |z|.
    day = START + dt.timedelta(days=7)
    sequential = experiment(catalog)
    results = analyse(sequential, rows, day)
    units = DayStatistics(rows[day]).units(sequential)
    assert overall(results)["sequential_significant"] is True
    verdict = decide(sequential, day, results, units)
    assert verdict.decision == Verdict.SHIP and verdict.variant == "treatment"
    assert "group-sequential" in " ".join(verdict.reasons)
    assert "allows stopping before" in verdict.reasons[0]

    fixed = experiment(catalog, analysis={"sequential": "fixed_horizon"})
    results = analyse(fixed, rows, day)
    assert overall(results)["sequential_boundary"] is None
    verdict = decide(fixed, day, results, units)
    assert verdict.decision == Verdict.KEEP_RUNNING and "peeking" in verdict.reasons[0]
    end = START + dt.timedelta(days=DAYS - 1)
    assert decide(fixed, end, analyse(fixed, rows, end), units).decision == Verdict.SHIP


def test_always_valid_p_value_never_increases_and_is_above_the_fixed_one(
    catalog: MetricCatalog,
) -> None:
    resolved = experiment(catalog, analysis={"sequential": "always_valid"})
    rows = simulate_days(np.random.default_rng(3), {"control": 0.05, "treatment": 0.052})
    previous = 1.0
    for k in range(DAYS):
        row = overall(analyse(resolved, rows, START + dt.timedelta(days=k)))
        assert row["sequential_p_value"] <= previous + 1e-15
        assert row["sequential_p_value"] >= row["p_value"]
        assert row["sequential_ci_low"] <= row["abs_ci_low"]
        previous = row["sequential_p_value"]
        # A single primary hypothesis: Holm leaves the always-valid p-value as it is.
        assert row["p_value_adjusted"] == pytest.approx(row["sequential_p_value"])


def test_primary_family_is_holm_adjusted_across_treatments(catalog: MetricCatalog) -> None:
    resolved = experiment(
        catalog,
        variants=[
            {"name": "control", "weight": 1 / 3, "control": True},
            {"name": "ranker_b", "weight": 1 / 3},
            {"name": "ranker_c", "weight": 1 / 3},
        ],
        analysis={"sequential": "fixed_horizon"},
    )
    rows = simulate_days(
        np.random.default_rng(4), {"control": 0.05, "ranker_b": 0.052, "ranker_c": 0.0505}
    )
    results = analyse(resolved, rows, START + dt.timedelta(days=DAYS - 1))
    primary = [overall(results, v) for v in ("ranker_b", "ranker_c")]
    _, expected, _, _ = multipletests([r["p_value"] for r in primary], method="holm")
    assert [r["p_value_adjusted"] for r in primary] == pytest.approx(list(expected), rel=1e-12)
    assert {r["multiplicity_family"] for r in primary} == {"primary"}
    # Power for two comparisons uses alpha / 2, so it is lower than for one at the same numbers.
    single = experiment(
        catalog,
        variants=[
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "ranker_b", "weight": 0.5},
        ],
        analysis={"sequential": "fixed_horizon"},
    )
    one_arm = analyse(
        single,
        {d: [r for r in day_rows if r["variant"] != "ranker_c"] for d, day_rows in rows.items()},
        START + dt.timedelta(days=DAYS - 1),
    )
    assert primary[0]["power"] < overall(one_arm, "ranker_b")["power"]


def test_power_and_days_needed_follow_the_normal_approximation(catalog: MetricCatalog) -> None:
    resolved = experiment(catalog, mde=0.02, power=0.8)
    rows = simulate_days(np.random.default_rng(5), {"control": 0.05, "treatment": 0.05})
    day = START + dt.timedelta(days=2)
    row = overall(analyse(resolved, rows, day))
    # Closed form at the test's own standard error: power of a z-test for a 2% lift.
    delta = 0.02 * row["mean_control"]
    z = scipy_stats.norm.ppf(0.975)
    expected = scipy_stats.norm.sf(z - delta / row["std_error"]) + scipy_stats.norm.cdf(
        -z - delta / row["std_error"]
    )
    assert row["power"] == pytest.approx(expected, rel=1e-6)
    assert row["power"] < 0.8 and row["days_needed"] > 0
    verdict = decide(resolved, day, [row], DayStatistics(rows[day]).units(resolved))
    assert any("more day(s) at the current traffic" in reason for reason in verdict.reasons)


def test_power_scale_relative_is_growthbooks_power_of_the_lift(catalog: MetricCatalog) -> None:
    rows = simulate_days(np.random.default_rng(5), {"control": 0.05, "treatment": 0.05})
    day = START + dt.timedelta(days=2)
    absolute = overall(analyse(experiment(catalog, mde=0.1), rows, day))
    resolved = experiment(catalog, mde=0.1, analysis={"power_scale": "relative"})
    row = overall(analyse(resolved, rows, day))
    # GrowthBook: the lift over sqrt(s2 / n_t / mu_c**2 + mu_t**2 s2 / n_c / mu_c**4) at the
    # target mu_t = 1.1 mu_c, with the per-unit variance s2 the test's standard error implies.
    n_c, n_t, mean_c = row["n_control"], row["n_treatment"], row["mean_control"]
    variance = row["std_error"] ** 2 / (1 / n_c + 1 / n_t)
    se = math.sqrt(
        variance / (n_t * mean_c**2) + (1.1 * mean_c) ** 2 * variance / (n_c * mean_c**4)
    )
    z = scipy_stats.norm.ppf(0.975)
    expected = scipy_stats.norm.sf(z - 0.1 / se) + scipy_stats.norm.cdf(-z - 0.1 / se)
    assert row["power"] == pytest.approx(expected, rel=1e-9)
    assert row["power"] < absolute["power"]
    assert row["mde_rel"] > absolute["mde_rel"]
    assert row["required_units"] > absolute["required_units"]
    assert row["p_value"] == absolute["p_value"]  # only the power columns change


def test_a_segment_reversal_is_found_and_named(catalog: MetricCatalog) -> None:
    resolved = experiment(catalog, segments=["platform"], analysis={"sequential": "fixed_horizon"})
    segments = {
        "ios": {"control": 0.05, "treatment": 0.058},
        "android": {"control": 0.05, "treatment": 0.058},
        "web": {"control": 0.05, "treatment": 0.040},
    }
    rows = simulate_days(
        np.random.default_rng(6), {"control": 0.0, "treatment": 0.0}, segments=segments
    )
    end = START + dt.timedelta(days=DAYS - 1)
    results = analyse(resolved, rows, end)
    by_value = {r["segment_value"]: r for r in results if r["segment"] == "platform"}
    assert by_value["web"]["segment_reversal"] is True
    assert not by_value["ios"]["segment_reversal"]
    assert by_value["web"]["heterogeneity_p_value"] < 1e-6
    assert {r["multiplicity_family"] for r in by_value.values()} == {"segment:ctr:treatment"}
    verdict = decide(resolved, end, results, DayStatistics(rows[end]).units(resolved))
    assert any(r.startswith("Segment reversal: platform = web") for r in verdict.reasons)


def mean_rows_by_platform(
    rng: np.random.Generator, day: dt.date, sizes: dict[str, tuple[int, int]]
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray]:
    """watch_time statistics rows of small, unequal platform cells, and the unit data (values,
    platform index, treated flag) they came from."""
    rows, ys, platforms, treated = [], [], [], []
    for variant, flag in (("control", 0.0), ("treatment", 1.0)):
        by_value = {
            p: rng.gamma(2.0, 30.0 + 20.0 * i + 15.0 * flag, size=sizes[p][int(flag)])
            for i, p in enumerate(sizes)
        }
        everything = np.concatenate(list(by_value.values()))
        for segment, value, y in [("all", "all", everything)] + [
            ("platform", p, y) for p, y in by_value.items()
        ]:
            rows.append(
                {
                    "as_of_date": day,
                    "metric": "watch_time",
                    "variant": variant,
                    "segment": segment,
                    "segment_value": value,
                    "n": int(y.size),
                    "sum_y": float(y.sum()),
                    "sum_y2": float(y @ y),
                    "sum_c": None,
                }
            )
        for i, y in enumerate(by_value.values()):
            ys.append(y)
            platforms.append(np.full(y.size, i))
            treated.append(np.full(y.size, flag))
    return rows, np.concatenate(ys), np.concatenate(platforms), np.concatenate(treated)


@pytest.mark.parametrize("covariance", ["HC1", "HC2", "HC0"])
def test_heterogeneity_covariance_is_the_robust_wald_test_of_the_interaction(
    catalog: MetricCatalog, covariance: str
) -> None:
    import statsmodels.api as sm

    day = START + dt.timedelta(days=DAYS - 1)
    sizes = {"android": (30, 22), "ios": (14, 25), "web": (40, 37)}
    rows, y, platform, treated = mean_rows_by_platform(np.random.default_rng(3), day, sizes)
    options = {"metrics": {"primary": "watch_time"}, "segments": ["platform"]}
    chosen = experiment(catalog, **options, analysis={"heterogeneity_covariance": covariance})
    default = experiment(catalog, **options)
    assert chosen.version != default.version  # a chosen option is part of the spec's version
    segment_rows = [r for r in compute_results(chosen, day, rows) if r["segment"] == "platform"]
    in_ios, in_web = platform == 1, platform == 2
    design = np.column_stack(
        [np.ones_like(y), treated, in_ios, in_web, treated * in_ios, treated * in_web]
    ).astype(float)
    wald = (
        sm.OLS(y, design)
        .fit(cov_type=covariance)
        .wald_test(np.eye(6)[4:], use_f=False, scalar=True)
    )
    assert len(segment_rows) == 3
    for row in segment_rows:
        assert row["heterogeneity_p_value"] == pytest.approx(float(wald.pvalue), rel=1e-9)
    today = [r for r in compute_results(default, day, rows) if r["segment"] == "platform"]
    hc2 = covariance == "HC2"
    # Welch's standard errors are HC2's, so the default equals HC2 and differs from the others.
    assert (today[0]["heterogeneity_p_value"] == pytest.approx(float(wald.pvalue), rel=1e-9)) is hc2


def test_heterogeneity_covariance_leaves_ratio_metrics_to_their_tests(
    catalog: MetricCatalog,
) -> None:
    segments = {
        "ios": {"control": 0.05, "treatment": 0.058},
        "web": {"control": 0.05, "treatment": 0.045},
    }
    rows = simulate_days(
        np.random.default_rng(6), {"control": 0.0, "treatment": 0.0}, segments=segments
    )
    end = START + dt.timedelta(days=DAYS - 1)
    spec = {"segments": ["platform"], "analysis": {"sequential": "fixed_horizon"}}
    default = analyse(experiment(catalog, **spec), rows, end)
    spec["analysis"]["heterogeneity_covariance"] = "HC1"  # type: ignore[index]
    hc1 = analyse(experiment(catalog, **spec), rows, end)
    p_values = {r["heterogeneity_p_value"] for r in default if r["segment"] == "platform"}
    assert p_values == {r["heterogeneity_p_value"] for r in hc1 if r["segment"] == "platform"}
    assert None not in p_values


def test_fieller_policy_changes_only_the_relative_interval(catalog: MetricCatalog) -> None:
    """Fieller is the default; ``relative_ci: delta`` changes only the relative interval."""
    rows = simulate_days(np.random.default_rng(7), {"control": 0.05, "treatment": 0.051})
    day = START + dt.timedelta(days=3)
    delta = overall(analyse(experiment(catalog, analysis={"relative_ci": "delta"}), rows, day))
    fieller = overall(analyse(experiment(catalog), rows, day))
    assert fieller["abs_ci_low"] == delta["abs_ci_low"] and fieller["p_value"] == delta["p_value"]
    assert fieller["rel_ci_low"] != pytest.approx(delta["rel_ci_low"], rel=1e-9)
    assert "Fieller" in fieller["method"]
    # The Bayesian summary keeps the delta-method standard error under either policy.
    assert fieller["prob_better"] == pytest.approx(delta["prob_better"])


def test_a_guardrail_read_daily_needs_its_own_sequential_test(catalog: MetricCatalog) -> None:
    """Early on, the fixed-horizon non-inferiority bound can clear the margin while the
    sequential one cannot yet; the decision waits for the sequential test."""
    ctr = catalog.get("ctr").model_dump()
    with_guardrail = MetricCatalog.model_validate(
        {"metrics": {"ctr": ctr, "ctr_guardrail": {**ctr, "name": "ctr_guardrail"}}}
    )
    resolved = experiment(
        with_guardrail,
        metrics={
            "primary": "ctr",
            "guardrails": [{"metric": "ctr_guardrail", "margin": 0.10}],
        },
    )
    rows = simulate_days(np.random.default_rng(8), {"control": 0.05, "treatment": 0.058})
    for day_rows in rows.values():
        day_rows.extend([{**r, "metric": "ctr_guardrail"} for r in day_rows])
    verdicts = {}
    for k in range(DAYS):
        day = START + dt.timedelta(days=k)
        results = analyse(resolved, rows, day)
        guardrail = next(r for r in results if r["metric"] == "ctr_guardrail")
        verdict = decide(resolved, day, results, DayStatistics(rows[day]).units(resolved))
        verdicts[k] = (guardrail["ni_passed"], guardrail["ni_sequential_passed"], verdict)
    peeks = [k for k, (fixed, sequential, _) in verdicts.items() if fixed and not sequential]
    assert peeks, "some early day clears the margin only at a fixed-horizon reading"
    for k in peeks:
        assert verdicts[k][2].decision != Verdict.SHIP
        assert any("by the sequential test" in r for r in verdicts[k][2].reasons)
    fixed, sequential, final = verdicts[DAYS - 1]
    assert fixed and sequential and final.decision == Verdict.SHIP


def test_post_stratification_on_a_segment_when_the_spec_asks(catalog: MetricCatalog) -> None:
    from exp_dagster.stats import Moments, post_stratified_test

    rng = np.random.default_rng(9)
    baselines = {"ios": 300.0, "android": 150.0, "web": 60.0}
    day = START + dt.timedelta(days=DAYS - 1)
    rows, strata = [], {"control": [], "treatment": []}
    for variant, lift in (("control", 0.0), ("treatment", 0.03)):
        values = {
            p: rng.normal(b * (1 + lift), 40.0, size=rng.integers(900, 1100))
            for p, b in baselines.items()
        }
        for _, y in sorted(values.items()):
            strata[variant].append(Moments.from_values(y))
        everything = np.concatenate(list(values.values()))
        for segment, value, y in [("all", "all", everything)] + [
            ("platform", p, y) for p, y in values.items()
        ]:
            rows.append(
                {
                    "as_of_date": day,
                    "metric": "watch_time",
                    "variant": variant,
                    "segment": segment,
                    "segment_value": value,
                    "n": int(y.size),
                    "sum_y": float(y.sum()),
                    "sum_y2": float(y @ y),
                    "sum_c": None,
                }
            )
    plain = experiment(catalog, metrics={"primary": "watch_time"}, segments=["platform"])
    stratified = experiment(
        catalog,
        metrics={"primary": "watch_time"},
        segments=["platform"],
        analysis={"stratify_by": "platform"},
    )
    unstratified_row = overall(compute_results(plain, day, rows))
    row = overall(compute_results(stratified, day, rows))
    expected = post_stratified_test(strata["control"], strata["treatment"])
    assert row["abs_effect"] == pytest.approx(expected.abs_effect, rel=1e-12)
    assert row["std_error"] == pytest.approx(expected.std_error, rel=1e-12)
    assert row["std_error"] < 0.5 * unstratified_row["std_error"]
    assert row["variance_reduction"] > 0.7
    # Satterthwaite's df of the stratified test; sd of the arm's values over every stratum.
    assert (
        row["df"] == pytest.approx(expected.df, rel=1e-12) and row["df"] != unstratified_row["df"]
    )
    assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    control_values = Moments(
        sum(m.n for m in strata["control"]),
        sum(m.sum_y for m in strata["control"]),
        sum(m.sum_y2 for m in strata["control"]),
    )
    assert row["sd_control"] == pytest.approx(control_values.var**0.5, rel=1e-9)
    assert row["sd_control"] == unstratified_row["sd_control"]
    assert json.loads(row["test_options"])["stratify_by"] == "platform"
    # variance reduced by post-stratification, not by CUPED
    assert row["cuped_theta"] is None and row["cuped"] is False
    with pytest.raises(ValueError, match="stratify_by"):
        experiment(catalog, analysis={"stratify_by": "platform"})


def test_required_units_from_the_pre_period_and_with_cuped(catalog: MetricCatalog) -> None:
    rng = np.random.default_rng(10)
    day = START + dt.timedelta(days=DAYS - 1)
    rows = []
    pre_values = []
    for variant in ("control", "treatment"):
        pre = rng.gamma(4.0, 50.0, size=3000)
        post = 0.9 * pre + rng.normal(0.0, 40.0, size=pre.size)
        pre_values.append(pre)
        rows.append(
            {
                "as_of_date": day,
                "metric": "watch_time",
                "variant": variant,
                "segment": "all",
                "segment_value": "all",
                "n": int(post.size),
                "sum_y": float(post.sum()),
                "sum_y2": float(post @ post),
                "sum_c": float(pre.sum()),
                "sum_c2": float(pre @ pre),
                "sum_yc": float(post @ pre),
            }
        )
    resolved = experiment(catalog, metrics={"primary": "watch_time"}, mde=0.02, power=0.8)
    row = overall(compute_results(resolved, day, rows))
    assert row["cuped"] is True
    # Independent plan from the pooled pre-period variance: 2 (z_.975 + z_.8)² σ² / δ² per arm.
    pooled = np.concatenate(pre_values)
    variance = sum(np.var(v, ddof=1) * (v.size - 1) for v in pre_values) / (pooled.size - 2)
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    expected = int(np.ceil(2 * z**2 * variance / (0.02 * pooled.mean()) ** 2))
    assert row["required_units_pre_period"] == expected
    # CUPED removes most of the variance, so the same MDE needs far fewer units.
    assert row["required_units"] < 0.5 * row["required_units_pre_period"]


def test_earlier_days_of_another_spec_version_are_not_looks(catalog: MetricCatalog) -> None:
    resolved = experiment(catalog)
    rows = simulate_days(np.random.default_rng(11), {"control": 0.05, "treatment": 0.05})
    day = START + dt.timedelta(days=3)
    earlier = [
        {**r, "spec_version": resolved.version if d >= START + dt.timedelta(days=2) else "old"}
        for d, day_rows in rows.items()
        if d < day
        for r in day_rows
    ]
    history = history_by_day(earlier, spec_version=resolved.version)
    assert sorted(history) == [START + dt.timedelta(days=2)]
    row = overall(compute_results(resolved, day, rows[day], history=history))
    assert row["sequential_look"] == 2


def novelty_rows(
    rng: np.random.Generator, lift_by_day_index: np.ndarray, *, units: int = 6000
) -> list[dict[str, Any]]:
    """novelty_statistics rows as of the last day, for CTR whose treatment lift on a unit's k-th
    day since first exposure is ``lift_by_day_index[k]`` (relative to a 5 % control CTR)."""
    rows = []
    for variant in ("control", "treatment"):
        first_day = rng.integers(0, DAYS, size=units)
        for k in range(DAYS):
            seen = first_day + k <= DAYS - 1  # the unit's k-th day is on or before the last
            impressions = rng.poisson(5.0, size=int(seen.sum())).astype(float)
            rate = 0.05 * (1 + (lift_by_day_index[k] if variant == "treatment" else 0.0))
            clicks = rng.binomial(impressions.astype(int), rate).astype(float)
            row = ratio_row(START + dt.timedelta(days=DAYS - 1), variant, clicks, impressions)
            rows.append({**row, "day_index": k})
    return rows


def test_a_planted_novelty_decay_is_found_and_a_steady_lift_is_not(
    catalog: MetricCatalog,
) -> None:
    """compute_results' novelty trend, end to end from novelty_statistics rows: a lift that
    falls from +30 % by 2 points a day has a slope near -0.02 and a tiny p-value; a steady +10 %
    lift has no significant trend."""
    resolved = experiment(catalog)
    rows = simulate_days(np.random.default_rng(11), {"control": 0.05, "treatment": 0.055})
    last = START + dt.timedelta(days=DAYS - 1)
    history = history_by_day([r for d, rs in rows.items() if d < last for r in rs])
    k = np.arange(DAYS)
    fading = novelty_rows(np.random.default_rng(12), 0.30 - 0.02 * k)
    steady = novelty_rows(np.random.default_rng(15), np.full(DAYS, 0.10))  # level: next test
    found = overall(compute_results(resolved, last, rows[last], history=history, novelty=fading))
    assert found["novelty_slope"] == pytest.approx(-0.02, abs=0.006)
    assert found["novelty_p_value"] < 1e-4
    flat = overall(compute_results(resolved, last, rows[last], history=history, novelty=steady))
    assert flat["novelty_p_value"] > 0.05
    # without novelty rows there is no trend to report
    none = overall(compute_results(resolved, last, rows[last], history=history))
    assert none["novelty_slope"] is None and none["novelty_p_value"] is None


def test_the_novelty_trend_test_holds_its_level_under_a_steady_lift(
    catalog: MetricCatalog,
) -> None:
    """Under a steady lift (independent daily cohorts, as simulated here) the trend test rejects
    at about its nominal 5 %: 400 simulated experiments, binomial 99.9 % band [0.022, 0.086]."""
    resolved = experiment(catalog)
    metric = resolved.metrics["ctr"]
    rng = np.random.default_rng(14)
    p_values = [
        novelty_fields(
            resolved, metric, "treatment", novelty_rows(rng, np.full(DAYS, 0.10), units=2000)
        )["novelty_p_value"]
        for _ in range(400)
    ]
    rate = float(np.mean(np.array(p_values) < 0.05))
    assert 0.022 <= rate <= 0.086, rate


def test_by_default_the_relative_interval_agrees_with_the_p_value(catalog: MetricCatalog) -> None:
    """Fieller by default: on every day of several small CTR tests (effects near the
    boundary), the relative CI excludes 0 exactly when the p-value is below alpha; the delta
    method disagrees on some of the same rows."""
    agreed = disagreed_by_delta = 0
    for seed in range(8):
        rows = simulate_days(
            np.random.default_rng(100 + seed),
            {"control": 0.05, "treatment": 0.05 * (1.0 + 0.04 * seed)},
            units_per_day=150,
        )
        for day in rows:
            for policy, resolved in (
                ("fieller", experiment(catalog)),
                ("delta", experiment(catalog, analysis={"relative_ci": "delta"})),
            ):
                row = overall(analyse(resolved, rows, day))
                excludes = row["rel_ci_low"] > 0 or row["rel_ci_high"] < 0
                if policy == "fieller":
                    assert excludes == (row["p_value"] < row["alpha"]), row
                    assert "Fieller" in row["method"]
                    agreed += 1
                else:
                    disagreed_by_delta += excludes != (row["p_value"] < row["alpha"])
    assert agreed == 8 * DAYS and disagreed_by_delta > 0


def test_every_result_row_has_exactly_the_columns_of_results(catalog: MetricCatalog) -> None:
    """Overall, segment and not-estimable rows alike carry every column of ``results`` (NULL
    as None) and nothing else: the warehouse write refuses any other row."""
    resolved = experiment(
        catalog,
        segments=["platform"],
        metrics={
            "primary": "ctr",
            "secondary": ["watch_time"],  # no statistics rows: not estimable
            "guardrails": [{"metric": "impressions", "margin": 0.05}],
        },
    )
    segments = {
        "ios": {"control": 0.05, "treatment": 0.055},
        "web": {"control": 0.05, "treatment": 0.05},
    }
    rows = simulate_days(
        np.random.default_rng(8), {"control": 0.0, "treatment": 0.0}, segments=segments
    )
    results = analyse(resolved, rows, START + dt.timedelta(days=3))
    kinds = {(r["segment"] == "all", r["not_estimable"] is None) for r in results}
    assert kinds == {(True, True), (False, True), (True, False)}
    assert all(r.keys() == set(RESULT_COLUMNS) for r in results)


def test_an_always_valid_guardrail_uses_the_one_sided_confidence_sequence(
    catalog: MetricCatalog,
) -> None:
    """Under ``always_valid`` the guardrail is non-inferior when the one-sided (half-normal
    mixture) sequence of its looks clears the margin, at level alpha, not one side of the
    two-sided sequence at level 1 - 2 alpha."""
    from exp_dagster.stats import always_valid_test

    ctr = catalog.get("ctr").model_dump()
    with_guardrail = MetricCatalog.model_validate(
        {"metrics": {"ctr": ctr, "ctr_guardrail": {**ctr, "name": "ctr_guardrail"}}}
    )
    margin = 0.004
    resolved = experiment(
        with_guardrail,
        metrics={
            "primary": "ctr",
            "guardrails": [
                {"metric": "ctr_guardrail", "margin": margin, "margin_type": "absolute"}
            ],
        },
        analysis={"sequential": "always_valid"},
    )
    rows = simulate_days(np.random.default_rng(8), {"control": 0.05, "treatment": 0.05})
    for day_rows in rows.values():
        day_rows.extend([{**r, "metric": "ctr_guardrail"} for r in day_rows])
    looks, verdicts = [], []
    for k in range(DAYS):
        day = START + dt.timedelta(days=k)
        guardrail = overall([r for r in analyse(resolved, rows, day) if r["metric"] != "ctr"])
        looks.append((guardrail["abs_effect"], guardrail["std_error"], guardrail["mean_control"]))
        tau = resolved.spec.mde * abs(looks[0][2])
        estimates, std_errors = [e for e, _, _ in looks], [s for _, s, _ in looks]
        sequence = always_valid_test(
            estimates, std_errors, alpha=0.05, tau=tau, alternative="greater", null_value=-margin
        )
        assert guardrail["ni_sequential_passed"] is (sequence.ci_low > -margin)
        # The one-sided bound is a hair below one side of the level 1 - 2 alpha sequence.
        two_sided = always_valid_test(estimates, std_errors, alpha=0.10, tau=tau)
        assert sequence.ci_low < two_sided.ci_low
        verdicts.append(guardrail["ni_sequential_passed"])
    assert not verdicts[0] and verdicts[-1], "an A/A guardrail is shown non-inferior in time"


def test_a_ramp_stratifies_the_overall_row_by_phase(catalog: MetricCatalog) -> None:
    """The overall CTR row is the ratio test within each ramp phase of first exposure, combined
    by the phases' shares of units; a phase with one treated unit is left out. A platform's row is
    stratified the same way from its per-phase cells, and says it is pooled without them."""
    from exp_dagster.stats import ratio_test, stratified_effect
    from exp_dagster.stats.moments import RatioMoments

    ramp = [
        {"start": "2026-10-01", "weights": {"control": 0.99, "treatment": 0.01}},
        {"start": "2026-10-03", "weights": {"control": 0.9, "treatment": 0.1}},
        {"start": "2026-10-06", "weights": {"control": 0.5, "treatment": 0.5}},
    ]
    spec = experiment(catalog, ramp=ramp, segments=["platform"])
    rng = np.random.default_rng(5)
    day = START + dt.timedelta(days=DAYS - 1)
    arms: dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    sizes = {"2026-10-01": (300, 1), "2026-10-03": (900, 100), "2026-10-06": (1500, 1500)}
    for phase, (n_control, n_treatment) in sizes.items():
        for variant, n, ctr in (("control", n_control, 0.1), ("treatment", n_treatment, 0.11)):
            impressions = rng.poisson(20, size=n).astype(float) + 1.0
            clicks = rng.binomial(impressions.astype(int), ctr).astype(float)
            arms.setdefault(("ramp_phase", phase), {})[variant] = (clicks, impressions)
    rows = [
        ratio_row(day, v, c, i, segment=s, segment_value=p)
        for (s, p), by in arms.items()
        for v, (c, i) in by.items()
    ]
    # ios: the first half of each phase's units, web: the rest; with their per-phase cells
    # (segment "platform|ramp_phase", values "ios|<phase>") that metric_statistics writes.
    halves = {"ios": lambda a: a[: a.size // 2], "web": lambda a: a[a.size // 2 :]}
    crossed = [
        ratio_row(
            day,
            v,
            halves[platform](c),
            halves[platform](i),
            segment="platform|ramp_phase",
            segment_value=f"{platform}|{p}",
        )
        for platform in halves
        for (_, p), by in arms.items()
        for v, (c, i) in by.items()
        if halves[platform](c).size
    ]
    rows.extend(crossed)
    for variant in ("control", "treatment"):
        clicks = np.concatenate([by[variant][0] for by in arms.values()])
        impressions = np.concatenate([by[variant][1] for by in arms.values()])
        rows.append(ratio_row(day, variant, clicks, impressions))
        for platform, half in halves.items():
            rows.append(
                ratio_row(
                    day,
                    variant,
                    np.concatenate([half(by[variant][0]) for by in arms.values()]),
                    np.concatenate([half(by[variant][1]) for by in arms.values()]),
                    segment="platform",
                    segment_value=platform,
                )
            )
    results = compute_results(spec, day, rows)
    pooled = compute_results(spec, day, [r for r in rows if r["segment"] != "platform|ramp_phase"])
    (overall,) = [r for r in results if r.segment == "all"]
    used = [
        ratio_test(
            RatioMoments.from_values(*arms[("ramp_phase", phase)]["control"]),
            RatioMoments.from_values(*arms[("ramp_phase", phase)]["treatment"]),
        )
        for phase in ("2026-10-03", "2026-10-06")
    ]
    expected = stratified_effect(used, relative_ci="fieller")
    assert overall.abs_effect == pytest.approx(expected.abs_effect, rel=1e-9)
    assert overall.std_error == pytest.approx(expected.std_error, rel=1e-9)
    assert (overall.n_control, overall.n_treatment) == (2400, 1600)  # the phases combined
    assert "strata: the ramp phases of first exposure (from 2026-10-03, 2026-10-06)" in (
        overall.method
    )
    assert "phases left out, not estimable yet: 2026-10-01 (1 unit in treatment" in (overall.method)
    # Each platform's row is stratified by phase like the overall one (the phase with one
    # treated unit has none in ios, 0 in web: left out of both).
    for platform, half in halves.items():
        (row,) = [r for r in results if (r.segment, r.segment_value) == ("platform", platform)]
        strata = [
            ratio_test(
                RatioMoments.from_values(*(half(a) for a in arms[("ramp_phase", p)]["control"])),
                RatioMoments.from_values(*(half(a) for a in arms[("ramp_phase", p)]["treatment"])),
            )
            for p in ("2026-10-03", "2026-10-06")
        ]
        expected = stratified_effect(strata, relative_ci="fieller")
        assert row.abs_effect == pytest.approx(expected.abs_effect, rel=1e-9)
        assert row.std_error == pytest.approx(expected.std_error, rel=1e-9)
        assert "strata: the ramp phases of first exposure (from 2026-10-03, 2026-10-06)" in (
            row.method
        )
    assert not any(r.segment == "platform|ramp_phase" for r in results)  # cells, not rows
    # Statistics without the per-phase cells (written before they existed): pooled, and said.
    platform = [r for r in pooled if r.segment == "platform"]
    assert platform and all("pooled over the ramp phases" in r.method for r in platform)
    phases = [r for r in results if r.segment == "ramp_phase"]
    assert {r.segment_value for r in phases} == {"2026-10-03", "2026-10-06"}
    assert not any("pooled over the ramp phases" in r.method for r in phases)
    today = DayStatistics(rows)
    assert today.phase_units(spec)["2026-10-01"] == {"control": 300, "treatment": 1}
    assert "ramp_phase=2026-10-01" not in today.segment_units(spec)
    assert set(today.segment_units(spec)) == {"platform=ios", "platform=web"}


def test_units_leaving_the_overall_cell_mean_no_new_units(catalog: MetricCatalog) -> None:
    """Fewer units today than yesterday (units seen in two variants are crossovers and leave
    the overall cell: a rollout's treated units on its first day) is no traffic, not a
    negative rate: the power columns are computed, and the days needed are infinite."""
    resolved = experiment(catalog, mde=0.02)
    rows = simulate_days(np.random.default_rng(5), {"control": 0.05, "treatment": 0.05})
    day = START + dt.timedelta(days=2)
    shrunk = {d: r for d, r in rows.items() if d < day}
    shrunk[day] = [dict(r, as_of_date=day) for r in rows[START]]  # 400 a variant, not 1,200
    assert sum(DayStatistics(shrunk[day]).units(resolved).values()) < sum(
        DayStatistics(rows[day - dt.timedelta(days=1)]).units(resolved).values()
    )
    row = overall(analyse(resolved, shrunk, day))
    assert 0 < row["power"] < 0.8
    assert math.isinf(row["days_needed"])  # never, at no new units a day
