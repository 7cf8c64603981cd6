"""Concept-space meta-learning: only the last layer adapts, the meta-gradient reaches the
concept generator (against finite differences), and the concept discriminator trains it."""

import pytest
import torch
import torch.nn.functional as F

import metarl
from metarl.core.learners import TaskBatch
from metarl.nn import MLP, Conv4
from metarl.supervised.concept_space import last_layer


def tasks(seed: int = 0, dtype=torch.float32) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([[0, 1, 2] * 2] * 2)
    support = torch.randn(2, 6, 5, generator=g, dtype=dtype)
    return TaskBatch(support, labels, torch.randn(2, 6, 5, generator=g, dtype=dtype), labels)


def test_only_the_last_layer_adapts_and_concepts_are_its_input():
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(7,))
    learner = metarl.make_learner("concept-maml", model, inner_lr=0.5)
    assert set(learner.params()) == {"2.weight", "2.bias"} and last_layer(model)[0] == "2"
    x = torch.randn(4, 5)
    torch.testing.assert_close(learner.concepts(x), torch.relu(model[0](x)))
    conv = Conv4(ways=5, channels=8)
    conv_learner = metarl.make_learner("concept-metasgd", conv, external_classes=11)
    images = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(conv_learner.concepts(images), conv.embed(images))
    assert set(conv_learner.params()) == {"head.weight", "head.bias"}
    assert conv_learner.discriminator.weight.shape == (11, conv.head.in_features)


def test_meta_gradient_reaches_the_generator_and_matches_finite_differences():
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(4,)).double()
    learner = metarl.make_learner(
        "concept-maml", model, inner_lr=0.5, inner_steps=2, batching="loop"
    )
    batch = tasks(dtype=torch.float64)
    learner.meta_loss(batch, F.cross_entropy).backward()
    weight = model[0].weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    for index in ((0, 0), (2, 3)):
        with torch.no_grad():
            weight[index] += 1e-6
            up = learner.meta_loss(batch, F.cross_entropy)
            weight[index] -= 2e-6
            down = learner.meta_loss(batch, F.cross_entropy)
            weight[index] += 1e-6
        assert weight.grad[index].item() == pytest.approx(((up - down) / 2e-6).item(), rel=1e-5)


def test_concept_discriminator_trains_the_generator():
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(7,))
    learner = metarl.make_learner("concept-maml", model, external_classes=4)
    x, y = torch.randn(8, 5), torch.randint(0, 4, (8,))
    learner.concept_loss(x, y).backward()
    assert model[0].weight.grad.abs().sum() > 0 and learner.discriminator.weight.grad is not None
    assert model[2].weight.grad is None  # the last layer is not on the discriminator's path
    with pytest.raises(ValueError, match="no concept discriminator"):
        metarl.make_learner("concept-maml", MLP(5, 3, hidden=(7,))).concept_loss(x, y)
