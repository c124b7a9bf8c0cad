"""``exp-dagster analyze`` on hand-made logs the simulator did not write, checked against scipy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest

from exp_dagster.cli import main
from exp_dagster.home import PROJECT_ROOT

START = dt.date(2026, 3, 2)
DAYS = 4


def hand_made_logs(
    root: Path,
    units: int = 600,
    *,
    arms: tuple[str, ...] = ("old_model", "new_model"),
    lose_share: float = 0.0,
    impression_value: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures as CSV and events as JSON Lines, in single files, with a few rough edges.

    ``lose_share`` drops that share of the last arm's exposure rows, as a logging bug would;
    ``impression_value`` is what each impression row carries (1.0 in the contract).
    """
    rng = np.random.default_rng(2024)
    unit_ids = [f"user-{i:04d}" for i in range(units)]
    variants = np.asarray(arms)[rng.integers(0, len(arms), units)]
    first_day = rng.integers(0, DAYS, units)
    exposed_at = [
        pd.Timestamp(START + dt.timedelta(days=int(d)), tz="UTC") + pd.Timedelta(hours=int(h))
        for d, h in zip(first_day, rng.integers(1, 12, units), strict=True)
    ]
    exposures = pd.DataFrame(
        {
            "experiment_id": "rerank_test",
            "unit_id": unit_ids,
            "variant": variants,
            "exposed_at": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in exposed_at],
            "platform": rng.choice(["ios", "web"], units),
        }
    )
    lost = (exposures["variant"] == arms[-1]) & (rng.random(units) < lose_share)
    exposures = exposures[~lost]
    # A repeat exposure and a row for another experiment, which this analysis must ignore.
    exposures = pd.concat(
        [exposures, exposures.iloc[[0]], exposures.iloc[[1]].assign(experiment_id="other")]
    )
    events = []
    for unit, variant, t0 in zip(unit_ids, variants, exposed_at, strict=True):
        lift = 1.3 if variant != arms[0] else 1.0
        for _ in range(rng.poisson(3 * lift)):
            when = t0 + pd.Timedelta(minutes=int(rng.integers(1, 600)))
            if when.date() > START + dt.timedelta(days=DAYS - 1):
                continue
            events.append((unit, when, "watch_seconds", float(rng.exponential(60))))
            if rng.random() < 0.3:
                events.append((unit, when, "click", 1.0))
            events.append((unit, when, "impression", impression_value))
        if rng.random() < 0.1 * lift:
            events.append((unit, t0 + pd.Timedelta(minutes=5), "purchase", 9.99))
    frame = pd.DataFrame(events, columns=["unit_id", "event_time", "event", "value"])
    exposures.to_csv(root / "exposures.csv", index=False)
    frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat())).to_json(
        root / "events.jsonl", orient="records", lines=True
    )
    return exposures, frame


