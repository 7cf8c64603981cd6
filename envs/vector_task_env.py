"""Task distributions stepped as arrays: all copies, each with its own task, in one operation.

A ``TaskVectorEnv`` is a Gymnasium ``VectorEnv`` of ``num_envs`` copies of one ``TaskEnv``
class. A distribution registers it as its ``vector_entry_point``, so both
``gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")`` and
``metarl.rl.MultiTaskSampler`` use it. The contract:

- ``set_tasks(tasks)`` gives copy ``i`` the task ``tasks[i]``, validated by the single
  environment's own ``validate_task``, all or nothing; ``tasks`` reads them back.
- ``reset(seed=...)`` takes one seed per copy (a list) or one int (copy ``i`` gets
  ``seed + i``, as Gymnasium's vector environments do); copy ``i`` then draws exactly the
  random numbers a single environment reset with that seed would, so the episodes equal the
  single environments' ones. ``options={"reset_mask": mask}`` resets only the copies marked.
- ``step(actions)`` advances every running copy. There is no automatic reset
  (``autoreset_mode`` is ``DISABLED``): a copy that terminated or reached
  ``max_episode_steps`` stays where it ended (reward 0, flagged done) until it is reset.

A subclass names its ``single_env_class`` and writes ``allocate`` (create the copies' arrays,
once) and three array functions: ``apply_tasks`` (make the copies use validated tasks),
``reset_copies`` (reset the copies in a mask, return every copy's observation) and
``step_copies`` (advance the copies in a mask, return every copy's observation, reward and
termination). A subclass whose stepping runs on threads of its own sets
``steps_on_threads`` (the sampler then keeps torch off those cores).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from metarl.envs.task_env import TaskEnv


class TaskVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of ``single_env_class`` (built with ``kwargs``) stepped as arrays."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.DISABLED}
    single_env_class: type[TaskEnv]
    steps_on_threads: bool = False  # whether step_copies runs on threads of its own

    def __init__(self, num_envs: int, max_episode_steps: int | None = None, **kwargs: Any):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.env_kwargs = dict(kwargs)  # each copy's constructor arguments
        self.proto = self.single_env_class(**kwargs)  # validates tasks, draws them, has spaces
        self.single_observation_space = self.proto.observation_space
        self.single_action_space = self.proto.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.rngs = [np.random.default_rng() for _ in range(self.num_envs)]
        self.done = np.ones(self.num_envs, dtype=bool)  # reset before the first step
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._tasks = [self.proto.task for _ in range(self.num_envs)]
        self.allocate()
        self.apply_tasks(self._tasks)

    # -- tasks -------------------------------------------------------------------------
    def sample_tasks(
        self, num_tasks: int, rng: np.random.Generator | None = None
    ) -> list[dict[str, Any]]:
        """Draw tasks from the distribution (the single environment's ``sample_tasks``)."""
        return self.proto.sample_tasks(num_tasks, rng)

    def set_tasks(self, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Give copy ``i`` the task ``tasks[i]``; a rejected task changes none of them."""
        tasks = list(tasks)
        if len(tasks) != self.num_envs:
            raise ValueError(f"got {len(tasks)} tasks for {self.num_envs} copies")
        clean = []
        for i, task in enumerate(tasks):
            if not isinstance(task, Mapping):
                raise ValueError(f"task {i} is a {type(task).__name__}, not a mapping; "
                                 "no task was set")  # fmt: skip
            try:
                clean.append(self.proto.validate_task(task))
            except ValueError as error:
                raise ValueError(f"task {i} was rejected: {error}; no task was changed") from error
        self.apply_tasks(clean)
        self._tasks = clean

    @property
    def tasks(self) -> list[dict[str, Any]]:
        """Every copy's task (copies: changing them changes nothing)."""
        return copy.deepcopy(self._tasks)

    # -- the vector API ----------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the copies (all, or those in ``options["reset_mask"]``); see the module doc."""
        mask = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], dtype=bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        if seed is not None:
            one = isinstance(seed, (int, np.integer))
            seeds = [int(seed) + i for i in range(self.num_envs)] if one else seed
            seeds = list(seeds)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} copies")
            for i in np.flatnonzero(mask):
                self.rngs[i] = np.random.default_rng(int(seeds[i]))
        self.done[mask] = False
        self.elapsed[mask] = 0
        return self.reset_copies(mask), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every running copy by one step; finished copies stay as they ended."""
        running = ~self.done
        obs, reward, terminated = self.step_copies(np.asarray(actions), running)
        self.elapsed[running] += 1
        terminated = terminated & running
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            truncated = running & ~terminated & (self.elapsed >= self.max_episode_steps)
        reward = np.where(running, reward, 0.0)
        self.done |= terminated | truncated
        return obs, reward, terminated, truncated, {}

    def close_extras(self, **kwargs: Any) -> None:
        self.proto.close()

    # -- what a subclass writes --------------------------------------------------------
    def allocate(self) -> None:  # pragma: no cover
        """Create the copies' state (called once, after the spaces and before any task)."""
        raise NotImplementedError

    def apply_tasks(self, tasks: list[dict[str, Any]]) -> None:  # pragma: no cover
        """Make the copies use these validated tasks."""
        raise NotImplementedError

    def reset_copies(self, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Reset the copies in ``mask``; return every copy's observation."""
        raise NotImplementedError

    def step_copies(
        self, actions: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
        """Advance the copies in ``mask``; return observations, rewards, terminations (all)."""
        raise NotImplementedError
