"""Few-shot classification with the metric-based learners: prototypical networks (plain,
Gaussian, semi-supervised), matching networks (with and without full context embeddings),
relation networks, Siamese networks (trained on the verification pairs of the same
episodes), Meta Networks (``metanet``: fast weights generated from loss gradients, read by
attention; its base learner gets as many outputs as the widest training or test episode),
and ``nearest-neighbour`` (no training: each query takes the class of the
nearest support example in raw feature space in one-shot episodes, of the nearest class
mean in few-shot ones), the non-meta reference.

``--dataset spoken_words``: the spoken-words clips as 40 x 40 log-mel spectrograms
(``metarl.supervised.data.spoken_words``; 30 words to meta-train, 5 to validate, 15 to test;
test grid 5-way and 15-way, 1-shot and 5-shot).

``--dataset omniglot`` (the default): the full Omniglot under ``--protocol vinyals`` (all
1,623 characters, a seeded split of 1,200 for meta-training with a validation share of
``--val-characters``, 423 for the test; rotations by 90/180/270 degrees as extra
meta-training classes) or ``lake`` (background set to meta-train, evaluation set to test).

Encoder: Conv-4 (64 channels, 3x3 convolutions, norm, ReLU, 2x2 max-pooling: a 64-feature
embedding of a 28x28 image, 256 of a 40x40 spectrogram). Training after Snell et al.
(2017): episodes of ``--train-ways`` classes (60 in the paper) with ``--train-shots``
support and ``--train-queries`` query examples per class, Adam at 1e-3 halved every
``--halve-every`` episodes. The learner kept is the one with the best accuracy on fixed
``--ways``-way ``--shots``-shot validation episodes; it is then scored on
``--test-episodes`` test episodes of each cell of the grid, with 95% intervals (queries:
``--queries`` per class).

    python experiments/metric_fewshot.py --learner protonet --shots 1 --seed 0
    python experiments/metric_fewshot.py --learner protonet --shots 1 --seed 0 --resume
    python experiments/metric_fewshot.py --dataset spoken_words --learner nearest-neighbour

Semi-supervised episodes (Ren et al., 2018): ``--unlabelled M`` adds M unlabelled examples
of each class to every episode (training, validation and test), ``--distractors H`` M more
of each of H classes outside the episode; ``semisupervised-protonet`` refines its
prototypes with them (``--distractor-cluster``: and a cluster for the distractors), every
other learner ignores them.

``--norm group`` (the default) normalises each example on its own, so a query's class never
depends on the other queries; ``--norm batch`` takes the statistics of each episode's
examples together (transductive, as MAML's batch-statistics network). Writes into ``--out``:
``settings.json``, ``metrics.csv`` and TensorBoard events, ``checkpoint.pt`` (resume with
``--resume``; a larger ``--episodes`` trains a finished run longer), ``learner.pt`` (the
best on validation, for ``metarl.load_learner``), ``learning_curve.png`` and
``results.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from torch.nn import Flatten

import metarl
from metarl.nn import Conv4, Conv4Maps
from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.omniglot import split_seed, with_rotations
from metarl.supervised.data.spoken_words import load_spoken_words
from metarl.supervised.episodes import SemiSupervisedEpisodeSampler
from metarl.supervised.evaluate import mean_and_ci95, metric_accuracies
from metarl.supervised.prototypes import PrototypeLearner
from metarl.utils import load_checkpoint, seed_everything, start_run
from metarl.utils.cli import Positive, parse_settings
from metarl.utils.data import data_root
from metarl.utils.run import plot_curves

SCRIPT = "experiments/metric_fewshot.py"
Count = Annotated[int, Positive]
MetricLearner = Literal[
    "protonet", "gaussian-protonet", "semisupervised-protonet", "matching", "matching-fce",
    "relation", "siamese", "metanet", "nearest-neighbour",
]  # fmt: skip
# (ways, shots) of the test grid: Omniglot's published table's columns; 15 test words
TEST_GRID = {
    "omniglot": ((5, 1), (5, 5), (20, 1), (20, 5)),
    "spoken_words": ((5, 1), (5, 5), (15, 1), (15, 5)),
}
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "episodes", "test_episodes")


@dataclass
class Settings:
    """Meta-train a prototype learner on Omniglot and score it on the standard grid."""

    learner: MetricLearner = "protonet"  # the metric learner (or the reference)
    dataset: Literal["omniglot", "spoken_words"] = "omniglot"  # the data (module docstring)
    covariance: Literal["radius", "diagonal"] = "radius"  # gaussian-protonet's estimate
    unlabelled: int = 0
    """unlabelled examples per class in every episode (0: none; semi-supervised episodes)"""
    distractors: int = 0  # classes outside each episode that add unlabelled examples
    distractor_cluster: bool = False  # semisupervised-protonet: the distractor cluster
    protocol: Literal["vinyals", "lake"] = "vinyals"  # the character split (module docstring)
    protocol_seed: int = 0  # seeds the character split
    val_characters: Count = 100  # meta-training characters held out for validation
    ways: Count = 5  # validation episodes' classes
    shots: Count = 1  # validation episodes' support examples per class (and training's)
    train_ways: Count = 60  # classes per training episode (Snell et al.: 60)
    train_shots: int | None = None  # support examples per class in training (None: --shots)
    train_queries: Count = 5  # query examples per class in training
    queries: Count = 15  # query examples per class in validation and test episodes
    episodes: Count = 20_000  # training episodes
    lr: Annotated[float, Positive] = 1e-3  # Adam's learning rate
    halve_every: Count = 2_000  # episodes between halvings of the learning rate
    channels: Count = 64  # Conv-4 width
    norm: Literal["group", "batch", "none"] = "group"  # normalisation in the Conv-4 blocks
    val_every: Count = 500  # episodes between validations
    val_episodes: Count = 300  # fixed validation episodes
    test_episodes: Count = 1_000  # test episodes per grid cell (the issue asks >= 600)
    checkpoint_every: Count = 500  # episodes between checkpoints
    seed: int = 0  # seeds the initialisation and the episodes
    data: str | None = None  # the data set's folder (None: $METARL_DATA/<dataset>)
    out: str | None = None
    """run folder (None: runs/metric_fewshot/<dataset>/<learner>-<shots>shot-seed<seed>)"""
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads


def build_learner(s: Settings, size: int) -> PrototypeLearner:
    """The learner around a max-pooled Conv-4 encoder of ``size`` x ``size`` inputs: its
    embedding (64 features for 28x28 Omniglot), or for relation networks its maps after two
    pooled blocks (64 x 7 x 7, Sung et al.); ``nearest-neighbour``: ProtoNet on the raw
    features (flattened), the nearest support example's class in one-shot episodes."""
    if s.learner == "nearest-neighbour":
        return metarl.make_learner("protonet", Flatten())
    if s.learner == "relation":
        maps = Conv4Maps(channels=s.channels, image_size=size, pooled=2, norm=s.norm)
        return metarl.make_learner(
            "relation", maps, channels=s.channels, map_size=maps.map_size, norm=s.norm
        )
    model = Conv4(ways=1, channels=s.channels, image_size=size, norm=s.norm, downsample="maxpool")
    extra: dict[str, object] = {}
    if s.learner == "gaussian-protonet":
        extra = {"covariance": s.covariance}
    elif s.learner == "semisupervised-protonet":
        extra = {"distractor_cluster": s.distractor_cluster}
    elif s.learner.startswith("matching") or s.learner == "siamese":
        extra = {"embedding_dim": model.head.in_features}
    elif s.learner == "metanet":  # output units for the widest training or test episode
        widest = max(s.train_ways, s.ways, *(w for w, _ in TEST_GRID[s.dataset]))
        extra = {"embedding_dim": model.head.in_features, "ways": widest}
    return metarl.make_learner(s.learner, model, **extra)


