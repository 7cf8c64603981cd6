"""Random affine distortions of few-shot episodes (meta-training augmentation).

    augment = RandomAffine(per="class", rotation=15, shift=0.1, scale=(0.9, 1.1), shear=10)
    sampler = EpisodeSampler(images, labels, ways=5, shots=1, transform=augment)

``per="class"`` draws one transform for all the images of a class in an episode, so each
episode sees new variants of its characters (a larger class space, like the 90-degree
rotations); ``per="image"`` draws one per image, a drawing-to-drawing variation;
``per="both"`` composes a class draw with a per-image draw of half the ranges. Affine
distortions of this kind are the usual augmentation for Omniglot (Koch et al. 2015, Lake et
al. 2015). The draws come from the sampler's numpy generator, so episodes stay reproducible.
"""

from __future__ import annotations

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
    """

    def __init__(
        self,
        per: str = "class",
        rotation: float = 15.0,
        shift: float = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        shear: float = 10.0,
    ) -> None:
        if per not in ("class", "image", "both"):
            raise ValueError(f"per must be 'class', 'image' or 'both', got {per!r}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be a range of positive factors, got {scale}")
        self.per, self.rotation, self.shift = per, rotation, shift
        self.scale, self.shear = scale, shear

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
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # fmt: skip
        return out.view_as(x)
