from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_dagster.stats import srm_test
from exp_dagster.stats.srm import first_srm_day, srm_by_phase, srm_by_segment
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


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([5050, 4950], [0.5, 0.5]),
        ([14, 4], [0.5, 0.5]),
        ([1000, 520, 480], [2.0, 1.0, 1.0]),
        ([812, 3_188], [0.2, 0.8]),
        ([333, 0, 326, 300], [0.25, 0.25, 0.25, 0.25]),
    ],
)
def test_g_test_matches_scipy_power_divergence(observed: list[int], weights: list[float]) -> None:
    result = srm_test(observed, weights, method="g-test")
    expected = np.array(weights) / sum(weights) * sum(observed)
    reference = stats.power_divergence(observed, f_exp=expected, lambda_="log-likelihood")
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.method == "g-test"


@pytest.mark.parametrize(("observed", "p"), [([14, 4], 0.5), ([3, 27], 0.2), ([40, 60], 0.5)])
def test_exact_is_the_binomial_test(observed: list[int], p: float) -> None:
    result = srm_test(observed, [p, 1.0 - p], method="exact")
    n = sum(observed)
    # Two-sided by the "minlike" rule, written out: the probability of every count at most as
    # likely as the observed one (with scipy's relative tolerance for ties, 1 + 1e-7).
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    expected = pmf[pmf <= pmf[observed[0]] * (1 + 1e-7)].sum()
    assert result.p_value == pytest.approx(min(1.0, expected), rel=1e-9)
    assert result.p_value == pytest.approx(stats.binomtest(observed[0], n, p).pvalue, rel=1e-12)


def test_exact_test_size_never_exceeds_alpha_at_small_n() -> None:
    # The exact test's false-positive rate, computed exactly over every possible split, stays at
    # or below alpha; Pearson's chi-square exceeds it at some small sizes (its reason to exist).
    alpha, p = 0.05, 0.5
    chi_square_over = False
    for n in range(6, 61):
        pmf = stats.binom.pmf(np.arange(n + 1), n, p)
        exact = sum(
            pmf[k]
            for k in range(n + 1)
            if srm_test([k, n - k], [p, p], method="exact").p_value < alpha
        )
        chi_square = sum(
            pmf[k] for k in range(n + 1) if srm_test([k, n - k], [p, p]).p_value < alpha
        )
        assert exact <= alpha + 1e-12, n
        chi_square_over |= chi_square > alpha
    assert chi_square_over


def test_yates_correction_written_out() -> None:
    # (|o - e| - 0.5)^2 / e summed, with e = 9 for both variants of 18 units.
    result = srm_test([14, 4], [0.5, 0.5], correction=True)
    assert result.statistic == pytest.approx(2 * (5 - 0.5) ** 2 / 9, rel=1e-15)
    assert result.p_value == pytest.approx(stats.chi2.sf(2 * 4.5**2 / 9, 1), rel=1e-12)
    assert result.method == "chi-square (Yates)"
    # A deviation under 0.5 gives 0, not a negative deviation squared.
    assert srm_test([10, 9], [0.5, 0.5], correction=True).statistic == 0.0
    # Yates' G: each count moved 0.5 towards its expectation, then G (scipy's chi2_contingency
    # rule for a 1-df table).
    g = srm_test([14, 4], [0.5, 0.5], method="g-test", correction=True)
    reference = stats.power_divergence([13.5, 4.5], f_exp=[9, 9], lambda_="log-likelihood")
    assert g.statistic == pytest.approx(reference.statistic, rel=1e-12)
    # More than two variants: no correction, as in scipy.
    three = [1000, 520, 480]
    assert srm_test(three, [2, 1, 1], correction=True) == srm_test(three, [2, 1, 1])


def test_exact_needs_two_variants_and_methods_are_named() -> None:
    with pytest.raises(ValueError, match="binomial test of two variants"):
        srm_test([10, 10, 10], [1.0, 1.0, 1.0], method="exact")
    with pytest.raises(ValueError, match="method must be one of"):
        srm_test([10, 10], [1.0, 1.0], method="fisher")  # type: ignore[arg-type]


def test_segment_and_daily_tests_use_the_method() -> None:
    counts = {"ios": [30, 10], "web": [20, 21]}
    by_segment = srm_by_segment(counts, [0.5, 0.5], alpha=0.05, method="exact")
    assert by_segment["ios"].method == "exact"
    assert by_segment["ios"].p_value == srm_test([30, 10], [0.5, 0.5], method="exact").p_value
    days = first_srm_day([[30, 10], [20, 21]], [0.5, 0.5], method="g-test", cumulative=False)
    assert days.p_values[0] == srm_test([30, 10], [0.5, 0.5], method="g-test").p_value


def test_spec_refuses_exact_with_three_variants() -> None:
    from pydantic import ValidationError

    from exp_dagster.spec import ExperimentSpec

    spec = {
        "id": "abc",
        "variants": [
            {"name": "control", "weight": 0.4, "control": True},
            {"name": "a", "weight": 0.3},
            {"name": "b", "weight": 0.3},
        ],
        "start": "2026-01-01",
        "end": "2026-01-14",
        "metrics": {"primary": "ctr"},
        "srm_method": "exact",
    }
    with pytest.raises(ValidationError, match="binomial test of two variants"):
        ExperimentSpec.model_validate(spec)
    assert ExperimentSpec.model_validate({**spec, "srm_method": "g-test"}).srm_method == "g-test"


