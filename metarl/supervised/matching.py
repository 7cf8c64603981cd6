"""Matching networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu and Wierstra, "Matching
Networks for One Shot Learning", NeurIPS 2016).

A query's class distribution is an attention-weighted sum of the support labels, the
attention a softmax over cosine similarities between the query's and each support
example's embedding. With full context embeddings (``fce=True``) both embeddings depend on
the whole support set: the support embeddings pass through a bidirectional LSTM (its two
outputs added to the embedding), and the query embedding is refined by an LSTM that reads
the support set by attention for ``processing_steps`` steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.supervised.prototypes import PrototypeLearner


class MatchingNet(PrototypeLearner):
    """Matching networks; ``predict`` and ``meta_loss`` as for every metric learner, the
    logits being the log of the attention-weighted label distribution.

    Args:
        model: the encoder (``metarl.nn.Conv4``'s ``embed``: 64 features for 28x28 images).
        embedding_dim: the encoder's output size (needed for the LSTMs of ``fce``).
        fce: full context embeddings.
        processing_steps: attention-LSTM steps of the query embedding (``fce`` only).
    """

    def __init__(
        self,
        model: nn.Module,
        embedding_dim: int = 64,
        fce: bool = False,
        processing_steps: int = 5,
    ) -> None:
        super().__init__(model)
        if embedding_dim < 1 or processing_steps < 1:
            raise ValueError("embedding_dim and processing_steps must be >= 1")
        self.fce, self.processing_steps = fce, processing_steps
        if fce:
            self.support_lstm = nn.LSTM(embedding_dim, embedding_dim, bidirectional=True)
            self.query_lstm = nn.LSTMCell(2 * embedding_dim, embedding_dim)

    def contextual_support(self, g: Tensor) -> Tensor:
        """Support embeddings ``[S, D]`` in the context of each other: the embedding plus
        the forward and backward outputs of the bidirectional LSTM over the support set."""
        out, _ = self.support_lstm(g.unsqueeze(1))  # [S, 1, 2D]
        forward, backward = out.squeeze(1).chunk(2, -1)
        return g + forward + backward

    def contextual_query(self, f: Tensor, g: Tensor) -> Tensor:
        """Query embeddings ``[Q, D]`` refined by attention over the support ``g [S, D]``:
        ``h_k = LSTM([f, r_{k-1}], (h_{k-1}, c_{k-1})) + f`` with the read
        ``r_k = softmax(h_k g^T) g``."""
        h, c = f, torch.zeros_like(f)
        read = torch.zeros_like(f)
        for _ in range(self.processing_steps):
            h, c = self.query_lstm(torch.cat([f, read], -1), (h, c))
            h = h + f
            read = (h @ g.t()).softmax(-1) @ g
        return h

    def task_logits(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, ways: int
    ) -> Tensor:
        z = self.embed(torch.cat([support_x, query_x]))
        g, f = z[: len(support_x)], z[len(support_x) :]
        if self.fce:
            g = self.contextual_support(g)
            f = self.contextual_query(f, g)
        attention = (F.normalize(f, dim=-1) @ F.normalize(g, dim=-1).t()).softmax(-1)  # [Q, S]
        probabilities = attention @ F.one_hot(support_y.long(), ways).to(attention.dtype)
        return probabilities.clamp_min(1e-8).log()
