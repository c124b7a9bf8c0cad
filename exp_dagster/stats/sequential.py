"""Sequential tests that stay valid when an experiment is analysed at every look (e.g. daily).

A fixed-horizon test read once a day for 30 days rejects a true null hypothesis far more often
than ``alpha``. Two families control the error rate over all looks:

* Group-sequential alpha spending (Lan & DeMets 1983): :func:`spending_function` says how much of
  ``alpha`` may be spent by each information time, :func:`group_sequential_boundaries` turns that
  into z-scale critical values by recursive numerical integration (Armitage, McPherson & Rowe
  1969), and :func:`group_sequential_test` applies them to the effect estimates of the looks so
  far, with repeated confidence intervals (Jennison & Turnbull 1989).
* Always-valid inference (Johari, Koomen, Pekelis & Walsh 2017, 2022): :func:`always_valid_test`
  is the normal-mixture sequential probability ratio test (mSPRT), with an always-valid p-value
  and a confidence sequence, valid at any number of looks chosen in any data-dependent way.

Both take the effect estimate ``treatment - control`` and its standard error at each look (the
last one is the current look) and assume the canonical joint distribution of Jennison & Turnbull
(2000, ch. 3): the estimates are normal with variance ``se_k**2``, and the score
``S_k = estimate_k / se_k**2`` has independent increments, which holds for cumulative means,
proportions and regression estimates of a growing sample.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy import special

from exp_dagster.stats._common import (
    Alternative,
    check_alpha,
    check_alternative,
    confidence_interval,
    sidedness,
)

SpendingKind = Literal["obrien-fleming", "pocock", "power"]
"""A Lan-DeMets spending function: O'Brien-Fleming type, Pocock type, or the power family
``alpha * t**rho`` (Kim & DeMets 1987)."""

SPENDING_KINDS: tuple[str, ...] = get_args(SpendingKind)

_SPENDING_NAMES = {"obrien-fleming": "O'Brien-Fleming", "pocock": "Pocock", "power": "power"}

# Simpson nodes per standard deviation of the narrowest normal kernel the grid meets; 8 gives
# boundaries accurate to about 1e-6 on the z scale for equally spaced looks.
_NODES_PER_SD = 8
# The grid is cut at this many standard deviations of the score (mass beyond: about 1e-44).
_TAIL_SDS = 14.0
# A look that adds a tiny share of information would need a huge grid; the grid is capped, and
# the boundaries then lose accuracy only at looks whose crossing probability is itself tiny.
_MAX_NODES = 4001


def _check_spending_kind(kind: str, rho: float = 3.0) -> None:
    if kind not in SPENDING_KINDS:
        options = ", ".join(repr(option) for option in SPENDING_KINDS)
        raise ValueError(f"kind must be one of {options}; got {kind!r}.")
    if not (rho > 0.0 and math.isfinite(rho)):
        raise ValueError(
            f"rho, the power family's exponent, must be positive and finite (3 spends about "
            f"like O'Brien-Fleming, 1 about like Pocock); got {rho!r}."
        )


def _spending_name(kind: str, rho: float) -> str:
    return f"power (rho = {rho:g})" if kind == "power" else _SPENDING_NAMES[kind]


def spending_function(t: float, alpha: float, kind: SpendingKind, *, rho: float = 3.0) -> float:
    """Cumulative type I error that may be spent by information time ``t`` (Lan & DeMets 1983).

    * ``"obrien-fleming"``: ``alpha(t) = 2 * (1 - Phi(Phi^-1(1 - alpha/2) / sqrt(t)))``, which
      spends almost nothing early and keeps the final critical value close to the fixed-sample
      one.
    * ``"pocock"``: ``alpha(t) = alpha * log(1 + (e - 1) * t)``, which spends more evenly and
      gives nearly constant boundaries.
    * ``"power"``: ``alpha(t) = alpha * t**rho`` (Kim & DeMets 1987; a family spotify-confidence
      offers): ``rho = 3`` spends about like O'Brien-Fleming, ``rho = 1`` about like
      Pocock.

    All are increasing with ``alpha(0) = 0`` and ``alpha(1) = alpha``. The function is applied to
    the error of one tail: :func:`group_sequential_boundaries` spends ``spending_function(t,
    alpha)`` for a one-sided test of level ``alpha`` and ``spending_function(t, alpha / 2)`` on
    each side of a two-sided test of level ``alpha`` (the convention of Jennison & Turnbull 2000
    and of the R packages gsDesign and ldbounds).

    Args:
        t (float): information (or calendar) time in ``[0, 1]``; 1 is the planned end.
        alpha (float): total error to spend by ``t = 1``, in ``(0, 1)``.
        kind (Literal["obrien-fleming", "pocock", "power"]): the spending function.
        rho (float): the power family's exponent (``kind="power"`` only); positive.

    Returns:
        float: the cumulative error spent by ``t``, in ``[0, alpha]``.

    Raises:
        ValueError: if ``t`` is outside ``[0, 1]``, or ``alpha`` or ``kind`` is invalid.

    References:
        Lan, K. K. G., & DeMets, D. L. (1983). Discrete sequential boundaries for clinical
        trials. Biometrika, 70(3), 659-663.
        Kim, K., & DeMets, D. L. (1987). Design and analysis of group sequential tests based on
        the type I error spending rate function. Biometrika, 74(1), 149-154.

    Examples:
        >>> round(spending_function(0.5, 0.05, "power", rho=2), 6)
        0.0125
        >>> round(spending_function(0.5, 0.05, "obrien-fleming"), 6)
        0.005575
        >>> round(spending_function(0.5, 0.05, "pocock"), 6)
        0.031006
        >>> spending_function(1.0, 0.05, "pocock"), spending_function(0.0, 0.05, "pocock")
        (0.05, 0.0)
    """
    check_alpha(alpha)
    _check_spending_kind(kind, rho)
    if not 0.0 <= t <= 1.0:
        raise ValueError(
            f"The spending time t must be in [0, 1] (the share of the planned information or "
            f"duration); got {t!r}."
        )
    if t == 0.0:
        return 0.0
    if t == 1.0:
        return alpha
    if kind == "obrien-fleming":
        # 2 * Phi(-z / sqrt(t)) keeps full precision for the tiny amounts spent early.
        return float(min(alpha, 2.0 * special.ndtr(special.ndtri(alpha / 2.0) / math.sqrt(t))))
    if kind == "power":
        return alpha * t**rho
    return alpha * math.log1p((math.e - 1.0) * t)


def _check_looks(**sequences: Sequence[float]) -> int:
    """Raise unless the sequences are non-empty, of equal length and finite; return the length."""
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) != 1:
        described = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise ValueError(f"Pass one value per look in every sequence; {described}.")
    n_looks = next(iter(lengths.values()))
    if n_looks == 0:
        raise ValueError("Pass at least one look (the current one is the last).")
    for name, values in sequences.items():
        if not all(math.isfinite(value) for value in values):
            raise ValueError(f"{name} must be finite at every look; got {list(values)!r}.")
    return n_looks


def _check_spending_times(spending_times: Sequence[float]) -> None:
    previous = 0.0
    for look, t in enumerate(spending_times, start=1):
        if not 0.0 < t <= 1.0:
            raise ValueError(
                f"Spending times must be in (0, 1] (the share of the planned duration or "
                f"information); look {look} has {t!r}."
            )
        if t < previous:
            raise ValueError(
                f"Spending times must be non-decreasing; look {look} has {t!r} after {previous!r}."
            )
        previous = t


def _check_positive(name: str, values: Sequence[float]) -> None:
    for look, value in enumerate(values, start=1):
        if not value > 0.0:
            raise ValueError(
                f"{name} must be positive at every look; look {look} has {value!r}. A look "
                f"without data has no {name.rstrip('s').replace('_', ' ')}: leave it out."
            )


def _simpson_weights(n_nodes: int, spacing: float) -> np.ndarray:
    weights = np.full(n_nodes, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    return weights * spacing / 3.0


def _design(
    spending_times: Sequence[float],
    information: Sequence[float],
    alpha: float,
    kind: SpendingKind,
    alternative: Alternative,
    rho: float = 3.0,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Z-scale boundaries and the cumulative error actually spent through each look.

    The state carried from look to look is the sub-density of the score ``S_k`` on the
    continuation region (paths that have not crossed yet), held as Simpson nodes and masses
    (weight times density); before the first look it is a unit mass at 0.
    """
    check_alpha(alpha)
    check_alternative(alternative)
    _check_spending_kind(kind, rho)
    _check_looks(spending_times=spending_times, information=information)
    _check_spending_times(spending_times)
    _check_positive("information", information)

    two_sided = alternative == "two-sided"
    tail_alpha = alpha / 2.0 if two_sided else alpha
    tails = 2.0 if two_sided else 1.0
    cumulative = [tails * spending_function(t, tail_alpha, kind, rho=rho) for t in spending_times]
    # Information is normalised so that the grid does not depend on its units.
    scale = max(information)
    info = [value / scale for value in information]

    # Looks that add information, with the one that follows each, to size the grid.
    active = []
    running = 0.0
    for look, value in enumerate(info):
        if value > running:
            active.append(look)
            running = value
    following = dict(itertools.pairwise(active))
    is_active = set(active)

    boundaries = [math.inf] * len(info)
    spent = [0.0] * len(info)
    nodes, masses = np.zeros(1), np.ones(1)
    previous_info, previous_spent = 0.0, 0.0
    previous_boundary = math.inf
    for look in range(len(info)):
        if look not in is_active:
            # No new information: in the canonical model the statistic is the previous look's,
            # so testing it against the previous boundary adds no error, and nothing is spent.
            spent[look] = previous_spent
            boundaries[look] = previous_boundary
            continue
        increment_sd = math.sqrt(info[look] - previous_info)
        target = cumulative[look] - previous_spent
        score_boundary = math.inf
        if target > 1e-300:
            score_boundary = _solve_boundary(nodes, masses, increment_sd, target, two_sided)
            boundaries[look] = score_boundary / math.sqrt(info[look])
        previous_boundary = boundaries[look]
        previous_spent = max(previous_spent, cumulative[look])
        spent[look] = previous_spent
        if look in following:
            next_sd = math.sqrt(info[following[look]] - info[look])
            nodes, masses = _propagate(
                nodes, masses, increment_sd, next_sd, info[look], score_boundary, two_sided
            )
        previous_info = info[look]
    return tuple(boundaries), tuple(spent)


