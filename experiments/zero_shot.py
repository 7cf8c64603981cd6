"""Zero-shot recognition of unseen attribute combinations: relation networks against the
nearest-attribute reference, on the generated attribute shapes.

Data: ``metarl.supervised.data.shapes`` (150 classes, every combination of shape, colour,
size and texture; ``--per-class`` images each; ``--unseen`` combinations held out with
``--data-seed``). Both learners see only the seen classes' images and descriptions; at test
time each image of an unseen class is classified among the unseen classes from their
attribute vectors alone. ``--learner relation``: relation networks for zero-shot learning
(Sung et al., 2018; squared error on relation scores); ``--learner attributes``: direct
attribute prediction, one softmax per attribute group, a class scored by its values'
log-probabilities. Both use the same Conv-4 encoder (group norm) and class-balanced batches
of ``--batch-classes`` seen classes x ``--batch-images`` images.

    python experiments/zero_shot.py --learner relation --seed 0
    python experiments/zero_shot.py --learner attributes --seed 0

Writes into ``--out``: ``settings.json``, ``metrics.csv``, ``checkpoint.pt`` (``--resume``),
``learner.pt`` (for ``metarl.load_learner``) and ``results.json`` (accuracy on the unseen
classes with a 95% interval over their images, and on held-back images of the seen ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

import metarl
from metarl.nn import Conv4
from metarl.supervised.data.shapes import ATTRIBUTES, make_shapes
from metarl.supervised.evaluate import mean_and_ci95
from metarl.supervised.zero_shot import AttributeClassifier, ZeroShotRelationNet
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import Check, Positive, parse_settings

SCRIPT = "experiments/zero_shot.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "steps")


@dataclass
class Settings:
    """Train on the seen attribute combinations, test on the unseen ones."""

    learner: Literal["relation", "attributes"] = "relation"  # the learner (module docstring)
    per_class: Count = 20  # images of every class
    unseen: Count = 30  # held-out combinations
    data_seed: int = 0  # seeds the images and the held-out combinations
    noise: Annotated[float, Check(lambda x: x >= 0, "must be >= 0")] = 0.0
    """Gaussian pixel noise on the images (0-255 units): 0 is easy for both learners"""
    held_back: Count = 4  # images of each seen class kept out of training, to score it on
    steps: Count = 3_000  # training steps
    batch_classes: Count = 10  # seen classes per batch
    batch_images: Count = 4  # images of each per batch
    lr: Annotated[float, Positive] = 1e-3  # Adam's learning rate
    channels: Count = 32  # Conv-4 width
    hidden: Count = 128  # relation networks' MLP width
    activation: Literal["relu", "tanh"] = "tanh"
    """relation networks' MLP activation (the paper's ReLU collapsed to a constant score
    in our runs; see experiments/results/zero_shot/README.md)"""
    checkpoint_every: Count = 500  # steps between checkpoints
    seed: int = 0  # seeds the initialisation and the batches
    out: str | None = None  # run folder (None: runs/zero_shot/<learner>-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads


def accuracy(
    learner: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: torch.Tensor,
    attributes: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """Hits (1/0) of every image in ``x`` classified among ``classes``."""
    hits = []
    for start in range(0, len(x), 256):
        scores = learner.predict(x[start : start + 256], attributes[classes])
        hits.append((classes[scores.argmax(-1)] == y[start : start + 256]).float())
    return torch.cat(hits)


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/zero_shot/{s.learner}-seed{s.seed}")
    if s.held_back + s.batch_images > s.per_class:
        raise SystemExit(f"--held-back {s.held_back} + --batch-images {s.batch_images} must not "
                         f"exceed --per-class {s.per_class}")  # fmt: skip
    data = make_shapes(s.per_class, s.unseen, s.data_seed, s.noise)
    if s.batch_classes > len(data.seen):
        raise SystemExit(f"--batch-classes {s.batch_classes}: only {len(data.seen)} seen classes")
    x = torch.from_numpy(data.images).float() / 255
    y = torch.from_numpy(data.labels)
    attributes = torch.from_numpy(data.attributes)
    within = torch.arange(len(y)) % s.per_class  # an image's index within its class
    seen, unseen = torch.from_numpy(data.seen), torch.from_numpy(data.unseen)
    is_seen = torch.isin(y, seen)
    train = is_seen & (within >= s.held_back)
    members = {int(c): torch.nonzero(train & (y == c)).squeeze(1) for c in seen}
    encoder = Conv4(ways=1, in_channels=3, image_size=32, channels=s.channels, norm="group")
    dim = encoder.head.in_features
    if s.learner == "relation":
        learner = ZeroShotRelationNet(
            encoder, attributes.shape[1], dim, hidden=s.hidden, activation=s.activation
        )
    else:
        groups = [len(values) for values in ATTRIBUTES.values()]
        learner = AttributeClassifier(encoder, dim, groups)
    optimizer = torch.optim.Adam(learner.parameters(), lr=s.lr)
    rng = np.random.default_rng(s.seed)
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("learner.pt",))  # fmt: skip
    with run.interruptible():
        state = run.restore()
        if state is not None:
            learner.load_state_dict(state["learner"])
            optimizer.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["rng"]
            run.exit_if_past(s.steps)
        for it in run.progress(s.steps, f"zero-shot {s.learner}"):
            classes = seen[rng.choice(len(seen), s.batch_classes, replace=False)]
            rows = [members[int(c)][rng.choice(len(members[int(c)]), s.batch_images,
                                               replace=False)] for c in classes]  # fmt: skip
            labels = torch.arange(s.batch_classes).repeat_interleave(s.batch_images)
            loss = learner.loss(x[torch.cat(rows)], labels, attributes[classes])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.log(it + 1, loss=loss.item(), wall_s=run.wall_s)
            run.status(it + 1, f"loss {loss.item():.4f}", every=100)
            if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.steps:
                run.save({"learner": learner.state_dict(), "optimizer": optimizer.state_dict(),
                          "rng": rng.bit_generator.state}, it + 1)  # fmt: skip
    learner.eval()
    test = ~is_seen
    unseen_mean, unseen_ci = mean_and_ci95(accuracy(learner, x[test], y[test], unseen, attributes))
    kept = is_seen & (within < s.held_back)
    seen_mean, seen_ci = mean_and_ci95(accuracy(learner, x[kept], y[kept], seen, attributes))
    result = {
        "learner": s.learner,
        "unseen_accuracy": unseen_mean,
        "unseen_ci95": unseen_ci,
        "unseen_classes": len(unseen),
        "unseen_images": int(test.sum()),
        "chance": 1 / len(unseen),
        "seen_accuracy": seen_mean,
        "seen_ci95": seen_ci,
        "seen_classes": len(seen),
    }
    metarl.save_learner(out / "learner.pt", learner, extra={"steps": s.steps})
    written = run.write_results(result)
    print(f"{s.learner}: {100 * unseen_mean:.1f} ± {100 * unseen_ci:.1f}% on {len(unseen)} "
          f"unseen combinations (chance {100 / len(unseen):.1f}%); {100 * seen_mean:.1f}% on "
          f"held-back images of the {len(seen)} seen ones")  # fmt: skip
    run.finish()
    return json.loads(written.read_text())


if __name__ == "__main__":
    main()
