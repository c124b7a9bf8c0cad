"""A ramped rollout through ``exp-dagster analyze``: the sample ratio is tested per phase, and the
overall effect is stratified by phase of first exposure (issue 21).

The logs are simulated here, with known truth: units arrive every day; each is assigned by the
hash under the ramp phase in force on its first exposure day (treatment 10 %, then 30 %, then
50 %), some come back on later days under the same variant (sticky assignment), and early units
watch more and respond more. Read with its ramp the split matches every phase's plan; read as a
plain 50/50 test, the same logs are a sample ratio mismatch (INVALID).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from exp_dagster.assignment import assign_variant
from exp_dagster.home import PROJECT_ROOT
from tests.integration.analyze_run import analyze_json

START = dt.date(2026, 10, 1)
DAYS = 6
SALT = "ramp-test-salt"
RAMP = [
    {"start": "2026-10-01", "weights": {"control": 0.9, "treatment": 0.1}},
    {"start": "2026-10-03", "weights": {"control": 0.7, "treatment": 0.3}},
    {"start": "2026-10-05", "weights": {"control": 0.5, "treatment": 0.5}},
]
# per phase: the mean of a unit's watch time and the treatment's lift of it
BASELINE = (300.0, 200.0, 120.0)
LIFT = (0.30, 0.15, 0.05)
# per phase: the median latency, the same in both arms (early units are on slower devices)
LATENCY = (120.0, 96.0, 80.0)


def phase_of(day: dt.date) -> int:
    return max(i for i, phase in enumerate(RAMP) if dt.date.fromisoformat(phase["start"]) <= day)


def ramp_logs(root: Path, units_per_day: int = 450) -> pd.DataFrame:
    """Exposures (CSV) and watch events (JSON Lines); returns each unit's first day, phase,
    variant and watch time, the truth the analysis must find."""
    rng = np.random.default_rng(21)
    exposures, events, truth = [], [], []
    platforms: dict[str, str] = {}
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        phase = phase_of(day)
        for i in range(units_per_day):
            unit = f"u{offset}-{i:04d}"
            platforms[unit] = "ios" if i % 3 == 0 else "android"
            variant = assign_variant(SALT, unit, RAMP[phase]["weights"])
            at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(minutes=int(rng.integers(0, 600)))
            exposures.append((unit, variant, at))
            if rng.random() < 0.2 and offset + 2 < DAYS:  # back two days later, same variant
                exposures.append((unit, variant, at + pd.Timedelta(days=2)))
            mean = BASELINE[phase] * (1.0 + LIFT[phase] * (variant == "treatment"))
            watch = float(rng.gamma(2.0, mean / 2.0))
            events.append((unit, at + pd.Timedelta(minutes=5), "watch_seconds", watch))
            latency = float(rng.lognormal(np.log(LATENCY[phase]), 0.4))
            events.append((unit, at + pd.Timedelta(minutes=1), "latency_ms", latency))
            truth.append(
                {
                    "unit_id": unit,
                    "phase": phase,
                    "variant": variant,
                    "y": watch,
                    "latency": latency,
                    "platform": platforms[unit],
                }
            )
    pd.DataFrame(
        {
            "experiment_id": "ramp_test",
            "unit_id": [u for u, _, _ in exposures],
            "variant": [v for _, v, _ in exposures],
            "exposed_at": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for _, _, t in exposures],
            "platform": [platforms[u] for u, _, _ in exposures],
        }
    ).to_csv(root / "exposures.csv", index=False)
    frame = pd.DataFrame(events, columns=["unit_id", "event_time", "event", "value"])
    frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat())).to_json(
        root / "events.jsonl", orient="records", lines=True
    )
    return pd.DataFrame(truth)


def analyse(
    root: Path, name: str, spec_fields: dict[str, Any], as_of: str | None = None
) -> dict[str, Any]:
    spec = {
        "id": "ramp_test",
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
        "pre_period_days": 0,
        "metrics": {
            "primary": "watch_time",
            "guardrails": [{"metric": "latency_p95", "margin": 0.1}],
        },
        "analysis": {"sequential": "fixed_horizon"},
        **spec_fields,
    }
    folder = root / name
    folder.mkdir()
    (folder / "ramp_test.yaml").write_text(yaml.safe_dump(spec))
    (folder / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    document = analyze_json(
        folder / "ramp_test.yaml",
        root / "exposures.csv",
        root / "events.jsonl",
        folder,
        *(["--as-of", as_of] if as_of else []),
    )
    return document


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ramp")
    truth = ramp_logs(root)
    return {
        "truth": truth,
        "ramped": analyse(
            root, "ramped", {"hash_salt": SALT, "ramp": RAMP, "segments": ["platform"]}
        ),
        "plain": analyse(root, "plain", {}),
        # Within the ramp (the 30 % phase), guarded by the guardrail's sequential test: with the
        # 10 % margin, and with a 30 % one.
        **{
            name: analyse(
                root,
                name,
                {
                    "hash_salt": SALT,
                    "ramp": RAMP,
                    "analysis": {"sequential": "group_sequential"},
                    "metrics": {
                        "primary": "watch_time",
                        "guardrails": [{"metric": "latency_p95", "margin": margin}],
                    },
                },
                as_of="2026-10-04",
            )
            for name, margin in (("guarded", 0.1), ("guarded_wide", 0.3))
        },
        "homes": {name: root / name / "home" for name in ("ramped", "plain", "guarded")},
    }


def test_the_split_matches_each_phase_and_not_a_single_plan(outcome: dict[str, Any]) -> None:
    ramped, plain = outcome["ramped"], outcome["plain"]
    assert ramped["decision"] != "INVALID"
    assert ramped["srm_p_value"] > 0.001
    assert any(
        "Sample ratio matches the plan (chi-square per ramp phase (Bonferroni over 3)" in reason
        for reason in ramped["reasons"]
    ), ramped["reasons"]
    # The same logs as one 50/50 test: far more control than treatment.
    assert plain["decision"] == "INVALID"
    assert plain["srm_p_value"] < 1e-10
    assert plain["reasons"][0].startswith("Sample ratio mismatch:")


def test_returning_units_keep_their_first_phase_variant(outcome: dict[str, Any]) -> None:
    """A unit back in a later phase, logged under its first phase's variant, passes the hash
    check (the exposures of every day are accepted) and is analysed once."""
    database = Path(outcome["homes"]["ramped"]) / "warehouse.duckdb"
    with duckdb.connect(str(database), read_only=True) as conn:
        quarantined = conn.execute("SELECT count(*) FROM exposure_quarantine").fetchone()
        returning = conn.execute(
            "SELECT count(*) FROM exposures WHERE exposure_date > "
            "(SELECT min(exposure_date) FROM exposures AS e WHERE e.unit_id = exposures.unit_id)"
        ).fetchone()
    assert quarantined == (0,)
    assert returning is not None and returning[0] > 300
    (row,) = [r for r in outcome["ramped"]["results"] if r["metric"] == "watch_time"]
    assert row["n_control"] + row["n_treatment"] == len(outcome["truth"])


def test_a_quantile_is_the_phase_weighted_quantile_difference(outcome: dict[str, Any]) -> None:
    """latency_p95's row is the average of the phases' p95 differences, weighted by their shares
    of units, computed here from the logged latencies (numpy's inverted-CDF quantile; the
    histograms' buckets are 0.1 % wide), not the difference of the pooled p95s, which the slower
    early units in control pull below 0 although the arms' latencies are alike in every phase."""
    truth: pd.DataFrame = outcome["truth"]
    (row,) = [r for r in outcome["ramped"]["results"] if r["metric"] == "latency_p95"]
    assert row["not_estimable"] is None

    def p95(values: pd.Series) -> float:
        return float(np.quantile(values.to_numpy(), 0.95, method="inverted_cdf"))

    weights, differences = [], []
    for _, units in truth.groupby("phase"):
        by_arm = units.groupby("variant")["latency"]
        weights.append(len(units))
        differences.append(p95(by_arm.get_group("treatment")) - p95(by_arm.get_group("control")))
    w = np.array(weights, dtype=float) / sum(weights)
    assert row["abs_effect"] == pytest.approx(float(w @ differences), abs=0.002 * LATENCY[0])
    assert row["abs_ci_low"] <= 0.0 <= row["abs_ci_high"]
    by_arm = truth.groupby("variant")["latency"]
    pooled = p95(by_arm.get_group("treatment")) - p95(by_arm.get_group("control"))
    assert pooled < row["abs_ci_low"], (pooled, row["abs_ci_low"])  # outside its interval
    assert "strata: the ramp phases of first exposure" in row["method"]
    assert "phase-weighted average of the within-phase quantile differences" in row["method"]
    assert "not stratified" not in row["method"]


def welch_by_phase(units: pd.DataFrame) -> tuple[float, float]:
    """The phase-stratified Welch estimate and standard error, weights the phases' units."""
    weights, effects, variances = [], [], []
    for _, phase in units.groupby("phase"):
        control = phase.loc[phase["variant"] == "control", "y"].to_numpy()
        treatment = phase.loc[phase["variant"] == "treatment", "y"].to_numpy()
        weights.append(len(phase))
        effects.append(treatment.mean() - control.mean())
        variances.append(
            treatment.var(ddof=1) / len(treatment) + control.var(ddof=1) / len(control)
        )
    w = np.array(weights, dtype=float) / sum(weights)
    return float(w @ effects), math.sqrt(float(w**2 @ variances))


def test_segment_rows_are_stratified_by_phase_too(outcome: dict[str, Any]) -> None:
    """Each platform's row is the phase-stratified Welch effect among its units, and the
    per-phase cells it combines (platform|ramp_phase) are not result rows of their own."""
    truth: pd.DataFrame = outcome["truth"]
    segments = outcome["ramped"]["segment_results"]
    for platform in ("ios", "android"):
        (row,) = [
            r
            for r in segments
            if r["metric"] == "watch_time"
            and (r["segment"], r["segment_value"]) == ("platform", platform)
        ]
        effect, std_error = welch_by_phase(truth[truth["platform"] == platform])
        assert row["abs_effect"] == pytest.approx(effect, rel=1e-9)
        assert row["std_error"] == pytest.approx(std_error, rel=1e-9)
        assert "strata: the ramp phases of first exposure" in row["method"]
    assert {r["segment"] for r in segments} == {"platform", "ramp_phase"}


def test_the_overall_effect_is_stratified_by_phase_of_first_exposure(
    outcome: dict[str, Any],
) -> None:
    """The primary row equals the phase-stratified Welch estimate computed here from the units
    (scipy's per-phase moments, weights the phases' shares of units), not the pooled one."""
    truth: pd.DataFrame = outcome["truth"]
    (row,) = [r for r in outcome["ramped"]["results"] if r["metric"] == "watch_time"]
    weights, effects, variances, dfs = [], [], [], []
    for _, units in truth.groupby("phase"):
        control = units.loc[units["variant"] == "control", "y"].to_numpy()
        treatment = units.loc[units["variant"] == "treatment", "y"].to_numpy()
        welch = stats.ttest_ind(treatment, control, equal_var=False)
        weights.append(len(units))
        effects.append(treatment.mean() - control.mean())
        variances.append(
            treatment.var(ddof=1) / len(treatment) + control.var(ddof=1) / len(control)
        )
        dfs.append(welch.df)
    w = np.array(weights, dtype=float) / sum(weights)
    terms = w**2 * np.array(variances)
    assert row["abs_effect"] == pytest.approx(float(w @ effects), rel=1e-9)
    assert row["std_error"] == pytest.approx(math.sqrt(terms.sum()), rel=1e-9)
    assert row["df"] == pytest.approx(terms.sum() ** 2 / np.sum(terms**2 / np.array(dfs)), rel=1e-6)
    assert (
        "ramp phases of first exposure (from 2026-10-01, 2026-10-03, 2026-10-05)" in (row["method"])
    )
    # The pooled difference is far off: control is mostly early, high-watching units.
    pooled = truth.loc[truth["variant"] == "treatment", "y"].mean() - (
        truth.loc[truth["variant"] == "control", "y"].mean()
    )
    true_effect = float(w @ [b * lift for b, lift in zip(BASELINE, LIFT, strict=True)])
    assert pooled < 0 < true_effect
    assert row["abs_ci_low"] <= true_effect <= row["abs_ci_high"]
    phases = {
        r["segment_value"]
        for r in outcome["ramped"]["segment_results"]
        if r["segment"] == "ramp_phase"
    }
    assert phases == {"2026-10-01", "2026-10-03", "2026-10-05"}
    assert {
        (r["segment"], r["metric"])
        for r in outcome["ramped"]["segment_results"]
        if r["segment"] == "ramp_phase"
    } == {("ramp_phase", "watch_time"), ("ramp_phase", "latency_p95")}


def test_a_day_within_the_ramp_says_its_next_step(outcome: dict[str, Any]) -> None:
    """On 2026-10-04 (the 30 % phase, 50 % from 2026-10-05) the decision names the ramp's next
    step from the guardrail's sequential non-inferiority test: hold while it has not crossed
    (latency's p95 is the same in both arms, but ~360 treated units bound it only to about
    +12 %, not within a 10 % margin), continue once it has (a 30 % margin). The analysis on the
    end date, with the ramp complete, has none."""
    for name, action in (("guarded", "hold"), ("guarded_wide", "continue_ramp")):
        document = outcome[name]
        assert document["as_of"] == "2026-10-04" and document["decision"] == "KEEP_RUNNING"
        (latency,) = [r for r in document["results"] if r["metric"] == "latency_p95"]
        assert latency["sequential_method"] == "group_sequential"
        assert latency["ni_sequential_passed"] is (action == "continue_ramp")
        assert not latency["significant"]  # no harm shown: never roll_back here
        assert document["ramp_action"] == action, (name, document["reasons"])
    held, wide = outcome["guarded"]["reasons"][1], outcome["guarded_wide"]["reasons"][1]
    assert held.startswith(
        "Hold the ramp at 30 % (the phase from 2026-10-03), do not move to 50 % on 2026-10-05 "
        "yet: latency_p95 not yet shown non-inferior by the sequential test (one-sided bound +"
    ), held
    assert held.endswith("against +10.00%).")
    assert wide.startswith(
        "Continue the ramp to 50 % on 2026-10-05: every guardrail non-inferior by the "
        "sequential test (latency_p95 bound +"
    ), wide
    assert wide.endswith("within +30.00%).")
    database = Path(outcome["homes"]["guarded"]) / "warehouse.duckdb"
    with duckdb.connect(str(database), read_only=True) as conn:
        stored = dict(conn.execute("SELECT as_of_date, ramp_action FROM decision").fetchall())
    # every day the analysis decided: the 10 % phase's days and this one hold
    assert stored and set(stored.values()) == {"hold"}, stored
    assert stored[dt.date(2026, 10, 4)] == "hold"
    assert outcome["ramped"]["ramp_action"] is None  # as of the end date: the ramp is complete
