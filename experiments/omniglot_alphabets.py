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

Prints both accuracies with 95% intervals and writes them to ``alphabets.json`` beside the
learner.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from metarl.supervised import EpisodeSampler, load_learner, load_omniglot
from metarl.supervised.data.omniglot import LabelledImages, alphabet_groups
from metarl.supervised.evaluate import mean_and_ci95, sampled_accuracies
from metarl.utils import seed_everything
from metarl.utils.cli import parse_settings


@dataclass
class Settings:
    """Within- vs across-alphabet accuracy of a trained Omniglot learner."""

    learner: str = ""  # path of a learner.pt written by experiments/omniglot.py
    ways: int = 5
    shots: int = 1
    queries: int = 15
    episodes: int = 600
    seed: int = 0
    data: str | None = None  # folder with the Omniglot zips (default: ../shared/data/omniglot)
    threads: int = 2


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
    if not s.learner:
        raise SystemExit("--learner is required: a learner.pt written by experiments/omniglot.py")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    classifier = load_learner(s.learner)
    pool = held_out_pool(s.data)
    result: dict = {"settings": asdict(s)}
    for kind, groups in (("within", alphabet_groups(pool)), ("across", None)):
        sampler = EpisodeSampler(pool.images, pool.labels, s.ways, s.shots, s.queries,
                                 seed=s.seed, class_groups=groups)  # fmt: skip
        accuracy = sampled_accuracies(classifier.learner, sampler, s.episodes,
                                      classifier.eval_steps)[0]  # fmt: skip
        mean, ci = mean_and_ci95(accuracy)
        result[kind] = {"accuracy": mean, "ci95": ci}
        print(f"{kind}-alphabet {s.ways}-way {s.shots}-shot: {100 * mean:.2f} ± {100 * ci:.2f}% "
              f"over {s.episodes} episodes")  # fmt: skip
    out = Path(s.learner).with_name("alphabets.json")
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
