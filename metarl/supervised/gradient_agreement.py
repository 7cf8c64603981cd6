"""Gradient agreement (Eshratifar, Eigen and Pedram, 2018) on top of MAML.

The outer update weights each task's meta-gradient ``g_i`` by how much it agrees with the
batch: ``w_i = sum_j g_i . g_j / sum_k |sum_j g_k . g_j|``, and steps along
``sum_i w_i g_i`` instead of the mean. Tasks whose gradients point against the others are
down-weighted (or reversed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

from metarl.core.adapt import InnerLoss
from metarl.core.learners import MAML
from metarl.core.params import flat_gradient


def agreement_weights(task_gradients: Tensor) -> Tensor:
    """``w_i = sum_j g_i . g_j / sum_k |sum_j g_k . g_j|`` for gradients ``[tasks, P]``."""
    agreement = (task_gradients @ task_gradients.T).sum(1)
    return agreement / agreement.abs().sum().clamp_min(torch.finfo(agreement.dtype).tiny)


class GradientAgreementMAML(MAML):
    """MAML whose outer gradient is the agreement-weighted sum of the task meta-gradients.

    ``meta_losses`` returns the per-task query losses as values; the gradient of their mean
    is ``sum_i w_i g_i``, so ``meta_loss(...).backward()`` and any optimiser work as usual.
    Each task's meta-gradient comes from a backward pass over that task's graph alone (a
    one-task forward each), so an iteration costs about what a MAML iteration does.
    """

    def meta_losses(
        self, inner_loss: InnerLoss, support: Any, outer_loss: InnerLoss, query: Any
    ) -> Tensor:
        if not torch.is_grad_enabled():  # values only: no weights to compute
            return super().meta_losses(inner_loss, support, outer_loss, query)
        params = [p for p in self.parameters() if p.requires_grad]
        tasks = pytree.tree_leaves(support)[0].shape[0]
        losses, rows = [], []
        for i in range(tasks):
            one = [pytree.tree_map(lambda t, i=i: t[i : i + 1], d) for d in (support, query)]
            loss = super().meta_losses(inner_loss, one[0], outer_loss, one[1])[0]
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            losses.append(loss.detach())
            rows.append(flat_gradient(grads, params))
        task_gradients = torch.stack(rows)
        combined = agreement_weights(task_gradients) @ task_gradients  # sum_i w_i g_i
        surrogate = torch.cat([p.reshape(-1) for p in params]) @ combined
        # Value: the query losses. Gradient of their mean: sum_i w_i g_i.
        return torch.stack(losses) + (surrogate - surrogate.detach())
