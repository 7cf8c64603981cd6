"""Meta-RL speed on MuJoCo against raw MuJoCo stepping on all cores, as ratios.

For each distribution (default HalfCheetahVel and AntVel):

1. Raw physics: ``mujoco.rollout`` of the model, open-loop random controls, one thread per
   core, the same frame skip: environment steps per second the machine can do.
2. Our sampler: one meta-batch (default 40 tasks x 20 episodes x 200 steps, the MAML paper's
   protocol) with a 100-100 Gaussian policy, policy inference included. Bar >= 0.85.
3. One full MAML-TRPO meta-iteration (sample, adapt, sample, TRPO step) on that meta-batch,
   as a multiple of the raw physics time of its environment steps (bar <= 2.0), with the
   time of each phase: with exact Fisher-vector products and all tasks vectorised at once,
   exact with ``--task-chunk`` tasks at a time (the default of ``maml_rl.py``: on the CPU the
   whole meta-batch's tensors are too large for the allocator to reuse, and every one is
   fresh, zeroed memory), and with the products on every ``--fisher-every``-th task.

Two raw references: full-length rollouts with random controls, and rollouts of the sampler's
own episodes (its episode lengths, rounded up to 25 steps, and its actions), which matters
where episodes end early: an AntVel episode of the untrained policy lasts about 60 steps,
mostly the costlier first steps in which the Ant lands. Ratios are measured side by side in
one run (raw and sampler interleaved); bare rates are printed only to read them by.

If EnvPool is installed (``pip install -e .[bench]``: envpool 1.2.5 installs beside our
pins, with dm-env and dm-tree), its HalfCheetah-v5 stepping throughput on the same cores
(same number of copies and steps, random actions) is printed as a second reference.

    python benchmarks/sampler.py [--envs metarl/HalfCheetahVel-v0 metarl/AntVel-v0]
        [--tasks 40 --episodes 20 --horizon 200] [--repeats 3] [--fisher-every 4]
        [--task-chunk 5] [--skip-iteration]
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


def raw_steps_per_second(
    model_path: str,
    lengths: np.ndarray,
    frame_skip: int,
    actions: np.ndarray | None = None,
    bucket: int = 25,
) -> float:
    """Environment steps per second of ``mujoco.rollout`` on all cores, one thread per core.

    Copy ``i`` runs ``lengths[i]`` environment steps (rounded up to a multiple of ``bucket``,
    one rollout call per rounded length) from the model's initial state, open-loop with
    ``actions[i]`` (default: uniform random controls in [-1, 1]).
    """
    model = mujoco.MjModel.from_xml_path(model_path)
    threads = os.cpu_count() or 1
    datas = [mujoco.MjData(model) for _ in range(threads)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, datas[0], state0, spec)
    horizon = int(lengths.max())
    if actions is None:
        actions = np.random.default_rng(0).uniform(-1, 1, (len(lengths), horizon, model.nu))
    rounded = np.minimum(-(-lengths // bucket) * bucket, horizon)
    groups = [(np.flatnonzero(rounded == r), int(r)) for r in np.unique(rounded)]
    controls = [np.repeat(actions[ids, :r], frame_skip, axis=1) for ids, r in groups]
    start = time.perf_counter()
    for (ids, _), control in zip(groups, controls):
        rollout.rollout([model] * len(ids), datas, np.tile(state0, (len(ids), 1)), control)
    return float(rounded.sum()) / (time.perf_counter() - start)


def envpool_steps_per_second(copies: int, env_steps: int, frame_skip: int) -> float | None:
    """EnvPool's HalfCheetah-v5 steps per second on all cores at ``frame_skip`` physics steps
    per environment step, or ``None`` without EnvPool."""
    try:
        import envpool
    except ImportError:
        return None
    env = envpool.make(
        "HalfCheetah-v5",
        env_type="gymnasium",
        num_envs=copies,
        num_threads=os.cpu_count() or 1,
        frame_skip=frame_skip,
    )
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (env_steps, copies, 6)).astype(np.float32)
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    rate = copies * env_steps / (time.perf_counter() - start)
    env.close()
    return rate


def benchmark(env_id: str, args: argparse.Namespace) -> None:
    sampler = MultiTaskSampler(env_id, args.episodes, args.horizon, seed=0)
    env = sampler.task_env
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env(env_id, hidden=(100, 100))
    tasks = sampler.sample_tasks(args.tasks)
    sampler.sample(tasks, policy)  # warm-up: builds the environments, as a first iteration does
    copies = args.tasks * args.episodes

    full = np.full(copies, args.horizon)
    raws, matched, ours = [], [], []
    for _ in range(args.repeats):  # interleaved, so all three see the same machine load
        raws.append(raw_steps_per_second(env.model_path, full, env.frame_skip))
        start = time.perf_counter()
        episodes = sampler.sample(tasks, policy)
        ours.append(episodes.steps() / (time.perf_counter() - start))
        lengths = episodes.mask.reshape(copies, -1).sum(1).long().numpy()
        actions = episodes.actions.reshape(copies, args.horizon, -1).double().numpy()
        matched.append(raw_steps_per_second(env.model_path, lengths, env.frame_skip, actions))
    raw, same, ours_median = (float(np.median(x)) for x in (raws, matched, ours))
    print(
        f"\n{env_id}: {args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps "
        f"({np.mean(lengths):.0f} steps per episode on average)"
    )
    print(f"  raw MuJoCo, full-length random-control rollouts:  {raw:9.0f} env steps/s (reference)")
    print(f"  raw MuJoCo, the sampler's episode lengths and actions: {same:9.0f} env steps/s")
    print(f"  our sampler, policy included:     {ours_median:9.0f} env steps/s")
    if "HalfCheetah" in env_id and (
        pool := envpool_steps_per_second(copies, args.horizon, env.frame_skip)
    ):
        print(
            f"  EnvPool HalfCheetah-v5 (frame skip {env.frame_skip}), random actions: "
            f"{pool:9.0f} env steps/s ({ours_median / pool:.2f} of it; measured once, after "
            "the repeats)"
        )
    for name, ref in (("full-length", raws), ("same-episodes", matched)):
        ratios = sorted(o / r for o, r in zip(ours, ref))
        print(
            f"    ratio to {name} reference: {np.median(ratios):.2f} (median of "
            f"{args.repeats}; per repeat {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    if args.skip_iteration:
        return
    runs = [(1, None), (1, args.task_chunk), (args.fisher_every, args.task_chunk)]
    for every, chunk in dict.fromkeys(runs):  # distinct, in order
        torch.manual_seed(0)
        policy = GaussianMLPPolicy.for_env(env_id, hidden=(100, 100))
        learner = MAML(policy, inner_lr=0.1, chunk_size=chunk)
        trainer = MetaRLTrainer(learner, sampler, TRPO(max_kl=0.01, fisher_every=every))
        raw_now = raw_steps_per_second(env.model_path, full, env.frame_skip)
        start = time.perf_counter()
        stats = trainer.meta_step(tasks)
        iteration = time.perf_counter() - start
        physics = stats["env_steps"] / raw_now
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in trainer.phase_seconds.items())
        label = "exact Fisher" if every == 1 else f"Fisher on every {every}th task"
        label += f", tasks vectorised {chunk or 'all'} at a time"
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
    parser.add_argument("--task-chunk", type=int, default=5)
    parser.add_argument("--skip-iteration", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, mujoco {mujoco.__version__}")  # fmt: skip
    for env_id in args.envs:
        benchmark(env_id, args)


if __name__ == "__main__":
    main()
