"""ADML: adversarial meta-learning (Yin, Tang, Xie, Wang and Zhang, 2018) on top of MAML.

Each task's support and query sets get FGSM-perturbed copies, made against the current
initialisation. One inner update adapts on the adversarial support set and is scored on the
clean query set; another adapts on the clean support set and is scored on the adversarial
query set; the outer loss is the sum. ``fgsm`` is also what the evaluation attacks with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import grad

from metarl.core.adapt import Batching, map_tasks
from metarl.core.learners import MAML, BatchingChoice, as_task_batch
from metarl.core.params import Params, detach_params, forward_with

LossFn = Callable[[Tensor, Tensor], Tensor]


def fgsm(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    epsilon: float,
    loss_fn: LossFn,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Fast gradient sign attack: ``clip(x + epsilon * sign(d loss / d x))``, detached."""

    def loss_of_input(inputs: Tensor) -> Tensor:
        return loss_fn(forward_with(model, params, inputs), y)

    direction = torch.sign(grad(loss_of_input)(x))
    return (x + epsilon * direction).clamp(*bounds).detach()


def fgsm_tasks(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    epsilon: float,
    loss_fn: LossFn,
    batching: Batching,
    params_dim: int | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """``fgsm`` on every task of ``x [tasks, n, ...]``.

    ``params_dim=None``: one set of params shared by all tasks; ``0``: one set per task.
    """

    def one_task(p: Params, task_x: Tensor, task_y: Tensor) -> Tensor:
        return fgsm(model, p, task_x, task_y, epsilon, loss_fn, bounds)

    return map_tasks(one_task, [params, x, y], [params_dim, 0, 0], batching)


class ADML(MAML):
    """MAML trained on clean and FGSM-perturbed data (see the module docstring).

    ``epsilon`` is the attack's step in input units; perturbed inputs are clipped to
    ``bounds`` (images in [0, 1]).
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        epsilon: float = 0.2,
        bounds: tuple[float, float] = (0.0, 1.0),
        first_order: bool = False,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(model, inner_lr, inner_steps, first_order, batching, chunk_size)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.epsilon, self.bounds = float(epsilon), (float(bounds[0]), float(bounds[1]))

    def attack(self, params: Params, x: Tensor, y: Tensor, loss_fn: LossFn) -> Tensor:
        """FGSM copies of each task's ``x [tasks, n, ...]`` against the shared ``params``."""
        return fgsm_tasks(self.model, params, x, y, self.epsilon, loss_fn, self.batching,
                          bounds=self.bounds)  # fmt: skip

    def meta_loss(self, batch: Any, loss_fn: LossFn) -> Tensor:
        """Task mean of ``L(adapt(adv support), clean query) + L(adapt(clean), adv query)``."""
        b = as_task_batch(batch)
        theta = detach_params(self.params())
        adv_support = self.attack(theta, b.support_x, b.support_y, loss_fn)
        adv_query = self.attack(theta, b.query_x, b.query_y, loss_fn)
        loss = self.supervised_loss(loss_fn)
        from_adversarial = self.meta_losses(loss, (adv_support, b.support_y), loss,
                                            (b.query_x, b.query_y))  # fmt: skip
        from_clean = self.meta_losses(loss, (b.support_x, b.support_y), loss,
                                      (adv_query, b.query_y))  # fmt: skip
        return (from_adversarial + from_clean).mean()
