"""Test a trained Omniglot learner in another setting (more shots) without training it again.

A learner meta-trained on 1-shot episodes still adapts on 5-shot ones. This script takes a
finished ``experiments/omniglot.py`` run, scores its kept initialisation on the validation
and test episodes of another setting (the same episodes a run trained in that setting would
be scored on: same seeds), and writes a ``results.json`` in the run format, marked with the
setting it was trained in, so ``experiments/omniglot_report.py`` can list it (the training
wall time and iterations are those of the source run).

    python experiments/omniglot_retest.py \\
        --run experiments/results/omniglot/maml-5way1shot-augclass-12k-seed0 --shots 5 \\
        --out experiments/results/omniglot/maml-5way1shot-augclass-12k-seed0-tested-5shot
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from metarl.supervised import EpisodeSampler, load_learner, load_omniglot
from metarl.supervised.data.omniglot import split_seed, with_rotations_if_short
from metarl.supervised.evaluate import mean_and_ci95, sampled_accuracies
from metarl.utils import seed_everything
from metarl.utils.cli import parse_settings


@dataclass
class Settings:
    """Score a finished Omniglot run's learner in another few-shot setting."""

    run: str = ""  # folder of a finished experiments/omniglot.py run (learner.pt, results.json)
    ways: int | None = None  # None: the run's
    shots: int | None = None  # None: the run's
    queries: int = 15
    val_episodes: int = 200
    test_episodes: int = 600
    query_batch: str = "per-class"
    seed: int | None = None  # None: the run's (its validation and test episode seeds)
    data: str | None = None
    out: str = ""
    threads: int = 2


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    if not s.run or not s.out:
        raise SystemExit("--run (a finished omniglot.py run) and --out are required")
    source = json.loads((Path(s.run) / "results.json").read_text())
    trained = source["settings"]
    ways = trained["ways"] if s.ways is None else s.ways
    shots = trained["shots"] if s.shots is None else s.shots
    seed = trained["seed"] if s.seed is None else s.seed
    torch.set_num_threads(s.threads)
    seed_everything(seed)
    classifier = load_learner(Path(s.run) / "learner.pt")
    if classifier.ways is not None and ways != classifier.ways:
        raise SystemExit(
            f"--ways {ways}: the learner of {s.run} has a {classifier.ways}-class output layer, "
            "so it can only be scored on episodes of that many ways"
        )
    val, test = load_omniglot("val", s.data), load_omniglot("test", s.data)
    val, val_rotated = with_rotations_if_short(val, ways)
    steps = classifier.eval_steps
    scores = {}
    for name, data, episodes in (("val", val, s.val_episodes), ("test", test, s.test_episodes)):
        sampler = EpisodeSampler(*data[:2], ways, shots, s.queries, seed=split_seed(seed, name))
        scores[name] = sampled_accuracies(classifier.learner, sampler, episodes, steps,
                                          query_batch=s.query_batch)[0]  # fmt: skip
    mean, ci = mean_and_ci95(scores["test"])
    cli_args = sys.argv[1:] if argv is None else argv
    result = {
        "learner": source["learner"],
        "ways": ways,
        "shots": shots,
        "test_accuracy": mean,
        "ci95": ci,
        "test_episodes": s.test_episodes,
        "best_iteration": source["best_iteration"],
        "val_accuracy": scores["val"].mean().item(),
        "val_rotated": val_rotated,
        "train_wall_s": source["train_wall_s"],
        "trained_as": {"ways": trained["ways"], "shots": trained["shots"], "run": s.run},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {s.threads} torch threads",
        "command": "python experiments/omniglot_retest.py " + shlex.join(cli_args),
        "settings": {**trained, "retest": asdict(s)},
    }
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(f"{source['learner']} trained {trained['ways']}-way {trained['shots']}-shot, tested "
          f"{ways}-way {shots}-shot on Sanskrit: {100 * mean:.2f} ± {100 * ci:.2f}% over "
          f"{s.test_episodes} episodes")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
