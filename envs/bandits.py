"""Multi-armed bandit task distributions.

Bernoulli bandits follow Duan et al., "RL^2" (2016) and Finn et al., "MAML" (2017): each
task is a vector of k arm probabilities drawn from U[0, 1]; pulling arm a pays 1 with
probability p_a. Gaussian bandits draw k arm means from N(0, 1) and pay N(mu_a, 1).

An episode is ``pulls`` pulls. With ``pulls=1`` (the MAML setting) every episode is one
decision from a constant observation; with ``pulls=n`` (the RL^2 setting) the observation
carries the previous action (one-hot) and reward, so a recurrent policy can adapt within
the episode. ``BernoulliBanditVector`` and ``GaussianBanditVector`` play many copies, each
with its own arms, as arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.task_env import TaskEnv, check_fields, vector_field
from metarl.envs.vector_task_env import TaskVectorEnv


class _Bandit(TaskEnv):
    """Shared bandit mechanics; subclasses define the task field and the pay-out."""

    field: str

    def __init__(self, arms: int = 5, pulls: int = 1) -> None:
        if arms < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got {arms}")
        if pulls < 1:
            raise ValueError(f"an episode needs at least 1 pull, got {pulls}")
        self.arms, self.pulls = int(arms), int(pulls)
        self.action_space = gym.spaces.Discrete(self.arms)
        # [one-hot previous arm (k), previous reward]; all zeros before the first pull.
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.arms + 1,), np.float32)
        self._obs = np.zeros(self.arms + 1, dtype=np.float32)
        self._t = 0
        self.set_task(self.draw_task(np.random.default_rng(0)))

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, [self.field])
        return {self.field: self._check_values(task)}

    def apply_task(self, task: dict[str, Any]) -> None:
        self._values = np.asarray(task[self.field], dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._obs[:] = 0.0
        return self._obs.copy(), {}

    def step(self, action):
        arm = int(action)
        if not 0 <= arm < self.arms:
            raise ValueError(f"action must be an arm in [0, {self.arms - 1}], got {action!r}")
        reward = self._pay(arm)
        self._t += 1
        self._obs[:] = 0.0
        self._obs[arm] = 1.0
        self._obs[-1] = reward
        return self._obs.copy(), reward, self._t >= self.pulls, False, {}

    def _check_values(self, task: Mapping[str, Any]) -> list[float]:  # pragma: no cover
        raise NotImplementedError

    def _pay(self, arm: int) -> float:  # pragma: no cover
        raise NotImplementedError


class BernoulliBandit(_Bandit):
    """k-armed Bernoulli bandit; task ``{"probs": [p_1, ..., p_k]}``, p ~ U[0, 1]."""

    field = "probs"

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"probs": rng.uniform(0.0, 1.0, self.arms).tolist()}

    def _check_values(self, task: Mapping[str, Any]) -> list[float]:
        return vector_field(task, "probs", self.arms, 0.0, 1.0)

    def _pay(self, arm: int) -> float:
        return float(self.np_random.random() < self._values[arm])


class GaussianBandit(_Bandit):
    """k-armed Gaussian bandit; task ``{"means": [mu_1, ..., mu_k]}``, mu ~ N(0, 1).

    Pulling arm a pays N(mu_a, 1).
    """

    field = "means"

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"means": rng.standard_normal(self.arms).tolist()}

    def _check_values(self, task: Mapping[str, Any]) -> list[float]:
        return vector_field(task, "means", self.arms)

    def _pay(self, arm: int) -> float:
        return float(self._values[arm] + self.np_random.standard_normal())


class _BanditVector(TaskVectorEnv):
    """Many copies of one bandit class as arrays; copy ``i`` draws from its own generator, so
    its pulls pay exactly what a single bandit reset with the same seed pays."""

    def allocate(self) -> None:
        self._obs = np.zeros((self.num_envs, self.proto.arms + 1), dtype=np.float32)
        self._pulled = np.zeros(self.num_envs, dtype=np.int64)

    def apply_tasks(self, tasks: list[dict[str, Any]]) -> None:
        field = self.single_env_class.field
        self._values = np.array([task[field] for task in tasks], dtype=np.float64)

    def reset_copies(self, mask: np.ndarray) -> np.ndarray:
        self._obs[mask] = 0.0
        self._pulled[mask] = 0
        return self._obs.copy()

    def step_copies(
        self, actions: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arms = np.asarray(actions).astype(np.int64).reshape(self.num_envs)
        bad = mask & ((arms < 0) | (arms >= self.proto.arms))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"copy {i}: action must be an arm in [0, {self.proto.arms - 1}], got {arms[i]}"
            )
        reward = np.zeros(self.num_envs)
        rows = np.flatnonzero(mask)
        reward[rows] = self._pay(rows, arms[rows])
        self._pulled[rows] += 1
        self._obs[rows] = 0.0
        self._obs[rows, arms[rows]] = 1.0
        self._obs[rows, -1] = reward[rows]
        return self._obs.copy(), reward, self._pulled >= self.proto.pulls

    def _pay(self, rows: np.ndarray, arms: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class BernoulliBanditVector(_BanditVector):
    """``num_envs`` Bernoulli bandits, each with its own arm probabilities."""

    single_env_class = BernoulliBandit

    def _pay(self, rows: np.ndarray, arms: np.ndarray) -> np.ndarray:
        draws = np.array([self.rngs[i].random() for i in rows])
        return (draws < self._values[rows, arms]).astype(np.float64)


class GaussianBanditVector(_BanditVector):
    """``num_envs`` Gaussian bandits, each with its own arm means."""

    single_env_class = GaussianBandit

    def _pay(self, rows: np.ndarray, arms: np.ndarray) -> np.ndarray:
        noise = np.array([self.rngs[i].standard_normal() for i in rows])
        return self._values[rows, arms] + noise
