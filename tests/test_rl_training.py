"""Meta-RL training end to end: learners improve, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl
from helpers import load_experiment
from metarl.config import describe
from metarl.core import MAML, TRPO, MetaSGD, Reptile
from metarl.rl import GaussianMLPPolicy, MetaRLTrainer, MultiTaskSampler
from metarl.utils import load_checkpoint


@pytest.mark.parametrize(
    "make, outer, iterations",
    [
        (lambda p: MAML(p, inner_lr=0.1), lambda _: TRPO(max_kl=0.05), 8),
        (lambda p: MetaSGD(p, inner_lr=0.1), lambda _: TRPO(max_kl=0.05), 8),
        (lambda p: MAML(p, inner_lr=0.1), lambda ps: torch.optim.Adam(ps, lr=1e-2), 8),
        (lambda p: Reptile(p, inner_lr=0.2, inner_steps=3),
         lambda ps: torch.optim.SGD(ps, lr=0.5), 20),
    ],
    ids=["maml-trpo", "metasgd-trpo", "maml-pg", "reptile"],
)  # fmt: skip
def test_meta_training_improves_adapted_return_on_navigation(make, outer, iterations):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(32, 32))
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=10, horizon=50)
    learner = make(policy)
    trainer = MetaRLTrainer(learner, sampler, outer(learner.parameters()))
    tasks = sampler.task_env.sample_tasks(10, np.random.default_rng(99))
    before = trainer.evaluate(tasks, 1)[1].mean().item()
    for _ in range(iterations):
        trainer.meta_step(sampler.sample_tasks(10))
    after = trainer.evaluate(tasks, 1)[1].mean().item()
    assert after > before + 5, f"return after one step went {before:.1f} -> {after:.1f}"


def test_metasgd_trpo_moves_the_step_sizes():
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(16,))
    learner = MetaSGD(policy, inner_lr=0.1)
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=5, horizon=30)
    trainer = MetaRLTrainer(learner, sampler, TRPO(max_kl=0.05))
    before = [a.detach().clone() for a in learner.rule.parameters()]
    trainer.meta_step(sampler.sample_tasks(4))
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.rule.parameters()))


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    exp = load_experiment("maml_rl")
    common = (
        "--tasks-per-batch 3 --episodes-per-task 4 --horizon 15 --hidden 16 --eval-tasks 3 "
        "--eval-steps 1 --checkpoint-every 2 --threads 1 --seed 5"
    ).split()
    exp.main([*common, "--iterations", "4", "--out", str(tmp_path / "full")])
    exp.main([*common, "--iterations", "2", "--out", str(tmp_path / "cut")])
    exp.main([*common, "--iterations", "4", "--out", str(tmp_path / "cut"), "--resume"])
    # The runner keeps the script's state under "state"; the trainer's is under "trainer".
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["state"]["trainer"]["learner"]
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"]["trainer"]["learner"]
    for name, tensor in full.items():
        torch.testing.assert_close(cut[name], tensor, rtol=0, atol=0)
    steps = [line.split(",")[0] for line in (tmp_path / "cut/metrics.csv").read_text().split()]
    assert steps == ["step", "1", "2", "3", "4"]
    assert (tmp_path / "cut" / "learning_curve.png").stat().st_size > 0
    assert list((tmp_path / "cut" / "tensorboard").glob("events.out.tfevents.*"))


def test_task_chunks_change_the_speed_not_the_training(tmp_path):
    exp = load_experiment("maml_rl")
    common = (
        "--tasks-per-batch 5 --episodes-per-task 3 --horizon 10 --hidden 8 --eval-tasks 2 "
        "--eval-steps 1 --checkpoint-every 1 --threads 1 --seed 3"
    ).split()
    whole, chunked = str(tmp_path / "whole"), str(tmp_path / "chunked")
    exp.main([*common, "--iterations", "2", "--task-chunk", "0", "--out", whole])
    exp.main([*common, "--iterations", "1", "--task-chunk", "2", "--out", chunked])
    # a speed setting: a resumed run may take another
    exp.main([*common, "--iterations", "2", "--task-chunk", "3", "--out", chunked, "--resume"])
    start = exp.build_learner(exp.resolve(exp.parse_settings(exp.Settings, common)))[0]
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["state"]["trainer"]["learner"]
    b = load_checkpoint(tmp_path / "chunked" / "checkpoint.pt")["state"]["trainer"]["learner"]
    # training moved the weights by far more than the chunks' float rounding (which TRPO's
    # conjugate gradient amplifies to about 1e-3 here) ...
    assert max((a[k] - v).abs().max() for k, v in start.state_dict().items()) > 0.02
    for name, tensor in a.items():  # ... and the same way, whatever the chunks
        torch.testing.assert_close(b[name], tensor, rtol=0, atol=3e-3)
    rows = [Path(f, "metrics.csv").read_text().splitlines()[1] for f in (whole, chunked)]
    assert rows[0].split(",")[:4] == rows[1].split(",")[:4]  # the first iteration's returns


def test_evaluate_scales_later_steps():
    """With a near-deterministic policy, a later step scaled to ~0 leaves the returns alone."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(16,), init_std=1e-3)
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=4, horizon=20)
    trainer = MetaRLTrainer(MAML(policy, inner_lr=0.1), sampler, TRPO())
    tasks = sampler.task_env.sample_tasks(3, np.random.default_rng(0))
    frozen = trainer.evaluate(tasks, 2, step_scales=(1.0, 1e-12))
    moving = trainer.evaluate(tasks, 2, step_scales=(1.0, 1.0))
    torch.testing.assert_close(frozen[2], frozen[1], atol=1e-3, rtol=1e-4)
    assert (moving[2] - moving[1]).abs().max() > 1e-2
    with pytest.raises(ValueError, match="step_scales"):
        trainer.evaluate(tasks, 1, step_scales=(1.0, 0.0))


