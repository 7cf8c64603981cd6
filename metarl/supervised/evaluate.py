"""Evaluation of a meta-learner on held-out supervised tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from metarl.core.learners import MetaLearner, as_task_batch
from metarl.core.params import detach_params
from metarl.supervised.adml import fgsm_tasks


def losses_after_steps(
    learner: MetaLearner,
    batch: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: Sequence[int],
) -> Tensor:
    """Query loss of every task after ``s`` inner steps on its support set, for each ``s``.

    Returns a tensor ``[len(steps), tasks]``. Adaptation uses the learner's own rule (learned
    step sizes included) with no meta-gradient graph.
    """
    b = as_task_batch(batch)
    loss = learner.supervised_loss(loss_fn)
    params = detach_params(learner.params())
    rows = []
    for s in steps:
        adapted = learner.adapt_batch(
            loss, (b.support_x, b.support_y), steps=s, params=params, first_order=True
        )
        adapted = {name: p.detach() for name, p in adapted.items()}
        rows.append(learner.task_losses(loss, adapted, (b.query_x, b.query_y)).detach())
    return torch.stack(rows)


def mean_and_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% confidence interval."""
    values = values.double().flatten()
    if values.numel() < 2:
        raise ValueError("need at least two values for a confidence interval")
    return values.mean().item(), 1.96 * values.std().item() / values.numel() ** 0.5


def accuracies_after_steps(
    learner: MetaLearner, batch: Any, steps: int, attack_epsilon: float | None = None
) -> Tensor:
    """Query accuracy of every task ``[tasks]`` after ``steps`` inner steps on its support set.

    Cross-entropy adaptation with the learner's own rule; no meta-gradient graph. With
    ``attack_epsilon``, each task's query inputs are FGSM-perturbed (clipped to [0, 1])
    against that task's adapted parameters before they are classified.
    """
    b = as_task_batch(batch)
    loss = learner.supervised_loss(torch.nn.functional.cross_entropy)
    adapted = learner.adapt_batch(
        loss, (b.support_x, b.support_y), steps=steps,
        params=detach_params(learner.params()), first_order=True,
    )  # fmt: skip
    adapted = {name: p.detach() for name, p in adapted.items()}
    query_x = b.query_x
    if attack_epsilon is not None:
        ce = torch.nn.functional.cross_entropy
        query_x = fgsm_tasks(
            learner.model,
            adapted,
            b.query_x,
            b.query_y,
            attack_epsilon,
            ce,
            learner.batching,
            params_dim=0,
        )

    def correct(params: Any, data: tuple[Tensor, Tensor]) -> Tensor:
        x, y = data
        return (learner(x, params=params).argmax(-1) == y).float().mean()

    with torch.no_grad():
        return learner.task_losses(correct, adapted, (query_x, b.query_y))
