"""Siamese networks: pair logits, one-shot by the most similar example, verification."""

from __future__ import annotations

import torch
from torch import nn

import metarl
from helpers import cluster_episodes, query_accuracy, train_episodes
from metarl.nn import MLP
from metarl.supervised.siamese import SiameseNet


def test_a_query_takes_the_logit_of_its_most_similar_support_example_per_class():
    learner = SiameseNet(nn.Flatten(), embedding_dim=2)
    with torch.no_grad():
        learner.head.weight.copy_(torch.tensor([[-1.0, -2.0]]))
        learner.head.bias.fill_(3.0)
    sx = torch.tensor([[0.0, 0.0], [5.0, 5.0], [1.0, 0.0]])
    sy = torch.tensor([0, 0, 1])
    logits = learner.predict(sx, sy, torch.tensor([[1.0, 1.0]]))
    # pair logits 3 - |dx| - 2 |dy|: (0,0) -> 0, (5,5) -> -9, (1,0) -> 1
    torch.testing.assert_close(logits, torch.tensor([[0.0, 1.0]]))
    probability = learner.verify(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(probability, torch.sigmoid(torch.tensor([1.0])))


def test_verification_training_learns_to_classify_one_shot(tmp_path):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    learner = metarl.make_learner("siamese", MLP(20, 16, hidden=(32,)), embedding_dim=16)
    test = cluster_episodes(200, torch.Generator().manual_seed(1))

    before = query_accuracy(learner, test)
    train_episodes(learner, lambda: cluster_episodes(8, generator), 300)  # binary cross-entropy
    after = query_accuracy(learner, test)
    assert before < 0.5 and after > 0.7, (before, after)  # chance: 0.2
    metarl.save_learner(tmp_path / "s.pt", learner)
    torch.testing.assert_close(metarl.load_learner(tmp_path / "s.pt").query_logits(test),
                               learner.query_logits(test))  # fmt: skip