def test_outer_steps_that_cannot_work_are_refused():
    from metarl.supervised import ADML, TAML

    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(8,))
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=2, horizon=5)
    reptile = Reptile(policy)
    with pytest.raises(ValueError, match="Reptile with a TRPO outer step"):
        MetaRLTrainer(reptile, sampler, TRPO())
    for learner in (TAML(policy, variant="theil"), ADML(policy)):  # objectives of meta_loss
        with pytest.raises(ValueError, match="silently be plain MAML"):
            MetaRLTrainer(learner, sampler, TRPO())
    metasgd = MetaSGD(policy)
    with pytest.raises(ValueError, match="leaves 5 of the learner.s 10"):  # step sizes left out
        MetaRLTrainer(metasgd, sampler, torch.optim.Adam(policy.parameters()))
    with pytest.raises(ValueError, match="outer must be"):
        MetaRLTrainer(MAML(policy), sampler, "trpo")
    with pytest.raises(ValueError, match="max_kl must be > 0"):
        TRPO(max_kl=0)


# -- the script's refusals and settings checks ---------------------------------------------
TINY = (
    "--tasks-per-batch 2 --episodes-per-task 2 --horizon 5 --hidden 8 --eval-tasks 2 "
    "--eval-steps 1 --threads 1"
).split()


BAD = [
    "--iterations -3",
    "--max-kl 0",
    "--hidden 0",
    "--checkpoint-every -1",
    "--checkpoint-every 0",
    "--tasks-per-batch 0",
    "--eval-tasks 0",
    "--eval-steps -1",
    "--gamma 2",
    "--later-step-scales 1 0",
    "--val-tasks 0",
    "--episodes-per-task 0",
    "--horizon 0",
    "--threads 0",
    "--inner-lr 0",
    "--backtrack-ratio 1",
    "--env-kwargs [1]",
    "--eval-episodes-per-task 0",
]


@pytest.mark.parametrize("bad", BAD)
def test_bad_settings_exit_2_naming_the_flag_before_any_work(tmp_path, capsys, bad):
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        exp.main([*TINY, "--iterations", "1", *bad.split(), "--out", str(out)])
    assert e.value.code == 2
    assert bad.split()[0] in capsys.readouterr().err
    assert not out.exists()  # no settings.json, checkpoint or metrics: nothing ran


def test_a_second_run_into_the_same_folder_needs_overwrite(tmp_path, capsys):
    exp = load_experiment("maml_rl")
    args = [*TINY, "--iterations", "1", "--out", str(tmp_path / "run")]
    first = exp.main(args)
    with pytest.raises(SystemExit, match="already holds a run.*--overwrite"):
        exp.main(args)
    again = exp.main([*args, "--overwrite"])
    assert "overwrite: removed" in capsys.readouterr().out
    assert again["mean_return"] == first["mean_return"]  # the same run, made again
    assert again["command"] == first["command"]  # recorded without --overwrite


