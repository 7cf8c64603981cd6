"""N-way K-shot episodes over any labelled data set, as batched tensors for the core.

    sampler = EpisodeSampler(images, labels, ways=5, shots=1, queries=15, seed=0)
    batch = sampler.sample(32)   # TaskBatch: support_x [32, 5, ...], query_x [32, 75, ...]

Each episode draws ``ways`` distinct classes, relabels them ``0..ways-1`` in random order,
and draws ``shots + queries`` distinct examples of each. Support and query examples are
grouped by class (``[c0 x K, c1 x K, ...]``). The same seed gives the same episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from metarl.core.learners import TaskBatch


class EpisodeSampler:
    """Few-shot classification episodes from ``data [N, ...]`` with integer ``labels [N]``.

    Args:
        data: examples (a tensor or array; uint8 images are scaled to [0, 1] floats).
        labels: class of each example.
        ways: classes per episode (N).
        shots: support examples per class (K).
        queries: query examples per class (Q).
        seed: seeds the episode stream.
        transform: optional ``f(x, rng) -> x`` applied to each batch of episodes'
            examples ``x [tasks, ways, shots + queries, ...]`` with the sampler's generator
            (e.g. ``metarl.supervised.data.augment.RandomAffine`` for meta-training).
        class_groups: optional group of every class (``class_groups[label]``, e.g. its
            alphabet): each episode then first draws a group uniformly, then its classes
            from that group only (within-alphabet episodes, like a one-alphabet test).
    """

    def __init__(
        self,
        data: Tensor | np.ndarray,
        labels: Tensor | np.ndarray,
        ways: int,
        shots: int,
        queries: int = 15,
        seed: int = 0,
        transform: Callable[[Tensor, np.random.Generator], Tensor] | None = None,
        class_groups: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        data = torch.as_tensor(data)
        self.data = data.float().div(255) if data.dtype == torch.uint8 else data.float()
        if self.data.dim() == 3:  # greyscale images get their channel dimension
            self.data = self.data.unsqueeze(1)
        labels = np.asarray(labels)
        if len(labels) != len(self.data):
            raise ValueError(f"{len(self.data)} examples but {len(labels)} labels")
        if min(ways, shots) < 1 or queries < 0:
            raise ValueError("ways and shots must be >= 1 and queries >= 0")
        self.ways, self.shots, self.queries = ways, shots, queries
        classes, counts = np.unique(labels, return_counts=True)
        usable = classes[counts >= shots + queries]
        if len(usable) < ways:
            raise ValueError(
                f"{ways}-way episodes need {ways} classes with >= {shots + queries} examples; "
                f"the data has {len(usable)}"
            )
        self.classes = usable
        self.groups: list[np.ndarray] | None = None
        if class_groups is not None:
            group_of = np.asarray(class_groups)
            if group_of.ndim != 1 or len(group_of) <= usable.max():
                raise ValueError(f"class_groups needs one group per label (labels go up to "
                                 f"{usable.max()}), got shape {group_of.shape}")  # fmt: skip
            members = [usable[group_of[usable] == g] for g in np.unique(group_of[usable])]
            self.groups = [m for m in members if len(m) >= ways]
            if not self.groups:
                raise ValueError(f"no class group has {ways} classes with enough examples")
        self._members = {c: np.flatnonzero(labels == c) for c in usable}
        self.rng = np.random.default_rng(seed)
        self.transform = transform

    def sample(self, num_tasks: int) -> TaskBatch:
        """``num_tasks`` episodes stacked: ``support_x [T, N*K, ...]``, ``query_y [T, N*Q]``."""
        per_class = self.shots + self.queries
        index = np.empty((num_tasks, self.ways, per_class), np.int64)
        for t in range(num_tasks):
            pool = self.classes
            if self.groups is not None:
                pool = self.groups[self.rng.integers(len(self.groups))]
            chosen = self.rng.choice(pool, self.ways, replace=False)
            for way, c in enumerate(chosen):
                index[t, way] = self.rng.choice(self._members[c], per_class, replace=False)
        x = self.data[torch.from_numpy(index)]  # [T, N, K + Q, ...]
        if self.transform is not None:
            x = self.transform(x, self.rng)
        y = torch.arange(self.ways).view(1, self.ways, 1).expand(num_tasks, -1, per_class)
        k = self.shots
        return TaskBatch(
            support_x=x[:, :, :k].flatten(1, 2),
            support_y=y[:, :, :k].flatten(1, 2),
            query_x=x[:, :, k:].flatten(1, 2),
            query_y=y[:, :, k:].flatten(1, 2),
        )


class SemiSupervisedBatch(NamedTuple):
    """A ``TaskBatch`` plus each task's unlabelled examples ``unlabelled_x [T, U, ...]``."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    unlabelled_x: Tensor


