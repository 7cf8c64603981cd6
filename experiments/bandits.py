"""MAML on Bernoulli bandits against UCB1, Thompson sampling and random play.

Each task is a k-armed Bernoulli bandit with arm probabilities ~ U[0, 1]; a player has n
pulls and is scored by its total reward, every pull counted, the ones spent adapting too.
MAML's player is a softmax policy over arms (one pull per episode, constant observation)
whose initialisation is meta-trained with MAML-TRPO. At test time it pulls in blocks of
``block`` pulls; after each block it takes one policy-gradient step on that block's pulls
(the MAML paper's multi-step evaluation). Its meta-training uses the same block size as
its support set.

    python experiments/bandits.py --seed 0

Writes experiments/results/bandits.md and bandits.csv.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import metarl  # noqa: F401
from metarl.core import MAML
from metarl.rl import CategoricalMLPPolicy, MetaRLTrainer, MultiTaskSampler
from metarl.utils import seed_everything
from metarl.utils.cli import parse_settings

BLOCKS = {10: 5, 100: 25, 500: 100}  # pulls between MAML's adaptation steps, by n


@dataclass
class Settings:
    """Bandit comparison."""

    pairs: tuple[int, ...] = (10, 5, 100, 5, 100, 10, 100, 50, 500, 10, 500, 50)  # n, k, ...
    meta_iterations: int = 100
    tasks_per_batch: int = 20
    inner_lr: float = 10.0  # one pull per episode: logits need large steps to move
    max_kl: float = 0.05
    eval_tasks: int = 500
    seed: int = 0
    eval_seed: int = 777
    out: str = "experiments/results/bandits.md"
    threads: int = 1


def ucb1(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """UCB1 (Auer et al., 2002): each arm once, then argmax of mean + sqrt(2 ln t / n_a)."""
    tasks, k = probs.shape
    counts, sums, total = np.zeros((tasks, k)), np.zeros((tasks, k)), np.zeros(tasks)
    rows = np.arange(tasks)
    for t in range(n):
        if t < k:
            arm = np.full(tasks, t)
        else:
            bonus = np.sqrt(2 * math.log(t) / counts)
            arm = np.argmax(sums / counts + bonus, axis=1)
        reward = rng.random(tasks) < probs[rows, arm]
        counts[rows, arm] += 1
        sums[rows, arm] += reward
        total += reward
    return total


def thompson(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Thompson sampling with Beta(1, 1) priors on every arm."""
    tasks, k = probs.shape
    wins, losses, total = np.ones((tasks, k)), np.ones((tasks, k)), np.zeros(tasks)
    rows = np.arange(tasks)
    for _ in range(n):
        arm = np.argmax(rng.beta(wins, losses), axis=1)
        reward = rng.random(tasks) < probs[rows, arm]
        wins[rows, arm] += reward
        losses[rows, arm] += 1 - reward
        total += reward
    return total


def random_play(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    tasks, k = probs.shape
    arms = rng.integers(0, k, size=(n, tasks))
    return (rng.random((n, tasks)) < probs[np.arange(tasks), arms]).sum(0).astype(float)


def maml_player(s: Settings, n: int, k: int, probs: np.ndarray) -> tuple[np.ndarray, float]:
    """Meta-train MAML-TRPO for (n, k); return total reward per evaluation task and wall time."""
    block = BLOCKS[n]
    env_id, env_kwargs = "metarl/BernoulliBandit-v0", {"arms": k, "pulls": 1}
    policy = CategoricalMLPPolicy(k + 1, k, hidden=(32,))
    sampler = MultiTaskSampler(env_id, block, horizon=1, seed=s.seed, env_kwargs=env_kwargs)
    trainer = MetaRLTrainer(MAML(policy, s.inner_lr), sampler, "trpo", s.max_kl)
    start = time.perf_counter()
    for _ in range(s.meta_iterations):
        trainer.meta_step(sampler.sample_tasks(s.tasks_per_batch))
    wall = time.perf_counter() - start
    trainer.sampler = MultiTaskSampler(env_id, block, 1, seed=s.eval_seed, env_kwargs=env_kwargs)
    tasks = [{"probs": p.tolist()} for p in probs]
    per_pull = trainer.evaluate(tasks, inner_steps=n // block - 1)  # [rounds, tasks]
    return (per_pull * block).sum(0).numpy(), wall


def main(argv: list[str] | None = None) -> None:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    if len(s.pairs) % 2:
        raise SystemExit("--pairs takes n k n k ...")
    rows, lines = [], []
    for n, k in zip(s.pairs[::2], s.pairs[1::2]):
        if n not in BLOCKS:
            raise SystemExit(f"no block size for n={n}; known: {sorted(BLOCKS)}")
        probs = np.random.default_rng(s.eval_seed + k).uniform(size=(s.eval_tasks, k))
        rng = np.random.default_rng(s.eval_seed)
        totals = {
            "MAML": maml_player(s, n, k, probs),
            "UCB1": (ucb1(probs, n, rng), 0.0),
            "Thompson": (thompson(probs, n, rng), 0.0),
            "random": (random_play(probs, n, rng), 0.0),
        }
        best = n * probs.max(1).mean()
        for name, (total, wall) in totals.items():
            ci = 1.96 * total.std() / math.sqrt(len(total))
            rows.append([n, k, name, f"{total.mean():.2f}", f"{ci:.2f}", len(total), f"{wall:.0f}"])
            print(f"n={n} k={k} {name}: {total.mean():.2f} ± {ci:.2f}", flush=True)
        rows.append([n, k, "best arm (oracle)", f"{best:.2f}", "", len(probs), "0"])
    out = Path(s.out)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["n", "k", "player", "total_reward", "ci95", "n_tasks", "train_wall_s"])
        writer.writerows(rows)
    players = ["MAML", "UCB1", "Thompson", "random", "best arm (oracle)"]
    lines = [
        "# Bernoulli bandits: total reward over n pulls (adaptation pulls included)",
        "",
        "| n | k | " + " | ".join(players) + " |",
        "|---|---|" + "---|" * len(players),
    ]
    for n, k in zip(s.pairs[::2], s.pairs[1::2]):
        cells = []
        for p in players:
            (row,) = [r for r in rows if r[0] == n and r[1] == k and r[2] == p]
            cells.append(f"{row[3]} ± {row[4]}" if row[4] else row[3])
        lines.append(f"| {n} | {k} | " + " | ".join(cells) + " |")
    cli = list(sys.argv[1:] if argv is None else argv)
    lines += [
        "",
        f"Mean over {s.eval_tasks} held-out tasks (arm probabilities ~ U[0, 1]) with a 95%",
        "interval. MAML adapts with one policy-gradient step (step size "
        f"{s.inner_lr}) after every block of {', '.join(f'{b} (n={n})' for n, b in BLOCKS.items())}"
        f" pulls; its initialisation was meta-trained for {s.meta_iterations} MAML-TRPO "
        f"iterations of {s.tasks_per_batch} tasks per (n, k). 'best arm' always pulls the best "
        "arm: the ceiling.",
        "",
        f"Command: `python experiments/bandits.py {shlex.join(cli)}` (seed {s.seed}); machine: "
        f"{platform.machine()}, {os.cpu_count()} cores. MAML training wall time per (n, k) is "
        "in bandits.csv.",
        "",
        f"Settings: `{asdict(s)}`",
    ]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