def test_eval_json_holds_each_tasks_return_beside_its_parameters(tmp_path):
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    result = exp.main([*TINY, "--iterations", "1", "--out", str(out)])
    saved = json.loads((out / "eval.json").read_text())
    per_task = np.array(saved["returns_per_task"])  # [steps + 1, tasks]
    assert per_task.shape == (2, 2)
    np.testing.assert_allclose(per_task.mean(1), result["mean_return"], rtol=1e-6)
    env = gym.make(exp.Settings().env)
    expected = env.unwrapped.sample_tasks(2, np.random.default_rng(exp.Settings().eval_seed))
    for task, want in zip(saved["tasks"], expected):  # JSON lists where the tasks hold arrays
        assert task.keys() == want.keys()
        for key in task:
            np.testing.assert_allclose(task[key], want[key])


def test_evaluate_detailed_gives_the_share_of_episodes_the_environment_ended():
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(8,))
    learner = MAML(policy, inner_lr=0.1)

    def sampler() -> MultiTaskSampler:  # moves of at most 0.001: the goal at the start is
        return MultiTaskSampler(  # reached at once (within 0.01), the far one never
            "metarl/Navigation2D-v0", episodes_per_task=3, horizon=5, seed=3,
            env_kwargs={"max_step": 0.001},
        )  # fmt: skip

    trainer = MetaRLTrainer(learner, sampler(), TRPO())
    tasks = [{"goal": [0.0, 0.0]}, {"goal": [0.4, 0.4]}]
    detailed = trainer.evaluate_detailed(tasks, inner_steps=1)
    assert detailed.ended_early.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    trainer.sampler = sampler()
    torch.testing.assert_close(trainer.evaluate(tasks, inner_steps=1), detailed.returns)


def test_eval_env_kwargs_make_the_held_out_tasks_and_episodes_only(tmp_path):
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    # held-out goals within 0.005 of the start and moves of at most 0.001: every held-out
    # episode ends at its first step; training used the registered distribution
    near = '{"goal_range": 0.005, "max_step": 0.001}'
    result = exp.main([*TINY, "--iterations", "1", "--eval-env-kwargs", near, "--out", str(out)])
    assert result["ended_early"] == [1.0, 1.0]
    assert all(abs(x) <= 0.005 for task in result["tasks"] for x in task["goal"])
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert float(metrics[1].split(",")[1]) < -1.0  # training returns: far goals, full moves
    plain = exp.main([*TINY, "--iterations", "1", "--out", str(tmp_path / "plain")])
    assert plain["ended_early"] == [0.0, 0.0]


def test_resume_with_another_seed_is_refused_listing_it(tmp_path):
    exp = load_experiment("maml_rl")
    args = [*TINY, "--iterations", "1", "--out", str(tmp_path / "run")]
    exp.main([*args, "--seed", "5"])
    with pytest.raises(SystemExit, match=r"cannot resume(.|\n)*seed: 5 -> 6") as e:
        exp.main([*args, "--seed", "6", "--resume"])
    assert "iterations" not in str(e.value)  # only what differs is listed


