"""TRPO with Fisher-vector products on part of the meta-batch (``TRPO(fisher_every=n)``):
checked against the exact products on a small MAML problem, and wired through the trainer."""

from __future__ import annotations

import pytest
import torch
from torch.utils import _pytree as pytree

import metarl  # noqa: F401
from metarl.core import MAML, TRPO, conjugate_gradient, trpo_step
from metarl.core.params import detach_params, flat_gradient
from metarl.rl import GaussianMLPPolicy, MetaRLTrainer, MultiTaskSampler, policy_gradient_data
from metarl.rl.losses import surrogate_data


@pytest.fixture(scope="module")
def problem():
    """A MAML-TRPO meta-batch on Navigation2D: 12 tasks, their support and query data."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(32, 32))
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", 10, 40, seed=1)
    learner = MAML(policy, inner_lr=0.1)
    trainer = MetaRLTrainer(learner, sampler, TRPO())
    tasks = sampler.sample_tasks(12)
    support = policy_gradient_data(sampler.sample(tasks, policy))
    start = detach_params(learner.params())
    adapted = learner.adapt_batch(trainer.inner_loss, support, params=start, first_order=True)
    adapted = {k: v.detach() for k, v in adapted.items()}
    query = policy_gradient_data(sampler.sample(tasks, policy, adapted, batched=True))
    query = surrogate_data(policy, adapted, query)

    def loss_and_kl(every: int = 1):
        s, q = (pytree.tree_map(lambda t: t[::every], d) for d in (support, query))
        out = learner.meta_losses(trainer.inner_loss, s, trainer.outer_loss, q)
        return out[:, 0].mean(), out[:, 1].mean()

    return learner, loss_and_kl


def _fisher_product(params, kl):
    grads = flat_gradient(torch.autograd.grad(kl, params, create_graph=True), params)
    return lambda v: flat_gradient(
        torch.autograd.grad(grads @ v, params, retain_graph=True), params
    )


def test_subsampled_fisher_products_stay_close_to_the_exact_ones(problem):
    learner, loss_and_kl = problem
    params = list(learner.parameters())
    loss = loss_and_kl()[0]
    g = flat_gradient(torch.autograd.grad(loss, params), params)
    exact = _fisher_product(params, loss_and_kl()[1])
    half = _fisher_product(params, loss_and_kl(every=2)[1])
    v = torch.randn(g.shape, generator=torch.Generator().manual_seed(0))
    error = ((half(v) - exact(v)).norm() / exact(v).norm()).item()
    d_exact = conjugate_gradient(lambda x: exact(x) + 1e-5 * x, -g, 10)
    d_half = conjugate_gradient(lambda x: half(x) + 1e-5 * x, -g, 10)
    cosine = (d_exact @ d_half / (d_exact.norm() * d_half.norm())).item()
    # Measured on this problem: relative error 0.036 of the product, cosine 0.975 between the
    # steps (every 4th task of 20 on the paper's Navigation2D protocol: 0.099 and 0.886).
    assert error < 0.1 and cosine > 0.9, (error, cosine)
    assert exact(v) @ v > 0 and half(v) @ v > 0  # both are positive (semi-)definite


def test_the_step_with_half_the_tasks_keeps_the_kl_bound_and_improves_the_surrogate(problem):
    learner, loss_and_kl = problem
    params = list(learner.parameters())
    start = [p.detach().clone() for p in params]
    before = loss_and_kl()[0].item()
    stats = trpo_step(params, loss_and_kl, max_kl=0.01, curvature_kl=lambda: loss_and_kl(2)[1])
    loss, kl = loss_and_kl()
    assert stats.step_fraction > 0 and loss.item() < before and kl.item() <= 0.01 * (1 + 1e-6)
    with torch.no_grad():
        for p, s in zip(params, start):
            p.copy_(s)


def test_fisher_every_is_validated_and_needs_the_subsampled_kl():
    with pytest.raises(ValueError, match="fisher_every must be >= 1, got 0"):
        TRPO(fisher_every=0)
    with pytest.raises(ValueError, match="needs curvature_kl"):
        TRPO(fisher_every=2).step([torch.zeros(1, requires_grad=True)], lambda: None)


def test_the_trainer_feeds_every_nth_task_to_the_fisher_products(monkeypatch):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(8,))
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", 3, 10, seed=0)
    learner = MAML(policy, inner_lr=0.1)
    trainer = MetaRLTrainer(learner, sampler, TRPO(max_kl=0.01, fisher_every=3))
    seen, meta_losses = [], learner.meta_losses

    def spy(inner_loss, support, outer_loss, query):
        seen.append(support.observations.shape[0])
        return meta_losses(inner_loss, support, outer_loss, query)

    monkeypatch.setattr(learner, "meta_losses", spy)
    stats = trainer.meta_step(sampler.sample_tasks(7))
    assert seen[0] == 7 and seen[1] == 3  # the loss on all 7 tasks, the curvature on 0, 3, 6
    assert all(n == 7 for n in seen[2:])  # the line search on all of them
    assert stats["kl"] <= 0.01 * (1 + 1e-6)
