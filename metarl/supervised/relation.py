"""Relation networks (Sung, Yang, Zhang, Xiang, Torr and Hospedales, "Learning to Compare:
Relation Network for Few-Shot Learning", CVPR 2018), one- and few-shot.

The encoder maps images to feature maps (``metarl.nn.Conv4Maps``: 64 x 7 x 7 for Omniglot);
a class's map is the sum of its support examples' maps (one example in one-shot); a learned
relation module scores each (class, query) pair from the two maps stacked along channels,
a score in [0, 1], trained by squared error against the one-hot match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.nn import conv_block
from metarl.supervised.prototypes import PrototypeLearner


def relation_mse(scores: Tensor, labels: Tensor) -> Tensor:
    """The relation networks' loss: squared error of the scores ``[Q, N]`` against the
    one-hot labels."""
    return F.mse_loss(scores, F.one_hot(labels.long(), scores.shape[-1]).to(scores.dtype))


class RelationNet(PrototypeLearner):
    """Relation networks; ``predict`` returns the relation scores ``[Q, N]``.

    Args:
        model: the encoder, returning feature maps ``[B, channels, map_size, map_size]``.
        channels: the encoder's feature channels.
        map_size: the side of its feature maps (at least 4: the relation module pools twice).
        hidden: width of the relation module's hidden layer (8 in the paper).
        norm: the relation module's normalisation (``"group"``: per pair, not transductive;
            ``"batch"``: ``TaskBatchNorm2d`` over a task's pairs, ``"none"``).
    """

    def __init__(
        self,
        model: nn.Module,
        channels: int = 64,
        map_size: int = 7,
        hidden: int = 8,
        norm: str = "group",
    ) -> None:
        super().__init__(model)
        if map_size < 4 or min(channels, hidden) < 1:
            raise ValueError(
                f"RelationNet needs map_size >= 4 (two 2x2 poolings) and positive widths, got "
                f"map_size={map_size}, channels={channels}, hidden={hidden}"
            )
        size = map_size // 4
        self.relation = nn.Sequential(
            *conv_block(2 * channels, channels, norm),
            *conv_block(channels, channels, norm),
            nn.Flatten(),
            nn.Linear(channels * size * size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
            nn.Sigmoid(),
        )

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        maps = self.embed(torch.cat([support_x, query_x]))
        support, query = maps[: len(support_x)], maps[len(support_x) :]
        one_hot = F.one_hot(support_y.long(), ways).to(maps.dtype)  # [S, N]
        classes = (one_hot.t() @ support.flatten(1)).view(ways, *support.shape[1:])  # sums
        q, n = len(query), ways
        pairs = torch.cat(
            [classes.unsqueeze(0).expand(q, -1, -1, -1, -1),
             query.unsqueeze(1).expand(-1, n, -1, -1, -1)], dim=2,
        )  # fmt: skip
        return self.relation(pairs.flatten(0, 1)).view(q, n)

    def meta_loss(
        self, batch: Any, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
    ) -> Tensor:
        """Mean over tasks of ``loss_fn`` (default ``relation_mse``, the paper's) on the
        query scores."""
        return super().meta_loss(batch, relation_mse if loss_fn is None else loss_fn)
