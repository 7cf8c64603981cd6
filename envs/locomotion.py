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
leaves [0.2, 1.0] or the state is not finite (MuJoCo's automatic reset of diverged
simulations is switched off, so divergence shows). The horizon (200) is applied at
registration.

Each ``step`` is one ``mujoco.mj_step`` call of ``frame_skip`` substeps and a few NumPy
operations, so it costs little beyond the physics; ``benchmarks/envs.py`` measures the
ratio. The Ant's contact forces ``cfrc_ext`` are those of the state at the start of the
step's last physics substep, computed by that substep's ``mj_forward`` (rllab's Ant, in the
MAML paper, ran one more forward at the new state and read them there; that costs one more
constraint solve per step, which we skip): its model carries one accelerometer
on a massless site of the torso (``contact_probe``), which makes every ``mj_forward`` compute
``cfrc_ext`` (MuJoCo runs ``mj_rnePostConstraint`` for such sensors) and changes nothing in
the dynamics. After a reset they are those of the reset state. (Gymnasium's Ant calls
``mj_rnePostConstraint`` after ``mj_step``; as the model integrates with RK4, that reads the
contacts of the last Runge-Kutta stage, an intermediate state.) Every step starts MuJoCo's
constraint solver cold (zero warm start), so the vector forms in ``metarl.envs.batched``,
which step many copies at once on ``mujoco.batch``, produce exactly the same trajectories.

The observation, reward and termination are computed by ``observation_from``,
``reward_terms`` and ``terminated_from``, which accept one state or a batch of states (any
leading dimensions): the single environment and the batched stepper share them.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from metarl.envs.planar import PlanarChain
from metarl.envs.task_env import TaskEnv, check_fields, number_field, vector_field

ASSETS = Path(gym.__file__).parent / "envs" / "mujoco" / "assets"


CONTACT_PROBE = "contact_probe"


@functools.cache
def _compiled_model(path: str, contact_probe: bool = False) -> mujoco.MjModel:
    """Compile each XML file once per process; environments take copies of the result.

    ``contact_probe`` adds an accelerometer on a massless site of the first body below the
    world: sensors of that kind make ``mj_forward`` compute the external contact forces
    ``cfrc_ext``, here and in ``mujoco.batch`` (which has no call of its own for them).
    """
    if not contact_probe:
        return mujoco.MjModel.from_xml_path(path)
    spec = mujoco.MjSpec.from_file(path)
    spec.worldbody.first_body().add_site(name=CONTACT_PROBE)
    spec.add_sensor(
        type=mujoco.mjtSensor.mjSENS_ACCELEROMETER,
        objtype=mujoco.mjtObj.mjOBJ_SITE,
        objname=CONTACT_PROBE,
    )
    return spec.compile()


