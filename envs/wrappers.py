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


def previous_step_size(space: gym.Space) -> int:
    """How many numbers ``previous_step`` gives for actions of ``space``: the action (one-hot
    if discrete), the reward and the done flag."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n) + 2
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape)) + 2
    raise TypeError(f"unsupported action space {space}")


def previous_step(
    space: gym.Space, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray
) -> np.ndarray:
    """``[n, previous_step_size(space)]`` float32: each of ``n`` actions of ``space``
    (one-hot if discrete), then its reward and done flag (the RL^2 inputs)."""
    n = len(actions)
    out = np.zeros((n, previous_step_size(space)), np.float32)
    if isinstance(space, gym.spaces.Discrete):
        out[np.arange(n), np.asarray(actions).astype(np.int64)] = 1.0
    else:
        out[:, :-2] = np.asarray(actions, dtype=np.float64).reshape(n, -1)
    out[:, -2], out[:, -1] = rewards, done
    return out


class PreviousStepInObservation(gym.Wrapper):
    """Append the previous action (one-hot if discrete), reward and done flag to observations."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        extra = previous_step_size(env.action_space)
        self.observation_space = _extend_box(env.observation_space, extra)

    def _extend(self, obs: np.ndarray, action: Any, reward: float, done: bool) -> np.ndarray:
        if action is None:  # before the first step: all zeros
            extra = np.zeros(previous_step_size(self.env.action_space), np.float32)
        else:
            extra = previous_step(self.env.action_space, [action], [reward], [done])[0]
        return np.concatenate((obs, extra)).astype(self.observation_space.dtype)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._extend(obs, None, 0.0, False), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = terminated or truncated
        return self._extend(obs, action, float(reward), done), reward, terminated, truncated, info
