"""PEARL (Rakelly et al., 2019, "Efficient Off-Policy Meta-Reinforcement Learning via
Probabilistic Context Variables"): a latent task variable inferred from transitions, soft
actor-critic on the latent-conditioned policy, off-policy replay per task.

- ``ContextEncoder``: each transition ``(s, a, r, s')`` gives a Gaussian factor over the
  latent ``z``; the posterior is their product (``posterior``), the prior ``N(0, I)``.
- ``PEARL``: the learner (encoder, ``TanhGaussianMLPPolicy`` over ``[s, z]``); it adapts by
  collecting transitions on a task and conditioning on the posterior they give
  (``adapt_and_play``). Saved and loaded like every learner.
- ``PEARLTrainer``: the training loop's pieces: ``collect`` (episodes of training tasks with
  ``z`` from the prior or from the posterior of fresh context, into the per-task replay and
  context buffers) and ``update`` (one gradient step of SAC's losses on a meta-batch of
  tasks: twin Q-functions and a state-value function with a slowly tracking target, the
  policy, and the encoder through the Q loss plus ``kl_weight`` times its KL to the prior).

Sampling goes through ``MultiTaskSampler``: every task of a batch in lockstep, each with its
own ``z``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.config import Configurable
from metarl.nn import MLP
from metarl.rl.policies import TanhGaussianMLPPolicy
from metarl.rl.replay import TaskReplay, episode_transitions
from metarl.rl.sampler import MultiTaskSampler


class ContextEncoder(Configurable, nn.Module):
    """Transitions -> Gaussian factors over a ``latent_dim`` latent, combined by product."""

    def __init__(
        self, transition_dim: int, latent_dim: int = 5, hidden: Sequence[int] = (200, 200, 200)
    ) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.net = MLP(transition_dim, 2 * latent_dim, hidden, "relu")

    def posterior(self, context: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and variance ``[T, latent]`` of the product of the factors of ``context
        [T, C, transition_dim]`` (``mask [T, C]`` marks real transitions); a task without
        any gets the prior ``N(0, I)``."""
        out = self.net(context)
        mu, var = out[..., : self.latent_dim], F.softplus(out[..., self.latent_dim :]) + 1e-7
        weight = torch.ones_like(var[..., 0]) if mask is None else mask
        precision = (weight[..., None] / var).sum(-2)
        weighted = (weight[..., None] * mu / var).sum(-2)
        empty = (weight.sum(-1) == 0)[..., None]
        post_var = torch.where(empty, torch.ones_like(precision), 1.0 / precision.clamp_min(1e-7))
        post_mu = torch.where(empty, torch.zeros_like(weighted), post_var * weighted)
        return post_mu, post_var

    @staticmethod
    def kl_to_prior(mu: Tensor, var: Tensor) -> Tensor:
        """KL(N(mu, var) || N(0, I)) per task."""
        return 0.5 * (var + mu**2 - 1.0 - var.log()).sum(-1)


class LatentConditioned(nn.Module):
    """A policy over ``[obs, z]`` with one ``z`` per task: the sampler's view of PEARL."""

    discrete = False

    def __init__(self, policy: TanhGaussianMLPPolicy, z: Tensor) -> None:
        super().__init__()
        self.policy, self.z = policy, z

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:  # obs [T, N, D]
        z = self.z[:, None].expand(obs.shape[0], obs.shape[1], -1)
        return self.policy(torch.cat((obs, z), -1))

    def sample(self, dist, generator=None) -> Tensor:
        return self.policy.sample(dist, generator)

    def mode(self, dist) -> Tensor:
        return self.policy.mode(dist)