class MujocoTaskEnv(TaskEnv):
    """A lean MuJoCo environment on one of Gymnasium's model files.

    Subclasses set ``xml``, the cost weights, ``task_reward`` and the observation. Resets add
    uniform noise in [-0.1, 0.1] to the initial positions and Gaussian noise of scale 0.1 to
    the initial velocities, as Gymnasium's v5 locomotion environments do. ``task_params`` is
    the current task as a flat float array (what the batched stepper stacks per copy).
    """

    xml: str
    reset_noise: float = 0.1
    ctrl_cost_weight: float = 0.0
    contact_cost_weight: float = 0.0
    survive_bonus: float = 0.0
    uses_contact_forces: bool = False
    task_params: np.ndarray

    def __init__(self, frame_skip: int = 5, clip_actions: bool = False) -> None:
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        self.clip_actions = bool(clip_actions)
        self.model_path = str(ASSETS / self.xml)
        # An own copy, without recompiling.
        self.model = copy.copy(_compiled_model(self.model_path, self.uses_contact_forces))
        # A diverged simulation keeps its non-finite state (MuJoCo would silently reset it),
        # so that the episode can end on it, in this environment and in the batched stepper.
        self.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
        self.data = mujoco.MjData(self.model)
        # Views into the simulator's buffers, cached: each MjData attribute access builds a
        # new array object, which costs more than the arithmetic done with it.
        self._qpos, self._qvel, self._ctrl = self.data.qpos, self.data.qvel, self.data.ctrl
        self._warmstart = self.data.qacc_warmstart
        self.frame_skip = int(frame_skip)
        self.dt = float(self.model.opt.timestep) * self.frame_skip
        low, high = self.model.actuator_ctrlrange.T.astype(np.float32)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._low, self._high = low.astype(np.float64), high.astype(np.float64)
        half_range = (high - low).astype(np.float64) / 2
        # Actions are divided by the half range in the control cost; skip that when it is 1.
        self._inv_half_range = None if np.all(half_range == 1) else 1 / half_range
        self._init_qpos = self.model.qpos0.copy()
        self._init_qvel = np.zeros(self.model.nv)
        self.set_task(self.draw_task(np.random.default_rng(0)))
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

    def observation(self) -> np.ndarray:
        """The observation of the current state."""
        return self.observation_from(self._qpos, self._qvel, self.contact_forces(self.data))

    def step(self, action):
        action = self.applied_action(np.asarray(action, dtype=np.float64))
        x_before = self._qpos[0]
        self._ctrl[:] = action
        self._warmstart[:] = 0.0  # a cold solver start, exactly as in the batched stepper
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        velocity = (self._qpos[0] - x_before) / self.dt
        contact = self.contact_forces(self.data)
        obs = self.observation_from(self._qpos, self._qvel, contact)
        task, ctrl, contact_cost = self.reward_terms(
            velocity, self._qpos, action, contact, self.task_params
        )
        reward = float(task - ctrl - contact_cost + self.survive_bonus)
        terminated = self.terminates and bool(self.terminated_from(self._qpos, obs))
        info = {
            "forward_velocity": velocity,
            "reward_task": float(task),
            "reward_ctrl": -float(ctrl),
            "reward_contact": -float(contact_cost),
        }
        return obs, reward, terminated, False, info

    # -- shared by the single environment and the batched stepper --------------------------
    def applied_action(self, action: np.ndarray) -> np.ndarray:
        """The action the simulator and the control cost see: clipped to the action box with
        ``clip_actions`` (rllab's normalising wrapper did, for the MAML paper), else as given
        (Gymnasium's v5 tasks; MuJoCo still clamps the controls, the cost does not)."""
        return np.clip(action, self._low, self._high) if self.clip_actions else action

    def contact_forces(self, data: mujoco.MjData) -> np.ndarray | None:
        """Clipped external contact forces in ``data`` (None if unused): those of its last
        ``mj_forward``, which the contact probe makes fill ``cfrc_ext`` (for a step, the
        last substep's)."""
        if not self.uses_contact_forces:
            return None
        return self.clipped_contact_forces(data.cfrc_ext)

    @staticmethod
    def clipped_contact_forces(cfrc_ext: np.ndarray) -> np.ndarray:
        """``cfrc_ext`` of every body but the world (``[..., nbody, 6]``), clipped to [-1, 1]
        and flattened over bodies: ``[..., 6 * (nbody - 1)]``."""
        forces = np.clip(cfrc_ext[..., 1:, :], -1.0, 1.0)
        return forces.reshape(*forces.shape[:-2], -1)

    def observation_from(self, qpos, qvel, contact):  # pragma: no cover - interface
        raise NotImplementedError

    def task_reward(self, velocity, qpos, params):  # pragma: no cover - interface
        raise NotImplementedError

    def reward_terms(self, velocity, qpos, action, contact, params):
        """Task reward, control cost and contact cost (each ``[...]``).

        Parameters are indexed as ``params.T[i]`` so that one task's 1-D ``params`` gives a
        scalar (fast) and a batch's ``[n, p]`` gives a column.
        """
        if self._inv_half_range is not None:
            action = action * self._inv_half_range
        ctrl = self.ctrl_cost_weight * np.vecdot(action, action)
        contact_cost = (
            0.0 if contact is None else self.contact_cost_weight * np.vecdot(contact, contact)
        )
        return self.task_reward(velocity, qpos, params), ctrl, contact_cost

    terminates = False

    def terminated_from(self, qpos, obs):
        """Whether each episode ends (never, unless a subclass sets ``terminates``)."""
        return np.zeros(np.shape(obs)[:-1], dtype=bool)


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
        self.task_params = np.array([task["velocity"]])

    def task_reward(self, velocity, qpos, params):
        return -abs(velocity - params.T[0]) + self.velocity_bonus


