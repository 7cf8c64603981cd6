"""Gradient agreement: the weights' formula and the combined meta-gradient by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from metarl.core import MAML, TaskBatch
from metarl.nn import MLP
from metarl.supervised.gradient_agreement import GradientAgreementMAML, agreement_weights


def test_weights_follow_the_formula():
    g = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    # sum_j g_i . g_j: [1 + 1 - 1, 1 + 2 - 1, -1 - 1 + 1] = [1, 2, -1]; normaliser 4
    torch.testing.assert_close(agreement_weights(g), torch.tensor([0.25, 0.5, -0.25]))


def test_meta_gradient_is_the_agreement_weighted_sum_of_task_gradients(float64):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    batch = TaskBatch(*(torch.randn(4, 6, d, generator=g) for d in (3, 1, 3, 1)))
    learner = GradientAgreementMAML(MLP(3, 1, hidden=(8,)), inner_lr=0.1, inner_steps=2)
    reference = MAML(learner.model, inner_lr=0.1, inner_steps=2)  # same weights
    params = list(learner.parameters())
    task_grads = []
    for i in range(4):
        task = TaskBatch(*(t[i : i + 1] for t in batch))
        grads = torch.autograd.grad(reference.meta_loss(task, F.mse_loss), params)
        task_grads.append(torch.cat([x.reshape(-1) for x in grads]))
    G = torch.stack(task_grads)
    expected = agreement_weights(G) @ G
    loss = learner.meta_loss(batch, F.mse_loss)
    ours = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params)])
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(loss, reference.meta_loss(batch, F.mse_loss))  # value: mean loss