def write_spec(root: Path, arms: tuple[str, ...] = ("old_model", "new_model")) -> Path:
    spec = {
        "id": "rerank_test",
        "description": "hand-made",
        "variants": [
            {"name": name, "weight": 1 / len(arms), "control": name == arms[0]} for name in arms
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {"primary": "watch_time", "secondary": ["conversion", "ctr"]},
        "segments": ["platform"],
    }
    (root / "experiments").mkdir(exist_ok=True)
    path = root / "experiments" / "rerank_test.yaml"
    path.write_text(yaml.safe_dump(spec))
    (root / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    return path


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    root = tmp_path_factory.mktemp("analyze")
    exposures, events = hand_made_logs(root)
    spec = write_spec(root)
    code = main(
        [
            "analyze",
            "--experiment",
            str(spec),
            "--exposures",
            str(root / "exposures.csv"),
            "--events",
            str(root / "events.jsonl"),
            "--json",
            str(root / "out.json"),
        ]
    )
    assert code == 0
    return json.loads((root / "out.json").read_text()), exposures, events


def analyze(root: Path, *extra: str) -> int:
    return main(
        [
            "analyze",
            "--experiment",
            str(root / "experiments" / "rerank_test.yaml"),
            "--exposures",
            str(root / "exposures.csv"),
            "--events",
            str(root / "events.jsonl"),
            "--json",
            str(root / "out.json"),
            *extra,
        ]
    )


def per_unit(exposures: pd.DataFrame, events: pd.DataFrame, event: str, how: str) -> pd.DataFrame:
    mine = exposures[exposures["experiment_id"] == "rerank_test"].drop_duplicates("unit_id")
    chosen = events[events["event"] == event]
    values = chosen.groupby("unit_id")["value"].agg(how)
    return mine.assign(y=mine["unit_id"].map(values).fillna(0.0))


def test_json_document_has_the_documented_fields(
    analysed: tuple[dict, pd.DataFrame, pd.DataFrame],
) -> None:
    document, _, _ = analysed
    assert document["experiment"] == "rerank_test"
    assert document["as_of"] == (START + dt.timedelta(days=DAYS - 1)).isoformat()
    assert document["decision"] in {"SHIP", "INCONCLUSIVE", "ROLLBACK", "INVALID"}
    assert document["reasons"] and isinstance(document["srm_p_value"], float)
    required = {
        "metric",
        "variant",
        "control",
        "n_control",
        "n_treatment",
        "mean_control",
        "mean_treatment",
        "abs_effect",
        "abs_ci_low",
        "abs_ci_high",
        "rel_effect",
        "rel_ci_low",
        "rel_ci_high",
        "p_value",
        "cuped",
        "variance_reduction",
        "std_error",
        "sequential_method",
        "sequential_look",
        "sequential_boundary",
        "sequential_p_value",
        "sequential_ci_low",
        "sequential_ci_high",
        "sequential_significant",
        "p_value_adjusted",
        "multiplicity_family",
        "multiplicity_method",
        "prob_better",
        "expected_loss",
        "credible_low",
        "credible_high",
        "power",
        "mde_rel",
        "days_needed",
        "novelty_slope",
        "novelty_p_value",
    }
    assert {r["metric"] for r in document["results"]} == {"watch_time", "conversion", "ctr"}
    for row in document["results"]:
        assert required <= set(row)
    primary = next(r for r in document["results"] if r["role"] == "primary")
    assert primary["sequential_method"] == "group_sequential" and primary["sequential_look"] == DAYS
    assert 0.0 <= primary["prob_better"] <= 1.0 and 0.0 <= primary["power"] <= 1.0
    families = {r["metric"]: r["multiplicity_family"] for r in document["results"]}
    assert families == {"watch_time": "primary", "conversion": "secondary", "ctr": "secondary"}
    for row in document["segment_results"]:
        assert {"heterogeneity_p_value", "segment_reversal", "p_value_adjusted"} <= set(row)
    assert {r["segment_value"] for r in document["segment_results"]} == {"ios", "web"}


def test_welch_matches_scipy_on_the_same_logs(
    analysed: tuple[dict, pd.DataFrame, pd.DataFrame],
) -> None:
    document, exposures, events = analysed
    units = per_unit(exposures, events, "watch_seconds", "sum")
    control = units.loc[units["variant"] == "old_model", "y"].to_numpy()
    treatment = units.loc[units["variant"] == "new_model", "y"].to_numpy()
    reference = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    interval = reference.confidence_interval(0.95)
    row = next(r for r in document["results"] if r["metric"] == "watch_time")
    assert row["n_control"] == len(control) and row["n_treatment"] == len(treatment)
    assert row["cuped"] is False
    # The warehouse rounds each value to 1e-6 before its exact sums (schema.sql, exact_sum).
    assert row["mean_control"] == pytest.approx(control.mean(), rel=1e-7)
    assert row["abs_effect"] == pytest.approx(treatment.mean() - control.mean(), rel=1e-7)
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-6)
    assert row["abs_ci_low"] == pytest.approx(interval.low, rel=1e-6)
    assert row["abs_ci_high"] == pytest.approx(interval.high, rel=1e-6)


def test_proportion_matches_statsmodels(analysed: tuple[dict, pd.DataFrame, pd.DataFrame]) -> None:
    document, exposures, events = analysed
    units = per_unit(exposures, events, "purchase", "count")
    converted = (
        units.assign(y=(units["y"] > 0).astype(int)).groupby("variant")["y"].agg(["sum", "count"])
    )
    _, p_value = proportions_ztest(
        [converted.loc["new_model", "sum"], converted.loc["old_model", "sum"]],
        [converted.loc["new_model", "count"], converted.loc["old_model", "count"]],
    )
    row = next(r for r in document["results"] if r["metric"] == "conversion")
    assert row["p_value"] == pytest.approx(p_value, rel=1e-6)


def rel_std_error(control: np.ndarray, treatment: np.ndarray, ddof: int = 1) -> float:
    """The delta-method standard error of mean_t / mean_c - 1, written out, with the variance
    of each mean as the test estimates it (``ddof=0`` for proportions: ``p (1 - p) / n``)."""
    mean_c, mean_t = control.mean(), treatment.mean()
    var_c = control.var(ddof=ddof) / len(control)
    var_t = treatment.var(ddof=ddof) / len(treatment)
    return float(np.sqrt(var_t / mean_c**2 + mean_t**2 * var_c / mean_c**4))


def test_reviewer_columns_of_welch_match_scipy(
    analysed: tuple[dict, pd.DataFrame, pd.DataFrame],
) -> None:
    """Welch's statistic and df as scipy's, each arm's sd (ddof=1) of the per-unit sums, the
    lift's delta-method standard error; no θ without CUPED; the default options in force."""
    document, exposures, events = analysed
    units = per_unit(exposures, events, "watch_seconds", "sum")
    control = units.loc[units["variant"] == "old_model", "y"].to_numpy()
    treatment = units.loc[units["variant"] == "new_model", "y"].to_numpy()
    reference = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    row = next(r for r in document["results"] if r["metric"] == "watch_time")
    assert row["statistic"] == pytest.approx(reference.statistic, rel=1e-6)
    assert row["df"] == pytest.approx(reference.df, rel=1e-6)
    assert row["sd_control"] == pytest.approx(control.std(ddof=1), rel=1e-7)
    assert row["sd_treatment"] == pytest.approx(treatment.std(ddof=1), rel=1e-7)
    assert row["rel_std_error"] == pytest.approx(rel_std_error(control, treatment), rel=1e-6)
    assert row["cuped_theta"] is None
    assert json.loads(row["test_options"]) == {
        "cuped": "auto",
        "cuped_theta": "within",
        "mean_test": "welch",
        "p_value_scale": "absolute",
        "reference_distribution": "default",
        "relative_ci": "fieller",
    }
    for segment_row in document["segment_results"]:
        assert segment_row["statistic"] is not None and segment_row["sd_control"] > 0


def test_reviewer_columns_of_a_proportion_match_statsmodels(
    analysed: tuple[dict, pd.DataFrame, pd.DataFrame],
) -> None:
    document, exposures, events = analysed
    units = per_unit(exposures, events, "purchase", "count")
    converted = units.assign(y=(units["y"] > 0).astype(float))
    control = converted.loc[converted["variant"] == "old_model", "y"].to_numpy()
    treatment = converted.loc[converted["variant"] == "new_model", "y"].to_numpy()
    z, _ = proportions_ztest([treatment.sum(), control.sum()], [len(treatment), len(control)])
    row = next(r for r in document["results"] if r["metric"] == "conversion")
    assert row["statistic"] == pytest.approx(z, rel=1e-9)
    assert row["df"] is None  # a z-test
    assert row["sd_control"] == pytest.approx(control.std(ddof=1), rel=1e-12)
    assert row["sd_treatment"] == pytest.approx(treatment.std(ddof=1), rel=1e-12)
    assert row["rel_std_error"] == pytest.approx(
        rel_std_error(control, treatment, ddof=0), rel=1e-9
    )
    assert json.loads(row["test_options"]) == {
        "continuity": False,
        "cuped": "auto",
        "cuped_theta": "within",
        "cuped_variance": "sample",
        "p_value_scale": "absolute",
        "proportion_ci": "unpooled",
        "proportion_ci_clip": False,
        "proportion_test": "pooled",
        "reference_distribution": "default",
        "relative_ci": "fieller",
    }


def test_reviewer_columns_of_a_ratio_are_on_the_linearised_values(
    analysed: tuple[dict, pd.DataFrame, pd.DataFrame],
) -> None:
    """A ratio's sd is of the linearised values (y - R x) / mean(x); its z statistic is the
    difference of the ratios over the delta-method standard error built from them."""
    document, exposures, events = analysed
    clicks = per_unit(exposures, events, "click", "sum")
    impressions = per_unit(exposures, events, "impression", "sum")
    row = next(r for r in document["results"] if r["metric"] == "ctr")
    ratios, linearised_sd, variances = {}, {}, {}
    for arm in ("old_model", "new_model"):
        y = clicks.loc[clicks["variant"] == arm, "y"].to_numpy()
        x = impressions.loc[impressions["variant"] == arm, "y"].to_numpy()
        ratios[arm] = y.sum() / x.sum()
        linearised = (y - ratios[arm] * x) / x.mean()
        linearised_sd[arm] = linearised.std(ddof=1)
        variances[arm] = linearised.var(ddof=1) / len(y)
    assert row["n_control"] == len(clicks[clicks["variant"] == "old_model"])
    assert row["sd_control"] == pytest.approx(linearised_sd["old_model"], rel=1e-9)
    assert row["sd_treatment"] == pytest.approx(linearised_sd["new_model"], rel=1e-9)
    z = (ratios["new_model"] - ratios["old_model"]) / np.sqrt(sum(variances.values()))
    assert row["statistic"] == pytest.approx(z, rel=1e-9)
    assert row["df"] is None and row["cuped_theta"] is None
    assert json.loads(row["test_options"]) == {
        "cuped": "auto",
        "p_value_scale": "absolute",
        "reference_distribution": "default",
        "relative_ci": "fieller",
    }


def cuped_logs(root: Path, units: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every unit exposed on the first day; watch seconds on the two days before it (the
    pre-period, for some units none) and after it, both driven by the unit's own level."""
    rng = np.random.default_rng(77)
    unit_ids = [f"user-{i:04d}" for i in range(units)]
    variants = np.asarray(("old_model", "new_model"))[rng.integers(0, 2, units)]
    exposed_at = [
        pd.Timestamp(START, tz="UTC") + pd.Timedelta(hours=int(h))
        for h in rng.integers(1, 12, units)
    ]
    exposures = pd.DataFrame(
        {
            "experiment_id": "rerank_test",
            "unit_id": unit_ids,
            "variant": variants,
            "exposed_at": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in exposed_at],
            "platform": rng.choice(["ios", "web"], units),
        }
    )
    events = []
    for unit, variant, t0 in zip(unit_ids, variants, exposed_at, strict=True):
        level = rng.gamma(2.0, 30.0)
        lift = 1.2 if variant == "new_model" else 1.0
        for days_before in (1, 2):
            if rng.random() < 0.8:
                when = pd.Timestamp(START, tz="UTC") - pd.Timedelta(days=days_before, hours=-6)
                events.append(
                    (unit, when, "watch_seconds", round(level * rng.uniform(0.5, 1.5), 2))
                )
        for day in range(DAYS):
            value = round(max(0.0, level * lift * rng.uniform(0.5, 1.5) + rng.normal(0, 20)), 2)
            events.append((unit, t0 + pd.Timedelta(days=day, minutes=30), "watch_seconds", value))
    frame = pd.DataFrame(events, columns=["unit_id", "event_time", "event", "value"])
    exposures.to_csv(root / "exposures.csv", index=False)
    frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat())).to_json(
        root / "events.jsonl", orient="records", lines=True
    )
    return exposures, frame


