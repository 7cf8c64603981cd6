"""Forward kinematics of planar MuJoCo models, vectorised over copies, from ``qpos`` alone.

A planar model (HalfCheetah) moves in the x-z plane: every hinge turns about the y axis,
slides run along x or z, and no body is rotated in its parent's frame. Its bodies' positions
then follow from ``qpos`` with a few array operations per body, for any number of copies at
once, which is what a batched stepper needs for an observation that MuJoCo would otherwise
compute copy by copy (``data.subtree_com``).
"""

from __future__ import annotations

import mujoco
import numpy as np

HINGE, SLIDE = mujoco.mjtJoint.mjJNT_HINGE.value, mujoco.mjtJoint.mjJNT_SLIDE.value


class PlanarChain:
    """The bodies of a planar ``mujoco.MjModel``; ``centre_of_mass(qpos)`` of the whole robot.

    Raises ``ValueError`` naming what is not planar (a body rotated in its parent's frame, a
    joint off its body's origin, a hinge not about y, a slide along y, a ball or free joint).
    """

    def __init__(self, model: mujoco.MjModel) -> None:
        problems = []
        identity = np.array([1.0, 0.0, 0.0, 0.0])
        for b in range(1, model.nbody):
            if not np.allclose(model.body_quat[b], identity):
                problems.append(f"body {model.body(b).name!r} is rotated in its parent's frame")
        self.joints: list[list[tuple[bool, int, np.ndarray]]] = [[] for _ in range(model.nbody)]
        for j in range(model.njnt):
            name, axis = model.jnt(j).name, model.jnt_axis[j]
            kind = int(model.jnt_type[j])
            if not np.allclose(model.jnt_pos[j], 0):
                problems.append(f"joint {name!r} is off its body's origin")
            if kind == HINGE and not np.allclose(axis, [0, 1, 0]):
                problems.append(f"hinge {name!r} does not turn about y")
            elif kind == SLIDE and abs(axis[1]) > 1e-12:
                problems.append(f"slide {name!r} moves along y")
            elif kind not in (HINGE, SLIDE):
                problems.append(f"joint {name!r} is neither a hinge nor a slide")
            is_hinge = kind == HINGE
            body = model.jnt_bodyid[j]
            self.joints[body].append((is_hinge, int(model.jnt_qposadr[j]), axis[[0, 2]].copy()))
        if problems:
            raise ValueError("not a planar model: " + "; ".join(problems))
        self.parent = model.body_parentid.copy()
        self.offset = model.body_pos[:, [0, 2]].copy()  # in the parent's frame
        self.inertial = model.body_ipos[:, [0, 2]].copy()  # centre of mass in the body's frame
        self.mass = model.body_mass.copy()

    @staticmethod
    def _rotate(angle: np.ndarray, xz: np.ndarray) -> np.ndarray:
        """``xz`` (``[..., 2]`` or ``[2]``) turned by ``angle`` (``[...]``) about y."""
        c, s = np.cos(angle), np.sin(angle)
        x, z = xz[..., 0], xz[..., 1]
        return np.stack((c * x + s * z, -s * x + c * z), axis=-1)

    def centre_of_mass(self, qpos: np.ndarray) -> np.ndarray:
        """The centre of mass of every body but the world, ``[..., 3]`` (x, y, z; y is 0), for
        ``qpos`` ``[..., nq]``: MuJoCo's ``subtree_com`` of the root body of a one-robot
        model."""
        lead = qpos.shape[:-1]
        origin = [np.zeros((*lead, 2))]
        angle = [np.zeros(lead)]
        weighted, total = np.zeros((*lead, 2)), 0.0
        for b in range(1, len(self.parent)):
            p = self.parent[b]
            position = origin[p] + self._rotate(angle[p], self.offset[b])
            turned = angle[p]
            for is_hinge, address, axis in self.joints[b]:
                if is_hinge:
                    turned = turned + qpos[..., address]
                else:
                    position = position + qpos[..., address, None] * self._rotate(turned, axis)
            origin.append(position)
            angle.append(turned)
            weighted = weighted + self.mass[b] * (position + self._rotate(turned, self.inertial[b]))
            total += self.mass[b]
        com = weighted / total
        return np.stack((com[..., 0], np.zeros(lead), com[..., 1]), axis=-1)
