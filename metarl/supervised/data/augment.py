"""Meta-training augmentation of few-shot episodes: random affine maps and class mixing.

    augment = RandomAffine(per="class", rotation=15, shift=0.1, scale=(0.9, 1.1), shear=10)
    sampler = EpisodeSampler(images, labels, ways=5, shots=1, transform=augment)

``per="class"`` draws one transform for all the images of a class in an episode, so each
episode sees new variants of its characters (a larger class space, like the 90-degree
rotations); ``per="image"`` draws one per image, a drawing-to-drawing variation;
``per="both"`` composes a class draw with a per-image draw of half the ranges. Affine
distortions of this kind are the usual augmentation for Omniglot (Koch et al. 2015, Lake et
al. 2015). ``ClassMix`` makes new classes by superimposing pairs of characters, and
``compose`` chains transforms. The draws come from the sampler's numpy generator, so
episodes stay reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


class RandomAffine:
    """Random rotation, shift, scale and shear of ``x [tasks, ways, per_class, C, H, W]``.

    Args:
        per: ``"class"`` (one transform per class of an episode), ``"image"``, or ``"both"``
            (a class transform followed by a per-image one of half the ranges).
        rotation: maximum rotation in degrees (uniform in +-rotation).
        shift: maximum translation as a fraction of the image size (uniform in +-shift).
        scale: range of the zoom factor.
        shear: maximum shear in degrees.
        elastic: largest displacement of a smooth random warp added to the affine map, in
            ``affine_grid``'s coordinates (2 spans the image; 0.12 is about 1.7 pixels of
            28), drawn like the affine maps (per class, per image, or a class warp plus an
            image warp of half the size): stroke-shape variation the affine maps cannot make
            (Simard et al. 2003 for handwriting). 0 turns it off.
        elastic_cells: the warp is random on a ``cells x cells`` grid, smoothly interpolated.
    """

    def __init__(
        self,
        per: str = "class",
        rotation: float = 15.0,
        shift: float = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        shear: float = 10.0,
        elastic: float = 0.0,
        elastic_cells: int = 4,
    ) -> None:
        if per not in ("class", "image", "both"):
            raise ValueError(f"per must be 'class', 'image' or 'both', got {per!r}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be a range of positive factors, got {scale}")
        if elastic < 0 or elastic_cells < 2:
            raise ValueError(f"need elastic >= 0 and elastic_cells >= 2, got {elastic}, "
                             f"{elastic_cells}")  # fmt: skip
        self.per, self.rotation, self.shift = per, rotation, shift
        self.scale, self.shear = scale, shear
        self.elastic, self.elastic_cells = elastic, elastic_cells

    def matrices(self, n: int, rng: np.random.Generator, share: float = 1.0) -> Tensor:
        """``n`` random ``[2, 3]`` affine matrices in ``affine_grid``'s normalised coordinates,
        drawn from ``share`` of each range (the zoom range shrinks towards 1)."""
        angle = np.deg2rad(rng.uniform(-self.rotation, self.rotation, n) * share)
        shear = np.deg2rad(rng.uniform(-self.shear, self.shear, n) * share)
        zoom = 1 + (rng.uniform(*self.scale, n) - 1) * share
        tx, ty = rng.uniform(-2 * self.shift, 2 * self.shift, (2, n)) * share  # [-1, 1] spans 2
        cos, sin, tan = np.cos(angle), np.sin(angle), np.tan(shear)
        # rotation @ shear, divided by the zoom (the grid samples the input: inverse map)
        a = np.stack([
            np.stack([cos, cos * tan - sin, tx], -1),
            np.stack([sin, sin * tan + cos, ty], -1),
        ], 1) / np.array([zoom, zoom, np.ones(n)]).T[:, None, :]  # fmt: skip
        return torch.from_numpy(a).float()

    def warps(
        self, n: int, size: torch.Size, rng: np.random.Generator, share: float = 1.0
    ) -> Tensor:
        """``n`` smooth displacement fields ``[n, H, W, 2]`` of at most ``share * elastic``."""
        cells = self.elastic_cells
        coarse = rng.uniform(-1, 1, (n, 2, cells, cells)) * (self.elastic * share)
        field = F.interpolate(torch.from_numpy(coarse).float(), size=tuple(size),
                              mode="bilinear", align_corners=True)  # fmt: skip
        return field.permute(0, 2, 3, 1)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        tasks, ways, per_class = x.shape[:3]
        images = x.flatten(0, 2)
        if self.per == "image":
            theta = self.matrices(images.shape[0], rng)
        else:
            theta = self.matrices(tasks * ways, rng).repeat_interleave(per_class, dim=0)
        if self.per == "both":  # jitter the class variant: sample at class(jitter(p))
            jitter = self.matrices(images.shape[0], rng, share=0.5)
            linear, offset = theta[:, :, :2], theta[:, :, 2:]
            theta = linear @ jitter + torch.cat([torch.zeros_like(linear), offset], -1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        if self.elastic > 0:
            size = images.shape[-2:]
            if self.per == "image":
                grid = grid + self.warps(images.shape[0], size, rng)
            else:
                grid = grid + self.warps(tasks * ways, size, rng).repeat_interleave(per_class, 0)
            if self.per == "both":
                grid = grid + self.warps(images.shape[0], size, rng, share=0.5)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # fmt: skip
        return out.view_as(x)


class ClassMix:
    """New meta-training classes from pairs of old ones: superimposed characters.

    With probability ``prob`` each class of an episode is replaced by the pixel-wise maximum
    of its images and those of a partner class (the same way of the next episode in the
    batch, or the next way when the batch holds one episode), image ``j`` with image ``j``:
    strokes of two characters drawn as one. Omniglot characters are compositions of strokes,
    so such composites widen the class space beyond the few meta-training alphabets. Expects
    ``x [tasks, ways, per_class, C, H, W]`` with strokes bright on a dark background.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.prob = prob

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        tasks, ways = x.shape[:2]
        partner = x.roll(1, dims=0) if tasks > 1 else x.roll(1, dims=1)
        mixed = torch.from_numpy(rng.random((tasks, ways)) < self.prob)
        mixed = mixed.view(tasks, ways, *[1] * (x.dim() - 2))
        return torch.where(mixed, torch.maximum(x, partner), x)


Transform = Callable[[Tensor, np.random.Generator], Tensor]


def compose(*transforms: Transform) -> Transform:
    """One episode transform that applies ``transforms`` in order with the same generator."""

    def composed(x: Tensor, rng: np.random.Generator) -> Tensor:
        for transform in transforms:
            x = transform(x, rng)
        return x

    return composed
