"""experiments/make_demos.py and experiments/mil.py: outputs, refusals, bit-exact resume."""

from __future__ import annotations

import pytest
import torch

import metarl
from helpers import load_experiment
from metarl.imitation import load_demos


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    make_demos = load_experiment("make_demos")
    root = tmp_path_factory.mktemp("demos")
    expert_return = make_demos.main(
        ["--tasks", "12", "--demos-per-task", "2", "--noise", "0.3", "--out", str(root / "train")]
    )
    make_demos.main(
        ["--tasks", "5", "--demos-per-task", "1", "--seed", "1", "--out", str(root / "test")]
    )
    return root, expert_return


def test_make_demos_records_its_command_and_refuses_to_overwrite(datasets):
    root, expert_return = datasets
    demos = load_demos(root / "train")
    assert demos.num_tasks == 12 and demos.demos_per_task == 2
    assert demos.info["noise"] == 0.3 and "--noise 0.3" in demos.info["command"]
    assert expert_return == pytest.approx(demos.returns().mean().item())
    make_demos = load_experiment("make_demos")
    with pytest.raises(SystemExit, match="overwrite"):
        make_demos.main(["--tasks", "3", "--out", str(root / "train")])
    with pytest.raises(SystemExit, match="no expert for metarl/HalfCheetahVel-v1 yet"):
        make_demos.main(["--env", "metarl/HalfCheetahVel-v1", "--out", str(root / "x")])
    with pytest.raises(SystemExit, match="--env-kwargs is not JSON"):
        make_demos.main(["--env-kwargs", "{max_step: 0.05}", "--out", str(root / "x")])
    with pytest.raises(SystemExit, match="must be a JSON object"):
        make_demos.main(["--env-kwargs", "[0.05]", "--out", str(root / "x")])


def _mil_args(root, out, iterations):
    return [
        "--train-demos", str(root / "train"), "--test-demos", str(root / "test"),
        "--hidden", "16", "--meta-batch", "4", "--iterations", str(iterations),
        "--checkpoint-every", "5", "--log-every", "5", "--eval-max-steps", "1",
        "--out", str(out),
    ]  # fmt: skip


def test_mil_writes_results_and_a_loadable_learner_and_resumes_bit_for_bit(datasets, tmp_path):
    root, _ = datasets
    mil = load_experiment("mil")
    straight = mil.main(_mil_args(root, tmp_path / "straight", 10))
    assert set(straight["return_after_steps"]) == {"0", "1"}
    assert straight["n_tasks"] == 5
    # from the origin the expert's rollouts are the held-out demonstrations themselves
    demos = load_demos(root / "test")
    assert straight["expert"]["mean"] == pytest.approx(demos.returns().mean().item())
    assert straight["expert"]["success"] == 1.0
    learner = metarl.load_learner(tmp_path / "straight" / "learner.pt")
    assert learner.inner_steps == 1

    mil.main(_mil_args(root, tmp_path / "resumed", 5))
    resumed = mil.main([*_mil_args(root, tmp_path / "resumed", 10), "--resume"])
    a = metarl.load_learner(tmp_path / "straight" / "learner.pt").state_dict()
    b = metarl.load_learner(tmp_path / "resumed" / "learner.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["return_after_steps"] == straight["return_after_steps"]
    with pytest.raises(SystemExit):
        mil.main(_mil_args(root, tmp_path / "straight", 10))  # a run is there already


@pytest.mark.parametrize("learner", ["daml", "invdyn", "invdyn-multitask"])
def test_observation_only_learners_never_read_the_held_out_actions(datasets, tmp_path, learner):
    """The observation-only learners score the same whatever actions the held-out dataset
    holds."""
    import dataclasses

    from metarl.imitation import save_demos

    root, _ = datasets
    demos = load_demos(root / "test")
    scrambled = dataclasses.replace(
        demos, actions=-demos.actions, expert_actions=torch.zeros_like(demos.expert_actions)
    )
    save_demos(scrambled, tmp_path / "scrambled")
    mil = load_experiment("mil")
    extra = ["--learner", learner, "--invdyn-steps", "50", "--scratch-steps", "20"]
    results = []
    for test_demos, out in ((root / "test", "real"), (tmp_path / "scrambled", "scrambled")):
        args = _mil_args(root, tmp_path / out, 10)
        args[args.index("--test-demos") + 1] = str(test_demos)
        results.append(mil.main([*args, *extra]))
    assert results[0]["return_after_steps"] == results[1]["return_after_steps"]
    assert results[0]["test_demonstration"] == "observations only"
    steps = {"0", "20"} if learner == "invdyn" else {"0", "1"}
    assert set(results[0]["return_after_steps"]) == steps
    if learner == "daml":  # the learned loss is saved with the learner
        trained = metarl.load_learner(tmp_path / "real" / "learner.pt")
        assert type(trained).__name__ == "DomainAdaptiveMAML"
        assert trained.observation_loss.convs[0].weight.abs().sum() > 0


def test_an_oracle_run_acts_as_the_expert_of_its_distribution(tmp_path):
    """make_demos --expert-policy rolls out an oracle run's policy (its mean, clipped to the
    action range, plus the asked-for noise), records the path, and refuses a learner that
    does not see the task or was trained on another distribution."""
    maml_rl, make_demos = load_experiment("maml_rl"), load_experiment("make_demos")
    tiny = "--tasks-per-batch 2 --episodes-per-task 2 --horizon 5 --hidden 8 --eval-tasks 2 "
    tiny += "--eval-steps 1 --threads 1 --iterations 1"
    for learner in ("oracle", "maml-trpo"):
        maml_rl.main([*tiny.split(), "--learner", learner, "--out", str(tmp_path / learner)])
    oracle = str(tmp_path / "oracle" / "learner.pt")
    make_demos.main(["--tasks", "3", "--demos-per-task", "1", "--horizon", "20",
                     "--expert-policy", oracle, "--out", str(tmp_path / "demos")])  # fmt: skip
    demos = load_demos(tmp_path / "demos")
    assert demos.info["expert_policy"] == oracle
    policy = metarl.load_learner(oracle).model
    obs = demos.observations[:, 0]
    tasks = torch.tensor([[t["goal"][0], t["goal"][1]] for t in demos.tasks], dtype=obs.dtype)
    with torch.no_grad():
        mean = policy(torch.cat([obs, tasks[:, None].expand(-1, obs.shape[1], -1)], -1))[0]
    labels = demos.expert_actions[:, 0] / 0.1  # the policy's scale: Navigation2D's box is 0.1
    keep = demos.mask[:, 0] > 0
    torch.testing.assert_close(labels[keep], mean.clamp(-1, 1)[keep])
    blind = str(tmp_path / "maml-trpo" / "learner.pt")
    with pytest.raises(SystemExit, match="task_in_observation=False"):
        make_demos.main(["--expert-policy", blind, "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="trained on metarl/Navigation2D-v0"):
        make_demos.main(["--env", "metarl/Navigation2DRandomStart-v0", "--expert-policy",
                         oracle, "--out", str(tmp_path / "y")])  # fmt: skip
