"""MuJoCo locomotion task distributions on Gymnasium's v5 models (no mujoco-py).

Rewards follow Finn, Abbeel and Levine, "MAML" (ICML 2017), section 5.3 and its code:

- HalfCheetahVel: target velocity ~ U[0, 2]; r = -|v - target| - 0.05 * sum(a^2).
- HalfCheetahDir: direction in {-1, +1}; r = direction * v - 0.05 * sum(a^2).
- AntVel: target velocity ~ U[0, 3]; r = -|v - target| + 1.0 - 0.005 * sum((a / h)^2)
  - 0.0005 * sum(clip(cfrc_ext, -1, 1)^2) + 0.05, with h the half action range.
- AntDir: as AntVel with -|v - target| + 1.0 replaced by direction * v.
- AntGoal: goal uniform in a disc of radius 3; r = -||xy - goal|| with AntVel's costs and bonus.

v is the forward (x) velocity of the root (the cheetah's root slider, the ant's torso), a
finite difference over one environment step. Ant episodes terminate when the torso height
leaves [0.2, 1.0] or the state is not finite (MuJoCo flagged the step as diverged). The
horizon (200) is applied at registration.

Each ``step`` is one ``mujoco.mj_step`` call of ``frame_skip`` substeps (plus
``mj_rnePostConstraint`` for the Ant's contact forces) and a few NumPy operations, so it
costs little beyond the physics; ``benchmarks/envs.py`` measures the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from metarl.envs.task_env import TaskEnv, check_fields, number_field, vector_field

ASSETS = Path(gym.__file__).parent / "envs" / "mujoco" / "assets"


class MujocoTaskEnv(TaskEnv):
    """A lean MuJoCo environment on one of Gymnasium's model files.

    Subclasses set ``xml`` and write ``step`` and ``observation``. Resets add uniform noise
    in [-0.1, 0.1] to the initial positions and Gaussian noise of scale 0.1 to the initial
    velocities, as Gymnasium's v5 locomotion environments do.
    """

    xml: str
    reset_noise: float = 0.1

    def __init__(self, frame_skip: int = 5) -> None:
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        self.model_path = str(ASSETS / self.xml)
        self.model = mujoco.MjModel.from_xml_path(self.model_path)
        self.data = mujoco.MjData(self.model)
        # Views into the simulator's buffers, cached: each MjData attribute access builds a
        # new array object, which costs more than the arithmetic done with it.
        self._qpos, self._qvel, self._ctrl = self.data.qpos, self.data.qvel, self.data.ctrl
        self.frame_skip = int(frame_skip)
        self.dt = float(self.model.opt.timestep) * self.frame_skip
        low, high = self.model.actuator_ctrlrange.T.astype(np.float32)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._half_range = (high - low).astype(np.float64) / 2
        self._init_qpos = self.model.qpos0.copy()
        self._init_qvel = np.zeros(self.model.nv)
        mujoco.mj_forward(self.model, self.data)
        size = self.observation().shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        noise = self.reset_noise
        qpos = self._init_qpos + self.np_random.uniform(-noise, noise, self.model.nq)
        qvel = self._init_qvel + noise * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        return self.observation(), {}

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put the simulator in a given state (used by resets and by tests)."""
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)
        self._post_forward()

    def observation(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _post_forward(self) -> None:
        """Quantities a subclass needs after ``mj_forward`` (the Ant's contact forces)."""

    def _simulate(self, action: np.ndarray) -> float:
        """Apply ``action`` for ``frame_skip`` substeps; return the root's x velocity."""
        x_before = self._qpos[0]
        self._ctrl[:] = action
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        return (self._qpos[0] - x_before) / self.dt


class _VelocityTask:
    """Task ``{"velocity": v}`` with v ~ U[velocity_range]; task reward -|v_x - v| + bonus."""

    velocity_range: tuple[float, float]
    velocity_bonus = 0.0

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"velocity": float(rng.uniform(*self.velocity_range))}

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, ["velocity"])
        return {"velocity": number_field(task, "velocity", *self.velocity_range)}

    def apply_task(self, task: dict[str, Any]) -> None:
        self._target = task["velocity"]

    def _task_reward(self, velocity: float) -> float:
        return -abs(velocity - self._target) + self.velocity_bonus


class _DirectionTask:
    """Task ``{"direction": d}`` with d in {-1, +1}; task reward d * v_x."""

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"direction": float(rng.choice([-1.0, 1.0]))}

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, ["direction"])
        return {"direction": number_field(task, "direction", choices=(-1.0, 1.0))}

    def apply_task(self, task: dict[str, Any]) -> None:
        self._direction = task["direction"]

    def _task_reward(self, velocity: float) -> float:
        return self._direction * velocity


