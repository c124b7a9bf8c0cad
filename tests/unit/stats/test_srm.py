from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import srm_test
from exp_dagster.stats.srm import first_srm_day, srm_by_segment
from tests.unit.stats.simulators_heterogeneity import daily_split_counts


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([5050, 4950], [0.5, 0.5]),
        ([10_321, 9_679], [1.0, 1.0]),
        ([1000, 520, 480], [2.0, 1.0, 1.0]),
        ([812, 3_188], [0.2, 0.8]),
        ([333, 341, 326, 300], [0.25, 0.25, 0.25, 0.25]),
    ],
)
def test_matches_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    result = srm_test(observed, weights)
    expected = np.array(weights) / sum(weights) * sum(observed)
    reference = stats.chisquare(observed, f_exp=expected)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.df == len(observed) - 1
    assert result.observed == tuple(observed)
    assert result.expected == pytest.approx(tuple(expected), rel=1e-12)


def test_perfect_split() -> None:
    result = srm_test([500, 500], [0.5, 0.5])
    assert (result.statistic, result.p_value) == (0.0, 1.0)


def test_false_positive_rate_under_the_plan(rng: np.random.Generator) -> None:
    weights = [0.5, 0.3, 0.2]
    splits = rng.multinomial(5000, weights, size=2000)
    rejections = [srm_test(split.tolist(), weights).p_value < 0.05 for split in splits]
    assert 0.035 <= np.mean(rejections) <= 0.065


