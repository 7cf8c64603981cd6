"""Padded batches of episodes: ``[tasks, episodes, time, ...]`` tensors with a mask."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class Episodes(NamedTuple):
    """Episodes of many tasks, padded to one horizon.

    ``mask[t, e, h]`` is 1 where step ``h`` of episode ``e`` of task ``t`` happened and 0 after
    the episode ended (early termination, as Ant's), so padded steps never count. The sampler
    also fills ``final_observations`` (the observation each episode ended in, which no step
    of ``observations`` holds) and ``terminated``. A NamedTuple of tensors is a pytree:
    ``vmap`` maps over its leading task dimension.
    """

    observations: Tensor  # [T, E, H, obs_dim]
    actions: Tensor  # [T, E, H, act_dim] (continuous) or [T, E, H] (discrete)
    rewards: Tensor  # [T, E, H]
    mask: Tensor  # [T, E, H]
    final_observations: Tensor | None = None  # [T, E, obs_dim]: after each episode's last step
    terminated: Tensor | None = None  # [T, E] bool: ended by the environment, not the horizon

    @property
    def num_tasks(self) -> int:
        """Number of tasks (the leading dimension)."""
        return self.rewards.shape[0]

    def returns(self) -> Tensor:
        """Undiscounted return of each episode ``[T, E]``."""
        return (self.rewards * self.mask).sum(-1)

    def mean_return(self) -> Tensor:
        """Mean undiscounted episode return of each task ``[T]``."""
        return self.returns().mean(-1)

    def steps(self) -> int:
        """Number of environment steps actually taken (masked steps excluded)."""
        return int(self.mask.sum().item())


class PolicyGradientData(NamedTuple):
    """What a policy-gradient loss needs for one or many tasks (a pytree for ``vmap``)."""

    observations: Tensor
    actions: Tensor
    advantages: Tensor
    mask: Tensor
