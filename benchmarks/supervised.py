"""MAML meta-training speed and peak memory on Omniglot-shaped episodes: vmap against a loop.

One MAML iteration = 32 tasks of 5-way 1-shot (15 queries per class), 28x28 images, Conv-4
with 64 channels and batch statistics, one inner step, second-order meta-gradient, Adam.
Each batching mode runs in its own subprocess, so its peak resident memory is its own;
the modes alternate, and the ratio of medians is printed.

    python benchmarks/supervised.py [--tasks 32 --iterations 5 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from metarl.core import MAML, TaskBatch, resolve_batching
from metarl.nn import Conv4


def run_one(batching: str, tasks: int, iterations: int) -> dict:
    """Time ``iterations`` MAML steps (after one warm-up) in this process."""
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    learner = MAML(Conv4(ways=5), inner_lr=0.4, inner_steps=1, batching=batching)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    batch = TaskBatch(
        torch.rand(tasks, 5, 1, 28, 28), torch.arange(5).repeat(tasks, 1),
        torch.rand(tasks, 75, 1, 28, 28), torch.arange(5).repeat_interleave(15).repeat(tasks, 1),
    )  # fmt: skip

    def step() -> None:
        loss = learner.meta_loss(batch, F.cross_entropy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return {"iterations_per_s": iterations / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_one(args.child, args.tasks, args.iterations)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    results: dict[str, list[dict]] = {"vmap": [], "loop": []}
    for _ in range(args.repeats):
        for mode in results:
            cmd = [sys.executable, __file__, "--child", mode, "--tasks", str(args.tasks),
                   "--iterations", str(args.iterations)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    print(f"MAML, Conv-4 (64 channels), {args.tasks} tasks of 5-way 1-shot, 1 inner step, "
          f"{os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip
    speed = {m: statistics.median(r["iterations_per_s"] for r in rs) for m, rs in results.items()}
    memory = {m: max(r["peak_rss_mb"] for r in rs) for m, rs in results.items()}
    for mode in results:
        print(f"{mode:5s}: {speed[mode]:6.3f} iterations/s, peak memory {memory[mode]:7.0f} MB")
    print(
        f"vmap / loop speed: {speed['vmap'] / speed['loop']:.2f} "
        f"(medians of {args.repeats}); memory {memory['vmap'] / memory['loop']:.2f}"
    )
    print(f"batching='auto' picks: {resolve_batching(Conv4(ways=5), 'auto')}")


if __name__ == "__main__":
    main()
