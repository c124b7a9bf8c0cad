from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats import proportion

from exp_dagster.stats import Alternative, two_proportion_test

ALTERNATIVES: list[Alternative] = ["two-sided", "greater", "less"]
STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}
CASES = [(120, 1000, 150, 1000), (30, 400, 22, 650), (9, 50, 17, 48)]


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), CASES)
def test_pooled_matches_statsmodels_proportions_ztest(
    s_c: int, n_c: int, s_t: int, n_t: int, alternative: Alternative
) -> None:
    result = two_proportion_test(s_c, n_c, s_t, n_t, alternative=alternative)
    statistic, p_value = proportion.proportions_ztest(
        [s_t, s_c], [n_t, n_c], alternative=STATSMODELS_ALTERNATIVE[alternative]
    )
    assert result.statistic == pytest.approx(statistic, rel=1e-10)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), CASES)
def test_unpooled_matches_statsmodels_wald(
    s_c: int, n_c: int, s_t: int, n_t: int, alternative: Alternative
) -> None:
    result = two_proportion_test(s_c, n_c, s_t, n_t, alternative=alternative, pooled=False)
    reference = proportion.test_proportions_2indep(
        s_t,
        n_t,
        s_c,
        n_c,
        method="wald",
        compare="diff",
        alternative=STATSMODELS_ALTERNATIVE[alternative],
    )
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)


@pytest.mark.parametrize("pooled", [True, False])
@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), CASES)
def test_interval_is_always_the_unpooled_wald_interval(
    s_c: int, n_c: int, s_t: int, n_t: int, pooled: bool
) -> None:
    for alpha in (0.05, 0.2):
        result = two_proportion_test(s_c, n_c, s_t, n_t, alpha=alpha, pooled=pooled)
        low, high = proportion.confint_proportions_2indep(
            s_t, n_t, s_c, n_c, method="wald", compare="diff", alpha=alpha
        )
        assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx((low, high), rel=1e-10)
        # A one-sided 1 - alpha/2 bound is one end of the two-sided 1 - alpha interval.
        greater = two_proportion_test(
            s_c, n_c, s_t, n_t, alpha=alpha / 2, alternative="greater", pooled=pooled
        )
        less = two_proportion_test(
            s_c, n_c, s_t, n_t, alpha=alpha / 2, alternative="less", pooled=pooled
        )
        assert (greater.abs_ci_low, greater.abs_ci_high) == (pytest.approx(low), math.inf)
        assert (less.abs_ci_low, less.abs_ci_high) == (-math.inf, pytest.approx(high))


def test_relative_lift_by_delta_method() -> None:
    result = two_proportion_test(100, 1000, 130, 1200)
    p_c, p_t = 0.1, 130 / 1200
    var_c, var_t = p_c * (1 - p_c) / 1000, p_t * (1 - p_t) / 1200
    se = math.sqrt(var_t / p_c**2 + p_t**2 * var_c / p_c**4)
    z = 1.959963984540054
    assert (result.mean_control, result.mean_treatment) == pytest.approx((p_c, p_t))
    assert result.rel_effect == pytest.approx(p_t / p_c - 1)
    assert (result.rel_ci_low, result.rel_ci_high) == pytest.approx(
        (p_t / p_c - 1 - z * se, p_t / p_c - 1 + z * se), rel=1e-10
    )
    assert result.std_error == pytest.approx(math.sqrt(var_c + var_t), rel=1e-12)
    assert "pooled variance for the p-value, unpooled Wald CI" in result.method


def test_no_events_anywhere() -> None:
    result = two_proportion_test(0, 500, 0, 500)
    assert (result.abs_effect, result.statistic, result.p_value) == (0.0, 0.0, 1.0)
    assert (result.abs_ci_low, result.abs_ci_high) == (0.0, 0.0)
    assert math.isnan(result.rel_effect) and math.isnan(result.rel_ci_low)


def test_zero_control_rate_gives_nan_relative_fields() -> None:
    result = two_proportion_test(0, 500, 7, 500)
    assert result.abs_effect == pytest.approx(0.014)
    assert result.p_value < 0.05
    assert all(math.isnan(v) for v in (result.rel_effect, result.rel_ci_low, result.rel_ci_high))


def test_invalid_counts_are_explained() -> None:
    with pytest.raises(ValueError, match=r"successes_treatment must be between 0 and n_treatment"):
        two_proportion_test(1, 10, 11, 10)
    with pytest.raises(ValueError, match=r"successes_control must be between 0 and n_control"):
        two_proportion_test(-1, 10, 1, 10)
    with pytest.raises(ValueError, match="at least 1 unit in each arm"):
        two_proportion_test(0, 0, 1, 10)


@pytest.mark.parametrize("pooled", [True, False])
def test_false_positive_rate_is_alpha(rng: np.random.Generator, pooled: bool) -> None:
    reps, n, rate = 2000, 2000, 0.1
    successes = rng.binomial(n, rate, size=(reps, 2))
    rejections = [
        two_proportion_test(int(c), n, int(t), n, pooled=pooled).p_value < 0.05
        for c, t in successes
    ]
    assert 0.035 <= np.mean(rejections) <= 0.065


