"""Metric-based few-shot learners that classify by distance to class prototypes.

- ``ProtoNet``: prototypical networks (Snell, Swersky and Zemel, NeurIPS 2017). A class's
  prototype is the mean embedding of its support examples; a query's logits are minus its
  squared Euclidean distances to the prototypes.
- ``GaussianProtoNet``: Gaussian prototypical networks (Fort, 2017). The encoder also emits
  a raw precision estimate per example (one number, ``"radius"``, or one per embedding
  dimension, ``"diagonal"``), ``s = 1 + softplus(raw)``; a prototype is the
  precision-weighted mean of its class's embeddings, its precision their sum, and the
  distance is the precision-weighted squared distance.
- ``soft_kmeans_prototypes``: the refinement of semi-supervised prototypical networks (Ren
  et al., ICLR 2018): one soft k-means step that moves the prototypes towards unlabelled
  examples, optionally with a distractor cluster at the origin that absorbs examples of
  none of the classes.

Adaptation here is computing prototypes, not gradient steps: these learners have
``eval_steps = 0``, ``predict(support_x, support_y, query_x)`` and ``meta_loss(batch)``
like the gradient-based ones, and ``metarl.save_learner`` / ``load_learner`` handle them.
The encoder is the ``model``: its ``embed`` method if it has one (``metarl.nn.Conv4``), else
its forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.config import Configurable
from metarl.core.learners import _check_inputs, as_task_batch


def prototypes(
    embeddings: Tensor, labels: Tensor, ways: int, weights: Tensor | None = None
) -> Tensor:
    """Per-class (weighted) means ``[ways, D]`` of ``embeddings [S, D]`` with ``labels [S]``
    in ``0..ways-1``; ``weights [S, D]`` (or ``[S, 1]``) weight each example's entries."""
    one_hot = F.one_hot(labels.long(), ways).to(embeddings.dtype)  # [S, ways]
    if weights is None:
        return one_hot.t() @ embeddings / one_hot.sum(0).clamp_min(1).unsqueeze(1)
    weights = weights.expand_as(embeddings)
    return (one_hot.t() @ (weights * embeddings)) / (one_hot.t() @ weights)


def encode(model: nn.Module, x: Tensor) -> Tensor:
    """``model.embed(x)`` where the model has an ``embed`` method (``metarl.nn.Conv4``), else
    ``model(x)``: an encoder's output ``[B, D]``."""
    embed = getattr(model, "embed", None)
    return embed(x) if callable(embed) else model(x)


def squared_distances(queries: Tensor, centres: Tensor) -> Tensor:
    """``||q - c||^2`` for every query ``[Q, D]`` and centre ``[C, D]``: ``[Q, C]``."""
    return ((queries.unsqueeze(1) - centres.unsqueeze(0)) ** 2).sum(-1)


def soft_kmeans_prototypes(
    centres: Tensor,
    labelled_counts: Tensor,
    unlabelled: Tensor,
    distractor_radius: Tensor | None = None,
) -> Tensor:
    """One soft k-means refinement (Ren et al., 2018) of ``centres [C, D]``, the means of
    ``labelled_counts [C]`` labelled embeddings each, with ``unlabelled [U, D]`` embeddings.

    Each unlabelled example is assigned to the classes by ``softmax(-||u - c||^2)``; a
    refined prototype is ``(count * centre + sum_u w_uc u) / (count + sum_u w_uc)``. With
    ``distractor_radius`` (a positive scalar, learned by the caller), an extra cluster at the
    origin with that length scale competes for the unlabelled examples: its logit is
    ``-||u||^2 / r^2 - log(r)`` against ``-||u - c||^2`` for the classes (radius 1), and the
    examples it takes move no prototype.
    """
    logits = -squared_distances(unlabelled, centres)  # [U, C]
    if distractor_radius is not None:
        r = distractor_radius
        origin = -(unlabelled**2).sum(-1, keepdim=True) / r**2 - torch.log(r)
        logits = torch.cat([logits, origin], 1)
    weights = logits.softmax(1)[:, : centres.shape[0]]  # [U, C]
    totals = labelled_counts.unsqueeze(1) * centres + weights.t() @ unlabelled
    return totals / (labelled_counts + weights.sum(0)).unsqueeze(1)


class PrototypeLearner(Configurable, nn.Module):
    """Base of the prototype classifiers: the encoder, ``predict`` and ``meta_loss``.

    Subclasses define ``task_logits(support_x, support_y, query_x, ways)`` for one task.
    """

    config_excludes = ("model",)
    uses_unlabelled = False  # whether task_logits takes a task's unlabelled examples

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval_steps = 0  # adaptation is computing prototypes: no gradient steps

    def embed(self, x: Tensor) -> Tensor:
        """Encoder output ``[B, D]`` for examples ``[B, ...]``."""
        return encode(self.model, x)

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        raise NotImplementedError

    def predict(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        steps: int | None = None,
    ) -> Tensor:
        """Logits ``[Q, N]`` of one task's queries, N the number of support classes (labels
        ``0..N-1``). ``loss_fn`` and ``steps`` are accepted for the common signature and
        unused: no gradient steps are taken. Inputs are checked as ``MetaLearner.predict``
        checks them."""
        _check_inputs(self.model, support_x, support_y, query_x)
        if support_y.is_floating_point():
            raise ValueError("support_y must hold integer class labels 0..N-1")
        with torch.no_grad():
            return self.task_logits(support_x, support_y, query_x, int(support_y.max()) + 1)

    def batch_logits(self, batch: Any) -> list[Tensor]:
        """Logits ``[Q, N]`` of every task's queries in ``batch`` (with the gradient graph);
        a learner that ``uses_unlabelled`` also gets the batch's ``unlabelled_x``."""
        b = as_task_batch(batch)
        unlabelled = _unlabelled(batch) if self.uses_unlabelled else None
        ways = int(b.support_y.max()) + 1
        return [
            self.task_logits(
                b.support_x[i], b.support_y[i], b.query_x[i], ways,
                *(() if unlabelled is None else (unlabelled[i],)),
            )
            for i in range(len(b.support_x))
        ]  # fmt: skip

    def meta_loss(
        self, batch: Any, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy
    ) -> Tensor:
        """Mean over the batch's tasks of ``loss_fn(query logits, query labels)``."""
        query_y = as_task_batch(batch).query_y
        losses = [loss_fn(logits, y) for logits, y in zip(self.batch_logits(batch), query_y)]
        return torch.stack(losses).mean()

    def query_logits(self, batch: Any) -> Tensor:
        """Logits ``[T, Q, N]`` of every task's queries (no gradient graph)."""
        with torch.no_grad():
            return torch.stack(self.batch_logits(batch))