class _HalfCheetah(MujocoTaskEnv):
    """HalfCheetah base: observation ``[qpos[1:], qvel]`` (17 numbers), control cost 0.05."""

    xml = "half_cheetah.xml"
    ctrl_cost_weight = 0.05

    def __init__(self, frame_skip: int = 5) -> None:
        super().__init__(frame_skip)
        self.set_task(self.draw_task(np.random.default_rng(0)))

    def observation(self) -> np.ndarray:
        return np.concatenate((self._qpos[1:], self._qvel))

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        velocity = self._simulate(action)
        ctrl_cost = self.ctrl_cost_weight * float(action @ action)
        task_reward = self._task_reward(velocity)
        info = {"forward_velocity": velocity, "reward_task": task_reward, "reward_ctrl": -ctrl_cost}
        return self.observation(), task_reward - ctrl_cost, False, False, info

    def _task_reward(self, velocity: float) -> float:  # pragma: no cover - interface
        raise NotImplementedError


class HalfCheetahVel(_VelocityTask, _HalfCheetah):
    """Run at a target velocity; task ``{"velocity": v}``, v ~ U[0, 2] (MAML paper)."""

    velocity_range = (0.0, 2.0)


class HalfCheetahDir(_DirectionTask, _HalfCheetah):
    """Run forwards or backwards; task ``{"direction": d}``, d in {-1, +1} (MAML paper)."""


class _Ant(MujocoTaskEnv):
    """Ant base: observation ``[qpos[2:], qvel, clip(cfrc_ext[1:], -1, 1)]`` (105 numbers).

    The world body's external force is always zero, so it is left out of the observation; the
    contact cost sums over all bodies either way.
    """

    xml = "ant.xml"
    ctrl_cost_weight = 0.005
    contact_cost_weight = 0.0005
    survive_bonus = 0.05
    healthy_z = (0.2, 1.0)

    def __init__(self, frame_skip: int = 5) -> None:
        super().__init__(frame_skip)
        self.set_task(self.draw_task(np.random.default_rng(0)))

    def _post_forward(self) -> None:
        mujoco.mj_rnePostConstraint(self.model, self.data)

    def observation(self) -> np.ndarray:
        contact = np.clip(self.data.cfrc_ext[1:].ravel(), -1.0, 1.0)
        return np.concatenate((self._qpos[2:], self._qvel, contact))

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        # MuJoCo resets a diverged simulation by itself and counts it as a warning.
        divergences = self._divergences()
        velocity = self._simulate(action)
        diverged = self._divergences() != divergences
        mujoco.mj_rnePostConstraint(self.model, self.data)
        obs = self.observation()
        scaled = action / self._half_range
        ctrl_cost = self.ctrl_cost_weight * float(scaled @ scaled)
        contact = obs[self.model.nq - 2 + self.model.nv :]
        contact_cost = self.contact_cost_weight * float(contact @ contact)
        task_reward = self._task_reward(velocity)
        reward = task_reward - ctrl_cost - contact_cost + self.survive_bonus
        z = self._qpos[2]
        in_range = self.healthy_z[0] <= z <= self.healthy_z[1]
        healthy = in_range and not diverged and bool(np.isfinite(obs).all())
        info = {
            "forward_velocity": velocity,
            "reward_task": task_reward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
        }
        return obs, reward, not healthy, False, info

    def _divergences(self) -> int:
        counters = self.data.warning
        return sum(counters[w].number for w in _DIVERGENCE_WARNINGS)

    def _task_reward(self, velocity: float) -> float:  # pragma: no cover - interface
        raise NotImplementedError


_DIVERGENCE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)


class AntVel(_VelocityTask, _Ant):
    """Walk at a target velocity; task ``{"velocity": v}``, v ~ U[0, 3] (MAML paper)."""

    velocity_range = (0.0, 3.0)
    velocity_bonus = 1.0


class AntDir(_DirectionTask, _Ant):
    """Walk forwards or backwards; task ``{"direction": d}``, d in {-1, +1} (MAML paper)."""


class AntGoal(_Ant):
    """Walk to a goal position; task ``{"goal": [x, y]}``, uniform in a disc of radius 3.

    The task term is minus the Euclidean distance from the torso's (x, y) to the goal after
    the step; the costs, survive bonus and termination are AntVel's.
    """

    radius = 3.0

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        r = self.radius * math.sqrt(rng.uniform())
        angle = rng.uniform(0.0, 2 * math.pi)
        return {"goal": [r * math.cos(angle), r * math.sin(angle)]}

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, ["goal"])
        return {"goal": vector_field(task, "goal", 2, max_norm=self.radius)}

    def apply_task(self, task: dict[str, Any]) -> None:
        self._goal = np.asarray(task["goal"], dtype=np.float64)

    def _task_reward(self, velocity: float) -> float:
        offset = self._qpos[:2] - self._goal
        return -math.sqrt(float(offset @ offset))
