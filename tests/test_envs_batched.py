"""The MuJoCo vector environments reproduce each environment's own step exactly."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler

MUJOCO_IDS = [
    "metarl/HalfCheetahVel-v0",
    "metarl/HalfCheetahDir-v0",
    "metarl/AntVel-v0",
    "metarl/AntDir-v0",
    "metarl/AntGoal-v0",
    "metarl/HalfCheetahVel-v1",
    "metarl/AntDir-v1",
]
# rllab's HalfCheetah observation: the robot's centre of mass appended
CASES = [(env_id, {}) for env_id in MUJOCO_IDS] + [
    ("metarl/HalfCheetahDir-v1", {"centre_of_mass": True})
]


def _make(env_id: str, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_vector_steps_equal_single_environment_steps(env_id, kwargs):
    n = 5
    vec = gym.make_vec(env_id, n, vectorization_mode="vector_entry_point", threads=2, **kwargs)
    refs = [_make(env_id, **kwargs) for _ in range(n)]
    tasks = vec.sample_tasks(n, np.random.default_rng(0))
    vec.set_tasks(tasks)
    for ref, task in zip(refs, tasks):
        ref.set_task(task)
    obs, _ = vec.reset(seed=list(range(n)))
    np.testing.assert_array_equal(obs, np.stack([r.reset(seed=i)[0] for i, r in enumerate(refs)]))
    rng = np.random.default_rng(1)
    alive = np.ones(n, dtype=bool)
    for _ in range(50):
        actions = rng.uniform(-1.5, 1.5, (n, refs[0].model.nu))  # some outside the box
        obs, reward, terminated, _, _ = vec.step(actions)
        for i in np.flatnonzero(alive):
            ref_obs, ref_reward, ref_terminated, _, _ = refs[i].step(actions[i])
            np.testing.assert_array_equal(obs[i], ref_obs)
            assert reward[i] == ref_reward and terminated[i] == ref_terminated
            alive[i] = not ref_terminated


@pytest.mark.parametrize("env_id", ["metarl/HalfCheetahVel-v0", "metarl/AntVel-v0"])
def test_sampler_vector_form_gives_the_per_copy_loops_episodes(env_id):
    policy = GaussianMLPPolicy.for_env(env_id, hidden=(16,))
    runs = []
    for fast in (True, False):
        # one torch thread in both: the comparison is of the physics, not of matmul order
        sampler = MultiTaskSampler(env_id, 3, 30, seed=0, fast=fast, policy_threads=1)
        assert sampler.vectorised is fast
        runs.append(sampler.sample(sampler.sample_tasks(3), policy))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_a_task_of_another_distribution_is_refused_naming_the_copy():
    vec = gym.make_vec("metarl/AntVel-v0", 2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="task 1 was rejected.*no task was changed"):
        vec.set_tasks([{"velocity": 1.0}, {"direction": 1.0}])
