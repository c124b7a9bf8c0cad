"""Sample ratio mismatch: are the units split across variants as planned?

:func:`srm_test` tests one split; :func:`srm_by_segment` tests the split within each value of a
segment variable (Bonferroni over the values), :func:`first_srm_day` finds the first day on
which the split mismatched, and :func:`srm_by_phase` tests each phase of a ramped rollout against
its own planned split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal, get_args

from scipy import special

from exp_dagster.stats._common import check_alpha

SRMMethod = Literal["chi-square", "g-test", "exact"]
"""How :func:`srm_test` measures the mismatch: Pearson's chi-square (default), the likelihood-ratio
G-test, or the exact binomial test (two variants)."""

SRM_METHODS: tuple[str, ...] = get_args(SRMMethod)


@dataclass(frozen=True)
class SRMResult:
    """Goodness-of-fit test of the observed split against the plan.

    Attributes:
        statistic: the test's statistic: Pearson's ``sum((observed - expected)**2 / expected)``
            (each ``|observed - expected|`` first reduced by 0.5 with Yates' correction), or
            ``G = 2 sum(observed * ln(observed / expected))``; for the exact test, Pearson's
            statistic, for reference (the p-value does not use it).
        p_value: upper-tail probability of the chi-square distribution with ``df`` degrees of
            freedom (chi-square, G-test), or the exact binomial probability of a split at most as
            likely as the observed one (exact); a small value (0.001 is the usual threshold)
            means the split is broken.
        df: degrees of freedom, the number of variants minus 1.
        observed: units per variant, in the order given.
        expected: units per variant expected under the planned weights.
        method: ``"chi-square"``, ``"g-test"`` or ``"exact"``; with ``correction``,
            ``"chi-square (Yates)"`` or ``"g-test (Yates)"``.
    """

    statistic: float
    p_value: float
    df: int
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    method: str = "chi-square"


def srm_test(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    method: SRMMethod = "chi-square",
    correction: bool = False,
) -> SRMResult:
    """Sample-ratio-mismatch test: the observed units against the planned weights.

    The weights are normalised to sum to 1, so ``[1, 1]`` and ``[0.5, 0.5]`` are the same plan.
    The expected count of a variant is its weight times the total observed. ``"chi-square"``
    (default) refers Pearson's statistic to the chi-square distribution with ``k - 1`` degrees of
    freedom; ``"g-test"`` refers the likelihood-ratio statistic ``G`` to the same distribution
    (scipy's ``power_divergence`` with ``lambda_="log-likelihood"``); both are large-sample
    approximations, good once every expected count is about 5 or more. ``"exact"`` (two
    variants) is the exact binomial test of the first variant's count against its planned share
    (scipy's ``binomtest``, two-sided by the "minlike" rule), for small samples. ``correction``
    applies Yates' continuity correction to chi-square and G with two variants (each
    ``|observed - expected|`` reduced by 0.5, not below 0; ignored with more variants, as in
    scipy's ``chi2_contingency``). A mismatch invalidates every effect of the experiment: it
    signals broken assignment or exposure logging, not a treatment effect.

    Args:
        observed (Sequence[int]): units per variant.
        weights (Sequence[float]): planned weights per variant, in the same order; positive.
        method (Literal["chi-square", "g-test", "exact"]): the test; ``"exact"`` needs exactly
            two variants.
        correction (bool): Yates' continuity correction (two variants; chi-square and G-test).

    Returns:
        SRMResult: statistic, p-value, degrees of freedom, observed and expected counts.

    Raises:
        ValueError: if there are fewer than 2 variants, the lengths differ, a count is negative,
            a weight is not positive, no unit was observed, ``method`` is unknown, or
            ``"exact"`` is asked for more than two variants.

    References:
        Fabijan, A., Gupchup, J., Gupta, S., Omhover, J., Qin, W., Vermeer, L., & Dmitriev, P.
        (2019). Diagnosing Sample Ratio Mismatch in Online Controlled Experiments: A Taxonomy and
        Rules of Thumb for Practitioners. KDD 2019.
        Agresti, A. (2013). Categorical Data Analysis (3rd ed.), sections 1.4-1.5 (G² and the
        exact binomial test). Wiley.
        Yates, F. (1934). Contingency Tables Involving Small Numbers and the chi-square Test.
        Supplement to the Journal of the Royal Statistical Society, 1(2), 217-235.

    Examples:
        >>> result = srm_test([5050, 4950], [0.5, 0.5])
        >>> round(result.statistic, 4), round(result.p_value, 4), result.df
        (1.0, 0.3173, 1)
        >>> result = srm_test([1000, 520, 480], [2, 1, 1])
        >>> result.expected, round(result.p_value, 4)
        ((1000.0, 500.0, 500.0), 0.4493)
        >>> round(srm_test([14, 4], [0.5, 0.5], method="exact").p_value, 4)
        0.0309
        >>> round(srm_test([14, 4], [0.5, 0.5], correction=True).p_value, 4)
        0.0339
    """
    if len(observed) != len(weights):
        raise ValueError(
            f"srm_test needs one weight per variant; got {len(observed)} observed counts and "
            f"{len(weights)} weights."
        )
    if len(observed) < 2:
        raise ValueError(f"srm_test needs at least 2 variants; got {len(observed)}.")
    if any(count < 0 for count in observed):
        raise ValueError(f"Observed unit counts cannot be negative; got {list(observed)}.")
    if not all(weight > 0.0 and math.isfinite(weight) for weight in weights):
        raise ValueError(f"Planned weights must be positive and finite; got {list(weights)}.")
    total = sum(observed)
    if total == 0:
        raise ValueError("srm_test needs at least one observed unit; every variant has 0.")
    if method not in SRM_METHODS:
        options = ", ".join(repr(m) for m in SRM_METHODS)
        raise ValueError(f"srm_test's method must be one of {options}; got {method!r}.")
    if method == "exact" and len(observed) != 2:
        raise ValueError(
            f"The exact SRM test is the binomial test of two variants; got {len(observed)}. Use "
            f"method='chi-square' or 'g-test' for more variants."
        )
    weight_sum = math.fsum(weights)
    expected = tuple(total * weight / weight_sum for weight in weights)
    df = len(observed) - 1
    # Yates: each |o - e| less 0.5 (not below 0), with two variants only
    yates = 0.5 if correction and len(observed) == 2 else 0.0
    deviations = [max(0.0, abs(o - e) - yates) for o, e in zip(observed, expected, strict=True)]
    pearson = math.fsum(d * d / e for d, e in zip(deviations, expected, strict=True))
    label = method + (" (Yates)" if yates and method != "exact" else "")
    if method == "exact":
        from scipy import stats  # here, not at the top: see stats/__init__ (lazy scipy)

        p_value = stats.binomtest(int(observed[0]), total, weights[0] / weight_sum).pvalue
        statistic = math.fsum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    elif method == "g-test":
        # Each variant's count moved |o - e| - yates towards its expectation (Yates), then
        # G = 2 sum(o ln(o / e)), with 0 ln 0 = 0.
        adjusted = [
            e + math.copysign(d, o - e)
            for o, e, d in zip(observed, expected, deviations, strict=True)
        ]
        statistic = 2.0 * math.fsum(
            o * math.log(o / e) for o, e in zip(adjusted, expected, strict=True) if o > 0
        )
        p_value = special.chdtrc(df, statistic)
    else:
        statistic = pearson
        p_value = special.chdtrc(df, statistic)
    return SRMResult(
        statistic=statistic,
        p_value=float(p_value),
        df=df,
        observed=tuple(int(count) for count in observed),
        expected=expected,
        method=label,
    )


def srm_by_segment(
    counts: Mapping[str, Sequence[int]],
    weights: Sequence[float],
    *,
    alpha: float = 0.001,
    method: SRMMethod = "chi-square",
    correction: bool = False,
) -> dict[str, SRMResult]:
    """The segment values whose own split mismatches the plan, Bonferroni-adjusted over values.

    Each segment value's units per variant are tested by :func:`srm_test` against the same
    planned weights. With ``m`` segment values tested, a value mismatches when its p-value is
    below ``alpha / m`` (Bonferroni), so the chance that any value is flagged when every split
    follows the plan is at most ``alpha``, whatever the dependence between values; the values of
    one variable hold disjoint units, so it is very nearly ``alpha``. Segment values with no
    units at all are skipped and do not count in ``m``. Without the adjustment a variable with
    many values (country, device model) would flag some value by chance in most experiments.

    Segment only by attributes fixed before exposure: a segment the treatment can change (e.g.
    "made a purchase") has a legitimately different split, which is a treatment effect, not a
    broken assignment. A mismatch within a segment and not overall usually means that the
    segment's exposure logging, or its traffic, is broken for one variant.

    Args:
        counts (Mapping[str, Sequence[int]]): units per variant for each segment value, the
            variants in the order of ``weights``.
        weights (Sequence[float]): planned weights per variant; positive.
        alpha (float): family-wise level over the segment values; 0.001 by default, as for the
            overall test (Fabijan et al. 2019).
        method (Literal["chi-square", "g-test", "exact"]): each value's test (:func:`srm_test`).
        correction (bool): Yates' continuity correction (:func:`srm_test`).

    Returns:
        dict[str, SRMResult]: the mismatched segment values and their tests, smallest p-value
        first; empty when every split matches. Call :func:`srm_test` on a value for its test
        whether or not it mismatches.

    Raises:
        ValueError: if ``alpha`` is not in (0, 1), or a segment value's counts are invalid for
            :func:`srm_test` (wrong length, negative); the message names the segment value.

    References:
        Fabijan, A., Gupchup, J., Gupta, S., Omhover, J., Qin, W., Vermeer, L., & Dmitriev, P.
        (2019). Diagnosing Sample Ratio Mismatch in Online Controlled Experiments: A Taxonomy and
        Rules of Thumb for Practitioners. KDD 2019.
        Dunn, O. J. (1961). Multiple Comparisons among Means. Journal of the American
        Statistical Association, 56(293), 52-64 (the Bonferroni adjustment).

    Examples:
        >>> counts = {"ios": [5030, 4970], "android": [6000, 5400], "web": [2010, 1990]}
        >>> mismatched = srm_by_segment(counts, [0.5, 0.5])
        >>> list(mismatched), f"{mismatched['android'].p_value:.1e}"
        (['android'], '1.9e-08')
        >>> srm_by_segment({"ios": [5030, 4970], "web": [0, 0]}, [0.5, 0.5])
        {}
    """
    check_alpha(alpha)
    tested: dict[str, SRMResult] = {}
    for label, observed in counts.items():
        if len(observed) == len(weights) and all(count == 0 for count in observed):
            continue
        try:
            tested[label] = srm_test(observed, weights, method=method, correction=correction)
        except ValueError as error:
            raise ValueError(f"Segment value {label!r}: {error}") from error
    threshold = alpha / max(1, len(tested))
    mismatched = sorted(
        (item for item in tested.items() if item[1].p_value < threshold),
        key=lambda item: item[1].p_value,
    )
    return dict(mismatched)


@dataclass(frozen=True)
class SRMOverTime:
    """Sample-ratio-mismatch tests on each day, and the first day the split mismatched.

    Attributes:
        p_values: the p-value of each day's test, in day order; ``nan`` for a day whose tested
            counts are all 0 (nothing to test yet).
        statistics: the statistic of each day's test; ``nan`` likewise.
        tested_counts: the units per variant each day's test used: running totals up to and
            including the day if ``cumulative``, the day's own counts otherwise.
        first_day_index: 0-based index of the first day with ``p_value < alpha``; ``None`` if
            no day mismatches.
        alpha: the per-day threshold used.
        cumulative: whether the running totals (True) or each day's counts (False) were tested.
    """

    p_values: tuple[float, ...]
    statistics: tuple[float, ...]
    tested_counts: tuple[tuple[int, ...], ...]
    first_day_index: int | None
    alpha: float
    cumulative: bool


def first_srm_day(
    daily_counts: Sequence[Sequence[int]],
    weights: Sequence[float],
    *,
    alpha: float = 0.001,
    cumulative: bool = True,
    method: SRMMethod = "chi-square",
    correction: bool = False,
) -> SRMOverTime:
    """Test the split on every day and report the first day it mismatched.

    With ``cumulative=True`` (the default) day ``d`` tests the units counted from the first day up
    to and including day ``d``, which is what the experiment's analysis sees on that day; with
    ``cumulative=False`` it tests only the units of day ``d`` (e.g. new units that day), which
    localises when a bug started without the dilution of the earlier, healthy days. Each test is
    :func:`srm_test` (Pearson chi-square, ``k - 1`` df, unless ``method`` says otherwise) at the
    same threshold ``alpha``.

    Testing every day is itself repeated testing: with ``D`` days the chance that some day
    crosses ``alpha`` when the split follows the plan is up to ``D * alpha`` (the Bonferroni
    bound; ``1 - (1 - alpha)**D`` for daily tests, which are independent, and much less for
    cumulative tests, which are strongly correlated). That is why the threshold is strict: at
    the usual 0.001 a 60-day experiment raises a false alarm with probability at most 0.06,
    while a real mismatch (a systematic loss of units) has a chi-square that grows in proportion
    to the number of units, so its p-value falls far below 0.001 within days. ``first_day_index``
    says when the evidence became strong, not when the bug started: a cumulative test needs
    some days of broken data to outweigh the healthy ones, so it usually flags a day after the
    start, and the daily tests (``cumulative=False``) are the better guide to the start.

    Args:
        daily_counts (Sequence[Sequence[int]]): one row per day, in day order, with the units per
            variant in the order of ``weights`` (new units that day for cumulative tests).
        weights (Sequence[float]): planned weights per variant; positive.
        alpha (float): per-day threshold on the p-value; 0.001 by default.
        cumulative (bool): test the running totals (True) or each day alone (False).
        method (Literal["chi-square", "g-test", "exact"]): each day's test (:func:`srm_test`).
        correction (bool): Yates' continuity correction (:func:`srm_test`).

    Returns:
        SRMOverTime: per-day p-values, statistics and tested counts, and the first mismatching
        day's index (or ``None``).

    Raises:
        ValueError: if there is no day, a day has the wrong number of variants or a negative
            count (the message names the day), a weight is not positive, or ``alpha`` is not in
            (0, 1).

    References:
        Fabijan, A., Gupchup, J., Gupta, S., Omhover, J., Qin, W., Vermeer, L., & Dmitriev, P.
        (2019). Diagnosing Sample Ratio Mismatch in Online Controlled Experiments: A Taxonomy and
        Rules of Thumb for Practitioners. KDD 2019.
        Kohavi, R., Tang, D., & Xu, Y. (2020). Trustworthy Online Controlled Experiments.
        Cambridge University Press. Chapter 21 (sample ratio mismatch and trust-related
        guardrails).

    Examples:
        Treatment units start going missing on day 3:

        >>> days = [[10050, 9950], [9980, 10020], [10010, 9990], [10000, 9500], [10030, 9480]]
        >>> over_time = first_srm_day(days, [0.5, 0.5])
        >>> [round(p, 4) for p in over_time.p_values]
        [0.4795, 0.7642, 0.744, 0.0397, 0.0003]
        >>> over_time.first_day_index
        4
        >>> first_srm_day(days, [0.5, 0.5], cumulative=False).first_day_index
        3
    """
    check_alpha(alpha)
    if not all(weight > 0.0 and math.isfinite(weight) for weight in weights):
        raise ValueError(f"Planned weights must be positive and finite; got {list(weights)}.")
    if len(daily_counts) == 0:
        raise ValueError("first_srm_day needs at least one day of counts; got none.")
    for index, day in enumerate(daily_counts):
        if len(day) != len(weights):
            raise ValueError(
                f"Day {index} has {len(day)} variant counts but there are {len(weights)} "
                f"weights; pass the units of every variant on every day, 0 when there are none."
            )
        if any(count < 0 for count in day):
            raise ValueError(f"Day {index} has a negative unit count: {list(day)}.")
    rows = [tuple(int(count) for count in day) for day in daily_counts]
    if cumulative:
        rows = list(
            accumulate(
                rows, lambda total, day: tuple(a + b for a, b in zip(total, day, strict=True))
            )
        )
    p_values, statistics = [], []
    for row in rows:
        if sum(row) == 0:
            p_values.append(math.nan)
            statistics.append(math.nan)
            continue
        result = srm_test(row, weights, method=method, correction=correction)
        p_values.append(result.p_value)
        statistics.append(result.statistic)
    first = next((index for index, p in enumerate(p_values) if p < alpha), None)
    return SRMOverTime(
        p_values=tuple(p_values),
        statistics=tuple(statistics),
        tested_counts=tuple(rows),
        first_day_index=first,
        alpha=alpha,
        cumulative=cumulative,
    )


@dataclass(frozen=True)
class PhasedSRMResult:
    """Sample-ratio-mismatch tests of a ramped rollout, one per allocation phase.

    Attributes:
        p_value: the smallest phase p-value, Bonferroni-adjusted over the ``m`` phases tested,
            ``min(1, m * min_p)``: below ``alpha`` exactly when some phase's p-value is below
            ``alpha / m``.
        phases: each phase's :class:`SRMResult`, in the order given; ``None`` for a phase with
            no units (not tested, not counted in ``m``).
        mismatched: the indices of the phases whose p-value is below ``alpha / m``.
        alpha: the family-wise level over the phases.
        method: the test of each phase and the adjustment, e.g. ``"chi-square per ramp phase
            (Bonferroni over 3)"``.
    """

    p_value: float
    phases: tuple[SRMResult | None, ...]
    mismatched: tuple[int, ...]
    alpha: float
    method: str


def srm_by_phase(
    counts: Sequence[Sequence[int]],
    weights: Sequence[Sequence[float]],
    *,
    alpha: float = 0.001,
    method: SRMMethod = "chi-square",
    correction: bool = False,
    period: str = "ramp phase",
) -> PhasedSRMResult:
    """Sample-ratio-mismatch test of a ramped rollout: each phase against its own planned split.

    In a ramp the planned weights change over time (1 % → 5 % → 50 % treatment), so the units
    pooled over the phases follow no single plan and a test against any one split would flag a
    healthy ramp. Each phase ``p`` holds the units first exposed while it was in force; its units
    per variant ``counts[p]`` are tested by :func:`srm_test` against ``weights[p]``. The phases
    hold disjoint units, so the tests are independent; with ``m`` phases tested, a phase
    mismatches when its p-value is below ``alpha / m`` (Bonferroni; the family-wise false-alarm
    rate is ``1 - (1 - alpha / m)**m``, just below ``alpha``). Phases with no units are skipped.

    Args:
        counts (Sequence[Sequence[int]]): units per variant for each phase, in the order of
            that phase's weights.
        weights (Sequence[Sequence[float]]): each phase's planned weights; positive.
        alpha (float): family-wise level over the phases; 0.001 by default.
        method (Literal["chi-square", "g-test", "exact"]): each phase's test (:func:`srm_test`).
        correction (bool): Yates' continuity correction (:func:`srm_test`).
        period (str): what a phase is, for ``method``: ``ramp phase`` (default), or e.g.
            ``allocation day`` for a bandit's days, each with the split it was allocated.

    Returns:
        PhasedSRMResult: each phase's test, the mismatched phases and the Bonferroni-adjusted
        smallest p-value.

    Raises:
        ValueError: if ``counts`` and ``weights`` have different numbers of phases, no phase has
            a unit, ``alpha`` is not in (0, 1), or a phase's counts or weights are invalid for
            :func:`srm_test` (the message names the phase).

    References:
        Fabijan, A., Gupchup, J., Gupta, S., Omhover, J., Qin, W., Vermeer, L., & Dmitriev, P.
        (2019). Diagnosing Sample Ratio Mismatch in Online Controlled Experiments: A Taxonomy and
        Rules of Thumb for Practitioners. KDD 2019.
        Dunn, O. J. (1961). Multiple Comparisons among Means. Journal of the American
        Statistical Association, 56(293), 52-64 (the Bonferroni adjustment).

    Examples:
        >>> counts = [[9_905, 95], [9_480, 520], [5_020, 4_980]]
        >>> plan = [[0.99, 0.01], [0.95, 0.05], [0.5, 0.5]]
        >>> result = srm_by_phase(counts, plan)
        >>> result.mismatched, round(result.p_value, 4), result.method
        ((), 1.0, 'chi-square per ramp phase (Bonferroni over 3)')
        >>> pooled = [sum(phase[arm] for phase in counts) for arm in (0, 1)]
        >>> f"{srm_test(pooled, plan[-1]).p_value:.0e}"  # pooled against the final split
        '0e+00'
    """
    check_alpha(alpha)
    if len(counts) != len(weights):
        raise ValueError(
            f"srm_by_phase needs one set of weights per phase; got {len(counts)} phases of "
            f"counts and {len(weights)} of weights."
        )
    results: list[SRMResult | None] = []
    for index, (observed, planned) in enumerate(zip(counts, weights, strict=True)):
        if len(observed) == len(planned) and all(count == 0 for count in observed):
            results.append(None)
            continue
        try:
            results.append(srm_test(observed, planned, method=method, correction=correction))
        except ValueError as error:
            raise ValueError(f"Ramp phase {index}: {error}") from error
    tested = [(index, r) for index, r in enumerate(results) if r is not None]
    if not tested:
        raise ValueError("srm_by_phase needs at least one unit in some phase; every one has 0.")
    threshold = alpha / len(tested)
    smallest = min(r.p_value for _, r in tested)
    label = tested[0][1].method
    return PhasedSRMResult(
        p_value=min(1.0, smallest * len(tested)),
        phases=tuple(results),
        mismatched=tuple(index for index, r in tested if r.p_value < threshold),
        alpha=alpha,
        method=f"{label} per {period} (Bonferroni over {len(tested)})",
    )
