"""Meta-World ML1 / ML10 (Yu et al., CoRL 2019) through metarl's task protocol.

Needs the optional extra: ``pip install "metarl[metaworld]"`` (Meta-World 3.1.1, which pins
``mujoco==3.3.0``; metarl's own MuJoCo requirement admits that version). Without it,
constructing an adapter raises ``ImportError`` saying so.

A Meta-World task is an opaque object; here a task is the JSON dict
``{"env_name": "reach-v3", "index": 7}``: the ``index``-th task of that environment in the
benchmark's train or test split, which the benchmark's ``seed`` makes reproducible.

    env = gym.make("metarl/MetaWorldML1-v0", env_name="pick-place-v3", split="train", seed=0)
    env = gym.make("metarl/MetaWorldML10-v0", split="test")

Meta-World's resets ignore their seed and start the hand at one fixed position, so with the
task fixed every episode is the same; ``hand_init_range=r`` starts each episode with the
hand displaced by up to ``r`` (metres, uniform per axis) from that position, drawn from the
reset's seed. ``terminate_on_success=True`` ends an episode at the first step Meta-World
reports success (``terminated``), so a sampler's ``terminated`` flags are the success rate;
by default episodes end only at the benchmark's 500 steps, as in Meta-World.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.task_env import TaskEnv, check_fields

INSTALL_HINT = (
    'Meta-World is not installed: pip install "metarl[metaworld]" (Meta-World 3.1.1, which '
    "requires mujoco==3.3.0)"
)


def _import_metaworld():
    try:
        import metaworld
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return metaworld


@lru_cache(maxsize=8)
def _benchmark(benchmark: str, env_name: str, seed: int) -> Any:
    """Meta-World's benchmark object (seconds to build; read-only once built), shared by
    every copy of the distribution in this process."""
    metaworld = _import_metaworld()
    if benchmark == "ML1":
        return metaworld.ML1(env_name, seed=seed)
    if benchmark == "ML10":
        return metaworld.ML10(seed=seed)
    raise ValueError(f"benchmark must be 'ML1' or 'ML10', got {benchmark!r}")


class MetaWorldTasks(TaskEnv):
    """One Meta-World benchmark split as a task distribution.

    Args:
        benchmark: ``"ML1"`` (one environment, varying goals) or ``"ML10"`` (ten training
            environments, five test environments).
        env_name: the environment of ML1 (ignored by ML10), e.g. ``"reach-v3"``.
        split: ``"train"`` or ``"test"`` tasks of the benchmark.
        seed: the benchmark's seed, which fixes its task lists.
        terminate_on_success: end an episode (``terminated``) once ``info["success"]``.
        hand_init_range: displace the hand's start by up to this much per axis (metres),
            drawn at each reset from its seed; 0 keeps Meta-World's fixed start.
    """

    def __init__(
        self,
        benchmark: str = "ML1",
        env_name: str = "reach-v3",
        split: str = "train",
        seed: int = 0,
        terminate_on_success: bool = False,
        hand_init_range: float = 0.0,
    ) -> None:
        _import_metaworld()
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not hand_init_range >= 0:
            raise ValueError(f"hand_init_range must be >= 0, got {hand_init_range}")
        self.terminate_on_success = bool(terminate_on_success)
        self.hand_init_range = float(hand_init_range)
        self._hand_home: dict[str, np.ndarray] = {}  # Meta-World's fixed start, per env
        bench = _benchmark(benchmark, env_name if benchmark == "ML1" else "", seed)
        self._classes = dict(bench.train_classes if split == "train" else bench.test_classes)
        self._tasks: dict[str, list[Any]] = {name: [] for name in self._classes}
        for task in bench.train_tasks if split == "train" else bench.test_tasks:
            self._tasks[task.env_name].append(task)
        self._envs: dict[str, gym.Env] = {}
        spaces = [self._env(name).observation_space for name in self._classes]
        low = np.min([s.low for s in spaces], axis=0)
        high = np.max([s.high for s in spaces], axis=0)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float64)
        self.action_space = self._env(next(iter(self._classes))).action_space
        self.set_task({"env_name": next(iter(self._classes)), "index": 0})

    def _env(self, name: str) -> gym.Env:
        if name not in self._envs:
            self._envs[name] = self._classes[name]()
        return self._envs[name]

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        names = list(self._tasks)
        name = names[int(rng.integers(len(names)))]
        return {"env_name": name, "index": int(rng.integers(len(self._tasks[name])))}

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, ["env_name", "index"])
        name, index = task["env_name"], task["index"]
        if name not in self._tasks:
            raise ValueError(
                f"task field 'env_name' must be one of {list(self._tasks)}, got {name!r}"
            )
        count = len(self._tasks[name])
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, np.integer))
            or not 0 <= index < count
        ):
            raise ValueError(
                f"task field 'index' must be an integer in [0, {count - 1}], got {index!r}"
            )
        return {"env_name": name, "index": int(index)}

    def apply_task(self, task: dict[str, Any]) -> None:
        env = self._env(task["env_name"])
        env.set_task(self._tasks[task["env_name"]][task["index"]])
        self._hand_home.setdefault(task["env_name"], np.array(env.hand_init_pos, dtype=float))
        env.hand_init_pos = self._hand_home[task["env_name"]].copy()
        env.reset()  # Meta-World places the task's goal when it resets
        self._current, self._current_name = env, task["env_name"]

    def task_features(self) -> np.ndarray:
        """The current task's goal position (x, y, z), which ML1's observations hide: an
        oracle's or a scripted expert's input (a task here is an index, not numbers)."""
        return np.asarray(self._current._target_pos, dtype=np.float64).copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.hand_init_range > 0:
            r = self.hand_init_range
            home = self._hand_home[self._current_name]
            self._current.hand_init_pos = home + self.np_random.uniform(-r, r, 3)
        obs, info = self._current.reset(seed=seed)
        return np.asarray(obs, dtype=np.float64), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self._current.step(action)
        terminated = bool(terminated) or (self.terminate_on_success and bool(info["success"]))
        return np.asarray(obs, dtype=np.float64), float(reward), terminated, truncated, info

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


def ML1(
    env_name: str = "reach-v3",
    split: str = "train",
    seed: int = 0,
    terminate_on_success: bool = False,
    hand_init_range: float = 0.0,
) -> MetaWorldTasks:
    """Meta-World ML1: one manipulation environment, tasks differ in goal and object positions."""
    return MetaWorldTasks("ML1", env_name, split, seed, terminate_on_success, hand_init_range)


def ML10(
    split: str = "train",
    seed: int = 0,
    terminate_on_success: bool = False,
    hand_init_range: float = 0.0,
) -> MetaWorldTasks:
    """Meta-World ML10: ten training environments, five held-out test environments."""
    return MetaWorldTasks("ML10", "", split, seed, terminate_on_success, hand_init_range)
