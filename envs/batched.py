"""Step many copies of one MuJoCo task environment at once with ``mujoco.rollout``.

``BatchedMujoco`` keeps the simulator state of every copy in one array and advances all
copies by one environment step (``frame_skip`` physics substeps) in a single multi-threaded
``mujoco.rollout`` call, then computes observations, rewards and terminations for the whole
batch with the environment's own vectorised functions (``observation_from``,
``reward_terms``, ``terminated_from``). It reproduces ``env.step`` exactly: both start the
constraint solver cold at every step, and both read contact forces at the new state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import mujoco
import numpy as np
from mujoco import rollout

from metarl.envs.locomotion import MujocoTaskEnv

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS


class BatchedMujoco:
    """Lockstep stepping of ``envs`` (all of one ``MujocoTaskEnv`` class), on ``threads`` cores.

    ``reset`` uses each copy's own ``reset`` (its task and reset noise); ``step`` advances the
    copies listed in ``active`` and returns their observations, rewards and terminations.
    """

    def __init__(self, envs: Sequence[MujocoTaskEnv], threads: int | None = None) -> None:
        if not envs:
            raise ValueError("BatchedMujoco needs at least one environment")
        kinds = {(type(e), e.frame_skip) for e in envs}
        if len(kinds) != 1:
            raise ValueError("all environments must be of one class and frame skip")
        self.envs = list(envs)
        self.proto = self.envs[0]
        model = self.proto.model
        n, fs = len(self.envs), self.proto.frame_skip
        threads = max(1, min(threads or os.cpu_count() or 1, n))
        self._models = [model] * n
        self._datas = [mujoco.MjData(model) for _ in range(threads)]
        self._contact_data = mujoco.MjData(model)
        size = mujoco.mj_stateSize(model, STATE_SPEC)
        self.state = np.zeros((n, size))
        self._out = np.zeros((n, fs, size))
        self._control = np.zeros((n, fs, model.nu))
        self._warmstart = np.zeros((n, model.nv))
        self._qpos = slice(1, 1 + model.nq)  # the state starts with the time
        self._qvel = slice(1 + model.nq, 1 + model.nq + model.nv)
        self.params = np.zeros((n, 0))

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Reset every copy with its seed; return the observations ``[n, obs_dim]``."""
        model = self.proto.model
        obs = []
        for env, seed, row in zip(self.envs, seeds, self.state):
            obs.append(env.reset(seed=int(seed))[0])
            mujoco.mj_getState(model, env.data, row, STATE_SPEC)
        self.params = np.stack([env.task_params for env in self.envs])
        return np.stack(obs)

    def step(
        self, actions: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance the copies ``active`` (default all) by one step with ``actions[active]``.

        Returns observations, rewards and terminations of the active copies, in order.
        """
        active = np.arange(len(self.envs)) if active is None else np.asarray(active)
        k, proto = len(active), self.proto
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
        reward = task - ctrl - contact_cost + proto.survive_bonus
        return obs, reward, proto.terminated_from(qpos, obs)

    def _contact_forces(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        data, model = self._contact_data, self.proto.model
        forces = []
        for row, action in zip(states, actions):
            mujoco.mj_setState(model, data, row, STATE_SPEC)
            data.ctrl[:] = action  # actuator forces enter the constraint forces
            forces.append(self.proto.contact_forces(data))
        return np.stack(forces)
