"""TAML: inequality measures by hand, and the regularised objective against a loop reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metarl.core import MAML, TaskBatch
from metarl.core.params import forward_with
from metarl.nn import MLP
from metarl.supervised.taml import TAML, gini_coefficient, theil_index


def test_inequality_measures_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0])
    expected_theil = sum(v / 2 * math.log(v / 2) for v in (1.0, 2.0, 3.0)) / 3
    torch.testing.assert_close(theil_index(x), torch.tensor(expected_theil))
    # |differences| summed over ordered pairs: 2 * (1 + 2 + 1) = 8; / (2 * 9 * 2)
    torch.testing.assert_close(gini_coefficient(x), torch.tensor(8 / 36))
    assert theil_index(torch.full((4,), 2.5)).abs() < 1e-7


def _batch() -> TaskBatch:
    g = torch.Generator().manual_seed(0)
    return TaskBatch(
        torch.randn(3, 6, 4, generator=g), torch.randint(0, 3, (3, 6), generator=g),
        torch.randn(3, 9, 4, generator=g), torch.randint(0, 3, (3, 9), generator=g),
    )  # fmt: skip


def _entropy(logits):
    log_p = torch.log_softmax(logits, -1)
    return -(log_p.exp() * log_p).sum(-1).mean()


@pytest.mark.parametrize("variant", ["entropy", "theil", "gini", "variance"])
def test_objective_and_gradient_match_a_loop_reference(float64, variant):
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,))
    learner = TAML(model, inner_lr=0.3, inner_steps=2, variant=variant, weight=0.7)
    b = _batch()
    ours = learner.meta_loss(b, F.cross_entropy)
    # reference: one task at a time, MAML's inner loop, the regulariser written out
    maml = MAML(model, inner_lr=0.3, inner_steps=2, batching="loop")
    loss = maml.supervised_loss(F.cross_entropy)
    theta = maml.params()
    query, extra, initial = [], [], []
    for i in range(3):
        adapted = maml.adapt(loss, (b.support_x[i], b.support_y[i]))
        query.append(loss(adapted, (b.query_x[i], b.query_y[i])))
        h0 = _entropy(forward_with(model, theta, b.query_x[i]))
        h1 = _entropy(forward_with(model, adapted, b.query_x[i]))
        extra.append(h1 - h0)
        initial.append(loss(theta, (b.support_x[i], b.support_y[i])))
    initial = torch.stack(initial)
    regulariser = {
        "entropy": torch.stack(extra).mean(),
        "theil": theil_index(initial),
        "gini": gini_coefficient(initial),
        "variance": initial.var(unbiased=False),
    }[variant]
    reference = torch.stack(query).mean() + 0.7 * regulariser
    torch.testing.assert_close(ours, reference)
    params = list(model.parameters())
    for a, r in zip(torch.autograd.grad(ours, params), torch.autograd.grad(reference, params)):
        torch.testing.assert_close(a, r)


def test_zero_weight_is_maml_and_bad_variant_is_refused(float64):
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,))
    b = _batch()
    taml = TAML(model, inner_lr=0.3, weight=0.0).meta_loss(b, F.cross_entropy)
    torch.testing.assert_close(taml, MAML(model, inner_lr=0.3).meta_loss(b, F.cross_entropy))
    with pytest.raises(ValueError, match="variant"):
        TAML(model, variant="atkinson")
