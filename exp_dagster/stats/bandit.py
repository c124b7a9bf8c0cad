"""Bandit allocation: Thompson sampling and top-two Thompson sampling on each arm's sufficient
statistics, and the day-stratified estimate of the arms' means after adaptive allocation.

Every arm's reward posterior comes from its statistics as a day's ``metric_statistics`` row
holds them (units ``n``, ``Σy``, ``Σy²``):

* proportion rewards (0/1 per unit): ``p ~ Beta(a + Σy, b + n - Σy)`` from the prior
  ``Beta(a, b)``, ``Beta(1, 1)`` (uniform) by default;
* mean rewards: the marginal posterior of the mean under the reference prior
  ``p(μ, σ²) ∝ 1/σ²`` (the Normal-Inverse-Gamma limit), ``μ ~ ȳ + (s / √n) t_{n-1}`` with ``s``
  the sample standard deviation (ddof 1); it is the normal approximation ``N(ȳ, s²/n)`` for large
  ``n``, and needs ``n >= 2`` and ``s > 0``.

Allocation weights are the posterior probability that each arm is the best (Thompson), or the
top-two probabilities (Russo 2016), estimated from ``draws`` seeded joint posterior draws: the
Monte Carlo standard error of a probability ``q`` is ``sqrt(q (1 - q) / draws)``, at most
``0.5 / sqrt(draws)`` (0.0016 at the default 100,000 draws). A ``floor`` mixes the weights with
the uniform split, ``floor + (1 - K floor) w``, so every arm keeps at least ``floor`` of the
traffic (and the estimates of every arm stay possible); during burn-in the planned split is
used as it is.

With adaptive allocation the pooled difference of two arms' means is biased whenever the reward
level changes over time (the arms' traffic shares change with it). Within one allocation period
(a day) the split is fixed, so each day's difference is unbiased for that day's units;
:func:`stratified_arm_means` averages the days' arm means with the days' shares of units (a
self-normalised IPS estimator within each day, since the propensities are the day's weights).

References:
    Thompson, W. R. (1933). On the likelihood that one unknown probability exceeds another in
    view of the evidence of two samples. Biometrika 25(3/4), 285-294.
    Russo, D. (2016). Simple Bayesian algorithms for best arm identification. COLT 2016
    (Operations Research 68(6), 2020).
    Agrawal, S. & Goyal, N. (2012). Analysis of Thompson sampling for the multi-armed bandit
    problem. COLT 2012.
    Hadad, V., Hirshberg, D., Zhan, R., Wager, S. & Athey, S. (2021). Confidence intervals for
    policy evaluation in adaptive experiments. PNAS 118(15).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import special

BanditAlgorithm = Literal["thompson", "top_two_thompson"]
RewardKind = Literal["proportion", "mean"]

DEFAULT_DRAWS = 100_000
DEFAULT_TOP_TWO_BETA = 0.5


@dataclass(frozen=True)
class ArmPosterior:
    """The posterior of one arm's expected reward.

    Attributes:
        family: ``beta`` (proportion rewards) or ``student_t`` (mean rewards).
        a: the Beta's first shape, or the t's location (the sample mean).
        b: the Beta's second shape, or the t's scale (``s / sqrt(n)``).
        df: the t's degrees of freedom (``n - 1``); ``nan`` for a Beta.
        mean: the posterior mean of the reward.
        n: the units the posterior was formed from.
    """

    family: Literal["beta", "student_t"]
    a: float
    b: float
    df: float
    mean: float
    n: int

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws of the arm's expected reward."""
        if self.family == "beta":
            return rng.beta(self.a, self.b, size)
        return self.a + self.b * rng.standard_t(self.df, size)

    @property
    def distribution(self) -> Any:
        """The posterior as a frozen scipy distribution (for exact computations and tests)."""
        from scipy import stats  # here, not at the top: see stats/__init__ (lazy scipy)

        if self.family == "beta":
            return stats.beta(self.a, self.b)
        return stats.t(self.df, loc=self.a, scale=self.b)


