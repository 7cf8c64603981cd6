"""RL^2: the recurrent policy, trials (previous step, carried state), PPO, the learner."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

import metarl
from helpers import load_experiment
from metarl.rl import PPO, RL2, GRUPolicy, RL2Trainer, TrialSampler
from metarl.rl.ppo import rescale_value_head

BANDIT = "metarl/BernoulliBandit-v0"


def bandit_sampler(arms: int, pulls: int, **kwargs) -> TrialSampler:
    return TrialSampler(BANDIT, pulls, 1, env_kwargs={"arms": arms, "pulls": 1}, **kwargs)


@pytest.mark.parametrize("discrete", [True, False])
def test_stepping_the_gru_gives_the_whole_sequence_outputs(discrete):
    torch.manual_seed(0)
    policy = GRUPolicy(6, 3, discrete=discrete, hidden=16)
    with torch.no_grad():
        policy.action_head.weight.normal_()  # not the near-zero start: outputs differ
    obs = torch.randn(4, 7, 6)
    dist, values = policy.forward_sequence(obs)
    state = policy.initial_state(4)
    for t in range(7):
        step_dist, step_value, state = policy.step(obs[:, t], state)
        for a, b in zip(step_dist, dist):
            torch.testing.assert_close(a, b[:, t])
        torch.testing.assert_close(step_value, values[:, t])


@pytest.mark.parametrize("discrete", [True, False])
def test_entropy_matches_torch_distributions(discrete):
    torch.manual_seed(1)
    policy = GRUPolicy(5, 4, discrete=discrete, hidden=8, init_std=0.7)
    with torch.no_grad():
        policy.action_head.weight.normal_()
    dist = policy(torch.randn(3, 2, 5))
    if discrete:
        reference = torch.distributions.Categorical(logits=dist[0]).entropy()
    else:
        reference = torch.distributions.Normal(dist[0], dist[1].exp()).entropy().sum(-1)
    torch.testing.assert_close(policy.entropy(dist), reference)


class CountingPolicy(torch.nn.Module):
    """Pulls arm (steps seen so far in the trial) mod k; its state counts the trial's steps."""

    discrete = True

    def __init__(self, arms: int) -> None:
        super().__init__()
        self.arms = arms

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, 1)

    def step(self, obs, state):
        picks = state[:, 0].long() % self.arms
        log_probs = torch.full((len(obs), self.arms), -1e9)
        log_probs[torch.arange(len(obs)), picks] = 0.0
        return (log_probs,), torch.zeros(len(obs)), state + 1

    mode = staticmethod(lambda dist: dist[0].argmax(-1))
    sample = staticmethod(lambda dist, generator=None: dist[0].argmax(-1))


def test_trials_carry_the_state_across_episodes_and_append_the_previous_step():
    arms, pulls = 3, 7
    sampler = bandit_sampler(arms, pulls, trials_per_task=2, seed=3)
    tasks = [{"probs": [1.0, 0.0, 1.0]}, {"probs": [0.0, 1.0, 0.0]}]
    trials = sampler.sample(tasks, CountingPolicy(arms))
    assert trials.observations.shape == (2, 2, pulls, arms + 1 + sampler.extra_obs)
    # the state ran on across the one-pull episodes: arm t mod 3 at step t
    expected = torch.arange(pulls) % arms
    assert torch.equal(trials.actions, expected.expand(2, 2, pulls))
    pays = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])[:, expected]
    assert torch.equal(trials.rewards, pays[:, None].expand(2, 2, pulls))
    assert torch.equal(trials.episode_returns, trials.rewards)  # one step per episode
    extra = trials.observations[..., arms + 1 :]
    assert torch.equal(extra[:, :, 0], torch.zeros(2, 2, sampler.extra_obs))  # trial start
    for t in range(1, pulls):
        one_hot = torch.nn.functional.one_hot(expected[t - 1], arms).float()
        assert torch.equal(extra[:, :, t, :arms], one_hot.expand(2, 2, arms))
        assert torch.equal(extra[:, :, t, arms], trials.rewards[:, :, t - 1])
        assert torch.all(extra[:, :, t, arms + 1] == 1.0)  # every one-pull episode ended
    assert trials.steps() == 2 * 2 * pulls


def test_trials_equal_without_the_vector_form_and_repeat_with_the_seed():
    policy = GRUPolicy.for_sampler(bandit_sampler(4, 5), hidden=8)
    runs = []
    for fast in (True, False, True):
        sampler = bandit_sampler(4, 5, seed=11, fast=fast)
        runs.append(sampler.sample(sampler.sample_tasks(6), policy))
    for a, b, c in zip(*runs):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_mujoco_trials_are_packed_episodes_with_done_flags():
    sampler = TrialSampler("metarl/HalfCheetahVel-v1", 2, 5, seed=0, threads=1)
    policy = GRUPolicy.for_sampler(sampler, hidden=8)
    trials = sampler.sample(sampler.sample_tasks(2), policy)
    assert trials.observations.shape[:3] == (2, 1, 10)
    assert torch.all(trials.mask == 1)
    done = trials.observations[..., -1]
    assert torch.equal(done[0, 0], torch.tensor([0.0] * 5 + [1.0] + [0.0] * 4))
    torch.testing.assert_close(trials.episode_returns.sum(-1), trials.rewards.sum(-1))


