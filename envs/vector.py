"""Many copies of one task distribution, each with its own task, through Gymnasium's vector API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym


def set_tasks(vec_env: gym.vector.VectorEnv, tasks: Sequence[Mapping[str, Any]]) -> None:
    """Give sub-environment ``i`` the task ``tasks[i]``, all or nothing.

    Works with ``SyncVectorEnv`` for any task distribution, and with ``AsyncVectorEnv`` for
    distributions whose ``task`` property has a setter (every ``TaskEnv`` does). Every task
    is checked before any is applied: a rejected one raises ``ValueError`` naming its index
    and leaves every sub-environment's task as it was. (For an ``AsyncVectorEnv`` the check
    runs on a local copy and needs ``validate_task``, as ``TaskEnv`` has; without it a
    worker's rejection closes the vector env, as Gymnasium does for any worker error.)
    ``vec_env.get_attr("task")`` reads them back.

        envs = gym.make_vec("metarl/Navigation2D-v0", num_envs=4, vectorization_mode="async")
        tasks = Navigation2D().sample_tasks(4, np.random.default_rng(0))
        set_tasks(envs, tasks)
    """
    tasks = list(tasks)
    if len(tasks) != vec_env.num_envs:
        raise ValueError(f"got {len(tasks)} tasks for {vec_env.num_envs} sub-environments")
    for i, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            raise ValueError(f"task {i} is a {type(task).__name__}, not a mapping; no task was set")
    if isinstance(vec_env, gym.vector.SyncVectorEnv):
        envs = [env.unwrapped for env in vec_env.envs]
        for i, (env, task) in enumerate(zip(envs, tasks)):
            if hasattr(env, "validate_task"):
                _rejected(i, lambda env=env, task=task: env.validate_task(task))
        old = [env.task for env in envs]
        try:
            for i, (env, task) in enumerate(zip(envs, tasks)):
                _rejected(i, lambda env=env, task=task: env.set_task(task))
        except ValueError:
            for env, task in zip(envs, old):
                env.set_task(task)
            raise
        return
    # A worker that raises makes Gymnasium close an AsyncVectorEnv, so check every task here
    # first, on a local copy of the distribution.
    probe = _local_copy(vec_env)
    if probe is not None:
        try:
            for i, task in enumerate(tasks):
                _rejected(i, lambda task=task: probe.validate_task(task))
        finally:
            probe.close()
    vec_env.set_attr("task", tasks)


def _local_copy(vec_env: gym.vector.VectorEnv) -> Any:
    """One environment of ``vec_env``'s distribution in this process, if it can validate."""
    spec = getattr(vec_env, "spec", None)
    if spec is None:
        return None
    vector_only = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers")
    kwargs = {k: v for k, v in spec.kwargs.items() if k not in vector_only}
    env = gym.make(spec.id, disable_env_checker=True, **kwargs).unwrapped
    if not hasattr(env, "validate_task"):
        env.close()
        return None
    return env


def _rejected(index: int, check: Any) -> None:
    try:
        check()
    except ValueError as error:
        raise ValueError(f"task {index} was rejected: {error}; no task was changed") from error
