"""Meta-RL with MAML-TRPO, MAML (vanilla PG), FOMAML, Meta-SGD or Reptile on a task distribution.

Defaults are the MAML paper's 2D navigation protocol: 20 tasks per meta-batch, 20 episodes
of horizon 100 per task, one inner policy-gradient step of 0.1, TRPO with KL bound 0.01,
a 100-100 ReLU Gaussian policy, linear feature baseline, gamma 0.99. ``--fisher-every 4``
takes TRPO's Fisher-vector products on every 4th task only: the outer step costs about a
quarter (``experiments/results/navigation2d_notes.md`` compares the learning curves).

    python experiments/maml_rl.py --env metarl/Navigation2D-v0 --learner maml-trpo --seed 0
    python experiments/maml_rl.py ... --resume          # continue a stopped run
    python experiments/maml_rl.py ... --overwrite       # start again in the same --out

Meta-World (the optional extra): train on ML1's training goals, test on its held-out goals
with episodes that end at the first success, so that eval.json's ``ended_early`` is the
success rate per adaptation step::

    python experiments/maml_rl.py --env metarl/MetaWorldML1-v0 \
        --env-kwargs '{"env_name": "reach-v3"}' --horizon 500 \
        --eval-env-kwargs '{"split": "test", "terminate_on_success": true}' ...

Learners (``LEARNERS`` below: the learner and outer step behind each name): maml-trpo,
maml-pg (Adam on the surrogate), fomaml-trpo, metasgd-trpo, reptile (its interpolation:
SGD on the pseudo-gradient), and the reference baselines: pretrained (inner_steps=0: one
multi-task TRPO policy, fine-tuned at test time), random (no training, fine-tuned at test
time) and oracle (a multi-task TRPO policy that sees the task in its observation).

Writes into ``--out``: ``settings.json`` (the command and settings, at the start),
``metrics.csv`` (one row per meta-iteration), TensorBoard events in ``<out>/tensorboard``,
``checkpoint.pt`` (atomic and checksummed, every ``--checkpoint-every`` iterations and at the
end; ``checkpoint.prev.pt`` is the one before), ``eval.json`` (held-out returns after 0..k
steps, overall and per task beside each task's parameters, with the command, machine,
versions and wall time), ``learning_curve.png`` and
``learner.pt`` (the trained learner for ``metarl.load_learner``, written after training)
and, with ``--snapshot-every n``, ``snapshots/learner-<iteration>.pt`` every n iterations (the
learner as it was then, loadable the same way; the MAML paper's runs kept one every 25).
A second run into the same folder is refused unless it passes ``--resume`` (same settings)
or ``--overwrite``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

import metarl
from metarl.core import TRPO, MetaLearner
from metarl.envs import task_features
from metarl.rl import GaussianMLPPolicy, MetaRLTrainer, MultiTaskSampler
from metarl.rl.trainer import Outer
from metarl.utils import Run, RunError, plot_curves, seed_everything, start_run
from metarl.utils.checkpoint import load_checkpoint
from metarl.utils.cli import (
    Check,
    Discount,
    JsonObject,
    NonEmpty,
    NonNegative,
    Positive,
    Probability,
    json_object,
    parse_settings,
)

SCRIPT = "experiments/maml_rl.py"
Learner = Literal[
    "maml-trpo",
    "maml-pg",
    "fomaml-trpo",
    "metasgd-trpo",
    "reptile",
    "pretrained",
    "random",
    "oracle",
]

# name -> (metarl.make_learner name, outer step, inner steps in training: None = --inner-steps)
LEARNERS: dict[str, tuple[str, Literal["trpo", "adam", "sgd"], int | None]] = {
    "maml-trpo": ("maml", "trpo", None),
    "maml-pg": ("maml", "adam", None),
    "fomaml-trpo": ("fomaml", "trpo", None),
    "metasgd-trpo": ("metasgd", "trpo", None),
    "reptile": ("reptile", "sgd", None),
    "pretrained": ("maml", "trpo", 0),  # a multi-task policy, adapted only at test time
    "random": ("maml", "trpo", 0),  # never trained (see resolve)
    "oracle": ("maml", "trpo", 0),  # sees the task; evaluated without adapting
}
# Settings of the final evaluation only: a finished run may be evaluated again with --resume
# and other values (its eval.json records the ones used), as the committed runs were.
EVALUATION = (
    "eval_tasks", "eval_steps", "eval_seed", "eval_episodes_per_task", "eval_env_kwargs",
    "later_step_scales", "val_tasks", "val_seed", "select_snapshot",
)  # fmt: skip
# Settings a resumed run may change: those, the run flags, the folder itself, the speed
# settings (thread counts, tasks vectorised at once) and the number of iterations (a run
# continues to a larger one; nothing else depends on it).
RESUME_IGNORES = (
    "resume", "overwrite", "out", "threads", "physics_threads", "task_chunk", "iterations",
    "snapshot_every", *EVALUATION,
)  # fmt: skip
# Training settings added after the first runs, with the value the runs from before them had:
# a saved record without one counts as holding this value (see as_before).
BEFORE_ADDED = {
    "activation": "relu",  # the policy was a ReLU network
    "rescale_actions": False,  # it acted in raw units (the navigation raw-actions run)
    "fisher_every": 1,  # TRPO's Fisher-vector products used the whole meta-batch
    "init": "torch",  # the policy had nn.Linear's own initialisation
    "env_kwargs": "{}",  # the distribution was made with its registered arguments
    "eval_env_kwargs": "{}",  # and tested with the same
}


@dataclass
class Settings:
    """Meta-RL training and evaluation (defaults: the MAML paper's 2D navigation protocol)."""

    env: str = "metarl/Navigation2D-v0"  # gymnasium id of the task distribution
    env_kwargs: Annotated[str, JsonObject] = "{}"
    """JSON object of the distribution's arguments, e.g. '{"centre_of_mass": true}' on the
    HalfCheetah ids (rllab's 20-number observation, the MAML paper's)"""
    learner: Learner = "maml-trpo"  # meta-learner and outer step (see the module docstring)
    iterations: Annotated[int, NonNegative] = 200  # meta-iterations (random: 0); may grow on resume
    tasks_per_batch: Annotated[int, Positive] = 20  # tasks per meta-batch
    episodes_per_task: Annotated[int, Positive] = 20  # episodes per task per adaptation step
    horizon: Annotated[int, Positive] = 100  # steps per episode
    inner_lr: Annotated[float, Positive] = 0.1  # inner policy-gradient step size
    inner_steps: Annotated[int, Positive] = 1  # inner steps in training (pretrained etc.: 0)
    max_kl: Annotated[float, Positive] = 0.01  # TRPO's KL bound (the -trpo learners and baselines)
    backtrack_ratio: Annotated[float, Check(lambda r: 0 < r < 1, "must be in (0, 1)")] = 0.8
    """TRPO's line-search shrink factor"""
    fisher_every: Annotated[int, Positive] = 1
    """TRPO's Fisher-vector products on every n-th task of the meta-batch (1: all, exact)"""
    outer_lr: Annotated[float, Positive] = 1e-3
    """Adam's lr for maml-pg; Reptile's epsilon (SGD on its pseudo-gradient); unused by TRPO"""
    hidden: Annotated[tuple[int, ...], Positive, NonEmpty] = (100, 100)  # policy hidden widths
    activation: Literal["relu", "tanh"] = "relu"  # policy hidden activation
    init: Literal["torch", "xavier"] = "torch"
    """policy weight initialisation (xavier: Glorot-uniform weights and zero biases, as the
    MAML paper's rllab policies)"""
    rescale_actions: bool = True  # policy acts in [-1, 1], mapped onto the action box (rllab)
    gamma: Annotated[float, Discount] = 0.99  # discount
    gae_lambda: Annotated[float, Probability] = 1.0
    """GAE lambda for the advantages (1: Monte Carlo returns minus the baseline)"""
    eval_tasks: Annotated[int, Positive] = 40  # held-out tasks for the final evaluation
    eval_steps: Annotated[int, NonNegative] = 3  # adaptation steps at test time
    eval_env_kwargs: Annotated[str, JsonObject] = "{}"
    """JSON object merged over --env-kwargs for the held-out tasks and their episodes only,
    e.g. '{"split": "test", "terminate_on_success": true}' for Meta-World's held-out goals,
    where the share of episodes ended early is then the success rate"""
    eval_episodes_per_task: Annotated[int, Positive] | None = None
    """episodes per task per step at test and validation time (None: --episodes-per-task;
    the MAML paper's published HalfCheetah policy trained with 10 and was tested with 20)"""
    later_step_scales: Annotated[tuple[float, ...], Positive] = (1.0, 0.5, 0.25, 0.1)
    """Sizes of test steps 2+ to try, as fractions of step 1's; chosen on --val-tasks tasks"""
    val_tasks: Annotated[int, Positive] = 20
    """validation tasks for choosing the later-step scale (and --select-snapshot's iteration)"""
    val_seed: int = 4321  # seed of the validation tasks and their episodes
    select_snapshot: bool = False
    """also evaluate the snapshot (--snapshot-every) that adapts best in one step on the
    validation tasks, as the MAML paper's curves came from one chosen snapshot"""
    seed: int = 0  # seed of the initialisation and of the training tasks and episodes
    eval_seed: int = 1234  # seed of the held-out tasks and their episodes
    out: str | None = None  # run folder; None: runs/<env name>/<learner>-seed<seed>
    checkpoint_every: Annotated[int, Positive] = 10  # iterations between checkpoints
    snapshot_every: Annotated[int, NonNegative] = 0
    """Keep the learner every n iterations in <out>/snapshots (0: only the final one)"""
    resume: bool = False  # continue the run in --out from its checkpoint (same settings)
    overwrite: bool = False  # delete the run already in --out and start again
    threads: Annotated[int, Positive] = 2  # torch threads
    physics_threads: Annotated[int, Positive] | None = None
    """MuJoCo physics threads (default: all cores); 1 when two runs share a 2-core machine"""
    task_chunk: Annotated[int, NonNegative] = 5
    """tasks whose adaptation and outer loss are vectorised at once (0: the whole meta-batch);
    speed only: small chunks keep the batched tensors small enough for the allocator to reuse"""


def resolve(s: Settings) -> Settings:
    """The per-learner rules and defaults, in one place: the run folder when --out is None,
    and no training at all for ``random``. (Inner steps per learner: ``LEARNERS``.)"""
    out = s.out or f"runs/{s.env.split('/')[-1]}/{s.learner}-seed{s.seed}"
    iterations = 0 if s.learner == "random" else s.iterations
    return dataclasses.replace(s, out=out, iterations=iterations)


def as_before(name: str, value: object) -> bool:
    """Whether a setting the saved record lacks holds the value the run was made with
    (``BEFORE_ADDED``); any other value, or a setting not listed there, is a difference and
    the resume is refused (``--rescale-actions`` on a run made with raw actions)."""
    return name in BEFORE_ADDED and BEFORE_ADDED[name] == value


def build_learner(s: Settings) -> tuple[MetaLearner, Outer]:
    """The policy, the learner around it and its outer step, as ``LEARNERS`` says."""
    oracle = s.learner == "oracle"
    env_kwargs = json_object(s.env_kwargs, "--env-kwargs")
    task_size = len(task_features(gym.make(s.env, **env_kwargs))) if oracle else 0
    policy = GaussianMLPPolicy.for_env(s.env, extra_obs=task_size, env_kwargs=env_kwargs,
                                       hidden=s.hidden, activation=s.activation,
                                       init=s.init)  # fmt: skip
    name, outer, steps = LEARNERS[s.learner]
    inner_steps = s.inner_steps if steps is None else steps
    learner = metarl.make_learner(name, policy, inner_lr=s.inner_lr, inner_steps=inner_steps,
                                  chunk_size=s.task_chunk or None)  # fmt: skip
    if outer == "trpo":
        trpo = TRPO(max_kl=s.max_kl, backtrack_ratio=s.backtrack_ratio, fisher_every=s.fisher_every)
        return learner, trpo
    if outer == "adam":
        return learner, torch.optim.Adam(learner.parameters(), lr=s.outer_lr)
    return learner, torch.optim.SGD(learner.parameters(), lr=s.outer_lr)  # Reptile's epsilon


def load_run(folder: str | Path) -> tuple[Settings, MetaLearner, Outer, int]:
    """A run folder's settings (``out`` set to ``folder``), its learner with the weights of
    its checkpoint, the outer step and the checkpoint's iteration; ``SystemExit`` naming the
    folder if its settings.json is unreadable."""
    folder = Path(folder)
    try:
        recorded = json.loads((folder / "settings.json").read_text())["settings"]
    except (OSError, KeyError, json.JSONDecodeError) as err:
        raise SystemExit(f"{folder}: no readable settings.json of a maml_rl run ({err})") from err
    known = {f.name for f in dataclasses.fields(Settings)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}
    s = Settings(**{k: v for k, v in values.items() if k in known})
    s = dataclasses.replace(s, out=str(folder))
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    learner, outer = build_learner(s)
    learner.load_state_dict(checkpoint["state"]["trainer"]["learner"])
    return s, learner, outer, int(checkpoint["iteration"])


def best_snapshot(
    s: Settings,
    trainer: MetaRLTrainer,
    make_samplers: tuple[Callable[[int], MultiTaskSampler], Callable[[int], MultiTaskSampler]],
    val_tasks: list[dict],
    eval_tasks: list[dict],
) -> dict:
    """Score every snapshot of the run after one step on ``val_tasks``, evaluate the best on
    ``eval_tasks`` like the final learner, and put the final weights back; ``make_samplers``
    builds the validation and the evaluation sampler from a seed. Returns what eval.json
    records of it; ``SystemExit`` if the run kept no snapshots."""
    val_sampler, eval_sampler = make_samplers
    paths = sorted((Path(s.out) / "snapshots").glob("learner-*.pt"))
    if not paths:
        raise SystemExit(
            f"--select-snapshot: {s.out} has no snapshots (train with --snapshot-every)"
        )
    final = {k: v.clone() for k, v in trainer.learner.state_dict().items()}
    scores = {}
    for path in tqdm(paths, desc="snapshots on validation tasks", disable=None):
        iteration = int(path.stem.split("-")[1])
        trainer.learner.load_state_dict(metarl.load_learner(path).state_dict())
        trainer.sampler = val_sampler(s.val_seed)
        scores[iteration] = trainer.evaluate(val_tasks, 1)[-1].mean().item()
    best = max(scores, key=lambda k: scores[k])
    trainer.learner.load_state_dict(metarl.load_learner(snapshot_path(s.out, best)).state_dict())
    trainer.sampler = eval_sampler(s.eval_seed)
    returns = trainer.evaluate(eval_tasks, s.eval_steps)
    trainer.learner.load_state_dict(final)
    return {
        "selected_iteration": best,
        "validation_return_after_1_step": {str(k): round(v, 3) for k, v in scores.items()},
        "mean_return_selected": returns.mean(1).tolist(),
        "std_return_selected": returns.std(1).tolist(),
    }


def snapshot_path(out: str | Path, iteration: int) -> Path:
    """Where ``--snapshot-every`` keeps the learner of ``iteration``."""
    return Path(out) / "snapshots" / f"learner-{iteration:05d}.pt"


def save_trained_learner(s: Settings, learner: MetaLearner, iteration: int | None = None) -> Path:
    """Write ``<out>/learner.pt`` (or, given ``iteration``, that iteration's snapshot) for
    ``metarl.load_learner``, with what a user needs beside the weights to sample its tasks
    (the distribution, whether the task is in the observation, the action scaling) as its
    ``extra``."""
    if iteration is None:
        path = Path(s.out) / "learner.pt"
    else:
        path = snapshot_path(s.out, iteration)
        path.parent.mkdir(exist_ok=True)
    extra = {
        "env": s.env,
        "learner": s.learner,
        "iterations": s.iterations if iteration is None else iteration,
        "task_in_observation": s.learner == "oracle",
        "rescale_actions": s.rescale_actions,
    }
    metarl.save_learner(path, learner, extra=extra)
    return path


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    s = resolve(parse_settings(Settings, argv))
    torch.set_num_threads(s.threads)
    run = start_run(
        s.out,
        s,
        argv=argv,
        script=SCRIPT,
        ignore=RESUME_IGNORES,
        outputs=("eval.json", "learning_curve.png", "learner.pt"),
        unrecorded=as_before,
    )
    with run.interruptible():
        result = train_and_evaluate(s, run)
    run.finish()
    print(f"wall time {time.perf_counter() - started:.0f} s (setup, training and evaluation)")
    return result


def train_and_evaluate(s: Settings, run: Run) -> dict:
    seed_everything(s.seed)
    name = s.env.split("/")[-1]
    oracle = s.learner == "oracle"
    learner, outer = build_learner(s)

    train_kwargs = json_object(s.env_kwargs, "--env-kwargs")
    eval_kwargs = {**train_kwargs, **json_object(s.eval_env_kwargs, "--eval-env-kwargs")}

    def make_sampler(
        seed: int, episodes: int = s.episodes_per_task, kwargs: dict = train_kwargs
    ) -> MultiTaskSampler:
        return MultiTaskSampler(
            s.env,
            episodes,
            s.horizon,
            seed=seed,
            env_kwargs=kwargs,
            task_in_observation=oracle,
            rescale_actions=s.rescale_actions,
            threads=s.physics_threads,
        )

    sampler = make_sampler(s.seed)
    trainer = MetaRLTrainer(learner, sampler, outer, gamma=s.gamma, gae_lambda=s.gae_lambda)
    loop = trainer.train(
        s.iterations,
        s.tasks_per_batch,
        run,
        checkpoint_every=s.checkpoint_every,
        desc=f"{s.learner} {name}",
    )  # the trainer logs, checkpoints and shows progress in the run folder
    try:
        for stats in loop:
            it = int(stats["iteration"])
            if s.snapshot_every and it % s.snapshot_every == 0:
                save_trained_learner(s, learner, it)
    except RunError as err:  # a checkpoint past --iterations
        raise SystemExit(
            f"--iterations {s.iterations} is below the checkpoint's iteration "
            f"{run.start_iteration} in {s.out}: pass --iterations {run.start_iteration} or more"
        ) from err
    train_wall = run.wall_s
    save_trained_learner(s, learner)

    # Held-out tasks and their episodes come from the distribution made with --eval-env-kwargs;
    # validation (choosing a later-step scale or a snapshot) from the training one.
    test_episodes = s.eval_episodes_per_task or s.episodes_per_task

    def eval_sampler(seed: int) -> MultiTaskSampler:
        return make_sampler(seed, test_episodes, eval_kwargs)

    def val_sampler(seed: int) -> MultiTaskSampler:
        return make_sampler(seed, test_episodes)

    def draw_tasks(source: MultiTaskSampler, count: int, seed: int) -> list[dict]:
        return source.task_env.sample_tasks(count, np.random.default_rng(seed))

    trainer.sampler = eval_sampler(s.eval_seed)
    eval_tasks = draw_tasks(trainer.sampler, s.eval_tasks, s.eval_seed)
    evaluation = trainer.evaluate_detailed(eval_tasks, s.eval_steps)
    returns = evaluation.returns  # [steps + 1, tasks]
    later = {}
    if s.eval_steps >= 2 and len(s.later_step_scales) > 1 and not oracle:
        val_tasks = draw_tasks(sampler, s.val_tasks, s.val_seed)
        scores = {}
        for scale in s.later_step_scales:
            trainer.sampler = val_sampler(s.val_seed)
            scores[scale] = trainer.evaluate(val_tasks, s.eval_steps, (1.0, scale))[-1].mean()
        best = max(scores, key=lambda k: scores[k].item())
        later = {
            "later_step_scale": best,
            "validation_last_step_return": {str(k): round(v.item(), 3) for k, v in scores.items()},
        }
        if best != 1.0:  # otherwise the plain evaluation above is the answer
            trainer.sampler = eval_sampler(s.eval_seed)
            scaled = trainer.evaluate(eval_tasks, s.eval_steps, (1.0, best))
            later["mean_return_later_scaled"] = scaled.mean(1).tolist()
            later["std_return_later_scaled"] = scaled.std(1).tolist()
    if s.select_snapshot and not oracle:
        val_tasks = draw_tasks(sampler, s.val_tasks, s.val_seed)
        later.update(best_snapshot(s, trainer, (val_sampler, eval_sampler), val_tasks, eval_tasks))
    result = {
        "env": s.env,
        "learner": s.learner,
        "inner_steps": list(range(s.eval_steps + 1)),
        "mean_return": returns.mean(1).tolist(),
        "std_return": returns.std(1).tolist(),
        "n_tasks": s.eval_tasks,
        "tasks": [{k: np.asarray(v).tolist() for k, v in task.items()} for task in eval_tasks],
        "returns_per_task": returns.tolist(),  # [steps + 1][tasks], in the order of "tasks"
        # share of held-out episodes the environment ended before the horizon, per step
        "ended_early": evaluation.ended_early.mean(1).tolist(),
        **later,
        **run.provenance(),  # command, seed, machine, versions, train_wall_s, date, settings
    }
    run.write_results(result, "eval.json")
    out = Path(s.out)
    if (out / "metrics.csv").exists():
        curves = {"return_before": "before adaptation", "return_after": "after 1 step"}
        ylabel = "mean return (meta-batch)"
        png = out / "learning_curve.png"
        plot_curves(out / "metrics.csv", "step", curves, ylabel, png, title=str(out))
    print(
        f"{s.learner} on {s.env}, {s.eval_tasks} held-out tasks, mean return after "
        + ", ".join(f"{k} step(s): {r:.2f}" for k, r in enumerate(result["mean_return"]))
        + f"; trained {s.iterations} iterations in {train_wall / 60:.1f} min"
    )
    if "selected_iteration" in later:
        print(
            f"snapshot of iteration {later['selected_iteration']} (best in one step on "
            f"{s.val_tasks} validation tasks): "
            + ", ".join(f"{r:.2f}" for r in later["mean_return_selected"])
        )
    if "mean_return_later_scaled" in later:
        print(
            f"with steps 2+ at {later['later_step_scale']} of the first step's size (chosen on "
            f"{s.val_tasks} validation tasks): "
            + ", ".join(f"{r:.2f}" for r in later["mean_return_later_scaled"])
        )
    return result


if __name__ == "__main__":
    main()
