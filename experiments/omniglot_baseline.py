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

The data is read from ``--data`` or ``$METARL_DATA/omniglot``. Writes into ``--out``:
``settings.json`` (the command and settings), ``metrics.csv`` (per epoch: loss, validation
accuracy), TensorBoard events under ``<out>/tensorboard``, ``checkpoint.pt`` (and
``checkpoint.prev.pt``; after every epoch, to continue with ``--resume``), ``model.pt`` (the
kept network's state dict and constructor arguments, for ``--init-from`` of
``experiments/omniglot.py``) and ``results.json``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F

from metarl.nn import Conv4
from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.augment import RandomAffine
from metarl.supervised.data.omniglot import (
    split_seed,
    subset_classes,
    with_rotations,
    with_rotations_if_short,
)
from metarl.supervised.evaluate import mean_and_ci95
from metarl.utils import load_checkpoint, save_checkpoint, seed_everything, start_run
from metarl.utils.cli import Check, NonEmpty, Positive, parse_settings

SCRIPT = "experiments/omniglot_baseline.py"
Count = Annotated[int, Positive]
AtLeastTwo = Check(lambda n: n >= 2, "must be >= 2")
# Settings a resumed run may change: how long it trains, its threads (speed only), and where
# its folder and the data are.
RESUME_MAY_CHANGE = ("resume", "overwrite", "epochs", "threads", "out", "data")


@dataclass
class Settings:
    """Train a Conv-4 classifier on all meta-training classes; test it by nearest class mean."""

    ways: Annotated[tuple[int, ...], AtLeastTwo, NonEmpty] = (5, 20)
    """ways of the test episodes, each with each --shots (validation at the first)"""
    shots: Annotated[tuple[int, ...], Positive, NonEmpty] = (1, 5)
    """shots of the test episodes (validation: the first)"""
    epochs: Count = 30  # passes over the meta-training images
    characters: Count | None = None
    """meta-training characters used, drawn from --seed (None: all 183)"""
    batch_size: Count = 128  # images per mini-batch
    lr: Annotated[float, Positive] = 1e-3  # Adam's step size
    augment: Literal["none", "image"] = "image"  # image: a random affine map per training image
    downsample: Literal["maxpool", "stride"] = "maxpool"
    """the Conv-4 variant (those of experiments/omniglot.py)"""
    queries: Count = 15  # per class in validation and test episodes
    val_episodes: Count = 200  # validation episodes (the same ones every epoch)
    test_episodes: Annotated[int, AtLeastTwo] = 600  # Sanskrit test episodes per setting
    seed: int = 0  # seeds the network, the batches and every split's episodes
    data: str | None = None  # folder with the Omniglot zips (None: $METARL_DATA/omniglot)
    threads: Count = 1  # torch threads
    out: str = "experiments/results/omniglot/baseline-seed0"  # run folder
    resume: bool = False  # continue the run in --out from its checkpoint.pt
    overwrite: bool = False  # replace a run already in --out


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
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    try:
        train = load_omniglot("train", s.data)
        val, _ = with_rotations_if_short(load_omniglot("val", s.data), s.ways[0])
        test = load_omniglot("test", s.data)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from err
    if s.characters is not None:  # a data-size measurement: fewer characters, same test
        try:
            train = subset_classes(train, s.characters, s.seed)
        except ValueError as err:
            raise SystemExit(f"--characters {s.characters}: {err}") from err
    train = with_rotations(train)
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
    run = start_run(
        s.out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE, outputs=("model.pt",)
    )
    model_path = run.out / "model.pt"
    best = (-1.0, 0)  # validation accuracy and epoch of the kept network
    with run.interruptible():
        state = run.restore()
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["rng"]
            best = (state["best_val"], state["best_epoch"])
        for done in run.progress(s.epochs, "epochs"):  # epochs done before this one
            epoch = done + 1
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
            mean_loss = float(np.mean(losses))
            run.log(epoch, loss=mean_loss, val_accuracy=val_accuracy, wall_s=run.wall_s)
            run.status(epoch, f"loss {mean_loss:.3f}, val {val_accuracy:.3f}", every=1)
            if val_accuracy > best[0]:
                best = (val_accuracy, epoch)
                save_checkpoint({"model": spec, "state_dict": model.state_dict()}, model_path)
            run.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": rng.bit_generator.state,
                    "best_val": best[0],
                    "best_epoch": best[1],
                },
                epoch,
            )

        model.load_state_dict(load_checkpoint(model_path)["state_dict"])
        tests = {}
        for ways, shots in itertools.product(s.ways, s.shots):
            test_seed = split_seed(s.seed, "test")
            sampler = EpisodeSampler(*test[:2], ways, shots, s.queries, seed=test_seed)
            mean, ci = mean_and_ci95(episode_accuracies(model, sampler, s.test_episodes))
            tests[f"{ways}-way {shots}-shot"] = {"accuracy": mean, "ci95": ci}
            print(f"Sanskrit {ways}-way {shots}-shot: {100 * mean:.2f} +- {100 * ci:.2f}%")
    result = {
        "method": "classifier of all meta-training classes, cosine nearest class mean",
        "test": tests,
        "test_episodes": s.test_episodes,
        "val_accuracy": best[0],
        "best_epoch": best[1],
    }
    written = run.write_results(result)
    run.finish()
    return json.loads(written.read_text())


if __name__ == "__main__":
    main()
