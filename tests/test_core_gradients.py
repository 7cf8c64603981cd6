"""The core's meta-gradients against finite differences, closed forms and an autograd reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.functional import hvp

from helpers import autograd_maml_loss, tanh_mlp
from metarl.core import MAML, MetaSGD, TaskBatch, adapt, named_params
from metarl.core.params import forward_with


def _regression_batch(tasks: int, seed: int = 1, n: int = 6) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(*(torch.randn(tasks, n, d, generator=g) for d in (3, 2, 3, 2)))


def _flat_grad(learner: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(loss, list(learner.model.parameters()))
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("steps", [1, 3])
def test_maml_meta_gradient_matches_finite_differences(float64, steps):
    learner = MAML(tanh_mlp(), inner_lr=0.1, inner_steps=steps)
    batch = _regression_batch(tasks=2)
    analytic = _flat_grad(learner, learner.meta_loss(batch, F.mse_loss))

    flat = torch.nn.utils.parameters_to_vector(learner.model.parameters()).detach()
    eps = 1e-6
    numeric = torch.empty_like(flat)
    for i in range(flat.numel()):
        values = []
        for sign in (1, -1):
            shifted = flat.clone()
            shifted[i] += sign * eps
            torch.nn.utils.vector_to_parameters(shifted, learner.model.parameters())
            with torch.no_grad():
                values.append(learner.meta_loss(batch, F.mse_loss).item())
        numeric[i] = (values[0] - values[1]) / (2 * eps)
    torch.nn.utils.vector_to_parameters(flat, learner.model.parameters())

    rel = (analytic - numeric).norm() / numeric.norm()
    assert rel < 1e-4, f"relative error {rel:.2e}"
    # Not a trivially small gradient: the check has something to compare.
    assert numeric.norm() > 1e-2


def test_maml_on_linear_regression_matches_closed_form(float64):
    """y = X w; the loss mean((Xw - y)^2) has gradient A w - b, A = 2/n X^T X, b = 2/n X^T y."""
    torch.manual_seed(0)
    model = nn.Linear(4, 1, bias=False)
    alpha = 0.05
    learner = MAML(model, inner_lr=alpha, inner_steps=1)
    xs, ys, xq, yq = torch.randn(10, 4), torch.randn(10, 1), torch.randn(7, 4), torch.randn(7, 1)
    batch = TaskBatch(xs[None], ys[None], xq[None], yq[None])
    meta_grad = torch.autograd.grad(learner.meta_loss(batch, F.mse_loss), model.weight)[0]

    w = model.weight.detach().T  # [4, 1]
    a_s, b_s = 2 / 10 * xs.T @ xs, 2 / 10 * xs.T @ ys
    a_q, b_q = 2 / 7 * xq.T @ xq, 2 / 7 * xq.T @ yq
    w_adapted = w - alpha * (a_s @ w - b_s)
    expected = (torch.eye(4) - alpha * a_s) @ (a_q @ w_adapted - b_q)
    torch.testing.assert_close(meta_grad, expected.T, rtol=1e-10, atol=1e-12)


def test_fomaml_differs_exactly_by_the_second_order_term(float64):
    """MAML grad = (I - a H_s(theta)) g_q(theta'); FOMAML = g_q(theta'); difference = -a H_s g_q."""
    model = tanh_mlp()
    alpha = 0.1
    batch = _regression_batch(tasks=1)
    second = MAML(model, inner_lr=alpha)
    first = MAML(model, inner_lr=alpha, first_order=True)
    g_second = _flat_grad(second, second.meta_loss(batch, F.mse_loss))
    g_first = _flat_grad(first, first.meta_loss(batch, F.mse_loss))

    params = named_params(model)
    shapes = {n: p.shape for n, p in params.items()}
    flat = torch.cat([p.detach().flatten() for p in params.values()])

    def unflatten(v):
        chunks = torch.split(v, [s.numel() for s in shapes.values()])
        return {n: c.view(s) for (n, s), c in zip(shapes.items(), chunks)}

    def support_loss(v):
        return F.mse_loss(forward_with(model, unflatten(v), batch.support_x[0]), batch.support_y[0])

    def query_loss(v):
        return F.mse_loss(forward_with(model, unflatten(v), batch.query_x[0]), batch.query_y[0])

    g_s = torch.autograd.functional.jacobian(support_loss, flat)
    adapted = flat - alpha * g_s
    g_q = torch.autograd.functional.jacobian(query_loss, adapted)
    torch.testing.assert_close(g_first, g_q, rtol=1e-10, atol=1e-12)
    second_order_term = -alpha * hvp(support_loss, flat, g_q)[1]
    assert second_order_term.norm() > 1e-4
    torch.testing.assert_close(g_second - g_first, second_order_term, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_core_matches_an_autograd_reference(float64, steps, first_order):
    model = tanh_mlp()
    learner = MAML(model, inner_lr=0.1, inner_steps=steps, first_order=first_order)
    batch = _regression_batch(tasks=3)
    ours = _flat_grad(learner, learner.meta_loss(batch, F.mse_loss))
    ref_loss = (
        sum(
            autograd_maml_loss(
                model,
                named_params(model),
                (batch.support_x[i], batch.support_y[i]),
                (batch.query_x[i], batch.query_y[i]),
                F.mse_loss,
                0.1,
                steps,
                first_order,
            )
            for i in range(3)
        )
        / 3
    )
    torch.testing.assert_close(ours, _flat_grad(learner, ref_loss), rtol=1e-10, atol=1e-12)


def test_metasgd_step_sizes_get_the_closed_form_meta_gradient(float64):
    """phi = theta - alpha * g_s, with g_s independent of alpha: dL_q/dalpha = -g_s * dL_q/dphi."""
    model = tanh_mlp()
    learner = MetaSGD(model, inner_lr=(0.005, 0.1))
    batch = _regression_batch(tasks=1)
    loss = learner.meta_loss(batch, F.mse_loss)
    names = list(named_params(model))
    alphas = [learner.rule.lr_of(n) for n in names]
    alpha_grads = torch.autograd.grad(loss, alphas)

    support = (batch.support_x[0], batch.support_y[0])
    query = (batch.query_x[0], batch.query_y[0])
    inner = learner.supervised_loss(F.mse_loss)
    params = named_params(model)
    g_s = torch.func.grad(inner)(params, support)
    adapted = {
        n: (p - learner.rule.lr_of(n) * g_s[n]).detach().requires_grad_() for n, p in params.items()
    }
    g_q = torch.autograd.grad(inner(adapted, query), list(adapted.values()))
    for name, got, gq in zip(names, alpha_grads, g_q):
        assert got.abs().sum() > 0, f"no meta-gradient reached the step sizes of {name}"
        torch.testing.assert_close(got, -g_s[name].detach() * gq, rtol=1e-10, atol=1e-12)


def test_metasgd_first_order_still_trains_step_sizes(float64):
    learner = MetaSGD(tanh_mlp(), inner_lr=0.05, first_order=True)
    loss = learner.meta_loss(_regression_batch(tasks=2), F.mse_loss)
    loss.backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in learner.rule.parameters())


def test_zero_inner_steps_is_the_initialisation():
    model = tanh_mlp()
    params = named_params(model)
    adapted = adapt(params, lambda p, d: p["0.weight"].sum(), None, MAML(model).rule, 0)
    assert all(adapted[n] is p for n, p in params.items())
