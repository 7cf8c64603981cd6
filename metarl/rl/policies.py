"""Policies as plain modules plus pure distribution functions (safe under ``vmap``).

A policy's ``forward(obs)`` returns the parameters of its action distribution as tensors
(never a ``torch.distributions`` object, which ``vmap`` cannot return). The static methods
``log_prob``, ``kl`` and ``sample`` work on those tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from metarl.config import Configurable
from metarl.nn import MLP


class GaussianMLPPolicy(Configurable, nn.Module):
    """Diagonal Gaussian policy: MLP mean, state-independent learned log standard deviation.

    The MAML paper's default is two hidden layers of 100 ReLU units (``hidden=(100, 100)``),
    initialised with ``init="xavier"`` (see ``metarl.nn.MLP``). ``forward`` returns
    ``(mean, log_std)`` with ``log_std`` broadcast to the mean's shape.
    """

    discrete = False

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (100, 100),
        activation: str = "relu",
        init_std: float = 1.0,
        init: str = "torch",
    ) -> None:
        super().__init__()
        self.mean = MLP(obs_dim, act_dim, hidden, activation, init)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    @classmethod
    def for_env(
        cls,
        env_id: str,
        extra_obs: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        **kwargs,
    ) -> GaussianMLPPolicy:
        """Size the policy from a registered environment's spaces (plus ``extra_obs`` inputs),
        the environment made with ``env_kwargs``; ``kwargs`` go to the constructor."""
        obs_space, act_space = _spaces(env_id, env_kwargs)
        if not isinstance(act_space, gym.spaces.Box):
            raise TypeError(f"{env_id} has {act_space}; GaussianMLPPolicy needs a Box")
        return cls(int(obs_space.shape[0]) + extra_obs, int(act_space.shape[0]), **kwargs)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.mean(obs)
        return mean, self.log_std.expand_as(mean)

    def forward_per_task(self, params: Mapping[str, Tensor], obs: Tensor) -> tuple[Tensor, Tensor]:
        """``forward`` under per-task parameters (leading dimension ``T``) on ``[T, N, obs]``:
        the values of ``vmap`` over the tasks, faster."""
        mean = self.mean.forward_per_task(params, obs, prefix="mean.")
        return mean, params["log_std"].unsqueeze(1).expand_as(mean)

    @staticmethod
    def log_prob(dist: tuple[Tensor, Tensor], actions: Tensor) -> Tensor:
        mean, log_std = dist
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    @staticmethod
    def kl(old: tuple[Tensor, Tensor], new: tuple[Tensor, Tensor]) -> Tensor:
        """KL(old || new) per step, summed over action dimensions."""
        (m0, s0), (m1, s1) = old, new
        var0, var1 = torch.exp(2 * s0), torch.exp(2 * s1)
        return (s1 - s0 + (var0 + (m0 - m1) ** 2) / (2 * var1) - 0.5).sum(-1)

    @staticmethod
    def sample(dist: tuple[Tensor, Tensor], generator: torch.Generator | None = None) -> Tensor:
        mean, log_std = dist
        noise = torch.randn(
            mean.shape,
            generator=generator,
            dtype=mean.dtype,
            device=mean.device if generator is None else generator.device,
        )
        return mean + torch.exp(log_std) * noise.to(mean.device)

    @staticmethod
    def mode(dist: tuple[Tensor, Tensor]) -> Tensor:
        """The most likely action: the mean."""
        return dist[0]


class CategoricalMLPPolicy(Configurable, nn.Module):
    """Categorical policy over ``n`` actions with MLP logits; ``forward`` returns log-probs."""

    discrete = True

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hidden: Sequence[int] = (32,),
        activation: str = "relu",
        init: str = "torch",
    ) -> None:
        super().__init__()
        self.logits = MLP(obs_dim, num_actions, hidden, activation, init)

    @classmethod
    def for_env(cls, env_id: str, **kwargs) -> CategoricalMLPPolicy:
        obs_space, act_space = _spaces(env_id)
        if not isinstance(act_space, gym.spaces.Discrete):
            raise TypeError(f"{env_id} has {act_space}; CategoricalMLPPolicy needs Discrete")
        return cls(int(obs_space.shape[0]), int(act_space.n), **kwargs)

    def forward(self, obs: Tensor) -> tuple[Tensor]:
        return (torch.log_softmax(self.logits(obs), dim=-1),)

    def forward_per_task(self, params: Mapping[str, Tensor], obs: Tensor) -> tuple[Tensor]:
        """``forward`` under per-task parameters (leading dimension ``T``) on ``[T, N, obs]``:
        the values of ``vmap`` over the tasks, faster."""
        logits = self.logits.forward_per_task(params, obs, prefix="logits.")
        return (torch.log_softmax(logits, dim=-1),)

    @staticmethod
    def log_prob(dist: tuple[Tensor], actions: Tensor) -> Tensor:
        (log_probs,) = dist
        return log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def kl(old: tuple[Tensor], new: tuple[Tensor]) -> Tensor:
        (p0,), (p1,) = old, new
        return (p0.exp() * (p0 - p1)).sum(-1)

    @staticmethod
    def sample(dist: tuple[Tensor], generator: torch.Generator | None = None) -> Tensor:
        (log_probs,) = dist
        flat = log_probs.reshape(-1, log_probs.shape[-1]).exp()
        if generator is not None:
            flat = flat.to(generator.device)
        picks = torch.multinomial(flat, 1, generator=generator)
        return picks.to(log_probs.device).view(log_probs.shape[:-1])

    @staticmethod
    def mode(dist: tuple[Tensor]) -> Tensor:
        """The most likely action."""
        return dist[0].argmax(-1)


class TanhGaussianMLPPolicy(Configurable, nn.Module):
    """Squashed Gaussian policy of soft actor-critic: ``a = tanh(u)``, ``u ~ N(mean, std)``,
    mean and log standard deviation from one MLP (log std clamped to [-20, 2]).

    ``forward`` returns ``(mean, log_std)`` of ``u``; ``sample`` and ``mode`` give squashed
    actions in (-1, 1); ``rsample`` draws differentiably with the action's log-probability
    (the change of variables through ``tanh`` included).
    """

    discrete = False

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (300, 300, 300)):
        super().__init__()
        self.net = MLP(obs_dim, 2 * act_dim, hidden, "relu")
        self.act_dim = int(act_dim)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.net(obs).split(self.act_dim, dim=-1)
        return mean, log_std.clamp(-20.0, 2.0)

    @staticmethod
    def sample(dist: tuple[Tensor, Tensor], generator: torch.Generator | None = None) -> Tensor:
        return torch.tanh(GaussianMLPPolicy.sample(dist, generator))

    @staticmethod
    def mode(dist: tuple[Tensor, Tensor]) -> Tensor:
        """The squashed mean."""
        return torch.tanh(dist[0])

    @staticmethod
    def rsample(dist: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """A differentiable squashed sample and its log-probability (summed over dimensions)."""
        mean, log_std = dist
        u = mean + log_std.exp() * torch.randn_like(mean)
        action = torch.tanh(u)
        log_prob = GaussianMLPPolicy.log_prob(dist, u)
        # log |d tanh(u) / du| = log(1 - tanh(u)^2), written stably
        log_prob = log_prob - (2 * (math.log(2) - u - torch.nn.functional.softplus(-2 * u))).sum(-1)
        return action, log_prob


def _spaces(
    env_id: str, env_kwargs: Mapping[str, Any] | None = None
) -> tuple[gym.Space, gym.Space]:
    env = gym.make(env_id, disable_env_checker=True, **(env_kwargs or {}))
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
