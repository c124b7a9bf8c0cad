from __future__ import annotations

import math

import numpy as np
import pytest

from exp_dagster.evaluation import (
    OffPolicyEvaluation,
    importance_weights,
    off_policy_evaluation,
    weight_diagnostics,
)
from tests.unit.evaluation.simulators import BanditLogs, BanditWorld, bandit_world, log_decisions


def evaluate(
    world: BanditWorld, logs: BanditLogs, rep: int, **options: object
) -> OffPolicyEvaluation:
    """The estimates of replicate ``rep``, DR with a deliberately wrong reward model.

    The wrong model predicts each action's click rate as the context-free average plus 0.1,
    biased everywhere; DR must stay unbiased because the propensities are right.
    """
    wrong_model = world.click_probability.mean(axis=0) + 0.1
    contexts, actions = logs.contexts[rep], logs.actions[rep]
    return off_policy_evaluation(
        logs.rewards[rep],
        logs.logging_propensities[rep],
        logs.target_probabilities[rep],
        reward_predictions=wrong_model[actions],
        target_expected_rewards=world.target_policy[contexts] @ wrong_model,
        **options,  # type: ignore[arg-type]
    )


def unbiasedness(rng: np.random.Generator, reps: int, n: int) -> dict[str, tuple[float, float]]:
    """Mean estimate and its standard error over ``reps`` seeded log samples, per estimator."""
    world = bandit_world(rng)
    logs = log_decisions(rng, world, reps=reps, n=n)
    estimates: dict[str, list[float]] = {"ips": [], "snips": [], "doubly_robust": []}
    for rep in range(reps):
        result = evaluate(world, logs, rep)
        estimates["ips"].append(result.ips.value)
        estimates["snips"].append(result.snips.value)
        estimates["doubly_robust"].append(result.doubly_robust.value)  # type: ignore[union-attr]
    truth = world.true_value
    return {
        name: ((np.mean(values) - truth), np.std(values, ddof=1) / math.sqrt(reps))
        for name, values in estimates.items()
    }


def test_ips_snips_and_dr_are_unbiased(rng: np.random.Generator) -> None:
    """Mean over 400 seeded samples within 2 standard errors of the target's true click rate."""
    for name, (bias, std_error) in unbiasedness(rng, reps=400, n=1000).items():
        assert abs(bias) < 2 * std_error, name


@pytest.mark.slow
def test_unbiasedness_holds_tightly_over_many_samples(rng: np.random.Generator) -> None:
    for name, (bias, std_error) in unbiasedness(rng, reps=4000, n=2000).items():
        assert abs(bias) < 2 * std_error, name


def test_ips_interval_covers_the_truth(rng: np.random.Generator) -> None:
    world = bandit_world(rng)
    reps = 500
    logs = log_decisions(rng, world, reps=reps, n=800)
    truth = world.true_value
    covered = {"ips": 0, "snips": 0, "doubly_robust": 0}
    for rep in range(reps):
        result = evaluate(world, logs, rep)
        for name in covered:
            estimate = getattr(result, name)
            covered[name] += estimate.ci_low <= truth <= estimate.ci_high
    for name, count in covered.items():
        # 95% nominal; binomial sd over 500 replicates is about 0.01.
        assert 0.92 <= count / reps <= 0.98, (name, count / reps)


def test_doubly_robust_with_a_good_model_has_lower_variance(rng: np.random.Generator) -> None:
    world = bandit_world(rng)
    logs = log_decisions(rng, world, reps=1, n=5000)
    contexts, actions = logs.contexts[0], logs.actions[0]
    truth_model = world.click_probability
    result = off_policy_evaluation(
        logs.rewards[0],
        logs.logging_propensities[0],
        logs.target_probabilities[0],
        reward_predictions=truth_model[contexts, actions],
        target_expected_rewards=(world.target_policy * truth_model).sum(axis=1)[contexts],
    )
    # Click noise dominates here, so the gain is modest but must be there.
    assert result.doubly_robust.std_error < result.ips.std_error  # type: ignore[union-attr]


