"""MuJoCo task distributions as vector environments, stepped with ``mujoco.batch``.

``MujocoTaskVectorEnv`` keeps every copy's simulation in one ``mujoco.batch.Batch`` (one
``MjData`` per copy, stepped on a thread pool with the GIL released) and advances all running
copies by one environment step (``frame_skip`` physics substeps) in one call, then computes
observations, rewards and terminations for the whole batch with the environment's own
vectorised functions (``observation_from``, ``reward_terms``, ``terminated_from``). The state
lives in the batch's rows and is read through bound views, so nothing is copied per copy.

It reproduces the single environment's ``step`` exactly: both start the constraint solver
cold at every step, and the Ant's contact forces are those of the step's last substep, filled
in the same threads (the model's contact probe makes every ``mj_forward`` fill
``cfrc_ext``). Resets are each copy's own (its reset noise,
drawn from the copy's generator). One class per distribution (``HalfCheetahVelVector``, ...)
is registered as its ``vector_entry_point``.
"""

from __future__ import annotations

import os
from typing import Any

import mujoco
import numpy as np
from mujoco.batch import Batch

from metarl.envs.locomotion import (
    AntDir,
    AntGoal,
    AntVel,
    HalfCheetahDir,
    HalfCheetahVel,
    MujocoTaskEnv,
)
from metarl.envs.vector_task_env import TaskVectorEnv

_NO_STAGE = mujoco.mjtStage.mjSTAGE_NONE.value


class MujocoTaskVectorEnv(TaskVectorEnv):
    """``num_envs`` copies of a ``MujocoTaskEnv`` class on ``threads`` physics threads
    (default: all cores); see the module docstring. ``kwargs`` go to each copy."""

    single_env_class: type[MujocoTaskEnv]
    steps_on_threads = True

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = None,
        threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._threads = threads
        super().__init__(num_envs, max_episode_steps, **kwargs)

    def allocate(self) -> None:
        self.copies = [self.single_env_class(**self.env_kwargs) for _ in range(self.num_envs)]
        threads = max(1, min(self._threads or os.cpu_count() or 1, self.num_envs))
        self.batch = Batch(self.proto.model, self.num_envs, nthread=threads, persistent=True)
        self._qpos, self._qvel = self.batch.bind("qpos"), self.batch.bind("qvel")
        self._ctrl, self._warmstart = self.batch.bind("ctrl"), self.batch.bind("qacc_warmstart")
        self._cfrc_ext = self.batch.bind("cfrc_ext") if self.proto.uses_contact_forces else None
        self._obs = np.zeros((self.num_envs, self.single_observation_space.shape[0]))

    def apply_tasks(self, tasks: list[dict[str, Any]]) -> None:
        for env, task in zip(self.copies, tasks):
            env.apply_task(task)
            env._task = task
        self.params = np.stack([env.task_params for env in self.copies])

    def reset_copies(self, mask: np.ndarray) -> np.ndarray:
        ids = np.flatnonzero(mask)
        self.batch.reset(ids, stage=_NO_STAGE)
        for i in ids:
            env = self.copies[i]
            env.np_random = self.rngs[i]  # the copy's reset noise comes from its generator
            self._obs[i] = env.reset()[0]
            self._qpos[i], self._qvel[i] = env.data.qpos, env.data.qvel
        self.batch.forward(ids)  # the derived fields of the new states, as the copies have them
        return self._obs.copy()

    def step_copies(
        self, actions: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        active = np.flatnonzero(mask)
        reward, terminated = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=bool)
        k, proto = len(active), self.proto
        if k == 0:
            return self._obs.copy(), reward, terminated
        ids = None if k == self.num_envs else active
        actions = proto.applied_action(np.asarray(actions, dtype=np.float64)[active])
        x_before = self._qpos[active, 0]
        self._ctrl[active] = actions
        self._warmstart[active] = 0.0
        self.batch.step(ids, nstep=proto.frame_skip)
        contact = None
        if proto.uses_contact_forces:
            contact = proto.clipped_contact_forces(self._cfrc_ext[active])
        qpos, qvel = self._qpos[active], self._qvel[active]
        velocity = (qpos[:, 0] - x_before) / proto.dt
        obs = proto.observation_from(qpos, qvel, contact)
        task, ctrl, contact_cost = proto.reward_terms(
            velocity, qpos, actions, contact, self.params[active]
        )
        self._obs[active] = obs
        reward[active] = task - ctrl - contact_cost + proto.survive_bonus
        terminated[active] = proto.terminated_from(qpos, obs)
        return self._obs.copy(), reward, terminated

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.copies:
            env.close()
        super().close_extras(**kwargs)


class HalfCheetahVelVector(MujocoTaskVectorEnv):
    """HalfCheetahVel copies, each with its own target velocity."""

    single_env_class = HalfCheetahVel


class HalfCheetahDirVector(MujocoTaskVectorEnv):
    """HalfCheetahDir copies, each with its own direction."""

    single_env_class = HalfCheetahDir


class AntVelVector(MujocoTaskVectorEnv):
    """AntVel copies, each with its own target velocity."""

    single_env_class = AntVel


class AntDirVector(MujocoTaskVectorEnv):
    """AntDir copies, each with its own direction."""

    single_env_class = AntDir


class AntGoalVector(MujocoTaskVectorEnv):
    """AntGoal copies, each with its own goal."""

    single_env_class = AntGoal
