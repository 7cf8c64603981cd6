"""Observation wrappers for task distributions.

- ``TaskInObservation`` appends the current task, as numbers (``task_features``), to every
  observation: the input of an oracle policy, and of RL^2-style baselines that are told the task.
- ``PreviousStepInObservation`` appends the previous action, reward and done flag, the input
  of recurrent meta-learners that must infer the task from experience.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


def flatten_task(task: Mapping[str, Any]) -> np.ndarray:
    """The task's numbers in field order: ``{"goal": [1, 2], "speed": 3}`` -> ``[1, 2, 3]``."""
    parts = [np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel() for v in task.values()]
    return np.concatenate(parts) if parts else np.zeros(0)


def task_features(env: gym.Env) -> np.ndarray:
    """``env``'s current task as the numbers an oracle sees: the environment's own
    ``task_features()`` where it has one (tasks that are not numbers, e.g. Meta-World's
    indices, whose goal it reports instead), else ``flatten_task(env.task)``."""
    env = env.unwrapped
    if hasattr(env, "task_features"):
        return np.asarray(env.task_features(), dtype=np.float64)
    return flatten_task(env.task)


def _extend_box(space: gym.Space, extra: int) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"observation wrappers need a flat Box observation space, got {space}")
    low = np.concatenate((space.low, np.full(extra, -np.inf))).astype(space.dtype)
    high = np.concatenate((space.high, np.full(extra, np.inf))).astype(space.dtype)
    return gym.spaces.Box(low, high, dtype=space.dtype)


class TaskInObservation(gym.Wrapper):
    """Append the flattened current task to each observation (oracle input)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        size = task_features(env).size
        self.observation_space = _extend_box(env.observation_space, size)

    def _extend(self, obs: np.ndarray) -> np.ndarray:
        task = task_features(self.env)
        return np.concatenate((obs, task)).astype(self.observation_space.dtype)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._extend(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._extend(obs), reward, terminated, truncated, info


class PreviousStepInObservation(gym.Wrapper):
    """Append the previous action (one-hot if discrete), reward and done flag to observations."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            self._action_size = int(space.n)
        elif isinstance(space, gym.spaces.Box):
            self._action_size = int(np.prod(space.shape))
        else:
            raise TypeError(f"unsupported action space {space}")
        self.observation_space = _extend_box(env.observation_space, self._action_size + 2)

    def _extend(self, obs: np.ndarray, action: Any, reward: float, done: bool) -> np.ndarray:
        extra = np.zeros(self._action_size + 2)
        if action is not None:
            if isinstance(self.env.action_space, gym.spaces.Discrete):
                extra[int(action)] = 1.0
            else:
                extra[: self._action_size] = np.asarray(action, dtype=np.float64).ravel()
        extra[-2], extra[-1] = reward, float(done)
        return np.concatenate((obs, extra)).astype(self.observation_space.dtype)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._extend(obs, None, 0.0, False), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = terminated or truncated
        return self._extend(obs, action, float(reward), done), reward, terminated, truncated, info
