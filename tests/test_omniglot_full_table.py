"""The full-Omniglot table: cells from both kinds of runs, shot-count preference, bars."""

from __future__ import annotations

import json

from helpers import load_experiment


def _metric_run(folder, learner, trained, grid, val=0.9):
    folder.mkdir(parents=True)
    result = {
        "learner": learner, "protocol": "vinyals", "trained_shots": trained,
        "test": {k: {"accuracy": a / 100, "ci95": 0.002} for k, a in grid.items()},
        "test_episodes": 1000, "val_accuracy": val, "command": f"python m --learner {learner}",
        "train_wall_s": 600.0,
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(result))


def test_cells_prefer_the_run_trained_at_their_shot_count_and_bars_are_judged(tmp_path):
    grid = {"5w1s": 98.5, "5w5s": 99.0, "20w1s": 94.5, "20w5s": 98.0}
    _metric_run(tmp_path / "p1", "protonet", 1, grid)
    _metric_run(tmp_path / "p5", "protonet", 5, {k: v + 0.3 for k, v in grid.items()}, val=0.5)
    _metric_run(tmp_path / "m", "matching", 1, {"5w1s": 95.0, "5w5s": 97.0})
    gradient = tmp_path / "maml"  # an omniglot.py run: one cell
    gradient.mkdir()
    (gradient / "results.json").write_text(json.dumps({
        "learner": "maml", "ways": 20, "shots": 1, "test_accuracy": 0.93, "ci95": 0.004,
        "val_accuracy": 0.9, "test_episodes": 600, "command": "python o",
        "settings": {"protocol": "vinyals", "shots": 1, "train_shots": None},
    }))  # fmt: skip
    small = tmp_path / "old"  # the small-subset protocol: not in this table
    small.mkdir()
    (small / "results.json").write_text(json.dumps({
        "learner": "reptile", "ways": 5, "shots": 1, "test_accuracy": 0.5, "ci95": 0.01,
        "val_accuracy": 0.5, "test_episodes": 600, "command": "x", "settings": {"shots": 1},
    }))  # fmt: skip
    lines, rows = load_experiment("omniglot_full_table").full_section(tmp_path)
    text = "\n".join(lines)
    # 1-shot columns from the 1-shot run, 5-shot ones from the 5-shot run (despite its val)
    assert "| ProtoNet | 98.50 ± 0.20 (98.8) | 99.30 ± 0.20 (99.7) | 94.50 ± 0.20 (96.0) |" in text
    assert (
        "| Matching network | 95.00 ± 0.20 (98.1) | 97.00 ± 0.20 [1-shot learner] (98.9) |" in text
    )
    assert "| MAML | - (98.7) | - (99.9) | 93.00 ± 0.40 (95.8) | - (98.9) |" in text
    assert "Reptile" not in text
    assert "- ProtoNet: 5w1s 98.50 (>= 98.2), 20w1s 94.50 (>= 94.0): met." in text
    assert (
        "- Matching network: 5w1s 95.00 against the published 98.1 (within 2 points): "
        "**not met**." in text
    )
    assert len(rows) == 4 + 4 + 2 + 1
