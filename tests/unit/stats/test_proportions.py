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
