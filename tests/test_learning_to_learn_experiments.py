"""experiments/ntm_copy.py, experiments/learned_optimizer.py and their report, end to end on
tiny settings."""

from __future__ import annotations

import csv
import json

import pytest

from helpers import load_experiment
from metarl.core.learned_optimizer import load_rule
from metarl.supervised.data import omniglot
from metarl.supervised.mann import MemoryAugmentedNetwork
from metarl.supervised.ntm import NeuralTuringMachine
from metarl.supervised.sequence_models import load_sequence_model


def test_copy_run_writes_its_results_and_resumes(tmp_path):
    script = load_experiment("ntm_copy")
    out = tmp_path / "ntm"
    tiny = ["--batch", "8", "--max-length", "2", "--slots", "8", "--width", "4", "--hidden",
            "8", "--val-every", "2", "--val-sequences", "4", "--test-lengths", "2", "5",
            "--test-sequences", "4", "--out", str(out)]  # fmt: skip
    result = script.main(["--sequences", "32", *tiny])
    assert result["sequences_seen"] == 32 and set(result["test"]) == {"2", "5"}
    assert 0 <= result["test"]["5"]["wrong_bits_percent"] <= 100
    assert isinstance(load_sequence_model(out / "model.pt"), NeuralTuringMachine)
    for name in ("cost.png", "copy-2.png", "copy-5.png", "results.json"):
        assert (out / name).is_file()
    result = script.main(["--sequences", "48", "--resume", *tiny])
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert result["sequences_seen"] == 48


def test_learned_optimizer_run_compares_with_the_tuned_optimisers(tmp_path):
    out = tmp_path / "l2l"
    result = load_experiment("learned_optimizer").main([
        "--meta-iterations", "4", "--horizon", "4", "--truncation", "2", "--val-every", "2",
        "--val-problems", "2", "--test-problems", "2", "--batch", "4", "--dim", "3",
        "--lrs", "0.01", "0.1", "--out", str(out),
    ])  # fmt: skip
    quadratic = result["settings"]["quadratic"]
    assert set(quadratic["final_loss"]) == {"lstm", "sgd", "nag", "rmsprop", "adam"}
    assert set(quadratic["tuned_lr"].values()) <= {0.01, 0.1}
    assert sorted(quadratic["tuned_at_grid_edge"]) == ["adam", "nag", "rmsprop", "sgd"]
    assert load_rule(out / "optimizer.pt").hidden == 20
    assert (out / "curves-quadratic.png").is_file()


