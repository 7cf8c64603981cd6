"""Sampler speed on HalfCheetahVel against raw MuJoCo stepping on all cores, as ratios.

1. Raw physics: ``mujoco.rollout`` of the HalfCheetah model, open-loop random controls, one
   thread per core, the same frame skip: environment steps per second the machine can do.
2. Our sampler: one meta-batch (default 40 tasks x 20 episodes x 200 steps, the MAML paper's
   protocol) with a 100-100 Gaussian policy, policy inference included.
3. One full MAML-TRPO meta-iteration (sample, adapt, sample, TRPO step) on that meta-batch,
   as a multiple of the raw physics time for the same number of environment steps.

    python benchmarks/sampler.py [--tasks 40 --episodes 20 --horizon 200] [--repeats 3]
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

ENV_ID = "metarl/HalfCheetahVel-v0"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-iteration", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    sampler = MultiTaskSampler(ENV_ID, args.episodes, args.horizon, seed=0)
    env = sampler.task_env
    policy = GaussianMLPPolicy.for_env(ENV_ID, hidden=(100, 100))
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
    versions = f"torch {torch.__version__}, mujoco {mujoco.__version__}"
    print(f"{args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps, "
          f"{os.cpu_count()} cores, {versions}")  # fmt: skip
    print(f"raw MuJoCo (rollout, all cores):  {raw:10.0f} env steps/s   (reference)")
    print(f"our sampler, policy included:     {ours_median:10.0f} env steps/s   ratio "
          f"{ours_median / raw:.2f} (medians of {args.repeats}; per-repeat ratios "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip

    if args.skip_iteration:
        return
    trainer = MetaRLTrainer(MAML(policy, inner_lr=0.1), sampler, TRPO(max_kl=0.01))
    start = time.perf_counter()
    stats = trainer.meta_step(tasks)
    iteration = time.perf_counter() - start
    physics = stats["env_steps"] / raw
    print(f"one MAML-TRPO meta-iteration:     {iteration:10.1f} s = {iteration / physics:.1f}x the "
          f"raw physics time of its {stats['env_steps']:.0f} env steps")  # fmt: skip


if __name__ == "__main__":
    main()
