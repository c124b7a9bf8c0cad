"""The printed relative interval and the p-value agree (issue 17, item 3).

Fieller's set for the ratio r = treatment / control is ``{r : (mt - r mc)**2 <= crit**2 (vt +
r**2 vc)}``; at r = 1 its inequality is the absolute test's ``(mt - mc)**2 <= crit**2 (vt +
vc)``. So lift 0 is in the set exactly when the absolute test does not reject, whatever the
inputs. These tests check that claim on many random inputs, that the interval reported agrees
with the p-value whenever it is bounded, what is reported when it is not (a control mean near
0), and that the delta method does not agree (the case the issue found).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.effects import EffectEstimate, _effect_from_means
from exp_dagster.stats.means import welch_test
from exp_dagster.stats.moments import Moments, RatioMoments
from exp_dagster.stats.proportions import two_proportion_test
from exp_dagster.stats.ratio import ratio_test
from exp_dagster.stats.regression import CrossMoments, cuped_ratio_test
from exp_dagster.stats.stratification import post_stratified_test

DRAWS = 20_000


def _random_effects(
    seed: int, alternative: Alternative, relative_ci: str = "fieller"
) -> list[EffectEstimate]:
    """Arm summaries over many orders of magnitude: control means of either sign and near 0,
    effects near the significance boundary, Student t (Welch df) and normal references."""
    rng = np.random.default_rng(seed)
    effects = []
    for _ in range(DRAWS):
        var_control, var_treatment = np.exp(rng.uniform(-6.0, 2.0, 2))
        se = math.sqrt(var_control + var_treatment)
        mean_control = float(rng.choice([-1.0, 1.0]) * np.exp(rng.uniform(-4.0, 3.0)))
        if alternative != "two-sided":
            mean_control = abs(mean_control)  # one-sided bounds need the control's sign known
        z = float(rng.normal(0.0, 2.5))
        df = math.inf if rng.random() < 0.5 else float(rng.uniform(3.0, 500.0))
        effects.append(
            _effect_from_means(
                mean_control=mean_control,
                mean_treatment=mean_control + z * se,
                var_mean_control=float(var_control),
                var_mean_treatment=float(var_treatment),
                n_control=100,
                n_treatment=100,
                alpha=0.05,
                alternative=alternative,
                method="test",
                df=df,
                relative_ci=relative_ci,  # type: ignore[arg-type]
            )
        )
    return effects


def _excludes_zero(low: float, high: float) -> bool:
    return low > 0.0 or high < 0.0


def _rejects(effect: EffectEstimate, alpha: float = 0.05) -> bool:
    return effect.p_value < alpha


def _tie(effect: EffectEstimate) -> bool:
    """p-values within rounding of alpha: either answer is right."""
    return abs(effect.p_value - 0.05) < 1e-9


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_fieller_excludes_zero_exactly_when_the_test_rejects(alternative: Alternative) -> None:
    effects = [e for e in _random_effects(17, alternative) if not _tie(e)]
    finite = [math.isfinite(e.rel_ci_low) or math.isfinite(e.rel_ci_high) for e in effects]
    bounded = [e for e, is_finite in zip(effects, finite, strict=True) if is_finite]
    # Both regimes are well represented, and both decisions among the bounded.
    assert DRAWS // 3 < len(bounded) < len(effects) - DRAWS // 50
    assert 0.2 < np.mean([_rejects(e) for e in bounded]) < 0.8
    for effect in bounded:
        assert _excludes_zero(effect.rel_ci_low, effect.rel_ci_high) == _rejects(effect), effect
        assert _excludes_zero(effect.abs_ci_low, effect.abs_ci_high) == _rejects(effect), effect


def test_unbounded_fieller_sets_still_agree_with_the_test() -> None:
    """When the control mean is not significantly different from 0 the set is the whole line or
    the complement of an interval, reported as (-inf, inf); the exact set (checked at r = 1,
    independently of the code) holds lift 0 exactly when the test does not reject. The printed
    (-inf, inf) then contains 0 even where the test rejects, which is why the method text says
    the p-value decides there."""
    unbounded = [
        e
        for e in _random_effects(18, "two-sided")
        if not _tie(e)
        and math.isinf(e.rel_ci_low)
        and math.isinf(e.rel_ci_high)
        # at ratio 1 the arm variances are not identified from the estimate
        and not math.isclose((e.mean_treatment / e.mean_control) ** 2, 1.0)
    ]
    rejected = 0
    for effect in unbounded:
        crit = (effect.abs_ci_high - effect.abs_effect) / effect.std_error
        var_control_mean = _var_control_mean(effect)
        assert effect.mean_control**2 <= crit**2 * var_control_mean * (1 + 1e-9)  # g >= 1
        var_sum = effect.std_error**2
        one_in_set = (effect.mean_treatment - effect.mean_control) ** 2 <= crit**2 * var_sum
        assert one_in_set == (not _rejects(effect))
        rejected += _rejects(effect)
    assert len(unbounded) > 500 and rejected > 50


def _var_control_mean(effect: EffectEstimate) -> float:
    """The control mean's variance, from the delta-method standard error of the lift (the
    inputs are not kept on the estimate): se_rel**2 mc**2 = vt + r**2 vc and vt + vc = se**2."""
    ratio = effect.mean_treatment / effect.mean_control
    lhs = effect.rel_std_error**2 * effect.mean_control**2
    return (lhs - effect.std_error**2) / (ratio**2 - 1.0)


def test_the_delta_method_can_contradict_the_p_value() -> None:
    """The issue's case: significant by its p-value, absolute CI excluding 0, relative CI by the
    delta method covering 0 (a noisy control mean: here its coefficient of variation is 0.3)."""
    effect = _effect_from_means(
        mean_control=1.0,
        mean_treatment=1.7,
        var_mean_control=0.09,
        var_mean_treatment=0.0,
        n_control=100,
        n_treatment=100,
        alpha=0.05,
        alternative="two-sided",
        method="test",
        relative_ci="delta",
    )
    assert effect.p_value == pytest.approx(0.0196, abs=1e-4)
    assert effect.abs_ci_low > 0.0 and effect.rel_ci_low < 0.0
    fieller = _effect_from_means(
        mean_control=1.0,
        mean_treatment=1.7,
        var_mean_control=0.09,
        var_mean_treatment=0.0,
        n_control=100,
        n_treatment=100,
        alpha=0.05,
        alternative="two-sided",
        method="test",
        relative_ci="fieller",
    )
    assert fieller.rel_ci_low > 0.0
    disagreements = [
        e
        for e in _random_effects(19, "two-sided", relative_ci="delta")
        if math.isfinite(e.rel_ci_low)
        and _excludes_zero(e.rel_ci_low, e.rel_ci_high) != _rejects(e)
    ]
    assert len(disagreements) > DRAWS // 100


def test_welch_and_ratio_tests_on_data_agree_with_their_p_values() -> None:
    """The public tests on simulated units near the significance boundary."""
    rng = np.random.default_rng(20)
    checked = 0
    for _ in range(2_000):
        n = int(rng.integers(5, 200))
        scale = float(np.exp(rng.uniform(-1.0, 1.0)))
        control = rng.lognormal(0.0, scale, n)
        treatment = rng.lognormal(0.0, scale, n) * max(0.1, 1.0 + rng.normal(0.0, 0.3))
        welch = welch_test(
            Moments.from_values(control), Moments.from_values(treatment), relative_ci="fieller"
        )
        clicks_c, clicks_t = rng.poisson(control), rng.poisson(treatment)
        ratio = ratio_test(
            RatioMoments.from_values(clicks_c, control + 1.0),
            RatioMoments.from_values(clicks_t, treatment + 1.0),
            relative_ci="fieller",
        )
        for effect in (welch, ratio):
            if _tie(effect) or not math.isfinite(effect.rel_ci_low):
                continue
            assert _excludes_zero(effect.rel_ci_low, effect.rel_ci_high) == _rejects(effect)
            checked += 1
    assert checked > 3_000


def test_proportions_agree_with_the_absolute_interval() -> None:
    """The two-proportion test's p-value uses the pooled variance and its intervals the
    unpooled one. Fieller's relative interval agrees with the absolute (unpooled) interval
    always; with the p-value, always when the arms are equal (the pooled standard error is then
    never the smaller), and otherwise except at the margin."""
    rng = np.random.default_rng(21)
    for _ in range(5_000):
        n_control = int(rng.integers(20, 5_000))
        n_treatment = n_control if rng.random() < 0.5 else int(rng.integers(20, 5_000))
        rate = float(rng.uniform(0.01, 0.5))
        successes_c = int(rng.binomial(n_control, rate))
        successes_t = int(rng.binomial(n_treatment, rate * (1.0 + rng.normal(0.0, 0.2))))
        if successes_c == 0:
            continue
        effect = two_proportion_test(
            successes_c,
            n_control,
            min(successes_t, n_treatment),
            n_treatment,
            relative_ci="fieller",
        )
        if not math.isfinite(effect.rel_ci_low):
            continue
        relative = _excludes_zero(effect.rel_ci_low, effect.rel_ci_high)
        assert relative == _excludes_zero(effect.abs_ci_low, effect.abs_ci_high)
        if n_control == n_treatment and _rejects(effect):
            assert relative


def test_cuped_ratio_and_post_stratified_tests_take_fieller() -> None:
    """The two tests that had only the delta method: Fieller's interval, named in the method,
    excluding 0 exactly when the p-value is below alpha."""
    rng = np.random.default_rng(22)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(10, 300))
        lift = float(rng.normal(0.0, 0.15))

        def arm(scale: float, n: int = n) -> CrossMoments:
            impressions = rng.poisson(10.0, n) + 1.0
            before = rng.poisson(10.0, n) + 1.0
            clicks_before = rng.binomial(before.astype(int), 0.1)
            clicks = rng.binomial(impressions.astype(int), min(0.9, 0.1 * scale))
            values = np.column_stack([clicks, impressions, clicks_before, before])
            return CrossMoments.from_values(values, names=("y", "x", "y_pre", "x_pre"))

        ratio = cuped_ratio_test(arm(1.0), arm(1.0 + lift), relative_ci="fieller")
        strata = [
            (
                Moments.from_values(rng.normal(5.0 + s, 2.0, n)),
                Moments.from_values(rng.normal((5.0 + s) * (1.0 + lift), 2.0, n)),
            )
            for s in range(3)
        ]
        stratified = post_stratified_test(
            [c for c, _ in strata], [t for _, t in strata], relative_ci="fieller"
        )
        for effect in (ratio, stratified):
            assert effect.relative_ci == "fieller" and "Fieller" in effect.method
            if _tie(effect) or not math.isfinite(effect.rel_ci_low):
                continue
            assert _excludes_zero(effect.rel_ci_low, effect.rel_ci_high) == _rejects(effect)
            checked += 1
    assert checked > 500
