"""Batched MuJoCo stepping reproduces each environment's own step exactly."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from metarl.envs.batched import BatchedMujoco
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler

MUJOCO_IDS = [
    "metarl/HalfCheetahVel-v0",
    "metarl/HalfCheetahDir-v0",
    "metarl/AntVel-v0",
    "metarl/AntDir-v0",
    "metarl/AntGoal-v0",
]


def _make(env_id: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, disable_env_checker=True).unwrapped


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_batched_steps_equal_single_environment_steps(env_id):
    n = 5
    envs, refs = [_make(env_id) for _ in range(n)], [_make(env_id) for _ in range(n)]
    tasks = envs[0].sample_tasks(n, np.random.default_rng(0))
    for env, ref, task in zip(envs, refs, tasks):
        env.set_task(task)
        ref.set_task(task)
    batched = BatchedMujoco(envs, threads=2)
    obs = batched.reset(range(n))
    np.testing.assert_array_equal(obs, np.stack([r.reset(seed=i)[0] for i, r in enumerate(refs)]))
    rng = np.random.default_rng(1)
    alive = np.ones(n, dtype=bool)
    for _ in range(50):
        actions = rng.uniform(-1, 1, (n, envs[0].model.nu))
        active = np.flatnonzero(alive)
        obs, reward, terminated = batched.step(actions, active)
        for j, i in enumerate(active):
            ref_obs, ref_reward, ref_terminated, _, _ = refs[i].step(actions[i])
            np.testing.assert_array_equal(obs[j], ref_obs)
            assert reward[j] == ref_reward and terminated[j] == ref_terminated
            alive[i] = not ref_terminated


@pytest.mark.parametrize("env_id", ["metarl/HalfCheetahVel-v0", "metarl/AntVel-v0"])
def test_sampler_fast_path_gives_the_generic_path_episodes(env_id):
    policy = GaussianMLPPolicy.for_env(env_id, hidden=(16,))
    runs = []
    for fast in (True, False):
        sampler = MultiTaskSampler(env_id, 3, 30, seed=0, fast=fast)
        assert sampler.fast is fast
        runs.append(sampler.sample(sampler.sample_tasks(3), policy))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_batched_rejects_mixed_environments():
    with pytest.raises(ValueError, match="one class"):
        BatchedMujoco([_make("metarl/AntVel-v0"), _make("metarl/AntDir-v0")])
    with pytest.raises(ValueError, match="at least one"):
        BatchedMujoco([])