# ── Yates' continuity correction and Fisher's exact test ─────────────────────────────────────
from scipy import stats  # noqa: E402

from exp_dagster.stats import fisher_exact_test  # noqa: E402


@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), [*CASES, (3, 12, 9, 14), (0, 20, 4, 20)])
def test_yates_matches_scipy_chi2_contingency(s_c: int, n_c: int, s_t: int, n_t: int) -> None:
    result = two_proportion_test(s_c, n_c, s_t, n_t, continuity=True)
    table = [[s_t, n_t - s_t], [s_c, n_c - s_c]]
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=True)
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-10)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert math.copysign(1.0, result.statistic) == math.copysign(1.0, s_t / n_t - s_c / n_c)
    plain = two_proportion_test(s_c, n_c, s_t, n_t)
    c = 0.5 * (1 / n_c + 1 / n_t)
    assert result.abs_ci_low == pytest.approx(plain.abs_ci_low - c, abs=1e-15)
    assert result.abs_ci_high == pytest.approx(plain.abs_ci_high + c, abs=1e-15)
    assert result.p_value >= plain.p_value
    assert "Yates" in result.method


def test_yates_one_sided_written_out() -> None:
    s_c, n_c, s_t, n_t = 30, 400, 22, 650
    p_c, p_t = s_c / n_c, s_t / n_t
    pooled = (s_c + s_t) / (n_c + n_t)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    c = 0.5 * (1 / n_c + 1 / n_t)
    less = two_proportion_test(s_c, n_c, s_t, n_t, alternative="less", continuity=True)
    assert less.statistic == pytest.approx((p_t - p_c + c) / se, rel=1e-12)
    assert less.p_value == pytest.approx(stats.norm.cdf((p_t - p_c + c) / se), rel=1e-12)
    greater = two_proportion_test(s_c, n_c, s_t, n_t, alternative="greater", continuity=True)
    assert greater.statistic == pytest.approx((p_t - p_c - c) / se, rel=1e-12)
    # A difference smaller than the correction is no evidence at all, two-sided.
    assert two_proportion_test(50, 100, 50, 101, continuity=True).p_value == 1.0


def test_fisher_matches_r_fisher_test_on_the_tea_tasting_data() -> None:
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2)): p = 0.4857, odds ratio 6.408309;
    # alternative = "greater": p = 0.2429, 95% CI [0.3135693, Inf] (R's ?fisher.test example).
    # Treatment 3 of 4 with the event, control 1 of 4.
    two_sided = fisher_exact_test(1, 4, 3, 4)
    assert two_sided.p_value == pytest.approx(0.4857, abs=5e-5)
    assert two_sided.odds_ratio == pytest.approx(6.408309, rel=1e-5)
    greater = fisher_exact_test(1, 4, 3, 4, alternative="greater")
    assert greater.p_value == pytest.approx(0.2429, abs=5e-5)
    # R finds the bound with uniroot's default tolerance, scipy to more digits: 1.4e-5 apart.
    assert greater.ci_low == pytest.approx(0.3135693, rel=1e-4)
    assert greater.ci_high == math.inf
    assert greater.sample_odds_ratio == 9.0


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(
    ("s_c", "n_c", "s_t", "n_t"), [(2, 15, 7, 13), (0, 30, 3, 25), (10, 10, 4, 9)]
)
def test_fisher_p_value_is_the_hypergeometric_sum(
    s_c: int, n_c: int, s_t: int, n_t: int, alternative: Alternative
) -> None:
    # Margins fixed: the treatment's count is hypergeometric(N, K, n_t).
    total, events = n_c + n_t, s_c + s_t
    support = np.arange(max(0, events - n_c), min(events, n_t) + 1)
    pmf = stats.hypergeom.pmf(support, total, events, n_t)
    observed = stats.hypergeom.pmf(s_t, total, events, n_t)
    if alternative == "greater":
        expected = pmf[support >= s_t].sum()
    elif alternative == "less":
        expected = pmf[support <= s_t].sum()
    else:
        expected = pmf[pmf <= observed * (1 + 1e-7)].sum()
    result = fisher_exact_test(s_c, n_c, s_t, n_t, alternative=alternative)
    assert result.p_value == pytest.approx(min(1.0, expected), rel=1e-9)


def test_fisher_size_never_exceeds_alpha() -> None:
    # Exact size, over every outcome of two arms of 12 with a common proportion: at most alpha.
    n, alpha = 12, 0.05
    for p in (0.1, 0.3, 0.5):
        pmf = stats.binom.pmf(np.arange(n + 1), n, p)
        size = sum(
            pmf[a] * pmf[b]
            for a in range(n + 1)
            for b in range(n + 1)
            if fisher_exact_test(a, n, b, n).p_value < alpha
        )
        assert size <= alpha


def test_fisher_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes_treatment must be between 0"):
        fisher_exact_test(1, 4, 5, 4)
    with pytest.raises(ValueError, match="at least 1 unit"):
        fisher_exact_test(0, 0, 1, 4)
