"""Few-shot sinusoid regression with MAML, FOMAML, Meta-SGD or Reptile.

Protocol (Finn et al. 2017; Li et al. 2017): amplitude U[0.1, 5], phase U[0, pi],
x U[-5, 5]; MLP 1-40-40-1 with ReLU; K support and K query points per task during
meta-training; 25 tasks per meta-batch; one inner step of 0.01 (Meta-SGD: learned step sizes
initialised from U[0.005, 0.1]); Adam with learning rate 1e-3 for 70,000 iterations (Reptile:
Adam on its pseudo-gradient). Evaluation: held-out tasks from a separate seed, K support
points, mean squared error on 100 query points after 0..10 inner steps.

    python experiments/sinusoid.py --learner maml --shots 10 --seed 0
    python experiments/sinusoid.py --learner maml --shots 10 --seed 0 --resume   # after a stop

Writes, inside ``--out`` (default ``runs/sinusoid/<learner>-<shots>shot-seed<seed>``):
``settings.json`` (the command and settings, at the start), ``metrics.csv`` (training curve:
step, query_mse, wall_s), ``tensorboard/`` (the same curve for TensorBoard),
``checkpoint.pt`` (and the one before it, ``checkpoint.prev.pt``) and ``results.json``
(evaluation and provenance); prints the query loss before and after adaptation and the
output folder. A second run into the same folder needs ``--resume`` or ``--overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import torch
import torch.nn.functional as F

from metarl import make_learner
from metarl.core import MetaLearner
from metarl.nn import MLP
from metarl.supervised import SinusoidTasks
from metarl.supervised.evaluate import losses_after_steps, mean_and_ci95
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import Check, NonNegative, Positive, parse_settings

SCRIPT = "experiments/sinusoid.py"
Count = Annotated[int, Positive]
StepSize = Annotated[float, Positive]
LearnerName = Literal["maml", "fomaml", "metasgd", "reptile"]
AtLeastTwo = Annotated[int, Check(lambda n: n >= 2, "must be >= 2")]


@dataclass
class Settings:
    """Sinusoid regression meta-training and evaluation."""

    learner: LearnerName = "maml"  # the meta-learner (fomaml: first-order MAML)
    shots: Count = 10  # K support points per task, in meta-training and evaluation
    queries: Count | None = None  # query points per task in meta-training (None: --shots)
    meta_batch: Count = 25  # tasks per meta-batch
    iterations: Annotated[int, NonNegative] = 70_000  # meta-updates (0: evaluate the init only)
    inner_lr: StepSize = 0.01  # inner step size of MAML, FOMAML and Reptile (not Meta-SGD)
    inner_steps: Count = 1  # inner steps in meta-training (evaluation: 0..--eval-max-steps)
    metasgd_init: tuple[StepSize, StepSize] = (0.005, 0.1)  # Meta-SGD's steps from U[low, high]
    outer_lr: StepSize = 1e-3  # Adam's learning rate (Reptile: Adam on its pseudo-gradient)
    eval_tasks: AtLeastTwo = 600  # held-out tasks (at least 2, for a confidence interval)
    eval_points: Count = 100  # query points per held-out task
    eval_max_steps: Count = 10  # evaluate after 0, 1, ..., this many inner steps (at least 1)
    seed: int = 0  # seeds the initialisation and the meta-training tasks
    eval_seed: int = 2024  # held-out tasks are drawn from this seed, never from training's
    out: str | None = None  # output folder (None: runs/sinusoid/<learner>-<shots>shot-seed<seed>)
    log_every: Count = 100  # log the mean meta-training query MSE every this many iterations
    checkpoint_every: Count = 5_000  # checkpoint every this many iterations, and at the end
    resume: bool = False  # continue the run in --out (same settings; --iterations may grow)
    overwrite: bool = False  # delete the run already in --out and start afresh
    threads: Count = 1  # torch CPU threads

    def validate(self) -> None:
        low, high = self.metasgd_init
        if low > high:
            raise ValueError(f"--metasgd-init needs low <= high, got {low} {high}")


# Settings a resumed run may change: where the folder is, the thread count, and how far to
# train (a run resumed with more iterations continues as if it had been asked for them).
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "iterations")


class Resolved(NamedTuple):
    """The values that ``None`` settings stand for."""

    queries: int
    out: Path


def resolve(s: Settings) -> Resolved:
    """The one place ``None`` settings get their meaning: ``--queries`` defaults to
    ``--shots``, ``--out`` to ``runs/sinusoid/<learner>-<shots>shot-seed<seed>``."""
    return Resolved(
        queries=s.shots if s.queries is None else s.queries,
        out=Path(s.out or f"runs/sinusoid/{s.learner}-{s.shots}shot-seed{s.seed}"),
    )


def build_learner(s: Settings) -> MetaLearner:
    """The learner ``--learner`` names around the 1-40-40-1 ReLU MLP, with its arguments."""
    options = {
        "maml": {"inner_lr": s.inner_lr},
        "fomaml": {"inner_lr": s.inner_lr},
        "metasgd": {"inner_lr": tuple(s.metasgd_init)},
        # No inner_batch: Reptile adapts on the whole support set, so it draws nothing from
        # its generator; the global one is passed (saved and restored with every checkpoint).
        "reptile": {"inner_lr": s.inner_lr, "generator": torch.default_generator},
    }[s.learner]
    return make_learner(s.learner, MLP(1, 1, hidden=(40, 40)), inner_steps=s.inner_steps, **options)


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    queries, out = resolve(s)
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE)
    torch.set_num_threads(s.threads)
    generator = seed_everything(s.seed)
    tasks = SinusoidTasks()
    learner = build_learner(s)
    optimizer = torch.optim.Adam(learner.parameters(), lr=s.outer_lr)

    state = run.restore()
    if state is not None:
        learner.load_state_dict(state["learner"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        run.exit_if_past(s.iterations)

    with run.interruptible():
        running = 0.0
        for it in run.progress(s.iterations, f"{s.learner} {s.shots}-shot"):
            batch, _ = tasks.sample(s.meta_batch, s.shots, queries, generator)
            loss = learner.meta_loss(batch, F.mse_loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
            if (it + 1) % s.log_every == 0:
                mse = running / s.log_every
                run.log(it + 1, query_mse=mse, wall_s=run.wall_s)
                run.status(it + 1, f"query MSE {mse:.3f}", every=10 * s.log_every)
                running = 0.0
            if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.iterations:
                state = {
                    "learner": learner.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                }
                run.save(state, it + 1)

    eval_batch, _ = tasks.sample(
        s.eval_tasks, s.shots, s.eval_points, torch.Generator().manual_seed(s.eval_seed)
    )
    steps = list(range(s.eval_max_steps + 1))
    mse = losses_after_steps(learner, eval_batch, F.mse_loss, steps)
    curve = {
        str(k): dict(zip(("mean", "ci95"), mean_and_ci95(mse[k])), median=mse[k].median().item())
        for k in steps
    }
    path = run.write_results({"learner": s.learner, "shots": s.shots, "mse_after_steps": curve})
    results = json.loads(path.read_text())
    print(
        f"{s.learner}, {s.shots}-shot, {s.eval_tasks} held-out tasks, query MSE: "
        f"before adaptation {curve['0']['mean']:.3f}, after 1 step {curve['1']['mean']:.3f} "
        f"(+/- {curve['1']['ci95']:.3f}), after {s.eval_max_steps} steps "
        f"{curve[str(s.eval_max_steps)]['mean']:.3f}; trained {s.iterations} iterations "
        f"in {run.wall_s:.0f} s"
    )
    run.finish()
    return results


if __name__ == "__main__":
    main()
