"""Expert policies that generate demonstrations.

An expert has the interface ``MultiTaskSampler`` rolls out (``forward(obs) -> dist``,
``sample``, ``mode``, ``discrete``), sees the task appended to its observation (a sampler
made with ``task_in_observation=True``), and acts in the policy's action scale: [-1, 1]
mapped onto the environment's action box by the sampler.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from metarl.learners import load_learner
from metarl.utils.checkpoint import load_checkpoint


class NoisyExpert(nn.Module):
    """The experts' base: the most likely action is ``mean_action(obs)`` (which a subclass
    defines) clipped to [-1, 1]; the actions it takes add Gaussian noise of standard
    deviation ``noise``, clipped to [-1, 1]."""

    discrete = False

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__()
        if not noise >= 0:
            raise ValueError(f"need noise >= 0, got {noise}")
        self.noise = float(noise)

    def mean_action(self, obs: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.mean_action(obs).clamp(-1.0, 1.0)
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


class Navigation2DExpert(NoisyExpert):
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

    def __init__(self, max_step: float = 0.1, noise: float = 0.0) -> None:
        super().__init__(noise)
        if not max_step > 0:
            raise ValueError(f"need max_step > 0, got {max_step}")
        self.max_step = float(max_step)

    def mean_action(self, obs: Tensor) -> Tensor:
        if obs.shape[-1] != 4:
            raise ValueError(
                "Navigation2DExpert needs [x, y, goal_x, goal_y] observations (a sampler with "
                f"task_in_observation=True), got {obs.shape[-1]} features"
            )
        return (obs[..., 2:] - obs[..., :2]) / self.max_step


class PolicyExpert(NoisyExpert):
    """A trained policy that sees the task (an oracle run of ``experiments/maml_rl.py``) as
    an expert: its most likely action, clipped to [-1, 1], with Gaussian noise of
    ``noise`` on the actions it takes (not its own learned spread)."""

    def __init__(self, policy: nn.Module, noise: float = 0.0) -> None:
        super().__init__(noise)
        self.policy = policy.eval()

    def mean_action(self, obs: Tensor) -> Tensor:
        with torch.no_grad():
            return self.policy(obs)[0]


class MetaWorldExpert(NoisyExpert):
    """Meta-World's scripted policy of one ML1 environment (``metaworld.policies``, e.g.
    ``SawyerReachV3Policy`` for ``"reach-v3"``) as an expert. Its observations are ML1's 39
    numbers followed by the task's goal position (a sampler with
    ``task_in_observation=True``: ``MetaWorldTasks.task_features``); the goal goes where a
    fully observable Meta-World observation holds it (the last three numbers, which ML1
    zeroes), and the scripted action, clipped to [-1, 1], is the expert's most likely one.
    Needs the optional extra ``metarl[metaworld]``.
    """

    def __init__(self, env_name: str = "reach-v3", noise: float = 0.0) -> None:
        super().__init__(noise)
        from metarl.envs.metaworld import _import_metaworld

        _import_metaworld()  # the install hint if the extra is missing
        words = env_name.removesuffix("-v3").split("-")
        class_name = "Sawyer" + "".join(w.capitalize() for w in words) + "V3Policy"
        policies = importlib.import_module("metaworld.policies")
        if not hasattr(policies, class_name):
            raise ValueError(f"Meta-World has no scripted policy {class_name} for {env_name!r}")
        self.env_name = env_name
        self.scripted = getattr(policies, class_name)()

    def mean_action(self, obs: Tensor) -> Tensor:
        if obs.shape[-1] != 42:
            raise ValueError(
                "MetaWorldExpert needs ML1's 39 observations and the goal (a sampler with "
                f"task_in_observation=True), got {obs.shape[-1]} features"
            )
        rows = obs.reshape(-1, 42).double().numpy().copy()
        full = rows[:, :39]
        full[:, 36:39] = rows[:, 39:]
        actions = np.stack([self.scripted.get_action(o) for o in full])
        return torch.as_tensor(actions, dtype=obs.dtype).reshape(*obs.shape[:-1], -1)


def load_policy_expert(path: str | os.PathLike, env_id: str, noise: float = 0.0) -> PolicyExpert:
    """The policy of the learner saved at ``path`` as ``env_id``'s expert; a ``ValueError``
    if it was trained on another distribution or without the task in its observation."""
    extra = load_checkpoint(path).get("extra", {})
    if extra.get("env") != env_id or not extra.get("task_in_observation"):
        raise ValueError(
            f"{path} is not an expert for {env_id}: it was trained on {extra.get('env')} with "
            f"task_in_observation={extra.get('task_in_observation')} (an oracle run of that "
            "distribution is)"
        )
    return PolicyExpert(load_learner(path).model, noise)


def _load_trained_sb3_expert(path: str | os.PathLike, env_id: str, noise: float) -> nn.Module:
    """The SB3 model at ``path`` with the record ``train_expert.py`` writes beside it
    (``expert.json``); a ``ValueError`` if it was trained on another distribution."""
    from metarl.imitation.sb3_experts import load_sb3_expert

    record_path = Path(path).with_suffix(".json")
    if not record_path.is_file():
        raise ValueError(f"{path} has no {record_path.name} beside it (train_expert.py writes it)")
    record = json.loads(record_path.read_text())
    if record.get("env") != env_id:
        raise ValueError(
            f"{path} is not an expert for {env_id}: it was trained on {record.get('env')}"
        )
    return load_sb3_expert(path, record["algorithm"], noise)


def _navigation_expert(noise: float, env_kwargs: Mapping[str, Any]) -> Navigation2DExpert:
    return Navigation2DExpert(env_kwargs.get("max_step", 0.1), noise)


def _metaworld_expert(noise: float, env_kwargs: Mapping[str, Any]) -> MetaWorldExpert:
    return MetaWorldExpert(env_kwargs.get("env_name", "reach-v3"), noise)


SCRIPTED_EXPERTS = {  # env_id -> (noise, env_kwargs) -> expert
    "metarl/Navigation2D-v0": _navigation_expert,
    "metarl/Navigation2DRandomStart-v0": _navigation_expert,
    "metarl/MetaWorldML1-v0": _metaworld_expert,
}


def make_expert(
    env_id: str,
    noise: float = 0.0,
    policy: str | os.PathLike | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """``env_id``'s expert acting with ``noise``: the trained policy saved at ``policy`` if
    given (a ``learner.pt``: ``load_policy_expert``; an ``expert.zip`` of
    ``experiments/train_expert.py``: the Stable-Baselines3 model), else the distribution's
    scripted expert (made for the environment ``env_kwargs`` configure, e.g. Meta-World
    ML1's ``env_name``); a ``KeyError`` naming the distributions that have one if it has
    none."""
    if policy is not None and str(policy).endswith(".zip"):
        return _load_trained_sb3_expert(policy, env_id, noise)
    if policy is not None:
        return load_policy_expert(policy, env_id, noise)
    if env_id not in SCRIPTED_EXPERTS:
        raise KeyError(
            f"no expert for {env_id} yet; {', '.join(SCRIPTED_EXPERTS)} have a scripted "
            "one, and a distribution's oracle run gives one (--expert-policy)"
        )
    return SCRIPTED_EXPERTS[env_id](noise, dict(env_kwargs or {}))