def _crossing_probability(
    nodes: np.ndarray,
    masses: np.ndarray,
    increment_sd: float,
    score_boundary: float,
    two_sided: bool,
    increment_mean: float = 0.0,
) -> float:
    """P(not crossed before, and S_k beyond the boundary) for S_k = S_{k-1} + N(mean, sd**2)
    (mean 0 under the null hypothesis, ``drift * (I_k - I_{k-1})`` under an alternative)."""
    if increment_mean != 0.0:
        nodes = nodes + increment_mean
    upper = special.ndtr((nodes - score_boundary) / increment_sd)
    if two_sided:
        upper = upper + special.ndtr((-score_boundary - nodes) / increment_sd)
    return float(masses @ upper)


def _solve_boundary(
    nodes: np.ndarray, masses: np.ndarray, increment_sd: float, target: float, two_sided: bool
) -> float:
    """The score-scale boundary whose first-crossing probability equals ``target``."""
    reach = float(np.max(np.abs(nodes))) + increment_sd

    def excess(score_boundary: float) -> float:
        crossing = _crossing_probability(nodes, masses, increment_sd, score_boundary, two_sided)
        return crossing - target

    low = 0.0 if two_sided else -reach - 40.0 * increment_sd
    high = reach + 10.0 * increment_sd
    while excess(high) > 0.0:
        high += 10.0 * increment_sd
    if excess(low) <= 0.0:
        # The paths still running cannot carry the error asked for; spend all that is left.
        return low
    # Imported here: scipy.optimize adds a quarter second to every import of the engine.
    from scipy import optimize

    return float(optimize.brentq(excess, low, high, xtol=1e-13, rtol=1e-14, maxiter=200))


