"""Outer updates that are not plain backpropagation, and the checks that pair them with learners.

A meta-learner's outer step is an object the user passes: a ``torch.optim`` optimiser over
``learner.parameters()`` (backprop through the adaptation, or Reptile's pseudo-gradient), or
a ``TRPO`` trust-region step. ``check_outer`` refuses pairs that cannot work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from metarl.core.params import Params


def reptile_pseudo_gradient(params: Mapping[str, Tensor], adapted: Mapping[str, Tensor]) -> Params:
    """Reptile's direction (Nichol et al., 2018) as a gradient: ``theta - mean_i phi_i``.

    ``adapted`` holds per-task adapted parameters with a leading task dimension. A gradient
    step of size ``epsilon`` on this pseudo-gradient is exactly Reptile's interpolation
    ``theta <- theta + epsilon * (mean_i phi_i - theta)``.
    """
    return {name: (p - adapted[name].mean(0)).detach() for name, p in params.items()}


def check_outer(learner: nn.Module, outer: Any) -> None:
    """Raise ``ValueError`` unless ``outer`` can update ``learner``.

    ``outer`` must be a ``torch.optim.Optimizer`` holding the learner's parameters, or a
    ``TRPO``. Reptile's update is a pseudo-gradient, not the gradient of a surrogate, so a
    trust-region step (which needs the surrogate's curvature) cannot take it.
    """
    from metarl.core.learners import Reptile  # here: metarl.core.learners imports this module
    from metarl.core.trpo import TRPO

    if isinstance(outer, TRPO):
        if isinstance(learner, Reptile):
            raise ValueError(
                "Reptile with a TRPO outer step cannot work: Reptile's direction theta - "
                "mean(phi) is not the gradient of a surrogate whose KL curvature TRPO could "
                "use. Pass torch.optim.SGD(learner.parameters(), lr=epsilon) (Reptile's "
                "interpolation) or another optimiser."
            )
        return
    if not isinstance(outer, torch.optim.Optimizer):
        raise ValueError(
            f"outer must be a TRPO(...) or a torch.optim optimiser over learner.parameters(), "
            f"got {type(outer).__name__}"
        )
    held = {id(p) for group in outer.param_groups for p in group["params"]}
    trainable = [p for p in learner.parameters() if p.requires_grad]
    missing = sum(id(p) not in held for p in trainable)
    if missing:
        raise ValueError(
            f"the outer optimiser leaves {missing} of the learner's {len(trainable)} "
            "parameter tensors out: build it over learner.parameters() (which include a "
            "learned rule's step sizes), not model.parameters() or another model's"
        )