def proportion_posterior(
    n: int, successes: float, *, prior: tuple[float, float] = (1.0, 1.0)
) -> ArmPosterior:
    """The Beta-Bernoulli posterior of a conversion rate, ``Beta(a + successes, b + failures)``.

    Args:
        n: the arm's units (``n`` of its statistics row; 0 before any unit).
        successes: units that converted (``Σy`` of a proportion metric).
        prior: ``(a, b)`` of the Beta prior; ``(1, 1)``, uniform, by default.

    Returns:
        An :class:`ArmPosterior` of family ``beta``.

    Examples:
        >>> proportion_posterior(10, 3)
        ArmPosterior(family='beta', a=4.0, b=8.0, df=nan, mean=0.3333333333333333, n=10)
    """
    a, b = float(prior[0]), float(prior[1])
    if not (a > 0 and b > 0):
        raise ValueError(f"the Beta prior's shapes must be > 0; got prior={prior}")
    if n < 0 or not (0 <= successes <= n):
        raise ValueError(f"need 0 <= successes <= n; got successes={successes}, n={n}")
    a_post, b_post = a + float(successes), b + float(n - successes)
    return ArmPosterior("beta", a_post, b_post, math.nan, a_post / (a_post + b_post), int(n))


def mean_posterior(n: int, sum_y: float, sum_y2: float) -> ArmPosterior:
    """The posterior of an arm's mean reward under the reference prior ``p(μ, σ²) ∝ 1/σ²``:
    ``μ ~ ȳ + (s / √n) t_{n-1}`` (``s``: the sample standard deviation, ddof 1).

    Args:
        n: the arm's units; at least 2.
        sum_y: ``Σy`` over its units.
        sum_y2: ``Σy²`` over its units.

    Returns:
        An :class:`ArmPosterior` of family ``student_t``.

    Raises:
        ValueError: with fewer than two units, or no variance (every unit's value the same),
            where the posterior is improper.

    Examples:
        >>> p = mean_posterior(4, 10.0, 30.0)
        >>> (p.a, round(p.b, 6), p.df)
        (2.5, 0.645497, 3.0)
    """
    if n < 2:
        raise ValueError(f"a mean reward's posterior needs at least 2 units; got n={n}")
    mean = sum_y / n
    variance = max(sum_y2 - n * mean * mean, 0.0) / (n - 1)
    if not variance > 0:
        raise ValueError(
            f"a mean reward's posterior needs some variance; all {n} units have the value {mean:g}"
        )
    return ArmPosterior("student_t", mean, math.sqrt(variance / n), float(n - 1), mean, int(n))


