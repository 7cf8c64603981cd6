"""Prototype learners: ProtoNet, Gaussian and semi-supervised prototypical networks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import metarl
from helpers import cluster_episodes, clusters, query_accuracy, train_episodes
from metarl.core.learners import TaskBatch
from metarl.nn import MLP
from metarl.supervised import GaussianProtoNet, ProtoNet, SemiSupervisedProtoNet
from metarl.supervised.prototypes import prototypes, soft_kmeans_prototypes


def test_prototypes_are_class_means_or_weighted_means():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    y = torch.tensor([0, 0, 1])
    torch.testing.assert_close(prototypes(z, y, 2), torch.tensor([[1.0, 0.0], [0.0, 4.0]]))
    w = torch.tensor([[3.0], [1.0], [5.0]])  # class 0: (3 * 0 + 1 * 2) / 4 = 0.5
    torch.testing.assert_close(prototypes(z, y, 2, w), torch.tensor([[0.5, 0.0], [0.0, 4.0]]))


def test_protonet_logits_are_minus_squared_distances_to_the_means():
    learner = ProtoNet(nn.Flatten())  # the identity encoder on [B, 2] inputs
    support_x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    logits = learner.predict(support_x, torch.tensor([0, 0, 1]), torch.tensor([[1.0, 1.0]]))
    # prototypes (1, 0) and (0, 4): squared distances 1 and 1 + 9
    torch.testing.assert_close(logits, torch.tensor([[-1.0, -10.0]]))


def test_gaussian_prototypes_weight_by_the_precision_estimates():
    learner = GaussianProtoNet(nn.Flatten(), covariance="radius")
    raw = math.log(math.e - 1)  # softplus(raw) = 1, so s = 2
    support_x = torch.tensor([[0.0, 0.0, raw], [3.0, 0.0, 0.0], [0.0, 4.0, raw]])
    s0, s1 = 2.0, 1 + math.log(2)  # 1 + softplus(0) = 1 + log 2
    query = torch.tensor([[1.0, 1.0, 0.0]])
    logits = learner.predict(support_x, torch.tensor([0, 0, 1]), query)
    centre0 = torch.tensor([3.0 * s1 / (s0 + s1), 0.0])
    d0 = (s0 + s1) * ((torch.tensor([1.0, 1.0]) - centre0) ** 2).sum()
    d1 = s0 * (1.0 + 9.0)  # class 1: one example, precision 2, centre (0, 4)
    torch.testing.assert_close(logits, torch.stack([-d0, torch.tensor(-d1)]).unsqueeze(0))
    diagonal = GaussianProtoNet(nn.Flatten(), covariance="diagonal")
    z, s = diagonal.split(torch.tensor([[1.0, 2.0, 0.0, raw]]))
    torch.testing.assert_close(z, torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(s, torch.tensor([[1 + math.log(2), 2.0]]))
    with pytest.raises(ValueError, match="covariance"):
        GaussianProtoNet(nn.Flatten(), covariance="full")


def test_soft_kmeans_moves_prototypes_towards_their_unlabelled_examples():
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    counts = torch.tensor([1.0, 2.0])
    u = torch.tensor([[1.0, 0.0]])  # squared distances 1 and 9
    w0 = 1 / (1 + math.exp(-8))  # softmax(-1, -9)
    expected = torch.tensor([
        [(0 + w0 * 1) / (1 + w0), 0.0],
        [(2 * 4 + (1 - w0) * 1) / (2 + 1 - w0), 0.0],
    ])  # fmt: skip
    torch.testing.assert_close(soft_kmeans_prototypes(centres, counts, u), expected)
    # far from both classes and near the origin's cluster: the distractor takes it
    far = torch.tensor([[0.0, 30.0]])
    kept = soft_kmeans_prototypes(centres, counts, far, distractor_radius=torch.tensor(100.0))
    moved = soft_kmeans_prototypes(centres, counts, far)
    assert (kept - centres).abs().max() < 1e-3 < (moved - centres).abs().max()


@pytest.mark.parametrize("name", ["protonet", "gaussian-protonet", "semisupervised-protonet"])
def test_a_few_hundred_episodes_learn_to_ignore_the_noise(name, tmp_path):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    learner = metarl.make_learner(name, MLP(20, 9, hidden=(32,)))
    test = cluster_episodes(200, torch.Generator().manual_seed(1))
    before = query_accuracy(learner, test)
    train_episodes(learner, lambda: cluster_episodes(8, generator), 300, loss_fn=F.cross_entropy)
    after = query_accuracy(learner, test)
    assert before < 0.5 and after > 0.8, (before, after)  # chance: 0.2
    metarl.save_learner(tmp_path / "learner.pt", learner)
    loaded = metarl.load_learner(tmp_path / "learner.pt")
    assert type(loaded) is type(learner) and loaded.eval_steps == 0
    torch.testing.assert_close(loaded.query_logits(test), learner.query_logits(test))


def test_unlabelled_examples_refine_the_prototypes_of_semi_supervised_episodes():
    """Trained on 1-shot episodes with 5 unlabelled examples per class, the semi-supervised
    learner classifies better with them than without (the same weights, ProtoNet's rule)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    def episodes(tasks, gen):
        x = clusters(tasks, 5, 1 + 5 + 5, gen)
        y = torch.arange(5).view(1, 5, 1).expand(tasks, 5, 11)
        batch = TaskBatch(x[:, :, :1].flatten(1, 2), y[:, :, :1].flatten(1, 2),
                          x[:, :, 1:6].flatten(1, 2), y[:, :, 1:6].flatten(1, 2))  # fmt: skip
        return {**batch._asdict(), "unlabelled_x": x[:, :, 6:].flatten(1, 2)}

    encoder = MLP(20, 8, hidden=(32,))
    learner = SemiSupervisedProtoNet(encoder, distractor_cluster=True)
    train_episodes(learner, lambda: episodes(8, generator), 300)
    test = episodes(300, torch.Generator().manual_seed(1))
    with_unlabelled = query_accuracy(learner, test)
    without = query_accuracy(ProtoNet(encoder), test)
    assert with_unlabelled > without + 0.02, (with_unlabelled, without)
    assert learner.log_radius.grad is not None  # the distractor's length scale is learned