def _propagate(
    nodes: np.ndarray,
    masses: np.ndarray,
    increment_sd: float,
    next_sd: float,
    info: float,
    score_boundary: float,
    two_sided: bool,
    drift: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Simpson nodes and masses of the sub-density of S_k on its continuation region.

    ``drift`` is the mean of the score per unit of information (0 under the null hypothesis):
    the increment since the previous look has mean ``drift * increment_sd**2`` and the grid is
    centred on ``E[S_k] = drift * info``.
    """
    if drift == 0.0:
        upper = min(score_boundary, _TAIL_SDS * math.sqrt(info))
        lower = -upper if two_sided else -_TAIL_SDS * math.sqrt(info)
    else:
        centre, reach = drift * info, _TAIL_SDS * math.sqrt(info)
        upper = min(score_boundary, centre + reach)
        lower = max(-score_boundary, centre - reach) if two_sided else centre - reach
        nodes = nodes + drift * increment_sd**2
    spacing = min(increment_sd, next_sd) / _NODES_PER_SD
    intervals = 2 * max(8, math.ceil((upper - lower) / (2.0 * spacing)))
    intervals = min(intervals, _MAX_NODES - 1)
    new_nodes = np.linspace(lower, upper, intervals + 1)
    standardised = (new_nodes[:, None] - nodes[None, :]) / increment_sd
    density = np.exp(-0.5 * standardised**2) @ masses / (increment_sd * math.sqrt(2.0 * math.pi))
    weights = _simpson_weights(intervals + 1, (upper - lower) / intervals)
    return new_nodes, weights * density


def group_sequential_boundaries(
    spending_times: Sequence[float],
    information: Sequence[float],
    *,
    alpha: float,
    kind: SpendingKind,
    alternative: Alternative = "two-sided",
    rho: float = 3.0,
) -> tuple[float, ...]:
    """Z-scale critical values of a Lan-DeMets group-sequential test at the given looks.

    With ``Z_k = S_k / sqrt(I_k)`` and a score ``S`` with independent normal increments of
    variance ``I_k - I_{k-1}`` (the canonical joint distribution), the boundaries ``b_k`` make the
    probability under the null hypothesis of first crossing at look ``k`` equal to
    ``alpha(t_k) - alpha(t_{k-1})``, where ``alpha(t)`` is the error allowed by the spending
    function at spending time ``t``. They are found look by look by recursive numerical
    integration of the sub-density of the score over the continuation region (Armitage,
    McPherson & Rowe 1969; Simpson's rule on a grid as in Jennison & Turnbull 2000, ch. 19) and
    root finding, not by simulation.

    * ``"two-sided"``: symmetric boundaries, reject when ``|Z_k| >= b_k``; each tail spends
      ``spending_function(t, alpha / 2, kind)``, so the total is ``alpha`` at ``t = 1``.
    * ``"greater"``: reject when ``Z_k >= b_k``; ``"less"``: reject when ``Z_k <= -b_k``. The
      tail spends ``spending_function(t, alpha, kind)``; there is no futility boundary.

    The spending time (the share of the planned duration or sample, chosen by the caller) sets
    how much error is spent; the information (``1 / se**2``, only its ratios matter) sets the
    correlation ``sqrt(I_j / I_k)`` between looks. A look whose information does not exceed the
    largest earlier information spends nothing and repeats the previous look's boundary (in the
    canonical model its statistic is the previous look's, so the repeat adds no error); a look
    whose spending time equals the previous one spends nothing and gets the boundary ``+inf``.
    Unspent error is spent at the next look that adds information and time. Pass the final look
    with spending time 1 to spend all of ``alpha``.

    Args:
        spending_times (Sequence[float]): spending time of each look, non-decreasing in
            ``(0, 1]``.
        information (Sequence[float]): statistical information (``1 / se**2``) at each look,
            positive.
        alpha (float): overall significance level, in ``(0, 1)``.
        kind (Literal["obrien-fleming", "pocock", "power"]): the spending function.
        rho (float): the power family's exponent (``kind="power"`` only).
        alternative (Literal["two-sided", "greater", "less"]): which boundaries; for
            ``"less"`` the boundary is ``-b_k``.

    Returns:
        tuple[float, ...]: the positive critical value ``b_k`` of each look (``+inf`` where no
        error is spent).

    Raises:
        ValueError: if the sequences are empty or of different lengths, a spending time is
            outside ``(0, 1]`` or decreases, an information is not positive, or ``alpha``,
            ``kind`` or ``alternative`` is invalid.

    References:
        Lan, K. K. G., & DeMets, D. L. (1983). Discrete sequential boundaries for clinical
        trials. Biometrika, 70(3), 659-663.
        O'Brien, P. C., & Fleming, T. R. (1979). A multiple testing procedure for clinical
        trials. Biometrics, 35(3), 549-556.
        Pocock, S. J. (1977). Group sequential methods in the design and analysis of clinical
        trials. Biometrika, 64(2), 191-199.
        Armitage, P., McPherson, C. K., & Rowe, B. C. (1969). Repeated significance tests on
        accumulating data. JRSS A, 132(2), 235-244.
        Jennison, C., & Turnbull, B. W. (2000). Group Sequential Methods with Applications to
        Clinical Trials. Chapman & Hall/CRC, ch. 3, 7 and 19.

    Examples:
        >>> looks = [0.2, 0.4, 0.6, 0.8, 1.0]
        >>> bounds = group_sequential_boundaries(looks, looks, alpha=0.05, kind="obrien-fleming")
        >>> [round(b, 3) for b in bounds]
        [4.877, 3.357, 2.68, 2.29, 2.031]
        >>> round(group_sequential_boundaries([1.0], [7.0], alpha=0.05, kind="pocock")[0], 5)
        1.95996
    """
    boundaries, _ = _design(spending_times, information, alpha, kind, alternative, rho)
    return boundaries


@dataclass(frozen=True)
class SequentialPower:
    """Operating characteristics of a group-sequential design at one drift.

    Attributes:
        drift: the standardised effect at the maximum information, ``E[Z]`` at the look with
            the most information (``effect * sqrt(I_max)``); its sign says which boundary is the
            efficacy one (two-sided).
        power: probability of crossing the efficacy boundary (the one in the drift's direction)
            at some look by the last one, stopping at the first crossing.
        wrong_direction: probability of crossing the opposite boundary first (two-sided only;
            0 for one-sided tests), a rejection in the wrong direction.
        crossing_probabilities: per look, the probability of first crossing the efficacy
            boundary there; they sum to ``power``.
        expected_information: expected information at stopping (at the first crossing of either
            boundary, else at the last look), as a share of the maximum information.
        boundaries: the z-scale critical values used.
        method: one sentence naming the design and its conventions.
    """

    drift: float
    power: float
    wrong_direction: float
    crossing_probabilities: tuple[float, ...]
    expected_information: float
    boundaries: tuple[float, ...]
    method: str


def _sequential_design(
    spending_times: Sequence[float],
    information: Sequence[float] | None,
    boundaries: Sequence[float] | None,
    alpha: float,
    kind: SpendingKind,
    alternative: Alternative,
    rho: float,
) -> tuple[list[float], tuple[float, ...]]:
    """Information fractions (of the maximum) and boundaries of a planned design."""
    info = list(spending_times if information is None else information)
    _check_looks(spending_times=spending_times, information=info)
    _check_positive("information", info)
    if any(later <= earlier for earlier, later in itertools.pairwise(info)):
        raise ValueError(
            f"A planned design needs strictly increasing information at its looks; got {info!r}."
        )
    if boundaries is None:
        bounds, _ = _design(spending_times, info, alpha, kind, alternative, rho)
    else:
        check_alternative(alternative)
        _check_looks(spending_times=spending_times, boundaries=[min(b, 1e308) for b in boundaries])
        if not all(b > 0.0 for b in boundaries):
            raise ValueError(f"Boundaries must be positive z values; got {list(boundaries)!r}.")
        bounds = tuple(float(b) for b in boundaries)
    return [value / info[-1] for value in info], bounds


def group_sequential_power(
    drift: float,
    spending_times: Sequence[float],
    *,
    alpha: float = 0.05,
    kind: SpendingKind = "obrien-fleming",
    alternative: Alternative = "two-sided",
    rho: float = 3.0,
    information: Sequence[float] | None = None,
    boundaries: Sequence[float] | None = None,
) -> SequentialPower:
    """Power of a group-sequential design: the probability of crossing the efficacy boundary by
    the last look when the standardised effect at full information is ``drift``.

    In the canonical joint distribution with information ``I_k`` at look ``k`` and maximum
    information ``I_K``, the score has independent increments ``N(delta (I_k - I_{k-1}),
    I_k - I_{k-1})``, where ``delta sqrt(I_K) = drift``: the z statistic a fixed-horizon test at
    the maximum information would expect. The probability of first crossing at each look is
    found by the same recursive numerical integration as the boundaries
    (:func:`group_sequential_boundaries`), with the drift in the increments (Jennison & Turnbull
    2000, ch. 19). A fixed-horizon test (one look) has power ``Phi(drift - z_{1-alpha/2})``
    (two-sided, efficacy side only), so at ``drift = z_{1-alpha/2} + z_power`` it has the
    planned power; a design with interim looks has less, which :func:`sequential_inflation_factor`
    makes up.

    ``"greater"`` crosses when ``Z_k >= b_k``, ``"less"`` when ``Z_k <= -b_k`` (the drift
    should then be negative: the power is that of the boundary in the alternative's
    direction); ``"two-sided"`` stops at either boundary, the efficacy one being on the drift's
    side, and reports the other as ``wrong_direction``.

    Args:
        drift (float): standardised effect at the maximum information, ``effect / se`` of a
            fixed-horizon test at the planned end.
        spending_times (Sequence[float]): spending time of each planned look, in ``(0, 1]``.
        alpha (float): overall significance level of the design.
        kind (Literal["obrien-fleming", "pocock", "power"]): the spending function.
        alternative (Literal["two-sided", "greater", "less"]): the design's alternative.
        rho (float): the power family's exponent (``kind="power"`` only).
        information (Sequence[float] | None): planned information at each look, strictly
            increasing (only ratios matter); default the spending times.
        boundaries (Sequence[float] | None): z-scale critical values to use instead of the
            spending design's (e.g. classical Pocock or O'Brien-Fleming boundaries); ``inf``
            where a look cannot reject.

    Returns:
        SequentialPower: power, wrong-direction probability, per-look crossing probabilities,
        expected information at stopping and the boundaries.

    Raises:
        ValueError: if ``drift`` is not finite, the looks are invalid, the information does not
            increase, or ``alpha``, ``kind`` or ``alternative`` is invalid.

    References:
        Jennison, C., & Turnbull, B. W. (2000). Group Sequential Methods with Applications to
        Clinical Trials. Chapman & Hall/CRC, ch. 2, 7 and 19.
        Armitage, P., McPherson, C. K., & Rowe, B. C. (1969). Repeated significance tests on
        accumulating data. JRSS A, 132(2), 235-244.

    Examples:
        >>> looks = [0.2, 0.4, 0.6, 0.8, 1.0]
        >>> fixed = group_sequential_power(2.8016, [1.0])
        >>> design = group_sequential_power(2.8016, looks)
        >>> round(fixed.power, 4), round(design.power, 4), round(design.expected_information, 3)
        (0.8, 0.7903, 0.809)
    """
    if not math.isfinite(drift):
        raise ValueError(f"drift must be a finite standardised effect; got {drift!r}.")
    fractions, bounds = _sequential_design(
        spending_times, information, boundaries, alpha, kind, alternative, rho
    )
    two_sided = alternative == "two-sided"
    # Reflect so that efficacy is the upper boundary: "less" and a negative two-sided drift.
    oriented = -drift if alternative == "less" or (two_sided and drift < 0.0) else drift
    crossings, wrong = [], []
    nodes, masses = np.zeros(1), np.ones(1)
    previous = 0.0
    for look, fraction in enumerate(fractions):
        increment_sd = math.sqrt(fraction - previous)
        increment_mean = oriented * (fraction - previous)
        score_boundary = bounds[look] * math.sqrt(fraction)
        crossings.append(
            _crossing_probability(
                nodes, masses, increment_sd, score_boundary, False, increment_mean
            )
        )
        wrong.append(
            _crossing_probability(
                -nodes, masses, increment_sd, score_boundary, False, -increment_mean
            )
            if two_sided
            else 0.0
        )
        if look + 1 < len(fractions):
            next_sd = math.sqrt(fractions[look + 1] - fraction)
            nodes, masses = _propagate(
                nodes,
                masses,
                increment_sd,
                next_sd,
                fraction,
                score_boundary,
                two_sided,
                drift=oriented,
            )
        previous = fraction
    stopped = [c + w for c, w in zip(crossings, wrong, strict=True)]
    expected = math.fsum(p * t for p, t in zip(stopped, fractions, strict=True))
    expected += 1.0 - math.fsum(stopped)
    n_looks = len(fractions)
    return SequentialPower(
        drift=drift,
        power=math.fsum(crossings),
        wrong_direction=math.fsum(wrong),
        crossing_probabilities=tuple(crossings),
        expected_information=expected,
        boundaries=tuple(bounds),
        method=(
            f"{sidedness(alternative)} group-sequential z-test over {n_looks} planned "
            f"look{'s' if n_looks > 1 else ''} ("
            + (
                "boundaries as given"
                if boundaries is not None
                else (
                    f"Lan-DeMets {_spending_name(kind, rho)}-type alpha spending at level {alpha:g}"
                )
            )
            + f"); power at drift {drift:g} by numerical integration"
        ),
    )


def sequential_inflation_factor(
    spending_times: Sequence[float],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    kind: SpendingKind = "obrien-fleming",
    alternative: Alternative = "two-sided",
    rho: float = 3.0,
    information: Sequence[float] | None = None,
    boundaries: Sequence[float] | None = None,
) -> float:
    """How much more maximum information a group-sequential design needs than a fixed-horizon
    test to reach the same power: ``R = I_max / I_fixed`` (Jennison & Turnbull 2000, Tables 2.3
    and 2.4; gsDesign's and rpact's "inflation factor").

    The fixed test reaches ``power`` at the drift ``z_{1-a} + z_power`` (``a = alpha / 2``
    two-sided, else ``alpha``), the design at the drift ``d`` where
    :func:`group_sequential_power` equals ``power``, so ``R = (d / (z_{1-a} + z_power))**2``:
    multiply a fixed-horizon sample size (:func:`~exp_dagster.stats.power.sample_size`) by
    ``R`` to plan the design's maximum. The boundaries depend only on the information
    fractions, so ``R`` does not depend on the effect or the variance.

    Args:
        spending_times (Sequence[float]): spending time of each planned look, in ``(0, 1]``.
        alpha (float): overall significance level.
        power (float): target power, above ``alpha``.
        kind (Literal["obrien-fleming", "pocock", "power"]): the spending function.
        alternative (Literal["two-sided", "greater", "less"]): the design's alternative.
        rho (float): the power family's exponent (``kind="power"`` only).
        information (Sequence[float] | None): planned information fractions; default the
            spending times.
        boundaries (Sequence[float] | None): z-scale critical values instead of the spending
            design's.

    Returns:
        float: the inflation factor, at least about 1.

    Raises:
        ValueError: if ``power`` is not in ``(alpha, 1)``, or for the inputs
            :func:`group_sequential_power` rejects.

    References:
        Jennison, C., & Turnbull, B. W. (2000). Group Sequential Methods with Applications to
        Clinical Trials. Chapman & Hall/CRC, ch. 2 and 7.

    Examples:
        >>> round(sequential_inflation_factor([0.2, 0.4, 0.6, 0.8, 1.0]), 4)
        1.0247
        >>> round(sequential_inflation_factor([0.5, 1.0], kind="pocock", power=0.9), 4)
        1.111
    """
    check_alpha(alpha)
    if not alpha < power < 1.0:
        raise ValueError(f"power must be between alpha ({alpha:g}) and 1, e.g. 0.8; got {power!r}.")
    fractions, bounds = _sequential_design(
        spending_times, information, boundaries, alpha, kind, alternative, rho
    )
    tail_alpha = alpha / 2.0 if alternative == "two-sided" else alpha
    fixed_drift = float(special.ndtri(1.0 - tail_alpha) + special.ndtri(power))
    sign = -1.0 if alternative == "less" else 1.0

    def shortfall(drift: float) -> float:
        achieved = group_sequential_power(
            sign * drift, spending_times, alpha=alpha, alternative=alternative,
            information=fractions, boundaries=bounds,
        ).power  # fmt: skip
        return achieved - power

    high = fixed_drift
    while shortfall(high) < 0.0:
        high *= 1.5
    from scipy import optimize  # here, not at the top: see _solve_boundary

    drift = float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12, rtol=1e-12))
    return (drift / fixed_drift) ** 2


@dataclass(frozen=True)
class GroupSequentialResult:
    """A group-sequential test after the looks so far; the last look is the current one.

    Attributes:
        look: 1-based index of the current look (the number of looks so far).
        boundaries: z-scale critical value of every look so far (``+inf`` where nothing was
            spent); a look crosses when ``|z| >= b`` (two-sided), ``z >= b`` (``"greater"``) or
            ``z <= -b`` (``"less"``).
        z_statistics: ``estimate / std_error`` at every look so far.
        alpha_spent: cumulative type I error spent through the current look.
        boundary: the current look's critical value, ``boundaries[-1]``.
        nominal_alpha: the fixed-horizon p-value threshold equivalent to ``boundary``, with the
            test's sidedness: ``2 * (1 - Phi(boundary))`` two-sided, ``1 - Phi(boundary)``
            one-sided; the current look crosses when its ordinary p-value is at most this.
        crossed: True if any look so far crossed its boundary: once crossed, the test has
            rejected the null hypothesis, whatever later looks show.
        first_crossing: 1-based index of the first look that crossed, or None.
        ci_low: lower bound of the repeated confidence interval at the current look,
            ``estimate - boundary * std_error`` (``-inf`` for ``"less"``, or when the boundary is
            infinite).
        ci_high: upper bound, ``estimate + boundary * std_error`` (``+inf`` for ``"greater"``).
        method: one sentence naming the test and its conventions.
    """

    look: int
    boundaries: tuple[float, ...]
    z_statistics: tuple[float, ...]
    alpha_spent: float
    boundary: float
    nominal_alpha: float
    crossed: bool
    first_crossing: int | None
    ci_low: float
    ci_high: float
    method: str


def _crosses(z: float, boundary: float, alternative: Alternative) -> bool:
    if alternative == "greater":
        return z >= boundary
    if alternative == "less":
        return z <= -boundary
    return abs(z) >= boundary


def group_sequential_test(
    estimates: Sequence[float],
    std_errors: Sequence[float],
    spending_times: Sequence[float],
    *,
    alpha: float = 0.05,
    kind: SpendingKind = "obrien-fleming",
    alternative: Alternative = "two-sided",
    information: Sequence[float] | None = None,
    rho: float = 3.0,
) -> GroupSequentialResult:
    """Lan-DeMets group-sequential test of ``treatment - control = 0`` over the looks so far.

    Each look's information is ``1 / std_error**2`` unless ``information`` is given; the
    boundaries are those of
    :func:`group_sequential_boundaries` (two-sided: ``alpha / 2`` spent on each side), recomputed
    from all looks so far, so looks can be irregular and the information observed rather than
    planned. The test rejects at the first look whose z statistic crosses its boundary, and
    stays rejected. The repeated confidence interval ``estimate -/+ boundary * std_error``
    (Jennison & Turnbull 1989) covers the true effect at all looks simultaneously with
    probability ``1 - alpha``; it is one-sided for one-sided alternatives and excludes 0 exactly
    when the current look crosses.

    Args:
        estimates (Sequence[float]): the effect estimate at each look, the current one last.
        std_errors (Sequence[float]): its standard error at each look, positive.
        spending_times (Sequence[float]): spending time of each look, non-decreasing in
            ``(0, 1]``: typically days elapsed over planned days, or units over planned units;
            1 at the planned final look.
        alpha (float): overall significance level over all looks.
        kind (Literal["obrien-fleming", "pocock", "power"]): the spending function.
        rho (float): the power family's exponent (``kind="power"`` only).
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests whether
            ``treatment - control > 0``.
        information (Sequence[float] | None): the information of each look, which sets the
            correlation ``sqrt(I_j / I_k)`` of the looks' z statistics (only ratios matter).
            Default ``1 / std_error**2``, right when the metric's scale is fixed (a per-unit
            average, a ratio). For a cumulative metric (a per-unit sum, a count, "ever
            converted"), whose values and standard error grow with time, pass the scale-free
            information ``(scale / std_error)**2`` with ``scale`` the pooled mean at that look:
            ``1 / std_error**2`` would fall from look to look and leave no error to spend.

    Returns:
        GroupSequentialResult: boundaries, z statistics, error spent, the crossing decision and
        the repeated confidence interval at the current look.

    Raises:
        ValueError: if the sequences are empty, of different lengths or not finite, a standard
            error is not positive, a spending time is outside ``(0, 1]`` or decreases, or
            ``alpha``, ``kind`` or ``alternative`` is invalid.

    References:
        Lan, K. K. G., & DeMets, D. L. (1983). Discrete sequential boundaries for clinical
        trials. Biometrika, 70(3), 659-663.
        Jennison, C., & Turnbull, B. W. (1989). Interim analyses: the repeated confidence
        interval approach. JRSS B, 51(3), 305-361.
        Jennison, C., & Turnbull, B. W. (2000). Group Sequential Methods with Applications to
        Clinical Trials. Chapman & Hall/CRC.

    Examples:
        >>> result = group_sequential_test(
        ...     estimates=[0.9, 0.55, 0.5], std_errors=[0.4, 0.25, 0.2],
        ...     spending_times=[0.25, 0.5, 0.75],
        ... )
        >>> [round(z, 2) for z in result.z_statistics], [round(b, 3) for b in result.boundaries]
        ([2.25, 2.2, 2.5], [4.333, 2.963, 2.361])
        >>> result.crossed, result.first_crossing, round(result.alpha_spent, 4)
        (True, 3, 0.0193)
        >>> round(result.ci_low, 4), round(result.ci_high, 4)
        (0.0277, 0.9723)
    """
    n_looks = _check_looks(
        estimates=estimates, std_errors=std_errors, spending_times=spending_times
    )
    _check_positive("std_errors", std_errors)
    default_information = information is None
    if information is None:
        information = [1.0 / se**2 for se in std_errors]
    elif len(information) != n_looks:
        raise ValueError(
            f"information needs one value per look: {n_looks} looks, {len(information)} values."
        )
    boundaries, spent = _design(spending_times, information, alpha, kind, alternative, rho)
    z_statistics = tuple(estimate / se for estimate, se in zip(estimates, std_errors, strict=True))
    crossings = [
        look
        for look, (z, b) in enumerate(zip(z_statistics, boundaries, strict=True), start=1)
        if _crosses(z, b, alternative)
    ]
    boundary = boundaries[-1]
    tails = 2.0 if alternative == "two-sided" else 1.0
    ci_low, ci_high = confidence_interval(estimates[-1], std_errors[-1], boundary, alternative)
    return GroupSequentialResult(
        look=n_looks,
        boundaries=boundaries,
        z_statistics=z_statistics,
        alpha_spent=spent[-1],
        boundary=boundary,
        nominal_alpha=tails * float(special.ndtr(-boundary)),
        crossed=bool(crossings),
        first_crossing=crossings[0] if crossings else None,
        ci_low=ci_low,
        ci_high=ci_high,
        method=(
            f"{sidedness(alternative)} group-sequential z-test with Lan-DeMets "
            f"{_spending_name(kind, rho)}-type alpha "
            f"spending over {n_looks} look{'s' if n_looks > 1 else ''} (information "
            f"{'1/se^2' if default_information else 'as given'}, boundaries by numerical "
            f"integration); repeated confidence interval"
        ),
    )


@dataclass(frozen=True)
class AlwaysValidResult:
    """The mixture SPRT after the looks so far; the last look is the current one.

    Attributes:
        p_value: the always-valid p-value, ``min(1, min over looks of 1 / likelihood ratio)``;
            ``P(p_value <= alpha at any look) <= alpha`` under the null hypothesis.
        ci_low: lower bound of the confidence sequence, the running maximum of the per-look
            lower bounds (``-inf`` for ``"less"``); with ``ci_high`` it covers the true effect at
            all looks simultaneously with probability at least ``1 - alpha``. Under the model,
            the two-sided intersection is empty (``ci_low > ci_high``) with probability at most
            ``alpha``; it is then reported as is.
        ci_high: upper bound of the confidence sequence, the running minimum of the per-look
            upper bounds (``+inf`` for ``"greater"``).
        likelihood_ratio: the mixture likelihood ratio ``Lambda`` at the current look (``inf``
            if it overflows).
        rejected: ``p_value <= alpha``; once True, it stays True at later looks.
        first_rejection: 1-based index of the first look with ``1 / Lambda <= alpha``, or None.
        method: one sentence naming the test and its conventions.
    """

    p_value: float
    ci_low: float
    ci_high: float
    likelihood_ratio: float
    rejected: bool
    first_rejection: int | None
    method: str


# Newton's method on the convex, increasing z**2 / 2 + log Phi(z) stops when a step is this small
# relative to z; it converges quadratically, in under 10 steps from the starting point used.
_NEWTON_TOLERANCE = 1e-15
_NEWTON_STEPS = 100


def _half_normal_mixture_z(level: np.ndarray) -> np.ndarray:
    """The ``z`` with ``z**2 / 2 + log Phi(z) = level``, elementwise.

    ``h(z) = z**2 / 2 + log Phi(z)`` is increasing (``h' = z + phi / Phi > 0``) and convex
    (``h'' = 1 - z r - r**2`` with ``r = phi / Phi`` is the variance of a standard normal truncated
    above at ``z``, in ``(0, 1)``), so Newton's method started to the right of the root decreases
    monotonically to it. ``z0 = sqrt(2 max(level, 0) + 2)`` is to the right: ``h(z0) >= level + 1
    + log Phi(sqrt(2)) > level``.
    """
    z = np.sqrt(2.0 * np.maximum(level, 0.0) + 2.0)
    for _ in range(_NEWTON_STEPS):
        log_cdf = special.log_ndtr(z)
        slope = z + np.exp(-0.5 * z**2 - 0.5 * math.log(2.0 * math.pi) - log_cdf)
        step = (0.5 * z**2 + log_cdf - level) / slope
        z = z - step
        if np.all(np.abs(step) <= _NEWTON_TOLERANCE * (1.0 + np.abs(z))):
            break
    return z


def _check_tau(tau: float) -> None:
    if not (math.isfinite(tau) and tau > 0.0):
        raise ValueError(
            f"tau (the standard deviation of the mixture on the effect) must be positive and "
            f"finite, e.g. the absolute minimum detectable effect; got {tau!r}."
        )


def always_valid_test(
    estimates: Sequence[float],
    std_errors: Sequence[float],
    *,
    alpha: float = 0.05,
    tau: float,
    alternative: Alternative = "two-sided",
    null_value: float = 0.0,
) -> AlwaysValidResult:
    """Mixture sequential probability ratio test (mSPRT) with a confidence sequence.

    For an estimate ``x`` of the effect with known variance ``V = se**2`` and a normal mixing
    distribution ``N(0, tau**2)`` on the effect, the mixture likelihood ratio of "effect
    ``~ N(0, tau**2)``" against "effect = 0" is
    ``Lambda = sqrt(V / (V + tau**2)) * exp(tau**2 x**2 / (2 V (V + tau**2)))``, a nonnegative
    martingale under the null hypothesis, so by Ville's inequality
    ``p = min(1, min over looks of 1 / Lambda)`` is a p-value valid at every look, however the
    looks are chosen (Robbins 1970; Johari et al. 2017, 2022). Inverting the test of each effect
    value gives, at each look, ``x -/+ sqrt(V (V + tau**2) / tau**2 * (2 log(1 / alpha) +
    log((V + tau**2) / V)))``; the reported confidence sequence is the running intersection of
    these intervals over the looks so far.

    One-sided (``alternative="greater"`` or ``"less"``): the mixing distribution is the
    half-normal on the side of the alternative, density ``2 N(d; 0, tau**2)`` for ``d >= 0``
    (Howard, Ramdas, McAuliffe & Sekhon 2021, the one-sided normal mixture). With
    ``u = x - null_value`` for ``"greater"`` (``null_value - x`` for ``"less"``), the ratio is
    ``Lambda = 2 sqrt(V / (V + tau**2)) exp(tau**2 u**2 / (2 V (V + tau**2))) Phi(z)`` with
    ``z = tau u / sqrt(V (V + tau**2))``. Each mixed likelihood ratio ``exp(d S - d**2 I / 2)``
    (score ``S = u / V``, information ``I = 1 / V``) is a supermartingale for every true effect
    on the null side when ``d >= 0``, so the test is valid for the composite null hypothesis
    ``effect <= null_value`` (``>=`` for ``"less"``), which is what a non-inferiority margin
    needs. The one-sided sequence is ``[max over looks of (x - r), +inf)`` for ``"greater"``
    and ``(-inf, min over looks of (x + r)]`` for ``"less"``, with the radius
    ``r = z_a sqrt(V (V + tau**2)) / tau`` where ``z_a`` solves ``z**2 / 2 + log Phi(z) =
    log(1 / (2 alpha)) + log((V + tau**2) / V) / 2`` (Newton's method); the test rejects
    exactly when the sequence excludes ``null_value``. Taking one side of the two-sided
    sequence at level ``1 - 2 alpha`` instead is not guaranteed: its error on one side is
    ``alpha`` plus half the probability of crossing both sides, so up to ``alpha`` plus a
    little under continuous monitoring; the half-normal radius is slightly wider
    (``log Phi(z_a) < 0``) and bounded by Ville's inequality at exactly ``alpha``.

    ``tau`` is the standard deviation of the mixture on the scale of the effect: the test is most
    sensitive to effects of about that size. A sensible choice is the absolute minimum detectable
    effect the experiment was designed for (relative MDE times ``|control mean|`` for an absolute
    effect); a ``tau`` far too small or too large costs power but never validity.

    Args:
        estimates (Sequence[float]): the effect estimate at each look, the current one last.
        std_errors (Sequence[float]): its standard error at each look, positive.
        alpha (float): significance level over all looks; the confidence sequence has coverage
            ``1 - alpha``.
        tau (float): standard deviation of the normal mixture on the effect, positive.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"`` tests
            ``effect <= null_value`` against ``effect > null_value`` with the half-normal mixture
            on positive effects; ``"two-sided"`` (default) the normal mixture.
        null_value (float): the effect under the null hypothesis (default 0); e.g. ``-margin``
            for a non-inferiority test of a metric that should increase. The confidence sequence
            does not depend on it.

    Returns:
        AlwaysValidResult: always-valid p-value, confidence sequence, current likelihood ratio,
        decision and first rejecting look.

    Raises:
        ValueError: if the sequences are empty, of different lengths or not finite, a standard
            error or ``tau`` is not positive, ``null_value`` is not finite, or ``alpha`` or
            ``alternative`` is invalid.

    References:
        Johari, R., Koomen, P., Pekelis, L., & Walsh, D. (2017). Peeking at A/B tests: why it
        matters, and what to do about it. KDD 2017.
        Johari, R., Koomen, P., Pekelis, L., & Walsh, D. (2022). Always valid inference:
        continuous monitoring of A/B tests. Operations Research, 70(3), 1806-1821.
        Robbins, H. (1970). Statistical methods related to the law of the iterated logarithm.
        Annals of Mathematical Statistics, 41(5), 1397-1409.
        Howard, S. R., Ramdas, A., McAuliffe, J., & Sekhon, J. (2021). Time-uniform,
        nonparametric, nonasymptotic confidence sequences. Annals of Statistics, 49(2),
        1055-1080 (section 3.5 and Proposition 6: the one-sided normal mixture).

    Examples:
        >>> result = always_valid_test([0.9, 0.7, 0.62], [0.4, 0.25, 0.2], tau=0.5)
        >>> round(result.likelihood_ratio, 3), round(result.p_value, 4), result.rejected
        (23.377, 0.0428, True)
        >>> result.first_rejection, round(result.ci_low, 4), round(result.ci_high, 4)
        (3, 0.0118, 1.2282)

        Non-inferiority with a margin of 0.1: is the effect above -0.1?

        >>> result = always_valid_test(
        ...     [0.05, -0.01, 0.02], [0.1, 0.05, 0.03], tau=0.1, alternative="greater",
        ...     null_value=-0.1,
        ... )
        >>> round(result.p_value, 5), result.first_rejection, round(result.ci_low, 4)
        (0.00113, 3, -0.0635)
        >>> result.ci_high
        inf
    """
    _check_looks(estimates=estimates, std_errors=std_errors)
    check_alpha(alpha)
    check_alternative(alternative)
    _check_positive("std_errors", std_errors)
    _check_tau(tau)
    if not math.isfinite(null_value):
        raise ValueError(f"null_value must be a finite effect; got {null_value!r}.")
    if alternative != "two-sided":
        return _one_sided_always_valid_test(
            estimates,
            std_errors,
            alpha=alpha,
            tau=tau,
            alternative=alternative,
            null_value=null_value,
        )
    tau2 = tau**2
    ci_low, ci_high = -math.inf, math.inf
    p_value, first_rejection, log_ratio = 1.0, None, 0.0
    for look, (estimate, se) in enumerate(zip(estimates, std_errors, strict=True), start=1):
        variance = se**2
        deviation = estimate - null_value
        log_inflation = math.log1p(tau2 / variance)  # log((V + tau^2) / V)
        log_ratio = -0.5 * log_inflation + tau2 * deviation**2 / (
            2.0 * variance * (variance + tau2)
        )
        look_p_value = min(1.0, math.exp(-log_ratio))
        if look_p_value <= alpha and first_rejection is None:
            first_rejection = look
        p_value = min(p_value, look_p_value)
        half_width = math.sqrt(
            variance * (variance + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + log_inflation)
        )
        ci_low, ci_high = max(ci_low, estimate - half_width), min(ci_high, estimate + half_width)
    return AlwaysValidResult(
        p_value=p_value,
        ci_low=ci_low,
        ci_high=ci_high,
        likelihood_ratio=math.exp(log_ratio) if log_ratio < 709.0 else math.inf,
        rejected=p_value <= alpha,
        first_rejection=first_rejection,
        method=(
            f"two-sided mixture SPRT (normal mixture, tau={tau:g}) over {len(estimates)} "
            f"look{'s' if len(estimates) > 1 else ''}: always-valid p-value and confidence "
            f"sequence (running intersection)"
        ),
    )


def _one_sided_always_valid_test(
    estimates: Sequence[float],
    std_errors: Sequence[float],
    *,
    alpha: float,
    tau: float,
    alternative: Alternative,
    null_value: float,
) -> AlwaysValidResult:
    """The half-normal mixture SPRT of :func:`always_valid_test` on validated inputs."""
    sign = 1.0 if alternative == "greater" else -1.0
    x = np.asarray(estimates, dtype=float)
    variance = np.asarray(std_errors, dtype=float) ** 2
    tau2 = tau**2
    log_inflation = np.log1p(tau2 / variance)  # log((V + tau^2) / V)
    scale = np.sqrt(variance * (variance + tau2)) / tau  # the effect per unit of z
    deviation = sign * (x - null_value)
    log_ratios = (
        math.log(2.0)
        - 0.5 * log_inflation
        + 0.5 * (deviation / scale) ** 2
        + special.log_ndtr(deviation / scale)
    )
    look_p_values = np.minimum(1.0, np.exp(-log_ratios))
    rejecting = np.flatnonzero(look_p_values <= alpha)
    radius = scale * _half_normal_mixture_z(math.log(1.0 / (2.0 * alpha)) + 0.5 * log_inflation)
    p_value = float(look_p_values.min())
    log_ratio = float(log_ratios[-1])
    if alternative == "greater":
        ci_low, ci_high = float(np.max(x - radius)), math.inf
        hypotheses = f"H0: effect <= {null_value:g} vs H1: effect > {null_value:g}"
        bound = "lower bound (running maximum)"
    else:
        ci_low, ci_high = -math.inf, float(np.min(x + radius))
        hypotheses = f"H0: effect >= {null_value:g} vs H1: effect < {null_value:g}"
        bound = "upper bound (running minimum)"
    return AlwaysValidResult(
        p_value=p_value,
        ci_low=ci_low,
        ci_high=ci_high,
        likelihood_ratio=math.exp(log_ratio) if log_ratio < 709.0 else math.inf,
        rejected=p_value <= alpha,
        first_rejection=int(rejecting[0]) + 1 if rejecting.size else None,
        method=(
            f"one-sided mixture SPRT (half-normal mixture, tau={tau:g}), {hypotheses}, over "
            f"{len(estimates)} look{'s' if len(estimates) > 1 else ''}: always-valid p-value "
            f"and confidence sequence {bound}"
        ),
    )