@pytest.mark.parametrize(
    ("observed", "weights", "message"),
    [
        ([10, 10], [1.0], "one weight per variant"),
        ([10], [1.0], "at least 2 variants"),
        ([10, -1], [1.0, 1.0], "cannot be negative"),
        ([10, 10], [1.0, 0.0], "positive and finite"),
        ([0, 0], [1.0, 1.0], "at least one observed unit"),
    ],
)
def test_invalid_inputs_are_explained(
    observed: list[int], weights: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        srm_test(observed, weights)


# --- srm_by_segment -------------------------------------------------------------------------


def test_mismatched_segments_match_scipy_chisquare() -> None:
    counts = {"ios": [5030, 4970], "android": [6000, 5400], "web": [2010, 1990], "tv": [700, 560]}
    mismatched = srm_by_segment(counts, [0.5, 0.5])
    assert list(mismatched) == ["android", "tv"]  # smallest p-value first
    for label, result in mismatched.items():
        reference = stats.chisquare(counts[label])
        assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
        assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
        assert result.p_value < 0.001 / 4


def test_segments_are_bonferroni_adjusted() -> None:
    borderline = [1050, 950]  # p = 0.025
    assert list(srm_by_segment({"a": borderline}, [1, 1], alpha=0.05)) == ["a"]
    healthy = {"b": [1000, 1000], "c": [500, 500]}
    # With 3 values each is tested at 0.05 / 3 = 0.0167 > 0.025: not flagged.
    assert srm_by_segment({"a": borderline, **healthy}, [1, 1], alpha=0.05) == {}
    # Empty values are skipped and do not count in the adjustment.
    assert list(srm_by_segment({"a": borderline, "b": [0, 0]}, [1, 1], alpha=0.05)) == ["a"]


def test_planted_segment_mismatch_is_named(rng: np.random.Generator) -> None:
    weights = [0.5, 0.3, 0.2]
    counts = {
        country: rng.multinomial(20_000, weights).tolist()
        for country in ["us", "de", "fr", "jp", "br", "in"]
    }
    # A logging bug in one country loses 6% of the treatment units of the second arm.
    counts["jp"] = rng.multinomial(20_000, np.array([0.5, 0.3 * 0.94, 0.2]) / 0.982).tolist()
    assert list(srm_by_segment(counts, weights)) == ["jp"]


def test_family_wise_rate_over_segments_is_alpha(rng: np.random.Generator) -> None:
    reps, segments, alpha = 4000, 4, 0.05
    weights = [0.5, 0.5]
    splits = rng.multinomial(3000, weights, size=(reps, segments))
    flagged = [
        bool(
            srm_by_segment(
                {str(i): split.tolist() for i, split in enumerate(rep)}, weights, alpha=alpha
            )
        )
        for rep in splits
    ]
    # Disjoint segments are independent: P(any) = 1 - (1 - alpha / 4)**4 = 0.0491. Monte Carlo
    # SE over 4000 reps: 0.0034; ±3 SE.
    assert abs(np.mean(flagged) - (1 - (1 - alpha / segments) ** segments)) < 0.0105


def test_segment_errors_name_the_segment() -> None:
    with pytest.raises(ValueError, match=r"Segment value 'web': .*one weight per variant"):
        srm_by_segment({"ios": [10, 10], "web": [10, 10, 10]}, [0.5, 0.5])
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        srm_by_segment({"ios": [10, 10]}, [0.5, 0.5], alpha=0.0)


# --- first_srm_day --------------------------------------------------------------------------


@pytest.mark.parametrize("cumulative", [True, False])
def test_daily_p_values_match_scipy_chisquare(rng: np.random.Generator, cumulative: bool) -> None:
    weights = [0.2, 0.3, 0.5]
    daily = rng.multinomial(1000, weights, size=6)
    over_time = first_srm_day(daily.tolist(), weights, cumulative=cumulative)
    tested = np.cumsum(daily, axis=0) if cumulative else daily
    for day, counts in enumerate(tested):
        reference = stats.chisquare(counts, f_exp=np.array(weights) * counts.sum())
        assert over_time.p_values[day] == pytest.approx(reference.pvalue, rel=1e-10)
        assert over_time.statistics[day] == pytest.approx(reference.statistic, rel=1e-12)
    assert over_time.tested_counts == tuple(tuple(row) for row in tested.tolist())
    assert over_time.cumulative is cumulative


def test_planted_mismatch_from_day_four_is_found_on_or_after_day_four(
    rng: np.random.Generator,
) -> None:
    daily = daily_split_counts(
        rng,
        units_per_day=5000,
        days=14,
        weights=[0.5, 0.5],
        broken_from_day=4,
        broken_weights=[0.5, 0.46],
    )
    cumulative = first_srm_day(daily, [0.5, 0.5])
    by_day = first_srm_day(daily, [0.5, 0.5], cumulative=False)
    assert cumulative.first_day_index is not None
    assert by_day.first_day_index is not None
    assert 4 <= by_day.first_day_index <= cumulative.first_day_index
    assert all(p >= 0.001 for p in cumulative.p_values[:4])
    assert all(p < 0.001 for p in cumulative.p_values[cumulative.first_day_index :])


def test_no_mismatch_gives_no_day(rng: np.random.Generator) -> None:
    daily = daily_split_counts(rng, units_per_day=5000, days=14, weights=[0.5, 0.5])
    assert first_srm_day(daily, [0.5, 0.5]).first_day_index is None


def test_repeated_daily_looks_stay_within_the_bonferroni_bound(rng: np.random.Generator) -> None:
    reps, days, alpha = 2000, 10, 0.01
    weights = [0.5, 0.5]
    daily = rng.multinomial(2000, weights, size=(reps, days))
    any_cumulative = np.mean(
        [
            first_srm_day(rep.tolist(), weights, alpha=alpha).first_day_index is not None
            for rep in daily
        ]
    )
    any_daily = np.mean(
        [
            first_srm_day(rep.tolist(), weights, alpha=alpha, cumulative=False).first_day_index
            is not None
            for rep in daily
        ]
    )
    # Independent daily tests: 1 - 0.99**10 = 0.0956; Monte Carlo SE over 2000 reps 0.0066.
    assert abs(any_daily - (1 - (1 - alpha) ** days)) < 0.02
    # Correlated cumulative looks: more than one look's alpha, well under the daily rate.
    # (MC SE near 0.04: 0.0044.)
    assert alpha < any_cumulative < any_daily - 0.02


def test_days_without_units_have_no_test() -> None:
    over_time = first_srm_day([[0, 0], [0, 0], [600, 400]], [0.5, 0.5], alpha=0.05)
    assert math.isnan(over_time.p_values[0]) and math.isnan(over_time.statistics[1])
    assert over_time.first_day_index == 2


@pytest.mark.parametrize(
    ("daily_counts", "weights", "message"),
    [
        ([], [0.5, 0.5], "at least one day"),
        ([[10, 10], [10, 10, 10]], [0.5, 0.5], "Day 1 has 3 variant counts"),
        ([[10, 10], [10, -1]], [0.5, 0.5], "Day 1 has a negative unit count"),
        ([[0, 0]], [0.5, 0.0], "positive and finite"),
    ],
)
def test_invalid_daily_counts_are_explained(
    daily_counts: list[list[int]], weights: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        first_srm_day(daily_counts, weights)
