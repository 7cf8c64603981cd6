"""Every metarl/ id: Gymnasium's checker, README listing, task sampling and validation."""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import metarl  # noqa: F401
from metarl.envs import METAWORLD_IDS, registered_ids

ROOT = Path(__file__).resolve().parents[1]
HAS_METAWORLD = importlib.util.find_spec("metaworld") is not None
# The Meta-World ids need the optional extra; tests/test_envs_metaworld.py covers them either way.
IDS = [i for i in registered_ids() if HAS_METAWORLD or i not in METAWORLD_IDS]


def make(env_id: str) -> gym.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, disable_env_checker=True).unwrapped


def test_all_builtin_ids_are_registered():
    assert len(registered_ids()) == 16  # 11 distributions, 5 at the MAML paper's time step


@pytest.mark.parametrize("env_id", registered_ids())
def test_readme_lists_every_id(env_id):
    assert f"`{env_id}`" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_env_checker_passes(env_id):
    env = make(env_id)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("env_id", IDS)
def test_task_sampling_is_reproducible_and_json_serialisable(env_id):
    env = make(env_id)
    a = env.sample_tasks(5, np.random.default_rng(7))
    b = env.sample_tasks(5, np.random.default_rng(7))
    c = env.sample_tasks(5, np.random.default_rng(8))
    assert a == b and a != c
    assert json.loads(json.dumps(a)) == a
    for task in a:
        env.set_task(task)
        assert env.task == task


def _values(env_id: str, field: str, n: int = 2000) -> np.ndarray:
    tasks = make(env_id).sample_tasks(n, np.random.default_rng(0))
    return np.array([t[field] for t in tasks], dtype=np.float64)


def test_sampled_tasks_cover_their_ranges():
    for env_id, low, high in [
        ("metarl/HalfCheetahVel-v0", 0.0, 2.0),
        ("metarl/AntVel-v0", 0.0, 3.0),
    ]:
        v = _values(env_id, "velocity")
        assert low <= v.min() < low + 0.01 * high and high - 0.01 * high < v.max() <= high
    for env_id in ("metarl/HalfCheetahDir-v0", "metarl/AntDir-v0"):
        d = _values(env_id, "direction")
        assert set(d) == {-1.0, 1.0} and 0.4 < (d > 0).mean() < 0.6
    goals = _values("metarl/Navigation2D-v0", "goal")
    assert goals.min() >= -0.5 and goals.max() <= 0.5 and goals.min() < -0.49 and goals.max() > 0.49
    ant_goals = _values("metarl/AntGoal-v0", "goal")
    radii = np.linalg.norm(ant_goals, axis=1)
    assert radii.max() <= 3.0 and radii.max() > 2.95
    # Uniform in the disc: half the goals lie within radius 3 / sqrt(2).
    assert abs((radii < 3 / math.sqrt(2)).mean() - 0.5) < 0.05
    probs = _values("metarl/BernoulliBandit-v0", "probs", 500)
    assert probs.shape == (500, 5) and probs.min() >= 0 and probs.max() <= 1
    assert abs(probs.mean() - 0.5) < 0.02
    means = _values("metarl/GaussianBandit-v0", "means", 2000)
    assert abs(means.mean()) < 0.05 and abs(means.std() - 1) < 0.05


BAD_TASKS = {
    "metarl/HalfCheetahVel-v0": [({}, "velocity"), ({"velocity": 2.5}, r"\[0.0, 2.0\]"),
                                 ({"velocity": float("nan")}, "finite"),
                                 ({"velocity": [1.0]}, "number"),
                                 ({"velocity": 1.0, "extra": 1}, "extra")],
    "metarl/HalfCheetahDir-v0": [({"direction": 0.5}, "one of")],
    "metarl/AntVel-v0": [({"velocity": -0.1}, r"\[0.0, 3.0\]")],
    "metarl/AntDir-v0": [({"direction": "left"}, "number")],
    "metarl/AntGoal-v0": [({"goal": [3.0, 3.0]}, "norm"), ({"goal": [1.0]}, "length 2")],
    "metarl/Navigation2D-v0": [({"goal": [0.6, 0.0]}, r"\[-0.5, 0.5\]"),
                               ({"goal": [[0.1, 0.1]]}, "goal"),
                               ({"goal": [0.1, float("inf")]}, "finite")],
    "metarl/BernoulliBandit-v0": [({"probs": [0.1] * 4}, "length 5"),
                                  ({"probs": [0.1, 0.2, 0.3, 0.4, 1.5]}, r"\[0.0, 1.0\]")],
    "metarl/GaussianBandit-v0": [({"means": [0.0] * 5 + [1.0]}, "length 5"),
                                 ({"means": "high"}, "means")],
    "metarl/MetaWorldML1-v0": [({"env_name": "push-v3", "index": 0}, "env_name"),
                               ({"env_name": "reach-v3", "index": 50}, r"\[0, 49\]"),
                               ({"env_name": "reach-v3"}, "index")],
    "metarl/MetaWorldML10-v0": [({"env_name": "reach-v3", "index": 1.5}, "integer")],
}  # fmt: skip
BAD_TASKS["metarl/Navigation2DRandomStart-v0"] = BAD_TASKS["metarl/Navigation2D-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_bad_tasks_raise_value_error_and_keep_the_previous_task(env_id):
    env = make(env_id)
    (good,) = env.sample_tasks(1, np.random.default_rng(1))
    env.set_task(good)
    for bad, message in BAD_TASKS[env_id.replace("-v1", "-v0")]:  # v1: v0 at another dt
        with pytest.raises(ValueError, match=message):
            env.set_task(bad)
        assert env.task == good
    with pytest.raises(ValueError, match="mapping"):
        env.set_task([1.0])


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_velocity_validation_accepts_exactly_the_range(value):
    env = _VEL_ENV
    if math.isfinite(value) and 0.0 <= value <= 2.0:
        env.set_task({"velocity": value})
        assert env.task == {"velocity": value}
    else:
        with pytest.raises(ValueError, match="velocity"):
            env.set_task({"velocity": value})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=4))
def test_goal_validation_accepts_exactly_two_finite_numbers_in_range(goal):
    env = _NAV_ENV
    valid = len(goal) == 2 and all(math.isfinite(g) and -0.5 <= g <= 0.5 for g in goal)
    if valid:
        env.set_task({"goal": goal})
        assert env.task == {"goal": goal}
    else:
        before = env.task
        with pytest.raises(ValueError, match="goal"):
            env.set_task({"goal": goal})
        assert env.task == before


_VEL_ENV = make("metarl/HalfCheetahVel-v0")
_NAV_ENV = make("metarl/Navigation2D-v0")
