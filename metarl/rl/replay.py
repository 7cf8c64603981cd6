"""Per-task replay for off-policy meta-RL (PEARL): transitions kept by task, sampled by task.

``TaskReplay`` holds, for each of ``num_tasks`` tasks, a ring buffer of transitions
``(obs, action, reward, next_obs, done)`` as preallocated tensors ``[num_tasks, capacity,
...]``. ``add(task_ids, episodes)`` stores the valid steps of sampled ``Episodes`` (one row
of tasks per id); ``sample(task_ids, batch)`` draws ``batch`` transitions of each listed
task, uniformly from what it holds, as ``[len(task_ids), batch, ...]`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from metarl.rl.episodes import Episodes


class Transitions(NamedTuple):
    """A batch of transitions ``[..., dim]``; ``done`` is 1 where the environment ended the
    episode (not where the horizon cut it)."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    next_obs: Tensor
    done: Tensor

    def context(self) -> Tensor:
        """The transitions as one vector each: ``[obs, action, reward, next_obs]``."""
        return torch.cat((self.obs, self.actions, self.rewards[..., None], self.next_obs), -1)


def episode_transitions(episodes: Episodes) -> tuple[Transitions, Tensor]:
    """Every step of ``episodes`` as a transition ``[T, E * H, ...]`` with its mask: the
    next observation of an episode's last step is its final observation."""
    if episodes.final_observations is None or episodes.terminated is None:
        raise ValueError("episodes need final_observations and terminated (the sampler's)")
    obs, mask = episodes.observations, episodes.mask
    t, e, h = mask.shape
    last = mask.sum(-1).long().clamp_min(1) - 1  # [T, E]: each episode's last valid step
    next_obs = torch.cat((obs[:, :, 1:], torch.zeros_like(obs[:, :, :1])), dim=2)
    steps = torch.arange(h).expand(t, e, h)
    is_last = steps == last[..., None]
    next_obs = torch.where(is_last[..., None], episodes.final_observations[:, :, None], next_obs)
    done = (is_last & episodes.terminated[..., None]).float()
    actions = episodes.actions if episodes.actions.dim() > 3 else episodes.actions[..., None]
    flat = Transitions(
        obs.flatten(1, 2),
        actions.float().flatten(1, 2),
        episodes.rewards.flatten(1, 2),
        next_obs.flatten(1, 2),
        done.flatten(1, 2),
    )
    return flat, mask.flatten(1, 2)


class TaskReplay:
    """Ring buffers of transitions, one per task (see the module docstring)."""

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int) -> None:
        if num_tasks < 1 or capacity < 1:
            raise ValueError(f"num_tasks and capacity must be >= 1, got {num_tasks}, {capacity}")
        self.capacity = int(capacity)
        self._data = Transitions(
            torch.zeros(num_tasks, capacity, obs_dim),
            torch.zeros(num_tasks, capacity, act_dim),
            torch.zeros(num_tasks, capacity),
            torch.zeros(num_tasks, capacity, obs_dim),
            torch.zeros(num_tasks, capacity),
        )
        self.size = torch.zeros(num_tasks, dtype=torch.long)
        self._next = torch.zeros(num_tasks, dtype=torch.long)

    def add(self, task_ids: Sequence[int], episodes: Episodes) -> None:
        """Store the valid steps of ``episodes`` (row ``i`` belongs to task ``task_ids[i]``)."""
        if len(task_ids) != episodes.num_tasks:
            raise ValueError(f"{len(task_ids)} task ids for {episodes.num_tasks} rows of episodes")
        transitions, mask = episode_transitions(episodes)
        for row, task in enumerate(task_ids):
            keep = mask[row].bool()
            count = int(keep.sum())
            slots = (self._next[task] + torch.arange(count)) % self.capacity
            for store, values in zip(self._data, transitions):
                store[task, slots] = values[row][keep]
            self._next[task] = (self._next[task] + count) % self.capacity
            self.size[task] = min(self.capacity, int(self.size[task]) + count)

    def clear(self, task_ids: Sequence[int]) -> None:
        """Forget what the listed tasks hold."""
        for task in task_ids:
            self.size[task] = 0
            self._next[task] = 0

    def sample(
        self, task_ids: Sequence[int], batch: int, generator: torch.Generator | None = None
    ) -> Transitions:
        """``batch`` transitions of each listed task, drawn uniformly with replacement."""
        ids = torch.as_tensor(list(task_ids), dtype=torch.long)
        sizes = self.size[ids]
        if (sizes == 0).any():
            empty = ids[sizes == 0].tolist()
            raise ValueError(f"tasks {empty} hold no transitions yet")
        u = torch.rand(len(ids), batch, generator=generator)
        index = (u * sizes[:, None]).long()
        return Transitions(*(store[ids[:, None], index] for store in self._data))

    def state_dict(self) -> dict[str, Any]:
        """The buffers' contents (for checkpoints)."""
        return {"data": list(self._data), "size": self.size, "next": self._next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict``'s contents."""
        for store, saved in zip(self._data, state["data"]):
            store.copy_(saved)
        self.size.copy_(state["size"])
        self._next.copy_(state["next"])