def test_new_options_at_their_defaults_keep_the_spec_version() -> None:
    from exp_dagster.home import PROJECT_ROOT
    from exp_dagster.spec import (
        VERSION_NEUTRAL_DEFAULTS,
        load_experiment,
        load_metric_catalog,
        spec_version,
    )

    catalog = load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")
    experiment = load_experiment(
        PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml", catalog
    )
    metrics = experiment.metrics.values()
    # The version the spec had before srm_method / srm_correction existed: the same hash of a
    # dump without the two fields.
    import hashlib
    import json

    # The catalog spec's version from before issue 19's options: results stored then stay current.
    assert experiment.version == "d5a7eab2877b"
    dump = experiment.spec.model_dump(mode="json")
    for path, default in VERSION_NEUTRAL_DEFAULTS.items():
        *parents, field = path.split(".")
        holder = dump
        for parent in parents:
            holder = holder[parent]
        assert holder[field] == default, f"{path}'s default is not the version-neutral one"
        del holder[field]  # options added later, left out of the hash at their defaults
    payload = {
        "experiment": dump,
        "metrics": sorted((m.model_dump(mode="json") for m in metrics), key=lambda m: m["name"]),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert experiment.version == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    changed = experiment.spec.model_copy(update={"srm_method": "g-test"})
    assert spec_version(changed, metrics) != experiment.version
    analysis = experiment.spec.analysis.model_copy(update={"spending_rho": 2.0})
    changed = experiment.spec.model_copy(update={"analysis": analysis})
    assert spec_version(changed, metrics) != experiment.version


# ── ramped rollouts: each phase against its own plan ────────────────────────────────────────

RAMP_PLAN = [[0.99, 0.01], [0.95, 0.05], [0.5, 0.5]]


def test_phases_match_scipy_chisquare_each_against_its_own_plan() -> None:
    counts = [[9_890, 110], [9_420, 580], [4_960, 5_040]]
    result = srm_by_phase(counts, RAMP_PLAN, alpha=0.05)
    references = [
        stats.chisquare(observed, f_exp=np.array(plan) * sum(observed)).pvalue
        for observed, plan in zip(counts, RAMP_PLAN, strict=True)
    ]
    assert [r.p_value for r in result.phases if r] == pytest.approx(references, rel=1e-10)
    assert result.p_value == pytest.approx(min(1.0, 3 * min(references)), rel=1e-10)
    assert result.mismatched == tuple(i for i, p in enumerate(references) if p < 0.05 / 3)
    assert result.method == "chi-square per ramp phase (Bonferroni over 3)"


def test_a_healthy_ramp_fails_any_single_plan_but_passes_per_phase(
    rng: np.random.Generator,
) -> None:
    counts = [
        rng.multinomial(n, plan).tolist()
        for n, plan in zip((20_000, 30_000, 50_000), RAMP_PLAN, strict=True)
    ]
    assert srm_by_phase(counts, RAMP_PLAN).p_value > 0.001
    pooled = [sum(phase[arm] for phase in counts) for arm in (0, 1)]
    assert srm_test(pooled, RAMP_PLAN[-1]).p_value < 1e-100


def test_a_broken_phase_is_named(rng: np.random.Generator) -> None:
    counts = [
        rng.multinomial(n, plan).tolist()
        for n, plan in zip((20_000, 30_000, 50_000), RAMP_PLAN, strict=True)
    ]
    counts[1][1] = int(counts[1][1] * 0.8)  # a fifth of phase 1's treatment exposures lost
    result = srm_by_phase(counts, RAMP_PLAN, method="g-test")
    assert result.mismatched == (1,) and result.p_value < 0.001
    assert result.method == "g-test per ramp phase (Bonferroni over 3)"


def test_family_wise_false_alarm_rate_over_phases(rng: np.random.Generator) -> None:
    """Independent phases at alpha / 3 each: 1 - (1 - alpha / 3)**3 = 0.0492 at alpha = 0.05."""
    reps = 3000
    draws = [
        rng.multinomial(n, plan, size=reps)
        for n, plan in zip((2_000, 3_000, 5_000), RAMP_PLAN, strict=True)
    ]
    alarms = [
        bool(srm_by_phase([d[rep].tolist() for d in draws], RAMP_PLAN, alpha=0.05).mismatched)
        for rep in range(reps)
    ]
    assert 0.035 <= np.mean(alarms) <= 0.065


def test_phases_without_units_are_skipped_and_errors_name_the_phase() -> None:
    result = srm_by_phase([[990, 10], [0, 0]], RAMP_PLAN[:2])
    assert result.phases[1] is None and result.method.endswith("(Bonferroni over 1)")
    with pytest.raises(ValueError, match="Ramp phase 1: Observed unit counts cannot be negative"):
        srm_by_phase([[990, 10], [5, -1]], RAMP_PLAN[:2])
    with pytest.raises(ValueError, match="one set of weights per phase"):
        srm_by_phase([[990, 10]], RAMP_PLAN[:2])
    with pytest.raises(ValueError, match="at least one unit in some phase"):
        srm_by_phase([[0, 0]], RAMP_PLAN[:1])