def test_rescaling_the_value_head_keeps_its_predictions():
    torch.manual_seed(0)
    policy = GRUPolicy(3, 2, discrete=True, hidden=8)
    obs = torch.randn(5, 4, 3)
    before = policy.forward_sequence(obs)[1]
    with torch.no_grad():
        rescale_value_head(policy, torch.full((5, 4), 50.0), torch.ones(5, 4))
    assert policy.value_scale.item() == pytest.approx(0.9 + 5.0)
    torch.testing.assert_close(policy.forward_sequence(obs)[1], before)


def test_rl2_learns_to_exploit_a_bandit_within_a_trial():
    torch.manual_seed(0)
    sampler = bandit_sampler(2, 10, seed=0)
    learner = RL2(GRUPolicy.for_sampler(sampler, hidden=32), episodes_per_trial=10)
    trainer = RL2Trainer(learner, sampler, PPO(epochs=4, minibatches=2), lr=3e-3)
    held_out = sampler.task_env.sample_tasks(400, np.random.default_rng(99))

    def mean_return() -> float:
        sampler.seed(5)
        return learner.play(sampler, held_out).episode_returns.sum(-1).mean().item()

    start = mean_return()
    for _ in range(80):
        trainer.step(sampler.sample_tasks(200))
    trained = mean_return()
    # uniform play earns 10 * E[p] = 5; always the better arm 10 * E[max] = 6.67
    assert start == pytest.approx(5.0, abs=0.35)
    assert trained > 6.0, (start, trained)
    late = learner.play(sampler, held_out).mean_episode_returns().mean(0)
    assert late[-3:].mean() > late[:3].mean()  # it adapts within the trial


def test_a_saved_rl2_learner_loads_and_plays_the_same_trials(tmp_path):
    sampler = bandit_sampler(3, 4, seed=2)
    learner = RL2(GRUPolicy.for_sampler(sampler, hidden=8), episodes_per_trial=4)
    metarl.save_learner(tmp_path / "rl2.pt", learner)
    loaded = metarl.load_learner(tmp_path / "rl2.pt")
    assert isinstance(loaded, RL2) and loaded.episodes_per_trial == 4
    tasks = sampler.sample_tasks(5)
    a = learner.play(sampler, tasks)
    sampler.seed(2)
    sampler.sample_tasks(5)
    b = loaded.play(sampler, tasks)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="trials of 4 episodes"):
        RL2(learner.model, episodes_per_trial=3).play(sampler, tasks)


def test_rl2_script_trains_resumes_and_reports(tmp_path):
    rl2 = load_experiment("rl2")
    out = tmp_path / "run"
    common = ["--env-kwargs", '{"arms": 3, "pulls": 1}', "--episodes-per-trial", "5",
              "--tasks-per-batch", "20", "--hidden", "8", "--validate-every", "2",
              "--val-tasks", "10", "--eval-tasks", "10", "--out", str(out)]  # fmt: skip
    rl2.main([*common, "--iterations", "2"])
    record = json.loads((out / "settings.json").read_text())
    del record["settings"]["lr_final"]  # as a run made before --lr-final existed
    (out / "settings.json").write_text(json.dumps(record))
    result = rl2.main([*common, "--iterations", "4", "--resume"])
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["env_steps"] == 4 * 20 * 5 and result["chosen_iteration"] in (2, 4)
    assert len(saved["test"]["episode_returns"]) == 5
    assert math.isclose(saved["test"]["trial_return"], sum(saved["test"]["episode_returns"]),
                        rel_tol=1e-6)  # fmt: skip
    assert isinstance(metarl.load_learner(out / "learner.pt"), RL2)


def test_rl2_script_anneals_the_learning_rate_linearly_to_lr_final(tmp_path):
    rl2 = load_experiment("rl2")
    out = tmp_path / "run"
    common = ["--env-kwargs", '{"arms": 3, "pulls": 1}', "--episodes-per-trial", "3",
              "--tasks-per-batch", "8", "--hidden", "8", "--validate-every", "2",
              "--val-tasks", "4", "--eval-tasks", "4", "--iterations", "4", "--lr", "0.01",
              "--lr-final", "0.001", "--out", str(out)]  # fmt: skip
    rl2.main(common)
    with (out / "metrics.csv").open(newline="") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs == pytest.approx([0.01, 0.007, 0.004, 0.001])
