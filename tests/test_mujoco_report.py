"""experiments/mujoco_report.py: per-distribution tables, CSVs and curves from run folders."""

from __future__ import annotations

import csv
import json

import pytest

from helpers import load_experiment


def _run(folder, learner, means, stds, seed=0, iterations=3, scaled=None, selected=None,
         settings=None, per_task=None):  # fmt: skip
    folder.mkdir(parents=True)
    result = {
        "learner": learner, "inner_steps": list(range(len(means))), "mean_return": means,
        "std_return": stds, "n_tasks": 4, "seed": seed, "command": f"python x --learner {learner}",
        "machine": "test", "train_wall_s": 7200.0, "date": "2026-12-05",
        "settings": {"seed": seed, **(settings or {})},
    }  # fmt: skip
    if scaled:
        result.update(later_step_scale=0.25, mean_return_later_scaled=scaled,
                      std_return_later_scaled=stds)  # fmt: skip
    if selected:
        result.update(selected_iteration=2, mean_return_selected=selected,
                      std_return_selected=stds)  # fmt: skip
    if per_task:
        result.update(tasks=per_task[0], returns_per_task=per_task[1])
    (folder / "eval.json").write_text(json.dumps(result))
    rows = "\n".join(f"{i + 1},1000,{-10 - i},{-5 - i}" for i in range(iterations))
    (folder / "metrics.csv").write_text("step,env_steps,return_before,return_after\n" + rows + "\n")


def test_tables_csv_and_bar_verdicts(tmp_path):
    root = tmp_path / "mujoco"
    _run(root / "halfcheetah_vel" / "maml-trpo-seed0", "maml-trpo", [-130.0, -80.0, -70.0, -65.0],
         [20.0, 10.0, 8.0, 6.0], scaled=[-130.0, -80.0, -60.0, -55.0])  # fmt: skip
    _run(root / "halfcheetah_vel" / "oracle-seed0", "oracle", [-50.0, -200.0], [2.0, 9.0])
    _run(root / "halfcheetah_dir" / "maml-trpo-seed0", "maml-trpo", [0.0, 200.0], [4.0, 4.0],
         selected=[10.0, 280.0])  # fmt: skip
    _run(root / "ant_dir" / "oracle-seed0", "oracle", [500.0], [4.0])  # no MAML run there yet
    training = root / "ant_dir" / "maml-trpo-seed1"  # still training: metrics, no eval.json
    training.mkdir()
    (training / "settings.json").write_text(
        json.dumps({"settings": {"learner": "maml-trpo", "iterations": 300}})
    )
    (training / "metrics.csv").write_text("step,return_before\n1,-3\n2,-2\n")
    out = tmp_path / "mujoco.md"
    load_experiment("mujoco_report").main(["--root", str(root), "--out", str(out)])
    text = out.read_text()
    # standard errors: std / sqrt(4 tasks); env steps summed over 3 iterations
    assert "| MAML-TRPO | 0 | -130.0 ± 10.0 | -80.0 ± 5.0 | -70.0 ± 4.0 | -65.0 ± 3.0 | 3 |" in text
    assert "| MAML-TRPO [steps 2+ x0.25] | 0 | -130.0 ± 10.0 | -80.0 ± 5.0 | -60.0 ± 4.0 |" in text
    assert "| oracle (published) | | -54.5 |" in text
    assert "| oracle (not adapted) | 0 | -50.0 ± 1.0 |  |  |  | 3 |" in text  # no adapted cells
    # -80 is within 10% of the published -78.6 (>= -86.5); 200 is not within 10% of 293.2
    assert "ours -80.0, met." in text
    # the chosen snapshot's 280 is within 10% of 293.2 (>= 263.9); the final iteration's not
    assert (
        "| MAML-TRPO [iteration 2, chosen on validation] | 0 | 10.0 ± 2.0 | 280.0 ± 2.0 |" in text
    )
    assert (
        "ours 280.0 (the snapshot of iteration 2, chosen on validation tasks; the final "
        "iteration's: 200.0), met." in text
    )
    assert "## AntVel\n\nNot run yet." in text
    assert "| MAML-TRPO (published; ours training, iteration 2 of 300) | | 8.7 | 499.2 |" in text
    assert "| pretrained (published; ours not run yet) | | -158.0 |" in text
    with (root / "halfcheetah_vel.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["learner", "inner_steps", "mean_return", "stderr_return", "n_tasks",
                             "seed", "env_steps"]  # fmt: skip
    first = rows[1]
    assert (first["learner"], first["inner_steps"]) == ("MAML-TRPO", "1")
    assert first["stderr_return"] == "5.000"
    assert first["env_steps"] == "3000"
    assert (root / "halfcheetah_vel.png").stat().st_size > 1000


def test_a_run_trained_on_after_its_evaluation_is_reported_at_the_evaluated_iteration(tmp_path):
    root = tmp_path / "mujoco"
    folder = root / "halfcheetah_dir" / "maml-trpo-seed0"
    _run(folder, "maml-trpo", [0.0, 200.0], [4.0, 4.0], iterations=5)  # 5 iterations trained
    result = json.loads((folder / "eval.json").read_text())
    result["settings"] = {"iterations": 3}  # ... but evaluated at iteration 3
    (folder / "eval.json").write_text(json.dumps(result))
    load_experiment("mujoco_report").main(["--root", str(root), "--out", str(tmp_path / "m.md")])
    assert (
        "| MAML-TRPO | 0 | 0.0 ± 2.0 | 200.0 ± 2.0 |  |  | 3 | 0.0 M |"
        in (tmp_path / "m.md").read_text()
    )
    with (root / "halfcheetah_dir.csv").open(newline="") as f:
        assert {r["env_steps"] for r in csv.DictReader(f)} == {"3000"}


