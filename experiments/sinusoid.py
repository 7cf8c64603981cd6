"""Few-shot sinusoid regression with MAML, FOMAML, Meta-SGD or Reptile.

Protocol (Finn et al. 2017; Li et al. 2017): amplitude U[0.1, 5], phase U[0, pi],
x U[-5, 5]; MLP 1-40-40-1 with ReLU; K support and K query points per task during
meta-training; 25 tasks per meta-batch; one inner step of 0.01 (Meta-SGD: learned step sizes
initialised from U[0.005, 0.1]); Adam with learning rate 1e-3 for 70,000 iterations.
Evaluation: held-out tasks from a separate seed, K support points, mean squared error on
100 query points after 0..10 inner steps.

    python experiments/sinusoid.py --learner maml --shots 10 --seed 0
    python experiments/sinusoid.py --learner maml --shots 10 --seed 0 --resume   # after a stop

Writes ``<out>/metrics.csv`` (training curve), ``<out>/checkpoint.pt`` and
``<out>/results.json`` (evaluation), and prints the query loss before and after adaptation.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from metarl.core import MAML, MetaLearner, MetaSGD, Reptile
from metarl.supervised import MLP, SinusoidTasks
from metarl.supervised.evaluate import losses_after_steps, mean_and_ci95
from metarl.utils import CSVLogger, load_checkpoint, save_checkpoint, seed_everything
from metarl.utils.cli import parse_settings


@dataclass
class Settings:
    """Sinusoid regression meta-training and evaluation."""

    learner: str = "maml"  # maml | fomaml | metasgd | reptile
    shots: int = 10  # K support points per task
    queries: int | None = None  # query points per task in meta-training (None: same as shots)
    meta_batch: int = 25
    iterations: int = 70_000
    inner_lr: float = 0.01  # MAML / FOMAML / Reptile inner step size
    inner_steps: int = 1
    metasgd_init: tuple[float, ...] = (0.005, 0.1)  # range of Meta-SGD's initial step sizes
    outer_lr: float = 1e-3  # Adam (Reptile: Adam on the Reptile pseudo-gradient)
    eval_tasks: int = 600
    eval_points: int = 100
    eval_max_steps: int = 10
    seed: int = 0
    eval_seed: int = 2024  # held-out tasks are drawn from this seed, never from training's
    out: str | None = None  # default: runs/sinusoid/<learner>-<shots>shot-seed<seed>
    log_every: int = 100
    checkpoint_every: int = 5_000
    resume: bool = False
    threads: int = 1


def make_learner(s: Settings) -> MetaLearner:
    model = MLP(1, 1, hidden=(40, 40))
    if s.learner == "maml":
        return MAML(model, inner_lr=s.inner_lr, inner_steps=s.inner_steps)
    if s.learner == "fomaml":
        return MAML(model, inner_lr=s.inner_lr, inner_steps=s.inner_steps, first_order=True)
    if s.learner == "metasgd":
        low, high = s.metasgd_init
        return MetaSGD(model, inner_lr=(low, high), inner_steps=s.inner_steps)
    if s.learner == "reptile":
        return Reptile(model, inner_lr=s.inner_lr, inner_steps=s.inner_steps)
    raise SystemExit(f"unknown learner {s.learner!r}: choose maml, fomaml, metasgd or reptile")


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    out = Path(s.out or f"runs/sinusoid/{s.learner}-{s.shots}shot-seed{s.seed}")
    queries = s.queries or s.shots
    generator = seed_everything(s.seed)
    tasks = SinusoidTasks()
    learner = make_learner(s)
    optimizer = torch.optim.Adam(learner.parameters(), lr=s.outer_lr)

    start, elapsed = 0, 0.0
    ckpt_path = out / "checkpoint.pt"
    if s.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        learner.load_state_dict(ckpt["learner"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        start, elapsed = ckpt["iteration"], ckpt["elapsed"]
        print(f"resumed from {ckpt_path} at iteration {start}")
    logger = CSVLogger(out / "metrics.csv", resume_from=start if s.resume else None)

    def checkpoint(iteration: int) -> None:
        state = {
            "learner": learner.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "iteration": iteration,
            "elapsed": elapsed + time.perf_counter() - t0,
            "settings": asdict(s),
        }
        save_checkpoint(state, ckpt_path)

    t0 = time.perf_counter()
    running = 0.0
    bar = tqdm(
        range(start, s.iterations),
        initial=start,
        total=s.iterations,
        mininterval=2,
        desc=f"{s.learner} {s.shots}-shot",
        file=sys.stdout,
        disable=None,
    )
    for it in bar:
        batch, _ = tasks.sample(s.meta_batch, s.shots, queries, generator)
        loss = learner.meta_loss(batch, F.mse_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
        if (it + 1) % s.log_every == 0:
            wall = elapsed + time.perf_counter() - t0
            logger.log({"step": it + 1, "query_mse": running / s.log_every, "wall_s": wall})
            rate = (it + 1 - start) / (time.perf_counter() - t0)
            bar.set_postfix(query_mse=f"{running / s.log_every:.3f}", it_s=f"{rate:.0f}")
            running = 0.0
        if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.iterations:
            checkpoint(it + 1)
    train_wall = elapsed + time.perf_counter() - t0

    # A resumed run gives the same result as an uninterrupted one: record the command without it.
    cli_args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    eval_batch, _ = tasks.sample(
        s.eval_tasks, s.shots, s.eval_points, torch.Generator().manual_seed(s.eval_seed)
    )
    steps = list(range(s.eval_max_steps + 1))
    mse = losses_after_steps(learner, eval_batch, F.mse_loss, steps)
    curve = {
        str(k): dict(zip(("mean", "ci95"), mean_and_ci95(mse[k])), median=mse[k].median().item())
        for k in steps
    }
    results = {
        "learner": s.learner,
        "shots": s.shots,
        "mse_after_steps": curve,
        "train_wall_s": round(train_wall, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
        "command": "python experiments/sinusoid.py " + shlex.join(cli_args),
        "settings": asdict(s),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"{s.learner}, {s.shots}-shot, {s.eval_tasks} held-out tasks, query MSE: "
        f"before adaptation {curve['0']['mean']:.3f}, after 1 step {curve['1']['mean']:.3f} "
        f"(+/- {curve['1']['ci95']:.3f}), after {s.eval_max_steps} steps "
        f"{curve[str(s.eval_max_steps)]['mean']:.3f}; trained {s.iterations} iterations "
        f"in {train_wall:.0f} s; results in {out / 'results.json'}"
    )
    return results


if __name__ == "__main__":
    main()
