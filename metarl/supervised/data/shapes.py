"""Attribute shapes: a small generated data set for zero-shot classification.

Every class is a combination of four attributes, ``ATTRIBUTES``: shape (circle, square,
triangle, diamond, cross), colour (red, green, blue, yellow, magenta), size (small, large)
and texture (solid, striped, outline): 150 classes. A class is described by its attribute
vector, the concatenated one-hot codes of its four values (15 numbers). Images are 32x32 RGB,
rendered with Pillow: the shape at a random position near the centre, its colour's
brightness jittered, on a dark background with pixel noise.

``make_shapes`` holds out ``unseen`` combinations (seeded) for the zero-shot test, every
attribute value still present among the seen classes, so a test class is new only as a
combination. Nothing is downloaded or stored: the same arguments give the same images.

    data = make_shapes(per_class=20, unseen=30, seed=0)
    data.images[data.labels == c]          # uint8 [20, 3, 32, 32] of class c
    data.attributes[c]                     # its attribute vector, float32 [15]
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond", "cross"),
    "colour": ("red", "green", "blue", "yellow", "magenta"),
    "size": ("small", "large"),
    "texture": ("solid", "striped", "outline"),
}
RGB = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 230),
       "yellow": (230, 210, 40), "magenta": (210, 50, 210)}  # fmt: skip
RADIUS = {"small": 6, "large": 11}
IMAGE_SIZE = 32


class AttributeShapes(NamedTuple):
    """Images ``uint8 [N, 3, 32, 32]``, labels ``[N]``, each class's attribute vector
    ``float32 [C, 15]`` and name, and the ids of the seen and the unseen (held-out) classes."""

    images: np.ndarray
    labels: np.ndarray
    attributes: np.ndarray
    class_names: list[str]
    seen: np.ndarray
    unseen: np.ndarray


def combinations() -> list[tuple[str, ...]]:
    """Every class's (shape, colour, size, texture), in a fixed order."""
    return list(itertools.product(*ATTRIBUTES.values()))


def attribute_vector(combination: tuple[str, ...]) -> np.ndarray:
    """The concatenated one-hot codes of a class's attribute values."""
    codes = [
        np.eye(len(values))[values.index(v)] for v, values in zip(combination, ATTRIBUTES.values())
    ]
    return np.concatenate(codes).astype(np.float32)


def render(
    combination: tuple[str, ...],
    rng: np.random.Generator,
    size: int = IMAGE_SIZE,
    noise: float = 0.0,
) -> np.ndarray:
    """One ``uint8 [3, size, size]`` image of the class ``combination``, with Gaussian pixel
    noise of standard deviation ``noise`` (in 0-255 units) on top."""
    shape, colour, scale, texture = combination
    background = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    r = RADIUS[scale] * size / IMAGE_SIZE
    cx, cy = size / 2 + rng.uniform(-3, 3), size / 2 + rng.uniform(-3, 3)
    box = (cx - r, cy - r, cx + r, cy + r)
    outline = 2 if texture == "outline" else None
    fill = None if outline else 255
    if shape == "circle":
        draw.ellipse(box, fill=fill, outline=255, width=outline or 1)
    elif shape == "square":
        draw.rectangle(box, fill=fill, outline=255, width=outline or 1)
    else:
        points = {
            "triangle": [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)],
            "diamond": [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)],
            "cross": [(cx - r / 3, cy - r), (cx + r / 3, cy - r), (cx + r / 3, cy - r / 3),
                      (cx + r, cy - r / 3), (cx + r, cy + r / 3), (cx + r / 3, cy + r / 3),
                      (cx + r / 3, cy + r), (cx - r / 3, cy + r), (cx - r / 3, cy + r / 3),
                      (cx - r, cy + r / 3), (cx - r, cy - r / 3), (cx - r / 3, cy - r / 3)],
        }[shape]  # fmt: skip
        draw.polygon(points, fill=fill, outline=255, width=outline or 1)
    cover = np.asarray(mask, np.float32) / 255.0
    if texture == "striped":
        rows = np.arange(size)[:, None] + np.zeros((1, size))
        cover = cover * ((rows // 2) % 2 == 0)
    tint = np.array(RGB[colour], np.float32) * rng.uniform(0.8, 1.0)
    image = background * (1 - cover[..., None]) + tint * cover[..., None]
    if noise > 0:
        image = image + rng.normal(0.0, noise, image.shape)
    return image.clip(0, 255).astype(np.uint8).transpose(2, 0, 1)


def make_shapes(
    per_class: int = 20, unseen: int = 30, seed: int = 0, noise: float = 0.0
) -> AttributeShapes:
    """``per_class`` images of every class (pixel ``noise``, see ``render``), and a seeded
    choice of ``unseen`` held-out classes that leaves every attribute value among the seen
    ones."""
    classes = combinations()
    if not 0 < unseen < len(classes) or per_class < 1:
        raise ValueError(f"need 0 < unseen < {len(classes)} and per_class >= 1")
    rng = np.random.default_rng(seed)
    while True:
        held = np.sort(rng.choice(len(classes), unseen, replace=False))
        kept = np.setdiff1d(np.arange(len(classes)), held)
        present = {v for i in kept for v in classes[i]}
        if present == {v for values in ATTRIBUTES.values() for v in values}:
            break
    images = np.stack([render(c, rng, noise=noise) for c in classes for _ in range(per_class)])
    labels = np.repeat(np.arange(len(classes)), per_class)
    attributes = np.stack([attribute_vector(c) for c in classes])
    names = ["/".join(c) for c in classes]
    return AttributeShapes(images, labels, attributes, names, kept, held)
