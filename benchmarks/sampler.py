"""Meta-RL speed on MuJoCo against raw MuJoCo stepping on all cores, as ratios.

For each distribution (default HalfCheetahVel and AntVel):

1. Raw physics: ``mujoco.rollout`` of the model, open-loop random controls, one thread per
   core, the same frame skip: environment steps per second the machine can do.
2. Our sampler: one meta-batch (default 40 tasks x 20 episodes x 200 steps, the MAML paper's
   protocol) with a 100-100 Gaussian policy, policy inference included. Bar >= 0.85.
3. One full MAML-TRPO meta-iteration (sample, adapt, sample, TRPO step) on that meta-batch,
   as a multiple of the raw physics time of its environment steps (bar <= 2.0), with the
   time of each phase; once with exact Fisher-vector products and once with them on every
   ``--fisher-every``-th task.

Ratios are measured side by side in one run (raw and sampler interleaved); bare rates are
printed only to read them by. EnvPool is not used as a second reference: it is not a
dependency (``pip install envpool`` 1.2.5 resolves beside our pins, but it would pull
dm-env, dm-tree and its own MuJoCo assets into every install for one benchmark line).

    python benchmarks/sampler.py [--envs metarl/HalfCheetahVel-v0 metarl/AntVel-v0]
        [--tasks 40 --episodes 20 --horizon 200] [--repeats 3] [--fisher-every 4]
        [--skip-iteration]
"""

from __future__ import annotations

import argparse
import os
import time

import mujoco
import numpy as np
import torch
from mujoco import rollout

import metarl  # noqa: F401
from metarl.core import MAML, TRPO
from metarl.rl import GaussianMLPPolicy, MetaRLTrainer, MultiTaskSampler


def raw_steps_per_second(model_path: str, copies: int, env_steps: int, frame_skip: int) -> float:
    model = mujoco.MjModel.from_xml_path(model_path)
    threads = os.cpu_count() or 1
    datas = [mujoco.MjData(model) for _ in range(threads)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, datas[0], state0, spec)
    initial = np.tile(state0, (copies, 1))
    rng = np.random.default_rng(0)
    control = rng.uniform(-1, 1, (copies, env_steps * frame_skip, model.nu))
    start = time.perf_counter()
    rollout.rollout([model] * copies, datas, initial, control)
    return copies * env_steps / (time.perf_counter() - start)


def benchmark(env_id: str, args: argparse.Namespace) -> None:
    sampler = MultiTaskSampler(env_id, args.episodes, args.horizon, seed=0)
    env = sampler.task_env
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env(env_id, hidden=(100, 100))
    tasks = sampler.sample_tasks(args.tasks)
    sampler.sample(tasks, policy)  # warm-up: builds the environments, as a first iteration does
    copies = args.tasks * args.episodes

    raws, ours = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        raws.append(raw_steps_per_second(env.model_path, copies, args.horizon, env.frame_skip))
        start = time.perf_counter()
        episodes = sampler.sample(tasks, policy)
        ours.append(episodes.steps() / (time.perf_counter() - start))
    raw, ours_median = float(np.median(raws)), float(np.median(ours))
    ratios = sorted(o / r for o, r in zip(ours, raws))
    print(f"\n{env_id}: {args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps")
    print(f"  raw MuJoCo (rollout, all cores):  {raw:9.0f} env steps/s   (reference)")
    print(f"  our sampler, policy included:     {ours_median:9.0f} env steps/s   ratio "
          f"{ours_median / raw:.2f} (medians of {args.repeats}; per-repeat ratios "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip
    if args.skip_iteration:
        return
    for every in sorted({1, args.fisher_every}):
        torch.manual_seed(0)
        learner = MAML(GaussianMLPPolicy.for_env(env_id, hidden=(100, 100)), inner_lr=0.1)
        trainer = MetaRLTrainer(learner, sampler, TRPO(max_kl=0.01, fisher_every=every))
        raw_now = raw_steps_per_second(env.model_path, copies, args.horizon, env.frame_skip)
        start = time.perf_counter()
        stats = trainer.meta_step(tasks)
        iteration = time.perf_counter() - start
        physics = stats["env_steps"] / raw_now
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in trainer.phase_seconds.items())
        label = "exact Fisher" if every == 1 else f"Fisher on every {every}th task"
        steps = f"{stats['env_steps']:.0f}"
        print(f"  MAML-TRPO iteration, {label}: {iteration:6.1f} s = {iteration / physics:.2f}x "
              f"the raw physics time of its {steps} env steps ({phases})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--envs", nargs="+", default=["metarl/HalfCheetahVel-v0", "metarl/AntVel-v0"]
    )
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fisher-every", type=int, default=4)
    parser.add_argument("--skip-iteration", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, mujoco {mujoco.__version__}")  # fmt: skip
    for env_id in args.envs:
        benchmark(env_id, args)


if __name__ == "__main__":
    main()
