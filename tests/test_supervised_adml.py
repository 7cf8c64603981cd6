"""ADML: the FGSM attack, the two-branch objective against a loop reference, and training."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from metarl.core import MAML, TaskBatch
from metarl.nn import MLP
from metarl.supervised import EpisodeSampler
from metarl.supervised.adml import ADML, fgsm
from metarl.supervised.evaluate import accuracies_after_steps, sampled_accuracies


def test_fgsm_moves_every_input_by_epsilon_along_the_loss_gradient():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    params = dict(model.named_parameters())
    x, y = torch.rand(5, 4) * 0.6 + 0.2, torch.tensor([0, 1, 2, 0, 1])
    adv = fgsm(model, params, x, y, 0.1, F.cross_entropy)
    torch.testing.assert_close((adv - x).abs(), torch.full_like(x, 0.1))
    assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)
    clipped = fgsm(model, params, x, y, 5.0, F.cross_entropy)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_objective_matches_a_per_task_reference(float64):
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,))
    learner = ADML(model, inner_lr=0.3, inner_steps=1, epsilon=0.05)
    g = torch.Generator().manual_seed(0)
    b = TaskBatch(
        torch.rand(3, 6, 4, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (3, 6), generator=g),
        torch.rand(3, 9, 4, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (3, 9), generator=g),
    )
    ours = learner.meta_loss(b, F.cross_entropy)
    maml = MAML(model, inner_lr=0.3, batching="loop")
    loss = maml.supervised_loss(F.cross_entropy)
    theta = {n: p.detach() for n, p in maml.params().items()}
    total = 0
    for i in range(3):
        sx, sy, qx, qy = (t[i] for t in b)
        adv_s = fgsm(model, theta, sx, sy, 0.05, F.cross_entropy)
        adv_q = fgsm(model, theta, qx, qy, 0.05, F.cross_entropy)
        total = total + loss(maml.adapt(loss, (adv_s, sy)), (qx, qy))
        total = total + loss(maml.adapt(loss, (sx, sy)), (adv_q, qy))
    reference = total / 3
    torch.testing.assert_close(ours, reference)
    params = list(model.parameters())
    for a, r in zip(torch.autograd.grad(ours, params), torch.autograd.grad(reference, params)):
        torch.testing.assert_close(a, r)


def test_adml_learns_and_the_attack_lowers_accuracy():
    rng = np.random.default_rng(0)
    prototypes = rng.uniform(0.2, 0.8, size=(40, 8))
    labels = np.repeat(np.arange(40), 20)
    data = np.clip(prototypes[labels] + 0.05 * rng.normal(size=(800, 8)), 0, 1)
    data = torch.tensor(data, dtype=torch.float32)
    train = EpisodeSampler(data[:600], labels[:600], ways=5, shots=1, queries=5, seed=0)
    test = EpisodeSampler(data[600:], labels[600:], ways=5, shots=1, queries=5, seed=1)
    torch.manual_seed(0)
    learner = ADML(MLP(8, 5, hidden=(64,)), inner_lr=2.0, epsilon=0.02)
    held_out = test.sample(200)
    before = accuracies_after_steps(learner, held_out, 1).mean().item()
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-2)
    for _ in range(300):
        loss = learner.meta_loss(train.sample(8), F.cross_entropy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    clean = accuracies_after_steps(learner, held_out, 1).mean().item()
    attacked = accuracies_after_steps(learner, held_out, 1, attack_epsilon=0.02).mean().item()
    assert clean > 0.4 and clean > before + 0.15, f"clean accuracy {before:.2f} -> {clean:.2f}"
    assert attacked < clean  # the attack works on the adapted learner
    # the sampled evaluation scores clean and attacked queries of the same episodes
    both = sampled_accuracies(learner, EpisodeSampler(data[600:], labels[600:], 5, 1, 5, seed=1),
                              200, 1, attack_epsilon=0.02, query_batch="all")  # fmt: skip
    assert both[0].mean().item() == clean and both[1].mean().item() == attacked
