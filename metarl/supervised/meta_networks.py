"""Meta Networks (Munkhdalai & Yu, "Meta Networks", ICML 2017).

Two networks, each with slow weights (learned across tasks) and fast weights (generated for
one task from loss gradients by a meta learner):

- the base learner ``b``: an encoder ``f`` and two *augmented* layers, each the sum of a
  slow and a fast path (layer augmentation): ``h = relu(W1 f + c1) + relu(W1* f)``,
  ``logits = W2 h + c2 + W2* h``;
- the representation learner ``u``: an encoder ``g`` and one augmented layer
  ``r = relu(Q g + e) + relu(Q* g)``, whose output keys the memory.

For one task:

1. Representation loss: a contrastive loss on pairs of support embeddings computed with the
   slow weights, ``y_ij d_ij^2 + (1 - y_ij) max(0, margin - d_ij)^2``; its gradient with
   respect to ``Q``, preprocessed as in Andrychowicz et al. (2016), goes through the meta
   learner ``d`` (a coordinate-wise MLP) to give the task's fast weights ``Q*``.
2. Each support example's cross-entropy under the slow base learner gives per-example
   gradients for ``W1`` and ``W2``; the meta learner ``m`` (another coordinate-wise MLP)
   maps them to per-example fast weights, stored in memory under the key ``r_i = u(x_i)``.
3. A query reads its fast weights by attention, ``softmax_i(s cos(r, r_i))`` over the
   memory, and the base learner classifies it with those fast weights.

The meta-objective is the queries' cross-entropy plus ``representation_weight`` times the
representation loss. The gradients fed to the meta learners are treated as inputs (their
own dependence on the slow weights is not differentiated through), as the learned-optimiser
papers do. Differences from the paper: fast weights augment the two layers after the
encoders (the paper augments the convolutional layers too), and ``d`` is an MLP on the mean
gradient rather than an LSTM over the support examples.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import grad, vmap
from torch.nn import functional as F

from metarl.core.learned_optimizer import preprocess
from metarl.core.learners import as_task_batch
from metarl.supervised.prototypes import PrototypeLearner, encode


class CoordinateMLP(nn.Module):
    """A meta learner: maps each coordinate's preprocessed gradient (2 features) through a
    small MLP to that coordinate's fast weight."""

    def __init__(self, hidden: int = 20) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, gradient: Tensor) -> Tensor:
        """Fast weights shaped like ``gradient``."""
        return self.net(preprocess(gradient)).squeeze(-1)


