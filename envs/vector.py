"""Many copies of one task distribution, each with its own task, through Gymnasium's vector API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym


def set_tasks(vec_env: gym.vector.VectorEnv, tasks: Sequence[Mapping[str, Any]]) -> None:
    """Give sub-environment ``i`` the task ``tasks[i]``.

    Works with ``SyncVectorEnv`` for any task distribution, and with ``AsyncVectorEnv`` for
    distributions whose ``task`` property has a setter (every ``TaskEnv`` does). A rejected
    task raises ``ValueError`` as ``set_task`` would. ``vec_env.get_attr("task")`` reads
    them back.

        envs = gym.make_vec("metarl/Navigation2D-v0", num_envs=4, vectorization_mode="async")
        tasks = Navigation2D().sample_tasks(4, np.random.default_rng(0))
        set_tasks(envs, tasks)
    """
    tasks = list(tasks)
    if len(tasks) != vec_env.num_envs:
        raise ValueError(f"got {len(tasks)} tasks for {vec_env.num_envs} sub-environments")
    if isinstance(vec_env, gym.vector.SyncVectorEnv):
        for env, task in zip(vec_env.envs, tasks):
            env.unwrapped.set_task(task)
    else:
        vec_env.set_attr("task", tasks)