def test_a_legacy_run_resumes_when_settings_it_lacks_hold_their_earlier_values(tmp_path):
    """A run from before settings.json kept its settings in the checkpoint, without the ones
    added later: a training setting it lacks counts as unchanged only at the value runs from
    before it had (BEFORE_ADDED: ReLU, raw actions), and at any other value the resume is
    refused, naming it; evaluation settings may change on resume, recorded or not."""
    import json

    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    args = [*TINY, "--iterations", "2", "--eval-steps", "2", "--out", str(out)]
    exp.main([*args, "--no-rescale-actions"])
    ckpt = load_checkpoint(out / "checkpoint.pt")
    settings = json.loads((out / "settings.json").read_text())["settings"]
    added = "activation rescale_actions later_step_scales val_tasks val_seed overwrite"
    for name in added.split():
        del settings[name]
    legacy = {key: ckpt[key] for key in ("torch_rng", "iteration", "elapsed")}
    legacy.update(trainer=ckpt["state"]["trainer"], settings=settings)
    torch.save(legacy, out / "checkpoint.pt")  # the old format: no header, no settings.json
    (out / "settings.json").unlink()
    (out / "checkpoint.prev.pt").unlink(missing_ok=True)
    with pytest.raises(SystemExit, match=r"rescale_actions: \"<absent>\" -> true") as e:
        exp.main([*args, "--resume"])  # the run acted in raw units: not today's default
    assert "activation" not in str(e.value) and "val_tasks" not in str(e.value)
    with pytest.raises(SystemExit, match=r"activation: \"<absent>\" -> \"tanh\""):
        exp.main([*args, "--no-rescale-actions", "--activation", "tanh", "--resume"])
    assert not (out / "settings.json").exists()  # refused before anything was written
    resumed = exp.main([*args, "--no-rescale-actions", "--resume", "--val-tasks", "3"])
    assert resumed["later_step_scale"] in (1.0, 0.5, 0.25, 0.1)
    assert resumed["settings"]["val_tasks"] == 3 and resumed["settings"]["activation"] == "relu"
    assert json.loads((out / "settings.json").read_text())["settings"]["rescale_actions"] is False


def test_resume_may_raise_the_iterations_but_not_go_below_the_checkpoint(tmp_path):
    exp = load_experiment("maml_rl")
    args = [*TINY, "--checkpoint-every", "1", "--out", str(tmp_path / "run")]
    exp.main([*args, "--iterations", "2"])
    with pytest.raises(SystemExit, match="--iterations 1 is below the checkpoint's iteration 2"):
        exp.main([*args, "--iterations", "1", "--resume"])
    exp.main([*args, "--iterations", "3", "--resume"])
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["iteration"] == 3


def test_the_trained_learner_loads_and_the_exporter_rebuilds_it(tmp_path):
    """learner.pt after training holds the checkpoint's weights; export_learner.py writes the
    same learner from the checkpoint of a run that lacks it, and refuses to overwrite it."""
    out = tmp_path / "run"
    load_experiment("maml_rl").main([*TINY, "--iterations", "2", "--out", str(out)])
    learner = metarl.load_learner(out / "learner.pt")
    trained = load_checkpoint(out / "checkpoint.pt")["state"]["trainer"]["learner"]
    assert all(torch.equal(learner.state_dict()[k], v) for k, v in trained.items())
    assert learner.model.mean[0].out_features == 8  # the run's --hidden 8

    sampler = MultiTaskSampler("metarl/Navigation2D-v0", 2, 5, seed=0)
    returns = MetaRLTrainer(learner, sampler, TRPO()).evaluate(sampler.sample_tasks(2), 1)
    assert returns.shape == (2, 2) and torch.isfinite(returns).all()

    exporter = load_experiment("export_learner")
    with pytest.raises(SystemExit, match="learner.pt exists; pass --overwrite"):
        exporter.main(["--run", str(out)])
    (out / "learner.pt").unlink()
    exporter.main(["--run", str(out)])
    again = metarl.load_learner(out / "learner.pt")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in trained.items())
    assert describe(again) == describe(learner)


def test_snapshots_keep_the_learner_of_their_iteration(tmp_path):
    """--snapshot-every n keeps the learner after every n-th iteration, loadable like
    learner.pt; the last one is the final learner, an earlier one differs from it; a resumed
    run may change the frequency (it does not change training)."""
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    args = [*TINY, "--checkpoint-every", "1", "--out", str(out)]
    exp.main([*args, "--iterations", "2", "--snapshot-every", "1"])
    final = metarl.load_learner(out / "learner.pt").state_dict()
    second = metarl.load_learner(exp.snapshot_path(out, 2)).state_dict()
    first = metarl.load_learner(exp.snapshot_path(out, 1))
    assert all(torch.equal(second[k], v) for k, v in final.items())
    assert any(not torch.equal(first.state_dict()[k], v) for k, v in final.items())
    assert load_checkpoint(exp.snapshot_path(out, 1))["extra"]["iterations"] == 1
    exp.main([*args, "--iterations", "4", "--snapshot-every", "2", "--resume"])
    kept = sorted(p.name for p in (out / "snapshots").iterdir())
    assert kept == ["learner-00001.pt", "learner-00002.pt", "learner-00004.pt"]


