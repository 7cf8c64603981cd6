"""The Meta-World adapter: a clear error without the extra, the task protocol with it."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest

import metarl  # noqa: F401

HAS_METAWORLD = importlib.util.find_spec("metaworld") is not None


@pytest.mark.skipif(HAS_METAWORLD, reason="checks the message shown when the extra is missing")
@pytest.mark.parametrize("env_id", ["metarl/MetaWorldML1-v0", "metarl/MetaWorldML10-v0"])
def test_without_the_extra_make_says_how_to_install_it(env_id):
    with pytest.raises(ImportError, match=r"metarl\[metaworld\].*mujoco==3.3.0"):
        gym.make(env_id)


@pytest.mark.skipif(not HAS_METAWORLD, reason="needs the optional extra metarl[metaworld]")
def test_ml1_tasks_change_the_goal_and_step():
    env = gym.make("metarl/MetaWorldML1-v0", env_name="reach-v3", seed=0).unwrapped
    tasks = env.sample_tasks(2, np.random.default_rng(0))
    assert all(t["env_name"] == "reach-v3" for t in tasks)
    goals = []
    for index in (0, 1):
        env.set_task({"env_name": "reach-v3", "index": index})
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        obs, reward, terminated, truncated, info = env.step(np.zeros(4, dtype=np.float32))
        assert np.isfinite(reward) and "success" in info
        goals.append(env._current._target_pos.copy())
    assert not np.allclose(goals[0], goals[1])


@pytest.mark.skipif(not HAS_METAWORLD, reason="needs the optional extra metarl[metaworld]")
def test_ml10_splits_hold_their_environments():
    train = gym.make("metarl/MetaWorldML10-v0", split="train").unwrapped
    test = gym.make("metarl/MetaWorldML10-v0", split="test").unwrapped
    names = {t["env_name"] for t in train.sample_tasks(200, np.random.default_rng(0))}
    held_out = {t["env_name"] for t in test.sample_tasks(100, np.random.default_rng(0))}
    assert len(names) == 10 and len(held_out) == 5 and not names & held_out


@pytest.mark.skipif(HAS_METAWORLD, reason="checks the message shown when the extra is missing")
def test_without_the_extra_the_scripted_expert_says_how_to_install_it():
    from metarl.imitation import make_expert

    with pytest.raises(ImportError, match=r"metarl\[metaworld\]"):
        make_expert("metarl/MetaWorldML1-v0", env_kwargs={"env_name": "push-v3"})


@pytest.mark.skipif(not HAS_METAWORLD, reason="needs the optional extra metarl[metaworld]")
def test_the_oracle_sees_the_goal_that_ml1_hides_and_success_can_end_episodes():
    env = gym.make(
        "metarl/MetaWorldML1-v0", env_name="reach-v3", terminate_on_success=True
    ).unwrapped
    env.set_task({"env_name": "reach-v3", "index": 3})
    obs, _ = env.reset(seed=0)
    goal = env.task_features()
    assert np.array_equal(goal, env._current._target_pos) and np.all(obs[36:39] == 0)
    for _ in range(200):  # straight at the goal, Meta-World's reach expert's rule
        obs, _, terminated, truncated, info = env.step(np.append(10 * (goal - obs[:3]), 0.0))
        if terminated:
            break
    assert terminated and info["success"] and not truncated


@pytest.mark.skipif(not HAS_METAWORLD, reason="needs the optional extra metarl[metaworld]")
@pytest.mark.parametrize("env_name", ["reach-v3", "push-v3"])
def test_the_scripted_experts_succeed_on_held_out_tasks(env_name):
    from metarl.imitation import generate_demos, make_expert

    kwargs = {"env_name": env_name, "split": "test", "terminate_on_success": True}
    expert = make_expert("metarl/MetaWorldML1-v0", env_kwargs=kwargs)
    demos = generate_demos("metarl/MetaWorldML1-v0", expert, 4, 1, 200, env_kwargs=kwargs)
    assert demos.terminated.all()  # every demonstration ends in success
    assert demos.observations.shape[-1] == 39 and demos.actions.abs().max() <= 1


@pytest.mark.skipif(not HAS_METAWORLD, reason="needs the optional extra metarl[metaworld]")
def test_hand_starts_vary_with_the_reset_seed_only_when_asked():
    def hand_starts(hand_init_range, seeds):
        env = gym.make(
            "metarl/MetaWorldML1-v0", env_name="reach-v3", hand_init_range=hand_init_range
        ).unwrapped
        env.set_task({"env_name": "reach-v3", "index": 0})
        return np.array([env.reset(seed=seed)[0][:3] for seed in seeds])

    fixed = hand_starts(0.0, [0, 1])
    assert np.allclose(fixed[0], fixed[1])  # Meta-World ignores the seed
    moved = hand_starts(0.1, [0, 1, 0])
    assert np.allclose(moved[0], moved[2]) and not np.allclose(moved[0], moved[1])
    assert np.abs(moved - fixed[0]).max() <= 0.1 + 0.01  # the hand settles near its target
