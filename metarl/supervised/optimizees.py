"""Problems for learned optimisers: the functions an optimiser is trained and tested on.

Each problem holds its initial parameters and a ``loss(params, t)`` (``t``: the step, which
picks the mini-batch), the ``StepLoss`` of ``metarl.core.learned_optimizer``:

- ``QuadraticProblem``: a batch of ``f(theta) = ||W theta - y||^2`` with ``W`` (10 x 10) and
  ``y`` drawn i.i.d. from a standard normal, as in Andrychowicz et al. (2016); the loss is
  the mean over the batch (every function's parameters are separate coordinates).
- ``MLPProblem``: cross-entropy of a small MLP classifier on mini-batches of a labelled
  data set (the paper trains on MNIST with one hidden layer of 20 sigmoid units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from metarl.core.params import Params

Activation = Literal["sigmoid", "relu", "tanh"]
ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


@dataclass
class QuadraticProblem:
    """``batch`` random quadratics of dimension ``dim``, mean loss over the batch."""

    w: Tensor  # [batch, dim, dim]
    y: Tensor  # [batch, dim]
    init: Params  # {"theta": [batch, dim]}

    @classmethod
    def sample(
        cls, batch: int = 128, dim: int = 10, init_std: float = 1.0, generator=None
    ) -> QuadraticProblem:
        """Draw ``W``, ``y`` and the start ``theta_0`` from normal distributions."""
        w = torch.randn(batch, dim, dim, generator=generator)
        y = torch.randn(batch, dim, generator=generator)
        theta = torch.randn(batch, dim, generator=generator) * init_std
        return cls(w, y, {"theta": theta})

    def loss(self, params: Params, t: int = 0) -> Tensor:
        residual = torch.einsum("bij,bj->bi", self.w, params["theta"]) - self.y
        return residual.pow(2).sum(-1).mean()


def init_mlp(sizes: tuple[int, ...], generator: torch.Generator | None = None) -> Params:
    """Weights ``w{i}: [out, in]`` and biases ``b{i}`` drawn like ``nn.Linear``'s default
    (uniform in +-1/sqrt(fan_in))."""
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1 / math.sqrt(fan_in)
        params[f"w{i}"] = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
        params[f"b{i}"] = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
    return params


def mlp_forward(params: Params, x: Tensor, activation: Activation = "sigmoid") -> Tensor:
    """Logits of the MLP held in ``params`` (``w0, b0, w1, b1, ...``)."""
    layers = len(params) // 2
    act = ACTIVATIONS[activation]
    for i in range(layers):
        x = F.linear(x, params[f"w{i}"], params[f"b{i}"])
        if i < layers - 1:
            x = act(x)
    return x


@dataclass
class MLPProblem:
    """Train an MLP of widths ``sizes`` on ``(x, y)`` with mini-batches fixed per step."""

    x: Tensor  # [n, features]
    y: Tensor  # [n] class indices
    init: Params
    batches: Tensor  # [steps + 1, batch_size] row indices, one mini-batch per step
    activation: Activation = "sigmoid"

    @classmethod
    def sample(
        cls,
        x: Tensor,
        y: Tensor,
        hidden: tuple[int, ...] = (20,),
        activation: Activation = "sigmoid",
        steps: int = 100,
        batch_size: int = 128,
        generator: torch.Generator | None = None,
    ) -> MLPProblem:
        """A fresh initialisation and a mini-batch sequence for ``steps`` updates."""
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        classes = int(y.max()) + 1
        init = init_mlp((x.shape[1], *hidden, classes), generator)
        batches = torch.stack(
            [torch.randperm(len(x), generator=generator)[:batch_size] for _ in range(steps + 1)]
        )
        return cls(x, y, init, batches, activation)

    def loss(self, params: Params, t: int = 0) -> Tensor:
        if t >= len(self.batches):
            raise IndexError(f"step {t}: the problem holds {len(self.batches)} mini-batches")
        rows = self.batches[t]
        return F.cross_entropy(mlp_forward(params, self.x[rows], self.activation), self.y[rows])
