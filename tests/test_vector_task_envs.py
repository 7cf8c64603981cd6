"""Vector forms of the task distributions: the same episodes as the single environments,
all-or-nothing tasks, Gymnasium's make_vec, and the sampler's use of them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from metarl.envs import TaskEnv, TaskVectorEnv, register_task_distribution
from metarl.envs.bandits import BernoulliBandit
from metarl.envs.navigation import Navigation2D, Navigation2DVector
from metarl.rl import CategoricalMLPPolicy, GaussianMLPPolicy, MultiTaskSampler

CASES = [
    ("metarl/Navigation2D-v0", {}),
    ("metarl/BernoulliBandit-v0", {"arms": 4, "pulls": 6}),
    ("metarl/GaussianBandit-v0", {"arms": 3, "pulls": 6}),
]


def _actions(env: gym.Env, n: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=(steps, n))
    return rng.uniform(-0.15, 0.15, size=(steps, n, *space.shape)).astype(np.float32)


@pytest.mark.parametrize("env_id, kwargs", CASES, ids=[c[0].split("/")[1] for c in CASES])
def test_vector_form_steps_exactly_as_the_single_environments(env_id, kwargs):
    n, steps, seeds = 5, 40, [11, 12, 13, 14, 15]
    vec = gym.make_vec(env_id, n, vectorization_mode="vector_entry_point", max_episode_steps=30,
                       **kwargs)  # fmt: skip
    singles = [gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped for _ in range(n)]
    tasks = vec.sample_tasks(n, np.random.default_rng(0))
    vec.set_tasks(tasks)
    for env, task in zip(singles, tasks):
        env.set_task(task)
    obs, _ = vec.reset(seed=seeds)
    expected = np.stack([env.reset(seed=s)[0] for env, s in zip(singles, seeds)])
    np.testing.assert_array_equal(obs, expected)
    done = np.zeros(n, dtype=bool)
    frozen = obs.copy()
    for h, action in enumerate(_actions(singles[0], n, steps, np.random.default_rng(1))):
        obs, reward, terminated, truncated, _ = vec.step(action)
        for i, env in enumerate(singles):
            if done[i]:  # a finished copy stays as it ended until reset
                np.testing.assert_array_equal(obs[i], frozen[i])
                assert reward[i] == 0 and not terminated[i] and not truncated[i]
                continue
            o, r, term, _, _ = env.step(action[i])
            np.testing.assert_array_equal(obs[i], o)
            assert reward[i] == pytest.approx(r, rel=1e-15, abs=0)
            assert terminated[i] == term and truncated[i] == (not term and h + 1 >= 30)
            if terminated[i] or truncated[i]:
                done[i], frozen[i] = True, obs[i]
    assert done.all()  # every copy ended by termination or the 30-step limit


def test_a_copy_that_reaches_its_goal_terminates_and_stays_there():
    vec = Navigation2DVector(2)
    vec.set_tasks([{"goal": [0.05, 0.05]}, {"goal": [0.3, 0.3]}])
    vec.reset(seed=0)
    toward = np.full((2, 2), 0.05, dtype=np.float32)
    obs, reward, terminated, _, _ = vec.step(toward)
    assert terminated.tolist() == [True, False] and reward[0] == pytest.approx(0.0, abs=1e-6)
    obs, reward, terminated, _, _ = vec.step(toward)
    assert obs[0].tolist() == pytest.approx([0.05, 0.05]) and reward[0] == 0 and not terminated[0]
    assert obs[1].tolist() == pytest.approx([0.1, 0.1])


def test_set_tasks_is_all_or_nothing_and_names_the_bad_task():
    vec = Navigation2DVector(3)
    good = vec.sample_tasks(3, np.random.default_rng(0))
    vec.set_tasks(good)
    with pytest.raises(ValueError, match=r"task 2 was rejected: .*goal.*no task was changed"):
        vec.set_tasks([*good[:2], {"goal": [5.0, 0.0]}])
    assert vec.tasks == good
    with pytest.raises(ValueError, match="got 2 tasks for 3 copies"):
        vec.set_tasks(good[:2])


def test_an_int_seed_seeds_copy_i_with_seed_plus_i_and_reset_mask_resets_only_those():
    vec = gym.make_vec("metarl/BernoulliBandit-v0", 3, vectorization_mode="vector_entry_point",
                       arms=2, pulls=50)  # fmt: skip
    vec.set_tasks([{"probs": [0.5, 0.5]}] * 3)
    vec.reset(seed=7)
    pulls = np.stack([vec.step(np.zeros(3, dtype=int))[1] for _ in range(20)])
    single = BernoulliBandit(arms=2, pulls=50)
    single.set_task({"probs": [0.5, 0.5]})
    for i in range(3):
        single.reset(seed=7 + i)
        np.testing.assert_array_equal(pulls[:, i], [single.step(0)[1] for _ in range(20)])
    vec.reset(seed=np.int64(7))  # a NumPy integer seeds as the int does
    again = np.stack([vec.step(np.zeros(3, dtype=int))[1] for _ in range(20)])
    np.testing.assert_array_equal(again, pulls)
    obs, _ = vec.reset(options={"reset_mask": np.array([True, False, False])})
    assert obs[0].sum() == 0 and obs[1].sum() > 0  # copy 0 restarted, copy 1 kept its last pull


def test_make_vec_picks_the_vector_form_and_the_sampler_uses_it():
    assert isinstance(gym.make_vec("metarl/Navigation2D-v0", 2).unwrapped, Navigation2DVector)
    assert MultiTaskSampler("metarl/Navigation2D-v0", 2, 10).vectorised
    assert not MultiTaskSampler("metarl/Navigation2D-v0", 2, 10, fast=False).vectorised


@pytest.mark.parametrize("env_id, kwargs", CASES, ids=[c[0].split("/")[1] for c in CASES])
def test_the_sampler_collects_the_same_episodes_with_and_without_the_vector_form(env_id, kwargs):
    torch.manual_seed(0)
    if "arms" in kwargs:  # observation: last arm, last reward, and the task's arms
        policy = CategoricalMLPPolicy(2 * kwargs["arms"] + 1, kwargs["arms"], hidden=(8,))
    else:
        policy = GaussianMLPPolicy.for_env(env_id, extra_obs=2, hidden=(8,))
    episodes = []
    for fast in (True, False):
        sampler = MultiTaskSampler(env_id, 4, 100, seed=3, env_kwargs=kwargs, fast=fast,
                                   task_in_observation=True)  # fmt: skip
        episodes.append(sampler.sample(sampler.sample_tasks(5), policy))
    for field in ("observations", "actions", "rewards", "mask"):
        assert torch.equal(getattr(episodes[0], field), getattr(episodes[1], field)), field


def test_register_task_distribution_checks_the_vector_form():
    class Other(TaskVectorEnv):
        single_env_class = BernoulliBandit

    with pytest.raises(TypeError, match="single_env_class must be Navigation2D"):
        register_task_distribution("test/NavOther-v0", Navigation2D, vector_entry_point=Other)
    with pytest.raises(TypeError, match="not a TaskVectorEnv subclass"):
        register_task_distribution("test/NavOther-v0", Navigation2D, vector_entry_point=dict)
    vector = Navigation2DVector
    register_task_distribution(
        "test/NavVec-v0", Navigation2D, vector_entry_point=vector, replace=True
    )
    assert MultiTaskSampler("test/NavVec-v0", 2, 10).vectorised


class _Diverging(TaskEnv):
    """Ends after ``task["steps"]`` steps on a non-finite observation (a diverged simulation)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        self.set_task({"steps": 2})

    def draw_task(self, rng):
        return {"steps": int(rng.integers(1, 4))}

    def validate_task(self, task):
        return {"steps": int(task["steps"])}

    def apply_task(self, task):
        self._steps = task["steps"]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self._t += 1
        ended = self._t >= self._steps
        return np.array([np.nan if ended else self._t], np.float32), 1.0, ended, False, {}


def test_padded_steps_after_a_non_finite_terminal_observation_hold_zeros():
    register_task_distribution("test/Diverging-v0", _Diverging, replace=True)
    policy = GaussianMLPPolicy(1, 1, hidden=(4,))
    sampler = MultiTaskSampler("test/Diverging-v0", 2, 6, seed=0)
    episodes = sampler.sample([{"steps": 1}, {"steps": 3}], policy)
    assert torch.isfinite(episodes.observations).all()
    assert episodes.mask.sum(-1).tolist() == [[1, 1], [3, 3]]
    assert (episodes.observations[episodes.mask == 0] == 0).all()
