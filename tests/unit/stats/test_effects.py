from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import EffectEstimate, Moments, relative_lift, welch_test


def test_relative_lift_closed_form_on_hand_numbers() -> None:
    # mc = 10, mt = 11, Var(mean_c) = 0.25, Var(mean_t) = 0.36:
    # Var(lift) = 0.36 / 10**2 + 11**2 * 0.25 / 10**4 = 0.0036 + 0.003025 = 0.006625.
    lift, low, high = relative_lift(10.0, 11.0, 0.25, 0.36, alpha=0.05, alternative="two-sided")
    margin = 1.959963984540054 * math.sqrt(0.006625)
    assert lift == pytest.approx(0.1, rel=1e-12)
    assert (low, high) == pytest.approx((0.1 - margin, 0.1 + margin), rel=1e-12)


def test_relative_lift_one_sided_and_given_critical_value() -> None:
    z = stats.norm.ppf(0.95)
    se = math.sqrt(0.006625)
    assert relative_lift(10.0, 11.0, 0.25, 0.36, alpha=0.05, alternative="greater") == (
        pytest.approx(0.1),
        pytest.approx(0.1 - z * se),
        math.inf,
    )
    assert relative_lift(10.0, 11.0, 0.25, 0.36, alpha=0.05, alternative="less") == (
        pytest.approx(0.1),
        -math.inf,
        pytest.approx(0.1 + z * se),
    )
    _, low, high = relative_lift(
        10.0, 11.0, 0.25, 0.36, alpha=0.05, alternative="two-sided", crit=3.0
    )
    assert (low, high) == pytest.approx((0.1 - 3.0 * se, 0.1 + 3.0 * se))


def test_relative_lift_is_nan_when_control_is_zero() -> None:
    result = relative_lift(0.0, 0.5, 0.01, 0.01, alpha=0.05, alternative="greater")
    assert all(math.isnan(value) for value in result)


def test_relative_lift_with_negative_control_mean() -> None:
    lift, low, high = relative_lift(-2.0, -3.0, 0.01, 0.01, alpha=0.05, alternative="two-sided")
    assert lift == pytest.approx(0.5)
    assert low < lift < high


def test_relative_lift_matches_monte_carlo(rng: np.random.Generator) -> None:
    mean_control, mean_treatment, var_control, var_treatment = 20.0, 21.0, 0.09, 0.16
    draws = 400_000
    control = rng.normal(mean_control, math.sqrt(var_control), size=draws)
    treatment = rng.normal(mean_treatment, math.sqrt(var_treatment), size=draws)
    simulated = treatment / control - 1.0
    lift, low, high = relative_lift(
        mean_control,
        mean_treatment,
        var_control,
        var_treatment,
        alpha=0.05,
        alternative="two-sided",
    )
    delta_se = (high - low) / (2 * stats.norm.ppf(0.975))
    assert simulated.std() == pytest.approx(delta_se, rel=0.01)
    # The delta method is first order; the ratio's mean carries the second-order bias
    # mt / mc * Var(mean_c) / mc**2, which the simulation must show.
    second_order = mean_treatment / mean_control * var_control / mean_control**2
    assert simulated.mean() == pytest.approx(lift + second_order, abs=1e-4)


def test_effect_estimate_is_frozen() -> None:
    estimate = EffectEstimate(
        mean_control=1.0,
        mean_treatment=1.1,
        abs_effect=0.1,
        abs_ci_low=0.0,
        abs_ci_high=0.2,
        rel_effect=0.1,
        rel_ci_low=0.0,
        rel_ci_high=0.2,
        p_value=0.05,
        statistic=1.96,
        std_error=0.05,
        n_control=10,
        n_treatment=10,
        method="test",
    )
    assert estimate.variance_reduction is None
    assert estimate.relative_ci == "delta"
    with pytest.raises(dataclasses.FrozenInstanceError):
        estimate.p_value = 0.5  # type: ignore[misc]


def test_relative_standard_error_and_df_are_carried_for_any_relative_interval() -> None:
    """``rel_std_error`` is the delta-method standard error of the lift computed from the raw
    data, and ``df`` scipy's Welch degrees of freedom, whichever relative interval was chosen."""
    rng = np.random.default_rng(5)
    control, treatment = rng.normal(10.0, 3.0, 80), rng.normal(11.0, 5.0, 120)
    var_c, var_t = control.var(ddof=1) / control.size, treatment.var(ddof=1) / treatment.size
    m_c, m_t = control.mean(), treatment.mean()
    expected_se = np.sqrt(var_t / m_c**2 + m_t**2 * var_c / m_c**4)
    scipy_df = stats.ttest_ind(treatment, control, equal_var=False).df
    for relative_ci in ("delta", "fieller"):
        result = welch_test(
            Moments.from_values(control), Moments.from_values(treatment), relative_ci=relative_ci
        )
        assert result.rel_std_error == pytest.approx(expected_se, rel=1e-9)
        assert result.df == pytest.approx(scipy_df, rel=1e-9)
