"""A recurrent actor-critic for RL^2: a GRU over a trial's steps, action and value heads.

RL^2 (Duan et al., 2016, "RL^2: Fast Reinforcement Learning via Slow Reinforcement
Learning") feeds a recurrent network each observation together with the previous action,
reward and done flag, and keeps its hidden state across the episodes of a trial (one task),
so the network's activations do the adapting. ``GRUPolicy`` is that network: the trial
sampler (``metarl.rl.trials``) steps it one time step at a time with ``step``; training
runs it over whole trials at once with ``forward_sequence`` from the zero state, which gives
the same outputs as stepping.

The action distributions are the feed-forward policies' (``CategoricalMLPPolicy``'s
log-probabilities, ``GaussianMLPPolicy``'s mean and state-independent log standard
deviation), with the same static ``log_prob`` / ``sample`` / ``mode`` / ``kl`` functions.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import Tensor, nn

from metarl.config import Configurable
from metarl.rl.policies import CategoricalMLPPolicy, GaussianMLPPolicy, _spaces
from metarl.rl.trials import TrialSampler

Dist = tuple[Tensor, ...]


class GRUPolicy(Configurable, nn.Module):
    """GRU actor-critic: ``obs -> GRU(hidden) -> (action distribution, value)``.

    Args:
        obs_dim: input size per step (the environment's observation plus whatever the
            sampler appends: previous action, reward, done flag).
        act_dim: number of actions (``discrete``) or the action vector's size.
        discrete: categorical actions over ``act_dim`` choices, else a diagonal Gaussian.
        hidden: GRU units (the RL^2 paper used 256).
        init_std: initial standard deviation of a Gaussian policy.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        discrete: bool,
        hidden: int = 256,
        init_std: float = 1.0,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1 or hidden < 1:
            raise ValueError(f"sizes must be positive, got {obs_dim}, {act_dim}, {hidden}")
        self.discrete = bool(discrete)
        self.hidden_size = int(hidden)
        self.gru = nn.GRU(obs_dim, hidden, batch_first=True)
        self.action_head = nn.Linear(hidden, act_dim)
        self.value_head = nn.Linear(hidden, 1)
        # values are value_head's output times this scale (kept near the returns' spread by
        # metarl.rl.ppo.rescale_value_head, so the head itself works in units of about 1)
        self.register_buffer("value_scale", torch.ones(()))
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        with torch.no_grad():  # small first actions and values (a near-uniform start)
            self.action_head.weight.mul_(0.01)
            self.action_head.bias.zero_()
        self._dist = CategoricalMLPPolicy if self.discrete else GaussianMLPPolicy

    @classmethod
    def for_env(cls, env_id: str, extra_obs: int = 0, **kwargs) -> GRUPolicy:
        """Size the policy from a registered environment's default spaces (plus
        ``extra_obs`` inputs)."""
        return cls.for_spaces(*_spaces(env_id), extra_obs=extra_obs, **kwargs)

    @classmethod
    def for_sampler(cls, sampler: TrialSampler, **kwargs) -> GRUPolicy:
        """Size the policy for a ``TrialSampler``'s trials (its environment as built, with
        its ``env_kwargs``, and the previous step it appends)."""
        env = sampler.task_env
        return cls.for_spaces(env.observation_space, env.action_space, sampler.extra_obs, **kwargs)

    @classmethod
    def for_spaces(
        cls, obs_space: gym.Space, act_space: gym.Space, extra_obs: int = 0, **kwargs
    ) -> GRUPolicy:
        """Size the policy for these spaces (plus ``extra_obs`` inputs)."""
        obs_dim = int(obs_space.shape[0]) + extra_obs
        if isinstance(act_space, gym.spaces.Discrete):
            return cls(obs_dim, int(act_space.n), discrete=True, **kwargs)
        if isinstance(act_space, gym.spaces.Box):
            return cls(obs_dim, int(math.prod(act_space.shape)), discrete=False, **kwargs)
        raise TypeError(f"GRUPolicy needs Discrete or Box actions, got {act_space}")

    def initial_state(self, batch: int) -> Tensor:
        """The hidden state at the start of a trial: zeros ``[batch, hidden]``."""
        return torch.zeros(batch, self.hidden_size)

    def _heads(self, features: Tensor) -> tuple[Dist, Tensor]:
        out = self.action_head(features)
        if self.discrete:
            dist: Dist = (torch.log_softmax(out, dim=-1),)
        else:
            dist = (out, self.log_std.expand_as(out))
        return dist, self.value_head(features).squeeze(-1) * self.value_scale

    def step(self, obs: Tensor, state: Tensor) -> tuple[Dist, Tensor, Tensor]:
        """One time step for a batch: ``obs [B, obs_dim]``, ``state [B, hidden]`` ->
        ``(distribution, value [B], next state)``."""
        features, h = self.gru(obs.unsqueeze(1), state.unsqueeze(0))
        dist, value = self._heads(features.squeeze(1))
        return dist, value, h.squeeze(0)

    def forward_sequence(self, obs: Tensor) -> tuple[Dist, Tensor]:
        """Whole trials from the zero state: ``obs [B, L, obs_dim]`` ->
        ``(distribution over [B, L], values [B, L])``. Steps after a trial's end (padding at
        the end of the sequence) do not change the earlier outputs."""
        features, _ = self.gru(obs)
        return self._heads(features)

    def forward(self, obs: Tensor) -> Dist:
        """The action distribution over whole trials (``forward_sequence`` without values)."""
        return self.forward_sequence(obs)[0]

    def log_prob(self, dist: Dist, actions: Tensor) -> Tensor:
        """Log-probability of ``actions`` under ``dist``."""
        return self._dist.log_prob(dist, actions)

    def sample(self, dist: Dist, generator: torch.Generator | None = None) -> Tensor:
        """An action drawn from ``dist``."""
        return self._dist.sample(dist, generator)

    def mode(self, dist: Dist) -> Tensor:
        """The most likely action."""
        return self._dist.mode(dist)

    def entropy(self, dist: Dist) -> Tensor:
        """Entropy of ``dist`` per step."""
        if self.discrete:
            (log_probs,) = dist
            return -(log_probs.exp() * log_probs).sum(-1)
        log_std = dist[1]
        return (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)
