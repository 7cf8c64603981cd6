"""experiments/metric_fewshot.py: grid results, loadable learner, resume; the reference."""

from __future__ import annotations

import pytest
import torch

import metarl
from helpers import load_experiment
from metarl.supervised.data import omniglot

pytestmark = pytest.mark.skipif(
    not (omniglot.default_root() / omniglot.FULL_ZIP_FILES[0]).is_file(),
    reason="the full Omniglot zips are not next to this checkout (set METARL_DATA)",
)

TINY = (
    "--train-ways 5 --train-queries 2 --queries 2 --channels 8 --val-every 2 --val-episodes 4 "
    "--test-episodes 4 --checkpoint-every 2"
).split()


def test_runs_score_the_grid_keep_a_loadable_learner_and_resume_bit_for_bit(tmp_path):
    exp = load_experiment("metric_fewshot")
    straight = exp.main([*TINY, "--episodes", "4", "--out", str(tmp_path / "straight")])
    assert set(straight["test"]) == {"5w1s", "5w5s", "20w1s", "20w5s"}
    assert all(0 <= cell["accuracy"] <= 1 for cell in straight["test"].values())
    exp.main([*TINY, "--episodes", "2", "--out", str(tmp_path / "cut")])
    resumed = exp.main([*TINY, "--episodes", "4", "--out", str(tmp_path / "cut"), "--resume"])
    assert resumed["test"] == straight["test"]
    a = metarl.load_learner(tmp_path / "straight" / "learner.pt")
    b = metarl.load_learner(tmp_path / "cut" / "learner.pt")
    assert type(a).__name__ == "ProtoNet"
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_spoken_words_and_the_nearest_neighbour_reference(tmp_path):
    exp = load_experiment("metric_fewshot")
    reference = exp.main(["--dataset", "spoken_words", "--learner", "nearest-neighbour",
                          "--queries", "5", "--test-episodes", "20",
                          "--out", str(tmp_path / "nn")])  # fmt: skip
    assert set(reference["test"]) == {"5w1s", "5w5s", "15w1s", "15w5s"}
    assert reference["test"]["5w1s"]["accuracy"] > 0.3  # raw log-mel already beats chance
    assert not (tmp_path / "nn" / "learner.pt").exists()  # nothing was learned
    siamese = exp.main(["--dataset", "spoken_words", "--learner", "siamese", *TINY,
                        "--episodes", "2", "--out", str(tmp_path / "siamese")])  # fmt: skip
    assert set(siamese["test"]) == set(reference["test"])
    assert metarl.load_learner(tmp_path / "siamese" / "learner.pt").head.in_features == 8 * 2 * 2
