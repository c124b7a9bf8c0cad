from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from scipy import special
from statsmodels.stats.multitest import multipletests

from exp_dagster.stats.multiplicity import (
    AdjustedPValue,
    MultiplicityMethod,
    adjust_family,
    adjust_p_values,
    benjamini_hochberg,
    benjamini_yekutieli,
    bonferroni,
    hochberg,
    holm,
    holm_sidak,
    sidak,
)

STATSMODELS_NAMES: dict[MultiplicityMethod, str] = {
    "bonferroni": "bonferroni",
    "holm": "holm",
    "benjamini-hochberg": "fdr_bh",
    "sidak": "sidak",
    "holm-sidak": "holm-sidak",
    "hochberg": "simes-hochberg",
    "benjamini-yekutieli": "fdr_by",
}
ADJUSTING: list[MultiplicityMethod] = list(STATSMODELS_NAMES)


@pytest.fixture
def skip_statsmodels_gc(monkeypatch: pytest.MonkeyPatch) -> None:
    """statsmodels' Holm runs ``gc.collect()`` on every family (~0.1 s once Dagster is loaded);
    it does not change any result, so it is stubbed for the comparisons."""
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)


def one_sided_p_values(
    rng: np.random.Generator, *, reps: int, shifts: np.ndarray, rho: float = 0.0
) -> np.ndarray:
    """``(reps, m)`` one-sided p-values ``P(Z > z)`` of z statistics with means ``shifts``.

    The statistics are equicorrelated with correlation ``rho`` (a shared factor), independent for
    ``rho = 0``; a shift of 0 is a true null hypothesis, whose p-value is uniform.
    """
    m = shifts.size
    shared = rng.normal(size=(reps, 1))
    own = rng.normal(size=(reps, m))
    z = shifts + math.sqrt(rho) * shared + math.sqrt(1.0 - rho) * own
    return special.ndtr(-z)


