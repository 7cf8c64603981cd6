"""Sinusoid regression tasks (Finn, Abbeel and Levine, ICML 2017, section 5.1).

A task is ``y = amplitude * sin(x - phase)`` with amplitude ~ U[0.1, 5.0] and
phase ~ U[0, pi]; inputs are drawn uniformly from [-5, 5].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from metarl.core.learners import TaskBatch


@dataclass(frozen=True)
class SinusoidTasks:
    """The sinusoid task distribution; every draw is reproducible from a ``torch.Generator``."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            low, high = getattr(self, name)
            if not low < high:
                raise ValueError(f"{name} must be a (low, high) range with low < high")

    def sample_tasks(self, num_tasks: int, generator: torch.Generator | None = None) -> Tensor:
        """Task parameters ``[num_tasks, 2]``: columns amplitude, phase."""
        amp = _uniform(num_tasks, self.amplitude, generator)
        phase = _uniform(num_tasks, self.phase, generator)
        return torch.stack([amp, phase], dim=1)

    def sample_points(
        self, tasks: Tensor, num_points: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Inputs and targets for each task: ``x, y`` of shape ``[tasks, num_points, 1]``."""
        if num_points < 1:
            raise ValueError(f"num_points must be >= 1, got {num_points}")
        x = _uniform(tasks.shape[0] * num_points, self.x_range, generator)
        x = x.view(tasks.shape[0], num_points, 1)
        return x, self.evaluate(tasks, x)

    @staticmethod
    def evaluate(tasks: Tensor, x: Tensor) -> Tensor:
        """The true function of each task at ``x [tasks, points, 1]``."""
        amp, phase = tasks[:, 0].view(-1, 1, 1), tasks[:, 1].view(-1, 1, 1)
        return amp * torch.sin(x - phase)

    def sample(
        self,
        num_tasks: int,
        shots: int,
        queries: int,
        generator: torch.Generator | None = None,
    ) -> tuple[TaskBatch, Tensor]:
        """A batch of tasks with ``shots`` support and ``queries`` query points each.

        Returns the batch and the task parameters ``[num_tasks, 2]``.
        """
        tasks = self.sample_tasks(num_tasks, generator)
        support_x, support_y = self.sample_points(tasks, shots, generator)
        query_x, query_y = self.sample_points(tasks, queries, generator)
        return TaskBatch(support_x, support_y, query_x, query_y), tasks


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator | None) -> Tensor:
    low, high = bounds
    return torch.rand(n, generator=generator) * (high - low) + low
