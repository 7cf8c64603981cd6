"""Trials for RL^2: several episodes of one task in a row, a recurrent policy's state carried.

A trial is ``episodes_per_trial`` episodes of the same task. The policy sees, besides each
observation, the previous action (one-hot if discrete, the policy's own units if
continuous), the previous reward and whether the previous step ended an episode (all zeros
at a trial's first step), and its hidden state runs on across the episodes of a trial; each
trial starts from ``policy.initial_state``. This is the interface of Duan et al. (2016).

``TrialSampler.sample`` runs every trial of every task in lockstep, one batched policy step
per time step, on the distribution's vector form where it has one (the
``MultiTaskSampler`` machinery: seeding, action rescaling, per-copy fallback). A trial's
valid steps are stored one after the other, so a trial is a sequence with padding only at
its end (where episodes ended early, e.g. Ant falling) and a recurrent network can be
trained on it in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from metarl.envs.wrappers import previous_step, previous_step_size
from metarl.rl.sampler import MultiTaskSampler, _torch_threads, actions_array


class Trials(NamedTuple):
    """Trials of many tasks: ``[tasks, trials, steps, ...]`` with the valid steps first."""

    observations: Tensor  # [T, N, L, obs_dim + extra]: what the policy saw
    actions: Tensor  # [T, N, L] (discrete) or [T, N, L, act_dim]
    rewards: Tensor  # [T, N, L]
    mask: Tensor  # [T, N, L]: 1 on the steps that happened
    episode_returns: Tensor  # [T, N, E]: undiscounted return of each episode of each trial

    def steps(self) -> int:
        """Number of environment steps taken."""
        return int(self.mask.sum().item())

    def mean_episode_returns(self) -> Tensor:
        """Mean return of the ``e``-th episode of a trial, per task: ``[T, E]``."""
        return self.episode_returns.mean(1)


class TrialSampler(MultiTaskSampler):
    """Collect RL^2 trials: ``trials_per_task`` trials of ``episodes_per_trial`` episodes.

    Args:
        env_id: a registered task distribution.
        episodes_per_trial: episodes of the same task in one trial (the policy's memory
            spans them).
        horizon: maximum steps per episode.
        trials_per_task: trials run for each task given to ``sample``.
        **kwargs: ``MultiTaskSampler``'s (``seed``, ``env_kwargs``, ``fast``, ``threads``,
            ``rescale_actions``, ``policy_threads``, ``task_in_observation``).
    """

    def __init__(
        self,
        env_id: str,
        episodes_per_trial: int,
        horizon: int,
        trials_per_task: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(env_id, trials_per_task, horizon, **kwargs)
        if episodes_per_trial < 1:
            raise ValueError(f"episodes_per_trial must be >= 1, got {episodes_per_trial}")
        self.episodes_per_trial = int(episodes_per_trial)
        # inputs appended to each observation: previous action, reward and done flag
        self.extra_obs = previous_step_size(self.task_env.action_space)

    @property
    def trials_per_task(self) -> int:
        """Trials run for each task."""
        return self.episodes_per_task

    def sample(  # type: ignore[override]
        self,
        tasks: Sequence[Mapping[str, Any]],
        policy: nn.Module,
        deterministic: bool = False,
    ) -> Trials:
        """Run ``trials_per_task`` trials of ``policy`` (a ``GRUPolicy``-like module with
        ``initial_state`` and ``step``) on every task."""
        per_task, episodes, horizon = self.trials_per_task, self.episodes_per_trial, self.horizon
        num_tasks = len(tasks)
        n, length = num_tasks * per_task, episodes * horizon
        copy_tasks = [tasks[i // per_task] for i in range(n)]
        previous = np.zeros((n, self.extra_obs), np.float32)
        pos = np.zeros(n, dtype=np.int64)  # where each trial's next step goes
        returns = np.zeros((n, episodes), np.float64)
        reward = np.zeros(n, np.float32)
        buffers: dict[str, np.ndarray] = {}
        state = policy.initial_state(n)
        with torch.no_grad():
            for e in range(episodes):
                # a trial's first episode sets its task and seeds it; later ones go on
                seeds = self._rng.integers(0, 2**31 - 1, size=n) if e == 0 else None
                copies = self._start_copies(copy_tasks, seeds)
                obs = copies.obs
                alive = np.ones(n, dtype=bool)
                with _torch_threads(self._sampling_threads(copies)):
                    for h in range(horizon):
                        x = np.concatenate((obs, previous), axis=1)
                        dist, _, next_state = policy.step(torch.from_numpy(x), state)
                        live_t = torch.from_numpy(alive).unsqueeze(1)
                        state = torch.where(live_t, next_state, state)
                        chosen = (
                            policy.mode(dist)
                            if deterministic
                            else policy.sample(dist, self._generator)
                        )
                        actions = actions_array(policy, chosen.reshape(n, -1))
                        if not buffers:
                            buffers = _allocate(n, length, x.shape[1], actions)
                        live = np.flatnonzero(alive)
                        at = (live, pos[live])
                        buffers["obs"][at], buffers["act"][at] = x[live], actions[live]
                        buffers["mask"][at] = 1.0
                        reward[:] = 0.0
                        copies.step(self._env_actions(actions), alive, obs, reward)
                        buffers["rew"][at] = reward[live]
                        returns[live, e] += reward[live]
                        ended = ~alive[live] | (h == horizon - 1)
                        previous[live] = previous_step(
                            self.task_env.action_space, actions[live], reward[live], ended
                        )
                        pos[live] += 1
                        obs[~alive] = 0.0  # a terminal observation may be non-finite
                        if not alive.any():
                            break
        shape = (num_tasks, per_task, length)

        def view(array: np.ndarray) -> Tensor:
            return torch.from_numpy(array).view(*shape, *array.shape[2:])

        return Trials(
            observations=view(buffers["obs"]),
            actions=view(buffers["act"]),
            rewards=view(buffers["rew"]),
            mask=view(buffers["mask"]),
            episode_returns=torch.from_numpy(returns).float().view(num_tasks, per_task, -1),
        )


def _allocate(n: int, length: int, obs_dim: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "obs": np.zeros((n, length, obs_dim), np.float32),
        "act": np.zeros((n, length, *actions.shape[1:]), actions.dtype),
        "rew": np.zeros((n, length), np.float32),
        "mask": np.zeros((n, length), np.float32),
    }
