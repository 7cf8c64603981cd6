"""Zero-shot classification from class descriptions (attribute vectors).

- ``ZeroShotRelationNet``: relation networks for zero-shot learning (Sung, Yang, Zhang,
  Xiang, Torr and Hospedales, CVPR 2018, section 3.4): a class's attribute vector is
  embedded by a small MLP into the image embedding's space, and a relation MLP scores every
  (image, class) pair in [0, 1], trained by squared error against the one-hot match.
- ``AttributeClassifier``: the nearest-attribute reference, direct attribute prediction
  (Lampert, Nickisch and Harmeling, 2009): one softmax per attribute group predicts the
  image's value of that attribute; a class scores the sum of the log-probabilities of its
  own values, so an unseen combination of seen values can be recognised.

Both take the candidate classes' attribute vectors at prediction time, so the classes
scored at test time need not be those trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.config import Configurable
from metarl.nn import MLP


def _embed(model: nn.Module, x: Tensor) -> Tensor:
    embed = getattr(model, "embed", None)
    return embed(x) if callable(embed) else model(x)


class ZeroShotRelationNet(Configurable, nn.Module):
    """Relation networks for zero-shot learning.

    Args:
        model: the image encoder (``metarl.nn.Conv4``'s ``embed``).
        attribute_dim: length of the class attribute vectors.
        embedding_dim: the encoder's output size.
        hidden: width of the attribute and relation MLPs' hidden layer.
        activation: their hidden activation (``"relu"``, the paper's, or ``"tanh"``).
    """

    config_excludes = ("model",)

    def __init__(
        self,
        model: nn.Module,
        attribute_dim: int,
        embedding_dim: int,
        hidden: int = 128,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.model = model
        self.eval_steps = 0
        self.describe = MLP(attribute_dim, embedding_dim, (hidden,), activation=activation)
        self.relation = MLP(2 * embedding_dim, 1, (hidden,), activation=activation)

    def scores(self, x: Tensor, attributes: Tensor) -> Tensor:
        """Relation scores ``[B, C]`` of images ``x`` against classes ``attributes [C, A]``."""
        z = _embed(self.model, x)  # [B, D]
        d = self.describe(attributes)  # [C, D]
        pairs = torch.cat([z.unsqueeze(1).expand(-1, len(d), -1),
                           d.unsqueeze(0).expand(len(z), -1, -1)], -1)  # fmt: skip
        return torch.sigmoid(self.relation(pairs)).squeeze(-1)

    def loss(self, x: Tensor, labels: Tensor, attributes: Tensor) -> Tensor:
        """Squared error of the scores against the one-hot classes (labels index
        ``attributes``' rows)."""
        scores = self.scores(x, attributes)
        return F.mse_loss(scores, F.one_hot(labels.long(), len(attributes)).to(scores.dtype))

    def predict(self, x: Tensor, attributes: Tensor) -> Tensor:
        """Scores ``[B, C]`` of ``x`` against the classes described by ``attributes``."""
        with torch.no_grad():
            return self.scores(x, attributes)


class AttributeClassifier(Configurable, nn.Module):
    """Direct attribute prediction: the encoder, then one linear softmax head per attribute
    group (``groups``: each group's number of values, in the attribute vector's order).

    Args:
        model: the image encoder.
        embedding_dim: its output size.
        groups: sizes of the attribute groups (one-hot blocks of the attribute vector).
    """

    config_excludes = ("model",)

    def __init__(self, model: nn.Module, embedding_dim: int, groups: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.eval_steps = 0
        self.groups = tuple(int(g) for g in groups)
        self.head = nn.Linear(embedding_dim, sum(self.groups))

    def log_probabilities(self, x: Tensor) -> Tensor:
        """Per-group log-softmax of the heads, concatenated: ``[B, sum(groups)]``."""
        logits = self.head(_embed(self.model, x))
        return torch.cat([part.log_softmax(-1) for part in logits.split(self.groups, -1)], -1)

    def loss(self, x: Tensor, labels: Tensor, attributes: Tensor) -> Tensor:
        """Cross-entropy of every attribute group's value, averaged over groups."""
        target = attributes[labels.long()]  # [B, sum(groups)] one-hot blocks
        return -(self.log_probabilities(x) * target).sum(-1).mean() / len(self.groups)

    def predict(self, x: Tensor, attributes: Tensor) -> Tensor:
        """Class scores ``[B, C]``: the summed log-probabilities of each class's values."""
        with torch.no_grad():
            return self.log_probabilities(x) @ attributes.t()
