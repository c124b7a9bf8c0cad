from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from exp_dagster.stats.bayes import BayesianSummary, Direction, bayesian_summary

CASES: list[tuple[float, float, float, float | None]] = [
    # (estimate, std_error, prior_mean, prior_sd)
    (0.02, 0.01, 0.0, None),
    (-0.013, 0.02, 0.0, None),
    (3.7, 1.9, 0.0, None),
    (0.02, 0.01, 0.0, 0.01),
    (-0.04, 0.015, 0.01, 0.03),
    (2.5, 4.0, -1.0, 0.5),
    (0.001, 0.0004, 0.0, 0.1),
]
DIRECTIONS: list[Direction] = ["increase", "decrease"]


def precision_weighted_posterior(
    estimate: float, std_error: float, prior_mean: float, prior_sd: float | None
) -> tuple[float, float]:
    """Posterior mean and sd written as in BDA eq. 2.12: precisions add, means are weighted."""
    if prior_sd is None:
        return estimate, std_error
    precision_prior, precision_data = prior_sd**-2.0, std_error**-2.0
    precision = precision_prior + precision_data
    mean = (precision_prior * prior_mean + precision_data * estimate) / precision
    return mean, precision**-0.5


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
@pytest.mark.parametrize(("estimate", "std_error"), [(0.02, 0.01), (-1.3, 0.7), (5.0, 0.02)])
def test_flat_prior_is_the_frequentist_normal_analysis(
    estimate: float, std_error: float, level: float, direction: Direction
) -> None:
    result = bayesian_summary(estimate, std_error, direction=direction, credible_level=level)
    low, high = stats.norm.interval(level, loc=estimate, scale=std_error)
    assert result.credible_low == pytest.approx(low, abs=1e-12)
    assert result.credible_high == pytest.approx(high, abs=1e-12)
    assert (result.posterior_mean, result.posterior_sd) == (estimate, std_error)
    z = estimate / std_error
    # The one-sided p-value of H0: "not better" is P(Z >= z) for an increase metric and
    # P(Z <= z) for a decrease metric.
    one_sided_p = stats.norm.sf(z) if direction == "increase" else stats.norm.cdf(z)
    assert result.prob_better == pytest.approx(1.0 - one_sided_p, abs=1e-12)
    assert result.prior == "flat (improper)"


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("estimate", "std_error", "prior_mean", "prior_sd"), CASES)
def test_conjugate_update_matches_precision_weighting_and_quadrature(
    estimate: float,
    std_error: float,
    prior_mean: float,
    prior_sd: float | None,
    direction: Direction,
) -> None:
    result = bayesian_summary(
        estimate, std_error, direction=direction, prior_mean=prior_mean, prior_sd=prior_sd
    )
    mean, sd = precision_weighted_posterior(estimate, std_error, prior_mean, prior_sd)
    assert result.posterior_mean == pytest.approx(mean, rel=1e-12, abs=1e-15)
    assert result.posterior_sd == pytest.approx(sd, rel=1e-12)
    posterior = stats.norm(mean, sd)
    assert (result.credible_low, result.credible_high) == pytest.approx(
        posterior.interval(0.95), rel=1e-12, abs=1e-15
    )
    sign = 1.0 if direction == "increase" else -1.0
    prob_better = posterior.sf(0.0) if direction == "increase" else posterior.cdf(0.0)
    assert result.prob_better == pytest.approx(prob_better, rel=1e-12, abs=1e-15)
    # E[max(0, harm)] by adaptive quadrature of harm x density over the harmful side, on a
    # finite range (40 sd) so that quad cannot step over a narrow posterior.
    reach = abs(mean) + 40.0 * sd
    if direction == "increase":
        loss, _ = integrate.quad(lambda t: -t * posterior.pdf(t), -reach, 0.0, epsabs=1e-14)
    else:
        loss, _ = integrate.quad(lambda t: t * posterior.pdf(t), 0.0, reach, epsabs=1e-14)
    assert result.expected_loss == pytest.approx(loss, rel=1e-7, abs=1e-13)
    assert result.expected_loss >= max(0.0, -sign * mean)  # Jensen: E[max(0, H)] >= max(0, E H)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(
    ("estimate", "std_error", "prior_mean", "prior_sd"),
    [case for case in CASES if case[3] is not None],
)
def test_proper_prior_matches_a_grid_posterior(
    estimate: float, std_error: float, prior_mean: float, prior_sd: float, direction: Direction
) -> None:
    # Posterior on a grid: prior density x likelihood, normalised numerically; no conjugacy
    # used. A coarse grid over both the prior and the likelihood locates the posterior, then a
    # fine grid of +/- 15 coarse sds around it integrates it.
    def normalised_posterior(grid: np.ndarray) -> np.ndarray:
        unnormalised = stats.norm.pdf(grid, prior_mean, prior_sd) * stats.norm.pdf(
            estimate, grid, std_error
        )
        return unnormalised / np.trapezoid(unnormalised, grid)

    low = min(prior_mean - 10.0 * prior_sd, estimate - 10.0 * std_error)
    high = max(prior_mean + 10.0 * prior_sd, estimate + 10.0 * std_error)
    coarse = np.linspace(low, high, 200_001)
    coarse_density = normalised_posterior(coarse)
    coarse_mean = np.trapezoid(coarse * coarse_density, coarse)
    coarse_sd = math.sqrt(np.trapezoid((coarse - coarse_mean) ** 2 * coarse_density, coarse))
    grid = np.linspace(coarse_mean - 15.0 * coarse_sd, coarse_mean + 15.0 * coarse_sd, 200_001)
    density = normalised_posterior(grid)
    mean = np.trapezoid(grid * density, grid)
    sd = math.sqrt(np.trapezoid((grid - mean) ** 2 * density, grid))
    cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    harm = -grid if direction == "increase" else grid
    prob_better = np.trapezoid(np.where(harm < 0.0, density, 0.0), grid)
    loss = np.trapezoid(np.maximum(harm, 0.0) * density, grid)

    result = bayesian_summary(
        estimate, std_error, direction=direction, prior_mean=prior_mean, prior_sd=prior_sd
    )
    tolerance = 1e-6 * result.posterior_sd
    assert result.posterior_mean == pytest.approx(mean, abs=tolerance)
    assert result.posterior_sd == pytest.approx(sd, abs=tolerance)
    assert result.credible_low == pytest.approx(np.interp(0.025, cdf, grid), abs=tolerance)
    assert result.credible_high == pytest.approx(np.interp(0.975, cdf, grid), abs=tolerance)
    assert result.prob_better == pytest.approx(prob_better, abs=1e-5)
    assert result.expected_loss == pytest.approx(loss, abs=tolerance)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(
    ("estimate", "std_error", "prior_mean", "prior_sd"),
    [(0.02, 0.01, 0.0, None), (-0.04, 0.015, 0.01, 0.03), (0.3, 1.0, 0.0, 0.5)],
)
def test_closed_forms_match_posterior_draws(
    rng: np.random.Generator,
    estimate: float,
    std_error: float,
    prior_mean: float,
    prior_sd: float | None,
    direction: Direction,
) -> None:
    result = bayesian_summary(
        estimate, std_error, direction=direction, prior_mean=prior_mean, prior_sd=prior_sd
    )
    draws_count = 400_000
    mean, sd = precision_weighted_posterior(estimate, std_error, prior_mean, prior_sd)
    theta = rng.normal(mean, sd, size=draws_count)
    harm = -theta if direction == "increase" else theta
    # Each comparison allows 4.5 Monte Carlo standard errors (a two-sided miss of 7e-6 per check).
    better = harm < 0.0
    se_prob = math.sqrt(better.mean() * (1.0 - better.mean()) / draws_count)
    assert abs(result.prob_better - better.mean()) <= 4.5 * se_prob + 1e-12
    loss = np.maximum(harm, 0.0)
    assert abs(result.expected_loss - loss.mean()) <= 4.5 * loss.std() / math.sqrt(draws_count)
    for bound, q in ((result.credible_low, 0.025), (result.credible_high, 0.975)):
        # SE of a sample quantile: sqrt(q (1 - q) / n) / density at the quantile.
        se_quantile = math.sqrt(q * (1 - q) / draws_count) / stats.norm.pdf(bound, mean, sd)
        assert abs(bound - np.quantile(theta, q)) <= 4.5 * se_quantile


