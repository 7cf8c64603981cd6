"""How much harder a one-alphabet test is: a trained Omniglot learner on within- and
across-alphabet episodes of the held-out characters.

The published Omniglot figures draw each test episode's classes from all held-out alphabets
at random; our table's test draws them from Sanskrit alone. This script pools the two
held-out alphabets (Tagalog, the meta-validation one, and Sanskrit: 59 characters) and
classifies the same number of episodes of each kind with the same learner:

- ``within``: every episode's classes come from one alphabet (as in our table's test);
- ``across``: classes drawn from the pool at random (as in the published test).

    python experiments/omniglot_alphabets.py \\
        --learner experiments/results/omniglot/maml-5way1shot-augclass-seed0/learner.pt

The data is read from ``--data`` or ``$METARL_DATA/omniglot``. Prints both accuracies with
95% intervals and writes, inside ``--out`` (default: ``alphabets/`` in the learner's training
run folder, which ``omniglot.py --overwrite`` then removes with the run it belongs to):
``settings.json`` (the command and settings) and ``results.json`` (both accuracies and the
provenance). Nothing is trained, so there is no checkpoint to resume: a second measurement
into the same folder needs ``--overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

import metarl
from metarl.supervised import EpisodeSampler, load_omniglot
from metarl.supervised.data.omniglot import LabelledImages, alphabet_groups
from metarl.supervised.evaluate import mean_and_ci95, sampled_accuracies
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import Check, Positive, parse_settings

SCRIPT = "experiments/omniglot_alphabets.py"
Count = Annotated[int, Positive]
AtLeastTwo = Check(lambda n: n >= 2, "must be >= 2")


@dataclass
class Settings:
    """Within- vs across-alphabet accuracy of a trained Omniglot learner."""

    learner: str  # path of a learner.pt written by experiments/omniglot.py
    ways: Annotated[int, AtLeastTwo] = 5  # classes per episode (the learner's output layer's)
    shots: Count = 1  # support examples per class
    queries: Count = 15  # query examples per class
    episodes: Annotated[int, AtLeastTwo] = 600  # episodes of each kind (for a 95% interval)
    seed: int = 0  # seeds the episodes
    data: str | None = None  # folder with the Omniglot zips (None: $METARL_DATA/omniglot)
    out: str | None = None  # output folder (None: alphabets/ in the learner's run folder)
    overwrite: bool = False  # replace a measurement already in --out
    threads: Count = 2  # torch threads


def held_out_pool(root: str | None) -> LabelledImages:
    """The meta-validation and meta-test characters as one labelled set."""
    val, test = load_omniglot("val", root), load_omniglot("test", root)
    offset = val.labels.max() + 1
    return LabelledImages(
        np.concatenate([val.images, test.images]),
        np.concatenate([val.labels, test.labels + offset]),
        val.class_names + test.class_names,
    )


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    if not Path(s.learner).is_file():
        raise SystemExit(f"--learner {s.learner}: no such file (a learner.pt of omniglot.py)")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    learner = metarl.load_learner(s.learner)
    classes = getattr(learner.model, "output_size", None)
    if classes is not None and s.ways != classes:
        raise SystemExit(
            f"--ways {s.ways}: the learner {s.learner} has a {classes}-class output layer, "
            "so it can only be scored on episodes of that many ways"
        )
    try:
        pool = held_out_pool(s.data)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from err
    out = Path(s.learner).with_name("alphabets") if s.out is None else Path(s.out)
    run = start_run(out, s, argv=argv, script=SCRIPT)
    result: dict = {}
    with run.interruptible():
        for kind, groups in (("within", alphabet_groups(pool)), ("across", None)):
            sampler = EpisodeSampler(
                pool.images, pool.labels, s.ways, s.shots, s.queries, s.seed, class_groups=groups
            )
            accuracy = sampled_accuracies(learner, sampler, s.episodes, learner.eval_steps)[0]
            mean, ci = mean_and_ci95(accuracy)
            result[kind] = {"accuracy": mean, "ci95": ci}
            print(
                f"{kind}-alphabet {s.ways}-way {s.shots}-shot: {100 * mean:.2f} ± "
                f"{100 * ci:.2f}% over {s.episodes} episodes"
            )
    written = run.write_results(result)
    run.finish()
    return json.loads(written.read_text())


if __name__ == "__main__":
    main()