def contrastive_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Mean over distinct pairs of ``y d^2 + (1 - y) max(0, margin - d)^2``, ``d`` the
    Euclidean distance and ``y`` whether the pair shares a label."""
    n = len(embeddings)
    if n < 2:
        raise ValueError("the representation loss needs at least two support examples")
    diff = embeddings.unsqueeze(1) - embeddings.unsqueeze(0)
    d = (diff.pow(2).sum(-1) + 1e-12).sqrt()
    same = (labels.unsqueeze(1) == labels.unsqueeze(0)).to(embeddings.dtype)
    pair_loss = same * d**2 + (1 - same) * F.relu(margin - d) ** 2
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    return pair_loss[off_diagonal].mean()


class MetaNetwork(PrototypeLearner):
    """Meta Networks (see the module docstring); ``predict`` reads fast weights from the
    support set, takes no gradient steps and returns ``[Q, N]`` logits.

    Args:
        model: the base learner's encoder (``metarl.nn.Conv4``'s ``embed``); the
            representation learner gets a copy with its own weights.
        embedding_dim: the encoder's output size.
        ways: output units of the base learner; a task may have at most this many classes
            (the first ``N`` outputs are used).
        hidden: units of the augmented hidden layer of the base learner.
        key_dim: size of the memory keys (the representation learner's output).
        meta_hidden: hidden units of the meta learners ``m`` and ``d``.
        margin: the contrastive loss's margin.
        representation_weight: weight of the representation loss in the meta-objective.
    """

    def __init__(
        self,
        model: nn.Module,
        embedding_dim: int = 64,
        ways: int = 5,
        hidden: int = 64,
        key_dim: int = 64,
        meta_hidden: int = 20,
        margin: float = 1.0,
        representation_weight: float = 1.0,
    ) -> None:
        super().__init__(model)
        if min(embedding_dim, ways, hidden, key_dim, meta_hidden) < 1:
            raise ValueError("embedding_dim, ways, hidden, key_dim and meta_hidden must be >= 1")
        self.embedding_dim, self.ways, self.hidden, self.key_dim = (
            embedding_dim,
            ways,
            hidden,
            key_dim,
        )
        self.meta_hidden, self.margin = meta_hidden, margin
        self.representation_weight = representation_weight
        self.key_encoder = copy.deepcopy(model)
        self.layer1 = nn.Linear(embedding_dim, hidden)
        self.layer2 = nn.Linear(hidden, ways)
        self.key_layer = nn.Linear(embedding_dim, key_dim)
        self.base_meta = CoordinateMLP(meta_hidden)  # m
        self.key_meta = CoordinateMLP(meta_hidden)  # d
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # attention sharpness, starts ~10

    def _slow_loss(self, w1: Tensor, w2: Tensor, f: Tensor, y: Tensor, ways: int) -> Tensor:
        h = F.relu(F.linear(f, w1, self.layer1.bias))
        logits = F.linear(h, w2, self.layer2.bias)[..., :ways]
        return F.cross_entropy(logits.unsqueeze(0), y.unsqueeze(0))

    def support_gradients(self, f: Tensor, y: Tensor, ways: int) -> tuple[Tensor, Tensor]:
        """Per-example gradients of the slow base learner's cross-entropy with respect to
        ``W1`` and ``W2``, for encoder outputs ``f [S, D]`` with labels ``y [S]``:
        ``[S, hidden, D]`` and ``[S, ways_out, hidden]`` (treated as inputs: no graph)."""
        per_example = vmap(grad(self._slow_loss, argnums=(0, 1)), in_dims=(None, None, 0, 0, None))
        return per_example(self.layer1.weight.detach(), self.layer2.weight.detach(), f.detach(),
                           y.long(), ways)  # fmt: skip

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        return self.task_outputs(support_x, support_y, query_x, ways)[0]

    def task_outputs(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> tuple[Tensor, Tensor]:
        """The queries' logits ``[Q, ways]`` and the task's representation loss."""
        if ways > self.ways:
            raise ValueError(
                f"this Meta Network has {self.ways} outputs; the task has {ways} classes"
            )
        n = len(support_x)
        f = self.embed(torch.cat([support_x, query_x]))
        g = encode(self.key_encoder, torch.cat([support_x, query_x]))
        # 1. the task's fast key weights from the representation loss's gradient
        with torch.enable_grad():
            q = self.key_layer.weight.detach().requires_grad_(True)
            slow_keys = F.linear(g[:n].detach(), q, self.key_layer.bias.detach())
            rep_grad = torch.autograd.grad(contrastive_loss(slow_keys, support_y, self.margin), q)[
                0
            ]
        representation = contrastive_loss(self.key_layer(g[:n]), support_y, self.margin)
        q_fast = self.key_meta(rep_grad)
        keys = F.relu(self.key_layer(g)) + F.relu(F.linear(g, q_fast))
        # 2. per-example fast weights of the base learner from its per-example gradients
        g1, g2 = self.support_gradients(f[:n].detach(), support_y, ways)
        fast1, fast2 = self.base_meta(g1), self.base_meta(g2)  # [S, H, D], [S, ways, H]
        # 3. each query reads its fast weights by attention over the support keys
        attention = torch.softmax(
            self.log_scale.exp() * F.cosine_similarity(keys[n:, None], keys[None, :n], dim=-1), -1
        )  # [Q, S]
        w1_fast = torch.einsum("qs,shd->qhd", attention, fast1)
        w2_fast = torch.einsum("qs,soh->qoh", attention, fast2)
        fq = f[n:]
        h = F.relu(self.layer1(fq)) + F.relu(torch.einsum("qhd,qd->qh", w1_fast, fq))
        logits = self.layer2(h) + torch.einsum("qoh,qh->qo", w2_fast, h)
        return logits[:, :ways], representation

    def meta_loss(
        self, batch: Any, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy
    ) -> Tensor:
        """Mean over tasks of the queries' loss plus ``representation_weight`` times the
        representation (contrastive) loss of the support embeddings."""
        b = as_task_batch(batch)
        ways = int(b.support_y.max()) + 1
        losses = []
        for sx, sy, qx, qy in zip(*b):
            logits, representation = self.task_outputs(sx, sy, qx, ways)
            losses.append(loss_fn(logits, qy) + self.representation_weight * representation)
        return torch.stack(losses).mean()