def covers(results: list[BayesianSummary], theta: np.ndarray) -> np.ndarray:
    """Whether each credible interval contains its true effect."""
    low = np.array([result.credible_low for result in results])
    high = np.array([result.credible_high for result in results])
    return (low <= theta) & (theta <= high)


def test_credible_interval_covers_when_effects_come_from_the_prior(
    rng: np.random.Generator,
) -> None:
    reps, prior_mean, prior_sd = 20_000, 0.01, 0.02
    theta = rng.normal(prior_mean, prior_sd, size=reps)
    std_errors = rng.uniform(0.005, 0.04, size=reps)
    estimates = rng.normal(theta, std_errors)
    results = [
        bayesian_summary(float(e), float(s), prior_mean=prior_mean, prior_sd=prior_sd)
        for e, s in zip(estimates, std_errors, strict=True)
    ]
    covered = covers(results, theta)
    # Monte Carlo SE of the coverage: sqrt(0.95 * 0.05 / 20_000) = 0.0015; 4 SE = 0.006.
    assert abs(covered.mean() - 0.95) <= 0.006
    # Averaged over the prior, P(better) and expected loss are unbiased for the truth.
    prob_better = np.array([r.prob_better for r in results])
    truly_better = theta > 0.0
    gap = truly_better - prob_better
    assert abs(gap.mean()) <= 4.0 * gap.std() / math.sqrt(reps)
    confident = prob_better > 0.9
    # Among the confident calls, the share truly better matches their stated probability.
    gap_confident = gap[confident]
    assert abs(gap_confident.mean()) <= 4.0 * gap_confident.std() / math.sqrt(confident.sum())
    loss_gap = np.maximum(-theta, 0.0) - np.array([r.expected_loss for r in results])
    assert abs(loss_gap.mean()) <= 4.0 * loss_gap.std() / math.sqrt(reps)


