"""PEARL: the posterior as a product of Gaussians, the squashed policy's log-probability,
per-task replay, and a learner that adapts from its context."""

from __future__ import annotations

import json

import pytest
import torch

import metarl
from helpers import load_experiment
from metarl.rl import (
    PEARL,
    ContextEncoder,
    Episodes,
    MultiTaskSampler,
    PEARLTrainer,
    TanhGaussianMLPPolicy,
    TaskReplay,
)
from metarl.rl.replay import episode_transitions

NAV = "metarl/Navigation2D-v0"


def test_the_posterior_is_the_product_of_the_transitions_gaussians():
    torch.manual_seed(0)
    encoder = ContextEncoder(4, latent_dim=2, hidden=(8,))
    context = torch.randn(3, 5, 4)
    mask = torch.tensor([[1.0] * 5, [1, 1, 0, 0, 0], [0.0] * 5])
    mu, var = encoder.posterior(context, mask)
    out = encoder.net(context)
    mu_i, var_i = out[..., :2], torch.nn.functional.softplus(out[..., 2:]) + 1e-7
    for t, n in ((0, 5), (1, 2)):
        # the product of Gaussians: precisions add, means weighted by precision
        expected_var = 1 / (1 / var_i[t, :n]).sum(0)
        torch.testing.assert_close(var[t], expected_var)
        torch.testing.assert_close(mu[t], expected_var * (mu_i[t, :n] / var_i[t, :n]).sum(0))
    torch.testing.assert_close(mu[2], torch.zeros(2))  # no context: the prior
    torch.testing.assert_close(var[2], torch.ones(2))
    kl = ContextEncoder.kl_to_prior(mu, var)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, var.sqrt()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl, reference)


def test_squashed_samples_have_the_change_of_variables_log_probability():
    torch.manual_seed(0)
    policy = TanhGaussianMLPPolicy(3, 2, hidden=(8,))
    dist = policy(torch.randn(50, 3))
    action, log_prob = TanhGaussianMLPPolicy.rsample(dist)
    mean, log_std = dist
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform(cache_size=1)],
    )
    torch.testing.assert_close(log_prob, reference.log_prob(action).sum(-1), rtol=1e-4, atol=1e-4)
    assert action.abs().max() < 1
    log_prob.sum().backward()  # differentiable in the policy's weights
    assert policy.net[0].weight.grad is not None


def test_episode_transitions_take_next_observations_and_done_from_where_episodes_end():
    obs = torch.arange(2 * 1 * 3, dtype=torch.float32).view(1, 2, 3, 1)
    episodes = Episodes(
        observations=obs,
        actions=torch.zeros(1, 2, 3, 1),
        rewards=torch.ones(1, 2, 3),
        mask=torch.tensor([[[1.0, 1, 1], [1, 1, 0]]]),
        final_observations=torch.tensor([[[10.0], [20.0]]]),
        terminated=torch.tensor([[False, True]]),
    )
    transitions, mask = episode_transitions(episodes)
    assert transitions.next_obs[0, :, 0].tolist() == [1, 2, 10, 4, 20, 0]
    assert transitions.done[0].tolist() == [0, 0, 0, 0, 1, 0]
    assert mask[0].tolist() == [1, 1, 1, 1, 1, 0]


def test_task_replay_keeps_each_tasks_latest_transitions():
    replay = TaskReplay(num_tasks=3, capacity=4, obs_dim=1, act_dim=1)
    for start in (0, 3):  # 2 episodes of 3 steps, then 2 more: task 2's ring wraps
        obs = torch.arange(start, start + 3, dtype=torch.float32).view(1, 1, 3, 1)
        episodes = Episodes(obs, torch.zeros(1, 1, 3, 1), obs[..., 0], torch.ones(1, 1, 3),
                            obs[:, :, -1] + 1, torch.zeros(1, 1, dtype=torch.bool))  # fmt: skip
        replay.add([2], episodes)
    assert replay.size.tolist() == [0, 0, 4]
    drawn = replay.sample([2], 200, torch.Generator().manual_seed(0))
    assert set(drawn.obs.flatten().tolist()) == {2.0, 3.0, 4.0, 5.0}  # 0 and 1 overwritten
    assert torch.equal(drawn.rewards, drawn.obs[..., 0])  # fields stay together
    with pytest.raises(ValueError, match=r"tasks \[0\] hold no transitions"):
        replay.sample([0, 2], 4)
    replay.clear([2])
    assert replay.size.tolist() == [0, 0, 0]


