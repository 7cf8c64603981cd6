"""CACTUs: unsupervised meta-learning on tasks built by clustering (Hsu, Levine & Finn, 2019).

1. Trains a convolutional autoencoder on the meta-training images of the full-data
   Omniglot protocol (``--protocol vinyals``: 1,100 training characters), labels unused.
2. Embeds them and runs k-means ``--partitions`` times (``--clusters`` clusters, random
   scaling of the embedding dimensions; ``metarl.supervised.cactus``).
3. Meta-trains ``--learner protonet`` or ``maml`` (Conv-4) on ``--ways``-way ``--shots``-shot
   episodes whose classes are clusters. ``--oracle`` trains the same learner on episodes
   with the true labels instead: the supervised reference of the same architecture.
4. Scores it on labelled test episodes of the 423 test characters (5/20-way, 1/5-shot, 95%
   intervals; the cells other than the training ways and shots use the same learner).

    python experiments/cactus.py --learner protonet --seed 0
    python experiments/cactus.py --learner protonet --oracle --seed 0

Writes into ``--out``: ``settings.json``, ``encoder.pt`` and ``partitions.npz`` (reused on
``--resume``), ``metrics.csv``, ``checkpoint.pt``, ``learner.pt`` (``load_learner``; the one
with the best validation accuracy), ``learning_curve.png`` and ``results.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

import metarl
from metarl.nn import Conv4
from metarl.supervised.cactus import ConvAutoencoder, PartitionEpisodeSampler, cactus_partitions
from metarl.supervised.data.omniglot import load_omniglot
from metarl.supervised.episodes import EpisodeSampler
from metarl.supervised.evaluate import mean_and_ci95, metric_accuracies, sampled_accuracies
from metarl.utils import load_checkpoint, save_checkpoint, seed_everything, start_run
from metarl.utils.cli import Positive, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/cactus.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "iterations", "data",
                     "test_episodes")  # fmt: skip
TEST_GRID = ((5, 1), (5, 5), (20, 1), (20, 5))


@dataclass
class Settings:
    """Meta-learn from clusters of unlabelled Omniglot images; test on labelled episodes."""

    learner: Literal["protonet", "maml"] = "protonet"  # the meta-learner
    oracle: bool = False  # train on the true labels instead of clusters (the reference)
    encoder_epochs: Count = 10  # autoencoder epochs over the meta-training images
    encoder_images: int | None = None  # train the autoencoder on this many of them (None: all)
    code: Count = 256  # embedding size
    partitions: Count = 100  # k-means partitions (the paper: 100)
    clusters: Count = 500  # clusters per partition (the paper: 500 on Omniglot)
    ways: Count = 5  # classes per training episode
    shots: Count = 1  # support examples per class in training
    queries: Count = 5  # query examples per class in training
    iterations: Count = 20_000  # meta-updates
    meta_batch: Count = 1  # episodes per meta-update
    lr: Annotated[float, Positive] = 1e-3  # Adam's learning rate
    inner_lr: Annotated[float, Positive] = 0.05  # maml: inner step size (the paper's)
    inner_steps: Count = 5  # maml: inner steps in training and test
    val_every: Count = 500  # meta-updates between validations and checkpoints
    val_episodes: Count = 200  # validation episodes (validation characters, true labels)
    test_episodes: Count = 1000  # test episodes per grid cell
    test_queries: Count = 15  # query examples per class in validation and test episodes
    seed: int = 0  # seeds everything
    data: str | None = None  # Omniglot root (default: $METARL_DATA)
    out: str | None = None  # run folder (None: runs/cactus/<learner>[-oracle]-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads


def train_encoder(s: Settings, images: torch.Tensor, path: Path) -> ConvAutoencoder:
    """The autoencoder from ``path`` if it is there, else trained and saved there."""
    model = ConvAutoencoder(images.shape[-1], s.code)
    if path.is_file():
        model.load_state_dict(load_checkpoint(path)["state"])
        return model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(s.seed)
    if s.encoder_images is not None:
        images = images[torch.randperm(len(images), generator=g)[: s.encoder_images]]
    for epoch in range(s.encoder_epochs):
        order, total = torch.randperm(len(images), generator=g), 0.0
        for start in range(0, len(images), 128):
            rows = order[start : start + 128]
            loss = model.loss(images[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(rows)
        print(f"autoencoder epoch {epoch + 1}: reconstruction loss {total / len(images):.4f}")
    save_checkpoint({"state": model.state_dict()}, path)
    return model


def make_partitions(s: Settings, encoder: ConvAutoencoder, images: torch.Tensor,
                    path: Path) -> np.ndarray:  # fmt: skip
    """The partitions from ``path`` if it is there, else computed and saved there."""
    if path.is_file():
        return np.load(path)["partitions"]
    with torch.no_grad():
        codes = torch.cat([encoder.encode(images[i : i + 512]) for i in range(0, len(images), 512)])
    g = torch.Generator().manual_seed(s.seed)
    partitions = cactus_partitions(codes, s.partitions, s.clusters, generator=g)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, partitions=partitions)
    tmp.replace(path)
    return partitions


def build_learner(s: Settings) -> torch.nn.Module:
    if s.learner == "protonet":
        return metarl.make_learner("protonet", Conv4(ways=1, norm="group"))
    return metarl.make_learner("maml", Conv4(ways=s.ways, norm="batch", downsample="stride"),
                               inner_lr=s.inner_lr, inner_steps=s.inner_steps)  # fmt: skip


def accuracies(learner: Any, sampler: EpisodeSampler, episodes: int, steps: int) -> torch.Tensor:
    """Query accuracy of each of ``episodes`` fresh episodes."""
    if steps == 0:  # a metric learner: classify by the support set, no gradient steps
        return metric_accuracies(learner, sampler, episodes)
    return sampled_accuracies(learner, sampler, episodes, steps)[0]


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    name = f"{s.learner}{'-oracle' if s.oracle else ''}-seed{s.seed}"
    out = Path(s.out or f"runs/cactus/{name}")
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("encoder.pt", "partitions.npz", "learner.pt",
                             "learning_curve.png"))  # fmt: skip
    train = load_omniglot("train", root=s.data, size=28, protocol="vinyals")
    val = load_omniglot("val", root=s.data, size=28, protocol="vinyals")
    if s.oracle:
        episodes: Any = EpisodeSampler(train.images, train.labels, s.ways, s.shots, s.queries,
                                       seed=s.seed)  # fmt: skip
    else:
        images = torch.from_numpy(train.images).float().div(255).unsqueeze(1)
        encoder = train_encoder(s, images, out / "encoder.pt")
        partitions = make_partitions(s, encoder, images, out / "partitions.npz")
        episodes = PartitionEpisodeSampler(images, partitions, s.ways, s.shots, s.queries, s.seed)
    val_sampler = EpisodeSampler(val.images, val.labels, s.ways, s.shots, s.test_queries,
                                 seed=10_000 + s.seed)  # fmt: skip
    learner = build_learner(s)
    steps = 0 if s.learner == "protonet" else s.inner_steps
    opt = torch.optim.Adam(learner.parameters(), lr=s.lr)
    best: dict[str, Any] = {"val": -math.inf, "iteration": 0, "state": learner.state_dict()}
    with run.interruptible():
        state = run.restore()
        if state is not None:
            learner.load_state_dict(state["learner"])
            opt.load_state_dict(state["optimizer"])
            if s.oracle:
                episodes.rng.bit_generator.state = state["episode_rng"]
            else:
                episodes.set_rng_state(state["episode_rng"])
            best = state["best"]
            run.exit_if_past(s.iterations)
        for it in run.progress(s.iterations, f"CACTUs-{s.learner}" if not s.oracle else s.learner):
            loss = learner.meta_loss(episodes.sample(s.meta_batch), F.cross_entropy)
            opt.zero_grad()
            loss.backward()
            opt.step()
            val_acc = None
            if (it + 1) % s.val_every == 0 or it + 1 == s.iterations:
                val_sampler.rng = np.random.default_rng(10_000 + s.seed)  # the same episodes
                val_acc = accuracies(learner, val_sampler, s.val_episodes, steps).mean().item()
                if val_acc > best["val"]:
                    state_now = {k: v.clone() for k, v in learner.state_dict().items()}
                    best = {"val": val_acc, "iteration": it + 1, "state": state_now}
                rng = episodes.rng.bit_generator.state if s.oracle else episodes.rng_state()
                run.save({"learner": learner.state_dict(), "optimizer": opt.state_dict(),
                          "episode_rng": rng, "best": best}, it + 1)  # fmt: skip
                run.status(it + 1, f"loss {loss.item():.3f}, validation {val_acc:.1%}", every=1)
            run.log(it + 1, loss=loss.item(), val_accuracy=val_acc, wall_s=run.wall_s)
    learner.load_state_dict(best["state"])
    learner.eval()
    metarl.save_learner(out / "learner.pt", learner)
    plot_curves(out / "metrics.csv", "step", {"val_accuracy": "validation accuracy"},
                "accuracy", out / "learning_curve.png", title=name)  # fmt: skip
    test = load_omniglot("test", root=s.data, size=28, protocol="vinyals")
    cells = {}
    for ways, shots in TEST_GRID:
        if s.learner == "maml" and ways != s.ways:
            continue  # MAML's output layer has --ways units
        sampler = EpisodeSampler(test.images, test.labels, ways, shots, s.test_queries,
                                 seed=20_000 + s.seed)  # fmt: skip
        mean, ci = mean_and_ci95(accuracies(learner, sampler, s.test_episodes, steps))
        cells[f"{ways}w{shots}s"] = {"accuracy": mean, "ci95": ci}
        print(f"{ways}-way {shots}-shot: {100 * mean:.2f} ± {100 * ci:.2f}%")
    result = {"learner": s.learner, "oracle": s.oracle, "trained_ways": s.ways,
              "trained_shots": s.shots, "best_iteration": best["iteration"],
              "val_accuracy": best["val"], "test_episodes": s.test_episodes,
              "test": cells}  # fmt: skip
    run.write_results(result)
    run.finish()
    return result


if __name__ == "__main__":
    main()