class ProtoNet(PrototypeLearner):
    """Prototypical networks (Snell, Swersky and Zemel, "Prototypical Networks for Few-shot
    Learning", NeurIPS 2017): logits are minus squared Euclidean distances from a query's
    embedding to each class's mean support embedding.

    Args:
        model: the encoder (``metarl.nn.Conv4``'s ``embed``: 64 features for 28x28 images).
    """

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        z = self.embed(torch.cat([support_x, query_x]))
        z_support, z_query = z[: len(support_x)], z[len(support_x) :]
        return -squared_distances(z_query, prototypes(z_support, support_y, ways))


class GaussianProtoNet(PrototypeLearner):
    """Gaussian prototypical networks (Fort, "Gaussian Prototypical Networks for Few-Shot
    Learning on Omniglot", 2017).

    The encoder's last ``1`` (``covariance="radius"``) or ``D/2`` (``"diagonal"``) outputs are
    a raw precision estimate, ``s = 1 + softplus(raw)``; the rest, ``D - 1`` or ``D/2``, is the
    embedding. A class's prototype is the precision-weighted mean of its embeddings and its
    precision the sum of theirs; a query's logit for the class is minus
    ``sum_d s_c[d] (z[d] - p_c[d])^2`` (the query's own estimate is not used, as in the
    paper's classification rule).

    Args:
        model: the encoder.
        covariance: ``"radius"`` (one precision per example) or ``"diagonal"``.
    """

    def __init__(self, model: nn.Module, covariance: str = "radius") -> None:
        super().__init__(model)
        if covariance not in ("radius", "diagonal"):
            raise ValueError(f"covariance must be 'radius' or 'diagonal', got {covariance!r}")
        self.covariance = covariance

    def split(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Embeddings and precisions ``s >= 1`` from the encoder's output ``[B, D]``."""
        extra = 1 if self.covariance == "radius" else features.shape[-1] // 2
        if features.shape[-1] - extra < 1:
            raise ValueError(f"the encoder's {features.shape[-1]} outputs leave no embedding")
        z, raw = features[:, :-extra], features[:, -extra:]
        return z, 1 + F.softplus(raw)

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        z, s = self.split(self.embed(torch.cat([support_x, query_x])))
        n = len(support_x)
        centres = prototypes(z[:n], support_y, ways, weights=s[:n])  # [ways, D]
        one_hot = F.one_hot(support_y.long(), ways).to(z.dtype)
        precision = one_hot.t() @ s[:n].expand(n, z.shape[1])  # [ways, D]
        diff = z[n:].unsqueeze(1) - centres.unsqueeze(0)  # [Q, ways, D]
        return -(precision.unsqueeze(0) * diff**2).sum(-1)


class SemiSupervisedProtoNet(PrototypeLearner):
    """Semi-supervised prototypical networks (Ren, Triantafillou, Ravi, Snell, Swersky,
    Tenenbaum, Larochelle and Zemel, "Meta-Learning for Semi-Supervised Few-Shot
    Classification", ICLR 2018): prototypes from the labelled support set, refined by one
    soft k-means step over each task's unlabelled examples (``soft_kmeans_prototypes``).

    With ``distractor_cluster``, a cluster at the origin with a learned length scale takes
    unlabelled examples of classes outside the task (distractors). Batches carry the
    unlabelled examples as ``unlabelled_x [T, U, ...]`` (``EpisodeSampler`` with
    ``unlabelled`` set); without them this is ``ProtoNet``.

    Args:
        model: the encoder.
        distractor_cluster: add the distractor cluster.
    """

    uses_unlabelled = True

    def __init__(self, model: nn.Module, distractor_cluster: bool = False) -> None:
        super().__init__(model)
        self.distractor_cluster = distractor_cluster
        self.log_radius = nn.Parameter(torch.zeros(())) if distractor_cluster else None

    def task_logits(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        ways: int,
        unlabelled_x: Tensor | None = None,
    ) -> Tensor:
        parts = [support_x, query_x] + ([] if unlabelled_x is None else [unlabelled_x])
        z = self.embed(torch.cat(parts))
        n, q = len(support_x), len(query_x)
        centres = prototypes(z[:n], support_y, ways)
        if unlabelled_x is not None and len(unlabelled_x):
            counts = F.one_hot(support_y.long(), ways).sum(0).to(z.dtype)
            radius = None if self.log_radius is None else self.log_radius.exp()
            centres = soft_kmeans_prototypes(centres, counts, z[n + q :], radius)
        return -squared_distances(z[n : n + q], centres)


def _unlabelled(batch: Any) -> Tensor | None:
    if isinstance(batch, dict):
        return batch.get("unlabelled_x")
    return getattr(batch, "unlabelled_x", None)