def test_cuped_theta_is_the_regression_slope_on_the_same_logs(tmp_path: Path) -> None:
    """Through the pipeline with a two-day pre-period: θ is the OLS slope of the covariate in
    ``y ~ arm + c`` (the default), or of ``y ~ c`` over all units for a metric that overrides
    ``cuped_theta: pooled``; the statistic and df are Welch's on the adjusted values (scipy), the
    standard deviations those of the unadjusted values."""
    exposures, events = cuped_logs(tmp_path)
    spec = write_spec(tmp_path)
    text = yaml.safe_load(spec.read_text())
    text.update(pre_period_days=2, metrics={"primary": "watch_time", "secondary": ["watch_pooled"]})
    spec.write_text(yaml.safe_dump(text))
    catalog = yaml.safe_load((tmp_path / "metrics.yaml").read_text())
    catalog["metrics"]["watch_pooled"] = {
        **catalog["metrics"]["watch_time"],
        "description": "watch_time, CUPED's θ over all units",
        "cuped_theta": "pooled",
    }
    (tmp_path / "metrics.yaml").write_text(yaml.safe_dump(catalog))
    assert analyze(tmp_path) == 0
    document = json.loads((tmp_path / "out.json").read_text())
    post = events[events["event_time"] >= pd.Timestamp(START, tz="UTC")]
    pre = events[events["event_time"] < pd.Timestamp(START, tz="UTC")]
    units = per_unit(exposures, post, "watch_seconds", "sum")
    units["c"] = units["unit_id"].map(pre.groupby("unit_id")["value"].sum()).fillna(0.0)
    y, c = units["y"].to_numpy(), units["c"].to_numpy()
    is_treatment = (units["variant"] == "new_model").to_numpy()
    within = np.linalg.lstsq(np.column_stack([np.ones_like(y), is_treatment, c]), y, rcond=None)
    thetas = {"watch_time": within[0][2], "watch_pooled": np.polyfit(c, y, 1)[0]}
    for metric, theta in thetas.items():
        row = next(r for r in document["results"] if r["metric"] == metric)
        assert row["cuped"] is True and row["n_control"] + row["n_treatment"] == len(units)
        assert row["cuped_theta"] == pytest.approx(theta, rel=1e-9)
        adjusted = y - theta * (c - c.mean())
        reference = scipy_stats.ttest_ind(
            adjusted[is_treatment], adjusted[~is_treatment], equal_var=False
        )
        assert row["statistic"] == pytest.approx(reference.statistic, rel=1e-9)
        assert row["df"] == pytest.approx(reference.df, rel=1e-9)
        assert row["sd_control"] == pytest.approx(y[~is_treatment].std(ddof=1), rel=1e-12)
        assert row["sd_treatment"] == pytest.approx(y[is_treatment].std(ddof=1), rel=1e-12)
        assert json.loads(row["test_options"])["cuped_theta"] == metric.replace(
            "watch_time", "within"
        ).replace("watch_pooled", "pooled")
    assert thetas["watch_time"] != pytest.approx(thetas["watch_pooled"], rel=1e-6)


