"""Batched (vmap) adaptation against the per-task loop, and the normalisation-layer policy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import SmallConvNet, tanh_mlp
from metarl.core import MAML, MetaSGD, Reptile, TaskBatch, stack_params, unstack_params


def _mlp_batch(tasks: int = 5) -> TaskBatch:
    g = torch.Generator().manual_seed(3)
    return TaskBatch(*(torch.randn(tasks, 6, d, generator=g) for d in (3, 2, 3, 2)))


def _image_batch(tasks: int = 4) -> TaskBatch:
    g = torch.Generator().manual_seed(4)
    return TaskBatch(
        torch.randn(tasks, 6, 1, 8, 8, generator=g),
        torch.randint(0, 3, (tasks, 6), generator=g),
        torch.randn(tasks, 9, 1, 8, 8, generator=g),
        torch.randint(0, 3, (tasks, 9), generator=g),
    )


def _meta_grads(learner: nn.Module, batch: TaskBatch, loss_fn) -> list[torch.Tensor]:
    learner.zero_grad()
    learner.meta_loss(batch, loss_fn).backward()
    return [p.grad.clone() for p in learner.parameters()]


CASES = {
    "mlp": (tanh_mlp, _mlp_batch, F.mse_loss),
    "conv-groupnorm": (SmallConvNet, _image_batch, F.cross_entropy),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize(
    "make_learner",
    [
        lambda m, k: MAML(m, inner_lr=0.1, inner_steps=k, batching="vmap"),
        lambda m, k: MAML(m, inner_lr=0.1, inner_steps=k, first_order=True, batching="vmap"),
        lambda m, k: MetaSGD(m, inner_lr=(0.01, 0.1), inner_steps=k, batching="vmap"),
    ],
    ids=["maml", "fomaml", "metasgd"],
)
def test_vmap_and_loop_give_the_same_meta_gradients(float64, case, steps, make_learner):
    make_model, make_batch, loss_fn = CASES[case]
    learner = make_learner(make_model(), steps)
    batch = make_batch()
    vmapped = _meta_grads(learner, batch, loss_fn)
    learner.batching = "loop"
    looped = _meta_grads(learner, batch, loss_fn)
    assert sum(g.abs().sum() for g in looped) > 0
    for a, b in zip(vmapped, looped):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_chunked_vmap_matches_unchunked(float64):
    learner = MAML(tanh_mlp(), inner_lr=0.1, inner_steps=2)
    batch = _mlp_batch(tasks=7)
    whole = _meta_grads(learner, batch, F.mse_loss)
    learner.chunk_size = 3
    for a, b in zip(whole, _meta_grads(learner, batch, F.mse_loss)):
        torch.testing.assert_close(a, b)


def test_reptile_vmap_and_loop_agree(float64):
    learner = Reptile(tanh_mlp(), inner_lr=0.05, inner_steps=4, batching="vmap")
    batch = _mlp_batch()
    vmapped = _meta_grads(learner, batch, F.mse_loss)
    learner.batching = "loop"
    for a, b in zip(vmapped, _meta_grads(learner, batch, F.mse_loss)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)


def test_adapt_batch_returns_per_task_parameters():
    learner = MAML(tanh_mlp(), inner_lr=0.1, inner_steps=2)
    batch = _mlp_batch(tasks=5)
    loss = learner.supervised_loss(F.mse_loss)
    adapted = learner.adapt_batch(loss, (batch.support_x, batch.support_y))
    per_task = unstack_params(adapted)
    assert len(per_task) == 5
    for i, params in enumerate(per_task):
        single = learner.adapt(loss, (batch.support_x[i], batch.support_y[i]))
        for name in params:
            torch.testing.assert_close(params[name], single[name])
    restacked = stack_params(per_task)
    assert all(torch.equal(restacked[n], adapted[n]) for n in adapted)


class _WithBatchNorm(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), norm, nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize(
    "norm", [nn.BatchNorm1d(4, track_running_stats=False), nn.LayerNorm(4)], ids=["bn", "ln"]
)
def test_vmap_unsafe_norms_are_refused_or_looped(norm):
    with pytest.raises(ValueError, match="GroupNorm"):
        MAML(_WithBatchNorm(norm), batching="vmap")
    with pytest.warns(UserWarning, match="one by one"):
        learner = MAML(_WithBatchNorm(norm), batching="auto")
    assert learner.batching == "loop"
    loss = learner.meta_loss(_mlp_batch(), F.mse_loss)
    loss.backward()
    assert torch.isfinite(loss)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="batching"):
        MAML(tanh_mlp(), batching="threads")
    with pytest.raises(ValueError, match="inner learning rate"):
        MAML(tanh_mlp(), inner_lr=0.0)
    with pytest.raises(ValueError, match="inner_steps"):
        MAML(tanh_mlp(), inner_steps=-1)
    with pytest.raises(ValueError, match="missing"):
        MAML(tanh_mlp()).meta_loss({"support_x": torch.zeros(1, 2, 3)}, F.mse_loss)
