"""A new task distribution in a few lines: a point pushed by a per-task wind.

    python experiments/custom_task_distribution.py

Defines the distribution, registers it under ``mylab/``, checks it with Gymnasium's checker
and rolls out each of four tasks with a do-nothing policy, so the wind alone moves the point.
(Once the meta-RL learners land, this file meta-trains on it.)
"""

import gymnasium as gym
import numpy as np

from metarl.envs import TaskEnv, check_fields, register_task_distribution, vector_field


class WindyPoint(TaskEnv):
    """Reach the origin from (1, 1) while a constant wind, the task, pushes the point."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = gym.spaces.Box(-0.1, 0.1, (2,), np.float32)
        self.set_task({"wind": [0.0, 0.0]})

    def draw_task(self, rng):
        return {"wind": rng.uniform(-0.05, 0.05, 2).tolist()}

    def validate_task(self, task):
        check_fields(task, ["wind"])
        return {"wind": vector_field(task, "wind", 2, -0.05, 0.05)}

    def apply_task(self, task):
        self._wind = np.array(task["wind"])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._pos = np.ones(2)
        return self._pos.copy(), {}

    def step(self, action):
        self._pos = self._pos + np.clip(action, -0.1, 0.1) + self._wind
        return self._pos.copy(), -float(np.linalg.norm(self._pos)), False, False, {}


register_task_distribution("mylab/WindyPoint-v0", WindyPoint, max_episode_steps=50, replace=True)

if __name__ == "__main__":
    from gymnasium.utils.env_checker import check_env

    env = gym.make("mylab/WindyPoint-v0")
    check_env(env.unwrapped, skip_render_check=True)
    for task in env.unwrapped.sample_tasks(4, np.random.default_rng(0)):
        env.unwrapped.set_task(task)
        env.reset(seed=0)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
            total, done = total + reward, terminated or truncated
        print(f"wind {np.round(task['wind'], 3)}: return of doing nothing {total:.1f}")
