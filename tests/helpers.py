"""Small models and reference implementations shared by the tests."""

from __future__ import annotations

import importlib.util
import io
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from metarl.core.learners import TaskBatch
from metarl.core.params import Params, forward_with

ROOT = Path(__file__).resolve().parents[1]


def load_experiment(name: str) -> ModuleType:
    """Import ``experiments/<name>.py`` (not a package) as a module."""
    path = ROOT / "experiments" / f"{name}.py"
    if str(path.parent) not in sys.path:  # as when run as a script: siblings import each other
        sys.path.append(str(path.parent))
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


FAKE_OMNIGLOT = {
    "images_background_small1.zip": {"Greek": 2, "Korean": 2, "Tagalog": 1},
    "images_background_small2.zip": {"Greek": 2, "Sanskrit": 3},
}


def png_bytes(value: int, dot: tuple[int, int] | None = None) -> bytes:
    """A white 105x105 Omniglot-sized PNG, with a 20x20 square of ``value`` at ``dot``."""
    image = Image.new("L", (105, 105), 255)
    if dot is not None:
        for dx in range(20):
            for dy in range(20):
                image.putpixel((dot[0] + dx, dot[1] + dy), value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def fake_omniglot(
    root: Path, layout: dict[str, dict[str, int]] | None = None, per_character: int = 3
) -> Path:
    """Zips shaped like the real ones (``{zip: {alphabet: characters}}``; by default Greek is
    in both, as on this machine), each character's images a square at its own place."""
    for name, alphabets in (layout or FAKE_OMNIGLOT).items():
        with zipfile.ZipFile(root / name, "w") as archive:
            top = name.removesuffix(".zip")
            for alphabet, characters in alphabets.items():
                for c in range(characters):
                    for i in range(per_character):
                        member = f"{top}/{alphabet}/character{c + 1:02d}/{c}_{i}.png"
                        archive.writestr(member, png_bytes(0, dot=(10 * i, 10 * c)))
    return root


def clusters(tasks: int, ways: int, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """Examples [T, ways, per_class, 20]: two informative features around each class's own
    centre, eighteen features of loud noise the encoder has to learn to ignore."""
    centres = torch.randn(tasks, ways, 1, 2, generator=generator) * 2
    signal = centres + 0.3 * torch.randn(tasks, ways, per_class, 2, generator=generator)
    noise = 5 * torch.randn(tasks, ways, per_class, 18, generator=generator)
    return torch.cat([signal, noise], -1)


def cluster_episodes(tasks: int, generator: torch.Generator, ways: int = 5, shots: int = 1):
    """Few-shot episodes of ``clusters`` (5 queries per class): a problem metric learners
    solve only once their encoder has learned to ignore the noise features."""
    x = clusters(tasks, ways, shots + 5, generator)
    y = torch.arange(ways).view(1, ways, 1).expand(tasks, ways, shots + 5)
    return TaskBatch(
        x[:, :, :shots].flatten(1, 2), y[:, :, :shots].flatten(1, 2),
        x[:, :, shots:].flatten(1, 2), y[:, :, shots:].flatten(1, 2),
    )  # fmt: skip


def train_episodes(
    learner: nn.Module, batches, steps: int, lr: float = 3e-3, **loss_kwargs
) -> None:
    """``steps`` Adam steps of ``learner.meta_loss`` on ``batches()``' episodes."""
    optimiser = torch.optim.Adam(learner.parameters(), lr=lr)
    for _ in range(steps):
        loss = learner.meta_loss(batches(), **loss_kwargs)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def query_accuracy(learner: nn.Module, batch) -> float:
    """Fraction of ``batch``'s queries a metric learner classifies right."""
    query_y = batch["query_y"] if isinstance(batch, dict) else batch.query_y
    return (learner.query_logits(batch).argmax(-1) == query_y).float().mean().item()


def assert_grads_match_finite_differences(
    model: nn.Module, loss, names, index_value: int = 0, eps: float = 1e-6, rel: float = 1e-4
) -> None:
    """After ``loss().backward()``, each named parameter's gradient at the entry
    ``(index_value, ...)`` equals the central difference of ``loss()`` (float64 models)."""
    params = dict(model.named_parameters())
    for name in names:
        p = params[name]
        index = (index_value,) * p.dim()
        with torch.no_grad():
            p[index] += eps
            up = loss()
            p[index] -= 2 * eps
            down = loss()
            p[index] += eps
        numeric = ((up - down) / (2 * eps)).item()
        assert p.grad[index].item() == pytest.approx(numeric, rel=rel, abs=1e-8), name
