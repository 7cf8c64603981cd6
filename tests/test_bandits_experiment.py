"""The bandit comparison script: its classic players, tiny end-to-end runs, its settings checks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from helpers import load_experiment

TINY = (
    "--pairs 10 3 --meta-iterations 2 --validate-every 1 --tasks-per-batch 4 --eval-tasks 20 "
    "--val-tasks 10"
).split()


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
    out = tmp_path / "bandits"
    exp.main([*TINY, "--out", str(out)])
    rows = list(csv.DictReader((out / "bandits.csv").open()))
    players = ["MAML", "UCB1", "UCB1 (prior)", "Thompson", "random", "best arm (oracle)"]
    assert [r["player"] for r in rows] == players
    assert rows[0]["chosen_iteration"] in {"0", "1", "2"}
    assert all(0 <= float(r["total_reward"]) <= 10 for r in rows)
    assert "| 10 | 3 |" in (out / "bandits.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 0 and results["rows"][0]["player"] == "MAML"
    with pytest.raises(SystemExit, match="--overwrite"):  # a second run does not replace it
        exp.main([*TINY, "--out", str(out)])


def test_an_rl2_run_for_the_pair_joins_the_table(tmp_path):
    rl2 = load_experiment("rl2")
    rl2.main(["--env-kwargs", '{"arms": 3, "pulls": 1}', "--episodes-per-trial", "10",
              "--iterations", "2", "--tasks-per-batch", "10", "--hidden", "8",
              "--val-tasks", "10", "--eval-tasks", "10",
              "--out", str(tmp_path / "rl2" / "n10-k3")])  # fmt: skip
    exp = load_experiment("bandits")
    out = tmp_path / "bandits"
    exp.main([*TINY, "--rl2-runs", str(tmp_path / "rl2"), "--out", str(out)])
    rows = {r["player"]: r for r in csv.DictReader((out / "bandits.csv").open())}
    assert list(rows) == [
        "MAML", "RL^2", "UCB1", "UCB1 (prior)", "Thompson", "random", "best arm (oracle)"
    ]  # fmt: skip
    assert 0 <= float(rows["RL^2"]["total_reward"]) <= 10
    assert rows["RL^2"]["setting"].startswith("weights of iteration")
    assert rows["UCB1"]["setting"].removeprefix("c=") in {str(c) for c in exp.UCB_CONSTANTS}
    table = (out / "bandits.md").read_text()
    assert "RL^2 (paper)" in table and "| not trained |" not in table


def test_a_smaller_ucb1_constant_beats_the_original_rule_on_short_horizons():
    exp = load_experiment("bandits")
    probs = np.random.default_rng(3).uniform(size=(300, 10))
    plain = exp.ucb1(probs, 100, np.random.default_rng(0)).mean()
    small_c = exp.ucb1(probs, 100, np.random.default_rng(0), c=0.2).mean()
    assert small_c > plain + 10  # 100 pulls: the original bonus explores too long


def test_ucb1_with_a_prior_need_not_try_every_arm():
    exp = load_experiment("bandits")
    probs = np.random.default_rng(3).uniform(size=(300, 50))
    plain = exp.ucb1(probs, 100, np.random.default_rng(0), c=0.1).mean()
    prior = exp.ucb1(probs, 100, np.random.default_rng(0), c=0.1, prior=True).mean()
    # 50 arms, 100 pulls: pulling each arm once spends half the trial at the mean arm (0.5),
    # which caps the plain rule near 25 + 50 * 0.98 = 74; with the prior it exploits early.
    assert plain < 75 < 80 < prior
    # Without a bonus the prior alone is greedy on posterior means: it still explores
    # through the optimism of untried arms (mean 1/2), and beats random play (50).
    assert exp.ucb1(probs, 100, np.random.default_rng(0), c=0.0, prior=True).mean() > 70


def _without_wall_time(path):
    return [line.split(",")[:6] + line.split(",")[7:] for line in path.read_text().splitlines()]


def test_the_table_is_reproducible(tmp_path):
    exp = load_experiment("bandits")
    tables = []
    for name in ("a", "b"):
        result = exp.main([*TINY, "--out", str(tmp_path / name)])
        assert result["rows"][0][2] == "MAML" and result["table"] == str(
            tmp_path / name / "bandits.md"
        )
        tables.append(_without_wall_time(tmp_path / name / "bandits.csv"))
    assert tables[0] == tables[1]  # every reward, interval and chosen iteration


def test_a_stopped_grid_resumes_past_its_finished_bandits_to_the_same_rows(
    tmp_path, monkeypatch, capsys
):
    exp = load_experiment("bandits")
    two = [*TINY[:1], "10", "3", "10", "4", *TINY[3:]]
    exp.main([*two, "--out", str(tmp_path / "straight")])
    played, play = [], exp.play_bandit

    def stop_at_the_second(s, n, k):
        if played:
            raise KeyboardInterrupt
        played.append((n, k))
        return play(s, n, k)

    monkeypatch.setattr(exp, "play_bandit", stop_at_the_second)
    with pytest.raises(SystemExit) as e:
        exp.main([*two, "--out", str(tmp_path / "stopped")])
    assert e.value.code == 130
    assert "at iteration 1; resume with" in capsys.readouterr().out
    monkeypatch.setattr(exp, "play_bandit", lambda s, n, k: played.append((n, k)) or play(s, n, k))
    exp.main([*two, "--out", str(tmp_path / "stopped"), "--resume"])
    assert played == [(10, 3), (10, 4)]  # the first bandit was not played again
    assert _without_wall_time(tmp_path / "stopped" / "bandits.csv") == _without_wall_time(
        tmp_path / "straight" / "bandits.csv"
    )


BAD = [
    "--pairs 10",
    "--pairs 20 3",
    "--pairs 10 0",
    "--meta-iterations -1",
    "--tasks-per-batch 0",
    "--max-kl 0",
    "--inner-lr -1",
    "--eval-tasks 0",
    "--val-tasks 0",
    "--validate-every 0",
    "--threads 0",
]


@pytest.mark.parametrize("bad", BAD)
def test_bad_settings_exit_2_naming_the_flag_before_any_work(tmp_path, capsys, bad):
    exp = load_experiment("bandits")
    out = tmp_path / "bandits"
    with pytest.raises(SystemExit) as e:
        exp.main([*TINY, *bad.split(), "--out", str(out)])
    assert e.value.code == 2
    assert bad.split()[0] in capsys.readouterr().err
    assert not out.exists()
