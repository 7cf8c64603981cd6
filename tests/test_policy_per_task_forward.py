"""Policies under per-task parameters: ``forward_per_task`` gives exactly ``vmap``'s values."""

from __future__ import annotations

import pytest
import torch
from torch.func import vmap

from metarl.core.params import forward_with
from metarl.rl import CategoricalMLPPolicy, GaussianMLPPolicy


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianMLPPolicy(17, 6, hidden=(100, 100)),
        lambda: GaussianMLPPolicy(2, 2, hidden=(16,), activation="tanh"),
        lambda: CategoricalMLPPolicy(6, 5, hidden=(32, 32)),
    ],
    ids=["gaussian-relu", "gaussian-tanh", "categorical"],
)
def test_forward_per_task_equals_vmap_bit_for_bit(make):
    torch.manual_seed(0)
    policy = make()
    tasks, n = 7, 20
    params = {
        k: v.detach() + 0.1 * torch.randn(tasks, *v.shape) for k, v in policy.named_parameters()
    }
    obs = torch.randn(tasks, n, policy.mean[0].in_features if hasattr(policy, "mean")
                      else policy.logits[0].in_features)  # fmt: skip
    with torch.no_grad():
        expected = vmap(lambda p, o: forward_with(policy, p, o))(params, obs)
        got = policy.forward_per_task(params, obs)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and torch.equal(a, b)
