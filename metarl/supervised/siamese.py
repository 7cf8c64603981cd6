"""Siamese networks (Koch, Zemel and Salakhutdinov, "Siamese Neural Networks for One-shot
Image Recognition", ICML Deep Learning Workshop 2015).

Twin encoders (one network) embed two examples; a learned weighting of the absolute
difference of the embeddings, through a sigmoid, is the probability that they belong to the
same class. Trained on verification pairs by binary cross-entropy; a query is classified
one-shot (or few-shot) by its most similar support example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.core.learners import as_task_batch
from metarl.supervised.prototypes import PrototypeLearner


class SiameseNet(PrototypeLearner):
    """Siamese networks; ``predict`` returns, per class, the largest same-class logit of the
    query against that class's support examples.

    Args:
        model: the encoder (``metarl.nn.Conv4``'s ``embed``: 64 features for 28x28 images).
        embedding_dim: the encoder's output size.
    """

    def __init__(self, model: nn.Module, embedding_dim: int = 64) -> None:
        super().__init__(model)
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.head = nn.Linear(embedding_dim, 1)

    def pair_logits(self, a: Tensor, b: Tensor) -> Tensor:
        """Same-class logits of every embedding in ``a [A, D]`` against ``b [B, D]``:
        ``[A, B]``."""
        return self.head((a.unsqueeze(1) - b.unsqueeze(0)).abs()).squeeze(-1)

    def verify(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Probability that ``x1[i]`` and ``x2[i]`` show the same class, for each ``i``."""
        with torch.no_grad():
            z = self.embed(torch.cat([x1, x2]))
            a, b = z[: len(x1)], z[len(x1) :]
            return torch.sigmoid(self.head((a - b).abs()).squeeze(-1))

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        z = self.embed(torch.cat([support_x, query_x]))
        pairs = self.pair_logits(z[len(support_x) :], z[: len(support_x)])  # [Q, S]
        member = F.one_hot(support_y.long(), ways).bool()  # [S, N]
        masked = pairs.unsqueeze(2).masked_fill(~member.unsqueeze(0), float("-inf"))
        return masked.amax(1)  # [Q, N]: the most similar support example of each class

    def meta_loss(
        self, batch: Any, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
    ) -> Tensor:
        """Verification loss: binary cross-entropy of every (query, support) pair of every
        task against whether the two share a class (``loss_fn``, if given, takes the
        classification logits and labels instead)."""
        if loss_fn is not None:
            return super().meta_loss(batch, loss_fn)
        b = as_task_batch(batch)
        losses = []
        for sx, sy, qx, qy in zip(*b):
            z = self.embed(torch.cat([sx, qx]))
            pairs = self.pair_logits(z[len(sx) :], z[: len(sx)])
            same = (qy.unsqueeze(1) == sy.unsqueeze(0)).to(pairs.dtype)
            losses.append(F.binary_cross_entropy_with_logits(pairs, same))
        return torch.stack(losses).mean()
