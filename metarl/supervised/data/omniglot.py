"""Omniglot (Lake et al., 2015): the full data set and the two small background subsets.

The zips hold 105x105 PNGs, black strokes on white, under ``<zip>/<alphabet>/<character>/``.
Three protocols (``load_omniglot(split, protocol=...)``), each with meta-train, meta-val and
meta-test splits that share no character:

- ``"small"`` (the default, the earlier results): the two small background subsets, split by
  alphabet (``SPLITS``); Greek and Latin are in both and are read once.
- ``"vinyals"``: the MAML / prototypical-network protocol. All 1,623 characters of the full
  background and evaluation zips pooled, a permutation seeded by ``protocol_seed`` takes
  1,200 for meta-training (the first ``val_characters`` of them held out as meta-val) and
  leaves 423 for meta-test. Rotations as extra classes: ``with_rotations`` on the train split.
- ``"lake"``: meta-train on the background set's 964 characters (a seeded ``val_characters``
  of them held out as meta-val), meta-test on the evaluation set's 659.

Images are decoded with Pillow, resized, inverted (strokes = 1) and cached as ``.npz`` files
in a user cache directory, so a second load takes seconds.

    images, labels, names = load_omniglot("train")   # uint8 [N, 28, 28], int64 [N], [C]
    test = load_omniglot("test", protocol="vinyals")  # 423 characters x 20 drawings
    x = load_image("some_character.png")              # float [1, 28, 28], what learners take
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from metarl.utils.data import cached_arrays, data_root, file_fingerprint

ZIP_FILES = ("images_background_small1.zip", "images_background_small2.zip")
FULL_ZIP_FILES = ("images_background.zip", "images_evaluation.zip")  # 964 and 659 characters
PROTOCOLS = ("small", "vinyals", "lake")
VINYALS_TRAIN_CHARACTERS = 1200  # meta-train and meta-val together; the other 423 are meta-test
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin", "Japanese_(katakana)"),
    "val": ("Tagalog",),
    "test": ("Sanskrit",),
}
IMAGE_SIZE = 28
SPLIT_SEED_OFFSETS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def split_seed(seed: int, split: str) -> int:
    """Episode seed of ``split`` for a run seeded ``seed``: every script that trains, retests
    or scores a reference on Omniglot draws a split's episodes from this seed, so runs with
    the same seed are scored on the same validation and test episodes."""
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEED_OFFSETS)}")
    return seed + SPLIT_SEED_OFFSETS[split]


class LabelledImages(NamedTuple):
    """Images ``uint8 [N, size, size]`` (strokes 255), labels ``[N]``, and each class's name."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]


def default_root() -> Path:
    """``$METARL_DATA/omniglot`` (``FileNotFoundError`` naming ``--data`` and the variable
    when it is unset)."""
    return data_root(None, "omniglot")


def load_image(file: str | Path | IO[bytes], size: int = IMAGE_SIZE) -> Tensor:
    """One Omniglot PNG as the learners' input: float ``[1, size, size]``, strokes 1, paper 0."""
    return torch.from_numpy(_decode(file, size, name=str(file))).float().div(255).unsqueeze(0)


