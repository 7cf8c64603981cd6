"""Relation networks: summed class maps, the relation module's pairs, learning."""

from __future__ import annotations

import pytest
import torch

import metarl
from helpers import query_accuracy, train_episodes
from metarl.core.learners import TaskBatch
from metarl.nn import Conv4Maps
from metarl.supervised.relation import RelationNet, relation_mse


def _learner(**kwargs) -> RelationNet:
    encoder = Conv4Maps(channels=4, image_size=8, pooled=1, norm="group")
    return RelationNet(encoder, channels=4, map_size=encoder.map_size, **kwargs)


def test_a_class_map_is_the_sum_of_its_support_maps_beside_each_query():
    torch.manual_seed(0)
    learner = _learner()
    seen = []
    learner.relation[0].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    sx, qx = torch.randn(4, 1, 8, 8), torch.randn(3, 1, 8, 8)
    sy = torch.tensor([0, 1, 1, 0])
    scores = learner.predict(sx, sy, qx)
    assert scores.shape == (3, 2) and ((scores >= 0) & (scores <= 1)).all()
    pairs = seen[0].view(3, 2, 8, 4, 4)  # [queries, classes, 2 x channels, map, map]
    maps = learner.model(sx)
    torch.testing.assert_close(pairs[:, 0, :4], (maps[0] + maps[3]).expand(3, -1, -1, -1))
    torch.testing.assert_close(pairs[:, 1, :4], (maps[1] + maps[2]).expand(3, -1, -1, -1))
    torch.testing.assert_close(pairs[:, 1, 4:], learner.model(qx))
    with pytest.raises(ValueError, match="map_size >= 4"):
        RelationNet(Conv4Maps(), map_size=3)


def test_the_loss_is_squared_error_against_the_one_hot_match():
    scores = torch.tensor([[0.9, 0.2], [0.5, 0.5]])
    expected = ((0.1**2 + 0.2**2) + (0.5**2 + 0.5**2)) / 4
    assert relation_mse(scores, torch.tensor([0, 1])).item() == pytest.approx(expected)


def _pattern_episodes(tasks: int, generator: torch.Generator) -> TaskBatch:
    """5-way 1-shot episodes of 8x8 images: each class a random binary pattern, each
    example the pattern under Gaussian noise of 0.6."""
    patterns = (torch.rand(tasks, 5, 1, 1, 8, 8, generator=generator) > 0.5).float()
    x = patterns + 0.6 * torch.randn(tasks, 5, 4, 1, 8, 8, generator=generator)
    y = torch.arange(5).view(1, 5, 1).expand(tasks, 5, 4)
    return TaskBatch(x[:, :, :1].flatten(1, 2), y[:, :, :1].flatten(1, 2),
                     x[:, :, 1:].flatten(1, 2), y[:, :, 1:].flatten(1, 2))  # fmt: skip


def test_a_few_hundred_episodes_learn_to_compare(tmp_path):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    encoder = Conv4Maps(channels=16, image_size=8, pooled=1, norm="group")
    learner = metarl.make_learner("relation", encoder, channels=16, map_size=4)
    test = _pattern_episodes(100, torch.Generator().manual_seed(1))

    before = query_accuracy(learner, test)
    train_episodes(learner, lambda: _pattern_episodes(4, generator), 300)
    after = query_accuracy(learner, test)
    assert before < 0.3 and after > 0.45, (before, after)  # chance: 0.2; slower than ProtoNet
    metarl.save_learner(tmp_path / "r.pt", learner)
    loaded = metarl.load_learner(tmp_path / "r.pt")
    torch.testing.assert_close(loaded.query_logits(test), learner.query_logits(test))
