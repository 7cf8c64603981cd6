"""Our sampler on Navigation2D against an all-NumPy reference of the same meta-batch, as ratios.

The reference, written here, is the cheapest honest way to collect the same episodes: every
copy's position in one array, one batched NumPy forward of the same 100-100 ReLU Gaussian
policy per step (``float32``), Gaussian action noise, the same action scaling, clipping,
reward, termination and padded buffers. It has no environment objects, no torch, no task
validation. Ours is ``MultiTaskSampler.sample`` (with the distribution's vector form, the
default, and with ``fast=False``, the per-copy loop) on the same meta-batch: once with the
policy's own weights (the support episodes) and once with per-task adapted weights (the
query episodes: one ``vmap``-ed forward per step). Ratios are of steps per second, measured
interleaved in one process; the goal for the shared-weights ratio is >= 0.5.

    python benchmarks/navigation.py [--tasks 20 --episodes 20 --horizon 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import metarl  # noqa: F401
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler

ENV_ID = "metarl/Navigation2D-v0"


def numpy_reference(
    weights: list[tuple[np.ndarray, np.ndarray]],
    log_std: np.ndarray,
    goals: np.ndarray,
    horizon: int,
    rng: np.random.Generator,
) -> int:
    """Collect one meta-batch of episodes with NumPy only; return the steps taken.

    ``weights`` are per-task ``([tasks, in, out], [tasks, out])`` layers; ``goals`` is
    ``[tasks, episodes, 2]``.
    """
    tasks, episodes, _ = goals.shape
    position = np.zeros((tasks, episodes, 2))
    obs_buf = np.zeros((tasks, episodes, horizon, 2), np.float32)
    act_buf = np.zeros((tasks, episodes, horizon, 2), np.float32)
    rew_buf = np.zeros((tasks, episodes, horizon), np.float32)
    mask_buf = np.zeros((tasks, episodes, horizon), np.float32)
    alive = np.ones((tasks, episodes), dtype=bool)
    std = np.exp(log_std).astype(np.float32)
    steps = 0
    for h in range(horizon):
        x = position.astype(np.float32)
        obs_buf[:, :, h], mask_buf[:, :, h] = x, alive
        for k, (w, b) in enumerate(weights):
            x = np.matmul(x, w) + b[:, None, :]
            if k < len(weights) - 1:
                x = np.maximum(x, 0)
        action = x + std * rng.standard_normal(x.shape, dtype=np.float32)
        act_buf[:, :, h] = action
        move = np.clip(0.1 * action.astype(np.float64), -0.1, 0.1)  # [-1, 1] -> the box
        position[alive] += move[alive]
        offset = position - goals
        rew_buf[:, :, h] = np.where(alive, -np.sqrt((offset**2).sum(-1)), 0.0)
        steps += int(alive.sum())
        alive &= ~(np.abs(offset) < 0.01).all(-1)
        if not alive.any():
            break
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env(ENV_ID, hidden=(100, 100))
    samplers = {
        "vector": MultiTaskSampler(ENV_ID, args.episodes, args.horizon, seed=0),
        "loop": MultiTaskSampler(ENV_ID, args.episodes, args.horizon, seed=0, fast=False),
    }
    tasks = samplers["vector"].sample_tasks(args.tasks)
    goals = np.repeat(np.array([t["goal"] for t in tasks])[:, None], args.episodes, axis=1)
    own = dict(policy.named_parameters())
    adapted = {k: v.detach() + 0.01 * torch.randn(args.tasks, *v.shape) for k, v in own.items()}

    def layers(params: dict[str, torch.Tensor], batched: bool) -> list:
        names = sorted({k.rsplit(".", 1)[0] for k in params if k.startswith("mean.")})
        out = []
        for name in names:
            w, b = params[f"{name}.weight"].detach(), params[f"{name}.bias"].detach()
            if not batched:
                w, b = w.expand(args.tasks, *w.shape), b.expand(args.tasks, *b.shape)
            out.append((w.transpose(-1, -2).numpy().copy(), b.numpy().copy()))
        return out

    reference = {"shared": layers(own, False), "adapted": layers(adapted, True)}
    log_std = policy.log_std.detach().numpy()
    for sampler in samplers.values():
        sampler.sample(tasks, policy)  # warm-up: builds environments
    rates: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    for _ in range(args.repeats):
        for weights in ("shared", "adapted"):
            start = time.perf_counter()
            steps = numpy_reference(reference[weights], log_std, goals, args.horizon, rng)
            rates.setdefault(f"numpy {weights}", []).append(steps / (time.perf_counter() - start))
            for name, sampler in samplers.items():
                params = None if weights == "shared" else adapted
                start = time.perf_counter()
                episodes = sampler.sample(tasks, policy, params)
                rate = episodes.steps() / (time.perf_counter() - start)
                rates.setdefault(f"{name} {weights}", []).append(rate)
    print(f"{args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps, 100-100 policy, "
          f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}; medians of {args.repeats} interleaved repeats")  # fmt: skip
    for weights in ("shared", "adapted"):
        ref = statistics.median(rates[f"numpy {weights}"])
        print(f"{weights} weights: NumPy reference {ref:9.0f} steps/s (reference)")
        for name in samplers:
            ours = statistics.median(rates[f"{name} {weights}"])
            label = "vector form" if name == "vector" else "per-copy loop"
            print(f"  our sampler, {label:13s} {ours:9.0f} steps/s   ratio {ours / ref:.3f}")


if __name__ == "__main__":
    main()
