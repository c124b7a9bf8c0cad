"""Sample ratio mismatch: are the units split across variants as planned?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True)
class SRMResult:
    """Pearson chi-square goodness-of-fit test of the observed split against the plan.

    Attributes:
        statistic: the chi-square statistic ``sum((observed - expected)**2 / expected)``.
        p_value: upper-tail probability of the chi-square distribution with ``df`` degrees of
            freedom; a small value (0.001 is the usual threshold) means the split is broken.
        df: degrees of freedom, the number of variants minus 1.
        observed: units per variant, in the order given.
        expected: units per variant expected under the planned weights.
    """

    statistic: float
    p_value: float
    df: int
    observed: tuple[int, ...]
    expected: tuple[float, ...]


def srm_test(observed: Sequence[int], weights: Sequence[float]) -> SRMResult:
    """Sample-ratio-mismatch test: Pearson chi-square of the observed units against the weights.

    The weights are normalised to sum to 1, so ``[1, 1]`` and ``[0.5, 0.5]`` are the same plan.
    The expected count of a variant is its weight times the total observed, and the statistic is
    referred to the chi-square distribution with ``k - 1`` degrees of freedom (no continuity
    correction). A mismatch invalidates every effect of the experiment: it signals broken
    assignment or exposure logging, not a treatment effect.

    Args:
        observed (Sequence[int]): units per variant.
        weights (Sequence[float]): planned weights per variant, in the same order; positive.

    Returns:
        SRMResult: statistic, p-value, degrees of freedom, observed and expected counts.

    Raises:
        ValueError: if there are fewer than 2 variants, the lengths differ, a count is negative,
            a weight is not positive, or no unit was observed.

    References:
        Fabijan, A., Gupchup, J., Gupta, S., Omhover, J., Qin, W., Vermeer, L., & Dmitriev, P.
        (2019). Diagnosing Sample Ratio Mismatch in Online Controlled Experiments: A Taxonomy and
        Rules of Thumb for Practitioners. KDD 2019.

    Examples:
        >>> result = srm_test([5050, 4950], [0.5, 0.5])
        >>> round(result.statistic, 4), round(result.p_value, 4), result.df
        (1.0, 0.3173, 1)
        >>> result = srm_test([1000, 520, 480], [2, 1, 1])
        >>> result.expected, round(result.p_value, 4)
        ((1000.0, 500.0, 500.0), 0.4493)
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
    weight_sum = math.fsum(weights)
    expected = tuple(total * weight / weight_sum for weight in weights)
    statistic = math.fsum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    df = len(observed) - 1
    return SRMResult(
        statistic=statistic,
        p_value=float(special.chdtrc(df, statistic)),
        df=df,
        observed=tuple(int(count) for count in observed),
        expected=expected,
    )
