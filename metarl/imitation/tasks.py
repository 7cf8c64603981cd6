"""Imitation task distributions: the tasks of a demonstration dataset, each with its demos."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch

from metarl.imitation.demos import Demonstrations, load_demos
from metarl.imitation.inverse_dynamics import Transitions, transitions
from metarl.imitation.losses import DemoData
from metarl.rl.sampler import action_box_affine


class DemoTasks:
    """Tasks of ``env_id`` with expert demonstrations, for meta-imitation learning.

    ``dataset`` is a folder written by ``save_demos`` (or ``Demonstrations`` in memory);
    ``env_kwargs`` are the ones it was recorded with (``env_kwargs`` of its ``info``).
    The actions handed out are the expert's labels (``expert_actions``) in the policy's
    scale: with ``rescale_actions`` (as ``MultiTaskSampler``, which maps a policy's [-1, 1]
    onto the action box) the stored environment actions are mapped back, so a policy cloned
    here acts the same when the sampler rolls it out. ``seed`` seeds the choice of tasks
    and demonstrations.

        demos = DemoTasks("metarl/Navigation2D-v0", dataset="demos/nav")
        support, query = demos.sample(tasks=20, demos_per_task=(1, 1))
    """

    def __init__(
        self,
        env_id: str,
        dataset: str | os.PathLike | Demonstrations,
        rescale_actions: bool = True,
        seed: int = 0,
    ) -> None:
        demos = dataset if isinstance(dataset, Demonstrations) else load_demos(dataset)
        if demos.env_id != env_id:
            raise ValueError(f"the dataset demonstrates {demos.env_id}, not {env_id}")
        self.env_kwargs = dict(demos.info.get("env_kwargs") or {})
        env = gym.make(env_id, disable_env_checker=True, **self.env_kwargs)
        try:
            center, half = action_box_affine(env.action_space, rescale_actions)
        finally:
            env.close()
        actions = demos.expert_actions  # the labels
        if half is not None:
            actions = (actions - torch.as_tensor(center)) / torch.as_tensor(half)
            actions = actions * demos.mask.unsqueeze(-1)
        self.env_id = env_id
        self._center, self._half = center, half
        self.demonstrations = demos
        self.tasks = demos.tasks
        self._data = DemoData(demos.observations, actions, demos.mask)
        self._rng = np.random.default_rng(seed)

    def state(self) -> dict:
        """The random stream's state, for checkpoints."""
        return self._rng.bit_generator.state

    def load_state(self, state: dict) -> None:
        """Restore the random stream saved by ``state`` (resuming a run)."""
        self._rng.bit_generator.state = state

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def transitions(self) -> Transitions:
        """Every demonstrated transition ``[tasks, demos, horizon, ...]`` with the action
        *taken* (in the policy's scale), for an inverse-dynamics model."""
        return transitions(self.demonstrations, self._center, self._half)

    def sample(
        self,
        tasks: int,
        demos_per_task: tuple[int, int] = (1, 1),
        task_ids: np.ndarray | None = None,
    ) -> tuple[DemoData, DemoData]:
        """``tasks`` distinct tasks (or the given ``task_ids``), each with ``k_support`` and
        ``k_query`` distinct demonstrations: ``(support, query)``, leading task dimension.
        The chosen ids are in ``last_task_ids``, the support demonstrations' indices
        ``[tasks, k_support]`` in ``last_support_ids``."""
        k_support, k_query = demos_per_task
        available = self.demonstrations.demos_per_task
        if k_support < 1 or k_query < 0 or k_support + k_query > available:
            raise ValueError(
                f"demos_per_task={demos_per_task}: need k_support >= 1, k_query >= 0 and at "
                f"most {available} demonstrations per task in all"
            )
        if task_ids is None:
            if not 1 <= tasks <= self.num_tasks:
                raise ValueError(f"tasks must be in [1, {self.num_tasks}], got {tasks}")
            task_ids = self._rng.choice(self.num_tasks, tasks, replace=False)
        task_ids = np.asarray(task_ids)
        order = np.stack([self._rng.permutation(available) for _ in task_ids])
        rows = torch.as_tensor(task_ids).unsqueeze(1)
        support_cols = torch.as_tensor(order[:, :k_support])
        query_cols = torch.as_tensor(order[:, k_support : k_support + k_query])
        self.last_task_ids = task_ids
        self.last_support_ids = support_cols
        return (
            DemoData(*(t[rows, support_cols] for t in self._data)),
            DemoData(*(t[rows, query_cols] for t in self._data)),
        )
