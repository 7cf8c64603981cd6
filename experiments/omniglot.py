"""Few-shot Omniglot classification with MAML and its relatives on a Conv-4.

Data: this machine's two background sets, split by alphabet (meta-train: six alphabets with
90/180/270-degree rotations as extra classes; meta-val: Tagalog; meta-test: Sanskrit).
Protocol after the MAML paper and code: 28x28 images; Conv-4 with 64 channels, batch
statistics, and stride-2 convolutions in place of max-pooling (the MAML code's Omniglot
network; ``--downsample maxpool`` for the pooled one); Adam 1e-3 on 32 tasks per meta-batch
(5-way: inner step 0.4, 1 step in training, 3 at test; 20-way: step 0.1, 5 steps, 16 tasks;
``setting_defaults`` lists every learner's defaults).
Meta-training episodes carry ``--train-queries`` query examples per class (default: as many
as shots, as in the MAML code's episodes) and ``--train-shots`` support examples (default:
``--shots``; Reptile's paper meta-trains 1-shot learners on 10); validation and test
episodes carry ``--queries`` (15), classified in batches of one query per class (the
composition of the meta-training query batches; batch statistics depend on it; ``--query-batch
all`` for one batch of all). ``--augment class|image|both`` distorts meta-training
episodes with random affine maps; ``--mix-classes p`` replaces each meta-training class by a
superposition of two characters with probability p (new classes beyond the six alphabets);
``--mirror-classes`` adds each meta-training character's mirror image (and its rotations) as
classes of their own;
``--within-alphabet`` draws each meta-training episode's classes from one alphabet (and
rotation), as every test episode is. ``--init-from <model.pt>`` starts the network's conv
blocks from a classifier of all meta-training classes (``experiments/omniglot_baseline.py``)
and its head at zero: pretraining, then meta-training. The initialisation kept is the one
with the best meta-validation accuracy, checked at the start and every ``--val-every``
iterations (``--iterations 0`` scores the starting point); the test accuracy is over
``--test-episodes`` Sanskrit episodes with a 95% interval. Tagalog has 17 characters, so
20-way runs validate on Tagalog with its rotations as extra classes.

    python experiments/omniglot.py --learner maml --ways 5 --shots 1 --seed 0
    python experiments/omniglot.py --learner maml --ways 5 --shots 1 --seed 0 --resume

Writes ``<out>/metrics.csv``, ``<out>/learning_curve.png``, ``<out>/checkpoint.pt`` (to
resume), ``<out>/learner.pt`` (the best initialisation, for
``metarl.supervised.load_learner``) and ``<out>/results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.augment import ClassMix, RandomAffine, compose
from metarl.supervised.data.omniglot import (
    alphabet_groups,
    split_seed,
    with_rotations,
    with_rotations_if_short,
)
from metarl.supervised.evaluate import mean_and_ci95, sampled_accuracies
from metarl.supervised.fewshot import build_learner, save_learner
from metarl.supervised.models import Conv4
from metarl.utils import CSVLogger, load_checkpoint, save_checkpoint, seed_everything
from metarl.utils.cli import parse_settings

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass
class Settings:
    """Omniglot few-shot meta-training and evaluation."""

    learner: str = "maml"  # any of metarl.supervised.fewshot.LEARNERS
    ways: int = 5
    shots: int = 1
    queries: int = 15  # per class in validation and test episodes
    train_queries: int | None = None  # per class in meta-training episodes (default: shots)
    train_shots: int | None = None  # support per class in meta-training (None: shots; Reptile 10)
    augment: str = "none"  # none | class | image | both: random affine maps in meta-training
    elastic: float = 0.0  # > 0: smooth random warps of this size on top of the affine maps
    mix_classes: float = 0.0  # probability that a meta-training class is two superimposed ones
    mirror_classes: bool = False  # mirror images of meta-training characters as extra classes
    within_alphabet: bool = False  # meta-training episodes draw all classes from one alphabet
    meta_batch: int | None = None  # None: from setting_defaults (32; 16 at 20-way)
    iterations: int = 20_000
    inner_lr: float | None = None  # None: from setting_defaults (0.4; 0.1 at 20-way)
    inner_steps: int | None = None  # None: from setting_defaults (1; 5 at 20-way)
    eval_steps: int | None = None  # None: from setting_defaults (3; 5 at 20-way)
    inner_rule: str | None = None  # Reptile only: sgd | adam (None: from setting_defaults)
    inner_batch: int | None = None  # Reptile only: examples per inner step (0: all; None: 10)
    outer_optimizer: str | None = None  # adam | sgd (None: sgd for Reptile, else adam)
    outer_lr: float | None = None  # None: 1e-3 (Adam); Reptile's meta step 1.0 (SGD)
    outer_schedule: str | None = None  # constant | linear (to 0 at the end; Reptile's default)
    channels: int = 64
    norm: str = "batch"  # batch | group | none
    downsample: str = "stride"  # stride (the MAML code's Omniglot network) | maxpool
    context_dim: int = 100  # CAML only: size of the FiLM context (the paper's value)
    film_block: int = 3  # CAML only: the Conv-4 block (1-4) whose features the context modulates
    val_every: int = 500
    val_episodes: int = 200
    test_episodes: int = 600
    attack_epsilon: float = 0.0  # > 0: also test on FGSM-perturbed queries (ADML trains at 0.2)
    query_batch: str = "per-class"  # per-class: classify queries in batches of one per class
    seed: int = 0
    data: str | None = None  # folder with the Omniglot zips (default: ../shared/data/omniglot)
    out: str | None = None  # default: runs/omniglot/<learner>-<ways>way<shots>shot-seed<seed>
    init_from: str | None = None  # model.pt of omniglot_baseline.py: its conv blocks start the run
    checkpoint_every: int = 500
    resume: bool = False
    threads: int = 2


def setting_defaults(learner: str, ways: int) -> dict[str, float | int]:
    """Values for the settings left unset, by learner and number of ways.

    The MAML paper's (5-way: inner step 0.4, 1 step, 3 at test, 32 tasks; 20-way: 0.1, 5
    steps, 5 at test, 16 tasks); Reptile's paper's (5 tasks of 10 meta-training shots, 5
    inner Adam steps of 0.001 on mini-batches of 10, 50 full-batch steps at test, an outer
    SGD step annealed linearly from 1 to 0; at 20-way 10 inner steps of 0.0005 on mini-batches
    of 20); CAML's
    context step of 100 on FiLM at the third block (the paper's step of 1.0 left the context
    nearly still on this Conv-4: in short checks the training loss stayed at chance, ln 5, for
    100 iterations with 1.0 at the first or third block, and fell to 0.63 in 300 with 100 at
    the third block, to 1.41 in 200 at the first); 8 tasks for the LSTM meta-learner, whose
    coordinate-wise LSTM runs over every weight of every task.
    """
    values: dict[str, float | int | str] = {
        "inner_lr": 0.4, "inner_steps": 1, "eval_steps": 3, "meta_batch": 32,
        "outer_optimizer": "adam", "outer_lr": 1e-3, "outer_schedule": "constant",
    }  # fmt: skip
    if ways >= 20:
        values.update(inner_lr=0.1, inner_steps=5, eval_steps=5, meta_batch=16)
    if learner == "reptile":
        values.update(inner_lr=0.001, inner_steps=5, eval_steps=50, meta_batch=5, train_shots=10,
                      inner_rule="adam", inner_batch=10, outer_optimizer="sgd", outer_lr=1.0,
                      outer_schedule="linear")  # fmt: skip
        if ways >= 20:
            values.update(inner_lr=0.0005, inner_steps=10, inner_batch=20)
    if learner == "caml":
        values.update(inner_lr=100.0)
    if learner == "lstm":
        values.update(meta_batch=8)
    return values


def init_blocks_from_reference(model: Conv4, path: str | os.PathLike) -> None:
    """Start ``model``'s four conv blocks from those of a classifier saved by
    ``experiments/omniglot_baseline.py`` (its ``model.pt``), and its head at zero.

    The reference's head classifies all meta-training classes at once, so it is not kept.
    A zero head makes every class equally likely before adaptation; a random one sits badly
    on the reference's large features (mean norm about 37): 10 steps of 0.1 reached 81% on
    50 validation episodes from a random head and 91% from a zero one (an ad-hoc check).
    """
    saved = load_checkpoint(path)
    reference = Conv4(**saved["model"])
    if repr(reference.features) != repr(model.features):
        raise SystemExit(f"--init-from {path}: its conv blocks differ from this run's network "
                         f"(--channels, --norm, --downsample)\n{reference.features}\nagainst\n"
                         f"{model.features}")  # fmt: skip
    reference.load_state_dict(saved["state_dict"])
    model.features.load_state_dict(reference.features.state_dict())
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    unset = {k: v for k, v in setting_defaults(s.learner, s.ways).items() if getattr(s, k) is None}
    s = replace(s, **unset)
    if s.elastic > 0 and s.augment == "none":
        raise ValueError("--elastic warps come with the affine maps: set --augment as well")
    optimizers = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    if s.outer_optimizer not in optimizers or s.outer_schedule not in ("constant", "linear"):
        raise ValueError(
            f"outer optimizer must be one of {list(optimizers)} and schedule "
            f"constant or linear, got {s.outer_optimizer!r}, {s.outer_schedule!r}"
        )
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/omniglot/{s.learner}-{s.ways}way{s.shots}shot-seed{s.seed}")
    train = with_rotations(load_omniglot("train", s.data), mirror=s.mirror_classes)
    train_queries = s.shots if s.train_queries is None else s.train_queries
    train_shots = s.shots if s.train_shots is None else s.train_shots
    val, test = load_omniglot("val", s.data), load_omniglot("test", s.data)
    val, val_rotated = with_rotations_if_short(val, s.ways)
    if val_rotated:
        print(f"meta-validation has {len(val.class_names) // 4} characters, fewer than "
              f"{s.ways} ways: validating with their rotations as extra classes")  # fmt: skip
    transforms = [ClassMix(s.mix_classes)] if s.mix_classes > 0 else []
    if s.augment != "none":
        transforms.append(RandomAffine(s.augment, elastic=s.elastic))
    augment = compose(*transforms) if transforms else None
    groups = alphabet_groups(train) if s.within_alphabet else None
    val_seed = split_seed(s.seed, "val")
    episodes = {
        "train": EpisodeSampler(
            *train[:2],
            s.ways,
            train_shots,
            train_queries,
            seed=split_seed(s.seed, "train"),
            transform=augment,
            class_groups=groups,
        ),  # fmt: skip
        "val": EpisodeSampler(*val[:2], s.ways, s.shots, s.queries, seed=val_seed),
        "test": EpisodeSampler(
            *test[:2], s.ways, s.shots, s.queries, seed=split_seed(s.seed, "test")
        ),
    }
    model_spec = {"name": "Conv4", "ways": s.ways, "channels": s.channels, "norm": s.norm,
                  "downsample": s.downsample}  # fmt: skip
    if s.learner == "caml":
        model_spec.update(context_dim=s.context_dim, film_block=s.film_block)
    options = {}
    if s.inner_rule is not None or s.inner_batch is not None:
        options = {"inner_rule": s.inner_rule or "sgd", "inner_batch": s.inner_batch or None}
    learner = build_learner(s.learner, model_spec, s.inner_lr, s.inner_steps, options)
    if s.init_from is not None:  # a resumed run's checkpoint overwrites these below
        init_blocks_from_reference(learner.model, s.init_from)
    optimizer = optimizers[s.outer_optimizer](learner.parameters(), lr=s.outer_lr)

    start, elapsed, best_val = 0, 0.0, -1.0
    ckpt_path, best_path = out / "checkpoint.pt", out / "learner.pt"
    if s.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        learner.load_state_dict(ckpt["learner"])
        optimizer.load_state_dict(ckpt["optimizer"])
        episodes["train"].rng.bit_generator.state = ckpt["train_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        start, elapsed, best_val = ckpt["iteration"], ckpt["elapsed"], ckpt["best_val"]
        print(f"resumed from {ckpt_path} at iteration {start}")
    logger = CSVLogger(out / "metrics.csv", resume_from=start or None)  # None: a fresh file

    def validate(iteration: int) -> float:
        """Accuracy on the fixed validation episodes; a new best is saved as ``learner.pt``."""
        nonlocal best_val
        episodes["val"].rng = np.random.default_rng(val_seed)  # the same episodes every time
        accuracy = sampled_accuracies(learner, episodes["val"], s.val_episodes, s.eval_steps,
                                      query_batch=s.query_batch)[0].mean().item()  # fmt: skip
        if accuracy > best_val:
            best_val = accuracy
            save_learner(best_path, learner, s.learner, model_spec, s.eval_steps, s.inner_lr,
                         {"iteration": iteration, "val_accuracy": accuracy}, options)  # fmt: skip
        return accuracy

    t0 = time.perf_counter()
    if start == 0:  # the starting point competes too (with --init-from it may be hard to beat)
        val_acc = validate(0)
        print(f"iteration 0: val {val_acc:.3f}", flush=True)
        logger.log({"step": 0, "loss": "", "val_accuracy": val_acc, "wall_s": 0.0})
    bar = tqdm(range(start, s.iterations), initial=start, total=s.iterations, file=sys.stdout,
               desc=f"{s.learner} {s.ways}-way {s.shots}-shot", disable=None)  # fmt: skip
    for it in bar:
        if s.outer_schedule == "linear":  # from outer_lr at the start to 0 after the last
            optimizer.param_groups[0]["lr"] = s.outer_lr * (1 - it / s.iterations)
        loss = learner.meta_loss(episodes["train"].sample(s.meta_batch), F.cross_entropy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        row = {"step": it + 1, "loss": loss.item(), "val_accuracy": ""}
        if (it + 1) % s.val_every == 0 or it + 1 == s.iterations:
            row["val_accuracy"] = val_acc = validate(it + 1)
            bar.set_postfix_str(f"loss {loss.item():.3f}, val acc {val_acc:.3f}")
            if bar.disable:
                print(f"iteration {it + 1}: loss {loss.item():.3f}, val {val_acc:.3f}", flush=True)
        logger.log({**row, "wall_s": elapsed + time.perf_counter() - t0})
        if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.iterations:
            save_checkpoint(
                {"learner": learner.state_dict(), "optimizer": optimizer.state_dict(),
                 "train_rng": episodes["train"].rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "iteration": it + 1,
                 "elapsed": elapsed + time.perf_counter() - t0, "best_val": best_val,
                 "settings": asdict(s)},
                ckpt_path,
            )  # fmt: skip
    train_wall = elapsed + time.perf_counter() - t0

    best = load_checkpoint(best_path)
    learner.load_state_dict(best["state_dict"])
    accuracy, attacked = sampled_accuracies(
        learner, episodes["test"], s.test_episodes, s.eval_steps, s.attack_epsilon, s.query_batch
    )
    adversarial = {}
    if attacked is not None:
        adv_mean, adv_ci = mean_and_ci95(attacked)
        adversarial = {"attack_epsilon": s.attack_epsilon, "adversarial_accuracy": adv_mean,
                       "adversarial_ci95": adv_ci}  # fmt: skip
    mean, ci = mean_and_ci95(accuracy)
    cli_args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    result = {
        "learner": s.learner,
        "ways": s.ways,
        "shots": s.shots,
        "test_accuracy": mean,
        "ci95": ci,
        "test_episodes": s.test_episodes,
        **adversarial,
        "best_iteration": best["extra"]["iteration"],
        "val_accuracy": best["extra"]["val_accuracy"],
        "val_rotated": val_rotated,
        "train_wall_s": round(train_wall, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {s.threads} torch threads",
        "command": "python experiments/omniglot.py " + shlex.join(cli_args),
        "settings": asdict(s),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    plot_learning_curve(out)
    print(f"{s.learner} {s.ways}-way {s.shots}-shot on Sanskrit: {100 * mean:.2f} ± "
          f"{100 * ci:.2f}% over {s.test_episodes} episodes (best val at iteration "
          f"{result['best_iteration']}); trained in {train_wall / 60:.1f} min")  # fmt: skip
    if adversarial:
        print(f"under FGSM (epsilon {s.attack_epsilon}): {100 * adv_mean:.2f} ± "
              f"{100 * adv_ci:.2f}%")  # fmt: skip
    return result


def plot_learning_curve(out: Path) -> None:
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]
    col = {name: i for i, name in enumerate(rows[0])}
    val = [(int(r[col["step"]]), float(r[col["val_accuracy"]])) for r in rows[1:]
           if r[col["val_accuracy"]]]  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([v[0] for v in val], [v[1] for v in val], "o-")
    ax.set(xlabel="meta-iteration", ylabel="meta-validation accuracy", title=str(out))
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
