"""Registering task distributions with Gymnasium."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from metarl.envs.task_env import TaskDistribution
from metarl.envs.vector_task_env import TaskVectorEnv

PROTOCOL_MEMBERS = ("sample_tasks", "set_task", "task")


def check_task_distribution(cls: type) -> None:
    """Raise ``TypeError`` unless ``cls`` is a ``gymnasium.Env`` implementing the task protocol."""
    if not isinstance(cls, type) or not issubclass(cls, gym.Env):
        raise TypeError(f"{cls!r} is not a gymnasium.Env subclass")
    missing = [name for name in PROTOCOL_MEMBERS if not hasattr(cls, name)]
    if missing:
        raise TypeError(
            f"{cls.__name__} does not implement the task-distribution protocol: missing "
            f"{missing} (needs sample_tasks(num_tasks, rng=None), set_task(task) and a task "
            "property)"
        )
    not_callable = [n for n in ("sample_tasks", "set_task") if not callable(getattr(cls, n))]
    if not_callable:
        raise TypeError(f"{cls.__name__}.{not_callable[0]} must be a method")
    if not isinstance(cls.task, property):
        raise TypeError(f"{cls.__name__}.task must be a property returning the current task dict")


def register_task_distribution(
    env_id: str,
    cls: type[gym.Env],
    *,
    max_episode_steps: int | None = None,
    vector_entry_point: type | None = None,
    replace: bool = False,
    **kwargs: Any,
) -> None:
    """Check that ``cls`` implements the task protocol, then ``gymnasium.register`` it.

    ``kwargs`` are passed to the constructor by ``gymnasium.make``. ``vector_entry_point``
    is an optional ``metarl.envs.TaskVectorEnv`` subclass whose ``single_env_class`` is
    ``cls``: all copies stepped as arrays, used by ``gymnasium.make_vec`` and the sampler.
    Registering an id that already exists is an error unless ``replace=True``.
    """
    check_task_distribution(cls)
    if vector_entry_point is not None:
        check_vector_task_distribution(vector_entry_point, cls)
    if env_id in gym.registry and not replace:
        raise ValueError(f"{env_id!r} is already registered; pass replace=True to overwrite it")
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(
        id=env_id,
        entry_point=cls,
        max_episode_steps=max_episode_steps,
        vector_entry_point=vector_entry_point,
        kwargs=kwargs,
    )


def check_vector_task_distribution(vector_cls: type, cls: type) -> None:
    """Raise ``TypeError`` unless ``vector_cls`` is a ``TaskVectorEnv`` of ``cls``."""
    if not isinstance(vector_cls, type) or not issubclass(vector_cls, TaskVectorEnv):
        raise TypeError(f"vector_entry_point {vector_cls!r} is not a TaskVectorEnv subclass")
    if getattr(vector_cls, "single_env_class", None) is not cls:
        raise TypeError(
            f"{vector_cls.__name__}.single_env_class must be {cls.__name__}, the distribution "
            f"it vectorises, got {getattr(vector_cls, 'single_env_class', None)!r}"
        )


def is_task_distribution(env: gym.Env) -> bool:
    """Whether an environment (unwrapped) implements the task protocol."""
    return isinstance(env.unwrapped, TaskDistribution)