def _navigation_trainer(goals: list[list[float]], seed: int = 0) -> PEARLTrainer:
    torch.manual_seed(seed)
    sampler = MultiTaskSampler(NAV, 4, 30, seed=seed)
    learner = PEARL.for_sampler(sampler, hidden=(64, 64), encoder_hidden=(64, 64))
    tasks = [{"goal": g} for g in goals]
    return PEARLTrainer(learner, sampler, tasks, capacity=5000, hidden=(64, 64), lr=1e-3,
                        gamma=0.9, seed=seed)  # fmt: skip


def _train(trainer: PEARLTrainer, iterations: int, updates: int) -> None:
    ids = list(range(len(trainer.train_tasks)))
    trainer.collect(ids, use_posterior=False)
    for _ in range(iterations):
        trainer.context.clear(ids)
        trainer.collect(ids, use_posterior=False)
        trainer.collect(ids, use_posterior=True)
        for _ in range(updates):
            trainer.update(ids, batch=64)


def _returns(trainer: PEARLTrainer, episodes: int) -> torch.Tensor:
    evaluator = MultiTaskSampler(NAV, 1, 30, seed=9)
    torch.manual_seed(1)
    played = trainer.learner.adapt_and_play(evaluator, trainer.train_tasks * 10, episodes)
    return played.mean(0)


def test_pearls_soft_actor_critic_learns_to_reach_one_goal():
    trainer = _navigation_trainer([[0.4, 0.4]])
    before = _returns(trainer, 1)[0]
    _train(trainer, iterations=16, updates=50)
    after = _returns(trainer, 1)[0]
    assert after > before + 5, (before, after)  # about -17.8 before, -7 to -9 after


@pytest.mark.slow
def test_pearl_infers_which_goal_from_its_context():
    # two opposite goals the policy cannot see: only the posterior over z tells them apart
    trainer = _navigation_trainer([[0.4, 0.4], [-0.4, -0.4]])
    _train(trainer, iterations=100, updates=50)
    prior, posterior = _returns(trainer, 2)
    assert posterior > prior + 3, (prior, posterior)  # measured: -17.4 against -11.1


def test_a_saved_pearl_learner_loads_and_plays_the_same(tmp_path):
    sampler = MultiTaskSampler(NAV, 1, 10, seed=0)
    learner = PEARL.for_sampler(sampler, hidden=(8,), latent_dim=3, encoder_hidden=(8,))
    metarl.save_learner(tmp_path / "pearl.pt", learner)
    loaded = metarl.load_learner(tmp_path / "pearl.pt")
    assert isinstance(loaded, PEARL) and loaded.encoder.latent_dim == 3
    tasks = sampler.sample_tasks(3)
    torch.manual_seed(4)
    a = learner.adapt_and_play(sampler, tasks, 2)
    sampler.seed(0)
    sampler.sample_tasks(3)
    torch.manual_seed(4)
    b = loaded.adapt_and_play(sampler, tasks, 2)
    assert torch.equal(a, b)


def test_pearl_script_trains_resumes_and_reports(tmp_path):
    pearl = load_experiment("pearl")
    out = tmp_path / "run"
    common = ["--env", NAV, "--horizon", "20", "--train-tasks", "6", "--test-tasks", "3",
              "--initial-episodes", "1", "--gradient-steps", "5", "--meta-batch", "3",
              "--batch", "16", "--hidden", "16", "--encoder-hidden", "16", "--eval-every", "2",
              "--out", str(out)]  # fmt: skip
    pearl.main([*common, "--iterations", "2"])
    result = pearl.main([*common, "--iterations", "4", "--resume"])
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    saved = json.loads((out / "results.json").read_text())
    # 6 tasks x 1 initial episode, then 5 tasks x (2 prior + 2 posterior) per iteration
    assert saved["env_steps"] <= 20 * (6 + 4 * 5 * 4) and len(saved["test_returns"]) == 3
    assert result["chosen_iteration"] in (2, 4)
    assert isinstance(metarl.load_learner(out / "learner.pt"), PEARL)


def test_pearl_script_refuses_draws_larger_than_the_training_tasks(tmp_path, capsys):
    pearl = load_experiment("pearl")
    with pytest.raises(SystemExit):
        pearl.main(["--env", NAV, "--train-tasks", "4", "--meta-batch", "5",
                    "--out", str(tmp_path / "run")])  # fmt: skip
    assert "--meta-batch 5 is more than --train-tasks 4" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
