"""Meta-imitation learning (MIL): MAML, FOMAML, Meta-SGD or Reptile with behaviour cloning,
and the behaviour-cloning baselines it must beat.

MIL (Finn, Yu, Zhang, Abbeel and Levine, CoRL 2017): each meta-training task gives one
demonstration to adapt on (the inner loss: behaviour cloning) and another to judge the
adapted policy by (the outer loss: behaviour cloning again). The datasets come from
``experiments/make_demos.py``; held-out tasks come from a dataset made with another seed.
Evaluation: for each held-out task, the policy adapted on its first demonstration is rolled
out (most likely actions) and its return compared with the expert's on that task.
Baselines: ``--learner multitask`` (one policy cloned on every training demonstration, then
fine-tuned on the task's demonstration like MIL) and ``--learner scratch`` (no training on
other tasks: a fresh policy cloned on the task's one demonstration alone, ``--scratch-steps``
Adam steps).

Observation-only demonstrations at test time: ``--learner daml`` (domain-adaptive
meta-learning, Yu et al. 2018: the inner loss is a learned network over the demonstration's
observations, meta-trained with the initialisation; the outer loss clones the query
demonstration's actions) and its non-meta baseline ``--learner invdyn`` (an inverse-dynamics
model trained on the meta-training demonstrations labels the held-out demonstration's
actions, then a fresh policy clones them as ``scratch`` does; ``--learner invdyn-multitask``
fine-tunes the multi-task policy on them instead, as ``multitask`` does on real actions).

    python experiments/make_demos.py --tasks 200 --noise 0.3 --seed 0 --out demos/nav-train
    python experiments/make_demos.py --tasks 40 --demos-per-task 1 --seed 1 --out demos/nav-test
    python experiments/mil.py --train-demos demos/nav-train --test-demos demos/nav-test

Writes, inside ``--out`` (default ``runs/mil/<learner>-seed<seed>``): ``settings.json``,
``metrics.csv`` and ``tensorboard/`` (the meta-training query loss), ``checkpoint.pt``
(resume with ``--resume``), ``results.json`` (returns after 0..``--eval-max-steps`` steps,
the expert's, success rates) and ``learner.pt`` (for ``metarl.load_learner``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch

import metarl
from metarl import make_learner
from metarl.core import MetaLearner
from metarl.imitation import (
    DemoData,
    DemoTasks,
    DomainAdaptiveMAML,
    bc_loss,
    make_expert,
    observed,
)
from metarl.imitation.evaluate import adapted_rollouts, cloned_from_scratch
from metarl.imitation.inverse_dynamics import InverseDynamics, fit_inverse_dynamics, label_demos
from metarl.rl import Episodes, GaussianMLPPolicy, MultiTaskSampler
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import NonNegative, Positive, parse_settings

SCRIPT = "experiments/mil.py"
Count = Annotated[int, Positive]
StepSize = Annotated[float, Positive]
LearnerName = Literal[
    "maml",
    "fomaml",
    "metasgd",
    "reptile",
    "multitask",
    "scratch",
    "daml",
    "invdyn",
    "invdyn-multitask",
]
# never see the held-out demonstration's actions
OBSERVATION_ONLY = ("daml", "invdyn", "invdyn-multitask")


@dataclass
class Settings:
    """MIL meta-training on a demonstration dataset and evaluation on held-out tasks."""

    train_demos: str  # dataset folder of the meta-training tasks (make_demos.py)
    test_demos: str  # dataset folder of the held-out tasks (another seed)
    env: str = "metarl/Navigation2D-v0"  # the task distribution both datasets demonstrate
    learner: LearnerName = "maml"
    """fomaml: first-order MAML; multitask, scratch: baselines; daml, invdyn: observation-only"""
    hidden: tuple[Count, ...] = (100, 100)  # the policy's hidden layers (ReLU)
    inner_lr: StepSize = 0.1  # inner step size (Meta-SGD: the initial learned one)
    inner_steps: Count = 1  # behaviour-cloning steps in meta-training
    outer_lr: StepSize = 1e-3  # Adam's learning rate
    meta_batch: Count = 20  # tasks per meta-batch
    iterations: Annotated[int, NonNegative] = 5_000  # meta-updates (0: evaluate the init)
    eval_max_steps: Count = 3  # evaluate after 0, 1, ..., this many steps
    scratch_steps: Count = 500  # the scratch baseline: Adam steps of cloning on the one demo
    scratch_lr: StepSize = 1e-3  # the scratch baseline: their learning rate
    loss_hidden: Count = 32  # daml: channels of the learned loss's temporal convolutions
    invdyn_steps: Count = 5_000  # invdyn: Adam steps fitting the inverse-dynamics model
    seed: int = 0  # seeds the initialisation and the choice of tasks and demonstrations
    eval_seed: int = 2024  # seeds the evaluation rollouts
    out: str | None = None  # output folder (None: runs/mil/<learner>-seed<seed>)
    log_every: Count = 50  # log the mean query loss every this many iterations
    checkpoint_every: Count = 500  # checkpoint every this many iterations, and at the end
    resume: bool = False  # continue the run in --out (same settings; --iterations may grow)
    overwrite: bool = False  # delete the run already in --out and start afresh
    threads: Count = 1  # torch CPU threads


RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "iterations")


def build_learner(s: Settings) -> MetaLearner:
    """The learner ``--learner`` names around a Gaussian MLP policy for ``--env``
    (``multitask``: MAML without inner steps in training; ``scratch``: its untrained
    policy)."""
    policy = GaussianMLPPolicy.for_env(s.env, hidden=s.hidden)
    if s.learner == "daml":
        obs_dim, act_dim = policy.mean[0].in_features, policy.mean[-1].out_features
        return make_learner("daml", policy, obs_dim=obs_dim, act_dim=act_dim,
                            inner_lr=s.inner_lr, inner_steps=s.inner_steps,
                            loss_hidden=s.loss_hidden)  # fmt: skip
    if s.learner in ("multitask", "scratch", "invdyn", "invdyn-multitask"):
        return make_learner("maml", policy, inner_lr=s.inner_lr, inner_steps=0)
    return make_learner(s.learner, policy, inner_lr=s.inner_lr, inner_steps=s.inner_steps)


def labelled_by_inverse_dynamics(s: Settings, train: DemoTasks, test: DemoTasks) -> DemoData:
    """The held-out support demonstrations of ``test``'s last ``sample`` with the actions an
    inverse-dynamics model, fitted on ``train``'s transitions, infers from their
    observations (their own actions are never read)."""
    torch.manual_seed(s.seed)
    data = train.transitions()
    model = InverseDynamics(data.observations.shape[-1], data.actions.shape[-1])
    losses = fit_inverse_dynamics(model, data, s.invdyn_steps, seed=s.seed)
    print(f"inverse dynamics: loss {losses[0]:.4f} -> {losses[-1]:.4f} in {s.invdyn_steps} steps")
    rows = torch.as_tensor(test.last_task_ids).unsqueeze(1)
    held_out = test.transitions()
    picked = type(held_out)(*(x[rows, test.last_support_ids] for x in held_out))
    return label_demos(model, picked._replace(actions=torch.zeros_like(picked.actions)))


def mean_and_stderr(values: torch.Tensor) -> dict[str, float]:
    """Mean and standard error of a 1-D tensor."""
    return {
        "mean": values.mean().item(),
        "stderr": values.std().item() / math.sqrt(len(values)) if len(values) > 1 else 0.0,
    }


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    out = Path(s.out or f"runs/mil/{s.learner}-seed{s.seed}")
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    train = DemoTasks(s.env, s.train_demos, seed=s.seed)
    if train.demonstrations.demos_per_task < 2:
        raise SystemExit(f"{s.train_demos}: MIL needs 2 demonstrations per task to train")
    learner = build_learner(s)
    loss = bc_loss(learner.model)
    daml = isinstance(learner, DomainAdaptiveMAML)
    inner_loss = learner.inner_loss() if daml else loss
    as_inner: Callable[[DemoData], Any] = observed if daml else (lambda demos: demos)
    iterations = 0 if s.learner in ("scratch", "invdyn") else s.iterations
    optimizer = torch.optim.Adam(learner.parameters(), lr=s.outer_lr)

    state = run.restore()
    if state is not None:
        learner.load_state_dict(state["learner"])
        optimizer.load_state_dict(state["optimizer"])
        train.load_state(state["tasks"])
        run.exit_if_past(iterations)

    with run.interruptible():
        running = 0.0
        for it in run.progress(iterations, f"MIL {s.learner}"):
            support, query = train.sample(min(s.meta_batch, train.num_tasks))
            meta_loss = learner.meta_losses(inner_loss, as_inner(support), loss, query).mean()
            optimizer.zero_grad()
            meta_loss.backward()
            optimizer.step()
            running += meta_loss.item()
            if (it + 1) % s.log_every == 0:
                run.log(it + 1, query_loss=running / s.log_every, wall_s=run.wall_s)
                run.status(it + 1, f"query loss {running / s.log_every:.4f}")
                running = 0.0
            if (it + 1) % s.checkpoint_every == 0 or it + 1 == iterations:
                state = {
                    "learner": learner.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "tasks": train.state(),
                }
                run.save(state, it + 1)

    test = DemoTasks(s.env, s.test_demos)
    held_out = test.demonstrations  # loaded and checked once, by DemoTasks
    support, _ = test.sample(test.num_tasks, (1, 0), task_ids=range(test.num_tasks))
    horizon = held_out.mask.shape[2]
    env_kwargs = test.env_kwargs  # e.g. Meta-World's environment and its test split
    sampler = MultiTaskSampler(s.env, 1, horizon, seed=s.eval_seed, env_kwargs=env_kwargs)

    def from_eval_starts(episodes_of: Callable[[], Episodes]) -> Episodes:
        sampler.seed(s.eval_seed)  # every row, the expert's too, from the same start states
        return episodes_of()

    def scores(episodes: Episodes) -> dict[str, float]:
        return {
            **mean_and_stderr(episodes.mean_return()),
            "success": episodes.terminated.float().mean().item(),
        }

    if s.learner == "invdyn-multitask":  # inferred labels, then fine-tuned like multitask
        support = labelled_by_inverse_dynamics(s, train, test)
    if s.learner in ("scratch", "invdyn"):  # one row: cloned on the demonstration alone
        policy = learner.model
        if s.learner == "invdyn":  # its actions labelled by the inverse-dynamics model
            support = labelled_by_inverse_dynamics(s, train, test)
        params = cloned_from_scratch(
            lambda: build_learner(s).model, support, s.scratch_steps, s.scratch_lr
        )
        after_steps = {
            "0": scores(
                from_eval_starts(lambda: sampler.sample(test.tasks, policy, deterministic=True))
            ),
            str(s.scratch_steps): scores(
                from_eval_starts(
                    lambda: sampler.sample(
                        test.tasks, policy, params, batched=True, deterministic=True
                    )
                )
            ),
        }
    else:
        after_steps = {
            str(k): scores(
                from_eval_starts(
                    lambda k=k: adapted_rollouts(
                        learner, as_inner(support), test.tasks, sampler, k, inner_loss
                    )
                )
            )
            for k in range(s.eval_max_steps + 1)
        }
    expert_sampler = MultiTaskSampler(
        s.env, 1, horizon, seed=s.eval_seed, env_kwargs=env_kwargs, task_in_observation=True
    )
    expert = make_expert(s.env, policy=held_out.info.get("expert_policy"), env_kwargs=env_kwargs)
    expert_episodes = expert_sampler.sample(test.tasks, expert, deterministic=True)
    results = {
        "learner": s.learner,
        "env": s.env,
        "env_kwargs": env_kwargs,
        "n_tasks": test.num_tasks,
        "expert": scores(expert_episodes),
        "return_after_steps": after_steps,
        "demonstrations": {"train": s.train_demos, "test": s.test_demos},
        "test_demonstration": "observations only" if s.learner in OBSERVATION_ONLY else "full",
    }
    path = run.write_results(results)
    inner = "learned, on observations" if daml else "bc"
    extra = {"env": s.env, "learner": s.learner, "iterations": iterations, "inner_loss": inner}
    metarl.save_learner(out / "learner.pt", learner, extra=extra)
    last_key = list(after_steps)[-1] if s.learner in ("scratch", "invdyn") else "1"
    last = after_steps[last_key]
    print(
        f"{s.learner} on {s.env}, {test.num_tasks} held-out tasks: return before adaptation "
        f"{after_steps['0']['mean']:.2f}, after {last_key} step(s) on one demonstration "
        f"{last['mean']:.2f} +/- {last['stderr']:.2f} (success {last['success']:.0%}); expert "
        f"{results['expert']['mean']:.2f}; trained {iterations} iterations in {run.wall_s:.0f} s"
    )
    run.finish()
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
