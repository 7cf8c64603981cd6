"""MuJoCo task distributions as vector environments, stepped with ``mujoco.rollout``.

``MujocoTaskVectorEnv`` keeps the simulator state of every copy in one array and advances
all running copies by one environment step (``frame_skip`` physics substeps) in a single
multi-threaded ``mujoco.rollout`` call, then computes observations, rewards and
terminations for the whole batch with the environment's own vectorised functions
(``observation_from``, ``reward_terms``, ``terminated_from``). It reproduces the single
environment's ``step`` exactly: both start the constraint solver cold at every step, and both
read contact forces at the new state; resets are each copy's own (its reset noise, drawn
from the copy's generator). Its physics threads are MuJoCo's persistent pool, created once
and shut down by MuJoCo at exit. One class per distribution (``HalfCheetahVelVector``, ...)
is registered as its ``vector_entry_point``.
"""

from __future__ import annotations

import os
from typing import Any

import mujoco
import numpy as np
from mujoco import rollout

from metarl.envs.locomotion import (
    AntDir,
    AntGoal,
    AntVel,
    HalfCheetahDir,
    HalfCheetahVel,
    MujocoTaskEnv,
)
from metarl.envs.vector_task_env import TaskVectorEnv

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS


class MujocoTaskVectorEnv(TaskVectorEnv):
    """``num_envs`` copies of a ``MujocoTaskEnv`` class on ``threads`` physics threads
    (default: all cores); see the module docstring. ``kwargs`` go to each copy."""

    single_env_class: type[MujocoTaskEnv]

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
        model = self.proto.model
        n, frame_skip = self.num_envs, self.proto.frame_skip
        threads = max(1, min(self._threads or os.cpu_count() or 1, n))
        self._models = [model] * n
        self._datas = [mujoco.MjData(model) for _ in range(threads)]
        self._contact_data = mujoco.MjData(model)
        size = mujoco.mj_stateSize(model, STATE_SPEC)
        self.state = np.zeros((n, size))
        self._out = np.zeros((n, frame_skip, size))
        self._control = np.zeros((n, frame_skip, model.nu))
        self._warmstart = np.zeros((n, model.nv))
        self._qpos = slice(1, 1 + model.nq)  # the state starts with the time
        self._qvel = slice(1 + model.nq, 1 + model.nq + model.nv)
        self._obs = np.zeros((n, self.single_observation_space.shape[0]))

    def apply_tasks(self, tasks: list[dict[str, Any]]) -> None:
        for env, task in zip(self.copies, tasks):
            env.apply_task(task)
            env._task = task
        self.params = np.stack([env.task_params for env in self.copies])

    def reset_copies(self, mask: np.ndarray) -> np.ndarray:
        model = self.proto.model
        for i in np.flatnonzero(mask):
            env = self.copies[i]
            env.np_random = self.rngs[i]  # the copy's reset noise comes from its generator
            self._obs[i] = env.reset()[0]
            mujoco.mj_getState(model, env.data, self.state[i], STATE_SPEC)
        return self._obs.copy()

    def step_copies(
        self, actions: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        active = np.flatnonzero(mask)
        reward, terminated = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=bool)
        k, proto = len(active), self.proto
        if k == 0:
            return self._obs.copy(), reward, terminated
        actions = np.asarray(actions, dtype=np.float64)[active]
        before = self.state[active]
        self._control[:k] = actions[:, None, :]
        rollout.rollout(
            self._models[:k], self._datas, before, self._control[:k], nstep=self._out.shape[1],
            initial_warmstart=self._warmstart[:k], skip_checks=True, state=self._out[:k],
            persistent_pool=True,
        )  # fmt: skip
        after = self._out[:k, -1]
        self.state[active] = after
        qpos, qvel = after[:, self._qpos], after[:, self._qvel]
        velocity = (qpos[:, 0] - before[:, self._qpos][:, 0]) / proto.dt
        contact = self._contact_forces(after, actions) if proto.uses_contact_forces else None
        obs = proto.observation_from(qpos, qvel, contact)
        task, ctrl, contact_cost = proto.reward_terms(
            velocity, qpos, actions, contact, self.params[active]
        )
        self._obs[active] = obs
        reward[active] = task - ctrl - contact_cost + proto.survive_bonus
        terminated[active] = proto.terminated_from(qpos, obs)
        return self._obs.copy(), reward, terminated

    def _contact_forces(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        data, model = self._contact_data, self.proto.model
        forces = []
        for row, action in zip(states, actions):
            mujoco.mj_setState(model, data, row, STATE_SPEC)
            data.ctrl[:] = action  # actuator forces enter the constraint forces
            forces.append(self.proto.contact_forces(data))
        return np.stack(forces)

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