def episodes_of(
    s: Settings, data: tuple, ways: int, shots: int, queries: int, seed: int
) -> EpisodeSampler:
    """Episodes of ``data`` (images, labels): semi-supervised ones, with ``--unlabelled``
    and ``--distractors``, if ``--unlabelled`` is set."""
    if s.unlabelled:
        return SemiSupervisedEpisodeSampler(*data, ways, shots, queries, s.unlabelled,
                                            s.distractors, seed=seed)  # fmt: skip
    return EpisodeSampler(*data, ways, shots, queries, seed=seed)


def load_splits(s: Settings) -> tuple[tuple, tuple, tuple]:
    """(examples, labels) of the meta-train (with rotations, for Omniglot), meta-val and
    test splits of ``--dataset``."""
    if s.dataset == "spoken_words":
        root = s.data or data_root(None, "spoken_words")
        return tuple(tuple(load_spoken_words(name, root)[:2]) for name in ("train", "val", "test"))  # type: ignore[return-value]
    split = {"protocol": s.protocol, "protocol_seed": s.protocol_seed,
             "val_characters": s.val_characters}  # fmt: skip
    train = with_rotations(load_omniglot("train", s.data, **split))
    val, test = (load_omniglot(name, s.data, **split) for name in ("val", "test"))
    return tuple(train[:2]), tuple(val[:2]), tuple(test[:2])


