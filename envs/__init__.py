"""Task-distribution environments, installed as ``metarl.envs``.

Every environment here is a ``gymnasium.Env`` with ``sample_tasks``, ``set_task`` and a
``task`` property (see ``metarl.envs.task_env``). Importing ``metarl`` registers them under
the ``metarl/`` namespace::

    import gymnasium as gym, metarl
    env = gym.make("metarl/HalfCheetahVel-v0")
    env.unwrapped.set_task(env.unwrapped.sample_tasks(1)[0])

A user's own distribution registers with ``register_task_distribution``.
"""

from __future__ import annotations

import gymnasium as gym

from metarl.envs.registration import (
    check_task_distribution,
    is_task_distribution,
    register_task_distribution,
)
from metarl.envs.task_env import (
    TaskDistribution,
    TaskEnv,
    check_fields,
    number_field,
    vector_field,
)
from metarl.envs.vector import set_tasks
from metarl.envs.wrappers import PreviousStepInObservation, TaskInObservation, flatten_task

# id -> (entry point, max_episode_steps). Entry points are strings so that importing metarl
# does not import MuJoCo; Gymnasium imports the module on make.
BUILTIN = {
    "metarl/BernoulliBandit-v0": ("metarl.envs.bandits:BernoulliBandit", None),
    "metarl/GaussianBandit-v0": ("metarl.envs.bandits:GaussianBandit", None),
    "metarl/Navigation2D-v0": ("metarl.envs.navigation:Navigation2D", 100),
    "metarl/HalfCheetahVel-v0": ("metarl.envs.locomotion:HalfCheetahVel", 200),
    "metarl/HalfCheetahDir-v0": ("metarl.envs.locomotion:HalfCheetahDir", 200),
    "metarl/AntVel-v0": ("metarl.envs.locomotion:AntVel", 200),
    "metarl/AntDir-v0": ("metarl.envs.locomotion:AntDir", 200),
    "metarl/AntGoal-v0": ("metarl.envs.locomotion:AntGoal", 200),
    # Optional extra metarl[metaworld]; without it, make() raises ImportError saying so.
    "metarl/MetaWorldML1-v0": ("metarl.envs.metaworld:ML1", 500),
    "metarl/MetaWorldML10-v0": ("metarl.envs.metaworld:ML10", 500),
}
METAWORLD_IDS = ("metarl/MetaWorldML1-v0", "metarl/MetaWorldML10-v0")


def _register_builtin() -> None:
    for env_id, (entry_point, horizon) in BUILTIN.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=horizon)


def registered_ids(namespace: str = "metarl") -> list[str]:
    """Every registered id in a namespace (default: metarl's own distributions)."""
    return sorted(i for i, spec in gym.registry.items() if spec.namespace == namespace)


_register_builtin()

__all__ = [
    "BUILTIN",
    "METAWORLD_IDS",
    "PreviousStepInObservation",
    "TaskDistribution",
    "TaskEnv",
    "TaskInObservation",
    "check_fields",
    "check_task_distribution",
    "flatten_task",
    "is_task_distribution",
    "number_field",
    "register_task_distribution",
    "registered_ids",
    "set_tasks",
    "vector_field",
]
