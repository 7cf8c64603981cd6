"""Proximal policy optimisation over whole trials for a recurrent actor-critic.

PPO (Schulman et al., 2017, "Proximal Policy Optimization Algorithms"): several epochs of
minibatch Adam steps on the clipped surrogate ``min(r A, clip(r, 1 - eps, 1 + eps) A)``
with ``r`` the probability ratio to the sampling policy, plus a value loss and an entropy
bonus. Minibatches are whole trials (a recurrent network is run over each from its zero
state), advantages are GAE over a trial (RL^2 treats a trial as one long episode), and the
value head's output scale follows the returns' spread, its weights rescaled so its
predictions do not jump (the scale part of van Hasselt et al.'s PopArt, 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from metarl.rl.recurrent import GRUPolicy
from metarl.rl.returns import gae_advantages, normalize_advantages
from metarl.rl.trials import Trials


@dataclass
class PPO:
    """PPO's settings and its update (``update``)."""

    clip: float = 0.2  # the ratio's clipping range
    epochs: int = 4  # passes over the batch per update
    minibatches: int = 4  # minibatches of trials per pass
    gamma: float = 0.99  # discount within a trial
    lam: float = 0.95  # GAE's lambda
    value_coef: float = 0.5  # weight of the value loss
    entropy_coef: float = 0.0  # weight of the entropy bonus
    max_grad_norm: float = 0.5  # gradient clipping (global norm)

    def __post_init__(self) -> None:
        if not 0 < self.clip < 1:
            raise ValueError(f"clip must be in (0, 1), got {self.clip}")
        if self.epochs < 1 or self.minibatches < 1:
            raise ValueError("epochs and minibatches must be >= 1")
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError(f"gamma and lam must be in [0, 1], got {self.gamma}, {self.lam}")

    def update(
        self,
        policy: GRUPolicy,
        optimizer: torch.optim.Optimizer,
        trials: Trials,
        generator: torch.Generator | None = None,
    ) -> dict[str, float]:
        """Improve ``policy`` on ``trials`` (sampled from it); returns the mean losses, the
        approximate KL to the sampling policy and the fraction of clipped ratios."""
        obs = trials.observations.flatten(0, 1)  # [B, L, D]: every trial of every task
        actions = trials.actions.flatten(0, 1)
        rewards, mask = trials.rewards.flatten(0, 1), trials.mask.flatten(0, 1)
        with torch.no_grad():
            old_dist, values = policy.forward_sequence(obs)
            old_log_prob = policy.log_prob(old_dist, actions)
            advantages = gae_advantages(rewards, values, mask, self.gamma, self.lam)
            targets = (advantages + values) * mask
            rescale_value_head(policy, targets, mask)
            advantages = normalize_advantages(advantages[None], mask[None])[0]
        batch = obs.shape[0]
        size = max(1, batch // self.minibatches)
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "kl": 0.0, "clipped": 0.0}
        count = 0
        for _ in range(self.epochs):
            order = torch.randperm(batch, generator=generator)
            for start in range(0, batch, size):
                idx = order[start : start + size]
                m = mask[idx]
                valid = m.sum().clamp_min(1)
                dist, value = policy.forward_sequence(obs[idx])
                log_prob = policy.log_prob(dist, actions[idx])
                ratio = torch.exp(log_prob - old_log_prob[idx])
                adv = advantages[idx]
                surrogate = torch.min(
                    ratio * adv, torch.clamp(ratio, 1 - self.clip, 1 + self.clip) * adv
                )
                policy_loss = -(surrogate * m).sum() / valid
                value_loss = ((value - targets[idx]) / policy.value_scale) ** 2
                value_loss = 0.5 * (value_loss * m).sum() / valid
                entropy = (policy.entropy(dist) * m).sum() / valid
                loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), self.max_grad_norm)
                optimizer.step()
                with torch.no_grad():
                    log_ratio = log_prob - old_log_prob[idx]
                    kl = (((ratio - 1) - log_ratio) * m).sum() / valid
                    clipped = (((ratio - 1).abs() > self.clip).float() * m).sum() / valid
                for key, v in zip(totals, (policy_loss, value_loss, entropy, kl, clipped)):
                    totals[key] += v.item()
                count += 1
        return {key: v / count for key, v in totals.items()}


def rescale_value_head(policy: GRUPolicy, targets: Tensor, mask: Tensor) -> None:
    """Set ``policy.value_scale`` to the spread of ``targets`` (an average with the old
    scale) and rescale the value head so its predictions stay as they were."""
    valid = mask.sum().clamp_min(1)
    spread = ((targets**2 * mask).sum() / valid).sqrt().clamp_min(1e-3)
    old = policy.value_scale.clone()
    new = 0.9 * old + 0.1 * spread
    policy.value_head.weight.mul_(old / new)
    policy.value_head.bias.mul_(old / new)
    policy.value_scale.copy_(new)