class PEARL(Configurable, nn.Module):
    """The PEARL learner: ``model`` (the policy over ``[obs, z]``) and its context encoder.

    Args:
        model: a ``TanhGaussianMLPPolicy`` of input size ``obs_dim + latent_dim``.
        transition_dim: size of a transition ``[obs, action, reward, next_obs]``.
        latent_dim: size of ``z`` (PEARL: 5).
        encoder_hidden: the encoder's hidden sizes (PEARL: 200 x 3).
    """

    config_excludes = ("model",)

    def __init__(
        self,
        model: TanhGaussianMLPPolicy,
        transition_dim: int,
        latent_dim: int = 5,
        encoder_hidden: Sequence[int] = (200, 200, 200),
    ) -> None:
        super().__init__()
        self.model = model
        self.encoder = ContextEncoder(transition_dim, latent_dim, encoder_hidden)
        self.eval_steps = 0  # no gradient steps at test time: the posterior adapts

    @classmethod
    def for_sampler(
        cls, sampler: MultiTaskSampler, hidden: Sequence[int] = (300, 300, 300), **kwargs: Any
    ) -> PEARL:
        """A fresh learner sized for ``sampler``'s distribution (``kwargs``: the encoder's)."""
        obs_dim = int(sampler.task_env.observation_space.shape[0])
        act_dim = int(sampler.task_env.action_space.shape[0])
        latent = kwargs.get("latent_dim", 5)
        policy = TanhGaussianMLPPolicy(obs_dim + latent, act_dim, hidden)
        return cls(policy, 2 * obs_dim + act_dim + 1, **kwargs)

    def sample_z(
        self, context: Tensor | None, num_tasks: int, mask: Tensor | None = None
    ) -> Tensor:
        """A latent per task from the posterior of ``context`` (the prior without it)."""
        if context is None:
            return torch.randn(num_tasks, self.encoder.latent_dim)
        mu, var = self.encoder.posterior(context, mask)
        return mu + var.sqrt() * torch.randn_like(mu)

    @torch.no_grad()
    def adapt_and_play(
        self,
        sampler: MultiTaskSampler,
        tasks: Sequence[Mapping[str, Any]],
        episodes: int,
        deterministic: bool = True,
    ) -> Tensor:
        """Play ``episodes`` episodes on each task, the first with ``z`` from the prior, each
        later one with ``z`` from the posterior of every transition seen so far on that
        task. Returns each episode's return ``[T, episodes]``."""
        context, mask, returns = None, None, []
        for _ in range(episodes):
            z = self.sample_z(context, len(tasks), mask)
            played = sampler.sample(
                tasks, LatentConditioned(self.model, z), deterministic=deterministic
            )
            returns.append(played.returns().mean(1))
            transitions, step_mask = episode_transitions(played)
            step_context = transitions.context()
            context = step_context if context is None else torch.cat((context, step_context), 1)
            mask = step_mask if mask is None else torch.cat((mask, step_mask), 1)
        return torch.stack(returns, 1)


