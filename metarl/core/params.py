"""Functional parameters: a model's weights as a dict of tensors, applied with ``functional_call``.

Nothing here copies a module. A meta-learner keeps one ``nn.Module`` and evaluates it at any
set of parameters (the initialisation, one task's adapted weights, or a batch of them under
``vmap``) by passing those parameters explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


def named_params(module: nn.Module) -> Params:
    """The module's trainable parameters as a name -> tensor dict (the live tensors, not copies)."""
    return {name: p for name, p in module.named_parameters() if p.requires_grad}


def forward_with(module: nn.Module, params: Mapping[str, Tensor], *args: Any, **kwargs: Any) -> Any:
    """Call ``module(*args, **kwargs)`` with ``params`` in place of its own parameters.

    Parameters missing from ``params`` (frozen ones, say) and all buffers are taken from the
    module itself.
    """
    return functional_call(module, dict(params), args, kwargs, strict=False)


def detach_params(params: Mapping[str, Tensor]) -> Params:
    """Detached copies that still require grad: the start of a first-order or evaluation run."""
    return {name: p.detach().requires_grad_(p.requires_grad) for name, p in params.items()}


def stack_params(per_task: list[Params]) -> Params:
    """Stack a list of per-task parameter dicts into one dict with a leading task dimension."""
    if not per_task:
        raise ValueError("stack_params needs at least one parameter dict")
    return {name: torch.stack([p[name] for p in per_task]) for name in per_task[0]}


def unstack_params(batched: Mapping[str, Tensor]) -> list[Params]:
    """Split a dict with a leading task dimension into one dict per task."""
    sizes = {t.shape[0] for t in batched.values()}
    if len(sizes) != 1:
        raise ValueError(f"batched parameters disagree on the task dimension: {sorted(sizes)}")
    (n,) = sizes
    return [{name: t[i] for name, t in batched.items()} for i in range(n)]


def flat_gradient(grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    """One vector of ``grads`` in ``params`` order; ``None`` (an unused parameter) is zeros."""
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]
    )
