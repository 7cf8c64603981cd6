"""The Ray sampler against the local one on this machine, as ratios measured side by side.

For one distribution (default HalfCheetahVel-v1), one meta-batch (default 20 tasks x 10
episodes x 200 steps, a 100-100 Gaussian policy) is collected alternately by the local
``MultiTaskSampler`` and by ``RaySampler`` with ``--workers`` actors on a local Ray
instance; both give the same episodes (checked). Printed: the Ray sampler's throughput as a
fraction of the local one's, its overhead per meta-batch (seconds and per step), and the
time a Ray round trip adds per time step. Actor start-up (importing torch and MuJoCo in
each worker) is timed apart and excluded.

    python benchmarks/ray_sampler.py [--env metarl/HalfCheetahVel-v1] [--tasks 20]
        [--episodes 10] [--horizon 200] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import metarl  # noqa: F401
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler
from metarl.rl.ray_sampler import RaySampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="metarl/HalfCheetahVel-v1")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    local = MultiTaskSampler(a.env, a.episodes, a.horizon, seed=0, threads=cores)
    start = time.perf_counter()
    init = {"num_cpus": cores, "include_dashboard": False}
    remote = RaySampler(a.env, a.episodes, a.horizon, seed=0, num_workers=a.workers,
                        threads=max(1, cores // a.workers), timeout_s=600,
                        ray_init_kwargs=init)  # fmt: skip
    remote.worker_pids()
    print(f"Ray start and {a.workers} actors: {time.perf_counter() - start:.1f} s (excluded)")
    policy = GaussianMLPPolicy.for_env(a.env)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    steps = 0
    for _ in range(a.repeats):
        tasks = local.sample_tasks(a.tasks)
        remote.sample_tasks(a.tasks)
        batches = {}
        for name, sampler in (("local", local), ("ray", remote)):
            t = time.perf_counter()
            batches[name] = sampler.sample(tasks, policy)
            times[name].append(time.perf_counter() - t)
        same = all(torch.equal(x, y) for x, y in zip(batches["local"], batches["ray"]))
        if not same:
            raise SystemExit("the Ray sampler's episodes differ from the local sampler's")
        steps = batches["local"].steps()
    best = {name: min(ts) for name, ts in times.items()}
    overhead = best["ray"] - best["local"]
    print(f"{a.env}: {a.tasks} tasks x {a.episodes} episodes x {a.horizon} steps "
          f"({steps} environment steps per meta-batch), {a.workers} workers, {cores} cores; "
          f"best of {a.repeats}, the same episodes from both")  # fmt: skip
    print(f"Ray / local throughput: {best['local'] / best['ray']:.2f}")
    print(f"overhead per meta-batch: {overhead:.2f} s ({1e6 * overhead / steps:.1f} us per step, "
          f"{1e3 * overhead / a.horizon:.1f} ms per time step of the batch)")  # fmt: skip
    remote.close()


if __name__ == "__main__":
    main()
