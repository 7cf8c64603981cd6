"""The bandit comparison script: its classic players and a tiny end-to-end run."""

from __future__ import annotations

import csv

import numpy as np

from helpers import load_experiment


def test_ucb1_and_thompson_find_the_good_arm_and_random_does_not():
    exp = load_experiment("bandits")
    probs = np.tile([0.1, 0.1, 0.9, 0.1, 0.1], (200, 1))
    n = 500
    ucb = exp.ucb1(probs, n, np.random.default_rng(0)).mean()
    ts = exp.thompson(probs, n, np.random.default_rng(0)).mean()
    rand = exp.random_play(probs, n, np.random.default_rng(0)).mean()
    assert abs(rand - n * 0.26) < 5  # mean arm probability 0.26
    # UCB1's regret is O(log n) per suboptimal arm; both stay well within 10% of 0.9 * n.
    assert ucb > 0.9 * n * 0.9 and ts > 0.9 * n * 0.9


def test_tiny_run_writes_a_table_with_every_player(tmp_path):
    exp = load_experiment("bandits")
    out = tmp_path / "bandits.md"
    exp.main(["--pairs", "10", "3", "--meta-iterations", "2", "--validate-every", "1",
              "--tasks-per-batch", "4", "--eval-tasks", "20", "--val-tasks", "10",
              "--out", str(out)])  # fmt: skip
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [r["player"] for r in rows] == ["MAML", "UCB1", "Thompson", "random",
                                           "best arm (oracle)"]  # fmt: skip
    assert rows[0]["chosen_iteration"] in {"0", "1", "2"}
    assert all(0 <= float(r["total_reward"]) <= 10 for r in rows)
    assert "| 10 | 3 |" in out.read_text()
