"""Meta-RL with MAML-TRPO, MAML (vanilla PG), FOMAML, Meta-SGD or Reptile on a task distribution.

Defaults are the MAML paper's 2D navigation protocol: 20 tasks per meta-batch, 20 episodes
of horizon 100 per task, one inner policy-gradient step of 0.1, TRPO with KL bound 0.01,
a 100-100 ReLU Gaussian policy, linear feature baseline, gamma 0.99.

    python experiments/maml_rl.py --env metarl/Navigation2D-v0 --learner maml-trpo --seed 0
    python experiments/maml_rl.py ... --resume          # continue a stopped run

Learners: maml-trpo, maml-pg (Adam on the surrogate), fomaml-trpo, metasgd-trpo, reptile,
and the reference baselines: pretrained (inner_steps=0: one multi-task TRPO policy,
fine-tuned at test time), random (no training, fine-tuned at test time) and oracle (a
multi-task TRPO policy that sees the task in its observation).
Writes <out>/metrics.csv, TensorBoard events in <out>/tensorboard, <out>/checkpoint.pt
(atomic, every --checkpoint-every iterations), <out>/eval.json and
<out>/learning_curve.png.
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

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from tqdm import tqdm  # noqa: E402

import metarl  # noqa: E402, F401
from metarl.core import MAML, MetaLearner, MetaSGD, Reptile  # noqa: E402
from metarl.envs import flatten_task  # noqa: E402
from metarl.rl import GaussianMLPPolicy, MetaRLTrainer, MultiTaskSampler  # noqa: E402
from metarl.utils import CSVLogger, load_checkpoint, save_checkpoint, seed_everything  # noqa: E402
from metarl.utils.cli import parse_settings  # noqa: E402


@dataclass
class Settings:
    """Meta-RL training and evaluation."""

    env: str = "metarl/Navigation2D-v0"
    learner: str = "maml-trpo"
    iterations: int = 200
    tasks_per_batch: int = 20
    episodes_per_task: int = 20
    horizon: int = 100
    inner_lr: float = 0.1
    inner_steps: int = 1
    max_kl: float = 0.01
    backtrack_ratio: float = 0.8  # TRPO line search
    outer_lr: float = 1e-3  # Adam (maml-pg) or Reptile's epsilon
    hidden: tuple[int, ...] = (100, 100)
    activation: str = "relu"  # relu | tanh
    rescale_actions: bool = True  # policy acts in [-1, 1], mapped onto the action box (rllab)
    gamma: float = 0.99
    gae_lambda: float = 1.0
    eval_tasks: int = 40
    eval_steps: int = 3
    # Steps 2+ at test time may also be taken at a fraction of the first step's size; the
    # fraction is chosen on separate validation tasks, and both evaluations are reported.
    later_step_scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1)
    val_tasks: int = 20
    val_seed: int = 4321
    seed: int = 0
    eval_seed: int = 1234
    out: str | None = None  # default: runs/<env name>/<learner>-seed<seed>
    checkpoint_every: int = 10
    resume: bool = False
    threads: int = 2


def make_learner(s: Settings, policy: torch.nn.Module) -> tuple[MetaLearner, str]:
    if s.learner == "maml-trpo":
        return MAML(policy, s.inner_lr, s.inner_steps), "trpo"
    if s.learner == "maml-pg":
        return MAML(policy, s.inner_lr, s.inner_steps), "sgd"
    if s.learner == "fomaml-trpo":
        return MAML(policy, s.inner_lr, s.inner_steps, first_order=True), "trpo"
    if s.learner == "metasgd-trpo":
        return MetaSGD(policy, s.inner_lr, s.inner_steps), "trpo"
    if s.learner == "reptile":
        return Reptile(policy, s.inner_lr, s.inner_steps), "reptile"
    if s.learner in ("pretrained", "random", "oracle"):
        return MAML(policy, s.inner_lr, inner_steps=0), "trpo"
    raise SystemExit(f"unknown learner {s.learner!r}")


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    name = s.env.split("/")[-1]
    out = Path(s.out or f"runs/{name}/{s.learner}-seed{s.seed}")
    oracle = s.learner == "oracle"
    if s.learner == "random":
        s.iterations = 0
    task_size = len(flatten_task(gym.make(s.env).unwrapped.task)) if oracle else 0
    policy = GaussianMLPPolicy.for_env(
        s.env, extra_obs=task_size, hidden=s.hidden, activation=s.activation
    )
    learner, outer = make_learner(s, policy)
    sampler = MultiTaskSampler(
        s.env, s.episodes_per_task, s.horizon, seed=s.seed, task_in_observation=oracle,
        rescale_actions=s.rescale_actions,
    )  # fmt: skip
    trainer = MetaRLTrainer(
        learner, sampler, outer, s.max_kl, s.outer_lr, s.gamma, s.gae_lambda,
        backtrack_ratio=s.backtrack_ratio,
    )  # fmt: skip

    start, elapsed = 0, 0.0
    ckpt_path = out / "checkpoint.pt"
    if s.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        trainer.load_state_dict(ckpt["trainer"])
        torch.set_rng_state(ckpt["torch_rng"])
        start, elapsed = ckpt["iteration"], ckpt["elapsed"]
        print(f"resumed from {ckpt_path} at iteration {start}")
    logger = CSVLogger(out / "metrics.csv", resume_from=start if s.resume else None)
    # TensorBoard: `tensorboard --logdir runs`; a resumed run drops events past its checkpoint.
    board = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1 if start else None)

    t0 = time.perf_counter()
    bar = tqdm(range(start, s.iterations), initial=start, total=s.iterations, file=sys.stdout,
               desc=f"{s.learner} {name}", disable=None)  # fmt: skip
    for it in bar:
        tick = time.perf_counter()
        stats = trainer.meta_step(sampler.sample_tasks(s.tasks_per_batch))
        stats["steps_per_s"] = stats["env_steps"] / (time.perf_counter() - tick)
        wall = elapsed + time.perf_counter() - t0
        logger.log({"step": it + 1, **stats, "wall_s": wall})
        for key, value in stats.items():
            board.add_scalar(f"train/{key}", value, it + 1)
        summary = (
            f"return before {stats['return_before']:.1f}, after {stats['return_after']:.1f}, "
            f"{stats['steps_per_s']:.0f} env steps/s"
        )
        bar.set_postfix_str(summary)
        if bar.disable and (it + 1) % 10 == 0:  # no terminal: a line every 10 iterations
            print(f"iteration {it + 1}: {summary}", flush=True)
        if (it + 1) % s.checkpoint_every == 0 or it + 1 == s.iterations:
            state = {"trainer": trainer.state_dict(), "torch_rng": torch.get_rng_state(),
                     "iteration": it + 1, "elapsed": wall, "settings": asdict(s)}  # fmt: skip
            save_checkpoint(state, ckpt_path)
    board.close()
    train_wall = elapsed + time.perf_counter() - t0

    def make_sampler(seed: int) -> MultiTaskSampler:
        return MultiTaskSampler(
            s.env, s.episodes_per_task, s.horizon, seed=seed, task_in_observation=oracle,
            rescale_actions=s.rescale_actions,
        )  # fmt: skip

    def draw_tasks(count: int, seed: int) -> list[dict]:
        return sampler.task_env.sample_tasks(count, np.random.default_rng(seed))

    trainer.sampler = make_sampler(s.eval_seed)
    eval_tasks = draw_tasks(s.eval_tasks, s.eval_seed)
    returns = trainer.evaluate(eval_tasks, s.eval_steps)  # [steps + 1, tasks]
    later = {}
    if s.eval_steps >= 2 and len(s.later_step_scales) > 1 and not oracle:
        val_tasks = draw_tasks(s.val_tasks, s.val_seed)
        scores = {}
        for scale in s.later_step_scales:
            trainer.sampler = make_sampler(s.val_seed)
            scores[scale] = trainer.evaluate(val_tasks, s.eval_steps, (1.0, scale))[-1].mean()
        best = max(scores, key=lambda k: scores[k].item())
        later = {
            "later_step_scale": best,
            "validation_last_step_return": {str(k): round(v.item(), 3) for k, v in scores.items()},
        }
        if best != 1.0:  # otherwise the plain evaluation above is the answer
            trainer.sampler = make_sampler(s.eval_seed)
            scaled = trainer.evaluate(eval_tasks, s.eval_steps, (1.0, best))
            later["mean_return_later_scaled"] = scaled.mean(1).tolist()
            later["std_return_later_scaled"] = scaled.std(1).tolist()
    cli_args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    result = {
        "env": s.env,
        "learner": s.learner,
        "inner_steps": list(range(s.eval_steps + 1)),
        "mean_return": returns.mean(1).tolist(),
        "std_return": returns.std(1).tolist(),
        "n_tasks": s.eval_tasks,
        **later,
        "train_wall_s": round(train_wall, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {s.threads} torch threads",
        "command": "python experiments/maml_rl.py " + shlex.join(cli_args),
        "settings": asdict(s),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    if (out / "metrics.csv").exists():
        plot_learning_curve(out)
    print(f"{s.learner} on {s.env}, {s.eval_tasks} held-out tasks, mean return after "
          + ", ".join(f"{k} step(s): {r:.2f}" for k, r in enumerate(result["mean_return"]))
          + f"; trained {s.iterations} iterations in {train_wall / 60:.1f} min")  # fmt: skip
    if "mean_return_later_scaled" in later:
        print(f"with steps 2+ at {later['later_step_scale']} of the first step's size (chosen on "
              f"{s.val_tasks} validation tasks): "
              + ", ".join(f"{r:.2f}" for r in later["mean_return_later_scaled"]))  # fmt: skip
    return result


def plot_learning_curve(out: Path) -> None:
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    steps = [int(r[col["step"]]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("return_before", "before adaptation"), ("return_after", "after 1 step")):
        ax.plot(steps, [float(r[col[key]]) for r in rows], label=label)
    ax.set(xlabel="meta-iteration", ylabel="mean return (meta-batch)", title=str(out))
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
