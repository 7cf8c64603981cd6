"""Unsupervised meta-learning by clustering to automatically construct tasks (CACTUs; Hsu,
Levine & Finn, ICLR 2019).

Unlabelled meta-training images are embedded by an encoder trained without labels (here
``ConvAutoencoder``); ``cactus_partitions`` runs k-means ``P`` times on the embeddings, each
time with every embedding dimension scaled by a random factor so that the partitions
differ; ``PartitionEpisodeSampler`` turns them into few-shot episodes: draw a partition,
then ``ways`` of its clusters with enough members, then support and query images from each
cluster. Any meta-learner is then meta-trained on those episodes as if they were labelled.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.core.learners import TaskBatch
from metarl.supervised.episodes import EpisodeSampler


def kmeans(
    x: Tensor, clusters: int, iterations: int = 20, generator: torch.Generator | None = None
) -> Tensor:
    """Lloyd's k-means on ``x [N, D]`` from a k-means++ start (each new centre drawn with
    probability proportional to the squared distance to the nearest chosen one); the cluster
    of every point ``[N]``. An emptied cluster is re-seeded at the point farthest from its
    centre."""
    if not 1 <= clusters <= len(x):
        raise ValueError(f"clusters must be in 1..{len(x)}, got {clusters}")
    first = int(torch.randint(len(x), (), generator=generator))
    chosen = [first]
    nearest = (x - x[first]).pow(2).sum(1)
    for _ in range(clusters - 1):
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        pick = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(pick)
        nearest = torch.minimum(nearest, (x - x[pick]).pow(2).sum(1))
    centres = x[chosen].clone()
    assign = torch.zeros(len(x), dtype=torch.long)
    for _ in range(iterations):
        distances = torch.cdist(x, centres)
        assign = distances.argmin(1)
        counts = torch.bincount(assign, minlength=clusters)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        centres = sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype)
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            far = distances.gather(1, assign[:, None]).squeeze(1).argmax()
            centres[empty] = x[far]
    return torch.cdist(x, centres).argmin(1)


def cactus_partitions(
    embeddings: Tensor,
    partitions: int,
    clusters: int,
    iterations: int = 20,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """``partitions`` k-means clusterings ``[P, N]`` of ``embeddings [N, D]``, the first on
    the embeddings as they are, each later one on the embeddings with every dimension scaled
    by a factor drawn uniformly from [0, 1] (CACTUs' way to make the partitions differ)."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    out = np.empty((partitions, len(embeddings)), np.int64)
    for p in range(partitions):
        dims = embeddings.shape[1]
        scale = torch.ones(dims) if p == 0 else torch.rand(dims, generator=generator)
        out[p] = kmeans(embeddings * scale, clusters, iterations, generator).numpy()
    return out


class PartitionEpisodeSampler:
    """Episodes whose classes are clusters of one randomly drawn partition.

    Args:
        data: images ``[N, ...]`` (uint8 scaled to [0, 1], as ``EpisodeSampler`` does); all
            partitions share one copy.
        partitions: cluster of every image in every partition, ``[P, N]``.
        ways, shots, queries: as for ``EpisodeSampler``; a partition contributes only its
            clusters with at least ``shots + queries`` members, and a partition with fewer
            than ``ways`` such clusters is skipped (an error if none is left).
        seed: seeds the episode stream.
    """

    def __init__(
        self,
        data: Tensor | np.ndarray,
        partitions: np.ndarray,
        ways: int,
        shots: int,
        queries: int = 15,
        seed: int = 0,
    ) -> None:
        data = torch.as_tensor(data)
        data = data.float().div(255) if data.dtype == torch.uint8 else data.float()
        if data.dim() == 3:
            data = data.unsqueeze(1)
        partitions = np.asarray(partitions)
        if partitions.ndim != 2 or partitions.shape[1] != len(data):
            raise ValueError(f"partitions must be [P, {len(data)}], got {partitions.shape}")
        self.samplers = []
        for p, labels in enumerate(partitions):
            try:
                self.samplers.append(EpisodeSampler(data, labels, ways, shots, queries,
                                                    seed=seed * 100_003 + p))  # fmt: skip
            except ValueError:
                continue  # too few clusters large enough for these episodes
        if not self.samplers:
            raise ValueError(f"no partition has {ways} clusters of >= {shots + queries} images")
        self.ways, self.shots, self.queries = ways, shots, queries
        self.rng = np.random.default_rng(seed)

    def rng_state(self) -> dict:
        """The random state of the episode stream (for checkpoints)."""
        return {"chooser": self.rng.bit_generator.state,
                "partitions": [p.rng.bit_generator.state for p in self.samplers]}  # fmt: skip

    def set_rng_state(self, state: dict) -> None:
        """Continue the episode stream from ``rng_state()``."""
        if len(state["partitions"]) != len(self.samplers):
            raise ValueError(f"the state has {len(state['partitions'])} partitions, this "
                             f"sampler {len(self.samplers)}")  # fmt: skip
        self.rng.bit_generator.state = state["chooser"]
        for sampler, one in zip(self.samplers, state["partitions"]):
            sampler.rng.bit_generator.state = one

    def sample(self, num_tasks: int) -> TaskBatch:
        """``num_tasks`` episodes, each from a partition drawn uniformly (as
        ``EpisodeSampler.sample``)."""
        parts = [self.samplers[self.rng.integers(len(self.samplers))].sample(1)
                 for _ in range(num_tasks)]  # fmt: skip
        return TaskBatch(*(torch.cat(field) for field in zip(*parts)))


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder for ``size x size`` greyscale images (``size`` divisible
    by 4): three 3x3 convolutions (32, 64, 128 channels; the last two of stride 2) and a
    linear map to a ``code``-dimensional embedding; the decoder mirrors it and outputs
    logits of the pixel intensities."""

    def __init__(self, size: int = 28, code: int = 256) -> None:
        super().__init__()
        if size % 4 or size < 4 or code < 1:
            raise ValueError(
                f"size must be a positive multiple of 4 and code >= 1, got {size}, {code}"
            )
        self.size, self.code = size, code
        side = size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(128 * side * side, code),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(code, 128 * side * side), nn.ReLU(), nn.Unflatten(1, (128, side, side)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 1, 3, padding=1),
        )  # fmt: skip

    def encode(self, x: Tensor) -> Tensor:
        """Embeddings ``[B, code]`` of images ``[B, 1, size, size]`` in [0, 1]."""
        return self.encoder(x)

    def loss(self, x: Tensor) -> Tensor:
        """Reconstruction loss: binary cross-entropy per pixel, averaged."""
        return F.binary_cross_entropy_with_logits(self.decoder(self.encode(x)), x)
