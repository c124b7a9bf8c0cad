from __future__ import annotations

import math

import pytest
from scipy import stats

from exp_dagster.stats._common import (
    check_alpha,
    check_alternative,
    confidence_interval,
    critical_value,
    infer,
    p_value,
    welch_df,
)


@pytest.mark.parametrize("df", [3.0, 17.5, math.inf])
def test_critical_value_matches_scipy(df: float) -> None:
    dist = stats.norm() if math.isinf(df) else stats.t(df)
    assert critical_value(0.05, "two-sided", df) == pytest.approx(dist.ppf(0.975), rel=1e-12)
    assert critical_value(0.1, "greater", df) == pytest.approx(dist.ppf(0.9), rel=1e-12)
    assert critical_value(0.1, "less", df) == pytest.approx(dist.ppf(0.9), rel=1e-12)


@pytest.mark.parametrize("df", [4.0, math.inf])
@pytest.mark.parametrize("statistic", [-2.5, 0.0, 1.3])
def test_p_value_matches_scipy(statistic: float, df: float) -> None:
    dist = stats.norm() if math.isinf(df) else stats.t(df)
    assert p_value(statistic, "greater", df) == pytest.approx(dist.sf(statistic), rel=1e-12)
    assert p_value(statistic, "less", df) == pytest.approx(dist.cdf(statistic), rel=1e-12)
    assert p_value(statistic, "two-sided", df) == pytest.approx(
        2 * dist.sf(abs(statistic)), rel=1e-12
    )


def test_p_value_of_nan_and_infinite_statistics() -> None:
    assert math.isnan(p_value(math.nan, "two-sided"))
    assert p_value(math.inf, "two-sided", 5.0) == 0.0
    assert p_value(math.inf, "greater") == 0.0
    assert p_value(math.inf, "less") == 1.0


def test_one_sided_intervals_are_open_on_one_side() -> None:
    assert confidence_interval(1.0, 0.5, 2.0, "two-sided") == (0.0, 2.0)
    assert confidence_interval(1.0, 0.5, 2.0, "greater") == (0.0, math.inf)
    assert confidence_interval(1.0, 0.5, 2.0, "less") == (-math.inf, 2.0)
    assert confidence_interval(1.0, 0.0, math.nan, "two-sided") == (1.0, 1.0)


def test_zero_standard_error() -> None:
    no_difference = infer(0.0, 0.0, alpha=0.05, alternative="two-sided")
    assert (no_difference.statistic, no_difference.p_value) == (0.0, 1.0)
    assert (no_difference.ci_low, no_difference.ci_high) == (0.0, 0.0)
    difference = infer(-2.0, 0.0, alpha=0.05, alternative="two-sided", df=9.0)
    assert (difference.statistic, difference.p_value) == (-math.inf, 0.0)
    assert infer(-2.0, 0.0, alpha=0.05, alternative="greater").p_value == 1.0


def test_welch_df_limits() -> None:
    assert welch_df(0.0, 0.0, 10, 20) == math.inf
    assert welch_df(0.0, 1.0, 10, 20) == pytest.approx(19.0)
    assert welch_df(1.0, 1.0, 11, 11) == pytest.approx(20.0)


def test_invalid_alpha_and_alternative_are_explained() -> None:
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        check_alpha(1.0)
    with pytest.raises(ValueError, match="alternative must be one of 'two-sided'"):
        check_alternative("larger")
