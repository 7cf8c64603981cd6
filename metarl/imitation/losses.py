"""Behaviour-cloning losses as pure functions of (params, data): MIL's inner and outer losses."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn
from torch.nn import functional as F

from metarl.core.adapt import InnerLoss
from metarl.core.params import Params, forward_with


class DemoData(NamedTuple):
    """Demonstrated steps of one task or of many (leading task dimension): a pytree.

    ``observations [..., D, H, obs_dim]``, ``actions [..., D, H, act_dim]`` (or
    ``[..., D, H]`` integers for discrete actions) and ``mask [..., D, H]`` (1 where a step
    happened), for ``D`` demonstrations of ``H`` steps.
    """

    observations: Tensor
    actions: Tensor
    mask: Tensor


def bc_loss(policy: nn.Module) -> InnerLoss:
    """Behaviour cloning on ``DemoData``: the masked mean over demonstrated steps of the
    squared error of the policy's most likely action (the Gaussian's mean), summed over
    action dimensions, for continuous actions; of the cross-entropy of the demonstrated
    action for discrete ones (``policy.discrete``)."""

    def loss(params: Params, data: DemoData) -> Tensor:
        dist = forward_with(policy, params, data.observations)
        if getattr(policy, "discrete", False):
            per_step = F.nll_loss(
                dist[0].flatten(0, -2), data.actions.long().flatten(), reduction="none"
            ).view_as(data.mask)
        else:
            per_step = ((dist[0] - data.actions) ** 2).sum(-1)
        return (per_step * data.mask).sum() / data.mask.sum().clamp_min(1.0)

    return loss
