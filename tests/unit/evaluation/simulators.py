"""Seeded simulators with known truth for the evaluation library's tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BanditWorld:
    """Contexts drawn uniformly, ``n_actions`` actions, known click probabilities and policies.

    Attributes:
        click_probability: ``(n_contexts, n_actions)`` true click probability.
        logging_policy: ``(n_contexts, n_actions)`` logging policy (rows sum to 1).
        target_policy: ``(n_contexts, n_actions)`` target policy (rows sum to 1).
    """

    click_probability: np.ndarray
    logging_policy: np.ndarray
    target_policy: np.ndarray

    @property
    def true_value(self) -> float:
        """The target policy's expected click rate per decision, exactly."""
        return float((self.target_policy * self.click_probability).sum(axis=1).mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def bandit_world(
    rng: np.random.Generator, *, n_contexts: int = 20, n_actions: int = 5, sharpness: float = 1.5
) -> BanditWorld:
    """A world where the target policy prefers better actions than the logging policy does."""
    click = rng.beta(2.0, 12.0, size=(n_contexts, n_actions))
    logging = softmax(rng.normal(0.0, 0.5, size=(n_contexts, n_actions)))
    target = softmax(sharpness * (click - click.mean(axis=1, keepdims=True)) / click.std())
    return BanditWorld(click, logging, target)


@dataclass(frozen=True)
class BanditLogs:
    """``reps`` logged samples of ``n`` decisions each, arrays of shape ``(reps, n)``."""

    contexts: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    logging_propensities: np.ndarray
    target_probabilities: np.ndarray


def log_decisions(rng: np.random.Generator, world: BanditWorld, *, reps: int, n: int) -> BanditLogs:
    """Draw contexts, the logging policy's actions and clicks, vectorised over all replicates."""
    n_contexts, _ = world.logging_policy.shape
    contexts = rng.integers(0, n_contexts, size=(reps, n))
    cumulative = np.cumsum(world.logging_policy, axis=1)[contexts]
    actions = (rng.random((reps, n))[..., None] > cumulative).sum(axis=-1)
    actions = np.minimum(actions, world.logging_policy.shape[1] - 1)
    rewards = (rng.random((reps, n)) < world.click_probability[contexts, actions]).astype(float)
    return BanditLogs(
        contexts=contexts,
        actions=actions,
        rewards=rewards,
        logging_propensities=world.logging_policy[contexts, actions],
        target_probabilities=world.target_policy[contexts, actions],
    )
