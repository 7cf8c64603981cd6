"""Meta-training speed of the batched core (vmap) against a plain per-task loop.

Sinusoid MLP (1-40-40-1), 25 tasks of 10 support + 10 query points, second-order MAML with
1 and 5 inner steps (and Meta-SGD with 1). One iteration is a meta-loss, its backward and an
Adam step. Both paths run in this process, interleaved, with the same thread count; the
figure that matters is the ratio, since bare timings on shared machines are noisy.

    python benchmarks/adapt.py [--repeats 5] [--iterations 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from metarl.core import MAML, MetaLearner, MetaSGD
from metarl.nn import MLP
from metarl.supervised import SinusoidTasks


def iterations_per_second(learner: MetaLearner, batch, iterations: int) -> float:
    opt = torch.optim.Adam(learner.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(iterations):
        loss = learner.meta_loss(batch, F.mse_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return iterations / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch, _ = SinusoidTasks().sample(args.tasks, 10, 10, torch.Generator().manual_seed(0))

    cases = [
        ("MAML, 1 step, 2nd order", lambda b: MAML(MLP(1, 1), 0.01, 1, batching=b)),
        ("MAML, 5 steps, 2nd order", lambda b: MAML(MLP(1, 1), 0.01, 5, batching=b)),
        ("Meta-SGD, 1 step", lambda b: MetaSGD(MLP(1, 1), 0.01, 1, batching=b)),
    ]
    print(
        f"{args.tasks} tasks, torch {torch.__version__}, {args.threads} thread(s); "
        f"median of {args.repeats} repeats of {args.iterations} iterations"
    )
    print(f"{'case':28s} {'loop it/s':>10s} {'vmap it/s':>10s} {'speed-up':>9s}")
    for name, make in cases:
        learners = {b: make(b) for b in ("loop", "vmap")}
        for learner in learners.values():  # warm-up
            iterations_per_second(learner, batch, 3)
        rates: dict[str, list[float]] = {"loop": [], "vmap": []}
        for _ in range(args.repeats):
            for b, learner in learners.items():
                rates[b].append(iterations_per_second(learner, batch, args.iterations))
        loop, vmap = (statistics.median(rates[b]) for b in ("loop", "vmap"))
        print(f"{name:28s} {loop:10.1f} {vmap:10.1f} {vmap / loop:8.1f}x")


if __name__ == "__main__":
    main()
