"""metarl.imitation: the scripted expert, demonstration datasets, BC losses, DemoTasks, MIL."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from metarl.core import MAML
from metarl.envs import TaskInObservation, flatten_task, task_features
from metarl.envs.navigation import Navigation2D
from metarl.imitation import (
    DemoData,
    DemoDatasetError,
    DemoTasks,
    Navigation2DExpert,
    bc_loss,
    generate_demos,
    load_demos,
    make_expert,
    save_demos,
)
from metarl.rl import CategoricalMLPPolicy, GaussianMLPPolicy, MultiTaskSampler

NAV = "metarl/Navigation2D-v0"
FIELDS = (
    "observations",
    "actions",
    "expert_actions",
    "rewards",
    "mask",
    "final_observations",
    "terminated",
)


@pytest.fixture(scope="module")
def nav_demos():
    return generate_demos(NAV, Navigation2DExpert(), num_tasks=6, demos_per_task=3, horizon=100)


def test_expert_demonstrations_follow_the_navigation_dynamics(nav_demos):
    goals = torch.tensor([task["goal"] for task in nav_demos.tasks], dtype=torch.float32)
    lengths = nav_demos.mask.sum(-1).long()
    assert nav_demos.terminated.all()  # every demonstration reaches its goal
    # the fastest route: max(|goal|) / 0.1 moves, rounded up
    fastest = torch.ceil(goals.abs().max(-1).values / 0.1 - 1e-6).long()
    assert torch.equal(lengths, fastest.unsqueeze(1).expand_as(lengths))
    for t in range(nav_demos.num_tasks):
        n = int(lengths[t, 0])
        obs, act = nav_demos.observations[t, 0, :n], nav_demos.actions[t, 0, :n]
        positions = torch.cat((obs[1:], nav_demos.final_observations[t, 0, None]))
        assert torch.allclose(positions, obs + act, atol=1e-6)  # position += action
        distances = (positions - goals[t]).norm(dim=-1)
        assert torch.allclose(nav_demos.rewards[t, 0, :n], -distances, atol=1e-6)
        assert (positions[-1] - goals[t]).abs().max() < 0.01
    assert nav_demos.actions.abs().max() <= 0.1 + 1e-7


def test_generation_is_reproducible_from_the_seed(nav_demos):
    again = generate_demos(NAV, Navigation2DExpert(), num_tasks=6, demos_per_task=3, horizon=100)
    other = generate_demos(
        NAV, Navigation2DExpert(), num_tasks=6, demos_per_task=3, horizon=100, seed=1
    )
    assert again.tasks == nav_demos.tasks
    assert all(torch.equal(getattr(again, f), getattr(nav_demos, f)) for f in FIELDS)
    assert other.tasks != nav_demos.tasks


def test_datasets_round_trip_bit_for_bit_and_refuse_overwriting(nav_demos, tmp_path):
    path = save_demos(nav_demos, tmp_path / "nav")
    loaded = load_demos(path)
    assert loaded.env_id == NAV and loaded.tasks == nav_demos.tasks
    assert loaded.info["seed"] == 0 and loaded.info["expert"] == "Navigation2DExpert"
    for f in FIELDS:
        assert torch.equal(getattr(loaded, f), getattr(nav_demos, f)), f
    with pytest.raises(FileExistsError):
        save_demos(nav_demos, path)
    save_demos(nav_demos, path, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build leftovers
    import minari  # the data are an ordinary Minari dataset too

    assert minari.MinariDataset(path / "data").total_episodes == 18


def test_damaged_datasets_raise_clear_errors(nav_demos, tmp_path):
    path = save_demos(nav_demos, tmp_path / "nav")
    hdf5, sidecar = path / "data" / "main_data.hdf5", path / "metarl.json"
    original = hdf5.read_bytes()

    hdf5.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(DemoDatasetError, match="main_data.hdf5.*truncated, modified or corrupt"):
        load_demos(path)

    meta = json.loads(sidecar.read_text())  # a checksum that agrees with the damaged file
    import hashlib

    meta["sha256"] = hashlib.sha256(hdf5.read_bytes()).hexdigest()
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(DemoDatasetError, match="main_data.hdf5: Minari cannot read it"):
        load_demos(path)

    hdf5.write_bytes(original)
    meta["sha256"] = hashlib.sha256(original).hexdigest()
    meta["task_of_episode"] = meta["task_of_episode"][:-1]
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(DemoDatasetError, match="metarl.json: task_of_episode"):
        load_demos(path)

    sidecar.write_text("{not json")
    with pytest.raises(DemoDatasetError, match="metarl.json: unreadable"):
        load_demos(path)
    with pytest.raises(DemoDatasetError, match="missing"):
        load_demos(tmp_path / "nowhere")


def test_bc_loss_gradients_match_hand_derived_values():
    torch.manual_seed(0)
    obs, mask = torch.randn(3, 4, 5), torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    policy = GaussianMLPPolicy(5, 2, hidden=(8,))
    params = dict(policy.named_parameters())
    actions = torch.randn(3, 4, 2)
    loss = bc_loss(policy)(params, DemoData(obs, actions, mask))
    (bias_grad,) = torch.autograd.grad(loss, [params["mean.2.bias"]])
    error = policy(obs)[0] - actions  # d/d(bias) of sum_a (mean - a)^2 is 2 (mean - a)
    expected = 2 * (error * mask.unsqueeze(-1)).sum((0, 1)) / mask.sum()
    torch.testing.assert_close(bias_grad, expected.detach())

    discrete = CategoricalMLPPolicy(5, 3, hidden=(8,))
    params = dict(discrete.named_parameters())
    labels = torch.randint(0, 3, (3, 4))
    loss = bc_loss(discrete)(params, DemoData(obs, labels, mask))
    (bias_grad,) = torch.autograd.grad(loss, [params["logits.2.bias"]])
    probs = discrete(obs)[0].exp()  # d/d(bias) of cross-entropy is softmax - one-hot
    residual = probs - torch.nn.functional.one_hot(labels, 3)
    expected = (residual * mask.unsqueeze(-1)).sum((0, 1)) / mask.sum()
    torch.testing.assert_close(bias_grad, expected.detach())


def test_demo_tasks_hand_out_distinct_demos_in_the_policy_scale(nav_demos):
    # mark each demonstration: task t, demo d acts (10 t + d) / 1000 on both axes
    t_idx, d_idx = torch.meshgrid(torch.arange(6), torch.arange(3), indexing="ij")
    marks = (10 * t_idx + d_idx).float() / 1000
    marked = dataclasses.replace(
        nav_demos, expert_actions=marks[:, :, None, None].expand_as(nav_demos.actions).clone()
    )
    tasks = DemoTasks(NAV, marked, seed=3)
    support, query = tasks.sample(4, demos_per_task=(1, 2))
    assert support.observations.shape[:2] == (4, 1) and query.actions.shape[:2] == (4, 2)
    ids = tasks.last_task_ids
    assert len(set(ids.tolist())) == 4
    for i, t in enumerate(ids):
        # the policy's labels are the environment's divided by the box's half-range 0.1
        picked = torch.stack([support.actions[i, 0, 0, 0], *query.actions[i, :, 0, 0]])
        code = torch.round(picked * 100).long()  # (10 t + d) / 1000 / 0.1 * 100 = 10 t + d
        assert (code // 10 == int(t)).all()
        assert len(set((code % 10).tolist())) == 3  # three different demonstrations of task t
    with pytest.raises(ValueError, match="at most 3 demonstrations"):
        tasks.sample(2, demos_per_task=(2, 2))
    with pytest.raises(ValueError, match="demonstrates"):
        DemoTasks("metarl/HalfCheetahVel-v1", nav_demos)


def _mil_meta_loss(learner, policy, support, query):
    return learner.meta_losses(bc_loss(policy), support, bc_loss(policy), query).mean()


def test_mil_meta_gradient_matches_a_task_loop_and_finite_differences(nav_demos):
    torch.manual_seed(0)
    support, query = DemoTasks(NAV, nav_demos).sample(4)
    support, query = (DemoData(*(t.double() for t in d)) for d in (support, query))
    policy = GaussianMLPPolicy(2, 2, hidden=(16,)).double()
    vmapped, looped = MAML(policy, inner_lr=0.5), MAML(policy, inner_lr=0.5, batching="loop")
    grads = [
        torch.autograd.grad(
            _mil_meta_loss(learner, policy, support, query), list(policy.mean.parameters())
        )
        for learner in (vmapped, looped)
    ]
    for g_vmap, g_loop in zip(*grads):
        torch.testing.assert_close(g_vmap, g_loop)
    weight, eps = policy.mean[0].weight, 1e-6  # finite differences on two entries
    for index in ((0, 0), (5, 1)):
        with torch.no_grad():
            weight[index] += eps
            up = _mil_meta_loss(vmapped, policy, support, query)
            weight[index] -= 2 * eps
            down = _mil_meta_loss(vmapped, policy, support, query)
            weight[index] += eps
        numeric = (up - down) / (2 * eps)
        torch.testing.assert_close(grads[0][0][index], numeric, rtol=1e-5, atol=1e-8)


def test_sampler_reports_final_observations_and_most_likely_actions():
    policy = GaussianMLPPolicy.for_env(NAV, hidden=(8,))
    for fast in (True, False):
        sampler = MultiTaskSampler(NAV, 2, 7, seed=0, fast=fast)
        tasks = sampler.sample_tasks(3)
        episodes = sampler.sample(tasks, policy, deterministic=True)
        mean = policy(episodes.observations)[0]
        torch.testing.assert_close(episodes.actions, mean.detach())  # the mode, not a sample
        sampled = sampler.sample(tasks, policy).actions
        assert (sampled - episodes.actions).abs().max() > 0.1
        moved = episodes.observations[:, :, -1] + 0.1 * episodes.actions[:, :, -1].clamp(-1, 1)
        torch.testing.assert_close(episodes.final_observations, moved)
        assert not episodes.terminated.any()


def test_a_few_hundred_mil_iterations_beat_the_untrained_policy():
    from metarl.imitation.evaluate import adapted_rollouts

    torch.manual_seed(0)
    noisy = Navigation2DExpert(noise=0.3)  # noise injection: states around the expert's path
    train = DemoTasks(NAV, generate_demos(NAV, noisy, 40, 4, 100, seed=0), seed=0)
    held_out = DemoTasks(NAV, generate_demos(NAV, Navigation2DExpert(), 20, 1, 100, seed=1))
    support, _ = held_out.sample(20, (1, 0), task_ids=range(20))
    sampler = MultiTaskSampler(NAV, 1, 100, seed=2)
    policy = GaussianMLPPolicy.for_env(NAV, hidden=(64, 64))
    learner = MAML(policy, inner_lr=0.1)

    def score() -> float:
        episodes = adapted_rollouts(learner, support, held_out.tasks, sampler)
        return episodes.mean_return().mean().item()

    untrained = score()
    optimiser = torch.optim.Adam(policy.parameters(), 1e-3)
    for _ in range(400):
        s, q = train.sample(10)
        loss = learner.meta_losses(bc_loss(policy), s, bc_loss(policy), q).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    trained = score()
    # returns are minus the distance to the goal summed over up to 100 steps
    assert trained > 0.5 * untrained, (untrained, trained)


def test_random_starts_are_drawn_per_episode_and_match_between_vector_and_single_envs():
    env_id = "metarl/Navigation2DRandomStart-v0"
    firsts = []
    for fast in (True, False):
        sampler = MultiTaskSampler(env_id, 3, 5, seed=4, fast=fast, task_in_observation=True)
        tasks = sampler.sample_tasks(2)
        episodes = sampler.sample(tasks, Navigation2DExpert(), deterministic=True)
        firsts.append(episodes.observations[:, :, 0, :2])
    starts = firsts[0].reshape(-1, 2)
    assert torch.equal(firsts[0], firsts[1])  # the vector form draws the same starts
    assert starts.abs().max() <= 0.5 and len(set(map(tuple, starts.tolist()))) == 6
    origin = MultiTaskSampler(NAV, 3, 5, seed=4, task_in_observation=True)
    plain = origin.sample(origin.sample_tasks(2), Navigation2DExpert(), deterministic=True)
    assert (plain.observations[:, :, 0, :2] == 0).all()


def test_datasets_save_to_a_relative_path(nav_demos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = save_demos(nav_demos, "demos/nav")
    assert path == tmp_path / "demos" / "nav"
    assert torch.equal(load_demos("demos/nav").observations, nav_demos.observations)


def test_the_dataset_s_environment_keywords_set_the_expert_and_the_action_scale():
    # moves of at most 0.05: the expert's full move and the policy's label 1 are 0.05 each
    kwargs = {"max_step": 0.05}
    expert = make_expert(NAV, env_kwargs=kwargs)
    demos = generate_demos(
        NAV, expert, num_tasks=3, demos_per_task=1, horizon=40, env_kwargs=kwargs
    )
    assert demos.info["env_kwargs"] == kwargs
    assert demos.actions.abs().max() == pytest.approx(0.05)
    support, _ = DemoTasks(NAV, demos).sample(3, (1, 0), task_ids=range(3))
    goals = torch.tensor([task["goal"] for task in demos.tasks], dtype=torch.float32)
    first = (goals / 0.05).clamp(-1, 1)  # from the origin, in units of the largest move
    assert torch.allclose(support.actions[:, 0, 0], first, atol=1e-6)


class _ReportsItsOwnFeatures(Navigation2D):
    """A distribution whose oracle numbers are not its task's fields."""

    def task_features(self):
        return np.array([7.0, 8.0, 9.0])


def test_oracles_see_an_environment_s_own_task_features():
    plain = gym.make(NAV).unwrapped
    assert np.array_equal(task_features(plain), flatten_task(plain.task))
    env = TaskInObservation(_ReportsItsOwnFeatures())
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (5,)
    assert np.array_equal(obs[2:], [7.0, 8.0, 9.0])
