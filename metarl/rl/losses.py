"""Policy-gradient losses as pure functions of (params, data): the core's inner and outer losses."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import vmap

from metarl.core.adapt import InnerLoss
from metarl.core.params import Params, forward_with
from metarl.rl.baselines import fit_linear_baseline
from metarl.rl.episodes import Episodes, PolicyGradientData
from metarl.rl.returns import gae_advantages, normalize_advantages


class SurrogateData(NamedTuple):
    """Query data for a trust-region outer step: episodes, advantages and the old policy."""

    observations: Tensor
    actions: Tensor
    advantages: Tensor
    mask: Tensor
    old_dist: tuple[Tensor, ...]


def policy_gradient_data(
    episodes: Episodes, gamma: float = 0.99, gae_lambda: float = 1.0, normalize: bool = True
) -> PolicyGradientData:
    """Advantages from a linear feature baseline fitted per task (MAML's recipe)."""
    values = fit_linear_baseline(episodes, gamma)
    advantages = gae_advantages(episodes.rewards, values, episodes.mask, gamma, gae_lambda)
    if normalize:
        advantages = normalize_advantages(advantages, episodes.mask)
    return PolicyGradientData(episodes.observations, episodes.actions, advantages, episodes.mask)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def reinforce_loss(policy: nn.Module) -> InnerLoss:
    """``-mean_t log pi(a_t | s_t) A_t`` over valid steps: the inner loss of MAML for RL."""

    def loss(params: Params, data: PolicyGradientData) -> Tensor:
        dist = forward_with(policy, params, data.observations)
        return -_masked_mean(policy.log_prob(dist, data.actions) * data.advantages, data.mask)

    return loss


def surrogate_and_kl(policy: nn.Module) -> InnerLoss:
    """Outer loss for TRPO: ``[-mean ratio * A, mean KL(old || new)]`` as a 2-vector.

    At the data-collecting parameters the ratio is 1 and its gradient equals REINFORCE's.
    """

    def loss(params: Params, data: SurrogateData) -> Tensor:
        dist = forward_with(policy, params, data.observations)
        ratio = torch.exp(
            policy.log_prob(dist, data.actions) - policy.log_prob(data.old_dist, data.actions)
        )
        surrogate = -_masked_mean(ratio * data.advantages, data.mask)
        kl = _masked_mean(policy.kl(data.old_dist, dist), data.mask)
        return torch.stack((surrogate, kl))

    return loss


def surrogate_data(
    policy: nn.Module, batched_params: Params, data: PolicyGradientData
) -> SurrogateData:
    """Attach the (detached) action distributions of the data-collecting policies."""
    with torch.no_grad():
        old = vmap(lambda p, o: forward_with(policy, p, o))(batched_params, data.observations)
    return SurrogateData(*data, tuple(t.detach() for t in old))
