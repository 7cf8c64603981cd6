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
    Computing the weights costs one extra backward pass per task.
    """

    def meta_losses(
        self, inner_loss: InnerLoss, support: Any, outer_loss: InnerLoss, query: Any
    ) -> Tensor:
        losses = super().meta_losses(inner_loss, support, outer_loss, query)
        params = [p for p in self.parameters() if p.requires_grad]
        rows = []
        for loss in losses:
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            rows.append(flat_gradient(grads, params))
        weights = agreement_weights(torch.stack(rows)).detach()
        weighted = weights * losses * len(losses)  # its mean has gradient sum_i w_i g_i
        return losses.detach() + (weighted - weighted.detach())
