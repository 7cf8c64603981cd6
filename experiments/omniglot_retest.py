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

The data is read from ``--data`` or ``$METARL_DATA/omniglot``. Writes into ``--out``:
``settings.json`` (the command and settings) and ``results.json`` (the run format, with the
source run's ``settings`` and this script's under ``settings.retest``). Nothing is trained,
so there is no checkpoint to resume: a second retest into the same ``--out`` needs
``--overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch

import metarl
from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.omniglot import split_seed, with_rotations_if_short
from metarl.supervised.evaluate import mean_and_ci95, sampled_accuracies
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import Check, Positive, parse_settings

SCRIPT = "experiments/omniglot_retest.py"
Count = Annotated[int, Positive]
AtLeastTwo = Check(lambda n: n >= 2, "must be >= 2")


@dataclass
class Settings:
    """Score a finished Omniglot run's learner in another few-shot setting."""

    run: str  # folder of a finished experiments/omniglot.py run (learner.pt, results.json)
    out: str  # folder for this retest's settings.json and results.json
    ways: Annotated[int, AtLeastTwo] | None = None  # classes per episode (None: the run's)
    shots: Count | None = None  # support examples per class (None: the run's)
    queries: Count = 15  # per class in validation and test episodes
    val_episodes: Count = 200  # validation episodes scored
    test_episodes: Annotated[int, AtLeastTwo] = 600  # test episodes (95% interval)
    query_batch: Literal["per-class", "all"] = "per-class"
    """classify queries in batches of one per class, or all in one"""
    seed: int | None = None  # episode seeds (None: the run's: its validation and test episodes)
    data: str | None = None  # folder with the Omniglot zips (None: $METARL_DATA/omniglot)
    overwrite: bool = False  # replace a retest already in --out
    threads: Count = 2  # torch threads


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    source_path, learner_path = Path(s.run) / "results.json", Path(s.run) / "learner.pt"
    missing = [p.name for p in (source_path, learner_path) if not p.is_file()]
    if missing:
        raise SystemExit(
            f"--run {s.run}: no {' or '.join(missing)} there; pass a finished "
            "experiments/omniglot.py run"
        )
    source = json.loads(source_path.read_text())
    trained = source["settings"]
    ways = trained["ways"] if s.ways is None else s.ways
    shots = trained["shots"] if s.shots is None else s.shots
    seed = trained["seed"] if s.seed is None else s.seed
    torch.set_num_threads(s.threads)
    seed_everything(seed)
    learner = metarl.load_learner(learner_path)
    classes = getattr(learner.model, "output_size", None)
    if classes is not None and ways != classes:
        raise SystemExit(
            f"--ways {ways}: the learner of {s.run} has a {classes}-class output layer, "
            "so it can only be scored on episodes of that many ways"
        )
    try:
        split = {k: trained[k] for k in ("protocol", "protocol_seed") if k in trained}
        val, test = (load_omniglot(name, s.data, **split) for name in ("val", "test"))
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from err
    val, val_rotated = with_rotations_if_short(val, ways)
    run = start_run(s.out, s, argv=argv, script=SCRIPT)
    scores = {}
    with run.interruptible():
        for name, data, episodes in (("val", val, s.val_episodes), ("test", test, s.test_episodes)):
            sampler = EpisodeSampler(*data[:2], ways, shots, s.queries, seed=split_seed(seed, name))
            scores[name] = sampled_accuracies(
                learner, sampler, episodes, learner.eval_steps, query_batch=s.query_batch
            )[0]
    mean, ci = mean_and_ci95(scores["test"])
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
        "train_wall_s": source["train_wall_s"],  # the source run's: nothing is trained here
        "trained_as": {"ways": trained["ways"], "shots": trained["shots"], "run": s.run},
        "seed": seed,
        "settings": {**trained, "retest": asdict(s)},
    }
    written = run.write_results(result)
    print(
        f"{source['learner']} trained {trained['ways']}-way {trained['shots']}-shot, tested "
        f"{ways}-way {shots}-shot on the test split: {100 * mean:.2f} ± {100 * ci:.2f}% over "
        f"{s.test_episodes} episodes"
    )
    run.finish()
    return json.loads(written.read_text())


if __name__ == "__main__":
    main()