class PEARLTrainer:
    """Train a ``PEARL`` learner on a fixed set of training tasks (see the module docstring).

    Args:
        learner: the learner (its policy and encoder are trained in place).
        sampler: a ``MultiTaskSampler`` (``episodes_per_task`` episodes per collection).
        train_tasks: the training tasks; replay is kept per task.
        capacity: transitions kept per task in the replay (the oldest dropped first).
        context_capacity: transitions kept per task in the context buffer.
        hidden: hidden sizes of the Q- and value networks.
        lr: Adam's learning rate for every network.
        gamma: discount.
        reward_scale: rewards are multiplied by this in the Q target (SAC's temperature is
            fixed at 1, so this sets the entropy's relative weight; PEARL: 5).
        kl_weight: weight of the encoder's KL to the prior (PEARL: 0.1).
        tau: the target value network's tracking rate.
        seed: seeds the minibatches.
    """

    def __init__(
        self,
        learner: PEARL,
        sampler: MultiTaskSampler,
        train_tasks: Sequence[Mapping[str, Any]],
        capacity: int = 20_000,
        context_capacity: int = 2_000,
        hidden: Sequence[int] = (300, 300, 300),
        lr: float = 3e-4,
        gamma: float = 0.99,
        reward_scale: float = 5.0,
        kl_weight: float = 0.1,
        tau: float = 0.005,
        seed: int = 0,
    ) -> None:
        self.learner, self.sampler = learner, sampler
        self.train_tasks = list(train_tasks)
        obs_dim = int(sampler.task_env.observation_space.shape[0])
        act_dim = learner.model.act_dim
        latent = learner.encoder.latent_dim
        self.q1 = MLP(obs_dim + act_dim + latent, 1, hidden)
        self.q2 = MLP(obs_dim + act_dim + latent, 1, hidden)
        self.value = MLP(obs_dim + latent, 1, hidden)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)
        self.gamma, self.reward_scale, self.kl_weight, self.tau = (
            gamma,
            reward_scale,
            kl_weight,
            tau,
        )
        self.optimizers = {
            "policy": torch.optim.Adam(learner.model.parameters(), lr=lr),
            "q": torch.optim.Adam(
                [*self.q1.parameters(), *self.q2.parameters(), *learner.encoder.parameters()], lr=lr
            ),
            "value": torch.optim.Adam(self.value.parameters(), lr=lr),
        }
        n = len(self.train_tasks)
        self.replay = TaskReplay(n, capacity, obs_dim, act_dim)
        self.context = TaskReplay(n, context_capacity, obs_dim, act_dim)
        self.generator = torch.Generator().manual_seed(seed)
        self.env_steps = 0

    def collect(
        self, task_ids: Sequence[int], use_posterior: bool, context_size: int = 100
    ) -> float:
        """Play ``sampler.episodes_per_task`` episodes on each listed training task with
        ``z`` from the prior or from the posterior of ``context_size`` transitions of its
        context buffer; store them in the replay (and, from the prior, the context) buffers.
        Returns the mean episode return."""
        tasks = [self.train_tasks[i] for i in task_ids]
        with torch.no_grad():
            if use_posterior:
                ctx = self.context.sample(task_ids, context_size, self.generator).context()
                z = self.learner.sample_z(ctx, len(tasks))
            else:
                z = self.learner.sample_z(None, len(tasks))
            episodes = self.sampler.sample(tasks, LatentConditioned(self.learner.model, z))
        self.replay.add(task_ids, episodes)
        if not use_posterior:
            self.context.add(task_ids, episodes)
        self.env_steps += episodes.steps()
        return float(episodes.returns().mean())

    def update(
        self, task_ids: Sequence[int], batch: int = 256, context_size: int = 100
    ) -> dict[str, float]:
        """One gradient step of every loss on the listed training tasks."""
        ctx = self.context.sample(task_ids, context_size, self.generator).context()
        data = self.replay.sample(task_ids, batch, self.generator)
        mu, var = self.learner.encoder.posterior(ctx)
        z = (mu + var.sqrt() * torch.randn_like(mu))[:, None].expand(-1, batch, -1)
        kl = ContextEncoder.kl_to_prior(mu, var).mean()
        z_fixed = z.detach()  # the policy's and V's input: only the Q loss trains the encoder
        obs_zd = torch.cat((data.obs, z_fixed), -1)
        # Q: r + gamma V'(s', z) ; the encoder learns through it (and the KL)
        with torch.no_grad():
            next_v = self.target_value(torch.cat((data.next_obs, z), -1)).squeeze(-1)
            target_q = self.reward_scale * data.rewards + (1 - data.done) * self.gamma * next_v
        sa_z = torch.cat((data.obs, data.actions, z), -1)
        q_loss = F.mse_loss(self.q1(sa_z).squeeze(-1), target_q) + F.mse_loss(
            self.q2(sa_z).squeeze(-1), target_q
        )
        self.optimizers["q"].zero_grad()
        (q_loss + self.kl_weight * kl).backward()
        self.optimizers["q"].step()
        # policy and V on the detached latent
        dist = self.learner.model(obs_zd)
        action, log_prob = TanhGaussianMLPPolicy.rsample(dist)
        sa_new = torch.cat((data.obs, action, z_fixed), -1)
        min_q = torch.min(self.q1(sa_new), self.q2(sa_new)).squeeze(-1)
        v = self.value(obs_zd).squeeze(-1)
        v_loss = F.mse_loss(v, (min_q - log_prob).detach())
        self.optimizers["value"].zero_grad()
        v_loss.backward()
        self.optimizers["value"].step()
        mean, log_std = dist
        policy_loss = (
            (log_prob - min_q).mean() + 1e-3 * (mean**2).mean() + 1e-3 * (log_std**2).mean()
        )
        self.optimizers["policy"].zero_grad()
        policy_loss.backward()
        self.optimizers["policy"].step()
        with torch.no_grad():
            for target, source in zip(self.target_value.parameters(), self.value.parameters()):
                target.lerp_(source, self.tau)
        return {
            "q_loss": q_loss.item(),
            "value_loss": v_loss.item(),
            "policy_loss": policy_loss.item(),
            "kl": kl.item(),
            "log_prob": log_prob.mean().item(),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (networks, optimisers, buffers, random streams)."""
        return {
            "learner": self.learner.state_dict(),
            "q1": self.q1.state_dict(),
            "q2": self.q2.state_dict(),
            "value": self.value.state_dict(),
            "target_value": self.target_value.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "replay": self.replay.state_dict(),
            "context": self.context.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": self.sampler.state(),
            "env_steps": self.env_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        self.learner.load_state_dict(state["learner"])
        for name in ("q1", "q2", "value", "target_value"):
            getattr(self, name).load_state_dict(state[name])
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.replay.load_state_dict(state["replay"])
        self.context.load_state_dict(state["context"])
        self.generator.set_state(state["generator"])
        self.sampler.load_state(state["sampler"])
        self.env_steps = int(state["env_steps"])
