"""A non-episodic reference for the Omniglot split: one classifier over all meta-training classes.

How high can few-shot accuracy on the Sanskrit test go with this machine's six meta-training
alphabets? This script gives a reference that does not use episodes at all (a classifier
trained on the base classes, as the baseline of Chen et al., "A Closer Look at Few-shot
Classification", ICLR 2019, scored by nearest class mean as in SimpleShot, Wang et al. 2019):
a Conv-4 is trained as an ordinary classifier of all 732 meta-training classes
(183 characters x 4 rotations) with Adam, per-image random affine maps and mini-batches of
``--batch-size`` images; a test episode is then classified by the cosine similarity of each
query's features to the mean features of each class's support images. Support and queries
of an episode go through the network in one batch (batch statistics, transductive like the
meta-learners' tests). The epoch kept is the one with the best 5-way 1-shot accuracy on the
same 200 Tagalog episodes the meta-learners validate on; it is tested on the same 600
Sanskrit episodes of each of the four settings (5/20-way, 1/5-shot; seeds as in
``experiments/omniglot.py``).

    python experiments/omniglot_baseline.py --seed 0 \\
        --out experiments/results/omniglot/baseline-seed0

``--characters N`` trains on N of the 183 meta-training characters (drawn from the seed)
to measure how the test accuracy grows with the size of the meta-training set; pass
``--epochs`` scaled by 183/N to keep the number of optimiser steps.

Writes ``<out>/metrics.csv`` (per epoch: loss, validation accuracy), ``<out>/model.pt`` (the
kept network's state dict and constructor arguments) and ``<out>/results.json``.
"""

from __future__ import annotations

import itertools
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.augment import RandomAffine
from metarl.supervised.data.omniglot import (
    split_seed,
    subset_classes,
    with_rotations,
    with_rotations_if_short,
)
from metarl.supervised.evaluate import mean_and_ci95
from metarl.supervised.models import Conv4
from metarl.utils import CSVLogger, load_checkpoint, save_checkpoint, seed_everything
from metarl.utils.cli import parse_settings


@dataclass
class Settings:
    """Train a Conv-4 classifier on all meta-training classes; test it by nearest class mean."""

    ways: tuple[int, ...] = (5, 20)  # tested at each of these ways and shots; validated at the
    shots: tuple[int, ...] = (1, 5)  # first of each
    epochs: int = 30
    characters: int | None = None  # meta-training characters used (drawn from --seed); None: all
    batch_size: int = 128
    lr: float = 1e-3
    augment: str = "image"  # none | image: a random affine map per training image
    downsample: str = "maxpool"  # maxpool | stride (the Conv-4 variants of experiments/omniglot.py)
    queries: int = 15
    val_episodes: int = 200
    test_episodes: int = 600
    seed: int = 0
    data: str | None = None
    threads: int = 1
    out: str = "experiments/results/omniglot/baseline-seed0"


def episode_accuracies(model: Conv4, sampler: EpisodeSampler, episodes: int) -> torch.Tensor:
    """Accuracy of nearest-class-mean (cosine) classification on each of ``episodes`` episodes."""
    accuracies = []
    with torch.no_grad():
        for _ in range(episodes):
            sx, sy, qx, qy = (t[0] for t in sampler.sample(1))
            features = F.normalize(model.embed(torch.cat([sx, qx])), dim=1)
            support, query = features[: len(sx)], features[len(sx) :]
            # per-class sums: once normalised, the same direction as the class means
            sums = torch.zeros(sampler.ways, support.shape[1]).index_add_(0, sy, support)
            logits = query @ F.normalize(sums, dim=1).T
            accuracies.append((logits.argmax(1) == qy).float().mean())
    return torch.stack(accuracies)


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    if s.augment not in ("none", "image"):
        raise SystemExit(f"--augment must be none or image, got {s.augment!r}")
    if min(s.epochs, s.batch_size) < 1:
        raise SystemExit("--epochs and --batch-size must be at least 1")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)

    train = load_omniglot("train", s.data)
    if s.characters is not None:  # a data-size measurement: fewer characters, same test
        train = subset_classes(train, s.characters, s.seed)
    train = with_rotations(train)
    val, _ = with_rotations_if_short(load_omniglot("val", s.data), s.ways[0])
    test = load_omniglot("test", s.data)
    images = torch.from_numpy(train.images).float().div(255).unsqueeze(1)  # [N, 1, 28, 28]
    labels = torch.from_numpy(train.labels).long()
    classes = len(train.class_names)
    val_seed = split_seed(s.seed, "val")
    val_sampler = EpisodeSampler(*val[:2], s.ways[0], s.shots[0], s.queries, seed=val_seed)

    spec = {"ways": classes, "downsample": s.downsample}
    model = Conv4(**spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    augment = RandomAffine(per="image") if s.augment == "image" else None
    rng = np.random.default_rng(s.seed)
    log = CSVLogger(out / "metrics.csv")
    best = (-1.0, 0)
    start = time.perf_counter()
    for epoch in tqdm(range(1, s.epochs + 1), desc="epochs"):
        model.train()
        order = torch.from_numpy(rng.permutation(len(labels)))
        losses = []
        for batch in order.split(s.batch_size):
            x = images[batch]
            if augment is not None:
                x = augment(x.view(1, len(batch), 1, *x.shape[1:]), rng).view_as(x)
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val_sampler.rng = np.random.default_rng(val_seed)  # the same episodes every epoch
        val_accuracy = episode_accuracies(model, val_sampler, s.val_episodes).mean().item()
        log.log({"step": epoch, "loss": float(np.mean(losses)), "val_accuracy": val_accuracy,
                 "wall_s": time.perf_counter() - start})  # fmt: skip
        if val_accuracy > best[0]:
            best = (val_accuracy, epoch)
            save_checkpoint({"model": spec, "state_dict": model.state_dict()}, out / "model.pt")
    train_wall = time.perf_counter() - start

    model.load_state_dict(load_checkpoint(out / "model.pt")["state_dict"])
    tests = {}
    for ways, shots in itertools.product(s.ways, s.shots):
        sampler = EpisodeSampler(*test[:2], ways, shots, s.queries, seed=split_seed(s.seed, "test"))
        mean, ci = mean_and_ci95(episode_accuracies(model, sampler, s.test_episodes))
        tests[f"{ways}-way {shots}-shot"] = {"accuracy": mean, "ci95": ci}
        print(f"Sanskrit {ways}-way {shots}-shot: {100 * mean:.2f} +- {100 * ci:.2f}%")
    cli_args = sys.argv[1:] if argv is None else argv
    result = {
        "method": "classifier of all meta-training classes, cosine nearest class mean",
        "test": tests,
        "test_episodes": s.test_episodes,
        "val_accuracy": best[0],
        "best_epoch": best[1],
        "train_wall_s": train_wall,
        "settings": asdict(s),
        "command": "python experiments/omniglot_baseline.py " + shlex.join(cli_args),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
