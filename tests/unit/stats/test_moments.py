from __future__ import annotations

import math

import numpy as np
import pytest

from exp_dagster.stats import CovariateMoments, Moments, RatioMoments


def test_moments_match_numpy(rng: np.random.Generator) -> None:
    y = rng.normal(3.0, 2.0, size=500)
    arm = Moments.from_values(y)
    assert arm.n == 500
    assert arm.mean == pytest.approx(y.mean(), rel=1e-12)
    assert arm.var == pytest.approx(y.var(ddof=1), rel=1e-10)


def test_ratio_moments_match_numpy(rng: np.random.Generator) -> None:
    x = rng.poisson(5.0, size=300).astype(float)
    y = rng.binomial(x.astype(int), 0.3).astype(float)
    arm = RatioMoments.from_values(y, x)
    assert arm.ratio == pytest.approx(y.sum() / x.sum(), rel=1e-12)
    assert (arm.mean_y, arm.mean_x) == pytest.approx((y.mean(), x.mean()), rel=1e-12)
    assert arm.var_y == pytest.approx(y.var(ddof=1), rel=1e-10)
    assert arm.var_x == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert arm.cov_yx == pytest.approx(np.cov(y, x, ddof=1)[0, 1], rel=1e-10)
    linearised = (y - y.sum() / x.sum() * x) / x.mean()
    assert arm.linearised_var == pytest.approx(linearised.var(ddof=1), rel=1e-9)
    assert math.isnan(RatioMoments.from_values([1.0, 2.0], [0.0, 0.0]).linearised_var)


def test_covariate_moments_match_numpy(rng: np.random.Generator) -> None:
    c = rng.normal(size=400)
    y = 2.0 + 0.5 * c + rng.normal(size=400)
    arm = CovariateMoments.from_values(y, c)
    assert (arm.mean_y, arm.mean_c) == pytest.approx((y.mean(), c.mean()), rel=1e-12)
    assert arm.var_y == pytest.approx(y.var(ddof=1), rel=1e-10)
    assert arm.var_c == pytest.approx(c.var(ddof=1), rel=1e-10)
    assert arm.cov_yc == pytest.approx(np.cov(y, c, ddof=1)[0, 1], rel=1e-10)


def test_fewer_than_two_units() -> None:
    one = Moments.from_values([4.0])
    assert (one.mean, one.var) == (4.0, 0.0)
    empty = Moments(n=0, sum_y=0.0, sum_y2=0.0)
    assert math.isnan(empty.mean)
    assert empty.var == 0.0
    assert RatioMoments.from_values([1.0], [2.0]).cov_yx == 0.0
    assert math.isnan(RatioMoments(0, 0.0, 0.0, 0.0, 0.0, 0.0).ratio)
    assert math.isnan(RatioMoments(0, 0.0, 0.0, 0.0, 0.0, 0.0).mean_x)
    assert math.isnan(CovariateMoments(0, 0.0, 0.0, 0.0, 0.0, 0.0).mean_c)


def test_zero_variance_is_never_negative() -> None:
    arm = Moments.from_values([1e8 + 0.1] * 7)
    assert arm.var == pytest.approx(0.0, abs=1e-6)
    assert arm.var >= 0.0


def test_invalid_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        Moments(n=-1, sum_y=0.0, sum_y2=0.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        Moments.from_values(np.ones((2, 2)))
    with pytest.raises(ValueError, match="one value per unit each"):
        RatioMoments.from_values([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one value per unit each"):
        CovariateMoments.from_values([1.0, 2.0], [1.0])