def test_reports_tabulate_every_run(tmp_path):
    l2l, memory = tmp_path / "learned_optimizer", tmp_path / "memory"
    provenance = {"command": "python x", "seed": 0, "train_wall_s": 120.0, "machine": "m",
                  "date": "2026-12-06T00:00:00"}  # fmt: skip
    (l2l / "q").mkdir(parents=True)
    (l2l / "q" / "results.json").write_text(json.dumps({
        **provenance, "problem": "quadratic", "test_problems": 20, "horizon": 100,
        "chosen_iteration": 900, "settings": {"quadratic": {
            "final_loss": {"lstm": 0.2, "adam": 0.5}, "final_stderr": {"lstm": 0.01, "adam": 0.02},
            "mean_loss": {"lstm": 1.0, "adam": 2.0}, "tuned_lr": {"adam": 0.3},
            "tuned_at_grid_edge": []}},
    }))  # fmt: skip
    (memory / "n").mkdir(parents=True)
    (memory / "n" / "results.json").write_text(json.dumps({
        **provenance, "model": "ntm", "controller": "lstm", "sequences_seen": 1000,
        "test": {"20": {"bits_per_sequence": 0.01, "wrong_bits_percent": 0.0},
                 "120": {"bits_per_sequence": 30.0, "wrong_bits_percent": 2.5}},
    }))  # fmt: skip
    (memory / "m").mkdir()
    (memory / "m" / "results.json").write_text(json.dumps({
        **provenance, "model": "mann", "episodes_seen": 160_000,
        "test": {f"instance_{k}": k / 20 for k in (1, 2, 3, 4, 5, 10)},
    }))  # fmt: skip
    (memory / "README.md").write_text("## Notes\n\nhand-written")
    cactus = tmp_path / "cactus"
    (cactus / "c").mkdir(parents=True)
    (cactus / "c" / "results.json").write_text(json.dumps({
        **provenance, "learner": "protonet", "oracle": False, "trained_ways": 5,
        "trained_shots": 1, "test": {"5w1s": {"accuracy": 0.7012, "ci95": 0.0081}},
    }))  # fmt: skip
    load_experiment("learning_to_learn_reports").main(["--learned-optimizer", str(l2l),
                                                       "--memory", str(memory),
                                                       "--cactus", str(cactus),
                                                       "--out", str(tmp_path)])  # fmt: skip
    cactus_text = (tmp_path / "cactus.md").read_text()
    assert "| CACTUs-protonet (published) | | 68.12 | 83.58 | 47.75 | 66.27 |" in cactus_text
    assert "| CACTUs-protonet (trained 5-way 1-shot) | `c` | 70.12 ± 0.81 |  |  |  |" in cactus_text
    l2l_text = (tmp_path / "learned_optimizer.md").read_text()
    assert "| LSTM optimiser (learned) | learned | **0.2 ± 0.01** | 1 |" in l2l_text
    assert "| Adam | 0.3 | 0.5 ± 0.02 | 2 |" in l2l_text
    assert "(learned_optimizer/q/curves-quadratic.png)" in l2l_text
    memory_text = (tmp_path / "memory.md").read_text()
    assert "| length 20 | length 120 |" in memory_text
    assert "| 0.01 bits, 0% wrong | 30 bits, 2.5% wrong |" in memory_text
    assert "| MANN | 160,000 | 5.0 | 10.0 | 15.0 | 20.0 | 25.0 | 50.0 | `m` |" in memory_text
    assert "| MANN (published) | 100,000 | 36.4 | 82.8 |" in memory_text
    assert "hand-written" in memory_text


needs_omniglot = pytest.mark.skipif(
    not (omniglot.default_root() / omniglot.FULL_ZIP_FILES[0]).is_file(),
    reason="the full Omniglot zips are not next to this checkout (set METARL_DATA)",
)


@needs_omniglot
def test_mann_run_scores_every_instance_and_keeps_a_loadable_model(tmp_path):
    result = load_experiment("mann_omniglot").main([
        "--episodes", "16", "--batch", "8", "--slots", "8", "--width", "4", "--heads", "2",
        "--hidden", "8", "--val-every", "1", "--val-episodes", "4", "--test-episodes", "4",
        "--out", str(tmp_path / "mann"),
    ])  # fmt: skip
    assert set(result["test"]) == {f"instance_{k}" for k in (1, 2, 3, 4, 5, 10)}
    assert isinstance(load_sequence_model(tmp_path / "mann" / "model.pt"), MemoryAugmentedNetwork)


@needs_omniglot
def test_cactus_run_resumes_bit_for_bit(tmp_path):
    exp = load_experiment("cactus")
    tiny = ["--encoder-epochs", "1", "--encoder-images", "200", "--code", "8", "--partitions",
            "2", "--clusters", "60", "--val-every", "2", "--val-episodes", "4",
            "--test-episodes", "4", "--queries", "2", "--test-queries", "2"]  # fmt: skip
    straight = exp.main([*tiny, "--iterations", "4", "--out", str(tmp_path / "straight")])
    assert set(straight["test"]) == {"5w1s", "5w5s", "20w1s", "20w5s"}
    exp.main([*tiny, "--iterations", "2", "--out", str(tmp_path / "cut")])
    resumed = exp.main([*tiny, "--iterations", "4", "--out", str(tmp_path / "cut"), "--resume"])
    assert resumed["test"] == straight["test"]
    assert (tmp_path / "cut" / "partitions.npz").is_file()
