"""User registration, per-sub-environment tasks in vector envs, and the observation wrappers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import metarl  # noqa: F401
from helpers import load_experiment
from metarl.envs import (
    PreviousStepInObservation,
    TaskInObservation,
    check_task_distribution,
    register_task_distribution,
    set_tasks,
)
from metarl.envs.navigation import Navigation2D


def test_the_documented_example_registers_and_passes_the_checker():
    from gymnasium.utils.env_checker import check_env

    load_experiment("custom_task_distribution")
    env = gym.make("mylab/WindyPoint-v0")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(env.unwrapped, skip_render_check=True)
    env.unwrapped.set_task({"wind": [0.05, -0.05]})
    env.reset(seed=0)
    obs, *_ = env.step(np.zeros(2, dtype=np.float32))
    np.testing.assert_allclose(obs, [1.05, 0.95])
    with pytest.raises(ValueError, match="wind"):
        env.unwrapped.set_task({"wind": [0.5, 0.0]})


class _NoTasks(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Discrete(2)


class _TaskNotAProperty(_NoTasks):
    def sample_tasks(self, num_tasks, rng=None):
        return []

    def set_task(self, task):
        pass

    task = {}


def test_registration_checks_the_protocol():
    with pytest.raises(TypeError, match=r"missing \['sample_tasks', 'set_task', 'task'\]"):
        register_task_distribution("mylab/NoTasks-v0", _NoTasks)
    with pytest.raises(TypeError, match="property"):
        check_task_distribution(_TaskNotAProperty)
    with pytest.raises(TypeError, match="gymnasium.Env"):
        check_task_distribution(dict)
    assert "mylab/NoTasks-v0" not in gym.registry


def test_registering_an_existing_id_needs_replace():
    with pytest.raises(ValueError, match="already registered"):
        register_task_distribution("metarl/Navigation2D-v0", Navigation2D)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_env_keeps_a_task_per_sub_environment(mode):
    goals = [[0.1, 0.2], [-0.3, 0.4], [0.5, -0.5]]
    envs = gym.make_vec("metarl/Navigation2D-v0", num_envs=3, vectorization_mode=mode)
    try:
        set_tasks(envs, [{"goal": g} for g in goals])
        assert [t["goal"] for t in envs.get_attr("task")] == goals
        envs.reset(seed=0)
        action = np.full((3, 2), 0.05, dtype=np.float32)
        for _ in range(3):
            obs, reward, *_ = envs.step(action)
        expected = -np.linalg.norm(np.full((3, 2), 0.15) - np.array(goals), axis=1)
        np.testing.assert_allclose(reward, expected, rtol=1e-6)
        with pytest.raises(ValueError, match="3 sub-environments"):
            set_tasks(envs, [{"goal": [0.0, 0.0]}])
    finally:
        envs.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_bad_task_changes_no_sub_environment(mode):
    envs = gym.make_vec("metarl/Navigation2D-v0", num_envs=3, vectorization_mode=mode)
    try:
        good = [{"goal": [0.1, 0.1]}, {"goal": [0.2, 0.2]}, {"goal": [0.3, 0.3]}]
        set_tasks(envs, good)
        with pytest.raises(ValueError, match="goal") as error:
            set_tasks(envs, [{"goal": [0.0, 0.0]}, {"goal": [9.0, 0.0]}, {"goal": [0.0, 0.1]}])
        assert "task 1 was rejected" in str(error.value)
        assert list(envs.get_attr("task")) == good  # the first task was not applied either
    finally:
        envs.close()


def test_task_in_observation_appends_the_current_task():
    env = TaskInObservation(gym.make("metarl/Navigation2D-v0"))
    env.unwrapped.set_task({"goal": [0.25, -0.125]})
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, [0.0, 0.0, 0.25, -0.125])
    assert env.observation_space.shape == (4,) and env.observation_space.contains(obs)
    env.unwrapped.set_task({"goal": [0.5, 0.5]})
    obs, *_ = env.step(np.array([0.1, 0.0], dtype=np.float32))
    np.testing.assert_allclose(obs, [0.1, 0.0, 0.5, 0.5], rtol=1e-6)


def test_previous_step_in_observation_for_discrete_and_continuous_actions():
    bandit = PreviousStepInObservation(gym.make("metarl/BernoulliBandit-v0", arms=3, pulls=2))
    bandit.unwrapped.set_task({"probs": [0.0, 0.0, 1.0]})
    obs, _ = bandit.reset(seed=0)
    assert obs.shape == (3 + 1 + 3 + 2,) and not obs.any()
    obs, *_ = bandit.step(2)
    np.testing.assert_array_equal(obs[-5:], [0, 0, 1, 1, 0])  # one-hot arm, reward, not done
    obs, *_ = bandit.step(0)
    np.testing.assert_array_equal(obs[-5:], [1, 0, 0, 0, 1])  # done after the second pull

    nav = PreviousStepInObservation(gym.make("metarl/Navigation2D-v0"))
    nav.reset(seed=0)
    obs, reward, *_ = nav.step(np.array([0.05, -0.02], dtype=np.float32))
    np.testing.assert_allclose(obs[2:], [0.05, -0.02, reward, 0.0], rtol=1e-6)