def allocation_seed(experiment_id: str, day: dt.date) -> int:
    """A seed from (experiment id, day), so a day's allocation is the same on every re-run and
    differs between days and experiments.

    Examples:
        >>> day = dt.date(2026, 10, 1)
        >>> allocation_seed("exp", day) == allocation_seed("exp", day)
        True
        >>> allocation_seed("exp", day) == allocation_seed("exp", day + dt.timedelta(days=1))
        False
    """
    digest = hashlib.sha256(f"{experiment_id}|{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits: a signed BIGINT column holds it


@dataclass(frozen=True)
class BanditAllocation:
    """The next allocation period's traffic split.

    Attributes:
        arms: the arms' names, in the order given.
        weights: each arm's share of the traffic (each ``>= floor``; they sum to 1).
        probability_best: each arm's posterior probability of being the best, by Monte Carlo.
        top_two: each arm's top-two Thompson probability (``None`` under plain Thompson).
        algorithm: ``thompson`` or ``top_two_thompson``.
        basis: ``posterior`` (weights from the posterior, floored) or ``burn-in`` (the planned
            split, as given).
        floor: the minimum weight of every arm.
        draws: the joint posterior draws.
        monte_carlo_se: the largest Monte Carlo standard error of a ``probability_best``
            (``max sqrt(q (1 - q) / draws)``).
        seed: the random generator's seed.
        higher_is_better: whether the best arm has the highest expected reward.
    """

    arms: tuple[str, ...]
    weights: tuple[float, ...]
    probability_best: tuple[float, ...]
    top_two: tuple[float, ...] | None
    algorithm: BanditAlgorithm
    basis: Literal["posterior", "burn-in"]
    floor: float
    draws: int
    monte_carlo_se: float
    seed: int
    higher_is_better: bool

    def weight_of(self, arm: str) -> float:
        return self.weights[self.arms.index(arm)]


def _ranks(
    posteriors: Sequence[ArmPosterior], draws: int, seed: int, higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The best and the second-best arm of each joint posterior draw."""
    rng = np.random.default_rng(seed)
    samples = np.column_stack([p.sample(rng, draws) for p in posteriors])
    if not higher_is_better:
        samples = -samples
    order = np.argsort(-samples, axis=1, kind="stable")
    return order[:, 0], order[:, 1]


def top_two_probabilities(
    probability_best: Sequence[float],
    beta: float = DEFAULT_TOP_TWO_BETA,
    *,
    second_given_best: np.ndarray | None = None,
) -> np.ndarray:
    """Each arm's probability of being played by top-two Thompson sampling (Russo 2016).

    The leader is a posterior draw's best arm; with probability ``beta`` it is played, else
    posterior draws are repeated until one's best arm differs (the challenger). The re-draws are
    independent of the first, so ``P(challenger = i | leader = j) = q_i / (1 - q_j)`` and arm
    ``i`` is played with probability ``beta q_i + (1 - beta) q_i Σ_{j≠i} q_j / (1 - q_j)``
    (``q``: the probabilities of being best).

    Args:
        probability_best: each arm's posterior probability of being the best (summing to 1).
        beta: the probability of playing the leader, in (0, 1); Russo's default 0.5.
        second_given_best: optional ``[j, i]`` matrix: the share of draws led by ``j`` whose
            second-best arm is ``i``; used as the challenger's distribution only for a leader
            with ``q_j = 1`` (no draw had another arm best, so the resampling would not end
            within the draws).

    Returns:
        The arms' top-two probabilities, summing to 1.

    Examples:
        >>> top_two_probabilities([0.8, 0.2]).round(6).tolist()
        [0.5, 0.5]
        >>> top_two_probabilities([0.6, 0.3, 0.1]).round(4).tolist()
        [0.4619, 0.3917, 0.1464]
    """
    q = np.asarray(probability_best, dtype=float)
    if not 0.0 < beta < 1.0:
        raise ValueError(f"top_two_beta must be in (0, 1); got {beta}")
    k = q.size
    challenger = np.zeros((k, k))
    for j in range(k):
        rest = 1.0 - q[j]
        if rest > 0.0:
            challenger[j] = q / rest
            challenger[j, j] = 0.0
        elif second_given_best is not None:
            challenger[j] = second_given_best[j]
        else:
            challenger[j] = np.where(np.arange(k) == j, 0.0, 1.0 / (k - 1))
    played = beta * q + (1.0 - beta) * (q @ challenger)
    return played / played.sum()


def apply_floor(weights: Sequence[float], floor: float) -> np.ndarray:
    """``floor + (1 - K floor) w``: every arm gets at least ``floor``, the weights still sum to 1,
    and their order is kept.

    Examples:
        >>> apply_floor([1.0, 0.0, 0.0], 0.05).round(6).tolist()
        [0.9, 0.05, 0.05]
    """
    w = np.asarray(weights, dtype=float)
    if not 0.0 <= floor * w.size < 1.0:
        raise ValueError(
            f"floor {floor} times {w.size} arms must be below 1 (and the floor >= 0); lower it"
        )
    return floor + (1.0 - w.size * floor) * w


def bandit_allocation(
    arms: Sequence[str],
    posteriors: Sequence[ArmPosterior],
    *,
    algorithm: BanditAlgorithm = "thompson",
    floor: float = 0.01,
    top_two_beta: float = DEFAULT_TOP_TWO_BETA,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    higher_is_better: bool = True,
    burn_in_split: Mapping[str, float] | None = None,
) -> BanditAllocation:
    """The next period's allocation from the arms' posteriors.

    Args:
        arms: the arms' names.
        posteriors: each arm's posterior (:func:`proportion_posterior`, :func:`mean_posterior`),
            in the order of ``arms``.
        algorithm: ``thompson`` (weights = probability of being best) or ``top_two_thompson``
            (:func:`top_two_probabilities`, which keeps exploring the runner-up: best-arm
            identification rather than regret).
        floor: every arm's minimum weight (:func:`apply_floor`), ``0 <= floor < 1 / K``.
        top_two_beta: top-two Thompson's probability of playing the leader.
        draws: joint posterior draws for the Monte Carlo probabilities.
        seed: the generator's seed (:func:`allocation_seed`).
        higher_is_better: ``False`` when a lower reward is better (the metric's direction).
        burn_in_split: during burn-in, the planned split by arm: used as the weights as it is
            (the probabilities are still computed and reported).

    Returns:
        A :class:`BanditAllocation`.

    Examples:
        >>> allocation = bandit_allocation(
        ...     ["a", "b"],
        ...     [proportion_posterior(1000, 100), proportion_posterior(1000, 130)],
        ...     floor=0.05,
        ...     draws=20_000,
        ...     seed=1,
        ... )
        >>> [round(q, 2) for q in allocation.probability_best]
        [0.02, 0.98]
        >>> [round(w, 2) for w in allocation.weights]
        [0.07, 0.93]
    """
    if len(arms) != len(posteriors) or len(arms) < 2:
        raise ValueError(
            f"need one posterior per arm and at least two arms; got {len(arms)} arms and "
            f"{len(posteriors)} posteriors"
        )
    if draws < 1:
        raise ValueError(f"draws must be >= 1; got {draws}")
    best, second = _ranks(posteriors, draws, seed, higher_is_better)
    k = len(arms)
    q = np.bincount(best, minlength=k) / draws
    top_two = None
    if algorithm == "top_two_thompson":
        pairs = np.zeros((k, k))
        np.add.at(pairs, (best, second), 1.0)
        led = pairs.sum(axis=1, keepdims=True)
        second_given_best = np.divide(pairs, led, out=np.zeros_like(pairs), where=led > 0)
        top_two = top_two_probabilities(q, top_two_beta, second_given_best=second_given_best)
        raw = top_two
    elif algorithm == "thompson":
        raw = q
    else:
        raise ValueError(f"algorithm must be 'thompson' or 'top_two_thompson'; got {algorithm!r}")
    if burn_in_split is not None:
        weights = np.array([float(burn_in_split[arm]) for arm in arms])
        basis: Literal["posterior", "burn-in"] = "burn-in"
    else:
        weights = apply_floor(raw, floor)
        basis = "posterior"
    weights = weights / weights.sum()
    return BanditAllocation(
        arms=tuple(arms),
        weights=tuple(float(w) for w in weights),
        probability_best=tuple(float(x) for x in q),
        top_two=None if top_two is None else tuple(float(x) for x in top_two),
        algorithm=algorithm,
        basis=basis,
        floor=floor,
        draws=draws,
        monte_carlo_se=float(np.max(np.sqrt(q * (1.0 - q) / draws))),
        seed=seed,
        higher_is_better=higher_is_better,
    )


# ── analysis after adaptive allocation ──────────────────────────────────────────────────────


@dataclass(frozen=True)
class StratumArm:
    """One arm's units first exposed in one allocation period (a day).

    Attributes:
        n: units.
        sum_y: ``Σy`` of their rewards.
        sum_y2: ``Σy²`` of their rewards.
    """

    n: int
    sum_y: float
    sum_y2: float


@dataclass(frozen=True)
class StratifiedArmMeans:
    """Arms' means stratified by allocation period, and each treatment's difference from the
    control.

    Attributes:
        arms: the arms' names; the first is the control.
        means: each arm's stratified mean ``Σ_d w_d ȳ_{d,k}``.
        std_errors: their standard errors ``sqrt(Σ_d w_d² s²_{d,k} / n_{d,k})``.
        differences: each arm's mean minus the control's (0 for the control).
        ci_low: lower ends of the differences' two-sided ``1 - alpha`` normal intervals.
        ci_high: upper ends.
        difference_std_errors: the differences' standard errors (the arms' units are
            disjoint, so the variances add).
        strata_used: the periods with at least two units in every arm.
        strata_left_out: the periods without (their weight is shared by the others).
        alpha: the intervals' level.
    """

    arms: tuple[str, ...]
    means: tuple[float, ...]
    std_errors: tuple[float, ...]
    differences: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    difference_std_errors: tuple[float, ...]
    strata_used: tuple[str, ...]
    strata_left_out: tuple[str, ...]
    alpha: float


def stratified_arm_means(
    strata: Mapping[str, Mapping[str, StratumArm]],
    arms: Sequence[str],
    *,
    alpha: float = 0.05,
) -> StratifiedArmMeans:
    """Each arm's mean reward, and its difference from the first arm, stratified by allocation
    period: unbiased under adaptive allocation because the split is fixed within a period.

    Within period ``d`` (units first exposed that day) units are assigned independently with
    that day's weights, which depend only on earlier days, so ``ȳ_{d,k}`` is unbiased for the day's
    arm mean. The periods are weighted by their shares of units ``w_d = N_d / N`` (both arms; the
    arrivals do not depend on the allocation), which is the estimand of the pooled difference
    under a fixed split. It is the self-normalised inverse-propensity (Hájek) estimator within
    each day: ``Σ_{i in d, k} y_i / π_{d,k}`` divided by ``Σ_{i in d, k} 1 / π_{d,k}``. Variances
    are the within-period sample variances (ddof 1) over ``n``; intervals are normal
    (``z_{1-alpha/2}``).

    Args:
        strata: by period label (e.g. the day, ISO): by arm, the period's :class:`StratumArm`.
        arms: the arms, the control first.
        alpha: the intervals' level (two-sided).

    Returns:
        A :class:`StratifiedArmMeans`. A period where some arm has fewer than two units is left
        out (listed in ``strata_left_out``); with no period left, ``ValueError``.

    Examples:
        >>> days = {
        ...     "d1": {"a": StratumArm(4, 2.0, 2.0), "b": StratumArm(2, 1.0, 1.0)},
        ...     "d2": {"a": StratumArm(2, 0.0, 0.0), "b": StratumArm(4, 1.0, 1.0)},
        ... }
        >>> result = stratified_arm_means(days, ["a", "b"])
        >>> [round(m, 3) for m in result.means], round(result.differences[1], 3)
        ([0.25, 0.375], 0.125)
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    used = [
        label
        for label, cells in sorted(strata.items())
        if all(arm in cells and cells[arm].n >= 2 for arm in arms)
    ]
    left_out = [label for label in sorted(strata) if label not in used]
    if not used:
        raise ValueError(
            "no allocation period has at least two units in every arm; the stratified means "
            "cannot be estimated yet"
        )
    units = np.array([sum(strata[d][arm].n for arm in arms) for d in used], dtype=float)
    w = units / units.sum()
    means, variances = [], []
    for arm in arms:
        n = np.array([strata[d][arm].n for d in used], dtype=float)
        sy = np.array([strata[d][arm].sum_y for d in used], dtype=float)
        sy2 = np.array([strata[d][arm].sum_y2 for d in used], dtype=float)
        ybar = sy / n
        s2 = np.maximum(sy2 - n * ybar * ybar, 0.0) / (n - 1.0)
        means.append(float(w @ ybar))
        variances.append(float((w * w) @ (s2 / n)))
    z = float(special.ndtri(1.0 - alpha / 2.0))  # the normal quantile, as norm.ppf
    differences = [m - means[0] for m in means]
    diff_se = [0.0, *(math.sqrt(v + variances[0]) for v in variances[1:])]
    return StratifiedArmMeans(
        arms=tuple(arms),
        means=tuple(means),
        std_errors=tuple(math.sqrt(v) for v in variances),
        differences=tuple(differences),
        ci_low=tuple(d - z * se for d, se in zip(differences, diff_se, strict=True)),
        ci_high=tuple(d + z * se for d, se in zip(differences, diff_se, strict=True)),
        difference_std_errors=tuple(diff_se),
        strata_used=tuple(used),
        strata_left_out=tuple(left_out),
        alpha=alpha,
    )