def test_flat_prior_still_covers_but_is_wider_than_an_informative_prior(
    rng: np.random.Generator,
) -> None:
    # The same world with a flat prior still covers ~95% (it is the frequentist interval), but is
    # wider than the proper-prior interval: the prior adds information.
    theta = rng.normal(0.0, 0.01, size=5000)
    estimates = rng.normal(theta, 0.02)
    flat = [bayesian_summary(float(e), 0.02) for e in estimates]
    proper = [bayesian_summary(float(e), 0.02, prior_sd=0.01) for e in estimates]
    assert abs(covers(flat, theta).mean() - 0.95) <= 0.013  # MC SE 0.0031
    assert abs(covers(proper, theta).mean() - 0.95) <= 0.013
    width_flat = flat[0].credible_high - flat[0].credible_low
    width_proper = proper[0].credible_high - proper[0].credible_low
    assert width_proper == pytest.approx(width_flat / math.sqrt(5.0), rel=1e-12)


@pytest.mark.parametrize(("estimate", "std_error", "prior_mean", "prior_sd"), CASES)
def test_decrease_mirrors_increase(
    estimate: float, std_error: float, prior_mean: float, prior_sd: float | None
) -> None:
    lower_is_better = bayesian_summary(
        estimate, std_error, direction="decrease", prior_mean=prior_mean, prior_sd=prior_sd
    )
    mirrored = bayesian_summary(
        -estimate, std_error, direction="increase", prior_mean=-prior_mean, prior_sd=prior_sd
    )
    assert lower_is_better.prob_better == pytest.approx(mirrored.prob_better, rel=1e-12)
    assert lower_is_better.expected_loss == pytest.approx(mirrored.expected_loss, rel=1e-12)
    assert lower_is_better.posterior_mean == pytest.approx(-mirrored.posterior_mean, rel=1e-12)
    assert lower_is_better.credible_low == pytest.approx(-mirrored.credible_high, rel=1e-12)


