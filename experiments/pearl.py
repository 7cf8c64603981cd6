"""PEARL (Rakelly et al., 2019): soft actor-critic on a latent task variable inferred from
context, trained off-policy on a fixed set of training tasks.

    python experiments/pearl.py --env metarl/HalfCheetahVel-v1 --seed 0 \\
        --out experiments/results/context_rl/halfcheetah_vel/pearl-seed0
    python experiments/pearl.py --out <the same folder> --resume          # after a stop

One iteration, as in the paper's code: for ``--tasks-per-iteration`` training tasks, clear
their context buffer and collect ``--prior-episodes`` episodes with ``z`` from the prior
(context and replay) and ``--posterior-episodes`` with ``z`` from the posterior of that
fresh context (replay only); then ``--gradient-steps`` SAC updates, each on
``--meta-batch`` training tasks. Before the first iteration every training task gets
``--initial-episodes`` prior episodes. Every ``--eval-every`` iterations the learner plays
``--eval-episodes`` episodes on each of ``--test-tasks`` held-out tasks (the first from the
prior, each later one from the posterior of all it has seen on the task, mean action): the
return of each episode against the environment steps used in training goes to
``metrics.csv``, the best final-episode return picks ``learner.pt``.

Writes into ``--out``: ``settings.json``, ``metrics.csv``, ``checkpoint.pt`` (networks,
optimisers, replay: ``--resume``), ``learner.pt`` (``metarl.load_learner``),
``learning_curve.png`` and ``results.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

import metarl
from metarl.rl import PEARL, MultiTaskSampler, PEARLTrainer
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import Positive, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/pearl.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "physics_threads", "iterations")


@dataclass
class Settings:
    """Train PEARL on a task distribution and test it on held-out tasks."""

    env: str = "metarl/HalfCheetahVel-v1"  # registered task distribution
    horizon: Count = 200  # steps per episode
    train_tasks: Count = 100  # fixed training tasks (the paper: 100 for HalfCheetahVel)
    test_tasks: Count = 40  # held-out tasks (the MAML protocol's 40)
    iterations: Count = 500  # training iterations
    initial_episodes: Count = 10  # prior episodes per training task before training
    tasks_per_iteration: Count = 5  # training tasks collected on per iteration
    prior_episodes: Count = 2  # per task and iteration, z from the prior
    posterior_episodes: Count = 2  # per task and iteration, z from the posterior
    gradient_steps: Count = 2000  # SAC updates per iteration
    meta_batch: Count = 16  # training tasks per update
    batch: Count = 256  # transitions per task per update
    context_size: Count = 100  # context transitions per task
    latent_dim: Count = 5  # size of z
    hidden: Count = 300  # units of the policy's, Q's and V's three hidden layers
    encoder_hidden: Count = 200  # units of the encoder's three hidden layers
    lr: Annotated[float, Positive] = 3e-4  # Adam's learning rate
    reward_scale: Annotated[float, Positive] = 5.0  # the paper's HalfCheetah setting
    kl_weight: float = 0.1  # KL of the posterior to the prior
    capacity: Count = 20_000  # transitions kept per training task (the oldest dropped first)
    eval_every: Count = 10  # iterations between tests on the held-out tasks
    eval_episodes: Count = 3  # episodes per held-out task (the first from the prior)
    seed: int = 0  # seeds networks, training tasks and play
    eval_seed: int = 777  # seeds the held-out tasks and their play
    out: str | None = None  # run folder (None: runs/pearl/<env name>-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads
    physics_threads: Annotated[int, Positive] | None = None
    """MuJoCo physics threads (default: all cores); 1 when two runs share a 2-core machine"""

    def validate(self) -> None:
        """Training tasks are drawn without replacement: each draw must fit the task set."""
        for flag, value in (("meta_batch", self.meta_batch),
                            ("tasks_per_iteration", self.tasks_per_iteration)):  # fmt: skip
            if value > self.train_tasks:
                raise ValueError(f"--{flag.replace('_', '-')} {value} is more than "
                                 f"--train-tasks {self.train_tasks}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/pearl/{s.env.split('/')[-1]}-seed{s.seed}")
    sampler = MultiTaskSampler(s.env, 1, s.horizon, seed=s.seed, threads=s.physics_threads)
    context_capacity = s.horizon * max(s.initial_episodes, s.prior_episodes)
    train_tasks = sampler.task_env.sample_tasks(s.train_tasks, np.random.default_rng(s.seed))
    test_tasks = sampler.task_env.sample_tasks(s.test_tasks, np.random.default_rng(s.eval_seed))
    learner = PEARL.for_sampler(sampler, hidden=(s.hidden,) * 3, latent_dim=s.latent_dim,
                                encoder_hidden=(s.encoder_hidden,) * 3)  # fmt: skip
    trainer = PEARLTrainer(learner, sampler, train_tasks, capacity=s.capacity,
                           context_capacity=context_capacity,
                           hidden=(s.hidden,) * 3, lr=s.lr, reward_scale=s.reward_scale,
                           kl_weight=s.kl_weight, seed=s.seed)  # fmt: skip
    test_sampler = MultiTaskSampler(s.env, 1, s.horizon, seed=s.eval_seed,
                                    threads=s.physics_threads)  # fmt: skip
    rng = np.random.default_rng(s.seed)
    best: dict[str, Any] = {"score": -math.inf, "iteration": -1, "state": {}}
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("learner.pt", "learning_curve.png"))  # fmt: skip
    all_tasks = list(range(s.train_tasks))

    def test() -> list[float]:
        test_sampler.seed(s.eval_seed)  # the same play every time: scores compare
        return learner.adapt_and_play(test_sampler, test_tasks, s.eval_episodes).mean(0).tolist()

    with run.interruptible():
        state = run.restore()
        if state is not None:
            trainer.load_state_dict(state["trainer"])
            rng.bit_generator.state = state["rng"]
            best = state["best"]
            run.exit_if_past(s.iterations)
        else:
            for _ in range(s.initial_episodes):
                trainer.collect(all_tasks, use_posterior=False)
        for it in run.progress(s.iterations, f"PEARL on {s.env}"):
            ids = rng.choice(s.train_tasks, s.tasks_per_iteration, replace=False).tolist()
            trainer.context.clear(ids)
            returns = [trainer.collect(ids, use_posterior=False) for _ in range(s.prior_episodes)]
            returns += [
                trainer.collect(ids, use_posterior=True, context_size=s.context_size)
                for _ in range(s.posterior_episodes)
            ]
            for _ in range(s.gradient_steps):
                batch_ids = rng.choice(s.train_tasks, s.meta_batch, replace=False).tolist()
                losses = trainer.update(batch_ids, s.batch, s.context_size)
            tested: list[float] = []
            if (it + 1) % s.eval_every == 0 or it + 1 == s.iterations:
                tested = test()
                if tested[-1] > best["score"]:
                    weights = {k: v.clone() for k, v in learner.state_dict().items()}
                    best = {"score": tested[-1], "iteration": it + 1, "state": weights}
                run.save({"trainer": trainer.state_dict(), "rng": rng.bit_generator.state,
                          "best": best}, it + 1)  # fmt: skip
                run.status(it + 1, "held-out returns per episode "
                           + " / ".join(f"{r:.1f}" for r in tested), every=1)  # fmt: skip
            run.log(it + 1, env_steps=trainer.env_steps, train_return=float(np.mean(returns)),
                    **{f"test_return_{e + 1}": (tested[e] if tested else None)
                       for e in range(s.eval_episodes)},
                    **losses, wall_s=run.wall_s)  # fmt: skip
    learner.load_state_dict(best["state"])
    extra = {"iteration": best["iteration"], "env_steps": trainer.env_steps}
    metarl.save_learner(out / "learner.pt", learner, extra=extra)
    plot_curves(out / "metrics.csv", "env_steps",
                {f"test_return_{e + 1}": f"held-out, episode {e + 1}"
                 for e in range(s.eval_episodes)},
                "mean return", out / "learning_curve.png", title=f"PEARL on {s.env}")  # fmt: skip
    test_sampler.seed(s.eval_seed + 1)  # the final test: play not seen in the choice
    per_task = learner.adapt_and_play(test_sampler, test_tasks, s.eval_episodes).double()
    n = len(test_tasks)
    result = {"env": s.env, "chosen_iteration": best["iteration"], "env_steps": trainer.env_steps,
              "test_returns": per_task.mean(0).tolist(),
              "test_returns_stderr": (per_task.std(0) / math.sqrt(n)).tolist(),
              "n_tasks": n}  # fmt: skip
    run.write_results(result)
    run.finish()
    print("held-out return per episode: " + " / ".join(f"{r:.2f}" for r in result["test_returns"])
          + f" (iteration {best['iteration']}, {trainer.env_steps} environment steps)")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