def test_formulas_and_clipping_by_hand() -> None:
    rewards = np.array([1.0, 0.0, 1.0, 1.0])
    logging = np.array([0.1, 0.5, 0.5, 0.25])
    target = np.array([1.0, 1.0, 0.0, 1.0])
    weights = target / logging  # 10, 2, 0, 4
    result = off_policy_evaluation(rewards, logging, target, clip=5.0, min_effective_sample_size=1)
    assert result.ips.value == pytest.approx((10 + 0 + 0 + 4) / 4)
    assert result.clipped_ips.value == pytest.approx((5 + 0 + 0 + 4) / 4)
    assert result.snips.value == pytest.approx(14 / 16)
    assert result.n_clipped == 1
    products = weights * rewards
    assert result.ips.std_error == pytest.approx(products.std(ddof=1) / 2)
    snips_se = (
        math.sqrt(4 / 3 * ((products - result.snips.value * weights) ** 2).sum()) / weights.sum()
    )
    assert result.snips.std_error == pytest.approx(snips_se)
    assert result.diagnostics.effective_sample_size == pytest.approx(16**2 / (100 + 4 + 16))


def test_default_clip_is_a_quantile_of_the_positive_weights() -> None:
    weights_logged = np.r_[np.full(99, 0.5), 0.01]
    result = off_policy_evaluation(np.ones(100), weights_logged, np.ones(100))
    assert result.clip == pytest.approx(np.quantile(1 / weights_logged, 0.99))
    assert result.n_clipped == 1


def test_exploding_weights_are_flagged_in_a_sentence(rng: np.random.Generator) -> None:
    n = 20_000
    logging = np.where(rng.random(n) < 0.999, 0.9, 0.0005)
    target = (logging < 0.01).astype(float)
    result = off_policy_evaluation(rng.binomial(1, 0.1, n), logging, target)
    assert result.diagnostics.weights_exploded
    assert any("exploded" in warning for warning in result.diagnostics.warnings)
    healthy = weight_diagnostics(importance_weights(np.full(n, 0.5), rng.binomial(1, 0.5, n)))
    assert not healthy.weights_exploded and healthy.warnings == ()


def test_wrong_propensities_are_flagged() -> None:
    """Logged propensities half the true ones double every weight: the mean weight is 2."""
    rng = np.random.default_rng(1)
    n = 5000
    true_propensity = np.full(n, 0.5)
    target = rng.binomial(1, 0.5, n).astype(float)
    diagnostics = weight_diagnostics(target / (true_propensity / 2))
    assert diagnostics.mean_weight == pytest.approx(2.0, abs=0.1)
    assert any("average" in warning for warning in diagnostics.warnings)


def test_bootstrap_and_clusters() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    requests = np.repeat(np.arange(1000), 3)
    logging = np.full(n, 0.5)
    target = rng.binomial(1, 0.5, n).astype(float)
    rewards = rng.binomial(1, 0.2, n).astype(float)
    delta = off_policy_evaluation(rewards, logging, target, clusters=requests)
    boot = off_policy_evaluation(
        rewards, logging, target, clusters=requests, interval="bootstrap", seed=4
    )
    assert delta.ips.n_clusters == 1000 and delta.ips.n_rows == n
    assert boot.ips.value == delta.ips.value
    assert boot.ips.std_error == pytest.approx(delta.ips.std_error, rel=0.1)


def test_invalid_inputs_are_sentences() -> None:
    with pytest.raises(ValueError, match=r"row 1 is 0\.0"):
        importance_weights([0.5, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="target_probabilities must be probabilities"):
        importance_weights([0.5, 0.5], [1.0, 1.5])
    with pytest.raises(ValueError, match="pass both or neither"):
        off_policy_evaluation([1.0], [0.5], [1.0], reward_predictions=[0.1])
    with pytest.raises(ValueError, match="same length"):
        off_policy_evaluation([1.0, 0.0], [0.5], [1.0])
