"""MAML and RL^2 on Bernoulli bandits against UCB1, Thompson sampling and random play.

Each task is a k-armed Bernoulli bandit with arm probabilities ~ U[0, 1]; a player has n
pulls and is scored by its total reward, every pull counted, the ones spent adapting too.
MAML's player is a softmax policy over arms (one pull per episode, constant observation)
whose initialisation is meta-trained with MAML-TRPO. At test time it pulls in blocks of
``block`` pulls; after each block it takes one policy-gradient step on that block's pulls
(the MAML paper's multi-step evaluation). Its meta-training uses the same block size as
its support set. RL^2's player is the GRU policy trained by ``experiments/rl2.py`` into
``--rl2-runs``/n<n>-k<k>/ (one trial of n one-pull episodes); a pair without such a run
has no RL^2 row. UCB1 plays in two forms, the textbook one (each arm pulled once first) and
one with a Beta(1, 1) prior on every arm (which need not try every arm, and matches the RL^2
paper's UCB1 figures); each form's exploration constant is tuned per (n, k) on the
validation tasks, as the RL^2 paper tuned its baselines. The RL^2 paper's figures (Duan et
al., 2016, Table 1) stand beside ours.

    python experiments/bandits.py --seed 0
    python experiments/bandits.py --seed 0 --resume   # after a stop: skips the finished bandits

Writes, inside ``--out`` (default ``experiments/results/bandits``, the committed run):
``settings.json`` (the command and settings, at the start), ``checkpoint.pt`` (the rows of
every finished (n, k), written after each one, and the one before it,
``checkpoint.prev.pt``), ``bandits.md`` (the table), ``bandits.csv`` (the rows behind it,
with each MAML training wall time) and ``results.json`` (the rows and provenance). A second
run into the same folder needs ``--resume`` or ``--overwrite``. The whole grid takes about
12 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

import metarl
from metarl.core import MAML, TRPO
from metarl.rl import CategoricalMLPPolicy, MetaRLTrainer, MultiTaskSampler, TrialSampler
from metarl.utils import Run, machine, seed_everything, start_run
from metarl.utils.checkpoint import write_atomic
from metarl.utils.cli import NonNegative, Positive, parse_settings

SCRIPT = "experiments/bandits.py"
BANDIT = "metarl/BernoulliBandit-v0"
BLOCKS = {10: 5, 100: 25, 500: 100}  # pulls between MAML's adaptation steps, by n
CSV_COLUMNS = "n k player total_reward ci95 n_tasks train_wall_s chosen_iteration setting".split()
UCB_CONSTANTS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)  # UCB1's c, tuned per (n, k)
# Duan et al. (2016), Table 1, by (n, k): Gittins index, UCB1 (tuned), Thompson, RL^2.
PAPER = {
    (10, 5): (6.6, 6.7, 5.7, 6.7),
    (10, 10): (6.6, 6.7, 5.5, 6.7),
    (10, 50): (6.5, 6.6, 5.2, 6.8),
    (100, 5): (78.3, 78.0, 74.7, 78.7),
    (100, 10): (82.8, 82.4, 76.7, 83.5),
    (100, 50): (85.2, 84.3, 64.5, 84.9),
    (500, 5): (405.8, 405.8, 402.0, 401.6),
    (500, 10): (437.8, 437.1, 429.5, 432.5),
    (500, 50): (463.7, 457.6, 427.2, 438.9),
}
PAPER_PLAYERS = ("Gittins", "UCB1", "Thompson", "RL^2")
PAIRS = (10, 5, 100, 5, 100, 10, 100, 50, 500, 10, 500, 50)  # the committed table's (n, k)


@dataclass
class Settings:
    """Bandit comparison: MAML against UCB1, Thompson sampling and random play."""

    pairs: Annotated[tuple[int, ...], Positive] = PAIRS
    """Bandits to play, as n k pairs: n pulls (10, 100 or 500), k arms"""
    meta_iterations: Annotated[int, NonNegative] = 100  # MAML-TRPO iterations per (n, k)
    tasks_per_batch: Annotated[int, Positive] = 20  # tasks per meta-batch
    inner_lr: Annotated[float, Positive] = 10.0  # inner step; large: one pull barely moves logits
    max_kl: Annotated[float, Positive] = 0.05  # TRPO's KL bound
    eval_tasks: Annotated[int, Positive] = 500  # held-out bandits per (n, k)
    val_tasks: Annotated[int, Positive] = 200  # meta-validation tasks: pick the best init seen
    validate_every: Annotated[int, Positive] = 10  # iterations between meta-validations
    seed: int = 0  # seed of the initialisation, the training tasks and the validation tasks
    eval_seed: int = 777  # seed of the held-out bandits and of every player's pulls
    rl2_runs: str = "experiments/results/bandits_rl2"  # RL^2 run folders n<n>-k<k>
    out: str = "experiments/results/bandits"  # run folder: table, rows, checkpoint, results
    resume: bool = False  # continue the run in --out (same settings): skip the finished bandits
    overwrite: bool = False  # delete the run already in --out and start afresh
    threads: Annotated[int, Positive] = 1  # torch threads

    def validate(self) -> None:
        if len(self.pairs) % 2:
            raise ValueError(f"--pairs takes n k n k ..., got {len(self.pairs)} values")
        unknown = sorted({n for n in self.pairs[::2] if n not in BLOCKS})
        if unknown:
            raise ValueError(f"--pairs: no block size for n={unknown}; known n: {sorted(BLOCKS)}")


def ucb1(
    probs: np.ndarray, n: int, rng: np.random.Generator, c: float = 1.0, prior: bool = False
) -> np.ndarray:
    """UCB1 (Auer et al., 2002): each arm once, then argmax of mean + c sqrt(2 ln t / n_a)
    (``c=1``: the original rule).

    ``prior=True`` starts every arm at one pseudo-success and one pseudo-failure (a Beta(1, 1)
    prior) instead of pulling each arm once: argmax of (s_a + 1) / (n_a + 2) + c sqrt(2 ln(t +
    1) / (n_a + 1)), so with many arms and few pulls not every arm is tried.
    """
    tasks, k = probs.shape
    counts, sums, total = np.zeros((tasks, k)), np.zeros((tasks, k)), np.zeros(tasks)
    rows = np.arange(tasks)
    for t in range(n):
        if prior:
            bonus = c * np.sqrt(2 * math.log(t + 1) / (counts + 1))
            arm = np.argmax((sums + 1) / (counts + 2) + bonus, axis=1)
        elif t < k:
            arm = np.full(tasks, t)
        else:
            bonus = c * np.sqrt(2 * math.log(t) / counts)
            arm = np.argmax(sums / counts + bonus, axis=1)
        reward = rng.random(tasks) < probs[rows, arm]
        counts[rows, arm] += 1
        sums[rows, arm] += reward
        total += reward
    return total


def tuned_ucb1(s: Settings, n: int, k: int, prior: bool = False) -> float:
    """The exploration constant in ``UCB_CONSTANTS`` with the best mean total reward on the
    validation tasks (those MAML's initialisation is chosen on)."""
    val_probs = np.random.default_rng(s.seed + 10_000 + k).uniform(size=(s.val_tasks, k))
    scores = [
        ucb1(val_probs, n, np.random.default_rng(s.seed + 1), c, prior).mean()
        for c in UCB_CONSTANTS
    ]
    return UCB_CONSTANTS[int(np.argmax(scores))]


def rl2_player(
    s: Settings, n: int, k: int, probs: np.ndarray
) -> tuple[np.ndarray, float, str] | None:
    """Total reward per task of the RL^2 learner trained for (n, k), its training wall
    time and the iteration its weights come from; ``None`` if no such run exists."""
    folder = Path(s.rl2_runs) / f"n{n}-k{k}"
    if not (folder / "learner.pt").exists():
        return None
    learner = metarl.load_learner(folder / "learner.pt")
    sampler = TrialSampler(BANDIT, n, 1, seed=s.eval_seed, env_kwargs={"arms": k, "pulls": 1})
    trials = learner.play(sampler, [{"probs": p.tolist()} for p in probs])
    results = json.loads((folder / "results.json").read_text())
    return (
        trials.episode_returns.sum(-1)[:, 0].double().numpy(),
        results["train_wall_s"],
        str(results["chosen_iteration"]),
    )


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


def maml_player(s: Settings, n: int, k: int, probs: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Meta-train MAML-TRPO for (n, k) and play the evaluation tasks.

    Every ``validate_every`` iterations the initialisation is scored on separate
    meta-validation tasks with the evaluation protocol; the best one (iteration 0, the
    untrained policy, included) is kept. Returns the total reward per evaluation task, the
    training wall time and the chosen iteration.
    """
    block = BLOCKS[n]
    env_id, env_kwargs = BANDIT, {"arms": k, "pulls": 1}
    policy = CategoricalMLPPolicy(k + 1, k, hidden=(32,))
    sampler = MultiTaskSampler(env_id, block, horizon=1, seed=s.seed, env_kwargs=env_kwargs)
    trainer = MetaRLTrainer(MAML(policy, s.inner_lr), sampler, TRPO(max_kl=s.max_kl))
    val_probs = np.random.default_rng(s.seed + 10_000 + k).uniform(size=(s.val_tasks, k))

    def play(task_probs: np.ndarray, seed: int) -> np.ndarray:
        train_sampler = trainer.sampler
        trainer.sampler = MultiTaskSampler(env_id, block, 1, seed=seed, env_kwargs=env_kwargs)
        tasks = [{"probs": p.tolist()} for p in task_probs]
        per_pull = trainer.evaluate(tasks, inner_steps=n // block - 1)  # [rounds, tasks]
        trainer.sampler = train_sampler
        return (per_pull * block).sum(0).numpy()

    start = time.perf_counter()
    best_score, best_it, best_state = -math.inf, 0, {}
    for it in range(s.meta_iterations + 1):  # iteration 0: the untrained policy
        if it:
            trainer.meta_step(sampler.sample_tasks(s.tasks_per_batch))
        if it % s.validate_every == 0:
            score = play(val_probs, s.seed + 1).mean()
            if score > best_score:
                best_score, best_it = score, it
                best_state = {name: t.clone() for name, t in policy.state_dict().items()}
    wall = time.perf_counter() - start
    policy.load_state_dict(best_state)
    return play(probs, s.eval_seed), wall, best_it


def play_bandit(s: Settings, n: int, k: int) -> list[list]:
    """Every player's rows for one (n, k): mean total reward, 95% interval, wall time."""
    probs = np.random.default_rng(s.eval_seed + k).uniform(size=(s.eval_tasks, k))
    rng = np.random.default_rng(s.eval_seed)
    c, c_prior = tuned_ucb1(s, n, k), tuned_ucb1(s, n, k, prior=True)
    maml = maml_player(s, n, k, probs)
    totals = {"MAML": (*maml, "")}
    with torch.random.fork_rng():  # loading it draws from torch's generator: MAML's
        rl2 = rl2_player(s, n, k, probs)  # initialisations of later pairs must not move
    if rl2 is not None:
        totals["RL^2"] = (rl2[0], rl2[1], "", f"weights of iteration {rl2[2]}")
    totals |= {
        "UCB1": (ucb1(probs, n, rng, c), 0.0, "", f"c={c}"),
        "UCB1 (prior)": (ucb1(probs, n, rng, c_prior, prior=True), 0.0, "", f"c={c_prior}"),
        "Thompson": (thompson(probs, n, rng), 0.0, "", ""),
        "random": (random_play(probs, n, rng), 0.0, "", ""),
    }
    rows = []
    for name, (total, wall, chosen, setting) in totals.items():
        ci = 1.96 * total.std() / math.sqrt(len(total))
        rows.append([n, k, name, f"{total.mean():.2f}", f"{ci:.2f}", len(total), f"{wall:.0f}",
                     chosen, setting])  # fmt: skip
    best = n * probs.max(1).mean()
    rows.append([n, k, "best arm (oracle)", f"{best:.2f}", "", len(probs), "0", "", ""])
    return rows


def write_table(s: Settings, run: Run, rows: list[list]) -> Path:
    """The markdown table of ``rows`` beside the RL^2 paper's, with its protocol, command
    and settings."""
    players = ["MAML", "RL^2", "UCB1", "UCB1 (prior)", "Thompson", "random", "best arm (oracle)"]
    paper = [f"{p} (paper)" for p in PAPER_PLAYERS]
    lines = [
        "# Bernoulli bandits: total reward over n pulls (adaptation pulls included)",
        "",
        "| n | k | " + " | ".join(players + paper) + " | MAML init from iteration |",
        "|---|---|" + "---|" * (len(players) + len(paper) + 1),
    ]
    untrained, constants = [], []
    for n, k in zip(s.pairs[::2], s.pairs[1::2]):
        cells = []
        for p in players:
            found = [r for r in rows if r[0] == n and r[1] == k and r[2] == p]
            if not found:
                cells.append("not trained")
                continue
            row = found[0]
            cells.append(f"{row[3]} ± {row[4]}" if row[4] else row[3])
        cells += [str(v) for v in PAPER.get((n, k), ("-",) * len(PAPER_PLAYERS))]
        (maml,) = [r for r in rows if r[0] == n and r[1] == k and r[2] == "MAML"]
        ucbs = [r for r in rows if r[0] == n and r[1] == k and r[2].startswith("UCB1")]
        constants.append(" / ".join(r[8] for r in ucbs) + f" (n={n}, k={k})")
        if maml[7] == 0:
            untrained.append(f"(n={n}, k={k})")
        lines.append(f"| {n} | {k} | " + " | ".join(cells) + f" | {maml[7]} |")
    lines += [
        "",
        f"Mean over {s.eval_tasks} held-out tasks (arm probabilities ~ U[0, 1]) with a 95%",
        "interval. MAML adapts with one policy-gradient step (step size "
        f"{s.inner_lr}) after every block of {', '.join(f'{b} (n={n})' for n, b in BLOCKS.items())}"
        f" pulls; its initialisation was meta-trained for up to {s.meta_iterations} MAML-TRPO "
        f"iterations of {s.tasks_per_batch} tasks per (n, k), and the initialisation kept is the "
        f"one that scored best on {s.val_tasks} separate meta-validation tasks, checked every "
        f"{s.validate_every} iterations (iteration 0, the untrained policy, included; the chosen "
        "iteration is in the last column). 'best arm' always pulls the best arm: the ceiling.",
        "",
        "RL^2 is the GRU policy trained by `experiments/rl2.py` for that (n, k) (its command, "
        f"seed and wall time in `{s.rl2_runs}/n<n>-k<k>/results.json`; 'not trained': no run "
        "yet), playing one trial of n pulls per held-out task. UCB1 pulls each arm once, then "
        "adds c sqrt(2 ln t / n_a) to each arm's mean; 'UCB1 (prior)' starts each arm at one "
        "success and one failure instead (mean (s_a + 1) / (n_a + 2), bonus c sqrt(2 ln(t + 1) "
        "/ (n_a + 1))), so it need not try every arm; c tuned on the validation tasks from "
        f"{list(UCB_CONSTANTS)}, UCB1 / UCB1 (prior): " + ", ".join(constants) + ". The "
        "'(paper)' columns are Duan et al. (2016), Table 1 (its UCB1 tuned too).",
        *(
            [
                "",
                "For " + ", ".join(untrained) + " no meta-trained initialisation beat the "
                "untrained (uniform) policy on the validation tasks, so that MAML entry measures "
                "policy-gradient adaptation from a uniform policy, not a meta-learned one: "
                "meta-training with the one-step MAML objective did not help there.",
            ]
            if untrained
            else []
        ),
        "",
        f"Command: `{run.command}` (seed {s.seed}); machine: {machine()}; wall time of the "
        f"grid {run.wall_s / 60:.1f} min, MAML training's per (n, k) in bandits.csv.",
        "",
        f"Settings: `{asdict(s)}`",
    ]
    return write_atomic(run.out / "bandits.md", ("\n".join(lines) + "\n").encode())


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    run = start_run(s.out, s, argv=argv, script=SCRIPT, outputs=("bandits.md", "bandits.csv"))
    seed_everything(s.seed)
    pairs = list(zip(s.pairs[::2], s.pairs[1::2]))
    with run.interruptible():
        state = run.restore()
        rows: list[list] = [] if state is None else state["rows"]
        bar = run.progress(len(pairs), "bandits")
        for i in bar:
            n, k = pairs[i]
            run.status(i, f"n={n} k={k}", every=1)
            played = play_bandit(s, n, k)
            for row in played[:-1]:  # the players; the last row is the oracle's ceiling
                print(f"n={n} k={k} {row[2]}: {row[3]} ± {row[4]}", flush=True)
            rows += played
            run.save({"rows": rows}, i + 1)
    with (run.out / "bandits.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    table = write_table(s, run, rows)
    print(f"table in {table}, rows in {run.out / 'bandits.csv'}")
    run.write_results({"rows": [dict(zip(CSV_COLUMNS, r)) for r in rows]})
    run.finish()
    return {"rows": rows, "table": str(table), "csv": str(run.out / "bandits.csv")}


if __name__ == "__main__":
    main()
