"""Off-policy estimates of a candidate policy's reward (click rate) from a logging policy's logs.

**Input contract.** One row per logged decision (an impression: the item the production policy
showed in a slot, or the action it took for a context), as 1-D arrays of equal length:

* ``rewards``: the observed reward of the logged action (a click, 0/1, or any real reward);
* ``logging_propensities``: the probability, in ``(0, 1]``, that the logging policy took the logged
  action in that context (logged at serving time);
* ``target_probabilities``: the probability, in ``[0, 1]``, that the target (candidate) policy
  takes the same action in the same context: 0/1 for a deterministic model (does the candidate
  show this item in this slot?);
* for the doubly robust estimate, a reward model's predictions: ``reward_predictions``
  ``q(x, a)`` of the logged action, and ``target_expected_rewards``
  ``sum_a pi(a | x) q(x, a)``, the model's expected reward under the target policy in that
  context (the direct-method term). A simple model is enough (e.g. each item's click rate); DR is
  unbiased whatever the model when the propensities are right, and the model only reduces the
  variance.

The importance weight of a row is ``w = target_probability / logging_propensity``. The estimate
is the target policy's mean reward per decision. Rows are independent decisions unless
``clusters`` (e.g. the request or user of each row) says which rows share a sampling unit; the
intervals then treat clusters as independent (delta method over clusters, or the cluster
bootstrap).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exp_dagster.evaluation._common import (
    IntervalMethod,
    as_vector,
    check_finite,
    check_interval_method,
    check_same_length,
    estimate_ratio,
    interval_words,
)
from exp_dagster.stats._common import check_alpha


@dataclass(frozen=True)
class OffPolicyEstimate:
    """One estimator's estimate of the target policy's mean reward per decision.

    Attributes:
        estimator: ``"ips"``, ``"clipped ips"``, ``"snips"`` or ``"doubly robust"``.
        value: the estimate.
        std_error: delta-method standard error over clusters (``ddof=1``), or the standard
            deviation of the bootstrap replicates.
        ci_low: lower bound of the two-sided level ``1 - alpha`` interval.
        ci_high: upper bound of that interval.
        n_rows: logged decisions used.
        n_clusters: independent clusters the interval treats as the sampling unit.
        method: one sentence naming the estimator and the interval.
    """

    estimator: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    n_rows: int
    n_clusters: int
    method: str


@dataclass(frozen=True)
class WeightDiagnostics:
    """Health of the importance weights ``w = target_probability / logging_propensity``.

    Attributes:
        effective_sample_size: Kish's ``(sum w)**2 / sum w**2``: how many equally weighted rows
            the weighted sample is worth.
        effective_fraction: ``effective_sample_size / n_rows``.
        mean_weight: ``mean(w)``; 1 in expectation when the propensities are right and the target
            policy only takes actions the logging policy can take.
        mean_weight_std_error: standard error of ``mean_weight`` (``ddof=1``, rows independent).
        max_weight: the largest weight.
        max_weight_share: the largest weight over ``sum w``.
        n_rows: logged decisions.
        weights_exploded: True when the effective sample size is below
            ``min_effective_sample_size`` or ``effective_fraction`` below
            ``min_effective_fraction``: a few rows carry the estimate and IPS is unreliable.
        warnings: sentences saying what is wrong and what to do; empty when the weights are fine.
    """

    effective_sample_size: float
    effective_fraction: float
    mean_weight: float
    mean_weight_std_error: float
    max_weight: float
    max_weight_share: float
    n_rows: int
    weights_exploded: bool
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class OffPolicyEvaluation:
    """Every off-policy estimate of one target policy, with the weights' diagnostics.

    Attributes:
        ips: inverse propensity scoring (unbiased; high variance).
        clipped_ips: IPS with weights capped at ``clip`` (lower variance, biased towards 0 for
            non-negative rewards).
        snips: self-normalised IPS (consistent, biased by O(1/n); robust to the weights' scale).
        doubly_robust: doubly robust estimate; ``None`` when no reward model predictions were
            given.
        diagnostics: the weights' effective sample size, mean, maximum and warnings.
        clip: the cap applied to the weights for ``clipped_ips``.
        n_clipped: rows whose weight exceeded ``clip``.
        alpha: one minus the confidence level.
    """

    ips: OffPolicyEstimate
    clipped_ips: OffPolicyEstimate
    snips: OffPolicyEstimate
    doubly_robust: OffPolicyEstimate | None
    diagnostics: WeightDiagnostics
    clip: float
    n_clipped: int
    alpha: float


def importance_weights(
    logging_propensities: npt.ArrayLike, target_probabilities: npt.ArrayLike
) -> np.ndarray:
    """``target_probability / logging_propensity`` per row, after checking both.

    Raises:
        ValueError: if the arrays differ in length, a logging propensity is not in ``(0, 1]``
            (a zero propensity means the action could not have been logged: fix the logging),
            or a target probability is not in ``[0, 1]``.

    Examples:
        >>> importance_weights([0.5, 0.25, 0.1], [1.0, 0.0, 0.3])
        array([2., 0., 3.])
    """
    logging = as_vector(logging_propensities, "logging_propensities")
    target = as_vector(target_probabilities, "target_probabilities")
    check_same_length(logging_propensities=logging, target_probabilities=target)
    bad = np.flatnonzero(~((logging > 0.0) & (logging <= 1.0)))
    if bad.size:
        raise ValueError(
            f"logging_propensities must be probabilities in (0, 1]; row {int(bad[0])} is "
            f"{float(logging[bad[0]])!r} ({bad.size} such rows). A logged action must have had a "
            f"positive probability: log the serving policy's propensity for every impression."
        )
    bad = np.flatnonzero(~((target >= 0.0) & (target <= 1.0)))
    if bad.size:
        raise ValueError(
            f"target_probabilities must be probabilities in [0, 1]; row {int(bad[0])} is "
            f"{float(target[bad[0]])!r} ({bad.size} such rows)."
        )
    return target / logging


def weight_diagnostics(
    weights: npt.ArrayLike,
    *,
    min_effective_sample_size: float = 100.0,
    min_effective_fraction: float = 0.01,
) -> WeightDiagnostics:
    """Effective sample size and warnings about the importance weights.

    The weights have *exploded* when Kish's effective sample size ``(sum w)**2 / sum w**2`` is
    below ``min_effective_sample_size`` or below ``min_effective_fraction`` of the rows: the
    estimate then rests on a handful of rows with tiny logging propensities. Separately, the mean
    weight should be 1 (``E[w] = sum_a pi(a | x) = 1`` when the logging policy can take every
    action the target policy takes); a mean weight more than 3 standard errors from 1 means wrong
    propensities or a target policy outside the logging policy's support, which biases IPS and DR.

    Args:
        weights (ArrayLike): one importance weight per row, non-negative.
        min_effective_sample_size (float): fewer effective rows than this is an explosion.
        min_effective_fraction (float): a smaller effective share of the rows is an explosion.

    Returns:
        WeightDiagnostics: the effective sample size, mean and maximum weight, and warnings.

    Raises:
        ValueError: if a weight is negative or not finite.

    References:
        Kish, L. (1965). Survey Sampling. Wiley (the effective sample size).
        Owen, A. B. (2013). Monte Carlo Theory, Methods and Examples, chapter 9.3 (importance
        sampling diagnostics).

    Examples:
        >>> healthy = weight_diagnostics(np.tile([2.0, 0.0], 500))
        >>> healthy.effective_sample_size, healthy.weights_exploded
        (500.0, False)
        >>> exploded = weight_diagnostics(np.r_[np.full(999, 0.5), 500.0])
        >>> round(exploded.effective_sample_size, 2), exploded.weights_exploded
        (3.99, True)
    """
    w = as_vector(weights, "weights")
    check_finite(w, "weights")
    if (w < 0.0).any():
        raise ValueError("weights must be non-negative (target probability / propensity).")
    n = w.size
    total, total_sq = float(w.sum()), float(w @ w)
    ess = total**2 / total_sq if total_sq > 0.0 else 0.0
    fraction = ess / n if n else 0.0
    mean = total / n if n else math.nan
    mean_se = float(w.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    max_weight = float(w.max()) if n else math.nan
    exploded = ess < min_effective_sample_size or fraction < min_effective_fraction
    warnings: list[str] = []
    if exploded:
        warnings.append(
            f"The importance weights exploded: the {n} logged rows are worth only {ess:.1f} "
            f"equally weighted rows ({100 * fraction:.2g}% of them; the largest weight is "
            f"{max_weight:.4g}), so IPS and DR rest on a few rows with tiny logging "
            f"propensities. Prefer the clipped or self-normalised estimate, collect more "
            f"logs, or add exploration to the logging policy."
        )
    if n >= 2 and mean_se > 0.0 and abs(mean - 1.0) > 3.0 * mean_se:
        warnings.append(
            f"The importance weights average {mean:.4g} (standard error {mean_se:.2g}), not 1: "
            f"the logged propensities look wrong, or the target policy takes actions the "
            f"logging policy never takes. Check the propensity logging before trusting IPS "
            f"or DR."
        )
    return WeightDiagnostics(
        effective_sample_size=ess,
        effective_fraction=fraction,
        mean_weight=mean,
        mean_weight_std_error=mean_se,
        max_weight=max_weight,
        max_weight_share=max_weight / total if total > 0.0 else math.nan,
        n_rows=n,
        weights_exploded=exploded,
        warnings=tuple(warnings),
    )


def _estimate(
    estimator: str,
    numerators: np.ndarray,
    denominators: np.ndarray,
    *,
    clusters: npt.ArrayLike | None,
    alpha: float,
    interval: IntervalMethod,
    n_bootstrap: int,
    seed: int,
    formula: str,
) -> OffPolicyEstimate:
    value, std_error, low, high, n_clusters = estimate_ratio(
        numerators,
        denominators,
        clusters=clusters,
        alpha=alpha,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return OffPolicyEstimate(
        estimator=estimator,
        value=value,
        std_error=std_error,
        ci_low=low,
        ci_high=high,
        n_rows=int(numerators.size),
        n_clusters=n_clusters,
        method=f"{estimator}: {formula}; {interval_words(interval, alpha, n_bootstrap, seed)}",
    )


def off_policy_evaluation(
    rewards: npt.ArrayLike,
    logging_propensities: npt.ArrayLike,
    target_probabilities: npt.ArrayLike,
    *,
    reward_predictions: npt.ArrayLike | None = None,
    target_expected_rewards: npt.ArrayLike | None = None,
    clip: float | None = None,
    clip_quantile: float = 0.99,
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    interval: IntervalMethod = "delta",
    n_bootstrap: int = 2000,
    seed: int = 0,
    min_effective_sample_size: float = 100.0,
    min_effective_fraction: float = 0.01,
) -> OffPolicyEvaluation:
    """IPS, clipped IPS, self-normalised IPS and doubly robust estimates of a target policy.

    With weights ``w_i = pi_target(a_i | x_i) / pi_logging(a_i | x_i)`` and rewards ``r_i``:

    * IPS: ``mean(w r)``, unbiased when the propensities are right and the logging policy covers
      the target policy's actions;
    * clipped IPS: ``mean(min(w, clip) r)``, lower variance, biased by
      ``-mean((w - clip)+ r)`` (towards 0 for non-negative rewards). ``clip`` defaults to the
      ``clip_quantile`` quantile of the positive weights (reported in the result);
    * SNIPS: ``sum(w r) / sum(w)``, consistent with an O(1/n) bias, invariant to the weights'
      scale, a ratio whose interval is by the delta method;
    * doubly robust: ``mean(qhat_target + w (r - qhat))`` with ``qhat = reward_predictions`` and
      ``qhat_target = target_expected_rewards``: unbiased if either the propensities or the reward
      model are right, and with lower variance than IPS when the model is good.

    Intervals are two-sided normal intervals with delta-method standard errors over clusters
    (``interval="delta"``), or percentile intervals of a cluster bootstrap. The weights'
    diagnostics (:func:`weight_diagnostics`) flag explosions and propensity problems in
    sentences.

    Args:
        rewards (ArrayLike): reward of the logged action per row (e.g. click 0/1).
        logging_propensities (ArrayLike): logging policy's probability of the logged action, in
            ``(0, 1]``.
        target_probabilities (ArrayLike): target policy's probability of the logged action, in
            ``[0, 1]``.
        reward_predictions (ArrayLike | None): reward model's prediction for the logged action;
            with ``target_expected_rewards``, enables the doubly robust estimate.
        target_expected_rewards (ArrayLike | None): reward model's expected reward under the
            target policy, ``sum_a pi_target(a | x) qhat(x, a)``, per row.
        clip (float | None): the cap of the clipped weights; default the ``clip_quantile``
            quantile of the positive weights.
        clip_quantile (float): the quantile used when ``clip`` is ``None``, in ``(0, 1]``.
        clusters (ArrayLike | None): one cluster id per row (request or user).
        alpha (float): one minus the confidence level.
        interval (Literal["delta", "bootstrap"]): the intervals' method.
        n_bootstrap (int): bootstrap resamples.
        seed (int): the bootstrap's seed.
        min_effective_sample_size (float): see :func:`weight_diagnostics`.
        min_effective_fraction (float): see :func:`weight_diagnostics`.

    Returns:
        OffPolicyEvaluation: the four estimates, the weights' diagnostics and the clipping.

    Raises:
        ValueError: if the arrays differ in length, a propensity or probability is out of range,
            a reward or prediction is not finite, only one of the two reward-model arrays is
            given, ``clip`` is not positive, or an option is invalid.

    References:
        Horvitz, D. G., & Thompson, D. J. (1952). A Generalization of Sampling Without
        Replacement from a Finite Universe. JASA, 47(260), 663-685.
        Ionides, E. L. (2008). Truncated Importance Sampling. Journal of Computational and
        Graphical Statistics, 17(2), 295-311.
        Swaminathan, A., & Joachims, T. (2015). The Self-Normalized Estimator for
        Counterfactual Learning. NeurIPS 2015.
        Dudík, M., Langford, J., & Li, L. (2011). Doubly Robust Policy Evaluation and Learning.
        ICML 2011.
        Li, L., Chu, W., Langford, J., & Wang, X. (2011). Unbiased Offline Evaluation of
        Contextual-Bandit-Based News Article Recommendation Algorithms. WSDM 2011.

    Examples:
        >>> result = off_policy_evaluation(
        ...     rewards=[1, 0, 0, 1, 0, 1, 0, 0],
        ...     logging_propensities=[0.5, 0.5, 0.25, 0.25, 0.5, 0.25, 0.5, 0.25],
        ...     target_probabilities=[1, 0, 1, 1, 0, 0, 1, 0],
        ...     clip=3.0,
        ...     min_effective_sample_size=2,
        ... )
        >>> result.ips.value, result.clipped_ips.value, result.snips.value, result.n_clipped
        (0.75, 0.625, 0.5, 2)
        >>> round(result.diagnostics.effective_sample_size, 4), result.diagnostics.warnings
        (3.6, ())
    """
    check_alpha(alpha)
    check_interval_method(interval)
    reward = as_vector(rewards, "rewards")
    weights = importance_weights(logging_propensities, target_probabilities)
    check_same_length(rewards=reward, logging_propensities=weights)
    check_finite(reward, "rewards")
    if (reward_predictions is None) != (target_expected_rewards is None):
        raise ValueError(
            "The doubly robust estimate needs both reward_predictions (the reward model's "
            "prediction for the logged action) and target_expected_rewards (its expected reward "
            "under the target policy); pass both or neither."
        )
    if not 0.0 < clip_quantile <= 1.0:
        raise ValueError(f"clip_quantile must be in (0, 1]; got {clip_quantile!r}.")
    positive = weights[weights > 0.0]
    if clip is None:
        clip = float(np.quantile(positive, clip_quantile)) if positive.size else 1.0
    if not clip > 0.0:
        raise ValueError(f"clip must be a positive cap on the importance weights; got {clip!r}.")
    estimate = functools.partial(
        _estimate,
        clusters=clusters,
        alpha=alpha,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    ones = np.ones_like(reward)
    clipped = np.minimum(weights, clip)
    doubly_robust = None
    if reward_predictions is not None and target_expected_rewards is not None:
        predicted = as_vector(reward_predictions, "reward_predictions")
        direct = as_vector(target_expected_rewards, "target_expected_rewards")
        check_same_length(
            rewards=reward, reward_predictions=predicted, target_expected_rewards=direct
        )
        check_finite(predicted, "reward_predictions")
        check_finite(direct, "target_expected_rewards")
        doubly_robust = estimate(
            "doubly robust",
            direct + weights * (reward - predicted),
            ones,
            formula="mean(qhat_target + w (r - qhat))",
        )
    return OffPolicyEvaluation(
        ips=estimate("ips", weights * reward, ones, formula="mean(w r)"),
        clipped_ips=estimate(
            "clipped ips", clipped * reward, ones, formula=f"mean(min(w, {clip:.4g}) r)"
        ),
        snips=estimate("snips", weights * reward, weights, formula="sum(w r) / sum(w)"),
        doubly_robust=doubly_robust,
        diagnostics=weight_diagnostics(
            weights,
            min_effective_sample_size=min_effective_sample_size,
            min_effective_fraction=min_effective_fraction,
        ),
        clip=clip,
        n_clipped=int((weights > clip).sum()),
        alpha=alpha,
    )
