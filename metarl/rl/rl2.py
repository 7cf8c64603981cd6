"""RL^2 (Duan et al., 2016): a recurrent policy trained across trials, adapting in its state.

``RL2`` is the learner: a ``GRUPolicy`` and the number of episodes in a trial. It has no
inner gradient step: within a trial on a new task the policy's hidden state carries what it
has seen, so "adapting" is playing the trial (``play``). It is saved and loaded like every
other learner (``metarl.save_learner`` / ``metarl.load_learner``).

``RL2Trainer`` trains it with PPO (``metarl.rl.ppo``) on trials from a ``TrialSampler``::

    sampler = TrialSampler("metarl/BernoulliBandit-v0", episodes_per_trial=10, horizon=1,
                           trials_per_task=1, env_kwargs={"arms": 5, "pulls": 1})
    policy = GRUPolicy.for_sampler(sampler)
    trainer = RL2Trainer(RL2(policy, episodes_per_trial=10), sampler, lr=1e-3)
    for _ in range(100):
        metrics = trainer.step(sampler.sample_tasks(500))
    returns = trainer.learner.play(sampler, held_out_tasks).mean_episode_returns()
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from metarl.config import Configurable
from metarl.rl.ppo import PPO
from metarl.rl.recurrent import GRUPolicy
from metarl.rl.trials import Trials, TrialSampler


class RL2(Configurable, nn.Module):
    """The RL^2 learner: ``model`` (a ``GRUPolicy``) plays trials of
    ``episodes_per_trial`` episodes, its hidden state kept across them."""

    config_excludes = ("model",)

    def __init__(self, model: GRUPolicy, episodes_per_trial: int = 2) -> None:
        super().__init__()
        if episodes_per_trial < 1:
            raise ValueError(f"episodes_per_trial must be >= 1, got {episodes_per_trial}")
        self.model = model
        self.episodes_per_trial = int(episodes_per_trial)
        self.eval_steps = 0  # no gradient steps: the recurrent state adapts

    def play(
        self,
        sampler: TrialSampler,
        tasks: Sequence[Mapping[str, Any]],
        deterministic: bool = False,
    ) -> Trials:
        """Play ``sampler.trials_per_task`` trials on each task (``sampler`` must run
        trials of this learner's length)."""
        if sampler.episodes_per_trial != self.episodes_per_trial:
            raise ValueError(
                f"the sampler runs trials of {sampler.episodes_per_trial} episodes; this "
                f"learner was built for {self.episodes_per_trial}"
            )
        return sampler.sample(tasks, self.model, deterministic=deterministic)


class RL2Trainer:
    """Train an ``RL2`` learner with PPO on trials of tasks from ``sampler``.

    Args:
        learner: the learner to train (its policy is updated in place).
        sampler: a ``TrialSampler`` whose trials match the learner's.
        ppo: PPO's settings (clip, epochs, minibatches, discount, GAE, loss weights).
        lr: Adam's learning rate.
        seed: seeds the minibatch order.
    """

    def __init__(
        self,
        learner: RL2,
        sampler: TrialSampler,
        ppo: PPO | None = None,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        if sampler.episodes_per_trial != learner.episodes_per_trial:
            raise ValueError("the sampler's trials and the learner's differ in length")
        self.learner, self.sampler = learner, sampler
        self.ppo = ppo or PPO()
        self.optimizer = torch.optim.Adam(learner.model.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)

    def step(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Play trials on ``tasks`` and take one PPO update on them. Returns the mean
        return per trial and of the first and last episode of a trial, the environment
        steps taken, PPO's statistics and the seconds spent sampling and updating."""
        start = time.perf_counter()
        trials = self.learner.play(self.sampler, tasks)
        sampled = time.perf_counter()
        stats = self.ppo.update(self.learner.model, self.optimizer, trials, self.generator)
        per_episode = trials.episode_returns.mean((0, 1))
        return {
            "trial_return": float(trials.episode_returns.sum(-1).mean()),
            "first_episode_return": float(per_episode[0]),
            "last_episode_return": float(per_episode[-1]),
            "env_steps": trials.steps(),
            **stats,
            "sample_s": sampled - start,
            "update_s": time.perf_counter() - sampled,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: weights, optimiser, random streams."""
        return {
            "model": self.learner.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": self.sampler.state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        self.learner.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.sampler.load_state(state["sampler"])
