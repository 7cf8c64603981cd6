"""CACTUs: k-means, partitions turned into episodes, and a learner meta-trained on clusters
of unlabelled data classifying labelled held-out classes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import metarl
from helpers import query_accuracy
from metarl.nn import MLP
from metarl.supervised.cactus import (
    ConvAutoencoder,
    PartitionEpisodeSampler,
    cactus_partitions,
    kmeans,
)
from metarl.supervised.episodes import EpisodeSampler


def blobs(classes: int, per_class: int, dim: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(classes, 1, dim, generator=g)
    x = centres + 0.3 * torch.randn(classes, per_class, dim, generator=g)
    return x.flatten(0, 1), np.repeat(np.arange(classes), per_class)


def test_kmeans_recovers_well_separated_blobs():
    x, labels = blobs(6, 30, 4, seed=0)
    found = kmeans(x, 6, generator=torch.Generator().manual_seed(0)).numpy()
    pairs = {(a, b) for a, b in zip(labels, found)}
    assert len(pairs) == 6  # one found cluster per blob and one blob per cluster
    with pytest.raises(ValueError, match="clusters"):
        kmeans(x, 0)


def test_partitions_differ_and_each_episode_comes_from_one_partition():
    x, _ = blobs(10, 12, 6, seed=1)
    parts = cactus_partitions(x, 4, 15, generator=torch.Generator().manual_seed(0))
    assert parts.shape == (4, 120) and parts.max() < 15
    assert any(not np.array_equal(parts[0], p) for p in parts[1:])
    episodes = PartitionEpisodeSampler(x, parts, ways=3, shots=2, queries=2, seed=0)
    batch = episodes.sample(8)
    assert batch.support_x.shape == (8, 6, 6) and batch.query_y.shape == (8, 6)
    row_of = {tuple(v.tolist()): i for i, v in enumerate(x)}
    for t in range(8):
        rows = [
            row_of[tuple(v.tolist())] for v in torch.cat([batch.support_x[t], batch.query_x[t]])
        ]
        labels = torch.cat([batch.support_y[t], batch.query_y[t]]).tolist()
        consistent = [p for p in parts if all(
            (p[rows[i]] == p[rows[j]]) == (labels[i] == labels[j])
            for i in range(len(rows)) for j in range(len(rows)))]  # fmt: skip
        assert consistent  # some partition's clusters are exactly this episode's classes


def test_the_episode_stream_resumes_from_its_state():
    x, _ = blobs(10, 12, 6, seed=1)
    parts = cactus_partitions(x, 3, 10, generator=torch.Generator().manual_seed(0))
    a = PartitionEpisodeSampler(x, parts, ways=3, shots=1, queries=1, seed=0)
    a.sample(5)
    state = a.rng_state()
    expected = a.sample(4)
    b = PartitionEpisodeSampler(x, parts, ways=3, shots=1, queries=1, seed=7)
    b.set_rng_state(state)
    for mine, theirs in zip(b.sample(4), expected):
        assert torch.equal(mine, theirs)
    with pytest.raises(ValueError, match="no partition"):
        PartitionEpisodeSampler(x, parts, ways=3, shots=30, queries=30)


def test_autoencoder_shapes_and_learning():
    torch.manual_seed(0)
    model = ConvAutoencoder(size=8, code=5)
    images = (torch.rand(16, 1, 8, 8) > 0.7).float()
    assert model.encode(images).shape == (16, 5)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = model.loss(images).item()
    for _ in range(100):
        loss = model.loss(images)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(images).item() < 0.8 * before
    with pytest.raises(ValueError, match="multiple of 4"):
        ConvAutoencoder(size=10)


def test_protonet_meta_trained_on_clusters_classifies_new_labelled_classes():
    torch.manual_seed(0)
    x, labels = blobs(60, 10, 8, seed=2)
    train_x, test_x, test_y = x[:400], x[400:], labels[400:] - 40
    parts = cactus_partitions(train_x, 5, 40, generator=torch.Generator().manual_seed(0))
    episodes = PartitionEpisodeSampler(train_x, parts, ways=5, shots=1, queries=3, seed=0)
    learner = metarl.make_learner("protonet", MLP(8, 16, hidden=(32,)))
    test = EpisodeSampler(test_x, test_y, ways=5, shots=1, queries=5, seed=1).sample(100)
    before = query_accuracy(learner, test)
    opt = torch.optim.Adam(learner.parameters(), lr=3e-3)
    for _ in range(200):
        loss = learner.meta_loss(episodes.sample(4), F.cross_entropy)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = query_accuracy(learner, test)
    assert after > 0.9 and after > before, (before, after)  # chance: 0.2