def test_grid(s: Settings, learner: PrototypeLearner, test: tuple) -> dict[str, dict]:
    """Accuracy and 95% interval over ``--test-episodes`` episodes of each grid cell."""
    grid = {}
    for ways, shots in TEST_GRID[s.dataset]:
        seed = split_seed(s.seed, "test") + 1000 * ways + shots  # a fixed stream per cell
        sampler = episodes_of(s, test, ways, shots, s.queries, seed)
        mean, ci = mean_and_ci95(metric_accuracies(learner, sampler, s.test_episodes))
        grid[f"{ways}w{shots}s"] = {"accuracy": mean, "ci95": ci}
        print(f"{ways}-way {shots}-shot: {100 * mean:.2f} ± {100 * ci:.2f}%")
    return grid


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    name = f"{s.learner}-{s.shots}shot-seed{s.seed}"
    out = Path(s.out or f"runs/metric_fewshot/{s.dataset}/{name}")
    try:
        train, val, test = load_splits(s)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from err
    learner = build_learner(s, train[0].shape[-1])
    if s.learner == "nearest-neighbour":  # nothing to train: straight to the test grid
        run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE)
        result = {"learner": s.learner, "dataset": s.dataset, "test": test_grid(s, learner, test),
                  "test_episodes": s.test_episodes}  # fmt: skip
        written = run.write_results(result)
        run.finish()
        return json.loads(written.read_text())
    classes = len(np.unique(train[1]))
    if s.train_ways > classes:
        raise SystemExit(
            f"--train-ways {s.train_ways}: the meta-training split has {classes} classes"
        )
    train_shots = s.shots if s.train_shots is None else s.train_shots
    train_seed = split_seed(s.seed, "train")
    train_episodes = episodes_of(s, train, s.train_ways, train_shots, s.train_queries, train_seed)
    val_seed = split_seed(s.seed, "val")
    val_episodes = episodes_of(s, val, s.ways, s.shots, s.queries, val_seed)
    optimizer = torch.optim.Adam(learner.parameters(), lr=s.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, s.halve_every, gamma=0.5)
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("learner.pt", "learning_curve.png"))  # fmt: skip
    best_path, best_val = out / "learner.pt", -1.0

    def validate(episode: int) -> float:
        """Accuracy on the fixed validation episodes; a new best is kept as learner.pt."""
        nonlocal best_val
        val_episodes.rng = np.random.default_rng(val_seed)
        accuracy = metric_accuracies(learner, val_episodes, s.val_episodes).mean().item()
        if accuracy > best_val:
            best_val = accuracy
            extra = {"episode": episode, "val_accuracy": accuracy}
            metarl.save_learner(best_path, learner, extra=extra)
        return accuracy

    with run.interruptible():
        state = run.restore()
        if state is not None:
            learner.load_state_dict(state["learner"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            train_episodes.rng.bit_generator.state = state["train_rng"]
            best_val = state["best_val"]
            run.exit_if_past(s.episodes)
        desc = f"{s.learner} {s.train_ways}-way {train_shots}-shot"
        for it in run.progress(s.episodes, desc):
            learner.train()
            loss = learner.meta_loss(train_episodes.sample(1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            val_now: float | str = ""
            if (it + 1) % s.val_every == 0 or it + 1 == s.episodes:
                learner.eval()
                val_now = validate(it + 1)
            run.log(it + 1, loss=loss.item(), val_accuracy=val_now, wall_s=run.wall_s)
            shown = f"loss {loss.item():.3f}" + (f", val {val_now:.3f}" if val_now != "" else "")
            run.status(it + 1, shown, every=s.val_every)
            if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.episodes:
                run.save({"learner": learner.state_dict(), "optimizer": optimizer.state_dict(),
                          "schedule": schedule.state_dict(), "best_val": best_val,
                          "train_rng": train_episodes.rng.bit_generator.state}, it + 1)  # fmt: skip

    best = load_checkpoint(best_path)
    learner.load_state_dict(best["state_dict"])
    learner.eval()
    result = {
        "learner": s.learner,
        "dataset": s.dataset,
        "protocol": s.protocol if s.dataset == "omniglot" else None,
        "trained_shots": train_shots,
        "unlabelled": s.unlabelled,
        "distractors": s.distractors,
        "test": test_grid(s, learner, test),
        "test_episodes": s.test_episodes,
        "best_episode": best["extra"]["episode"],
        "val_accuracy": best["extra"]["val_accuracy"],
    }
    written = run.write_results(result)
    plot_curves(out / "metrics.csv", "step", {"val_accuracy": "meta-validation"},
                "meta-validation accuracy", out / "learning_curve.png", title=str(out))  # fmt: skip
    print(f"best validation {100 * best_val:.2f}% at episode {result['best_episode']}; "
          f"trained in {run.wall_s / 60:.1f} min")  # fmt: skip
    run.finish()
    return json.loads(written.read_text())


if __name__ == "__main__":
    main()