def test_runs_of_one_learner_are_told_apart_by_the_settings_they_differ_in(tmp_path):
    root = tmp_path / "mujoco"
    folder = root / "halfcheetah_dir"
    # a record from before --init existed: its runs had nn.Linear's initialisation
    _run(folder / "maml-trpo-seed0", "maml-trpo", [0.0, 200.0], [4.0, 4.0],
         settings={"episodes_per_task": 20, "out": "a"})  # fmt: skip
    _run(folder / "maml-trpo-seed1", "maml-trpo", [0.0, 210.0], [4.0, 4.0], seed=1,
         settings={"episodes_per_task": 20, "eval_episodes_per_task": 20, "out": "b"})  # fmt: skip
    _run(folder / "maml-trpo-xavier-seed0", "maml-trpo", [0.0, 300.0], [4.0, 4.0],
         settings={"episodes_per_task": 20, "init": "xavier", "out": "c",
                   "task_chunk": 5})  # fmt: skip
    _run(folder / "oracle-seed0", "oracle", [450.0], [4.0], settings={"init": "xavier"})
    load_experiment("mujoco_report").main(["--root", str(root), "--out", str(tmp_path / "m.md")])
    text = (tmp_path / "m.md").read_text()
    # only the initialisation tells the MAML runs apart: not the seed, the folder, a speed
    # setting or a test episode count equal to training's; the oracle, alone of its learner,
    # keeps its name
    assert "| MAML-TRPO (--init torch) | 0 | 0.0 ± 2.0 | 200.0 ± 2.0 |" in text
    assert "| MAML-TRPO (--init torch) | 1 | 0.0 ± 2.0 | 210.0 ± 2.0 |" in text
    assert "| MAML-TRPO (--init xavier) | 0 | 0.0 ± 2.0 | 300.0 ± 2.0 |" in text
    assert "| oracle (not adapted) | 0 | 450.0 ± 2.0 |" in text
    assert text.count("| MAML-TRPO (published) | | -50.7 | 293.2 |") == 1
    assert "![HalfCheetahDir learning curves]" in text
    # each seed-0 MAML-TRPO run is judged against the bar (>= 263.9 on HalfCheetahDir)
    assert (
        "Bar (MAML-TRPO (--init torch) after one step" in text and "ours 200.0, **not met**" in text
    )
    assert "Bar (MAML-TRPO (--init xavier) after one step" in text and "ours 300.0, met." in text
    assert "ours 210.0" not in text


def test_per_task_returns_are_plotted_against_the_task_parameter(tmp_path):
    report = load_experiment("mujoco_report")
    root = tmp_path / "mujoco"
    folder = root / "halfcheetah_vel"
    velocities = [{"velocity": v} for v in (0.2, 1.0, 1.5, 1.9)]
    maml_returns = [[-120.0, -140.0, -160.0, -180.0], [-50.0, -90.0, -120.0, -140.0]]
    _run(folder / "maml-trpo-seed0", "maml-trpo", [-150.0, -100.0], [4.0, 4.0],
         per_task=(velocities, maml_returns))  # fmt: skip
    _run(folder / "oracle-seed0", "oracle", [-45.0], [4.0],
         per_task=(velocities, [[-15.0, -40.0, -55.0, -70.0]]))  # fmt: skip
    _run(folder / "random-seed0", "random", [-270.0, -265.0], [4.0, 4.0])  # evaluated before
    _run(root / "halfcheetah_dir" / "maml-trpo-seed0", "maml-trpo", [0.0, 300.0], [4.0, 4.0])
    out = tmp_path / "m.md"
    report.main(["--root", str(root), "--out", str(out)])
    text = out.read_text()
    assert "![HalfCheetahVel return per held-out task](mujoco/halfcheetah_vel_tasks.png)" in text
    assert (root / "halfcheetah_vel_tasks.png").stat().st_size > 1000
    # no run of HalfCheetahDir holds per-task returns: no figure, no link
    assert not (root / "halfcheetah_dir_tasks.png").exists()
    assert "HalfCheetahDir return per held-out task" not in text
    runs = {run.learner: run for run in map(report.read_run, sorted(folder.iterdir()))}
    key, values = report.task_parameter(runs["maml-trpo"])
    assert key == "velocity" and values.tolist() == [0.2, 1.0, 1.5, 1.9]
    assert report.task_parameter(runs["random"]) is None
    runs["oracle"].result["tasks"] = [{"goal": [0.1, 0.2]}] * 4  # not one number per task
    assert report.task_parameter(runs["oracle"]) is None


def test_an_unreadable_run_is_named(tmp_path):
    folder = tmp_path / "mujoco" / "ant_dir" / "maml-trpo-seed0"
    folder.mkdir(parents=True)
    (folder / "eval.json").write_text("{not json")
    with pytest.raises(SystemExit, match="maml-trpo-seed0/eval.json: cannot read"):
        load_experiment("mujoco_report").main(
            ["--root", str(tmp_path / "mujoco"), "--out", str(tmp_path / "m.md")]
        )