@pytest.mark.parametrize("prior_sd", [None, 0.05])
@pytest.mark.parametrize(
    ("estimate", "direction", "prob_better", "expected_loss"),
    [
        (0.03, "increase", 1.0, 0.0),
        (-0.03, "increase", 0.0, 0.03),
        (0.03, "decrease", 0.0, 0.03),
        (-0.03, "decrease", 1.0, 0.0),
        (0.0, "increase", 0.5, 0.0),
    ],
)
def test_zero_standard_error_is_a_point_posterior(
    estimate: float,
    direction: Direction,
    prob_better: float,
    expected_loss: float,
    prior_sd: float | None,
) -> None:
    result = bayesian_summary(estimate, 0.0, direction=direction, prior_sd=prior_sd)
    assert (result.posterior_mean, result.posterior_sd) == (estimate, 0.0)
    assert result.credible_low == result.credible_high == estimate
    assert (result.prob_better, result.expected_loss) == (prob_better, expected_loss)


def test_tiny_standard_error_approaches_the_point_limit() -> None:
    assert bayesian_summary(0.03, 1e-12).prob_better == 1.0
    assert bayesian_summary(-0.03, 1e-12).expected_loss == pytest.approx(0.03, rel=1e-12)
    assert bayesian_summary(0.0, 1e-12).prob_better == 0.5


def test_prior_sd_interpolates_between_prior_and_data() -> None:
    wide = bayesian_summary(0.02, 0.01, prior_mean=-0.5, prior_sd=1e6)
    flat = bayesian_summary(0.02, 0.01)
    assert wide.posterior_mean == pytest.approx(flat.posterior_mean, rel=1e-9)
    assert wide.credible_high == pytest.approx(flat.credible_high, rel=1e-9)
    narrow = bayesian_summary(0.02, 0.01, prior_mean=-0.5, prior_sd=1e-8)
    assert narrow.posterior_mean == pytest.approx(-0.5, rel=1e-6)
    assert narrow.posterior_sd == pytest.approx(1e-8, rel=1e-6)


def test_expected_loss_far_in_the_tail_is_tiny_and_non_negative() -> None:
    result = bayesian_summary(0.5, 0.01)  # z = 50: the loss underflows to 0
    assert result.prob_better == 1.0
    assert 0.0 <= result.expected_loss < 1e-300
    near = bayesian_summary(0.08, 0.01)  # z = 8: s (φ(8) - 8 Φ(-8)), by quadrature ~ 7.6e-18
    reference, _ = integrate.quad(
        lambda t: -t * stats.norm.pdf(t, 0.08, 0.01), -0.1, 0.0, epsabs=0.0, epsrel=1e-10
    )
    assert near.expected_loss == pytest.approx(reference, rel=1e-6)


def test_nan_inputs_give_a_nan_summary() -> None:
    for estimate, std_error in ((math.nan, 0.01), (0.02, math.nan)):
        result = bayesian_summary(estimate, std_error, prior_sd=0.1)
        numbers = (
            result.posterior_mean,
            result.posterior_sd,
            result.credible_low,
            result.credible_high,
            result.prob_better,
            result.expected_loss,
        )
        assert all(math.isnan(value) for value in numbers)
        assert result.prior == "normal(mean=0, sd=0.1)"


def test_result_fields_and_description() -> None:
    result = bayesian_summary(
        0.02, 0.01, direction="decrease", prior_mean=0.01, prior_sd=0.05, credible_level=0.9
    )
    assert isinstance(result, BayesianSummary)
    assert result.credible_level == 0.9
    assert result.direction == "decrease"
    assert result.prior == "normal(mean=0.01, sd=0.05)"
    assert "90% credible interval" in result.method
    assert "E[max(0, theta)]" in result.method
    with pytest.raises(AttributeError):
        result.prob_better = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "up"}, "direction must be one of"),
        ({"credible_level": 95.0}, "credible_level must be strictly between 0 and 1"),
        ({"estimate": math.inf}, "estimate must be finite"),
        ({"std_error": -0.01}, "standard error must be finite and non-negative"),
        ({"std_error": math.inf}, "standard error must be finite and non-negative"),
        ({"prior_mean": math.nan}, "prior_mean must be a finite number"),
        ({"prior_sd": 0.0}, "Use prior_sd=None for the flat"),
        ({"prior_sd": math.inf}, "prior_sd must be positive and finite"),
    ],
)
def test_invalid_inputs_are_explained(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"estimate": 0.02, "std_error": 0.01, **kwargs}
    with pytest.raises(ValueError, match=message):
        bayesian_summary(**arguments)  # type: ignore[arg-type]


