"""Meta Networks: the representation loss by hand, per-example gradients against a loop,
fast weights read by attention, and learning to classify one-shot."""

import pytest
import torch
from torch.nn import functional as F

import metarl
from helpers import cluster_episodes, query_accuracy, train_episodes
from metarl.nn import MLP
from metarl.supervised.meta_networks import contrastive_loss


def test_contrastive_loss_by_hand():
    points = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 2.0]])
    # pairs: (0,1) d=0.5 same -> 0.25; (0,2) d=2 different -> 0; (1,2) d=sqrt(4.25) different -> 0
    loss = contrastive_loss(points, torch.tensor([0, 0, 1]), margin=1.0)
    assert loss.item() == pytest.approx(2 * 0.25 / 6)
    loss = contrastive_loss(points, torch.tensor([0, 1, 2]), margin=1.0)  # (0,1): (1 - 0.5)^2
    assert loss.item() == pytest.approx(2 * 0.25 / 6)
    with pytest.raises(ValueError, match="two support"):
        contrastive_loss(points[:1], torch.tensor([0]))


def test_support_gradients_match_a_loop():
    torch.manual_seed(0)
    learner = metarl.make_learner("metanet", MLP(6, 4, (8,)), embedding_dim=4, ways=5, hidden=7)
    f, y = torch.randn(4, 4), torch.tensor([0, 2, 1, 2])
    g1, g2 = learner.support_gradients(f, y, ways=3)
    assert g1.shape == (4, 7, 4) and g2.shape == (4, 5, 7)
    for i in range(4):
        w1 = learner.layer1.weight.detach().requires_grad_(True)
        w2 = learner.layer2.weight.detach().requires_grad_(True)
        h = F.relu(F.linear(f[i], w1, learner.layer1.bias))
        logits = F.linear(h, w2, learner.layer2.bias)[:3]
        want = torch.autograd.grad(F.cross_entropy(logits[None], y[i : i + 1]), (w1, w2))
        torch.testing.assert_close(g1[i], want[0])
        torch.testing.assert_close(g2[i], want[1])
    assert g2[:, 3:].abs().max() == 0  # outputs beyond the task's classes get no gradient


def test_predictions_do_not_depend_on_the_support_order_and_check_the_ways():
    torch.manual_seed(0)
    learner = metarl.make_learner("metanet", MLP(6, 4, (8,)), embedding_dim=4, ways=3)
    sx, qx = torch.randn(6, 6), torch.randn(5, 6)
    sy = torch.tensor([0, 1, 2, 0, 1, 2])
    order = torch.tensor([3, 1, 5, 0, 4, 2])
    torch.testing.assert_close(
        learner.predict(sx, sy, qx), learner.predict(sx[order], sy[order], qx)
    )
    with pytest.raises(ValueError, match="3 outputs"):
        learner.predict(torch.randn(4, 6), torch.tensor([0, 1, 2, 3]), qx)


def test_meta_network_learns_to_classify_one_shot(tmp_path):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    learner = metarl.make_learner("metanet", MLP(20, 16, hidden=(32,)), embedding_dim=16, ways=5)
    test = cluster_episodes(200, torch.Generator().manual_seed(1))
    before = query_accuracy(learner, test)
    train_episodes(learner, lambda: cluster_episodes(8, generator), 300)
    after = query_accuracy(learner, test)
    assert before < 0.5 and after > 0.7, (before, after)  # chance: 0.2
    metarl.save_learner(tmp_path / "m.pt", learner)
    torch.testing.assert_close(metarl.load_learner(tmp_path / "m.pt").query_logits(test),
                               learner.query_logits(test))  # fmt: skip
