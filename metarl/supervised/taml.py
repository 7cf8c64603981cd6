"""TAML: task-agnostic meta-learning (Jamal and Qi, CVPR 2019) on top of MAML.

Two regularisers of the MAML objective keep the initialisation from favouring some tasks:

- ``variant="entropy"`` (classification): make the initial model maximally uncertain on
  every task and let adaptation reduce the uncertainty, adding
  ``weight * mean_i[-H(f_theta, x_i) + H(f_theta_i, x_i)]`` (``H``: mean prediction entropy
  on the task's query inputs; no labels are used);
- ``variant="theil" | "gini" | "variance"`` (any loss): make the initial model's losses on
  the tasks' support sets equal, adding ``weight * inequality(losses)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from metarl.core.adapt import map_tasks
from metarl.core.learners import MAML, BatchingChoice, as_task_batch
from metarl.core.params import Params, forward_with

VARIANTS = ("entropy", "theil", "gini", "variance")


def theil_index(x: Tensor) -> Tensor:
    """``mean(x / mu * log(x / mu))`` for positive ``x``: 0 when all are equal."""
    r = x / x.mean()
    return (r * torch.log(r)).mean()


def gini_coefficient(x: Tensor) -> Tensor:
    """``sum_ij |x_i - x_j| / (2 n^2 mu)``: 0 when all are equal."""
    return (x[:, None] - x[None, :]).abs().sum() / (2 * x.numel() ** 2 * x.mean())


INEQUALITY: dict[str, Callable[[Tensor], Tensor]] = {
    "theil": theil_index,
    "gini": gini_coefficient,
    "variance": lambda x: x.var(unbiased=False),
}


class TAML(MAML):
    """MAML plus a task-agnostic regulariser (see the module docstring); ``weight`` is lambda."""

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        variant: str = "entropy",
        weight: float = 0.1,
        first_order: bool = False,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(model, inner_lr, inner_steps, first_order, batching, chunk_size)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant, self.weight = variant, float(weight)

    def meta_loss(self, batch: Any, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """MAML's mean query loss after adaptation plus ``weight`` times the regulariser."""
        b = as_task_batch(batch)
        loss = self.supervised_loss(loss_fn)
        theta = self.params()
        adapted = self.adapt_batch(loss, (b.support_x, b.support_y))
        query_loss = self.task_losses(loss, adapted, (b.query_x, b.query_y)).mean()
        if self.variant == "entropy":
            before = self._per_task(self._entropy, theta, None, b.query_x)
            after = self._per_task(self._entropy, adapted, 0, b.query_x)
            regulariser = (after - before).mean()
        else:
            initial = self._per_task(loss, theta, None, (b.support_x, b.support_y))
            regulariser = INEQUALITY[self.variant](initial)
        return query_loss + self.weight * regulariser

    def _entropy(self, params: Params, x: Tensor) -> Tensor:
        log_p = torch.log_softmax(forward_with(self.model, params, x), dim=-1)
        return -(log_p.exp() * log_p).sum(-1).mean()

    def _per_task(self, fn: Callable, params: Params, params_dim: int | None, data: Any) -> Tensor:
        return map_tasks(fn, [params, data], [params_dim, 0], self.batching, self.chunk_size)