def random_families(seed: int) -> list[np.ndarray]:
    """Families of several sizes, mixing uniform (null) and small (Beta) p-values."""
    rng = np.random.default_rng(seed)
    families = []
    for m in (2, 3, 5, 10, 37, 200):
        small = rng.beta(0.3, 8.0, size=m // 3)
        families.append(rng.permutation(np.concatenate([rng.uniform(size=m - small.size), small])))
    return families


@pytest.mark.parametrize("method", ADJUSTING)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.usefixtures("skip_statsmodels_gc")
def test_matches_statsmodels_on_random_p_values(method: MultiplicityMethod, seed: int) -> None:
    for family in random_families(seed):
        reject, reference, _, _ = multipletests(
            family, alpha=0.05, method=STATSMODELS_NAMES[method]
        )
        adjusted = adjust_p_values(family.tolist(), method)
        np.testing.assert_allclose(adjusted, reference, rtol=0.0, atol=1e-12)
        labelled = adjust_family(
            {f"metric_{i}": p for i, p in enumerate(family)}, method=method, alpha=0.05
        )
        assert [result.rejected for result in labelled.values()] == reject.tolist()


@pytest.mark.parametrize("method", ADJUSTING)
@pytest.mark.usefixtures("skip_statsmodels_gc")
# statsmodels' own Šidák computes log1p(-1) for p = 1 (with a warning) and gets 1, as we do
@pytest.mark.filterwarnings("ignore:divide by zero encountered in log1p:RuntimeWarning")
def test_matches_statsmodels_with_ties_zeros_and_ones(method: MultiplicityMethod) -> None:
    rng = np.random.default_rng(7)
    for _ in range(8):
        family = rng.choice([0.0, 0.001, 0.013, 0.013, 0.021, 0.3, 0.3, 1.0], size=12)
        _, reference, _, _ = multipletests(family, method=STATSMODELS_NAMES[method])
        adjusted = adjust_p_values(family.tolist(), method)
        np.testing.assert_allclose(adjusted, reference, rtol=0.0, atol=1e-12)
        # Tied raw p-values get the same adjusted value whatever their positions.
        for value in np.unique(family):
            assert len({adjusted[i] for i in np.flatnonzero(family == value)}) == 1


def test_named_functions_are_the_methods() -> None:
    family = [0.002, 0.04, 0.011, 0.5, 0.03]
    assert bonferroni(family) == adjust_p_values(family, "bonferroni")
    assert holm(family) == adjust_p_values(family, "holm")
    assert benjamini_hochberg(family) == adjust_p_values(family, "benjamini-hochberg")
    assert sidak(family) == adjust_p_values(family, "sidak")
    assert holm_sidak(family) == adjust_p_values(family, "holm-sidak")
    assert hochberg(family) == adjust_p_values(family, "hochberg")
    assert benjamini_yekutieli(family) == adjust_p_values(family, "benjamini-yekutieli")
    assert adjust_p_values(family, "none") == tuple(family)


def test_every_method_is_a_spec_option() -> None:
    from typing import get_args

    from exp_dagster.spec import MultiplicityMethod as SpecMethod
    from exp_dagster.stats.multiplicity import ERROR_RATES, MULTIPLICITY_METHODS

    assert set(get_args(SpecMethod)) == set(MULTIPLICITY_METHODS) == set(ERROR_RATES)
    from exp_dagster.spec import AnalysisPolicy

    policy = AnalysisPolicy.model_validate({"secondary_multiplicity": "benjamini-yekutieli"})
    assert policy.secondary_multiplicity == "benjamini-yekutieli"


def test_hand_computed_values() -> None:
    family = [0.04, 0.01, 0.03, 0.005]
    # Sorted 0.005, 0.01, 0.03, 0.04 (m = 4).
    # Holm: 4*0.005, 3*0.01, 2*0.03, 1*0.04 -> running max 0.02, 0.03, 0.06, 0.06.
    assert holm(family) == pytest.approx((0.06, 0.03, 0.06, 0.02), abs=1e-15)
    # BH: 4/1*0.005, 4/2*0.01, 4/3*0.03, 4/4*0.04 -> running min from the top 0.02, 0.02, 0.04,
    # 0.04.
    assert benjamini_hochberg(family) == pytest.approx((0.04, 0.02, 0.04, 0.02), abs=1e-15)
    assert bonferroni(family) == pytest.approx((0.16, 0.04, 0.12, 0.02), abs=1e-15)
    # Hochberg: (m - i + 1) p_(i) = 0.02, 0.03, 0.06, 0.04 -> running min from the top 0.02, 0.03,
    # 0.04, 0.04.
    assert hochberg(family) == pytest.approx((0.04, 0.03, 0.04, 0.02), abs=1e-15)
    # Šidák: 1 - (1 - p)^4; Holm-Šidák: 1 - (1 - p_(i))^(4 - i + 1), running max.
    assert sidak(family) == pytest.approx(tuple(1 - (1 - p) ** 4 for p in family), abs=1e-15)
    steps = [1 - (1 - 0.005) ** 4, 1 - (1 - 0.01) ** 3, 1 - (1 - 0.03) ** 2, 0.04]
    running = [max(steps[: i + 1]) for i in range(4)]
    assert holm_sidak(family) == pytest.approx(
        (running[3], running[1], running[2], running[0]), abs=1e-15
    )
    # Benjamini-Yekutieli: BH's values times c(4) = 1 + 1/2 + 1/3 + 1/4 = 25/12.
    assert benjamini_yekutieli(family) == pytest.approx(
        tuple(q * 25 / 12 for q in (0.04, 0.02, 0.04, 0.02)), abs=1e-15
    )


def test_sidak_keeps_the_digits_of_tiny_p_values() -> None:
    # 1 - (1 - 1e-17)**3 is 0 in floating point; the adjusted value is 3e-17 to 1e-16 relative.
    assert sidak([1e-17, 0.5, 0.5])[0] == pytest.approx(3e-17, rel=1e-12)


@pytest.mark.parametrize("method", [*ADJUSTING, "none"])
def test_single_hypothesis_is_unadjusted(method: MultiplicityMethod) -> None:
    assert adjust_p_values([0.037], method) == (0.037,)
    assert adjust_p_values([0.0], method) == (0.0,)
    assert adjust_p_values([1.0], method) == (1.0,)


@pytest.mark.parametrize("method", ADJUSTING)
def test_capped_at_one_and_never_below_raw(method: MultiplicityMethod) -> None:
    family = [0.9, 0.6, 0.0, 1.0, 0.45, 0.0]
    adjusted = adjust_p_values(family, method)
    assert all(raw <= q <= 1.0 for raw, q in zip(family, adjusted, strict=True))
    assert adjusted[2] == adjusted[5] == 0.0
    assert adjusted[3] == 1.0


@pytest.mark.parametrize(
    "method", ["holm", "holm-sidak", "hochberg", "benjamini-hochberg", "benjamini-yekutieli"]
)
def test_step_procedures_are_monotone(method: MultiplicityMethod) -> None:
    for family in random_families(11):
        adjusted = np.array(adjust_p_values(family.tolist(), method))
        order = np.argsort(family)
        assert np.all(np.diff(adjusted[order]) >= 0.0)


@pytest.mark.parametrize("method", [*ADJUSTING, "none"])
def test_nan_stays_nan_and_is_not_counted(method: MultiplicityMethod) -> None:
    family = [0.01, math.nan, 0.02, 0.2, math.nan]
    adjusted = adjust_p_values(family, method)
    assert math.isnan(adjusted[1]) and math.isnan(adjusted[4])
    tested = [0.01, 0.02, 0.2]
    expected = adjust_p_values(tested, method)
    assert [adjusted[0], adjusted[2], adjusted[3]] == list(expected)
    labelled = adjust_family(dict(zip("abcde", family, strict=True)), method=method, alpha=0.05)
    assert {result.family_size for result in labelled.values()} == {3}
    assert labelled["b"].rejected is False
    assert math.isnan(labelled["b"].adjusted_p_value)


def test_all_nan_or_empty() -> None:
    assert adjust_p_values([], "holm") == ()
    assert all(math.isnan(q) for q in adjust_p_values([math.nan, math.nan], "bonferroni"))
    assert adjust_family({}, method="holm") == {}


def test_adjust_family_fields() -> None:
    family = {"ctr": 0.004, "revenue": 0.03, "latency": 0.2}
    result = adjust_family(family, method="benjamini-hochberg", alpha=0.05)
    assert list(result) == ["ctr", "revenue", "latency"]
    assert result["revenue"] == AdjustedPValue(
        p_value=0.03,
        adjusted_p_value=pytest.approx(0.045, abs=1e-15),  # type: ignore[arg-type]
        rejected=True,
        family_size=3,
        method="benjamini-hochberg",
        error_rate="FDR",
        alpha=0.05,
    )
    assert adjust_family(family, method="holm")["revenue"].rejected is False
    assert adjust_family(family, method="none")["ctr"].error_rate == "per-comparison"


@pytest.mark.parametrize("bad", [-0.01, 1.5, math.inf])
def test_p_values_outside_unit_interval_are_explained(bad: float) -> None:
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        adjust_p_values([0.1, bad], "holm")
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        adjust_family({"a": bad}, method="none")


def test_unknown_method_and_bad_alpha_are_explained() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_p_values([0.1], "fdr_bh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_family({"a": 0.1}, method="simes-hochberg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        adjust_family({"a": 0.1}, method="holm", alpha=5.0)


def rejections(p_values: np.ndarray, method: MultiplicityMethod, alpha: float) -> np.ndarray:
    """Boolean ``(reps, m)`` rejections, one family per row."""
    return np.array([np.array(adjust_p_values(row.tolist(), method)) <= alpha for row in p_values])


def test_holm_fwer_under_the_global_null(rng: np.random.Generator) -> None:
    reps, m, alpha = 10_000, 10, 0.05
    rejected = rejections(one_sided_p_values(rng, reps=reps, shifts=np.zeros(m)), "holm", alpha)
    fwer = rejected.any(axis=1).mean()
    # Under the global null Holm rejects something exactly when min p <= alpha / m, so with
    # independent tests the FWER is 1 - (1 - alpha / m)**m = 0.0489 (<= alpha).
    # Monte Carlo SE sqrt(0.0489 * 0.951 / 10_000) = 0.0022; the bounds are 3-4 SE.
    exact = 1.0 - (1.0 - alpha / m) ** m
    assert abs(fwer - exact) <= 0.009
    assert fwer <= alpha + 0.0066


def test_holm_fwer_under_positive_dependence(rng: np.random.Generator) -> None:
    reps, m, alpha = 10_000, 10, 0.05
    p_values = one_sided_p_values(rng, reps=reps, shifts=np.zeros(m), rho=0.6)
    fwer = rejections(p_values, "holm", alpha).any(axis=1).mean()
    # Correlated tests make Holm conservative (the union bound is loose). MC SE <= 0.0022, and
    # alpha + 3 SE = 0.0566.
    assert fwer <= alpha + 0.0066
    assert fwer < 1.0 - (1.0 - alpha / m) ** m


def test_benjamini_hochberg_fdr_with_true_effects(rng: np.random.Generator) -> None:
    reps, alpha = 10_000, 0.05
    shifts = np.array([0.0] * 7 + [2.5] * 3)
    is_null = shifts == 0.0
    rejected = rejections(
        one_sided_p_values(rng, reps=reps, shifts=shifts), "benjamini-hochberg", alpha
    )
    false_discoveries = rejected[:, is_null].sum(axis=1)
    false_discovery_proportion = false_discoveries / np.maximum(rejected.sum(axis=1), 1)
    fdr = false_discovery_proportion.mean()
    monte_carlo_se = false_discovery_proportion.std(ddof=1) / math.sqrt(reps)
    # With independent continuous p-values BH's FDR equals alpha * m0 / m = 0.035 exactly
    # (Benjamini & Yekutieli 2001, Theorem 5.1); the MC SE of the mean FDP is about 0.0011.
    assert monte_carlo_se < 0.0015
    assert abs(fdr - alpha * is_null.sum() / shifts.size) <= 4.0 * monte_carlo_se
    # BH does not control the FWER: with 3 true effects it falsely rejects more often than Holm.
    holm_rejected = rejections(one_sided_p_values(rng, reps=reps, shifts=shifts), "holm", alpha)
    assert (false_discoveries > 0).mean() > holm_rejected[:, is_null].any(axis=1).mean()


def test_holm_rejects_at_least_what_bonferroni_rejects(rng: np.random.Generator) -> None:
    shifts = np.array([0.0] * 5 + [2.0, 2.5, 3.0, 3.0, 3.5])
    p_values = one_sided_p_values(rng, reps=2000, shifts=shifts)
    by_bonferroni = rejections(p_values, "bonferroni", 0.05)
    by_holm = rejections(p_values, "holm", 0.05)
    by_bh = rejections(p_values, "benjamini-hochberg", 0.05)
    assert np.all(by_holm >= by_bonferroni)
    assert np.all(by_bh >= by_holm)
    # And strictly more power: Holm makes extra rejections in a sizeable share of families.
    assert (by_holm.sum(axis=1) > by_bonferroni.sum(axis=1)).mean() > 0.1
    assert by_holm[:, 5:].mean() > by_bonferroni[:, 5:].mean()


def test_sidak_fwer_is_alpha_under_the_independent_global_null(rng: np.random.Generator) -> None:
    reps, m, alpha = 20_000, 10, 0.05
    p_values = one_sided_p_values(rng, reps=reps, shifts=np.zeros(m))
    for method in ("sidak", "holm-sidak"):
        fwer = rejections(p_values, method, alpha).any(axis=1).mean()
        # Under the independent global null Šidák (and Holm-Šidák, whose first step is Šidák's)
        # rejects something exactly when min p <= 1 - (1 - alpha)^(1/m): FWER = alpha exactly.
        # Monte Carlo SE sqrt(0.05 * 0.95 / 20_000) = 0.0015; the bound is 4 SE.
        assert abs(fwer - alpha) <= 0.0062
    # Bonferroni's FWER 1 - (1 - alpha/m)^m = 0.0489 is below Šidák's on the same draws.
    assert (
        rejections(p_values, "bonferroni", alpha).any(axis=1).mean()
        <= rejections(p_values, "sidak", alpha).any(axis=1).mean()
    )


def test_hochberg_fwer_and_power_against_holm(rng: np.random.Generator) -> None:
    reps, alpha = 10_000, 0.05
    shifts = np.array([0.0] * 6 + [2.0, 2.5, 3.0, 3.0])
    p_values = one_sided_p_values(rng, reps=reps, shifts=shifts)
    by_hochberg = rejections(p_values, "hochberg", alpha)
    by_holm = rejections(p_values, "holm", alpha)
    # Step-up never rejects less than step-down with the same critical values.
    assert np.all(by_hochberg >= by_holm)
    assert by_hochberg[:, 6:].mean() > by_holm[:, 6:].mean()
    # FWER over the six true nulls (independent tests): at most alpha, MC SE <= 0.0022.
    assert by_hochberg[:, :6].any(axis=1).mean() <= alpha + 0.0066


def test_benjamini_yekutieli_controls_the_fdr_under_negative_dependence(
    rng: np.random.Generator,
) -> None:
    # Pairs of perfectly negatively correlated null statistics (z and -z): not PRDS, where BH
    # has no guarantee; BY controls the FDR at alpha * m0 / m under any dependence.
    reps, alpha, pairs = 10_000, 0.05, 4
    z = rng.normal(size=(reps, pairs))
    null_p = special.ndtr(-np.concatenate([z, -z], axis=1))
    true_p = special.ndtr(-(3.0 + rng.normal(size=(reps, 2))))
    p_values = np.concatenate([null_p, true_p], axis=1)
    is_null = np.array([True] * (2 * pairs) + [False] * 2)
    rejected = rejections(p_values, "benjamini-yekutieli", alpha)
    fdp = rejected[:, is_null].sum(axis=1) / np.maximum(rejected.sum(axis=1), 1)
    bound = alpha * is_null.sum() / is_null.size
    assert fdp.mean() <= bound + 3.0 * fdp.std(ddof=1) / math.sqrt(reps)
    # ...and it rejects no more than BH on the same draws.
    assert np.all(rejected <= rejections(p_values, "benjamini-hochberg", alpha))
