"""Few-shot Omniglot classification with MAML and its relatives on a Conv-4.

Data (``--protocol``): ``small``, this machine's two small background sets split by alphabet
(meta-train: six alphabets with 90/180/270-degree rotations as extra classes; meta-val:
Tagalog; meta-test: Sanskrit), or the full Omniglot under ``vinyals`` (1,200 / 423 characters,
rotations for meta-training) or ``lake`` (background / evaluation sets).
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

The data is read from ``--data`` or ``$METARL_DATA/omniglot``. Writes into ``--out``:
``settings.json`` (the command and settings), ``metrics.csv`` (loss per iteration,
validation accuracy at every check), TensorBoard events under ``<out>/tensorboard``,
``checkpoint.pt`` (and ``checkpoint.prev.pt``; to resume with ``--resume``, also to train a
finished run for longer with a larger ``--iterations``), ``learner.pt`` (the best
initialisation, for ``metarl.load_learner``), ``learning_curve.png`` and ``results.json``.
``--overwrite`` also removes an ``alphabets/`` folder that ``experiments/omniglot_alphabets.py``
wrote from the replaced run's learner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import metarl
from metarl.learners import learner_names
from metarl.nn import Conv4
from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.augment import ClassMix, RandomAffine, compose
from metarl.supervised.data.omniglot import (
    alphabet_groups,
    split_seed,
    with_rotations,
    with_rotations_if_short,
)
from metarl.supervised.evaluate import mean_and_ci95, sampled_accuracies
from metarl.utils import load_checkpoint, seed_everything, start_run
from metarl.utils.cli import Check, NonNegative, Positive, Probability, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/omniglot.py"
LearnerName = Literal[tuple(learner_names("gradient"))]  # metarl's gradient-based learners
Count = Annotated[int, Positive]
Steps = Annotated[int, NonNegative]
AtLeastTwo = Check(lambda n: n >= 2, "must be >= 2")
FilmBlock = Check(lambda n: 1 <= n <= 4, "must be one of the Conv-4 blocks 1-4")
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
# Settings a resumed run may change: how long it trains (a finished run continued, as the
# 12k MAML run was), the threads (speed only; committed runs changed them between sessions),
# and where its folder and the data are.
RESUME_MAY_CHANGE = ("resume", "overwrite", "iterations", "threads", "out", "data")


@dataclass
class Settings:
    """Omniglot few-shot meta-training and evaluation."""

    learner: LearnerName = "maml"  # the meta-learner (a name of metarl.learners.LEARNERS)
    ways: Annotated[int, AtLeastTwo] = 5  # classes per episode
    shots: Count = 1  # support examples per class in validation and test
    queries: Count = 15  # per class in validation and test episodes
    train_queries: Count | None = None  # queries per class in meta-training (None: --shots)
    train_shots: Count | None = None
    """support per class in meta-training (None: setting_defaults: --shots; Reptile 10)"""
    augment: Literal["none", "class", "image", "both"] = "none"
    """random affine maps in meta-training: one per class, per image, or both"""
    elastic: Annotated[float, NonNegative] = 0.0  # > 0: smooth random warps of this size on top
    mix_classes: Annotated[float, Probability] = 0.0  # chance a meta-training class is two in one
    mirror_classes: bool = False  # mirror images of meta-training characters as extra classes
    within_alphabet: bool = False  # meta-training episodes draw all classes from one alphabet
    meta_batch: Count | None = None
    """tasks per meta-batch (None: setting_defaults: 32; 16 at 20-way; Reptile 5; LSTM 8)"""
    iterations: Steps = 20_000  # meta-iterations (0: score the start only)
    inner_lr: Annotated[float, Positive] | None = None
    """inner step size (None: setting_defaults: 0.4; 0.1 at 20-way); for --learner lstm the
    LSTM meta-learner's initial step (its input gate's starting value, in (0, 1))"""
    inner_steps: Steps | None = None
    """inner steps in meta-training (None: setting_defaults: 1; 5 at 20-way; Reptile 5)"""
    eval_steps: Steps | None = None
    """inner steps at validation and test (None: setting_defaults: 3; 5 at 20-way; Reptile 50)"""
    inner_rule: Literal["sgd", "adam"] | None = None
    """Reptile only: its inner optimiser (None: setting_defaults, adam)"""
    inner_batch: Steps | None = None
    """Reptile only: examples per inner step (0: all; None: setting_defaults, 10; 20 at 20-way)"""
    outer_optimizer: Literal["adam", "sgd"] | None = None
    """the meta-optimiser (None: setting_defaults: sgd for Reptile, else adam)"""
    outer_lr: Annotated[float, Positive] | None = None
    """its step size (None: setting_defaults: 1e-3; Reptile's meta step 1.0)"""
    outer_schedule: Literal["constant", "linear"] | None = None
    """outer step size over the run: constant, or linear to 0 at the end (None:
    setting_defaults: linear for Reptile, else constant)"""
    channels: Count = 64  # channels of each Conv-4 block
    norm: Literal["batch", "group", "none"] = "batch"  # normalisation in the Conv-4 blocks
    downsample: Literal["stride", "maxpool"] = "stride"  # stride: the MAML code's network
    context_dim: Count = 100  # CAML only: size of the FiLM context
    film_block: Annotated[int, FilmBlock] = 3  # CAML only: the block the context modulates
    val_every: Count = 500  # meta-iterations between validations
    val_episodes: Count = 200  # validation episodes (the same ones each time)
    test_episodes: Annotated[int, AtLeastTwo] = 600  # test episodes (for a 95% interval)
    attack_epsilon: Annotated[float, NonNegative] = 0.0
    """> 0: also test on FGSM-perturbed queries of this size (ADML trains at 0.2)"""
    query_batch: Literal["per-class", "all"] = "per-class"
    """classify validation and test queries in batches of one per class, or all in one"""
    seed: int = 0  # seeds the initialisation and every split's episodes
    data: str | None = None  # folder with the Omniglot zips (None: $METARL_DATA/omniglot)
    protocol: Literal["small", "vinyals", "lake"] = "small"
    """character split: small (the two small subsets, by alphabet), vinyals or lake (full
    data; metarl.supervised.data.omniglot)"""
    protocol_seed: int = 0  # seeds the full-data protocols' character split
    out: str | None = None
    """run folder (None: runs/omniglot/<learner>-<ways>way<shots>shot-seed<seed>)"""
    init_from: str | None = None  # model.pt of omniglot_baseline.py: its conv blocks start the run
    concept_weight: float = 1.0
    """concept-maml / concept-metasgd: weight of the concept discriminator's cross-entropy on
    a labelled batch of meta-training images (all their classes), added to each meta-loss"""
    concept_batch: Count = 64  # concept-*: images per labelled batch
    checkpoint_every: Count = 500  # meta-iterations between checkpoints
    resume: bool = False  # continue the run in --out from its checkpoint.pt
    overwrite: bool = False  # replace a run already in --out
    threads: Count = 2  # torch threads

    def validate(self) -> None:
        if self.elastic > 0 and self.augment == "none":
            raise ValueError("--elastic warps come with the affine maps: set --augment as well")
        given = [f for f in ("inner_rule", "inner_batch") if getattr(self, f) is not None]
        if given and self.learner != "reptile":
            flags = " and ".join("--" + f.replace("_", "-") for f in given)
            raise ValueError(f"{flags}: learner {self.learner!r} takes no options (Reptile's)")
        if self.learner == "lstm" and self.inner_lr is not None and not 0 < self.inner_lr < 1:
            raise ValueError(
                f"--inner-lr is the LSTM meta-learner's initial step, a gate value in (0, 1), "
                f"got {self.inner_lr}"
            )
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise ValueError(f"--init-from {self.init_from}: no such file")


def setting_defaults(learner: str, ways: int) -> dict[str, float | int | str]:
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
    values: dict[str, float | int | str] = {}
    values.update(inner_lr=0.4, inner_steps=1, eval_steps=3, meta_batch=32)
    values.update(outer_optimizer="adam", outer_lr=1e-3, outer_schedule="constant")
    if ways >= 20:
        values.update(inner_lr=0.1, inner_steps=5, eval_steps=5, meta_batch=16)
    if learner == "reptile":
        values.update(inner_lr=0.001, inner_steps=5, eval_steps=50, meta_batch=5, train_shots=10)
        values.update(inner_rule="adam", inner_batch=10)
        values.update(outer_optimizer="sgd", outer_lr=1.0, outer_schedule="linear")
        if ways >= 20:
            values.update(inner_lr=0.0005, inner_steps=10, inner_batch=20)
    if learner == "caml":
        values.update(inner_lr=100.0)
    if learner == "lstm":
        values.update(meta_batch=8)
    return values


def with_defaults(s: Settings) -> Settings:
    """``s`` with every setting left at ``None`` that ``setting_defaults`` names filled in."""
    defaults = setting_defaults(s.learner, s.ways)
    return replace(s, **{k: v for k, v in defaults.items() if getattr(s, k) is None})


def learner_arguments(s: Settings) -> dict[str, Any]:
    """The constructor arguments of the learner class ``s.learner`` names."""
    if s.learner == "lstm":  # --inner-lr is its initial step (the input gate's start)
        return {"inner_steps": s.inner_steps, "initial_step": s.inner_lr}
    arguments: dict[str, Any] = {"inner_lr": s.inner_lr, "inner_steps": s.inner_steps}
    if s.learner == "reptile":
        # The committed Reptile runs drew their mini-batch order from the global torch RNG
        # (seeded by seed_everything, restored on resume by the runner): it still does.
        arguments.update(inner_rule=s.inner_rule, inner_batch=s.inner_batch or None)
        arguments.update(generator=torch.default_generator)
    return arguments


def init_blocks_from_reference(model: Conv4, path: str | Path) -> None:
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
        raise SystemExit(
            f"--init-from {path}: its conv blocks differ from this run's network "
            f"(--channels, --norm, --downsample)\n{reference.features}\nagainst\n{model.features}"
        )
    reference.load_state_dict(saved["state_dict"])
    model.features.load_state_dict(reference.features.state_dict())
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)