def test_curvature_check_compares_steps_on_the_same_tasks_and_episodes(tmp_path):
    """Each row starts from the checkpoint's weights on the same tasks and episodes, so two
    rows with the same curvature estimate are the same step; a non-TRPO run is refused."""
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    exp.main([*TINY, "--tasks-per-batch", "4", "--horizon", "10", "--iterations", "1",
              "--out", str(out)])  # fmt: skip
    check = load_experiment("trpo_curvature_check")
    rows = check.main(["--run", str(out), "--batches", "2", "--fisher-every", "1", "1", "4"])
    assert [r["fisher_every"] for r in rows] == [1, 1, 4, 1, 1, 4]
    for batch in (rows[:3], rows[3:]):
        same = ("step_fraction", "kl", "surrogate_gain")
        assert all(batch[0][k] == batch[1][k] for k in same)
        assert batch[0]["kl"] <= 0.01 and batch[0]["surrogate_gain"] >= 0
    assert rows[0]["surrogate_gain"] != rows[3]["surrogate_gain"]  # another meta-batch
    reptile = tmp_path / "reptile"
    exp.main([*TINY, "--learner", "reptile", "--iterations", "1", "--out", str(reptile)])
    with pytest.raises(SystemExit, match="not TRPO"):
        check.main(["--run", str(reptile)])


def test_select_snapshot_evaluates_the_best_snapshot_on_validation_tasks(tmp_path):
    """--select-snapshot scores every snapshot after one step on the validation tasks and
    evaluates the best like the final learner (the same numbers when it is the final one);
    a run without snapshots is refused, naming the flag that makes them."""
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    args = [*TINY, "--checkpoint-every", "1", "--val-tasks", "3", "--out", str(out)]
    final = exp.main([*args, "--iterations", "3", "--snapshot-every", "1"])
    chosen = exp.main([*args, "--iterations", "3", "--select-snapshot", "--resume"])
    scores = chosen["validation_return_after_1_step"]
    assert set(scores) == {"1", "2", "3"}
    best = chosen["selected_iteration"]
    assert scores[str(best)] == max(scores.values())
    assert chosen["mean_return"] == final["mean_return"]  # the final learner, as before
    if best == 3:
        assert chosen["mean_return_selected"] == final["mean_return"]
    again = exp.main([*args, "--iterations", "3", "--select-snapshot", "--resume"])
    assert again["mean_return_selected"] == chosen["mean_return_selected"]
    bare = tmp_path / "bare"
    exp.main([*TINY, "--iterations", "1", "--out", str(bare)])
    with pytest.raises(SystemExit, match="no snapshots.*--snapshot-every"):
        exp.main([*TINY, "--iterations", "1", "--select-snapshot", "--resume", "--out", str(bare)])


def test_evaluation_samples_its_own_episode_count(tmp_path, monkeypatch):
    """--eval-episodes-per-task sets the test-time samplers' episodes; training keeps its own
    (the MAML paper's HalfCheetah policy trained on 10 episodes and was tested on 20)."""
    exp = load_experiment("maml_rl")
    made: list[int] = []

    class Recording(MultiTaskSampler):
        def __init__(self, env: str, episodes_per_task: int, *args, **kwargs) -> None:
            made.append(episodes_per_task)
            super().__init__(env, episodes_per_task, *args, **kwargs)

    monkeypatch.setattr(exp, "MultiTaskSampler", Recording)
    exp.main([*TINY, "--iterations", "1", "--eval-episodes-per-task", "5",
              "--out", str(tmp_path / "run")])  # fmt: skip
    assert made[0] == 2  # TINY's --episodes-per-task and made[1:] and set(made[1:]) == {5}


def test_env_kwargs_reach_the_samplers_and_size_the_policy(tmp_path):
    """'{"centre_of_mass": true}': rllab's 20-number HalfCheetah observation, for the policy
    that trains on it and the learner that is saved."""
    exp = load_experiment("maml_rl")
    out = tmp_path / "run"
    exp.main([*TINY, "--env", "metarl/HalfCheetahVel-v1", "--env-kwargs",
              '{"centre_of_mass": true}', "--iterations", "1", "--out", str(out)])  # fmt: skip
    policy = metarl.load_learner(out / "learner.pt").model
    assert policy.mean[0].in_features == 20
