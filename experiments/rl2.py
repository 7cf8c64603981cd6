"""RL^2 (Duan et al., 2016): a GRU policy trained with PPO across trials of a task distribution.

A trial is ``--episodes-per-trial`` episodes of one task; the policy sees the previous
action, reward and done flag and keeps its hidden state across the trial's episodes, so it
can learn, within a trial, what the task is. Bandits as in the RL^2 paper (a trial of n
one-pull episodes of a k-armed Bernoulli bandit)::

    python experiments/rl2.py --env metarl/BernoulliBandit-v0 \\
        --env-kwargs '{"arms": 5, "pulls": 1}' --episodes-per-trial 10 --horizon 1 --seed 0 \\
        --out experiments/results/bandits_rl2/n10-k5
    python experiments/rl2.py --out experiments/results/bandits_rl2/n10-k5 --resume   # after a stop

Every ``--validate-every`` iterations the policy plays ``--val-tasks`` fixed validation
tasks; the weights with the best mean trial return are kept (``learner.pt``, loadable with
``metarl.load_learner``) and finally play ``--eval-tasks`` held-out tasks. Writes into
``--out``: ``settings.json``, ``metrics.csv`` (per iteration: returns, PPO statistics,
environment steps, validation), ``checkpoint.pt`` (``--resume``), ``learner.pt``,
``learning_curve.png`` and ``results.json`` (mean return of each episode of a trial and of
the whole trial on the held-out tasks, with standard errors over tasks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

import metarl
from metarl.rl import PPO, RL2, GRUPolicy, RL2Trainer, TrialSampler
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import NonNegative, Positive, json_object, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/rl2.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "physics_threads", "iterations")


@dataclass
class Settings:
    """Train RL^2 (GRU policy, PPO over trials) on a task distribution."""

    env: str = "metarl/BernoulliBandit-v0"  # registered task distribution
    env_kwargs: str = "{}"  # JSON object of the distribution's arguments
    episodes_per_trial: Count = 10  # episodes of one task per trial
    horizon: Count = 1  # steps per episode
    tasks_per_batch: Count = 500  # tasks (one trial each) per PPO update
    iterations: Count = 500  # PPO updates
    hidden: Count = 256  # GRU units (the paper: 256)
    lr: Annotated[float, Positive] = 1e-3  # Adam's learning rate
    lr_final: Annotated[float, Positive] | None = None
    """Adam's learning rate at the last of --iterations, reached linearly from --lr (None:
    constant); the schedule follows --iterations, so extending a run restarts its descent"""
    clip: Annotated[float, Positive] = 0.2  # PPO's ratio clipping
    epochs: Count = 4  # PPO passes per update
    minibatches: Count = 4  # minibatches of trials per pass
    gamma: Annotated[float, NonNegative] = 0.99  # discount within a trial
    gae_lambda: Annotated[float, NonNegative] = 0.95  # GAE's lambda
    entropy_coef: Annotated[float, NonNegative] = 0.0  # entropy bonus
    value_coef: Annotated[float, NonNegative] = 0.5  # value loss weight
    validate_every: Count = 10  # iterations between validations (and checkpoints)
    val_tasks: Count = 500  # fixed validation tasks (seed + 10000)
    eval_tasks: Count = 500  # held-out tasks at the end (--eval-seed)
    eval_seed: int = 777  # seeds the held-out tasks and their play
    seed: int = 0  # seeds the initialisation, the training tasks and the play
    out: str | None = None  # run folder (None: runs/rl2/<env name>-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads
    physics_threads: Annotated[int, Positive] | None = None
    """MuJoCo physics threads (default: all cores); 1 when two runs share a 2-core machine"""


def make_sampler(s: Settings, seed: int, kwargs: dict[str, Any]) -> TrialSampler:
    return TrialSampler(s.env, s.episodes_per_trial, s.horizon, seed=seed, env_kwargs=kwargs,
                        threads=s.physics_threads)  # fmt: skip


def score(learner: RL2, sampler: TrialSampler, tasks: list[dict]) -> dict[str, Any]:
    """Mean and standard error over ``tasks`` of each episode's return and the trial's."""
    per_task = learner.play(sampler, tasks).mean_episode_returns().double()  # [T, E]
    trial = per_task.sum(-1)
    n = len(tasks)
    return {
        "trial_return": trial.mean().item(),
        "trial_return_stderr": (trial.std() / math.sqrt(n)).item() if n > 1 else 0.0,
        "episode_returns": per_task.mean(0).tolist(),
        "episode_returns_stderr": (per_task.std(0) / math.sqrt(n)).tolist() if n > 1 else [],
        "n_tasks": n,
    }


def learning_rate(s: Settings, iteration: int) -> float:
    """Adam's learning rate at ``iteration`` (0-based): --lr, or the line from --lr at the
    first iteration to --lr-final at the last."""
    if s.lr_final is None:
        return s.lr
    return s.lr + (s.lr_final - s.lr) * iteration / max(s.iterations - 1, 1)


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    kwargs = json_object(s.env_kwargs, "--env-kwargs")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/rl2/{s.env.split('/')[-1]}-seed{s.seed}")
    sampler = make_sampler(s, s.seed, kwargs)
    policy = GRUPolicy.for_sampler(sampler, hidden=s.hidden)
    learner = RL2(policy, s.episodes_per_trial)
    ppo = PPO(clip=s.clip, epochs=s.epochs, minibatches=s.minibatches, gamma=s.gamma,
              lam=s.gae_lambda, value_coef=s.value_coef, entropy_coef=s.entropy_coef)  # fmt: skip
    trainer = RL2Trainer(learner, sampler, ppo, lr=s.lr, seed=s.seed)
    val_sampler = make_sampler(s, s.seed + 1, kwargs)
    val_tasks = sampler.task_env.sample_tasks(s.val_tasks, np.random.default_rng(s.seed + 10_000))
    best: dict[str, Any] = {"score": -math.inf, "iteration": -1, "state": {}}
    env_steps = 0
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("learner.pt", "learning_curve.png"),
                    unrecorded=lambda k, v: k == "lr_final" and v is None)  # fmt: skip
    with run.interruptible():
        state = run.restore()
        if state is not None:
            trainer.load_state_dict(state["trainer"])
            best, env_steps = state["best"], state["env_steps"]
            run.exit_if_past(s.iterations)
        for it in run.progress(s.iterations, f"RL^2 on {s.env}"):
            lr = learning_rate(s, it)
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            metrics = trainer.step(sampler.sample_tasks(s.tasks_per_batch))
            if s.lr_final is not None:
                metrics["lr"] = lr
            env_steps += metrics.pop("env_steps")
            val = None
            if (it + 1) % s.validate_every == 0 or it + 1 == s.iterations:
                val_sampler.seed(s.seed + 1)  # the same play every time: scores compare
                val = score(learner, val_sampler, val_tasks)["trial_return"]
                if val > best["score"]:
                    weights = {k: v.clone() for k, v in policy.state_dict().items()}
                    best = {"score": val, "iteration": it + 1, "state": weights}
                run.save({"trainer": trainer.state_dict(), "best": best, "env_steps": env_steps},
                         it + 1)  # fmt: skip
                run.status(it + 1, f"trial return {metrics['trial_return']:.2f}, "
                                   f"validation {val:.2f}", every=1)  # fmt: skip
            run.log(it + 1, env_steps=env_steps, val_trial_return=val, wall_s=run.wall_s,
                    **metrics)  # fmt: skip
    policy.load_state_dict(best["state"])
    metarl.save_learner(out / "learner.pt", learner,
                        extra={"iteration": best["iteration"], "env_steps": env_steps})  # fmt: skip
    plot_curves(out / "metrics.csv", "env_steps",
                {"trial_return": "training trials", "val_trial_return": "validation tasks"},
                "mean return per trial", out / "learning_curve.png",
                title=f"RL^2 on {s.env} {kwargs or ''}")  # fmt: skip
    eval_sampler = make_sampler(s, s.eval_seed, kwargs)
    eval_tasks = sampler.task_env.sample_tasks(s.eval_tasks, np.random.default_rng(s.eval_seed))
    result = {"env": s.env, "env_kwargs": kwargs, "chosen_iteration": best["iteration"],
              "val_trial_return": best["score"], "env_steps": env_steps,
              "test": score(learner, eval_sampler, eval_tasks)}  # fmt: skip
    run.write_results(result)
    run.finish()
    test = result["test"]
    print(f"held-out trial return {test['trial_return']:.3f} ± {test['trial_return_stderr']:.3f} "
          f"(iteration {best['iteration']}, {env_steps} environment steps)")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
