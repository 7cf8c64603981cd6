"""2D navigation (Finn, Abbeel and Levine, "MAML", ICML 2017, section 5.3).

A point mass starts at the origin and must reach a goal drawn from U[-0.5, 0.5]^2. Each
action is a displacement, clipped to [-0.1, 0.1]^2; the reward is minus the distance to the
goal after the move. The episode ends when the point is within 0.01 of the goal on both
axes, or after 100 steps (the horizon is applied at registration). ``start_range > 0``
starts each episode at a point drawn from U[-start_range, start_range]^2 instead
(``metarl/Navigation2DRandomStart-v0``: 0.5), so that one demonstration of a task does not
fix the path of the next episode. ``Navigation2DVector`` steps many copies, each with its
own goal, as one array.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.task_env import TaskEnv, check_fields, vector_field
from metarl.envs.vector_task_env import TaskVectorEnv


class Navigation2D(TaskEnv):
    """Point-mass navigation to a goal; task ``{"goal": [x, y]}``."""

    def __init__(
        self, goal_range: float = 0.5, max_step: float = 0.1, start_range: float = 0.0
    ) -> None:
        if not goal_range > 0 or not max_step > 0 or not start_range >= 0:
            raise ValueError("goal_range and max_step must be positive, start_range >= 0")
        self.goal_range, self.max_step = float(goal_range), float(max_step)
        self.start_range = float(start_range)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-self.max_step, self.max_step, (2,), np.float32)
        self._position = np.zeros(2)
        self.set_task(self.draw_task(np.random.default_rng(0)))

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"goal": rng.uniform(-self.goal_range, self.goal_range, 2).tolist()}

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, ["goal"])
        return {"goal": vector_field(task, "goal", 2, -self.goal_range, self.goal_range)}

    def apply_task(self, task: dict[str, Any]) -> None:
        self._goal = np.asarray(task["goal"], dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._position = self.start_position(self.np_random)
        return self._position.astype(np.float32), {}

    def start_position(self, rng: np.random.Generator) -> np.ndarray:
        """Where an episode starts: the origin, or U[-start_range, start_range]^2."""
        if self.start_range == 0:
            return np.zeros(2)
        return rng.uniform(-self.start_range, self.start_range, 2)

    def step(self, action):
        move = np.clip(np.asarray(action, dtype=np.float64), -self.max_step, self.max_step)
        self._position = self._position + move
        offset = self._position - self._goal
        reward = -float(np.sqrt(offset[0] * offset[0] + offset[1] * offset[1]))
        reached = bool(abs(offset[0]) < 0.01 and abs(offset[1]) < 0.01)
        return self._position.astype(np.float32), reward, reached, False, {}


class Navigation2DVector(TaskVectorEnv):
    """``num_envs`` Navigation2D copies as arrays: the same episodes as the single ones."""

    single_env_class = Navigation2D

    def allocate(self) -> None:
        self._positions = np.zeros((self.num_envs, 2))

    def apply_tasks(self, tasks: list[dict[str, Any]]) -> None:
        self._goals = np.array([task["goal"] for task in tasks], dtype=np.float64)

    def reset_copies(self, mask: np.ndarray) -> np.ndarray:
        for i in np.flatnonzero(mask):  # each copy's start from its own generator
            self._positions[i] = self.proto.start_position(self.rngs[i])
        return self._positions.astype(np.float32)

    def step_copies(
        self, actions: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = self.proto.max_step
        move = np.clip(actions.astype(np.float64), -step, step)
        self._positions[mask] += move[mask]
        offset = self._positions - self._goals
        reward = -np.sqrt(offset[:, 0] * offset[:, 0] + offset[:, 1] * offset[:, 1])
        reached = (np.abs(offset[:, 0]) < 0.01) & (np.abs(offset[:, 1]) < 0.01)
        return self._positions.astype(np.float32), reward, reached
