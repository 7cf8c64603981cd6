"""Matching networks, with and without full context embeddings."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import metarl
from helpers import cluster_episodes, query_accuracy, train_episodes
from metarl.nn import MLP
from metarl.supervised.matching import MatchingNet


def test_logits_are_the_log_of_cosine_attention_over_support_labels():
    learner = MatchingNet(nn.Flatten(), embedding_dim=2)
    support_x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    query = torch.tensor([[1.0, 1.0]])
    logits = learner.predict(support_x, torch.tensor([0, 1, 1]), query)
    cos = torch.tensor([2**-0.5, 2**-0.5, 1.0])  # cosines of the query with each support
    attention = cos.softmax(0)
    expected = torch.stack([attention[0], attention[1] + attention[2]]).log()
    torch.testing.assert_close(logits, expected.unsqueeze(0))


def test_full_context_embeddings_depend_on_the_whole_support_set():
    torch.manual_seed(0)
    learner = MatchingNet(nn.Flatten(), embedding_dim=3, fce=True, processing_steps=2)
    g = torch.randn(4, 3)
    other = g.clone()
    other[3] += 1.0  # change only the last support example
    first, second = learner.contextual_support(g), learner.contextual_support(other)
    assert not torch.allclose(first[0], second[0])  # the first one's context changed
    f = torch.randn(5, 3)
    assert not torch.allclose(
        learner.contextual_query(f, first), learner.contextual_query(f, second)
    )
    plain = MatchingNet(nn.Flatten(), embedding_dim=3)
    sx, qx = torch.randn(4, 3), torch.randn(5, 3)
    y = torch.tensor([0, 1, 0, 1])
    moved = sx.clone()
    moved[3] += 1.0
    # without context a query's similarity to support example 0 is unchanged: only the
    # normalisation over the moved example differs, so the ratio of the two classes' mass moves
    assert not torch.allclose(plain.predict(sx, y, qx), plain.predict(moved, y, qx))
    with pytest.raises(ValueError, match="processing_steps"):
        MatchingNet(nn.Flatten(), processing_steps=0)


@pytest.mark.parametrize("name", ["matching", "matching-fce"])
def test_a_few_hundred_episodes_beat_chance_by_far(name):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    learner = metarl.make_learner(name, MLP(20, 16, hidden=(32,)), embedding_dim=16)
    test = cluster_episodes(200, torch.Generator().manual_seed(1))

    before = query_accuracy(learner, test)
    train_episodes(learner, lambda: cluster_episodes(8, generator), 300, loss_fn=F.cross_entropy)
    after = query_accuracy(learner, test)
    assert before < 0.5 and after > 0.7, (before, after)  # chance: 0.2
