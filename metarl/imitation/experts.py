"""Expert policies that generate demonstrations.

An expert has the interface ``MultiTaskSampler`` rolls out (``forward(obs) -> dist``,
``sample``, ``mode``, ``discrete``), sees the task appended to its observation (a sampler
made with ``task_in_observation=True``), and acts in the policy's action scale: [-1, 1]
mapped onto the environment's action box by the sampler.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Navigation2DExpert(nn.Module):
    """Scripted Navigation2D expert: the largest allowed move straight at the goal.

    Observations are ``[x, y, goal_x, goal_y]``; the most likely action is the offset to the
    goal in units of the largest move (``max_step``, 0.1 by default), clipped to [-1, 1] per
    axis, so the point moves at full speed along both axes until an axis is within one step
    of the goal, then lands on it. With ``noise > 0`` the actions it takes (``sample``) add
    Gaussian noise of that standard deviation (clipped to [-1, 1]): demonstrations then
    visit states around the expert's path, each labelled with the expert's action there
    (noise injection, as in DART, Laskey et al. 2017), which behaviour cloning needs to learn
    to recover and stop. ``noise=0`` acts exactly.
    """

    discrete = False

    def __init__(self, max_step: float = 0.1, noise: float = 0.0) -> None:
        super().__init__()
        if not max_step > 0 or not noise >= 0:
            raise ValueError(f"need max_step > 0 and noise >= 0, got {max_step}, {noise}")
        self.max_step, self.noise = float(max_step), float(noise)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        if obs.shape[-1] != 4:
            raise ValueError(
                "Navigation2DExpert needs [x, y, goal_x, goal_y] observations (a sampler with "
                f"task_in_observation=True), got {obs.shape[-1]} features"
            )
        mean = ((obs[..., 2:] - obs[..., :2]) / self.max_step).clamp(-1.0, 1.0)
        log_std = math.log(self.noise) if self.noise > 0 else -math.inf
        return mean, torch.full_like(mean, log_std)

    def sample(
        self, dist: tuple[Tensor, Tensor], generator: torch.Generator | None = None
    ) -> Tensor:
        mean = dist[0]
        if self.noise == 0:
            return mean
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return (mean + self.noise * noise).clamp(-1.0, 1.0)

    @staticmethod
    def mode(dist: tuple[Tensor, Tensor]) -> Tensor:
        return dist[0]


SCRIPTED_EXPERTS = {
    "metarl/Navigation2D-v0": Navigation2DExpert,
    "metarl/Navigation2DRandomStart-v0": Navigation2DExpert,
}


def make_expert(env_id: str, noise: float = 0.0) -> nn.Module:
    """The scripted expert of ``env_id`` acting with ``noise``; ``KeyError`` naming the
    distributions that have one."""
    if env_id not in SCRIPTED_EXPERTS:
        raise KeyError(
            f"no expert for {env_id} yet; {' and '.join(SCRIPTED_EXPERTS)} have a scripted one"
        )
    return SCRIPTED_EXPERTS[env_id](noise=noise)
