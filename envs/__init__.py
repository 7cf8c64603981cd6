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
from metarl.envs.vector_task_env import TaskVectorEnv
from metarl.envs.wrappers import (
    PreviousStepInObservation,
    TaskInObservation,
    flatten_task,
    task_features,
)

# id -> (entry point, max_episode_steps, vector entry point or None[, constructor kwargs]).
# Entry points are strings so that importing metarl does not import MuJoCo; Gymnasium imports
# the module on make. The MuJoCo distributions' v0 step Gymnasium's v5 models 5 physics steps
# at a time (0.05 s per environment step, as Gymnasium's own locomotion tasks); v1 step them
# at the MAML paper's time step (rllab's models: HalfCheetah 0.01 s, Ant 0.02 s, one physics
# step each), so that a 200-step episode covers the paper's simulated time, and clip actions
# to the box before the control cost sees them (rllab's normalising wrapper did; v0 charges
# the unclipped action, as Gymnasium's tasks do).
PAPER_TIME_STEP = {"HalfCheetahVel": 1, "HalfCheetahDir": 1, "AntVel": 2, "AntDir": 2, "AntGoal": 2}
BUILTIN = {
    "metarl/BernoulliBandit-v0": (
        "metarl.envs.bandits:BernoulliBandit",
        None,
        "metarl.envs.bandits:BernoulliBanditVector",
    ),
    "metarl/GaussianBandit-v0": (
        "metarl.envs.bandits:GaussianBandit",
        None,
        "metarl.envs.bandits:GaussianBanditVector",
    ),
    "metarl/Navigation2D-v0": (
        "metarl.envs.navigation:Navigation2D",
        100,
        "metarl.envs.navigation:Navigation2DVector",
    ),
    "metarl/Navigation2DRandomStart-v0": (
        "metarl.envs.navigation:Navigation2D",
        100,
        "metarl.envs.navigation:Navigation2DVector",
        {"start_range": 0.5},
    ),
    "metarl/HalfCheetahVel-v0": (
        "metarl.envs.locomotion:HalfCheetahVel",
        200,
        "metarl.envs.batched:HalfCheetahVelVector",
    ),
    "metarl/HalfCheetahDir-v0": (
        "metarl.envs.locomotion:HalfCheetahDir",
        200,
        "metarl.envs.batched:HalfCheetahDirVector",
    ),
    "metarl/AntVel-v0": ("metarl.envs.locomotion:AntVel", 200, "metarl.envs.batched:AntVelVector"),
    "metarl/AntDir-v0": ("metarl.envs.locomotion:AntDir", 200, "metarl.envs.batched:AntDirVector"),
    "metarl/AntGoal-v0": (
        "metarl.envs.locomotion:AntGoal",
        200,
        "metarl.envs.batched:AntGoalVector",
    ),
    **{
        f"metarl/{name}-v1": (
            f"metarl.envs.locomotion:{name}",
            200,
            f"metarl.envs.batched:{name}Vector",
            {"frame_skip": frame_skip, "clip_actions": True},
        )
        for name, frame_skip in PAPER_TIME_STEP.items()
    },
    # Optional extra metarl[metaworld]; without it, make() raises ImportError saying so.
    "metarl/MetaWorldML1-v0": ("metarl.envs.metaworld:ML1", 500, None),
    "metarl/MetaWorldML10-v0": ("metarl.envs.metaworld:ML10", 500, None),
}
METAWORLD_IDS = ("metarl/MetaWorldML1-v0", "metarl/MetaWorldML10-v0")


def _register_builtin() -> None:
    for env_id, (entry_point, horizon, vector, *kwargs) in BUILTIN.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                max_episode_steps=horizon,
                vector_entry_point=vector,
                kwargs=kwargs[0] if kwargs else {},
            )


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
    "TaskVectorEnv",
    "check_fields",
    "check_task_distribution",
    "flatten_task",
    "task_features",
    "is_task_distribution",
    "number_field",
    "register_task_distribution",
    "registered_ids",
    "set_tasks",
    "vector_field",
]