def load_omniglot(
    split: str,
    root: str | Path | None = None,
    size: int = IMAGE_SIZE,
    use_cache: bool = True,
    protocol: str = "small",
    protocol_seed: int = 0,
    val_characters: int = 100,
) -> LabelledImages:
    """All images of one split (``"train"``, ``"val"`` or ``"test"``) of ``protocol`` (see the
    module docstring), one class per character, labels ``0..C-1`` in sorted name order.

    ``protocol_seed`` and ``val_characters`` apply to the full-data protocols. Raises
    ``FileNotFoundError`` naming a missing zip and ``ValueError`` naming a corrupt zip or
    image.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    root = Path(root) if root is not None else default_root()
    if protocol == "small":
        zips = _existing(root, ZIP_FILES)
        name = f"omniglot-{split}-{size}-{file_fingerprint(zips)}.npz"
        return _cached(name, use_cache, lambda: _read_split(zips, SPLITS[split], size))
    zips = _existing(root, FULL_ZIP_FILES)
    sets = [
        _cached(f"omniglot-full-{path.stem}-{size}-{file_fingerprint([path])}.npz", use_cache,
                lambda path=path: _read_split([path], None, size))
        for path in zips
    ]  # fmt: skip
    chosen = protocol_classes(
        protocol, [len(s.class_names) for s in sets], protocol_seed, val_characters
    )[split]
    return _select(sets, chosen)


def protocol_classes(
    protocol: str, set_sizes: Sequence[int], seed: int = 0, val_characters: int = 100
) -> dict[str, list[tuple[int, int]]]:
    """The characters of each split of a full-data protocol, as ``(set, class)`` pairs
    (set 0: background, 1: evaluation; ``set_sizes`` their character counts), each split
    sorted. Splits never share a character."""
    background = [(0, c) for c in range(set_sizes[0])]
    evaluation = [(1, c) for c in range(set_sizes[1])]
    rng = np.random.default_rng(seed)
    if protocol == "vinyals":
        pooled = background + evaluation
        order = [pooled[i] for i in rng.permutation(len(pooled))]
        train, test = order[:VINYALS_TRAIN_CHARACTERS], order[VINYALS_TRAIN_CHARACTERS:]
    elif protocol == "lake":
        train = [background[i] for i in rng.permutation(len(background))]
        test = evaluation
    else:
        raise ValueError(f"protocol_classes takes 'vinyals' or 'lake', got {protocol!r}")
    if not 0 <= val_characters < len(train):
        raise ValueError(f"val_characters must be in [0, {len(train)}), got {val_characters}")
    return {
        "train": sorted(train[val_characters:]),
        "val": sorted(train[:val_characters]),
        "test": sorted(test),
    }


def _existing(root: Path, names: Sequence[str]) -> list[Path]:
    zips = [root / name for name in names]
    for path in zips:
        if not path.is_file():
            raise FileNotFoundError(
                f"Omniglot zip not found: {path} (pass the folder holding {', '.join(names)} "
                "as root / --data, or set METARL_DATA to the folder above omniglot/)"
            )
    return zips


def _cached(name: str, use_cache: bool, read: Callable[[], LabelledImages]) -> LabelledImages:
    """``read()``, through the ``.npz`` file ``name`` in the cache directory."""

    def arrays() -> dict[str, np.ndarray]:
        images, labels, names = read()
        return {"images": images, "labels": labels, "class_names": np.array(names)}

    data = cached_arrays(name, use_cache, arrays)
    return LabelledImages(data["images"], data["labels"], data["class_names"].tolist())


def _select(sets: Sequence[LabelledImages], chosen: Sequence[tuple[int, int]]) -> LabelledImages:
    """The images of the ``(set, class)`` pairs in ``chosen``, relabelled in that order."""
    images, labels = [], []
    for new, (s, c) in enumerate(chosen):
        rows = sets[s].labels == c
        images.append(sets[s].images[rows])
        labels.append(np.full(int(rows.sum()), new, np.int64))
    names = [sets[s].class_names[c] for s, c in chosen]
    return LabelledImages(np.concatenate(images), np.concatenate(labels), names)


def with_rotations(
    data: LabelledImages, angles: Sequence[int] = (0, 90, 180, 270), mirror: bool = False
) -> LabelledImages:
    """Every (class, angle) as a class of its own: the meta-train augmentation of the MAML paper.

    With ``mirror``, every class's left-right mirror image (and its rotations) is a class of its
    own too: the eight symmetries of the square instead of four, twice the classes.
    """
    if mirror:
        data = LabelledImages(
            np.concatenate([data.images, data.images[:, :, ::-1]]),
            np.concatenate([data.labels, data.labels + len(data.class_names)]),
            [*data.class_names, *(f"{name}-mirror" for name in data.class_names)],
        )
    images, labels, names = [], [], []
    for i, angle in enumerate(angles):
        if angle % 90:
            raise ValueError(f"angles must be multiples of 90, got {angle}")
        images.append(np.rot90(data.images, k=angle // 90, axes=(1, 2)))
        labels.append(data.labels * len(angles) + i)
    for name in data.class_names:
        names.extend(f"{name}/rot{angle}" for angle in angles)
    return LabelledImages(np.concatenate(images), np.concatenate(labels), names)


def subset_classes(data: LabelledImages, count: int, seed: int) -> LabelledImages:
    """``count`` of ``data``'s classes, drawn without replacement from ``seed``, relabelled
    ``0..count-1`` in their original order (for measuring how accuracy grows with the number
    of meta-training characters)."""
    if not 1 <= count <= len(data.class_names):
        raise ValueError(f"count must lie in [1, {len(data.class_names)}], got {count}")
    kept = np.sort(np.random.default_rng(seed).choice(len(data.class_names), count, replace=False))
    relabel = np.full(len(data.class_names), -1)
    relabel[kept] = np.arange(count)
    mask = relabel[data.labels] >= 0
    names = [data.class_names[i] for i in kept]
    return LabelledImages(data.images[mask], relabel[data.labels[mask]], names)


def with_rotations_if_short(data: LabelledImages, ways: int) -> tuple[LabelledImages, bool]:
    """``data`` with its rotations as extra classes if it has fewer classes than ``ways``
    (Tagalog, the meta-validation alphabet, has 17 characters: 20-way episodes need more),
    and whether it did so."""
    short = len(data.class_names) < ways
    return (with_rotations(data) if short else data), short


def alphabet_groups(data: LabelledImages) -> np.ndarray:
    """Group id of every class: its alphabet, and its rotation if ``with_rotations`` made it.

    For ``EpisodeSampler(class_groups=...)``: within-alphabet meta-training episodes.
    """
    keys = []
    for name in data.class_names:
        parts = name.split("/")
        keys.append((parts[0], parts[2] if len(parts) > 2 else ""))
    index = {key: i for i, key in enumerate(sorted(set(keys)))}
    return np.array([index[k] for k in keys])


def _read_split(zips: Sequence[Path], alphabets: Sequence[str] | None, size: int) -> LabelledImages:
    """Every character of ``alphabets`` (None: all) in ``zips``, each read once."""
    files: dict[tuple[str, str, str], tuple[Path, str]] = {}
    for path in zips:
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    parts = member.split("/")
                    if len(parts) != 4 or not parts[3].endswith(".png"):
                        continue
                    if alphabets is None or parts[1] in alphabets:
                        files.setdefault((parts[1], parts[2], parts[3]), (path, member))
        except zipfile.BadZipFile as error:
            raise ValueError(f"corrupt Omniglot zip: {path}") from error
    characters = sorted({(alphabet, character) for alphabet, character, _ in files})
    if not characters:
        wanted = "any alphabet" if alphabets is None else list(alphabets)
        raise ValueError(f"no images of {wanted} in {[str(z) for z in zips]}")
    index = {c: i for i, c in enumerate(characters)}
    keys = sorted(files)
    images = np.empty((len(keys), size, size), np.uint8)
    archives = {path: zipfile.ZipFile(path) for path in zips}
    try:
        for row, key in enumerate(keys):
            path, member = files[key]
            images[row] = _decode(io.BytesIO(archives[path].read(member)), size, f"{path}:{member}")
    finally:
        for archive in archives.values():
            archive.close()
    labels = np.array([index[(a, c)] for a, c, _ in keys], np.int64)
    return LabelledImages(images, labels, [f"{a}/{c}" for a, c in characters])


def _decode(file: str | Path | IO[bytes], size: int, name: str) -> np.ndarray:
    try:
        with Image.open(file) as image:
            gray = image.convert("L").resize((size, size), Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"corrupt or unreadable Omniglot image: {name}") from error
    return 255 - np.asarray(gray, np.uint8)
