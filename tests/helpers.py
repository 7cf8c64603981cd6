"""Small models and reference implementations shared by the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

from metarl.core.params import Params, forward_with

ROOT = Path(__file__).resolve().parents[1]


def load_experiment(name: str) -> ModuleType:
    """Import ``experiments/<name>.py`` (not a package) as a module."""
    path = ROOT / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_experiment", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def assert_vmap_matches_loop(learner, batch, loss_fn, **tolerances) -> dict[str, list[Tensor]]:
    """Meta-gradients of ``learner.meta_loss`` with vmap and with the loop must agree.

    Returns both gradient lists (parameter order), for further checks.
    """
    grads = {}
    for batching in ("vmap", "loop"):
        learner.batching = batching
        learner.zero_grad()
        learner.meta_loss(batch, loss_fn).backward()
        grads[batching] = [p.grad.clone() for p in learner.parameters()]
    assert sum(g.abs().sum() for g in grads["loop"]) > 0
    for a, b in zip(grads["vmap"], grads["loop"]):
        torch.testing.assert_close(a, b, **tolerances)
    return grads


def tanh_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))


class SmallConvNet(nn.Module):
    """Two conv blocks with GroupNorm: the vmap-safe normalisation."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.GroupNorm(2, 4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.GroupNorm(2, 4),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


def autograd_maml_loss(
    model: nn.Module, params: Params, support, query, loss_fn, lr, steps, first_order=False
) -> Tensor:
    """Reference MAML query loss for one task with torch.autograd.grad (no torch.func)."""
    x, y = support
    for _ in range(steps):
        loss = loss_fn(forward_with(model, params, x), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
        params = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}
    qx, qy = query
    return loss_fn(forward_with(model, params, qx), qy)
