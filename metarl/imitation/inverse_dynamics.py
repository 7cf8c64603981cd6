"""The non-meta baseline for observation-only demonstrations: label their actions with an
inverse-dynamics model trained on other tasks' demonstrations, then clone the labels.

``InverseDynamics`` maps a transition ``(o_t, o_{t+1})`` to the action that caused it, in
the policy's scale. ``transitions`` (or ``DemoTasks.transitions``) reads the transitions of
a demonstration dataset (the last step of each demonstration pairs with its final
observation); ``fit_inverse_dynamics``
trains the model on them; ``label_demos`` turns observation-only demonstrations into
``DemoData`` that ``bc_loss`` (or ``cloned_from_scratch``) can clone.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from metarl.config import Configurable
from metarl.imitation.demos import Demonstrations
from metarl.imitation.losses import DemoData


class Transitions(NamedTuple):
    """``observations``, ``next_observations [..., H, obs_dim]``, the ``actions`` taken
    between them ``[..., H, act_dim]`` (policy scale) and ``mask [..., H]``."""

    observations: Tensor
    next_observations: Tensor
    actions: Tensor
    mask: Tensor


def transitions(
    demos: Demonstrations, center: np.ndarray | None = None, half: np.ndarray | None = None
) -> Transitions:
    """Every transition of ``demos``, ``[tasks, demos, horizon, ...]``, with the actions the
    demonstrator *took* (not its labels: the transition is what the taken action caused),
    mapped to the policy's scale by ``(a - center) / half`` when ``half`` is given (the
    action box's, ``metarl.rl.sampler.action_box_affine``)."""
    obs, mask = demos.observations, demos.mask
    lengths = mask.sum(-1).long()  # [T, D]
    nxt = torch.cat([obs[:, :, 1:], torch.zeros_like(obs[:, :, :1])], 2)
    last = (lengths - 1).clamp_min(0)
    t_idx, d_idx = torch.meshgrid(
        torch.arange(obs.shape[0]), torch.arange(obs.shape[1]), indexing="ij"
    )
    nxt[t_idx, d_idx, last] = demos.final_observations
    actions = demos.actions
    if half is not None:
        actions = (actions - torch.as_tensor(center)) / torch.as_tensor(half)
    keep = mask.unsqueeze(-1)
    return Transitions(obs * keep, nxt * keep, actions * keep, mask)


class InverseDynamics(Configurable, nn.Module):
    """An MLP from ``(o_t, o_{t+1} - o_t)`` to the action between them.

    Args:
        obs_dim, act_dim: observation and action sizes.
        hidden: widths of the hidden layers (ReLU).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        widths = [2 * obs_dim, *hidden, act_dim]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, observations: Tensor, next_observations: Tensor) -> Tensor:
        """The predicted actions ``[..., act_dim]``."""
        return self.net(torch.cat([observations, next_observations - observations], -1))


def fit_inverse_dynamics(
    model: InverseDynamics,
    data: Transitions,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 1024,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` with Adam for ``steps`` mini-batches of ``batch_size`` transitions
    (squared error summed over action dimensions); returns the loss of every step."""
    keep = data.mask.reshape(-1) > 0
    obs, nxt, act = (x.reshape(-1, x.shape[-1])[keep] for x in data[:3])
    if len(obs) == 0:
        raise ValueError("no transitions to fit the inverse-dynamics model on")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(obs), (min(batch_size, len(obs)),), generator=generator)
        loss = ((model(obs[idx], nxt[idx]) - act[idx]) ** 2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def label_demos(model: InverseDynamics, data: Transitions) -> DemoData:
    """Observation-only demonstrations with the actions ``model`` infers, for cloning (the
    actions in ``data`` are not read)."""
    with torch.no_grad():
        actions = model(data.observations, data.next_observations)
    return DemoData(data.observations, actions * data.mask.unsqueeze(-1), data.mask)
