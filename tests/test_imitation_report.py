"""experiments/imitation_report.py: the table and its bar verdicts from results.json files."""

from __future__ import annotations

import json

from helpers import load_experiment


def _result(learner, after, expert=-1.0):
    steps = {str(k): {"mean": v, "stderr": 0.1, "success": 0.5} for k, v in after.items()}
    return {
        "learner": learner, "env": "metarl/Navigation2DRandomStart-v0", "n_tasks": 40,
        "expert": {"mean": expert, "stderr": 0.1, "success": 1.0}, "return_after_steps": steps,
        "command": f"python experiments/mil.py --learner {learner}", "seed": 0,
        "machine": "x86_64", "date": "2026-12-06", "train_wall_s": 60.0,
        "settings": {"iterations": 100},
    }  # fmt: skip


def test_table_and_verdicts(tmp_path):
    runs = {
        "maml": {0: -40.0, 1: -1.1, 2: -1.05},  # within 15% of -1.0, above the baselines
        "fomaml": {0: -40.0, 1: -20.0},  # neither
        "multitask": {0: -30.0, 1: -10.0},
        "scratch": {0: -80.0, 500: -50.0},  # its step 0 (untrained) must not count
    }
    for learner, after in runs.items():
        folder = tmp_path / "nav" / f"{learner}-seed0"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(_result(learner, after)))
    out = load_experiment("imitation_report").main(
        ["--root", str(tmp_path), "--out", str(tmp_path / "imitation.md")]
    )
    text = out.read_text()
    assert "| expert | | -1.00 ± 0.10 (100%) |" in text
    assert "| MIL (MAML) | 0 | -40.00 ± 0.10 (50%) | -1.10 ± 0.10 (50%) | -1.05" in text
    maml, fomaml = (line for line in text.splitlines() if line.startswith("- MIL"))
    assert "(>= -1.15): met; above the best cloning baseline (-10.00)" in maml
    assert "**not met**; **not above** the best cloning baseline (-10.00)" in fomaml