# ── Beta-Binomial ────────────────────────────────────────────────────────────────────────────
from scipy import special  # noqa: E402

from exp_dagster.stats import beta_binomial_summary  # noqa: E402


def prob_b_beats_a(a: tuple[float, float], b: tuple[float, float]) -> float:
    """P(p_B > p_A) for integer Beta parameters, Evan Miller's closed-form sum (2015): an exact
    formula, independent of the quadrature the library uses."""
    alpha_a, beta_a = a
    alpha_b, beta_b = b
    i = np.arange(int(alpha_b))
    terms = (
        special.betaln(alpha_a + i, beta_a + beta_b)
        - np.log(beta_b + i)
        - special.betaln(1 + i, beta_b)
        - special.betaln(alpha_a, beta_a)
    )
    return float(np.exp(terms).sum())


@pytest.mark.parametrize(
    ("s_c", "n_c", "s_t", "n_t"),
    [(100, 1000, 130, 1000), (3, 40, 9, 35), (0, 50, 2, 50), (480, 5000, 455, 5100), (7, 7, 3, 9)],
)
def test_beta_binomial_matches_the_closed_forms(s_c: int, n_c: int, s_t: int, n_t: int) -> None:
    result = beta_binomial_summary(s_c, n_c, s_t, n_t)
    control, treatment = (1 + s_c, 1 + n_c - s_c), (1 + s_t, 1 + n_t - s_t)
    assert result.posterior_control == control and result.posterior_treatment == treatment
    assert result.mean_treatment == pytest.approx(treatment[0] / sum(treatment), rel=1e-15)
    assert result.prob_better == pytest.approx(prob_b_beats_a(control, treatment), abs=1e-9)
    low, high = result.credible_treatment
    assert stats.beta.cdf(low, *treatment) == pytest.approx(0.025, rel=1e-9)
    assert stats.beta.sf(high, *treatment) == pytest.approx(0.025, rel=1e-9)
    # decrease: the treatment is better when its proportion is lower
    lower_better = beta_binomial_summary(s_c, n_c, s_t, n_t, direction="decrease")
    assert lower_better.prob_better == pytest.approx(1.0 - result.prob_better, abs=1e-9)
    assert lower_better.expected_loss == pytest.approx(result.expected_loss_control, abs=1e-12)


def test_beta_binomial_expected_loss_by_monte_carlo(rng: np.random.Generator) -> None:
    result = beta_binomial_summary(30, 400, 22, 380, prior_a=2.0, prior_b=20.0)
    control = rng.beta(32.0, 390.0, size=4_000_000)
    treatment = rng.beta(24.0, 378.0, size=4_000_000)
    shortfall = np.maximum(control - treatment, 0.0)
    se = shortfall.std(ddof=1) / math.sqrt(shortfall.size)
    assert abs(result.expected_loss - shortfall.mean()) <= 4 * se
    gain = np.maximum(treatment - control, 0.0)
    assert abs(result.expected_loss_control - gain.mean()) <= 4 * gain.std(ddof=1) / 2000
    # E[max(0, c - t)] - E[max(0, t - c)] = E[c] - E[t], exactly.
    assert result.expected_loss - result.expected_loss_control == pytest.approx(
        result.mean_control - result.mean_treatment, abs=1e-10
    )


def test_beta_binomial_large_arms_agree_with_the_normal_summary() -> None:
    # At 200k units per arm the posteriors are nearly normal: P(better) is the normal one's.
    s_c, s_t, n = 20_000, 20_400, 200_000
    result = beta_binomial_summary(s_c, n, s_t, n)
    p_c, p_t = s_c / n, s_t / n
    se = math.sqrt(p_c * (1 - p_c) / n + p_t * (1 - p_t) / n)
    assert result.prob_better == pytest.approx(stats.norm.cdf((p_t - p_c) / se), abs=2e-3)


def test_beta_binomial_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="successes_treatment must be between 0"):
        beta_binomial_summary(1, 10, 11, 10)
    with pytest.raises(ValueError, match="prior's parameters must be positive"):
        beta_binomial_summary(1, 10, 1, 10, prior_a=0.0)
    with pytest.raises(ValueError, match="n_control must be at least 1"):
        beta_binomial_summary(0, 0, 1, 10)
