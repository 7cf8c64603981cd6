"""experiments/fewshot_reports.py: the spoken-words and zero-shot tables."""

from __future__ import annotations

import json

from helpers import load_experiment


def test_both_tables_list_every_run_with_intervals_and_notes(tmp_path):
    spoken, zero = tmp_path / "spoken", tmp_path / "zero"
    (spoken / "nn").mkdir(parents=True)
    (spoken / "nn" / "results.json").write_text(json.dumps({
        "learner": "nearest-neighbour", "command": "python m",
        "test": {"5w1s": {"accuracy": 0.6137, "ci95": 0.007},
                 "15w1s": {"accuracy": 0.4485, "ci95": 0.0032}},
    }))  # fmt: skip
    (spoken / "README.md").write_text("## Notes\n\nhand-written")
    (zero / "rel").mkdir(parents=True)
    (zero / "rel" / "results.json").write_text(json.dumps({
        "learner": "relation", "command": "python z", "settings": {"noise": 100.0},
        "unseen_accuracy": 0.5, "unseen_ci95": 0.02, "chance": 1 / 30,
        "seen_accuracy": 0.75, "seen_ci95": 0.03,
    }))  # fmt: skip
    paths = load_experiment("fewshot_reports").main(
        ["--spoken-words", str(spoken), "--zero-shot", str(zero), "--out", str(tmp_path)]
    )
    spoken_text, zero_text = (p.read_text() for p in paths)
    assert "| 5w1s | 15w1s |" in spoken_text  # cells ordered by ways
    assert "| 61.37 ± 0.70 | 44.85 ± 0.32 |" in spoken_text and "hand-written" in spoken_text
    assert "| relation network | `rel` | 100 | 50.0 ± 2.0 | 3.3 | 75.0 ± 3.0 |" in zero_text