def main(argv: list[str] | None = None) -> dict:
    s = with_defaults(parse_settings(Settings, argv))
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/omniglot/{s.learner}-{s.ways}way{s.shots}shot-seed{s.seed}")
    try:
        split = {"protocol": s.protocol, "protocol_seed": s.protocol_seed}
        train = with_rotations(load_omniglot("train", s.data, **split), mirror=s.mirror_classes)
        val, test = (load_omniglot(name, s.data, **split) for name in ("val", "test"))
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from err
    train_queries = s.shots if s.train_queries is None else s.train_queries
    train_shots = s.shots if s.train_shots is None else s.train_shots
    val, val_rotated = with_rotations_if_short(val, s.ways)
    if val_rotated:
        print(
            f"meta-validation has {len(val.class_names) // 4} characters, fewer than "
            f"{s.ways} ways: validating with their rotations as extra classes"
        )
    transforms = [ClassMix(s.mix_classes)] if s.mix_classes > 0 else []
    if s.augment != "none":
        transforms.append(RandomAffine(s.augment, elastic=s.elastic))
    augment = compose(*transforms) if transforms else None
    groups = alphabet_groups(train) if s.within_alphabet else None
    val_seed = split_seed(s.seed, "val")
    train_seed, test_seed = split_seed(s.seed, "train"), split_seed(s.seed, "test")
    episodes = {
        "train": EpisodeSampler(
            *train[:2],
            s.ways,
            train_shots,
            train_queries,
            seed=train_seed,
            transform=augment,
            class_groups=groups,
        ),
        "val": EpisodeSampler(*val[:2], s.ways, s.shots, s.queries, seed=val_seed),
        "test": EpisodeSampler(*test[:2], s.ways, s.shots, s.queries, seed=test_seed),
    }
    film = {"context_dim": s.context_dim, "film_block": s.film_block} if s.learner == "caml" else {}
    model = Conv4(ways=s.ways, channels=s.channels, norm=s.norm, downsample=s.downsample, **film)
    concept = s.learner.startswith("concept")
    train_labels = torch.as_tensor(np.asarray(train[1]))
    external = {"external_classes": int(train_labels.max()) + 1} if concept else {}
    learner = metarl.make_learner(s.learner, model, **learner_arguments(s), **external)
    learner.eval_steps = s.eval_steps
    if s.init_from is not None:  # a resumed run's checkpoint overwrites these below
        init_blocks_from_reference(learner.model, s.init_from)
    optimizer = OPTIMIZERS[s.outer_optimizer](learner.parameters(), lr=s.outer_lr)
    run = start_run(
        out,
        s,
        argv=argv,
        script=SCRIPT,
        ignore=RESUME_MAY_CHANGE,
        outputs=("learner.pt", "learning_curve.png", "alphabets"),  # alphabets: its analysis
        unrecorded=lambda name, value: True,  # runs from before a setting had its default
    )
    best_path = out / "learner.pt"
    best_val = -1.0

    def validate(iteration: int) -> float:
        """Accuracy on the fixed validation episodes; a new best is saved as ``learner.pt``."""
        nonlocal best_val
        episodes["val"].rng = np.random.default_rng(val_seed)  # the same episodes every time
        sampler, n = episodes["val"], s.val_episodes
        scores = sampled_accuracies(learner, sampler, n, s.eval_steps, query_batch=s.query_batch)[0]
        accuracy = scores.mean().item()
        if accuracy > best_val:
            best_val = accuracy
            extra = {"iteration": iteration, "val_accuracy": accuracy}
            metarl.save_learner(best_path, learner, extra=extra)
        return accuracy

    with run.interruptible():
        state = run.restore()
        if state is not None:
            learner.load_state_dict(state["learner"])
            optimizer.load_state_dict(state["optimizer"])
            episodes["train"].rng.bit_generator.state = state["train_rng"]
            best_val = state["best_val"]
        bar = run.progress(s.iterations, f"{s.learner} {s.ways}-way {s.shots}-shot")
        if run.start_iteration == 0:  # the start competes too (with --init-from it may win)
            val_acc = validate(0)
            run.log(0, loss="", val_accuracy=val_acc, wall_s=run.wall_s)
            run.status(0, f"val {val_acc:.3f}", every=1)
        for it in bar:
            if s.outer_schedule == "linear":  # from outer_lr at the start to 0 after the last
                optimizer.param_groups[0]["lr"] = s.outer_lr * (1 - it / s.iterations)
            loss = learner.meta_loss(episodes["train"].sample(s.meta_batch), F.cross_entropy)
            if concept:  # the concept discriminator on a labelled batch (train sampler's rng)
                rows = episodes["train"].rng.integers(len(train_labels), size=s.concept_batch)
                images = episodes["train"].data[torch.from_numpy(rows)]
                concept_loss = learner.concept_loss(images, train_labels[rows])
                loss = loss + s.concept_weight * concept_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            val_now: float | str = ""
            if (it + 1) % s.val_every == 0 or it + 1 == s.iterations:
                val_now = validate(it + 1)
            run.log(it + 1, loss=loss.item(), val_accuracy=val_now, wall_s=run.wall_s)
            shown = f"loss {loss.item():.3f}" + (f", val {val_now:.3f}" if val_now != "" else "")
            run.status(it + 1, shown, every=s.val_every)
            if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.iterations:
                train_rng = episodes["train"].rng.bit_generator.state
                run.save(
                    {
                        "learner": learner.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "train_rng": train_rng,
                        "best_val": best_val,
                    },
                    it + 1,
                )

        best = load_checkpoint(best_path)  # the kept learner: its weights and when it was kept
        learner.load_state_dict(best["state_dict"])
        test_args = (s.test_episodes, s.eval_steps, s.attack_epsilon, s.query_batch)
        accuracy, attacked = sampled_accuracies(learner, episodes["test"], *test_args)
    adversarial = {}
    if attacked is not None:
        adv_mean, adv_ci = mean_and_ci95(attacked)
        adversarial = {
            "attack_epsilon": s.attack_epsilon,
            "adversarial_accuracy": adv_mean,
            "adversarial_ci95": adv_ci,
        }
    mean, ci = mean_and_ci95(accuracy)
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
    }
    written = run.write_results(result)
    plot_curves(
        out / "metrics.csv",
        "step",
        {"val_accuracy": "meta-validation"},
        "meta-validation accuracy",
        out / "learning_curve.png",
        title=str(out),
    )
    print(
        f"{s.learner} {s.ways}-way {s.shots}-shot on the {s.protocol} test split: "
        f"{100 * mean:.2f} ± {100 * ci:.2f}% over {s.test_episodes} episodes (best val at "
        f"iteration {result['best_iteration']}); trained in {run.wall_s / 60:.1f} min"
    )
    if adversarial:
        print(
            f"under FGSM (epsilon {s.attack_epsilon}): {100 * adv_mean:.2f} ± {100 * adv_ci:.2f}%"
        )
    run.finish()
    return json.loads(written.read_text())


if __name__ == "__main__":
    main()
