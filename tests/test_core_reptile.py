"""Reptile's outer update against its formula, computed by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import tanh_mlp
from metarl.core import Reptile, TaskBatch, named_params, reptile_pseudo_gradient
from metarl.core.params import forward_with


def _hand_adapted(model, params, x, y, lr, steps):
    """k plain SGD steps on one task with torch.autograd, no graph kept."""
    p = {n: t.detach().clone().requires_grad_() for n, t in params.items()}
    for _ in range(steps):
        loss = F.mse_loss(forward_with(model, p, x), y)
        grads = torch.autograd.grad(loss, list(p.values()))
        p = {n: (t - lr * g).detach().requires_grad_() for (n, t), g in zip(p.items(), grads)}
    return {n: t.detach() for n, t in p.items()}


def _sgd_meta_step(learner, batch, epsilon):
    """One outer SGD step of size ``epsilon`` on the mean meta-loss; returns that loss."""
    loss = learner.meta_losses(
        learner.supervised_loss(F.mse_loss),
        (batch.support_x, batch.support_y),
        learner.supervised_loss(F.mse_loss),
        (batch.query_x, batch.query_y),
    ).mean()
    opt = torch.optim.SGD(learner.parameters(), lr=epsilon)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def test_reptile_sgd_step_is_the_interpolation_formula(float64):
    model = tanh_mlp()
    lr, steps, epsilon, tasks = 0.05, 4, 0.3, 3
    learner = Reptile(model, inner_lr=lr, inner_steps=steps)
    g = torch.Generator().manual_seed(5)
    batch = TaskBatch(*(torch.randn(tasks, 6, d, generator=g) for d in (3, 2, 3, 2)))
    theta = {n: p.detach().clone() for n, p in named_params(model).items()}
    phis = [
        _hand_adapted(model, theta, batch.support_x[i], batch.support_y[i], lr, steps)
        for i in range(tasks)
    ]
    mean_phi = {n: sum(phi[n] for phi in phis) / tasks for n in theta}
    expected = {n: theta[n] + epsilon * (mean_phi[n] - theta[n]) for n in theta}

    loss = _sgd_meta_step(learner, batch, epsilon)
    for n, p in named_params(model).items():
        assert not torch.allclose(p, theta[n])
        torch.testing.assert_close(p.detach(), expected[n], rtol=1e-10, atol=1e-12)

    # The value reported is the query loss after adaptation.
    query_losses = [
        F.mse_loss(forward_with(model, phis[i], batch.query_x[i]), batch.query_y[i])
        for i in range(tasks)
    ]
    torch.testing.assert_close(loss.detach(), torch.stack(query_losses).mean())


def test_sgd_on_the_pseudo_gradient_is_reptiles_interpolation(float64):
    theta = {
        "w": torch.nn.Parameter(torch.tensor([1.0, 2.0])),
        "b": torch.nn.Parameter(torch.tensor([0.0])),
    }
    adapted = {"w": torch.tensor([[3.0, 2.0], [1.0, 4.0]]), "b": torch.tensor([[1.0], [3.0]])}
    for name, g in reptile_pseudo_gradient(theta, adapted).items():
        theta[name].grad = g
    torch.optim.SGD(theta.values(), lr=0.5).step()
    torch.testing.assert_close(theta["w"], torch.tensor([1.5, 2.5]))
    torch.testing.assert_close(theta["b"], torch.tensor([1.0]))


def _torch_adam_adapted(model, params, x, y, lr, batches):
    """torch.optim.Adam (betas 0, 0.999), fresh state, one step per mini-batch index set."""
    p = {n: t.detach().clone().requires_grad_() for n, t in params.items()}
    opt = torch.optim.Adam(list(p.values()), lr=lr, betas=(0.0, 0.999), eps=1e-8)
    for idx in batches:
        opt.zero_grad()
        F.mse_loss(forward_with(model, p, x[idx]), y[idx]).backward()
        opt.step()
    return {n: t.detach() for n, t in p.items()}


def test_reptile_adam_on_minibatches_matches_torch_adam(float64):
    model = tanh_mlp()
    lr, steps, inner_batch, epsilon, tasks, n = 0.01, 4, 2, 0.5, 3, 6
    order_stream = torch.Generator().manual_seed(11)
    learner = Reptile(model, inner_lr=lr, inner_steps=steps, inner_rule="adam",
                      inner_batch=inner_batch, generator=order_stream)  # fmt: skip
    g = torch.Generator().manual_seed(7)
    batch = TaskBatch(*(torch.randn(tasks, n, d, generator=g) for d in (3, 2, 3, 2)))
    theta = {k: p.detach().clone() for k, p in named_params(model).items()}

    order = torch.randperm(n, generator=torch.Generator().manual_seed(11))
    # One shuffled order shared by the tasks, consecutive mini-batches, cycled past n.
    batches = [order[[(s * inner_batch + j) % n for j in range(inner_batch)]] for s in range(steps)]
    phis = [
        _torch_adam_adapted(model, theta, batch.support_x[i], batch.support_y[i], lr, batches)
        for i in range(tasks)
    ]
    expected = {k: theta[k] + epsilon * (sum(phi[k] for phi in phis) / tasks - theta[k])
                for k in theta}  # fmt: skip

    torch.manual_seed(0)  # the global stream must not matter: the learner has its own
    _sgd_meta_step(learner, batch, epsilon)
    for k, p in named_params(model).items():
        torch.testing.assert_close(p.detach(), expected[k], rtol=1e-9, atol=1e-12)


def test_adam_rule_first_step_moves_each_weight_by_lr(float64):
    model = tanh_mlp()
    learner = Reptile(model, inner_lr=1e-3, inner_steps=1, inner_rule="adam")
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    theta = {k: p.detach().clone() for k, p in named_params(model).items()}
    adapted = learner.adapt(learner.supervised_loss(F.mse_loss), (x, y))
    for k, p in adapted.items():
        moved = (theta[k] - p.detach()).abs()
        torch.testing.assert_close(moved, torch.full_like(moved, 1e-3), rtol=1e-2, atol=0)


def test_reptile_rejects_bad_options():
    with pytest.raises(ValueError, match="inner_rule"):
        Reptile(tanh_mlp(), inner_rule="rmsprop")
    with pytest.raises(ValueError, match="inner_batch"):
        Reptile(tanh_mlp(), inner_batch=0)
