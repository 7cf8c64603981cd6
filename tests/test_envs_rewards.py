"""Rewards and terminations against the papers' formulas at hand-set states."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import metarl  # noqa: F401


def make(env_id: str, **kwargs) -> gym.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped


def _hand_set_state(env, seed: int = 0):
    rng = np.random.default_rng(seed)
    qpos = env.model.qpos0 + rng.uniform(-0.1, 0.1, env.model.nq)
    qvel = rng.normal(0, 0.5, env.model.nv)
    action = rng.uniform(-1, 1, env.model.nu)
    return qpos, qvel, action


def _reference_step(env, qpos, qvel, action, contact_forces: bool):
    """Step a separate MjData by hand: forward x velocity, next state, clipped cfrc_ext."""
    data = mujoco.MjData(env.model)
    data.qpos[:], data.qvel[:] = qpos, qvel
    mujoco.mj_forward(env.model, data)
    x0 = data.qpos[0]
    data.ctrl[:] = action
    data.qacc_warmstart[:] = 0.0  # the environment starts each step's solver cold
    for _ in range(4):
        mujoco.mj_step(env.model, data)
    cfrc = np.zeros_like(data.cfrc_ext)
    if contact_forces:  # the forces of the last substep's state (what its mj_forward computes)
        mujoco.mj_forward(env.model, data)
        data.cfrc_ext[:] = 0.0
        mujoco.mj_rnePostConstraint(env.model, data)
        cfrc = np.clip(data.cfrc_ext, -1, 1)
    mujoco.mj_step(env.model, data)
    v = (data.qpos[0] - x0) / (5 * env.model.opt.timestep)
    return v, data, cfrc


@pytest.mark.parametrize("target", [0.0, 1.3, 2.0])
def test_half_cheetah_vel_reward(target):
    env = make("metarl/HalfCheetahVel-v0")
    env.reset(seed=0)
    env.set_task({"velocity": target})
    qpos, qvel, action = _hand_set_state(env)
    env.set_state(qpos, qvel)
    obs, reward, terminated, truncated, info = env.step(action)
    v, data, _ = _reference_step(env, qpos, qvel, action, contact_forces=False)
    assert abs(v) > 0.05  # the state moves: the check has something to compare
    assert reward == pytest.approx(-abs(v - target) - 0.05 * np.sum(action**2), rel=1e-9)
    assert info["forward_velocity"] == pytest.approx(v, rel=1e-9)
    np.testing.assert_allclose(obs, np.concatenate((data.qpos[1:], data.qvel)))
    assert not terminated and not truncated


@pytest.mark.parametrize("direction", [-1.0, 1.0])
def test_half_cheetah_dir_reward(direction):
    env = make("metarl/HalfCheetahDir-v0")
    env.reset(seed=0)
    env.set_task({"direction": direction})
    qpos, qvel, action = _hand_set_state(env, seed=1)
    env.set_state(qpos, qvel)
    _, reward, _, _, _ = env.step(action)
    v, _, _ = _reference_step(env, qpos, qvel, action, contact_forces=False)
    assert reward == pytest.approx(direction * v - 0.05 * np.sum(action**2), rel=1e-9)


def _ant_costs(action, cfrc):
    return 0.005 * np.sum((action / 1.0) ** 2) + 0.0005 * np.sum(cfrc**2)


def _ant_contact_state(env):
    """A state with the ant standing on the floor, so contact forces are not zero."""
    qpos, qvel, action = _hand_set_state(env, seed=2)
    qpos[2] = 0.3
    return qpos, qvel * 0.1, action


@pytest.mark.parametrize("target", [0.0, 1.0, 3.0])
def test_ant_vel_reward(target):
    env = make("metarl/AntVel-v0")
    env.reset(seed=0)
    env.set_task({"velocity": target})
    qpos, qvel, action = _ant_contact_state(env)
    env.set_state(qpos, qvel)
    obs, reward, terminated, _, _ = env.step(action)
    v, data, cfrc = _reference_step(env, qpos, qvel, action, contact_forces=True)
    assert np.abs(cfrc).sum() > 0  # contact cost is exercised
    expected = -abs(v - target) + 1.0 - _ant_costs(action, cfrc) + 0.05
    assert reward == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(obs, np.concatenate((data.qpos[2:], data.qvel, cfrc[1:].ravel())))
    assert not terminated


@pytest.mark.parametrize("direction", [-1.0, 1.0])
def test_ant_dir_reward(direction):
    env = make("metarl/AntDir-v0")
    env.reset(seed=0)
    env.set_task({"direction": direction})
    qpos, qvel, action = _ant_contact_state(env)
    env.set_state(qpos, qvel)
    _, reward, _, _, _ = env.step(action)
    v, _, cfrc = _reference_step(env, qpos, qvel, action, contact_forces=True)
    assert reward == pytest.approx(direction * v - _ant_costs(action, cfrc) + 0.05, rel=1e-9)


def test_ant_goal_reward():
    env = make("metarl/AntGoal-v0")
    env.reset(seed=0)
    env.set_task({"goal": [1.5, -2.0]})
    qpos, qvel, action = _ant_contact_state(env)
    env.set_state(qpos, qvel)
    _, reward, _, _, _ = env.step(action)
    _, data, cfrc = _reference_step(env, qpos, qvel, action, contact_forces=True)
    distance = math.hypot(data.qpos[0] - 1.5, data.qpos[1] + 2.0)
    assert reward == pytest.approx(-distance - _ant_costs(action, cfrc) + 0.05, rel=1e-9)


@pytest.mark.parametrize(
    "height, fall_speed, terminated",
    [(0.55, 0.0, False), (0.95, 0.0, False), (1.0, 0.0, True), (0.25, 50.0, True)],
)
def test_ant_terminates_when_the_torso_leaves_the_height_range(height, fall_speed, terminated):
    env = make("metarl/AntVel-v0")
    env.reset(seed=0)
    qpos, qvel = env.model.qpos0.copy(), np.zeros(env.model.nv)
    qpos[2], qvel[2] = height, -fall_speed
    env.set_state(qpos, qvel)
    _, _, done, _, _ = env.step(np.zeros(env.model.nu))
    _, data, _ = _reference_step(env, qpos, qvel, np.zeros(env.model.nu), contact_forces=True)
    assert (not 0.2 <= data.qpos[2] <= 1.0) is terminated  # the case is on the intended side
    assert done is terminated


def test_ant_terminates_on_a_non_finite_state():
    env = make("metarl/AntVel-v0")
    env.reset(seed=0)
    qvel = np.zeros(env.model.nv)
    qvel[6] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.set_state(env.model.qpos0.copy(), qvel)
        _, _, done, _, _ = env.step(np.zeros(env.model.nu))
    assert done


def test_navigation_reward_clipping_and_goal_termination():
    env = make("metarl/Navigation2D-v0")
    env.set_task({"goal": [0.3, -0.2]})
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    obs, reward, terminated, _, _ = env.step(np.array([0.5, 0.05]))  # x clipped to 0.1
    np.testing.assert_allclose(obs, [0.1, 0.05])
    assert reward == pytest.approx(-math.hypot(0.1 - 0.3, 0.05 + 0.2))
    assert not terminated
    env.step(np.array([0.1, -0.1]))
    env.step(np.array([0.1, -0.1]))
    _, reward, terminated, _, _ = env.step(np.array([0.0, -0.05]))  # lands on the goal
    assert terminated and reward == pytest.approx(0.0, abs=1e-9)


def test_navigation_horizon_is_100():
    env = gym.make("metarl/Navigation2D-v0")
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
        assert not terminated
        steps += 1
    assert steps == 100


def test_bernoulli_bandit_pays_with_the_arm_probability():
    env = make("metarl/BernoulliBandit-v0", arms=3, pulls=4000)
    env.set_task({"probs": [0.0, 1.0, 0.3]})
    env.reset(seed=0)
    assert env.step(0)[1] == 0.0 and env.step(1)[1] == 1.0
    pays = [env.step(2)[1] for _ in range(3000)]
    assert abs(np.mean(pays) - 0.3) < 0.03


def test_gaussian_bandit_pays_normal_around_the_arm_mean():
    env = make("metarl/GaussianBandit-v0", arms=2, pulls=5000)
    env.set_task({"means": [-1.0, 2.0]})
    env.reset(seed=0)
    pays = np.array([env.step(1)[1] for _ in range(4000)])
    assert abs(pays.mean() - 2.0) < 0.06 and abs(pays.std() - 1.0) < 0.05


def test_bandit_episode_length_and_previous_step_observation():
    env = make("metarl/BernoulliBandit-v0", arms=3, pulls=2)
    env.set_task({"probs": [0.0, 1.0, 0.0]})
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(4))
    obs, reward, terminated, _, _ = env.step(1)
    np.testing.assert_array_equal(obs, [0, 1, 0, 1])
    assert reward == 1.0 and not terminated
    assert env.step(0)[2]  # the second pull ends the episode
    one_pull = make("metarl/BernoulliBandit-v0")
    one_pull.reset(seed=0)
    assert one_pull.step(0)[2]


@pytest.mark.parametrize(
    "env_id, dt", [("metarl/HalfCheetahDir-v1", 0.01), ("metarl/AntVel-v1", 0.02)]
)
def test_v1_steps_at_the_maml_papers_time_step(env_id, dt):
    """rllab's models: one physics step of 0.01 s (HalfCheetah) or 0.02 s (Ant) per step."""
    env = make(env_id)
    env.reset(seed=0)
    t0 = env.data.time
    env.step(np.zeros(env.model.nu))
    assert env.dt == pytest.approx(dt) and env.data.time - t0 == pytest.approx(dt)


