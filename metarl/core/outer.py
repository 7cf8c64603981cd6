"""Outer updates that are not plain backpropagation through the inner loop."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from metarl.core.params import Params


def reptile_pseudo_gradient(params: Mapping[str, Tensor], adapted: Mapping[str, Tensor]) -> Params:
    """Reptile's direction (Nichol et al., 2018) as a gradient: ``theta - mean_i phi_i``.

    ``adapted`` holds per-task adapted parameters with a leading task dimension. A gradient
    step of size ``epsilon`` on this pseudo-gradient is exactly Reptile's interpolation
    ``theta <- theta + epsilon * (mean_i phi_i - theta)``.
    """
    return {name: (p - adapted[name].mean(0)).detach() for name, p in params.items()}


@torch.no_grad()
def reptile_update(
    params: Mapping[str, Tensor], adapted: Mapping[str, Tensor], step_size: float
) -> None:
    """Apply Reptile's interpolation in place: ``theta <- theta + eps * (mean_i phi_i - theta)``."""
    if not 0 < step_size <= 1:
        raise ValueError(f"Reptile step size must be in (0, 1], got {step_size}")
    for name, p in params.items():
        p.lerp_(adapted[name].mean(0), step_size)
