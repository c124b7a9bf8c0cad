from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.cuped import cuped_test
from exp_dagster.stats.effects import EffectEstimate
from exp_dagster.stats.means import paired_t_test, welch_test
from exp_dagster.stats.moments import CovariateMoments, Moments, RatioMoments
from exp_dagster.stats.proportions import two_proportion_test
from exp_dagster.stats.quantile import quantile_test
from exp_dagster.stats.ratio import ratio_test
from exp_dagster.stats.stratification import post_stratified_test, stratified_effect
from tests.unit.stats.simulators import clustered_latencies, quantile_arm
from tests.unit.stats.simulators_regression import (
    between_stratum_share,
    skip_unless_run_slow,
    stratified_arms,
    stratified_units,
)

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
SHARES = (0.5, 0.3, 0.15, 0.05)
STRATUM_MEANS = (1.0, 2.5, 4.0, 8.0)


@pytest.fixture
def experiment(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw units of 4 strata with different means and spreads; treatment adds 0.3."""
    arms = {}
    for arm, n, effect in (("control", 900, 0.0), ("treatment", 1100, 0.3)):
        labels, values = stratified_units(
            rng, (n,), shares=SHARES, stratum_means=STRATUM_MEANS, within_sd=1.0, effect=effect
        )
        values = values + (labels == 3) * rng.normal(0.0, 2.0, size=n)  # a noisier last stratum
        arms[arm] = (labels, values)
    return arms


def moments_per_stratum(labels: np.ndarray, values: np.ndarray) -> list[Moments]:
    return [Moments.from_values(values[labels == s]) for s in range(len(SHARES))]


def test_equals_fully_interacted_ols_with_centred_dummies(
    experiment: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    result = post_stratified_test(
        moments_per_stratum(*experiment["control"]), moments_per_stratum(*experiment["treatment"])
    )
    labels = np.concatenate([experiment["control"][0], experiment["treatment"][0]])
    y = np.concatenate([experiment["control"][1], experiment["treatment"][1]])
    is_treatment = np.r_[
        np.zeros(len(experiment["control"][0])), np.ones(len(experiment["treatment"][0]))
    ]
    dummies = np.column_stack([labels == s for s in range(1, len(SHARES))]).astype(float)
    centred = dummies - dummies.mean(axis=0)
    design = np.column_stack(
        [np.ones_like(y), is_treatment, centred, is_treatment[:, None] * centred]
    )
    ols = sm.OLS(y, design).fit()
    # Lin (2013): the treatment coefficient is the post-stratified estimate.
    assert result.abs_effect == pytest.approx(ols.params[1], abs=1e-9)
    # In a saturated model HC2 is the per-cell Neyman variance: our conditional variance.
    assert result.std_error == pytest.approx(ols.HC2_se[1], rel=1e-8)
    # Stratification removes between-stratum variance: well below plain Welch here.
    welch = welch_test(
        Moments.from_values(experiment["control"][1]),
        Moments.from_values(experiment["treatment"][1]),
    )
    assert result.variance_reduction == pytest.approx(
        1 - result.std_error**2 / welch.std_error**2, rel=1e-12
    )
    assert result.variance_reduction > 0.5


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_matches_brute_force_with_satterthwaite_df(
    experiment: dict[str, tuple[np.ndarray, np.ndarray]], alternative: Alternative
) -> None:
    result = post_stratified_test(
        moments_per_stratum(*experiment["control"]),
        moments_per_stratum(*experiment["treatment"]),
        alpha=0.1,
        alternative=alternative,
    )
    cells = {
        arm: [values[labels == s] for s in range(len(SHARES))]
        for arm, (labels, values) in experiment.items()
    }
    counts = np.array([len(c) + len(t) for c, t in zip(*cells.values(), strict=True)])
    weights = counts / counts.sum()
    means = {arm: np.array([cell.mean() for cell in arm_cells]) for arm, arm_cells in cells.items()}
    terms = {
        arm: weights**2 * np.array([cell.var(ddof=1) / len(cell) for cell in arm_cells])
        for arm, arm_cells in cells.items()
    }
    effect = float(weights @ (means["treatment"] - means["control"]))
    se = math.sqrt(terms["control"].sum() + terms["treatment"].sum())
    sizes = np.array([len(cell) for arm_cells in cells.values() for cell in arm_cells])
    all_terms = np.concatenate(list(terms.values()))
    df = se**4 / np.sum(all_terms**2 / (sizes - 1))
    t = effect / se
    p_value = {
        "two-sided": 2 * stats.t.sf(abs(t), df),
        "greater": stats.t.sf(t, df),
        "less": stats.t.cdf(t, df),
    }[alternative]
    crit = stats.t.ppf(0.95 if alternative == "two-sided" else 0.9, df)
    assert result.mean_control == pytest.approx(weights @ means["control"], rel=1e-12)
    assert result.mean_treatment == pytest.approx(weights @ means["treatment"], rel=1e-12)
    assert result.abs_effect == pytest.approx(effect, rel=1e-9)
    assert result.std_error == pytest.approx(se, rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-8)
    if alternative != "less":
        assert result.abs_ci_low == pytest.approx(effect - crit * se, rel=1e-9)
    if alternative != "greater":
        assert result.abs_ci_high == pytest.approx(effect + crit * se, rel=1e-9)
    assert (result.n_control, result.n_treatment) == (900, 1100)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_one_stratum_is_welch(rng: np.random.Generator, alternative: Alternative) -> None:
    control = Moments.from_values(rng.normal(1.0, 1.0, size=30))
    treatment = Moments.from_values(rng.normal(1.4, 2.0, size=45))
    result = post_stratified_test([control], [treatment], alternative=alternative)
    reference = welch_test(control, treatment, alternative=alternative)
    for field in fields(EffectEstimate):
        value, expected = getattr(result, field.name), getattr(reference, field.name)
        if field.name in ("method", "variance_reduction"):
            continue
        if isinstance(expected, float):
            assert value == pytest.approx(expected, rel=1e-12), field.name
        else:
            assert value == expected, field.name
    assert result.variance_reduction == pytest.approx(0.0, abs=1e-12)


def test_given_weights_are_normalised_and_define_the_estimand(
    experiment: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    control = moments_per_stratum(*experiment["control"])
    treatment = moments_per_stratum(*experiment["treatment"])
    population_shares = [0.25, 0.25, 0.25, 0.25]
    by_shares = post_stratified_test(control, treatment, weights=population_shares)
    by_counts = post_stratified_test(control, treatment, weights=[10, 10, 10, 10])
    assert by_counts.abs_effect == pytest.approx(by_shares.abs_effect, rel=1e-12)
    assert by_counts.std_error == pytest.approx(by_shares.std_error, rel=1e-12)
    differences = [t.mean - c.mean for c, t in zip(control, treatment, strict=True)]
    assert by_shares.abs_effect == pytest.approx(np.mean(differences), rel=1e-12)
    assert "given weights" in by_shares.method
    default = post_stratified_test(control, treatment)
    pooled_counts = [c.n + t.n for c, t in zip(control, treatment, strict=True)]
    explicit = post_stratified_test(control, treatment, weights=pooled_counts)
    for name in ("abs_effect", "std_error", "p_value", "abs_ci_low", "rel_ci_high"):
        assert getattr(explicit, name) == pytest.approx(getattr(default, name), rel=1e-12)
    assert "pooled-share weights" in default.method


def test_variance_reduction_is_the_between_stratum_share(rng: np.random.Generator) -> None:
    share = between_stratum_share(shares=SHARES, stratum_means=STRATUM_MEANS, within_sd=1.5)
    (control,) = stratified_arms(
        rng, reps=1, n=40_000, shares=SHARES, stratum_means=STRATUM_MEANS, within_sd=1.5
    )
    (treatment,) = stratified_arms(
        rng, reps=1, n=40_000, shares=SHARES, stratum_means=STRATUM_MEANS, within_sd=1.5
    )
    result = post_stratified_test(control, treatment)
    # The sample between-share of 80k units has SE about 0.003.
    assert result.variance_reduction == pytest.approx(share, abs=0.015)
    assert 0.5 < share < 0.8  # a setting where stratification matters


def check_calibration(
    rng: np.random.Generator,
    *,
    reps: int,
    n: int,
    effect: float,
    bounds: tuple[float, float],
) -> float:
    """Rejection rate (``effect == 0``) or coverage of the true effect, checked against bounds."""
    controls, treatments = (
        stratified_arms(
            rng,
            reps=reps,
            n=n,
            shares=SHARES,
            stratum_means=STRATUM_MEANS,
            within_sd=1.5,
            effect=arm_effect,
        )
        for arm_effect in (0.0, effect)
    )
    results = [post_stratified_test(c, t) for c, t in zip(controls, treatments, strict=True)]
    if effect == 0.0:
        rate = float(np.mean([r.p_value < 0.05 for r in results]))
    else:
        rate = float(np.mean([r.abs_ci_low <= effect <= r.abs_ci_high for r in results]))
    assert bounds[0] <= rate <= bounds[1]
    return rate


def test_false_positive_rate_with_random_stratum_sizes(rng: np.random.Generator) -> None:
    # n = 400 per arm: the smallest stratum (5 %) has about 20 units. MC SE of a rate of 0.05 over
    # 4000 reps: sqrt(0.05 * 0.95 / 4000) ≈ 0.0034; [0.04, 0.06] is ±2.9 SE.
    check_calibration(rng, reps=4000, n=400, effect=0.0, bounds=(0.04, 0.06))


def test_coverage(rng: np.random.Generator) -> None:
    # MC SE of a coverage of 0.95 over 4000 reps ≈ 0.0034; ±2.9 SE.
    check_calibration(rng, reps=4000, n=400, effect=0.2, bounds=(0.94, 0.96))


@pytest.mark.slow
def test_calibration_long_run(rng: np.random.Generator, request: pytest.FixtureRequest) -> None:
    skip_unless_run_slow(request)
    # MC SE over 20000 reps ≈ 0.0015; ±3.3 SE.
    check_calibration(rng, reps=20_000, n=400, effect=0.0, bounds=(0.045, 0.055))
    check_calibration(rng, reps=20_000, n=400, effect=0.2, bounds=(0.945, 0.955))


@pytest.mark.parametrize(
    ("control", "treatment", "weights", "message"),
    [
        ([], [], None, "non-zero number of strata"),
        ([Moments(3, 3.0, 5.0)], [Moments(3, 3.0, 5.0)] * 2, None, "1 in control and 2"),
        (
            [Moments(3, 3.0, 5.0), Moments(1, 1.0, 1.0)],
            [Moments(3, 3.0, 5.0)] * 2,
            None,
            "Stratum 1 has n_control=1 and n_treatment=3.*Merge",
        ),
        ([Moments(3, 3.0, 5.0)] * 2, [Moments(3, 3.0, 5.0)] * 2, [1.0], "one weight per stratum"),
        ([Moments(3, 3.0, 5.0)] * 2, [Moments(3, 3.0, 5.0)] * 2, [1.0, -1.0], "non-negative"),
        ([Moments(3, 3.0, 5.0)] * 2, [Moments(3, 3.0, 5.0)] * 2, [0.0, 0.0], "not all zero"),
        ([Moments(3, 3.0, 5.0)] * 2, [Moments(3, 3.0, 5.0)] * 2, [1.0, math.nan], "finite"),
    ],
)
def test_rejects_bad_strata_and_weights(
    control: list[Moments],
    treatment: list[Moments],
    weights: list[float] | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        post_stratified_test(control, treatment, weights=weights)


# ── stratified_effect: any test's per-stratum effects, combined (ramped rollouts) ────────────


def test_stratified_effect_of_welch_strata_is_post_stratification(
    experiment: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    controls = moments_per_stratum(*experiment["control"])
    treatments = moments_per_stratum(*experiment["treatment"])
    combined = stratified_effect(
        [welch_test(c, t, alpha=0.1) for c, t in zip(controls, treatments, strict=True)],
        alpha=0.1,
    )
    reference = post_stratified_test(controls, treatments, alpha=0.1)
    for name in ("mean_control", "mean_treatment", "abs_effect", "std_error", "df", "p_value"):
        assert getattr(combined, name) == pytest.approx(getattr(reference, name), rel=1e-9), name
    assert (combined.abs_ci_low, combined.abs_ci_high) == pytest.approx(
        (reference.abs_ci_low, reference.abs_ci_high), rel=1e-9
    )
    assert (combined.n_control, combined.n_treatment) == (900, 1100)
    assert combined.variance_reduction is None  # Welch strata have none of their own


def test_stratified_cuped_is_the_weighted_ols_treatment_coefficients(
    rng: np.random.Generator,
) -> None:
    """Within each stratum CUPED (within-arm θ) is the OLS coefficient of T in y ~ T + c; the
    stratified effect weights them by the strata's shares of units, its variance by their
    squares."""
    strata, rows = [], []
    for size, share, base in ((400, 0.02, 3.0), (900, 0.1, 2.0), (1500, 0.5, 1.0)):
        c = rng.normal(base, 1.0, size=size)
        t = (rng.random(size) < share).astype(float)
        t[:2], t[2:4] = 1.0, 0.0  # two units of each arm at least
        y = base + 0.8 * (c - base) + 0.3 * t + rng.normal(0.0, 0.6, size=size)
        strata.append(
            cuped_test(
                CovariateMoments.from_values(y[t == 0], c[t == 0]),
                CovariateMoments.from_values(y[t == 1], c[t == 1]),
            )
        )
        ols = sm.OLS(y, np.column_stack([np.ones(size), t, c])).fit()
        rows.append((size, ols.params[1]))
    combined = stratified_effect(strata)
    sizes = np.array([size for size, _ in rows], dtype=float)
    weights = sizes / sizes.sum()
    assert combined.abs_effect == pytest.approx(weights @ [b for _, b in rows], rel=1e-9)
    assert combined.std_error == pytest.approx(
        math.sqrt(weights**2 @ [s.std_error**2 for s in strata]), rel=1e-12
    )
    assert combined.cuped_theta == pytest.approx(weights @ [s.cuped_theta for s in strata])
    assert combined.variance_reduction is not None and combined.variance_reduction > 0.5
    assert "t-test on the stratified difference" in combined.method


def test_stratified_ratio_and_proportion_strata_are_z_tests(rng: np.random.Generator) -> None:
    ratios = []
    for share in (0.05, 0.5):
        x = rng.poisson(5.0, size=(2, 800)) + 1.0
        y = rng.binomial(x.astype(int), [[0.10], [0.10 + share / 10]])
        ratios.append(
            ratio_test(RatioMoments.from_values(y[0], x[0]), RatioMoments.from_values(y[1], x[1]))
        )
    combined = stratified_effect(ratios, alpha=0.05)
    se = math.sqrt(0.25 * sum(r.std_error**2 for r in ratios))  # equal strata: weights 1/2
    assert combined.std_error == pytest.approx(se, rel=1e-12)
    assert math.isinf(combined.df) and combined.method.startswith("two-sided z-test")
    z = stats.norm.ppf(0.975)
    assert combined.abs_ci_low == pytest.approx(combined.abs_effect - z * se, rel=1e-9)
    assert combined.p_value == pytest.approx(
        2 * stats.norm.sf(abs(combined.abs_effect) / se), rel=1e-9
    )
    proportions = stratified_effect(
        [two_proportion_test(50, 1000, 3, 40), two_proportion_test(200, 2000, 230, 2000)],
        weights=[1.0, 3.0],
    )
    expected = 0.25 * (3 / 40 - 0.05) + 0.75 * (0.115 - 0.1)
    assert proportions.abs_effect == pytest.approx(expected, rel=1e-12)
    unpooled = 0.25**2 * (0.05 * 0.95 / 1000 + (3 / 40) * (37 / 40) / 40) + 0.75**2 * (
        0.1 * 0.9 / 2000 + 0.115 * 0.885 / 2000
    )
    assert proportions.std_error == pytest.approx(math.sqrt(unpooled), rel=1e-12)


def test_stratified_effect_rejects_paired_strata_and_bad_weights(
    rng: np.random.Generator,
) -> None:
    values = rng.normal(size=(40, 2))
    paired = paired_t_test(RatioMoments.from_values(values[:, 0], values[:, 1]))
    welch = welch_test(Moments(10, 10.0, 30.0), Moments(10, 12.0, 40.0))
    with pytest.raises(ValueError, match="Stratum 1's effect has no finite arm variances"):
        stratified_effect([welch, paired])
    with pytest.raises(ValueError, match="one weight per stratum"):
        stratified_effect([welch, welch], weights=[1.0])
    with pytest.raises(ValueError, match="at least one stratum"):
        stratified_effect([])


# A ramp: three phases of first exposure with their traffic shares of treatment, their units,
# and a baseline and effect that both fall over time (early adopters are more engaged and
# respond more), as in issue 21's simulation with known truth.
RAMP_PHASES = (
    # units, treatment share, control mean, effect, sd
    (3_000, 0.01, 3.0, 0.6, 1.5),
    (4_000, 0.05, 2.0, 0.3, 1.2),
    (8_000, 0.50, 1.0, 0.1, 1.0),
)


def simulated_ramps(
    rng: np.random.Generator, reps: int
) -> tuple[list[list[Moments]], list[list[Moments]]]:
    """``reps`` ramps' sufficient statistics per phase and arm, drawn exactly: per arm, the
    number of units (binomial), the sample mean (normal) and the sample variance (scaled
    chi-square), independent for normal units."""
    controls: list[list[Moments]] = [[] for _ in range(reps)]
    treatments: list[list[Moments]] = [[] for _ in range(reps)]
    for units, share, base, effect, sd in RAMP_PHASES:
        n_t = np.maximum(rng.binomial(units, share, size=reps), 2)
        for arm, n, mean in ((controls, units - n_t, base), (treatments, n_t, base + effect)):
            sample_mean = rng.normal(mean, sd / np.sqrt(n))
            sample_var = sd**2 * rng.chisquare(n - 1) / (n - 1)
            for rep in range(reps):
                count = int(n[rep])
                sum_y = count * sample_mean[rep]
                arm[rep].append(
                    Moments(count, sum_y, (count - 1) * sample_var[rep] + sum_y**2 / count)
                )
    return controls, treatments


def test_a_ramp_biases_the_pooled_effect_and_not_the_phase_stratified_one(
    rng: np.random.Generator,
) -> None:
    units = np.array([p[0] for p in RAMP_PHASES], dtype=float)
    truth = float(units / units.sum() @ [p[3] for p in RAMP_PHASES])  # 0.2533...
    reps = 4000
    controls, treatments = simulated_ramps(rng, reps)
    stratified, naive = [], []
    for control, treatment in zip(controls, treatments, strict=True):
        stratified.append(
            stratified_effect([welch_test(c, t) for c, t in zip(control, treatment, strict=True)])
        )
        naive.append(
            welch_test(
                Moments(
                    sum(m.n for m in control),
                    sum(m.sum_y for m in control),
                    sum(m.sum_y2 for m in control),
                ),
                Moments(
                    sum(m.n for m in treatment),
                    sum(m.sum_y for m in treatment),
                    sum(m.sum_y2 for m in treatment),
                ),
            )
        )
    estimates = np.array([e.abs_effect for e in stratified])
    error = estimates.mean() - truth
    assert abs(error) < 3 * estimates.std() / math.sqrt(reps)  # unbiased
    covered = np.mean([e.abs_ci_low <= truth <= e.abs_ci_high for e in stratified])
    assert 0.93 <= covered <= 0.97
    pooled = np.array([e.abs_effect for e in naive])
    # Control is mostly early, engaged units and treatment mostly late ones: the pooled
    # comparison says treatment is far worse, and its interval almost never holds the truth.
    assert pooled.mean() - truth < -0.5
    assert np.mean([e.abs_ci_low <= truth <= e.abs_ci_high for e in naive]) < 0.01


def test_stratified_relative_p_value_is_the_delta_method_z_of_the_weighted_means() -> None:
    strata = [
        ratio_test(
            RatioMoments(800, 80.0, 4_000.0, 40.0, 24_000.0, 480.0),
            RatioMoments(200, 23.0, 1_000.0, 13.0, 6_000.0, 130.0),
        ),
        ratio_test(
            RatioMoments(500, 50.0, 2_500.0, 25.0, 15_000.0, 300.0),
            RatioMoments(500, 56.0, 2_500.0, 31.0, 15_000.0, 340.0),
        ),
    ]
    combined = stratified_effect(strata, p_value_scale="relative")
    w = np.array([0.5, 0.5])
    mc = w @ [s.mean_control for s in strata]
    mt = w @ [s.mean_treatment for s in strata]
    vc = w**2 @ [s.var_mean_control for s in strata]
    vt = w**2 @ [s.var_mean_treatment for s in strata]
    z = (mt / mc - 1.0) / math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)  # written out
    assert combined.statistic == pytest.approx(z, rel=1e-9)
    assert combined.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert "p-value of the relative lift" in combined.method


# A ramped quantile metric (p90 latency): the treatment's share grows while both the latency
# level and the treatment's slowdown fall over the phases. A difference of quantiles has no
# additive decomposition over strata, so the stratified estimand is the phase-weighted average of
# the within-phase quantile differences, sum_p w_p (q_t,p - q_c,p), w_p the phases' shares of
# units (what the analysis reports for a ramped quantile metric).
QUANTILE_PHASES = (
    # units, treatment share, control scale, treatment's multiplier of it
    (1_500, 0.10, 2.0, 1.30),
    (2_000, 0.30, 1.5, 1.15),
    (4_000, 0.50, 1.0, 1.05),
)
QUANTILE_LEVEL = 0.9


def test_a_ramp_biases_the_pooled_quantile_and_not_the_phase_weighted_one(
    rng: np.random.Generator,
) -> None:
    units = np.array([p[0] for p in QUANTILE_PHASES], dtype=float)
    weights = units / units.sum()
    # the observation-level quantile of clustered_latencies' log-normal, times the scale
    base = math.exp(math.sqrt(0.8**2 + 0.5**2) * stats.norm.ppf(QUANTILE_LEVEL))
    truth = float(weights @ [base * s * (m - 1.0) for _, _, s, m in QUANTILE_PHASES])
    reps = 1000  # some 7 s; figures in docs/statistics.md ("Ramped rollouts")
    stratified, pooled = [], []
    for _ in range(reps):
        effects, observed = [], {"control": [], "treatment": []}
        for n, share, scale, multiplier in QUANTILE_PHASES:
            n_t = int(rng.binomial(n, share))
            arms = []
            for arm, n_arm, arm_scale in (
                ("control", n - n_t, scale),
                ("treatment", n_t, scale * multiplier),
            ):
                values, ids = clustered_latencies(
                    rng, n_units=n_arm, scale=arm_scale, mean_requests=1.0
                )
                arms.append(quantile_arm(values, ids, n_arm, QUANTILE_LEVEL))
                observed[arm].append(values)
            effects.append(quantile_test(*arms, level=QUANTILE_LEVEL))
        stratified.append(stratified_effect(effects))
        control, treatment = (np.concatenate(observed[a]) for a in ("control", "treatment"))
        pooled.append(
            float(np.quantile(treatment, QUANTILE_LEVEL, method="inverted_cdf"))
            - float(np.quantile(control, QUANTILE_LEVEL, method="inverted_cdf"))
        )
    estimates = np.array([e.abs_effect for e in stratified])
    assert abs(estimates.mean() - truth) < 3 * estimates.std() / math.sqrt(reps)  # unbiased
    covered = np.mean([e.abs_ci_low <= truth <= e.abs_ci_high for e in stratified])
    assert 0.93 <= covered <= 0.97
    # The pooled control is mostly early, slow units: the treatment looks faster than control
    # although it is slower in every phase.
    assert np.mean(pooled) < 0.0 < truth