def test_malformed_logs_are_rejected_naming_file_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hand_made_logs(tmp_path, units=50)
    write_spec(tmp_path)
    broken = pd.read_csv(tmp_path / "exposures.csv").rename(columns={"variant": "arm"})
    broken.to_csv(tmp_path / "exposures.csv", index=False)
    code = analyze(tmp_path)
    message = capsys.readouterr().err
    assert code == 2
    assert "exposures.csv" in message and "missing column(s) variant" in message
    assert "Traceback" not in message


def test_invalid_spec_is_rejected_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hand_made_logs(tmp_path, units=50)
    spec = write_spec(tmp_path)
    text = yaml.safe_load(spec.read_text())
    text["variants"][0]["weight"] = 0.7
    spec.write_text(yaml.safe_dump(text))
    code = analyze(tmp_path)
    message = capsys.readouterr().err
    assert code == 2
    assert "rerank_test.yaml" in message and "field 'variants'" in message


def test_simulate_then_analyze_hive_csv_folders(tmp_path: Path) -> None:
    """The CLI's simulate writes CSV in date folders; analyze reads them back end to end."""
    out = tmp_path / "logs"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--units",
                "1500",
                "--days",
                "3",
                "--pre-days",
                "2",
                "--seed",
                "5",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "exposures").iterdir())[0] == "date=2026-10-01"
    catalog = tmp_path / "catalog"
    (catalog / "experiments").mkdir(parents=True)
    (catalog / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    spec = yaml.safe_load((PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml").read_text())
    spec.update(end="2026-10-03", pre_period_days=2)
    (catalog / "experiments" / "ranker_v2.yaml").write_text(yaml.safe_dump(spec))
    code = main(
        [
            "analyze",
            "--experiment",
            str(catalog / "experiments" / "ranker_v2.yaml"),
            "--exposures",
            str(out / "exposures"),
            "--events",
            str(out / "events"),
            "--json",
            str(tmp_path / "out.json"),
        ]
    )
    assert code == 0
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["as_of"] == "2026-10-03"
    watch = next(r for r in document["results"] if r["metric"] == "watch_time")
    assert watch["cuped"] is True and 0 < watch["variance_reduction"] < 1
    assert watch["n_control"] + watch["n_treatment"] > 600  # units active in 3 days


def test_sample_ratio_mismatch_makes_the_decision_invalid(tmp_path: Path) -> None:
    hand_made_logs(tmp_path, units=2000, lose_share=0.25)
    write_spec(tmp_path)
    assert analyze(tmp_path) == 0
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["decision"] == "INVALID"
    assert document["srm_p_value"] < 0.001
    assert document["reasons"][0].startswith("Sample ratio mismatch")


def test_a_failed_gate_makes_the_decision_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Negative impressions make negative CTR denominators: the unit_metrics gate must stop it.
    hand_made_logs(tmp_path, units=300, impression_value=-1.0)
    write_spec(tmp_path)
    assert analyze(tmp_path) == 1
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["decision"] == "INVALID" and document["results"] == []
    assert document["reasons"][0].startswith(
        "Gate check_unit_metrics_schema failed on unit_metrics"
    )
    assert "x: greater_than_or_equal_to(0)" in document["reasons"][0]
    assert "Decision: INVALID" in capsys.readouterr().out


def test_three_arms_compare_each_treatment_with_control(tmp_path: Path) -> None:
    arms = ("old_model", "new_a", "new_b")
    hand_made_logs(tmp_path, units=1800, arms=arms)
    write_spec(tmp_path, arms)
    assert analyze(tmp_path) == 0
    document = json.loads((tmp_path / "out.json").read_text())
    pairs = {(r["metric"], r["variant"], r["control"]) for r in document["results"]}
    for metric in ("watch_time", "conversion", "ctr"):
        assert (metric, "new_a", "old_model") in pairs and (metric, "new_b", "old_model") in pairs
    assert document["srm_p_value"] > 0.001  # chi-square over three arms
    assert document["decision"] in {"SHIP", "INCONCLUSIVE", "ROLLBACK"}


def test_a_running_experiment_is_analysed_as_of_its_last_day(tmp_path: Path) -> None:
    """Single-file logs that stop before the end date: the default as-of is their last day, a
    fixed-horizon decision says KEEP_RUNNING (a group-sequential one may stop early only on a
    crossed boundary), and an --as-of past the logs is capped at their last day."""
    hand_made_logs(tmp_path, units=400)
    spec = write_spec(tmp_path)
    text = yaml.safe_load(spec.read_text())
    text["end"] = (START + dt.timedelta(days=DAYS + 9)).isoformat()
    spec.write_text(yaml.safe_dump(text))
    assert analyze(tmp_path) == 0
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["as_of"] == (START + dt.timedelta(days=DAYS - 1)).isoformat()
    primary = next(r for r in document["results"] if r["role"] == "primary")
    if document["decision"] == "SHIP":
        assert primary["sequential_significant"] is True
    text["analysis"] = {"sequential": "fixed_horizon"}
    spec.write_text(yaml.safe_dump(text))
    assert analyze(tmp_path) == 0
    assert json.loads((tmp_path / "out.json").read_text())["decision"] in {
        "KEEP_RUNNING",
        "ROLLBACK",
    }
    assert analyze(tmp_path, "--as-of", "2027-01-01") == 0
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["as_of"] == (START + dt.timedelta(days=DAYS - 1)).isoformat()
    assert "--as-of 2027-01-01 is after it" in document["as_of_basis"]
    assert document["missing_days"][-1] == text["end"] and len(document["missing_days"]) == 10


def test_a_quarantined_row_dated_2100_does_not_move_the_analysis_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs through day 4 of a 14-day test, plus one exposure dated 2100 (quarantined: outside
    the window): the analysis is as of day 4, says so, and lists days 5-14 as missing instead
    of analysing them as days without traffic."""
    hand_made_logs(tmp_path, units=300)
    spec = write_spec(tmp_path)
    text = yaml.safe_load(spec.read_text())
    end = START + dt.timedelta(days=13)
    text["end"] = end.isoformat()
    spec.write_text(yaml.safe_dump(text))
    with (tmp_path / "exposures.csv").open("a") as file:
        file.write("rerank_test,user-9999,new_model,2100-01-01T00:00:00Z,ios\n")
    assert analyze(tmp_path) == 0
    document = json.loads((tmp_path / "out.json").read_text())
    last = START + dt.timedelta(days=DAYS - 1)
    assert document["as_of"] == last.isoformat()
    assert document["as_of_basis"] == (
        f"As of {last}, the last day with valid exposure or event rows (the experiment runs "
        f"to {end})."
    )
    assert document["missing_days"] == [
        (last + dt.timedelta(days=i)).isoformat() for i in range(1, 11)
    ]
    out = capsys.readouterr().out
    assert f"rerank_test as of {last}\n{document['as_of_basis']}\n" in out
    assert f"Missing: {last + dt.timedelta(days=1)} to {end} (10 day(s) of the window)" in out
    primary = next(r for r in document["results"] if r["role"] == "primary")
    assert primary["sequential_look"] == DAYS  # day 4's look, not day 14's
