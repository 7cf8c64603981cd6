"""experiments/imitation_report.py: the table and its bar verdicts from results.json files."""

from __future__ import annotations

import json

import pytest

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
        "daml": {0: -30.0, 1: -8.0},  # above its start and the inverse-dynamics baseline
        "invdyn": {0: -80.0, 500: -12.0},  # not a MIL baseline: -12 < -10 changes nothing
        "invdyn-multitask": {0: -30.0, 1: -9.0},  # the better one: its one-step score
    }
    for learner, after in runs.items():
        folder = tmp_path / "nav" / f"{learner}-seed0"
        folder.mkdir(parents=True)
        result = _result(learner, after)
        if learner in ("daml", "invdyn", "invdyn-multitask"):
            result["test_demonstration"] = "observations only"
        (folder / "results.json").write_text(json.dumps(result))
    meta_rl = tmp_path / "nav" / "metarl-maml-trpo-seed0"  # a maml_rl.py run's eval.json
    meta_rl.mkdir()
    (meta_rl / "eval.json").write_text(json.dumps({
        "env": "metarl/Navigation2DRandomStart-v0", "learner": "maml-trpo", "seed": 0,
        "inner_steps": [0, 1], "mean_return": [-30.0, -6.0], "std_return": [4.0, 2.0],
        "n_tasks": 4, "command": "python experiments/maml_rl.py", "machine": "x86_64",
        "date": "2026-12-06", "train_wall_s": 600.0,
        "settings": {"iterations": 200, "episodes_per_task": 20, "horizon": 100},
    }))  # fmt: skip
    out = load_experiment("imitation_report").main(
        ["--root", str(tmp_path), "--out", str(tmp_path / "imitation.md")]
    )
    text = out.read_text()
    assert "| expert | | | -1.00 ± 0.10 (100%) |" in text
    assert (
        "| MIL (MAML) | 0 | with actions | -40.00 ± 0.10 (50%) | -1.10 ± 0.10 (50%) | -1.05" in text
    )
    assert "| inverse-dynamics labels, then cloning | 0 | observations only | -80.00" in text
    assert (
        "| meta-RL MAML-TRPO (no demonstration) | 0 | none (2000 env steps per step) | "
        "-30.00 ± 2.00 (-) | -6.00 ± 1.00 (-) |"
    ) in text  # standard errors: std / sqrt(4 tasks); not a MIL row in the verdicts
    maml, fomaml = (line for line in text.splitlines() if line.startswith("- MIL"))
    assert "(>= -1.15): met; above the best cloning baseline (-10.00)" in maml
    assert "**not met**; **not above** the best cloning baseline (-10.00)" in fomaml
    (daml,) = (line for line in text.splitlines() if line.startswith("- domain-adaptive"))
    assert "-8.00 after one step" in daml
    assert (
        "above its policy before adapting (-30.00); above the best inverse-dynamics baseline "
        "(-9.00)" in daml
    )


def test_where_episodes_end_on_success_the_verdicts_compare_success_rates(tmp_path):
    # returns favour failing policies here (they collect reward for longer): judged by success
    runs = {"maml": (300.0, 0.9), "metasgd": (250.0, 0.5), "scratch": (900.0, 0.6)}
    for learner, (mean, success) in runs.items():
        folder = tmp_path / "reach" / f"{learner}-seed0"
        folder.mkdir(parents=True)
        result = _result(learner, {0: 1000.0, 1: mean}, expert=200.0)
        result["expert"]["success"] = 1.0
        for score in result["return_after_steps"].values():
            score["success"] = success
        result["env"] = "metarl/MetaWorldML1-v0"
        result["env_kwargs"] = {
            "env_name": "reach-v3",
            "terminate_on_success": True,
            "hand_init_range": 0.1,
        }
        (folder / "results.json").write_text(json.dumps(result))
    out = load_experiment("imitation_report").main(
        ["--root", str(tmp_path), "--out", str(tmp_path / "imitation.md")]
    )
    text = out.read_text()
    assert "## metarl/MetaWorldML1-v0 (reach-v3, hand start ±0.1 m)" in text
    maml, metasgd = (line for line in text.splitlines() if line.startswith("- MIL"))
    assert "90% after one step; within 15% of the expert (>= 85%): met; above" in maml
    assert "50% after one step; within 15% of the expert (>= 85%): **not met**; **not above**" in (
        metasgd
    )


def _meta_rl_run(folder, env, mean_return):
    folder.mkdir(parents=True)
    (folder / "eval.json").write_text(json.dumps({
        "env": env, "learner": "maml-trpo", "seed": 0, "inner_steps": [0, 1],
        "mean_return": mean_return, "std_return": [4.0, 2.0], "n_tasks": 4,
        "command": "python experiments/maml_rl.py", "machine": "x86_64", "date": "2026-12-07",
        "train_wall_s": 600.0,
        "settings": {"iterations": 200, "episodes_per_task": 20, "horizon": 200},
    }))  # fmt: skip


def test_meta_rl_runs_kept_elsewhere_join_the_table_of_their_environment(tmp_path):
    root = tmp_path / "imitation"
    folder = root / "nav" / "maml-seed0"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(_result("maml", {0: -40.0, 1: -1.1})))
    same = tmp_path / "mujoco" / "nav-run"
    _meta_rl_run(same, "metarl/Navigation2DRandomStart-v0", [-30.0, -6.0])
    other = tmp_path / "mujoco" / "cheetah-run"
    _meta_rl_run(other, "metarl/HalfCheetahVel-v1", [-150.0, -100.0])
    report = load_experiment("imitation_report")
    args = ["--root", str(root), "--out", str(tmp_path / "imitation.md")]
    text = report.main([*args, "--meta-rl", str(same)]).read_text()
    (nav,) = text.split("\n## ")[1:]
    assert nav.startswith("metarl/Navigation2DRandomStart-v0")
    assert "| MIL (MAML) |" in nav and "| meta-RL MAML-TRPO (no demonstration) | 0 |" in nav
    assert "-30.00 ± 2.00 (-) | -6.00 ± 1.00 (-) |" in nav
    with pytest.raises(SystemExit, match="no imitation run of metarl/HalfCheetahVel-v1"):
        report.main([*args, "--meta-rl", str(same), str(other)])
    with pytest.raises(SystemExit, match="missing: no eval.json"):
        report.main([*args, "--meta-rl", str(tmp_path / "missing")])