class _DirectionTask:
    """Task ``{"direction": d}`` with d in {-1, +1}; task reward d * v_x."""

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"direction": float(rng.choice([-1.0, 1.0]))}

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(task, ["direction"])
        return {"direction": number_field(task, "direction", choices=(-1.0, 1.0))}

    def apply_task(self, task: dict[str, Any]) -> None:
        self.task_params = np.array([task["direction"]])

    def task_reward(self, velocity, qpos, params):
        return params.T[0] * velocity


class _HalfCheetah(MujocoTaskEnv):
    """HalfCheetah base: observation ``[qpos[1:], qvel]`` (17 numbers), control cost 0.05.

    With ``centre_of_mass=True`` the robot's centre of mass (x, y, z) follows: the 20
    numbers of rllab's HalfCheetah, the MAML paper's observation.
    """

    xml = "half_cheetah.xml"
    ctrl_cost_weight = 0.05

    def __init__(
        self, frame_skip: int = 5, clip_actions: bool = False, centre_of_mass: bool = False
    ) -> None:
        self.centre_of_mass = bool(centre_of_mass)
        super().__init__(frame_skip, clip_actions)

    @functools.cached_property
    def _chain(self) -> PlanarChain:
        return PlanarChain(self.model)

    def observation_from(self, qpos, qvel, contact):
        parts = (qpos[..., 1:], qvel)
        if self.centre_of_mass:
            parts += (self._chain.centre_of_mass(qpos),)
        return np.concatenate(parts, axis=-1)


class HalfCheetahVel(_VelocityTask, _HalfCheetah):
    """Run at a target velocity; task ``{"velocity": v}``, v ~ U[0, 2] (MAML paper)."""

    velocity_range = (0.0, 2.0)


class HalfCheetahDir(_DirectionTask, _HalfCheetah):
    """Run forwards or backwards; task ``{"direction": d}``, d in {-1, +1} (MAML paper)."""


class _Ant(MujocoTaskEnv):
    """Ant base: observation ``[qpos[2:], qvel, clip(cfrc_ext[1:], -1, 1)]`` (105 numbers).

    The world body's external force is always zero, so it is left out of the observation; the
    contact cost sums over all bodies either way. Episodes end when the torso height leaves
    ``healthy_z`` or the state is not finite (the simulation diverged).
    """

    xml = "ant.xml"
    ctrl_cost_weight = 0.005
    contact_cost_weight = 0.0005
    survive_bonus = 0.05
    uses_contact_forces = True
    terminates = True
    healthy_z = (0.2, 1.0)

    def observation_from(self, qpos, qvel, contact):
        return np.concatenate((qpos[..., 2:], qvel, contact), axis=-1)

    def terminated_from(self, qpos, obs):
        z = qpos[..., 2]
        in_range = (self.healthy_z[0] <= z) & (z <= self.healthy_z[1])
        return ~in_range | ~np.isfinite(obs).all(-1)


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
        self.task_params = np.asarray(task["goal"], dtype=np.float64)

    def task_reward(self, velocity, qpos, params):
        offset = qpos[..., :2] - params[..., :2]
        return -np.sqrt(np.vecdot(offset, offset))