def test_v1_charges_the_control_cost_on_the_clipped_action_and_v0_on_the_given_one():
    action = np.array([3.0, -2.0, 0.5, 0.0, 1.0, -0.2])
    rewards = {}
    for version in ("v0", "v1"):
        env = make(f"metarl/HalfCheetahVel-{version}")
        env.reset(seed=0)
        env.set_task({"velocity": 1.0})
        _, rewards[version], _, _, info = env.step(action)
        rewards[version] = info["reward_ctrl"]
    assert rewards["v0"] == pytest.approx(-0.05 * np.sum(action**2))
    assert rewards["v1"] == pytest.approx(-0.05 * np.sum(np.clip(action, -1, 1) ** 2))


def test_centre_of_mass_observation_is_mujocos_subtree_com():
    """rllab's HalfCheetah observation: qpos[1:], qvel and the robot's centre of mass, which
    ``PlanarChain`` computes from qpos for a batch; MuJoCo's ``subtree_com`` is the reference."""
    env = make("metarl/HalfCheetahVel-v1", centre_of_mass=True)
    plain = make("metarl/HalfCheetahVel-v1")
    assert env.observation_space.shape == (20,) and plain.observation_space.shape == (17,)
    rng = np.random.default_rng(0)
    qpos = env.model.qpos0 + rng.normal(0, 1.0, (6, env.model.nq))
    qvel = rng.normal(0, 1.0, (6, env.model.nv))
    batch = env.observation_from(qpos, qvel, None)
    data = mujoco.MjData(env.model)
    for i in range(len(qpos)):
        data.qpos[:], data.qvel[:] = qpos[i], qvel[i]
        mujoco.mj_forward(env.model, data)
        np.testing.assert_allclose(batch[i, -3:], data.subtree_com[1], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(batch[i, :17], plain.observation_from(qpos[i], qvel[i], None))
    env.reset(seed=0)
    obs = env.step(rng.uniform(-1, 1, env.model.nu))[0]
    mujoco.mj_forward(env.model, env.data)  # the derived fields of the state after the step
    np.testing.assert_allclose(obs[-3:], env.data.subtree_com[1], rtol=0, atol=1e-12)


def test_planar_chain_refuses_a_model_that_is_not_planar():
    from metarl.envs.planar import PlanarChain

    with pytest.raises(ValueError, match="not a planar model: .*neither a hinge nor a slide"):
        PlanarChain(make("metarl/AntVel-v1").model)