class SemiSupervisedEpisodeSampler(EpisodeSampler):
    """Episodes for semi-supervised few-shot learning (Ren et al., 2018): besides the
    labelled support and the queries, each episode holds ``unlabelled`` more examples of
    each of its classes and, with ``distractors > 0``, ``unlabelled`` examples of each of
    that many other classes, all without labels (``unlabelled_x``, in random order).
    Arguments as for ``EpisodeSampler`` (without ``class_groups``)."""

    def __init__(
        self,
        data: Tensor | np.ndarray,
        labels: Tensor | np.ndarray,
        ways: int,
        shots: int,
        queries: int = 15,
        unlabelled: int = 5,
        distractors: int = 0,
        seed: int = 0,
        transform: Callable[[Tensor, np.random.Generator], Tensor] | None = None,
    ) -> None:
        if unlabelled < 1 or distractors < 0:
            raise ValueError("unlabelled must be >= 1 and distractors >= 0")
        super().__init__(data, labels, ways, shots, queries + unlabelled, seed, transform)
        self.queries, self.unlabelled, self.distractors = queries, unlabelled, distractors
        if len(self.classes) < ways + distractors:
            raise ValueError(
                f"{ways}-way episodes with {distractors} distractor classes need "
                f"{ways + distractors} classes; the data has {len(self.classes)}"
            )

    def sample(self, num_tasks: int) -> SemiSupervisedBatch:
        """``num_tasks`` episodes; ``unlabelled_x [T, (N + distractors) * U, ...]``."""
        n, d, u = self.ways, self.distractors, self.unlabelled
        labelled = self.shots + self.queries
        index = np.empty((num_tasks, n, labelled + u), np.int64)
        extra = np.empty((num_tasks, d, u), np.int64)
        order = np.empty((num_tasks, (n + d) * u), np.int64)
        for t in range(num_tasks):
            chosen = self.rng.choice(self.classes, n + d, replace=False)
            for way, c in enumerate(chosen[:n]):
                index[t, way] = self.rng.choice(self._members[c], labelled + u, replace=False)
            for j, c in enumerate(chosen[n:]):
                extra[t, j] = self.rng.choice(self._members[c], u, replace=False)
            order[t] = self.rng.permutation((n + d) * u)
        x = self.data[torch.from_numpy(index)]  # [T, N, K + Q + U, ...]
        if self.transform is not None:
            x = self.transform(x, self.rng)
        y = torch.arange(n).view(1, n, 1).expand(num_tasks, -1, labelled)
        k = self.shots
        pool = [x[:, :, labelled:].flatten(1, 2)]
        if d:
            others = self.data[torch.from_numpy(extra)]  # [T, D, U, ...]
            if self.transform is not None:
                others = self.transform(others, self.rng)
            pool.append(others.flatten(1, 2))
        unlabelled = torch.cat(pool, 1)
        unlabelled = unlabelled[torch.arange(num_tasks).unsqueeze(1), torch.from_numpy(order)]
        return SemiSupervisedBatch(
            support_x=x[:, :, :k].flatten(1, 2),
            support_y=y[:, :, :k].flatten(1, 2),
            query_x=x[:, :, k:labelled].flatten(1, 2),
            query_y=y[:, :, k:].flatten(1, 2),
            unlabelled_x=unlabelled,
        )
