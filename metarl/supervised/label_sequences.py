"""Episodes where each label arrives one step late (Santoro et al., ICML 2016).

An episode shows ``instances`` drawings of each of ``ways`` characters in random order, with
labels ``0..ways-1`` assigned to the characters afresh each episode. The input at step ``t``
is image ``x_t`` beside the one-hot label of step ``t - 1`` (zeros at ``t = 0``), and the
target is ``x_t``'s label, so the first drawing of a character can only be guessed and later
ones must be bound to a label seen earlier in the same episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class LabelSequenceSampler:
    """Batches of delayed-label episodes from labelled images.

    Args:
        images: ``[N, H, W]`` (any dtype; scaled by ``scale``).
        labels: ``[N]`` class of each image.
        ways: characters per episode (5 in the paper).
        instances: drawings of each character per episode (10 in the paper).
        rotate: give each sampled character a random multiple of 90 degrees (rotated
            characters act as new classes: the paper's augmentation, for meta-training).
        scale: factor on the pixel values.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        ways: int = 5,
        instances: int = 10,
        rotate: bool = False,
        scale: float = 1 / 255,
    ):
        if ways < 1 or instances < 1:
            raise ValueError(f"ways and instances must be >= 1, got {ways}, {instances}")
        self.images = torch.as_tensor(np.asarray(images, dtype=np.float32) * scale)
        labels = np.asarray(labels)
        self.by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        few = min(len(rows) for rows in self.by_class)
        if len(self.by_class) < ways or few < instances:
            raise ValueError(
                f"{len(self.by_class)} classes with at least {few} images each "
                f"cannot make {ways}-way episodes of {instances} instances"
            )
        self.ways, self.instances, self.rotate = ways, instances, rotate

    @property
    def input_size(self) -> int:
        """Features per step: the flattened image and the previous label."""
        return self.images[0].numel() + self.ways

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(inputs [T, B, pixels + ways], targets [T, B], instance [T, B])`` with
        ``T = ways * instances``; ``instance[t, b]`` counts how many drawings of the target's
        character episode ``b`` showed before step ``t`` (0 for the first)."""
        steps = self.ways * self.instances
        images, targets = [], []
        for _ in range(batch):
            classes = torch.randperm(len(self.by_class), generator=generator)[: self.ways]
            order = torch.randperm(steps, generator=generator)
            label = (torch.arange(steps) // self.instances)[order]
            rows = []
            for c in classes.tolist():
                pick = torch.randperm(len(self.by_class[c]), generator=generator)[: self.instances]
                drawn = self.images[self.by_class[c][pick.numpy()]]
                if self.rotate:
                    turns = int(torch.randint(4, (), generator=generator))
                    drawn = torch.rot90(drawn, turns, (1, 2))
                rows.append(drawn)
            images.append(torch.cat(rows)[order].flatten(1))
            targets.append(label)
        x = torch.stack(images, 1)
        y = torch.stack(targets, 1)
        previous = torch.zeros(steps, batch, self.ways)
        previous[1:] = torch.nn.functional.one_hot(y[:-1], self.ways).float()
        return torch.cat([x, previous], -1), y, instance_numbers(y, self.ways)


def instance_numbers(targets: Tensor, ways: int) -> Tensor:
    """For ``targets [T, B]``, how many earlier steps of the same episode had the same label."""
    one_hot = torch.nn.functional.one_hot(targets, ways)
    seen_before = one_hot.cumsum(0) - one_hot
    return seen_before.gather(-1, targets[..., None])[..., 0]


def instance_accuracy(
    logits: Tensor, targets: Tensor, instance: Tensor, which: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """For each 1-based instance number ``k`` in ``which``: (correct, total) predictions on
    the ``k``-th drawing of a character in its episode."""
    correct = logits.argmax(-1) == targets
    return {k: (int(correct[instance == k - 1].sum()), int((instance == k - 1).sum()))
            for k in which}  # fmt: skip
