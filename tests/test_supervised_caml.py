"""CAML: only the context adapts, the network is meta-trained, gradients are right."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_vmap_matches_loop
from metarl.core import TaskBatch
from metarl.supervised.caml import CAML, ContextMLP


def _batch(tasks: int = 3) -> TaskBatch:
    g = torch.Generator().manual_seed(0)
    return TaskBatch(*(torch.randn(tasks, 5, d, generator=g) for d in (2, 1, 2, 1)))


def test_inner_loop_moves_the_context_only_and_starts_it_at_zero():
    torch.manual_seed(0)
    learner = CAML(ContextMLP(2, 1, context_dim=4, hidden=(8,)), inner_lr=0.5, inner_steps=2)
    b = _batch()
    adapted = learner.adapt(learner.supervised_loss(F.mse_loss), (b.support_x[0], b.support_y[0]))
    start = learner.params()
    assert torch.equal(start["context"], torch.zeros(4))
    assert not torch.equal(adapted["context"], start["context"])
    for name, p in start.items():
        if name != "context":
            assert torch.equal(adapted[name], p)
    assert "context" not in dict(learner.named_parameters())  # the outer loop never moves it


def test_meta_gradient_matches_finite_differences(float64):
    torch.manual_seed(0)
    learner = CAML(ContextMLP(2, 1, context_dim=3, hidden=(6,)), inner_lr=0.7, inner_steps=2)
    b = _batch()
    loss = learner.meta_loss(b, F.mse_loss)
    (grad,) = torch.autograd.grad(loss, [learner.model.body[0].weight])
    w = learner.model.body[0].weight
    numeric = torch.zeros_like(w)
    eps = 1e-6
    with torch.no_grad():
        for idx in [(0, 0), (2, 1), (5, 4), (3, 2)]:  # input weights and context weights
            w[idx] += eps
            up = learner.meta_loss(b, F.mse_loss)
            w[idx] -= 2 * eps
            down = learner.meta_loss(b, F.mse_loss)
            w[idx] += eps
            numeric[idx] = (up - down) / (2 * eps)
            torch.testing.assert_close(grad[idx], numeric[idx], rtol=1e-5, atol=1e-9)


def test_vmap_and_loop_agree(float64):
    torch.manual_seed(1)
    learner = CAML(ContextMLP(2, 1, context_dim=3, hidden=(6,)), inner_lr=0.7)
    assert_vmap_matches_loop(learner, _batch(4), F.mse_loss)


def test_model_without_context_is_refused():
    with pytest.raises(ValueError, match="context"):
        CAML(torch.nn.Linear(2, 1))


def test_caml_adapts_a_conv4_through_film_and_vmap_equals_loop(float64):
    from metarl.nn import Conv4

    torch.manual_seed(0)
    model = Conv4(ways=3, channels=4, image_size=16, context_dim=5)
    learner = CAML(model, inner_lr=1.0)
    g = torch.Generator().manual_seed(0)
    batch = TaskBatch(
        torch.rand(2, 3, 1, 16, 16, generator=g), torch.arange(3).repeat(2, 1),
        torch.rand(2, 6, 1, 16, 16, generator=g), torch.arange(3).repeat(2, 2),
    )  # fmt: skip
    adapted = learner.adapt(learner.supervised_loss(F.cross_entropy), (batch[0][0], batch[1][0]))
    assert adapted["context"].abs().sum() > 0  # the context moved, through FiLM
    grads = assert_vmap_matches_loop(learner, batch, F.cross_entropy)
    # FiLM's weights act on the context, which is zero before adaptation: their gradient
    # exists only through the inner step
    film = [n for n, _ in learner.named_parameters()].index("model.film.weight")
    assert grads["vmap"][film].abs().sum() > 0 and grads["loop"][film].abs().sum() > 0


def test_film_modulates_the_chosen_block_only():
    from metarl.nn import Conv4

    torch.manual_seed(0)
    x = torch.rand(4, 1, 16, 16)
    for block in (1, 3):
        model = Conv4(ways=3, channels=4, image_size=16, context_dim=2, film_block=block)
        split = len(model.features) // 4 * block
        with torch.no_grad():
            model.film.bias.copy_(torch.tensor([1.0] * 4 + [0.5] * 4))  # gamma 1, beta 0.5
            by_hand = model.head(model.features[split:](model.features[:split](x) * 2 + 0.5)
                                 .flatten(1))  # fmt: skip
            torch.testing.assert_close(model(x), by_hand)
    with pytest.raises(ValueError, match="film_block"):
        Conv4(ways=3, context_dim=2, film_block=5)
