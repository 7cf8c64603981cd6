"""Experts trained with Stable-Baselines3 on a task distribution, the task in the observation.

``expert_training_env`` is the environment SB3 trains on: the distribution draws a new task
at every reset (from its own seeded stream) and appends it to the observation
(``TaskInObservation``), so one policy learns every task, as an oracle does. ``SB3Expert``
wraps the trained model in the expert interface ``generate_demos`` rolls out: its
deterministic action, mapped from the action box to the policy scale [-1, 1] that
``MultiTaskSampler`` maps back.

    env = expert_training_env("metarl/HalfCheetahVel-v1", horizon=200, seed=0)
    model = stable_baselines3.SAC("MlpPolicy", env).learn(1_000_000)
    model.save("expert.zip")
    expert = load_sb3_expert("expert.zip", "sac")  # or make_expert(env_id, policy="expert.zip")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from metarl.envs.wrappers import TaskInObservation
from metarl.imitation.experts import NoisyExpert

ALGORITHMS = ("sac", "ppo")


class NewTaskEachEpisode(gym.Wrapper):
    """Draw a task from the distribution at every reset, from a stream seeded by ``seed``
    (reseeded by ``reset(seed=...)``)."""

    def __init__(self, env: gym.Env, seed: int = 0) -> None:
        super().__init__(env)
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.env.unwrapped.set_task(self.env.unwrapped.sample_tasks(1, self._rng)[0])
        return self.env.reset(seed=seed, options=options)


def expert_training_env(
    env_id: str, horizon: int, seed: int = 0, env_kwargs: Mapping[str, Any] | None = None
) -> gym.Env:
    """``env_id`` for training an expert: a new task each episode, the task in the
    observation, episodes cut at ``horizon`` steps."""
    env = gym.make(
        env_id, max_episode_steps=horizon, disable_env_checker=True, **dict(env_kwargs or {})
    )
    return TaskInObservation(NewTaskEachEpisode(env, seed))


def sb3_algorithm(name: str) -> Any:
    """The Stable-Baselines3 class ``name`` (``"sac"`` or ``"ppo"``) names."""
    import stable_baselines3

    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {name!r}")
    return getattr(stable_baselines3, name.upper())


class SB3Expert(NoisyExpert):
    """A Stable-Baselines3 model that sees the task as an expert: its deterministic action,
    mapped from its action box to [-1, 1]; ``noise`` as for every expert."""

    def __init__(self, model: Any, noise: float = 0.0) -> None:
        super().__init__(noise)
        self.model = model
        space = model.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"SB3Expert needs a Box action space, got {space}")
        self._center = torch.as_tensor((space.high + space.low) / 2, dtype=torch.float32)
        self._half = torch.as_tensor((space.high - space.low) / 2, dtype=torch.float32)

    def mean_action(self, obs: Tensor) -> Tensor:
        rows = obs.reshape(-1, obs.shape[-1]).numpy()
        actions, _ = self.model.predict(rows, deterministic=True)
        actions = torch.as_tensor(actions, dtype=torch.float32)
        scaled = (actions - self._center) / self._half
        return scaled.to(obs.dtype).reshape(*obs.shape[:-1], -1)


def load_sb3_expert(path: str | os.PathLike, algorithm: str, noise: float = 0.0) -> SB3Expert:
    """The model ``train_expert.py`` saved at ``path`` (an SB3 ``.zip``) as an expert."""
    return SB3Expert(sb3_algorithm(algorithm).load(path, device="cpu"), noise)
